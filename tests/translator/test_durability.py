"""WAIT after the writes a promise rests on: sent only while a replica is connected, in the write's own round trip.

Real servers: a master of the test's own and, where a replica is wanted, a second redis-server replicating it.
What was sent is read from the master's ``INFO commandstats``.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client import REGISTRY
from redis_process import RedisProcess

from translator.durability import Durability, DurabilitySettings
from translator.jobs import JobSettings, JobSpec, JobStore
from translator.model import JobState
from translator.store import Store

SYNC = ("--repl-diskless-sync-delay", "0")


def _calls(client: redis.Redis, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def _short() -> float:
    return REGISTRY.get_sample_value("cloudgate_redis_wait_short_total") or 0.0


def _in_sync(master: redis.Redis, replicas: int = 1) -> None:
    deadline = time.monotonic() + 10
    while len(master.execute_command("ROLE")[2]) < replicas:
        assert time.monotonic() < deadline, "the replica did not come in sync"
        time.sleep(0.02)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "master", *SYNC)
    yield server
    server.stop()


@pytest.fixture
def replica(tmp_path: Path, master: RedisProcess) -> Iterator[RedisProcess]:
    server = RedisProcess(tmp_path / "replica", *SYNC, "--replicaof", "127.0.0.1", str(master.port))
    client = redis.Redis.from_url(master.url)
    _in_sync(client)
    client.close()
    yield server
    os.kill(server.proc.pid, signal.SIGCONT)  # a test may have stopped it
    server.stop()


def _acknowledged_once(client: redis.Redis, store: Store, row: tuple[str, str, str, str]) -> None:
    """A write the replica acknowledges within the store's timeout: a replica just in sync, on a loaded machine,
    may take longer to its first (then the store waits for none until it looks at the master again)."""
    for _ in range(20):
        waits, before = _calls(client, "wait"), _short()
        store.remember([row])
        if _calls(client, "wait") > waits and _short() == before:
            return
        time.sleep(store.durability.settings.recheck + 0.05)
    pytest.fail("the replica never acknowledged a write in time")


def _rows(n: int) -> list[tuple[str, str, str, str]]:
    return [(f"00000000-0000-0000-0000-{i:012d}", "demo/local-1", "machine", f"vm-{i}") for i in range(n)]


def test_a_single_server_gets_no_wait_at_all(master: RedisProcess) -> None:
    client = redis.Redis.from_url(master.url)
    store = Store(client)
    for row in _rows(20):
        store.remember([row])
    store.update_tags("demo/local-1", "machine", _rows(1)[0][0], {"k": "v"}, {})
    assert _calls(client, "wait") == 0
    assert _calls(client, "publish") == 0
    assert _calls(client, "role") == 1  # learnt once, as the worker first wrote


def test_writes_wait_for_the_replica_in_their_own_round_trip(master: RedisProcess, replica: RedisProcess) -> None:
    client = redis.Redis.from_url(master.url)
    on_replica = redis.Redis.from_url(replica.url)
    # a long wait: on a loaded machine the replica may take more than the default 100 ms, and this is about order
    store = Store(client, Durability(client, DurabilitySettings(timeout_ms=10_000)))
    rows = _rows(10)
    for gid, *_ in rows:
        store.remember([(gid, "demo/local-1", "machine", "vm")])
        assert on_replica.hget("cg:ids", gid) is not None  # acknowledged: already on the replica
    assert _calls(client, "wait") == len(rows)

    jobs = JobStore(client, JobSettings(), store.durability)
    job = jobs.create_leased("demo", JobSpec("launch", "machine"), "owner-1")
    assert jobs.finish(job, 1, release="owner-1")
    assert on_replica.hget(f"cg:job:{{demo}}:{job.id}", "state") == JobState.SUCCESS.value.encode()

    settles = _calls(client, "publish")  # scripts loaded afresh were acknowledged this way too
    store.update_tags("demo/local-1", "machine", rows[0][0], {"k": "v"}, {})  # MULTI/EXEC: WAIT follows it
    assert _calls(client, "publish") == settles + 1
    assert store.tags_of({("demo/local-1", "machine"): [rows[0][0]]}) == {rows[0][0]: {"k": "v"}}
    assert on_replica.dbsize() == client.dbsize()


def test_a_replica_that_does_not_answer_is_counted_and_not_waited_for_again(
    master: RedisProcess, replica: RedisProcess
) -> None:
    client = redis.Redis.from_url(master.url)
    store = Store(client, Durability(client, DurabilitySettings(replicas=1, timeout_ms=50, recheck=0.3)))
    rows = _rows(4)
    _acknowledged_once(client, store, rows[0])
    before = _short()
    os.kill(replica.proc.pid, signal.SIGSTOP)
    store.remember([rows[1]])  # the replica is still connected but silent: 50 ms, then on without it
    assert _short() == before + 1
    waits = _calls(client, "wait")
    store.remember([rows[2]])
    assert _calls(client, "wait") == waits  # WAIT answered 0: no more WAIT until the master is looked at again
    os.kill(replica.proc.pid, signal.SIGCONT)
    time.sleep(0.4)
    store.remember([rows[3]])  # ROLE rides along: the replica is online again
    store.remember([rows[3]])
    assert _calls(client, "wait") == waits + 1
    assert client.hget("cg:ids", rows[3][0]) is not None


def test_a_replica_that_comes_later_is_waited_for(tmp_path: Path, master: RedisProcess) -> None:
    client = redis.Redis.from_url(master.url)
    store = Store(client, Durability(client, DurabilitySettings(recheck=0.2)))
    store.remember(_rows(1))
    late = RedisProcess(tmp_path / "late", *SYNC, "--replicaof", "127.0.0.1", str(master.port))
    try:
        _in_sync(client)
        time.sleep(0.3)
        store.remember(_rows(1))  # ROLE rides along: one replica now
        store.remember(_rows(2))
        assert _calls(client, "wait") == 1
    finally:
        late.stop()


def test_zero_replicas_configured_never_asks(master: RedisProcess, replica: RedisProcess) -> None:
    client = redis.Redis.from_url(master.url)
    roles = _calls(client, "role")
    store = Store(client, Durability(client, DurabilitySettings(replicas=0)))
    store.remember(_rows(3))
    assert (_calls(client, "wait"), _calls(client, "role")) == (0, roles)
