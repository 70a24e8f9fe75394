"""The spine over real HTTP: a real ``cloudgate serve`` with 2 workers, a real Redis, boto3 as client."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from gateway_process import write_config


def _image_id(ec2) -> str:
    return sorted(ec2.describe_images()["Images"], key=lambda i: i["Name"])[0]["ImageId"]


def _error(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    err = excinfo.value.response
    return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_state_is_shared_between_workers(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    gw = gateways(write_config(tmp_path / "gw.toml", redis_server.url))
    ec2 = gw.client()
    run = ec2.run_instances(ImageId=_image_id(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1)
    created_by = run["ResponseMetadata"]["HTTPHeaders"]["x-served-by"]
    instance_id = run["Instances"][0]["InstanceId"]

    def listing(_: int) -> tuple[str, list[str]]:
        answer = gw.client().describe_instances()  # a fresh client: a new connection
        ids = [i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]]
        return answer["ResponseMetadata"]["HTTPHeaders"]["x-served-by"], ids

    # Concurrent connections make the kernel hand work to both workers (bounded: 5 rounds of 16).
    for _ in range(5):
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(listing, range(16)))
        others = [ids for served_by, ids in results if served_by != created_by]
        if others:
            assert all(instance_id in ids for ids in others)
            break
    else:
        pytest.fail("every request went to the worker that created the instance")


def test_state_survives_a_restart_on_the_same_redis(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    config = write_config(tmp_path / "gw.toml", redis_server.url)
    gw = gateways(config)
    ec2 = gw.client()
    ec2.create_key_pair(KeyName="survivor")
    instance_id = ec2.run_instances(ImageId=_image_id(ec2), InstanceType="t3.small", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]
    assert gw.stop() == 0
    again = gateways(config).client()
    assert [k["KeyName"] for k in again.describe_key_pairs()["KeyPairs"]] == ["survivor"]
    found = again.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert found["InstanceType"] == "t3.small"


def test_embedded_redis_persists_across_restarts(tmp_path: Path, gateways) -> None:
    config = write_config(tmp_path / "gw.toml", None)
    data = tmp_path / "data"
    gw = gateways(config, data_dir=data)
    gw.client().create_key_pair(KeyName="kept")
    assert gw.stop() == 0
    assert not (data / "redis.sock").exists(), "the embedded Redis must stop with the gateway"
    again = gateways(config, data_dir=data)
    assert [k["KeyName"] for k in again.client().describe_key_pairs()["KeyPairs"]] == ["kept"]


def test_transient_backend_faults_are_retried(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    config = write_config(
        tmp_path / "gw.toml", redis_server.url, retry_attempts=3, backend_extra="faults = { fail_first = 2 }"
    )
    gw = gateways(config)
    # The first two backend calls fail; the translator's retries absorb them.
    assert gw.client().describe_images()["Images"]


def test_a_backend_that_keeps_failing_is_unavailable(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    config = write_config(tmp_path / "gw.toml", redis_server.url, backend_extra="faults = { down = true }")
    gw = gateways(config)
    with pytest.raises(ClientError) as excinfo:
        gw.client().describe_instances()
    assert _error(excinfo) == ("Unavailable", 503)
    assert excinfo.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"].isdigit()
    ready = requests.get(f"{gw.url}/readyz", timeout=10)
    assert ready.status_code == 503  # every account is down: nobody can be served
    body = ready.json()
    assert {k: body[k] for k in ("status", "checks")} == {
        "status": "unavailable",
        "checks": {"redis": "ok", "backend:demo/local-1": "unavailable", "backend:other/local-1": "unavailable"},
    }
    assert set(body["breakers"]) <= {"demo/local-1", "other/local-1"}  # whichever opened in the worker asked
    assert requests.get(f"{gw.url}/healthz", timeout=5).json()["status"] == "ok"


def test_tenants_are_isolated_and_roles_enforced(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    gw = gateways(write_config(tmp_path / "gw.toml", redis_server.url))
    demo = gw.client()
    instance_id = demo.run_instances(ImageId=_image_id(demo), InstanceType="t3.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"]
    other = gw.client("other", "other-secret")
    assert other.describe_instances()["Reservations"] == []
    with pytest.raises(ClientError) as excinfo:
        other.describe_instances(InstanceIds=[instance_id])
    assert _error(excinfo) == ("InvalidInstanceID.NotFound", 400)
    reader = gw.client("reader", "reader-secret")
    assert [i["InstanceId"] for r in reader.describe_instances()["Reservations"] for i in r["Instances"]] == [
        instance_id
    ]
    with pytest.raises(ClientError) as excinfo:
        reader.terminate_instances(InstanceIds=[instance_id])
    assert _error(excinfo) == ("UnauthorizedOperation", 403)
    with pytest.raises(ClientError) as excinfo:
        gw.client("demo", "wrong-secret").describe_instances()
    assert _error(excinfo)[1] in (401, 403)


def test_lifecycle_jobs_and_idempotency(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    gw = gateways(write_config(tmp_path / "gw.toml", redis_server.url))
    ec2 = gw.client()
    kwargs = {"ImageId": _image_id(ec2), "InstanceType": "t3.micro", "MinCount": 2, "MaxCount": 2}
    first = ec2.run_instances(ClientToken="token-1", **kwargs)
    again = ec2.run_instances(ClientToken="token-1", **kwargs)
    ids = sorted(i["InstanceId"] for i in first["Instances"])
    assert sorted(i["InstanceId"] for i in again["Instances"]) == ids
    with pytest.raises(ClientError) as excinfo:
        ec2.run_instances(ClientToken="token-1", **{**kwargs, "InstanceType": "t3.small"})
    assert _error(excinfo) == ("IdempotentParameterMismatch", 400)
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.3, "MaxAttempts": 50})
    ec2.terminate_instances(InstanceIds=ids)
    ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.3, "MaxAttempts": 50})
    # Every mutation left a job in Redis, shared by all workers.
    jobs = redis_client.zrange("cg:jobs:{demo}", 0, -1)
    assert len(jobs) >= 3


def test_metrics_count_requests_from_all_workers(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    gw = gateways(write_config(tmp_path / "gw.toml", redis_server.url))
    for _ in range(6):
        gw.client().describe_regions()
    gw.client().describe_images()  # reaches the backend
    deadline = time.monotonic() + 10
    while True:
        text = requests.get(f"{gw.url}/metrics", timeout=5).text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("cloudgate_requests_total{") and 'action="DescribeRegions"' in line
        )
        if counted == 6 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert counted == 6
    assert "cloudgate_request_seconds_bucket" in text
    assert "cloudgate_backend_call_seconds" in text
