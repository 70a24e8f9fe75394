"""Jobs through a real ``cloudgate serve``: an EC2 mutation's job, and a queued job run by a gunicorn worker."""

from __future__ import annotations

from pathlib import Path

from gateway_process import GatewayProcess, write_config

from translator.jobs import JobSettings, JobStore
from translator.model import JobState
from translator.mutations import job_spec


def test_jobs_are_recorded_for_ec2_and_run_by_the_gateways_workers(tmp_path: Path, redis_server, redis_client) -> None:
    gw = GatewayProcess(write_config(tmp_path / "gw.toml", redis_server.url))
    try:
        ec2 = gw.client()
        made = ec2.create_key_pair(KeyName="from-ec2")  # EC2 still answers with the result itself
        jobs = JobStore(redis_client, JobSettings())
        (job,) = jobs.list("demo").items
        assert (job.operation, job.state, job.target_kind, job.attempts) == (
            "create_key_pair",
            JobState.SUCCESS,
            "key_pair",
            1,
        )
        assert len(job.target_ids) == 1 and job.arguments == {} and job.result is None
        # The private key was handed back once and stored nowhere: not in the job, not in its arguments.
        secret = made["KeyMaterial"].splitlines()[1].encode()
        assert not any(secret in value for value in redis_client.hvals(f"cg:job:{{demo}}:{job.id}"))

        # A job queued by anyone (CIMI will answer 202 with one) is run by one of the gateway's workers.
        queued = jobs.submit("demo", job_spec("demo/local-1", "u", "import_key_pair", "key_pair", [], _IMPORT))
        done = jobs.wait("demo", queued.id, timeout=20)
        assert done.state == JobState.SUCCESS and done.attempts == 1
        names = sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"])
        assert names == ["from-ec2", "queued"]
        assert [j.id for j in jobs.list("demo").items] == [queued.id, job.id]
    finally:
        gw.stop()


_IMPORT = (
    "queued",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test@example",
)
