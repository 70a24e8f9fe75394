"""Jobs and their runners over a real Redis: states, parents, paging, expiry, leases, a runner killed mid-job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway.app import build_runtime
from gateway.config import ConfigError, parse
from translator import arguments
from translator.checkpoints import CURRENT_JOB, Checkpoints
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.follow import Goal, Step
from translator.job_runner import JobRunner
from translator.jobs import FINISHING, Deferral, JobOutcome, JobSettings, JobSpec, JobStore, Write
from translator.model import (
    BlockDevice,
    Job,
    JobState,
    MachineAction,
    MachineSpec,
    MachineState,
    Principal,
    Rule,
)

DEMO = Principal(user="u", tenant="demo", role="admin")

REPO = Path(__file__).resolve().parents[2]
#: short leases so a lapsed one is noticed within about a second
FAST = {"lease": 1.0, "heartbeat": 0.2, "poll": 0.2, "run_bound": 10.0, "wait_bound": 10.0, "ttl": 600}


@pytest.fixture
def jobs(redis_client) -> JobStore:
    return JobStore(redis_client, JobSettings(**FAST))


@pytest.fixture
def runners(jobs: JobStore) -> Iterator[Callable[..., JobRunner]]:
    """Start runners sharing the ``jobs`` store's settings; all stopped at the end."""
    started: list[JobRunner] = []

    def start(handlers: dict[str, Any], store: JobStore | None = None) -> JobRunner:
        runner = JobRunner(store or jobs, handlers)
        runner.start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


def _until(check: Callable[[], Any], what: str, seconds: float = 15.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_a_queued_job_goes_through_each_state(jobs: JobStore, runners) -> None:
    gate = threading.Event()

    def resize(job: Job) -> JobOutcome:
        assert gate.wait(10)
        jobs.report(job, 50, "half way")
        return JobOutcome(affected_ids=("vol-1",), result={"size": job.arguments["size"]})

    job = jobs.submit("demo", JobSpec("resize", "volume", ("vol-1",), {"size": 20}))
    assert jobs.get("demo", job.id).state == JobState.QUEUED
    runners({"resize": resize})
    running = _until(lambda: (j := jobs.get("demo", job.id)).state == JobState.RUNNING and j, "running")
    assert running.attempts == 1 and running.started >= running.created and running.finished is None
    gate.set()
    done = jobs.wait("demo", job.id, timeout=10)
    assert (done.state, done.progress, done.message, done.error) == (JobState.SUCCESS, 100, "", None)
    assert (done.result, done.affected_ids, done.target_ids) == ({"size": 20}, ["vol-1"], ["vol-1"])
    # The work's arguments go with the work: a finished record keeps no user data.
    assert done.finished >= done.started and running.arguments == {"size": 20} and done.arguments == {}


def test_failures_are_recorded_as_messages_never_tracebacks(jobs: JobStore, runners) -> None:
    def refuse(job: Job) -> None:
        raise Conflict("The volume 'vol-1' is in use.", kind="volume", reason="in_use")

    def crash(job: Job) -> None:
        raise ValueError("secret internals")

    runners({"refuse": refuse, "crash": crash})
    refused, crashed, unknown = (jobs.submit("demo", JobSpec(op, "volume")) for op in ("refuse", "crash", "nope"))
    assert jobs.wait("demo", refused.id, 10).error == "The volume 'vol-1' is in use."
    assert jobs.wait("demo", crashed.id, 10).error == "Internal error (ValueError)."
    failed = jobs.wait("demo", unknown.id, 10)
    assert failed.state == JobState.FAILED and "nope" in failed.message


def test_inline_jobs_run_in_the_caller_and_release_their_lease(jobs: JobStore, runners, redis_client) -> None:
    caller = threading.get_ident()
    runner = runners({"make": lambda job: JobOutcome(affected_ids=("m-1",), value=threading.get_ident())})
    job, value = runner.run_inline("demo", JobSpec("make", "machine", arguments={"count": 1}))
    assert value == caller and job.state == JobState.SUCCESS and job.target_ids == ["m-1"]
    assert jobs.get("demo", job.id).state == JobState.SUCCESS
    redis_client.script_flush()  # as after a Redis restart: the scripts are loaded again
    assert runner.run_inline("demo", JobSpec("make", "machine"))[0].state == JobState.SUCCESS

    def fail(job: Job) -> None:
        raise Conflict("no", kind="machine")

    runner.register("fail", fail)
    with pytest.raises(Conflict):
        runner.run_inline("demo", JobSpec("fail", "machine"))
    assert [j.state for j in jobs.list("demo").items] == [JobState.FAILED, JobState.SUCCESS, JobState.SUCCESS]
    assert redis_client.zcard(jobs.leases) == 0 and redis_client.hlen(jobs.owners) == 0


def test_an_inline_jobs_end_carries_its_writes_and_the_callers(jobs: JobStore, runners, redis_client) -> None:
    """A mutation publishes what it made (its writes) and completes an idempotency token (``FINISHING``) in the
    round trip that records its end; a job run inline by that job's work does not take the caller's writes."""
    made: list[str] = []

    def make(job: Job) -> JobOutcome:
        write = Write(command=("SET", "t:made", "m-1"), then=lambda: made.append("made"))
        outcome = JobOutcome(value=["m-1"], writes=(write,))
        if job.arguments.get("nested"):
            runner.run_inline("demo", JobSpec("make", "machine"))
        return outcome

    runner = runners({"make": make})
    set_key = redis_client.register_script("return redis.call('SET', KEYS[1], ARGV[1])")
    finishing = FINISHING.set(
        lambda value: (
            Write(script=set_key, keys=("t:token",), args=(",".join(value),), then=lambda: made.append("token")),
        )
    )
    try:
        redis_client.script_flush()  # a script call among the writes is loaded again
        job, value = runner.run_inline("demo", JobSpec("make", "machine", arguments={"nested": True}))
    finally:
        FINISHING.reset(finishing)
    assert value == ["m-1"] and job.state == JobState.SUCCESS
    assert redis_client.get("t:made") == b"m-1" and redis_client.get("t:token") == b"m-1"
    assert sorted(made) == ["made", "made", "token"]  # the nested job's own writes, the caller's once
    assert redis_client.zcard(jobs.leases) == 0


def test_a_group_ends_when_its_children_have(jobs: JobStore, runners) -> None:
    gate = threading.Event()

    def start_machine(job: Job) -> None:
        assert gate.wait(10)
        if job.arguments["fail"]:
            raise Conflict("The machine cannot start.", kind="machine", reason="state")

    children = [JobSpec("start", "machine", (f"m{i}",), {"fail": i == 2}) for i in range(3)]
    parent, kids = jobs.submit_group("demo", JobSpec("start_system", "system", ("sys-1",)), children)
    assert jobs.get("demo", parent.id).child_ids == [k.id for k in kids]
    assert all(jobs.get("demo", k.id).parent_id == parent.id for k in kids)
    runners({"start": start_machine})
    _until(lambda: jobs.get("demo", parent.id).state == JobState.RUNNING, "the group to start")
    gate.set()
    ended = _until(lambda: (p := jobs.wait("demo", parent.id, 10)).done and p, "the group to end")
    assert (ended.state, ended.error, ended.progress) == (JobState.FAILED, "1 of 3 failed", 100)
    assert [jobs.get("demo", k.id).state for k in kids] == [JobState.SUCCESS, JobState.SUCCESS, JobState.FAILED]

    ok, _ = jobs.submit_group("demo", JobSpec("start_system", "system"), children[:2])
    assert jobs.wait("demo", ok.id, 10).state == JobState.SUCCESS
    with pytest.raises(InvalidParameter):
        jobs.submit("demo", JobSpec("start", "machine"), parent_id="01234567-89ab-7def-8123-456789abcdef")


def test_listing_pages_newest_first_per_tenant(jobs: JobStore) -> None:
    made = [jobs.create("demo", JobSpec("op", "machine", arguments={"i": i})).id for i in range(25)]
    jobs.create("other", JobSpec("op", "machine"))
    seen, cursor = [], None
    for _ in range(5):
        page = jobs.list("demo", cursor=cursor, limit=10)
        seen += [j.id for j in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == made[::-1]
    assert jobs.get("other", made[0]) is None and jobs.get("demo", "not-an-id") is None
    with pytest.raises(InvalidParameter):
        jobs.list("demo", cursor="x' or 1")
    with pytest.raises(InvalidParameter):
        jobs.list("demo", limit=0)


def test_ended_jobs_expire_and_leave_the_listing(redis_client, runners) -> None:
    short = JobStore(redis_client, JobSettings(**{**FAST, "ttl": 1}))
    runner = runners({"op": lambda job: None}, short)
    ended = [runner.run_inline("demo", JobSpec("op", "machine"))[0].id for _ in range(4)]
    _until(lambda: not any(redis_client.exists(f"cg:job:{{demo}}:{i}") for i in ended), "expiry", 10)
    assert short.list("demo", limit=2).items == []
    assert redis_client.zcard("cg:jobs:{demo}") == 0
    # Every new job also drops the two oldest expired entries, so an index nobody lists does not grow.
    ended = [runner.run_inline("demo", JobSpec("op", "machine"))[0].id for _ in range(2)]
    _until(lambda: not any(redis_client.exists(f"cg:job:{{demo}}:{i}") for i in ended), "expiry", 10)
    kept = JobStore(redis_client, JobSettings(**FAST)).create("demo", JobSpec("op", "machine"))
    assert [m.decode() for m in redis_client.zrange("cg:jobs:{demo}", 0, -1)] == [kept.id]


def test_two_runners_never_run_one_job_at_once(jobs: JobStore, runners) -> None:
    lock = threading.Lock()
    running: set[str] = set()
    runs: Counter[str] = Counter()
    overlaps: list[str] = []

    def work(job: Job) -> None:
        with lock:
            if job.id in running:
                overlaps.append(job.id)
            running.add(job.id)
            runs[job.id] += 1
        time.sleep(0.01)
        with lock:
            running.discard(job.id)

    for _ in range(2):
        runners({"work": work}, JobStore(jobs.redis, JobSettings(**{**FAST, "threads": 3})))
    submitted = [jobs.submit("demo", JobSpec("work", "machine")) for _ in range(30)]
    assert all(jobs.wait("demo", j.id, 10).state == JobState.SUCCESS for j in submitted)
    assert overlaps == [] and set(runs.values()) == {1} and len(runs) == 30


def test_a_job_whose_runner_stopped_runs_again_until_its_attempts_run_out(jobs: JobStore, runners) -> None:
    # A runner that claims jobs and then never renews them is what a dead worker looks like from Redis.
    first = jobs.submit("demo", JobSpec("op", "machine"))
    assert jobs.claim("dead-runner", 1) == [(f"{first.id}:demo", 1)]
    runner = runners({"op": lambda job: {"attempt": job.attempts}})
    assert jobs.wait("demo", first.id, 10).result == {"attempt": 2}

    runner.stop()
    once = JobStore(jobs.redis, JobSettings(**{**FAST, "max_attempts": 1}))
    doomed = once.submit("demo", JobSpec("op", "machine"))
    assert once.claim("dead-runner", 1) == [(f"{doomed.id}:demo", 1)]
    runners({"op": lambda job: None}, once)
    failed = once.wait("demo", doomed.id, 10)
    assert (failed.state, failed.error) == (JobState.FAILED, "The operation was interrupted 1 times.")


def test_a_deferred_job_is_due_again_later_on_the_attempt_it_was_on(jobs: JobStore) -> None:
    later, soon = jobs.submit("demo", JobSpec("op", "machine")), jobs.submit("demo", JobSpec("op", "machine"))
    claimed = jobs.claim("runner-1", 2)
    assert claimed == [(f"{later.id}:demo", 1), (f"{soon.id}:demo", 1)]
    for job in (later, soon):
        job = jobs.get("demo", job.id)
        assert jobs.start(job, 1) == "ok"
    first_start = jobs.get("demo", later.id).started
    assert jobs.defer(later, 1, Deferral(60.0, {"at": 1}), "runner-1")
    assert not jobs.defer(later, 1, Deferral(60.0, {"at": 2}), "runner-1")  # deferred already: its lease went
    assert jobs.claim("runner-2", 5) == []  # due in a minute
    assert 50.0 < jobs.due_in(120.0) <= 60.0 and jobs.due_in(5.0) == 5.0
    assert jobs.get("demo", later.id).state == JobState.RUNNING  # still under way, as far as its caller can tell

    assert jobs.defer(soon, 1, Deferral(0.05, {"at": 1}), "runner-1")
    assert _until(lambda: jobs.claim("runner-2", 5), "the soon job to fall due") == [(f"{soon.id}:demo", 1)]
    resumed = jobs.get("demo", soon.id)
    assert resumed.arguments == {"at": 1} and jobs.start(resumed, 1) == "ok"
    assert jobs.finish(resumed, 1, outcome=JobOutcome(result={"done": True}), release="runner-2")
    assert jobs.get("demo", later.id).started == first_start


def test_a_job_that_waits_holds_no_runner_and_its_waits_are_not_attempts(redis_client, runners) -> None:
    """One runner thread, a job that waits five times and one submitted after it: the second runs meanwhile."""
    single = JobStore(redis_client, JobSettings(**{**FAST, "threads": 1, "max_attempts": 1}))
    quick_done = threading.Event()
    seen: list[tuple[int, int, float]] = []

    def wait(job: Job) -> Any:
        looks = job.arguments.get("looks", 0) + 1
        seen.append((looks, job.attempts, job.started))
        if looks < 5 or not quick_done.is_set():
            return Deferral(0.05, {**job.arguments, "looks": looks})
        return {"looks": looks}

    def quick(job: Job) -> Any:
        quick_done.set()
        return {"quick": True}

    runners({"wait": wait, "quick": quick}, single)
    waiting = single.submit("demo", JobSpec("wait", "machine", arguments={"looks": 0}))
    _until(lambda: len(seen) >= 2, "the waiting job to have looked twice")
    fast = single.submit("demo", JobSpec("quick", "machine"))
    assert single.wait("demo", fast.id, 10).state == JobState.SUCCESS
    done = single.wait("demo", waiting.id, 15)
    assert done.state == JobState.SUCCESS and done.result["looks"] >= 5
    assert [s[0] for s in seen] == list(range(1, len(seen) + 1))  # each look went on from the last one's arguments
    assert {s[1] for s in seen} == {1} and len({s[2] for s in seen}) == 1  # one attempt, one start time


def test_a_stopping_runner_hands_its_running_job_back_at_once(redis_client, runners) -> None:
    # A lease far longer than the wait: only a hand-back lets the second runner take the job in time.
    slow_lease = JobStore(redis_client, JobSettings(**{**FAST, "lease": 60.0, "heartbeat": 5.0}))
    started, release = threading.Event(), threading.Event()

    def hold(job: Job) -> dict[str, Any]:
        started.set()
        release.wait(10)
        return {"attempt": job.attempts}

    job = slow_lease.submit("demo", JobSpec("op", "machine"))
    first = runners({"op": hold}, slow_lease)
    assert started.wait(10)
    first.stop(grace=0.0)
    runners({"op": lambda job: {"attempt": job.attempts}}, slow_lease)
    ended = slow_lease.wait("demo", job.id, 10)
    release.set()
    assert (ended.state, ended.result) == (JobState.SUCCESS, {"attempt": 2})


def test_a_takeover_reads_the_checkpoints_its_first_attempt_noted(jobs: JobStore, runners, redis_client) -> None:
    # A backend notes its cloud's own job id on the core job; whichever runner takes the job over polls that
    # job instead of acting again. The first attempt is a runner that claims both jobs, notes on one, and dies.
    notes = Checkpoints(redis_client)
    job = jobs.submit("demo", JobSpec("act", "volume"))
    other = jobs.submit("demo", JobSpec("act", "volume"))
    assert jobs.claim("dead-runner", 2) == [(f"{job.id}:demo", 1), (f"{other.id}:demo", 1)]
    _as_job(job, lambda: notes.put("attachVolume:vol-1", "cloud-job-7"))
    assert notes.get("attachVolume:vol-1") is None  # outside any job: nothing

    runners({"act": lambda job: (job.attempts, notes.get("attachVolume:vol-1"))})
    assert jobs.wait("demo", job.id, 10).result == [2, "cloud-job-7"]
    assert jobs.wait("demo", other.id, 10).result == [2, None]  # another job never sees it
    # A job record that expired stays expired: a late note makes no record without an expiry.
    gone = jobs.submit("demo", JobSpec("act", "volume"))
    redis_client.delete(f"cg:job:{{demo}}:{gone.id}")
    _as_job(gone, lambda: notes.put("attachVolume:vol-1", "late"))
    assert not redis_client.exists(f"cg:job:{{demo}}:{gone.id}")


def _as_job(job: Job, work: Callable[[], Any]) -> None:
    """Do ``work`` as a handler running ``job`` would."""
    token = CURRENT_JOB.set(job)
    try:
        work()
    finally:
        CURRENT_JOB.reset(token)


def test_a_job_that_outlives_the_run_bound_fails_and_is_not_run_again(redis_client, runners) -> None:
    bounded = JobStore(redis_client, JobSettings(**{**FAST, "run_bound": 0.3}))
    runs: list[int] = []
    release = threading.Event()

    def hang(job: Job) -> str:
        runs.append(job.attempts)
        release.wait(10)
        return "late"

    runners({"hang": hang}, bounded)
    job = bounded.submit("demo", JobSpec("hang", "machine"))
    failed = _until(lambda: (j := bounded.get("demo", job.id)).done and j, "the bound")
    assert failed.error == "The operation did not end within 0.3 seconds."
    release.set()
    # Past a whole lease: the job was neither queued again nor overwritten by the late answer.
    time.sleep(FAST["lease"] + 2 * FAST["heartbeat"])
    assert runs == [1] and bounded.get("demo", job.id).error == failed.error
    assert redis_client.zcard(bounded.ready) == 0 and redis_client.zcard(bounded.leases) == 0


def test_wait_returns_at_its_bound(redis_client) -> None:
    bounded = JobStore(redis_client, JobSettings(**{**FAST, "wait_bound": 0.3}))
    job = bounded.submit("demo", JobSpec("op", "machine"))  # no runner: it stays queued
    answers: list[Job | None] = []
    waiter = threading.Thread(target=lambda: answers.append(bounded.wait("demo", job.id, timeout=3600)))
    began = time.monotonic()
    waiter.start()
    waiter.join(30)
    assert not waiter.is_alive() and answers[0].state == JobState.QUEUED
    assert time.monotonic() - began >= 0.3  # it did wait for the bound, not give up at once
    assert bounded.wait("demo", "01234567-89ab-7def-8123-456789abcdef", 1) is None


_DYING_RUNNER = """
import os, sys, time
import redis
from translator.job_runner import JobRunner
from translator.jobs import JobSettings, JobStore

client = redis.Redis.from_url(sys.argv[1])

def slow(job):
    client.rpush("test:runs", f"{job.attempts}:{os.getpid()}")
    time.sleep(60 if job.attempts == 1 else 0)

JobRunner(JobStore(client, JobSettings(**eval(sys.argv[2]))), {"slow": slow}).start()
time.sleep(120)
"""


def test_a_runner_killed_mid_job_leaves_it_to_another(jobs: JobStore, runners, redis_server, redis_client) -> None:
    child = subprocess.Popen([sys.executable, "-c", _DYING_RUNNER, redis_server.url, repr(FAST)], cwd=REPO)
    try:
        job = jobs.submit("demo", JobSpec("slow", "machine"))
        _until(lambda: redis_client.llen("test:runs"), "the child runner to take the job")
        assert jobs.get("demo", job.id).state == JobState.RUNNING
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        def slow(job: Job) -> None:
            redis_client.rpush("test:runs", f"{job.attempts}:{os.getpid()}")

        runners({"slow": slow})
        done = jobs.wait("demo", job.id, timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    assert done.state == JobState.SUCCESS and done.attempts == 2
    assert [r.decode() for r in redis_client.lrange("test:runs", 0, -1)] == [f"1:{child.pid}", f"2:{os.getpid()}"]


def test_settings_refuse_a_heartbeat_that_cannot_keep_a_lease() -> None:
    with pytest.raises(ValueError):
        JobSettings(lease=1.0, heartbeat=0.8)


def test_redis_down_is_an_error_for_the_caller_and_the_runner_still_stops() -> None:
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    store = JobStore(down, JobSettings(**FAST))
    runner = JobRunner(store, {"op": lambda job: None})
    runner.start()
    try:
        with pytest.raises(redis.ConnectionError):
            runner.run_inline("demo", JobSpec("op", "machine"))
    finally:
        runner.stop()


def test_operation_arguments_survive_json_as_the_same_objects() -> None:
    spec = MachineSpec(
        image_id="img",
        flavor_id="small",
        security_group_ids=("sg-a", "sg-b"),
        block_devices=(BlockDevice(device="/dev/vdb", size_gb=3, snapshot_id="snap"),),
        tags=(("Name", "web"),),
    )
    args = [spec, MachineAction.STOP, True, None, {"k": "v"}, [Rule(direction="ingress", protocol="tcp")], ["x"]]
    assert arguments.decode(orjson.loads(orjson.dumps(arguments.encode(args)))) == args
    with pytest.raises(ValueError):
        arguments.decode({"$dc": "Popen", "v": {}})
    with pytest.raises(TypeError):
        arguments.encode(object())


def _translator_runtime(url: str):
    config = parse(
        {
            "gateway": {"redis_url": url},
            "translator": {"job_lease": 1.0},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0}},
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}},
        }
    )
    return build_runtime(config, url)


def _following_runtime(url: str, boot_delay: float, **translator: Any):
    """One runner thread; machines boot for ``boot_delay`` seconds."""
    config = parse(
        {
            "gateway": {"redis_url": url},
            "translator": {"job_lease": 1.0, "job_threads": 1, **translator},
            "backends": {"sim": {"driver": "simulator", "boot_delay": boot_delay}},
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}},
        }
    )
    return build_runtime(config, url)


def _launch_spec(t: Any) -> MachineSpec:
    image = t.list(DEMO, "image")[0]
    flavor = next(f for f in t.list(DEMO, "flavor") if f.name == "t3.micro")
    return MachineSpec(image_id=image.id, flavor_id=flavor.id)


def test_followed_launches_wait_side_by_side_on_one_runner_thread(redis_server, redis_client) -> None:
    """CIMI's 202 jobs follow their machines to running, then stopped: while they boot, each job's looks leave the
    thread free, so every one of them is under way before any ends."""
    rt = _following_runtime(redis_server.url, boot_delay=3.0)
    try:
        t = rt.translator
        t.start_jobs()
        spec = _launch_spec(t)
        goal = Goal("machine", (Step(("running",)), Step(("stopped",), act=MachineAction.STOP.value)))
        followed = [t.follow(DEMO, "create", goal, lambda: t.create_machines(DEMO, spec))[0] for _ in range(3)]
        looked = _until(
            lambda: (jobs := [t.get_job(DEMO, j.id) for j in followed]) and all(j.message for j in jobs) and jobs,
            "every followed job to have looked at its machine",
        )
        assert all(j.state == JobState.RUNNING for j in looked)  # none had to end for the others to start
        ended = [t.wait_job(DEMO, j.id, 20) for j in followed]
        assert [e.state for e in ended] == [JobState.SUCCESS] * 3 and all(e.attempts == 1 for e in ended)
        machines = t.get_many(DEMO, "machine", [e.affected_ids[0] for e in ended])
        assert [m.state for m in machines] == [MachineState.STOPPED] * 3
    finally:
        rt.close()


def test_a_followed_job_gives_up_at_its_run_bound_across_its_looks(redis_server, redis_client) -> None:
    rt = _following_runtime(redis_server.url, boot_delay=60.0, job_run_bound=2.0)
    try:
        t = rt.translator
        t.start_jobs()
        spec = _launch_spec(t)
        job, _ = t.follow(DEMO, "create", Goal("machine", (Step(("running",)),)), lambda: t.create_machines(DEMO, spec))
        ended = _until(lambda: (j := t.get_job(DEMO, job.id)).state in (JobState.SUCCESS, JobState.FAILED) and j, "end")
        assert (ended.state, ended.error) == (JobState.FAILED, "The machine did not reach running in time.")
    finally:
        rt.close()


def test_a_mutation_queued_by_one_worker_is_run_by_another_from_its_record(redis_server, redis_client) -> None:
    submitter, worker = _translator_runtime(redis_server.url), _translator_runtime(redis_server.url)
    try:
        t = submitter.translator
        image = t.list(DEMO, "image")[0]
        flavor = next(f for f in t.list(DEMO, "flavor") if f.name == "t3.micro")
        account = t.account(DEMO)
        native = t.routing.native_refs(DEMO, account, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=2))
        job = t.mutator.submit(DEMO, account, "create_machines", "machine", [], native)
        assert t.get_job(DEMO, job.id).state == JobState.QUEUED
        worker.translator.start_jobs()  # only this one runs jobs: the submitter's runner never started
        done = t.wait_job(DEMO, job.id, timeout=10)
        assert done.state == JobState.SUCCESS and len(done.affected_ids) == 2
        assert sorted(m.id for m in t.list(DEMO, "machine")) == sorted(done.affected_ids) == sorted(done.target_ids)
        with pytest.raises(NotFound):
            t.get_job(Principal(user="o", tenant="other", role="admin"), job.id)
    finally:
        submitter.close()
        worker.close()


def test_a_dead_workers_create_runs_again_only_with_an_idempotency_key(redis_server, redis_client) -> None:
    """Inline jobs whose worker died (their lease recorded, never ended) are taken over: a create the cloud can
    know again by its key runs again and finds the first; one without a key fails instead of making another."""
    dead, worker = _translator_runtime(redis_server.url), _translator_runtime(redis_server.url)
    try:
        t = dead.translator
        account = t.account(DEMO)
        image = t.list(DEMO, "image")[0]
        flavor = next(f for f in t.list(DEMO, "flavor") if f.name == "t3.micro")
        keyed = t.routing.native_refs(
            DEMO, account, MachineSpec(image_id=image.id, flavor_id=flavor.id, idempotency_key="k" * 32)
        )
        # What a worker killed mid-call leaves: a running job leased to an owner that will never renew it.
        for op, kind, args in (("create_machines", "machine", (keyed,)), ("allocate_address", "address", ())):
            spec = t.mutator._spec(DEMO, account, op, kind, [], args)
            job = t.runner.jobs.create_leased("demo", spec, "gone-host/1")
            if op == "create_machines":
                t.mutator._call(account, op, args)  # the cloud had made the machine before the worker died
                machine_job = job
            else:
                address_job = job
        worker.translator.start_jobs()
        machine_done = _until(lambda: _ended(t, machine_job.id), "the keyed create to end")
        address_done = _until(lambda: _ended(t, address_job.id), "the unkeyed create to end")
        assert machine_done.state == JobState.SUCCESS and len(t.list(DEMO, "machine")) == 1
        assert address_done.state == JobState.FAILED and "not repeated" in (address_done.message or "")
        assert t.list(DEMO, "address") == []
    finally:
        dead.close()
        worker.close()


def _ended(t: Any, job_id: str) -> Job | None:
    job = t.get_job(DEMO, job_id)
    return job if job.state in (JobState.SUCCESS, JobState.FAILED) else None


@pytest.mark.parametrize("key", ["job_run_bound", "job_wait_bound"])
def test_config_keeps_job_bounds_below_the_worker_timeout(key: str) -> None:
    base = {"backends": {"sim": {"driver": "simulator"}}, "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}}}
    assert getattr(parse({**base, "translator": {key: 60}}).translator, key) == 60
    with pytest.raises(ConfigError) as refused:
        parse({**base, "translator": {key: 120}})
    assert f"translator.{key}" in str(refused.value)
