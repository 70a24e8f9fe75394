"""Redis Cluster: the gateway on three masters with a replica each (tests/cluster/redis_cluster.py).

- The EC2 client suites' lifecycle tests, and a sample of the rest of the gateway's behaviour (jobs, idempotent
  launches, tags, paged listings, CIMI and OCCI collections, OCCI mixins in the document store), run as they are
  against a gateway on the cluster: a nested pytest with ``CLOUDGATE_REDIS_URL`` naming it, which every gateway
  those tests start reads (gateway/config.py). They pass, and no gateway log shows a Redis Cluster failure
  (``CROSSSLOT``, keys of several slots, a command the cluster client refuses, a 503 for Redis).
- What the HTTP tests do not reach in-process: a group of jobs written in one transaction, and the pruning of
  forgotten ids (a transaction watching a listing index), on the cluster.
- Promised writes wait for a replica of the master that took them: each master a write pipeline reaches gets
  one ``WAIT`` (counted in its ``INFO commandstats``), the others none; the rows are on the replicas when the
  call returns; a transaction's write is followed by a write and ``WAIT`` on its master; with that master's
  replica SIGSTOPped the ``WAIT`` falls short and is counted; after a manual failover the write redis-py sends
  again to the new master is waited for there.
- ``redis-cluster://`` URLs are validated with the config (and from ``CLOUDGATE_REDIS_URL``), and ``cloudgate check``
  reaches the cluster, or says in one line that it cannot.
- A master SIGKILLed under a stream of launches: its replica is promoted; meanwhile every failed launch is a
  503 with ``Retry-After`` (never a 500, never a hang), then launches succeed again, and every launch that was
  acknowledged is still there. The failover time and the failed launches are printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError
from gateway_process import GatewayProcess, write_config
from netutil import free_port
from prometheus_client import REGISTRY
from redis.cluster import RedisCluster
from redis_cluster import LocalRedisCluster, Server

from gateway.app import connect_redis
from gateway.config import ConfigError, load, parse
from gateway.redis_cluster import parse_url
from translator.durability import Durability, DurabilitySettings
from translator.jobs import JobSettings, JobSpec, JobStore
from translator.listing_index import tags_key
from translator.store import Store

REPO = Path(__file__).resolve().parents[2]
#: Existing tests run as they are on the cluster: the EC2 client suites' lifecycles (boto3 with its waiters,
#: paginators and resource API; libcloud's EC2 driver), then a sample of everything else that writes to Redis.
#: Each group runs on an emptied cluster (their tests expect their module's own database: CIMI's queries list
#: every machine of the tenant).
SUITES = [
    [
        "tests/frontends/ec2/test_ec2_instances.py",  # lifecycle, ClientToken, paging 5 over 12, images, key pairs
        "tests/clients/test_libcloud_client.py",  # node and volume lifecycles
        "tests/frontends/ec2/test_ec2_tags.py",
    ],
    [
        "tests/frontends/cimi/test_cimi_machines.py::test_an_idempotency_key_makes_one_machine",  # jobs (202)
        "tests/frontends/cimi/test_cimi_machines.py::test_actions_follow_the_backend",
        "tests/frontends/cimi/test_cimi_machines.py::test_queries_on_a_collection",
        "tests/frontends/cimi/test_cimi_machines.py::test_sub_collections",
        "tests/frontends/occi/test_occi_scenario.py::test_query_interface_matches_the_specification",
        "tests/frontends/occi/test_occi_scenario.py::test_user_mixins_tag_and_filter",  # the document store's scripts
    ],
]
SUITE_BOUND = 400.0
#: what a gateway logs when the cluster refused what it was asked (or a request got a 503 for Redis)
CLUSTER_FAILURE = re.compile(
    r"CROSSSLOT|same (key )?slot|is blocked when running redis|redis/cluster\.py|redis\.exceptions|Redis failed"
    r"|Redis Cluster:"
)
#: what would be a bug rather than a fault of the cluster: keys of several slots, a command the client refuses
MISUSE = re.compile(r"CROSSSLOT|same (key )?slot|is blocked when running redis|No way to dispatch|AttributeError")

#: the failover check: client threads, launches acknowledged before the kill, after the failover, and a bound
THREADS = 4
BEFORE = 20
AFTER = 20
LOAD_BOUND = 90.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """One cluster for the module's tests that leave it whole (each writes keys of its own)."""
    nodes = LocalRedisCluster(tmp_path_factory.mktemp("cluster"))
    yield nodes
    nodes.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalRedisCluster]:
    """A cluster for a test that kills part of it."""
    nodes = LocalRedisCluster(tmp_path / "cluster")
    yield nodes
    nodes.stop()


BASE = {
    "backends": {"sim": {"driver": "simulator"}},
    "tenants": {"t": {"regions": {"r": {"backend": "sim", "zones": ["r-a"]}}}},
}


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("redis-cluster://", "not HOST:PORT"),
        ("redis-cluster://10.0.0.1", "not HOST:PORT"),
        ("redis-cluster://10.0.0.1:7000,10.0.0.2", "'10.0.0.2' is not HOST:PORT"),
        ("redis-cluster://10.0.0.1:70000", "no valid port"),
        ("redis-cluster://10.0.0.1:7000/2", "no database"),
        ("redis-cluster://10.0.0.1:7000?timeout=1", "no query"),
        ("redis-cluster://alice@10.0.0.1:7000", "without a password"),
        ("redis+cluster://10.0.0.1:7000", "must be a redis://"),
    ],
)
def test_a_bad_cluster_url_is_a_config_error_naming_the_key(url: str, why: str, monkeypatch: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse({**BASE, "gateway": {"redis_url": url}})
    assert excinfo.value.key == "gateway.redis_url" and why in excinfo.value.message
    monkeypatch.setenv("CLOUDGATE_REDIS_URL", url)
    with pytest.raises(ConfigError) as excinfo:
        parse(BASE)
    assert excinfo.value.key == "CLOUDGATE_REDIS_URL" and why in excinfo.value.message


def test_the_cluster_example_and_its_url_forms(monkeypatch: Any) -> None:
    monkeypatch.delenv("CLOUDGATE_REDIS_URL", raising=False)
    config = load(REPO / "conf" / "examples" / "redis-cluster.toml")
    assert parse_url(config.gateway.redis_url).nodes == (("10.0.0.11", 7000), ("10.0.0.12", 7000), ("10.0.0.13", 7000))
    secret = parse_url("redis-cluster://op:p%40ss@[::1]:7000,node-2:7001/")
    assert (secret.username, secret.password, secret.nodes) == ("op", "p@ss", (("::1", 7000), ("node-2", 7001)))
    shown = repr(parse({**BASE, "gateway": {"redis_url": "redis-cluster://:hunter2@10.0.0.1:7000"}}).gateway)
    assert "hunter2" not in shown and "redis-cluster://:***@10.0.0.1:7000" in shown


def test_cloudgate_check_reaches_the_cluster_or_says_it_cannot(cluster: LocalRedisCluster, tmp_path: Path) -> None:
    def check(url: str) -> subprocess.CompletedProcess[str]:
        config = write_config(tmp_path / "check.toml", url)
        env = {k: v for k, v in os.environ.items() if k != "CLOUDGATE_REDIS_URL"}
        return subprocess.run(
            [sys.executable, "-m", "gateway.cli", "check", "--config", str(config)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    reached = check(cluster.url)
    assert reached.returncode == 0, reached.stdout + reached.stderr
    assert f"ok    redis {cluster.url}" in reached.stdout
    down = free_port()
    refused = check(f"redis-cluster://127.0.0.1:{down}")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
    line = refused.stderr.strip().splitlines()[-1]  # after the log's lines
    assert line.startswith(f"cloudgate: cannot reach Redis at redis-cluster://127.0.0.1:{down}: "), line


def _cluster_failures(logs: list[Path]) -> list[str]:
    lines = [(log.name, line) for log in logs for line in log.read_text().splitlines()]
    return [f"{name}: {line}" for name, line in lines if CLUSTER_FAILURE.search(line)]


def test_the_client_suites_lifecycles_and_a_sample_of_the_gateway_pass_on_a_cluster(
    cluster: LocalRedisCluster, tmp_path: Path
) -> None:
    env = {**os.environ, "CLOUDGATE_REDIS_URL": cluster.url}
    for number, suite in enumerate(SUITES):
        with cluster.client() as client:
            client.flushall(target_nodes=RedisCluster.PRIMARIES)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-x",
             "--basetemp", str(tmp_path / f"suite{number}"), *suite],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=SUITE_BOUND,
        )  # fmt: skip
        summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
        print(f"on the cluster: {summary}")
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    logs = sorted(tmp_path.rglob("*.log"))
    assert logs, "the suite started no gateway"
    assert any(cluster.url in log.read_text() for log in logs), "the gateways did not use the cluster"
    failures = _cluster_failures(logs)
    assert not failures, "\n".join(failures[:20])


def test_a_job_group_and_the_pruning_of_forgotten_ids_work_on_a_cluster(cluster: LocalRedisCluster) -> None:
    client = connect_redis(cluster.url)
    try:
        assert isinstance(client, RedisCluster)
        jobs = JobStore(client, JobSettings())
        # A fresh cluster has no script loaded: the group's transaction meets NOSCRIPT, loads it and writes again.
        parent, kids = jobs.submit_group("t1", JobSpec("group", "machine"), [JobSpec("noop", "machine")] * 3)
        record = jobs.get("t1", parent.id)
        assert record is not None and sorted(record.child_ids) == sorted(k.id for k in kids)
        assert all(jobs.get("t1", k.id) is not None for k in kids)

        store = Store(client)
        account, kind = "t1/r1", "machine"
        gids = [str(uuid.uuid4()) for _ in range(3)]
        store.remember([(g, account, kind, f"n-{i}") for i, g in enumerate(gids)])
        store.update_tags(account, kind, gids[0], {"Name": "gone"}, {})
        generation = store.index.generation(account, kind)
        gone = store.reconcile(account, kind, generation, gids[1:], grace=0.0)
        assert gone == [gids[0]]
        assert store.resolve([gids[0]]) == [None]  # read from Redis: the worker's memo forgot it too
        assert store.resolve(gids[1:]) == [(account, kind, "n-1"), (account, kind, "n-2")]
        assert store.tags_of({(account, kind): gids}) == {}
    finally:
        client.close()


def _waits(server: Server) -> int:
    with server.client() as c:
        return int(c.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))


def _replicates(server: Server, master: Server) -> bool:
    with server.client() as c:
        info = c.info("replication")
    return info.get("master_port") == master.port and info.get("master_link_status") == "up"


def _short() -> float:
    return REGISTRY.get_sample_value("cloudgate_redis_wait_short_total") or 0.0


def test_promised_writes_wait_for_a_replica_of_the_master_that_took_them(cluster: LocalRedisCluster) -> None:
    client = connect_redis(cluster.url)
    try:
        assert isinstance(client, RedisCluster)
        store = Store(client, Durability(client, DurabilitySettings(replicas=1, timeout_ms=50, recheck=0.0)))
        servers = {s.name: s for s in cluster.servers}

        def master_of(key: str) -> Server:
            return servers[client.get_node_from_key(key).name]

        account, kind = f"w{uuid.uuid4().hex[:8]}/r1", "machine"
        # One id-map write: two hashes (cg:ids, cg:short) and the account's known ids, on one to three masters.
        takers = {master_of(k).name for k in ("cg:ids", "cg:short", f"cg:known:{{{account}|{kind}}}")}
        before = {name: _waits(s) for name, s in servers.items()}
        gids = [str(uuid.uuid4()) for _ in range(5)]
        replica = cluster.replica_of(master_of("cg:ids"))
        with replica.client() as on_replica:
            on_replica.execute_command("READONLY")
            for i, gid in enumerate(gids):
                store.remember([(gid, account, kind, f"n-{i}")])
                assert on_replica.hget("cg:ids", gid) is not None  # acknowledged: already on the replica
        sent = {name: _waits(s) - before[name] for name, s in servers.items()}
        assert sent == {name: len(gids) if name in takers else 0 for name in servers}, (takers, sent)

        # A transaction cannot carry WAIT: a write in its slot and WAIT follow, on the master that took it.
        tags = master_of(tags_key(account, kind))
        waits = _waits(tags)
        store.update_tags(account, kind, gids[0], {"Name": "kept"}, {})
        assert _waits(tags) == waits + 1
        assert store.tags_of({(account, kind): gids[:1]}) == {gids[0]: {"Name": "kept"}}

        # The replica of cg:ids' master stops answering (well within the cluster's node timeout): that master's
        # WAIT falls short and is counted; the write is made all the same.
        short = _short()
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            late = str(uuid.uuid4())
            store.remember([(late, account, kind, "n-late")])
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)
        assert _short() == short + 1
        assert store.resolve([late]) == [(account, kind, "n-late")]

        # A manual failover: the replica takes over and its master becomes its replica. The next write to that slot
        # meets MOVED and redis-py sends it again to the new master; the WAIT that went to the old one cannot
        # count, so the new master gets a write of the slot and a WAIT of its own.
        old = master_of("cg:ids")
        with replica.client() as heir:
            heir.execute_command("CLUSTER", "FAILOVER")
        deadline = time.monotonic() + 30
        _until(lambda: cluster.is_master(replica) and _replicates(old, replica), "no failover", deadline)
        _until(lambda: _served(cluster), "the cluster did not settle", deadline)
        waits = _waits(replica)
        moved = str(uuid.uuid4())
        store.remember([(moved, account, kind, "n-moved")])
        assert _waits(replica) == waits + 1
        with old.client() as on_old:
            on_old.execute_command("READONLY")
            assert on_old.hget("cg:ids", moved) is not None
    finally:
        client.close()


@dataclass
class Stream:
    """What the launching threads saw, shared by them."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    acknowledged: dict[str, str] = field(default_factory=dict)  # ClientToken -> instance id
    statuses: Counter[int] = field(default_factory=Counter)
    failed: list[tuple[float, int, str, str | None]] = field(default_factory=list)  # when, status, code, Retry-After
    no_answer: list[str] = field(default_factory=list)
    after_failover: int = 0
    failover_done: bool = False


def _launching(node: GatewayProcess, image: str, stream: Stream) -> None:
    ec2 = node.client(connect_timeout=2, read_timeout=30)
    while not stream.stop.is_set():
        token = f"fo-{uuid.uuid4().hex}"
        try:
            answer = ec2.run_instances(
                ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=token
            )
        except ClientError as exc:
            meta = exc.response["ResponseMetadata"]
            with stream.lock:
                stream.statuses[meta["HTTPStatusCode"]] += 1
                stream.failed.append(
                    (time.monotonic(), meta["HTTPStatusCode"], exc.response["Error"]["Code"],
                     meta["HTTPHeaders"].get("retry-after"))
                )  # fmt: skip
            time.sleep(0.05)
            continue
        except BotoCoreError as exc:  # no answer at all: a hang or a dropped connection
            with stream.lock:
                stream.no_answer.append(repr(exc))
            continue
        with stream.lock:
            stream.statuses[200] += 1
            stream.acknowledged[token] = answer["Instances"][0]["InstanceId"]
            if stream.failover_done:
                stream.after_failover += 1


def _until(ready: Any, what: str, deadline: float) -> None:
    while not ready():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_master_failover_under_launches_is_503s_then_service_and_keeps_acknowledged_launches(
    own_cluster: LocalRedisCluster, tmp_path: Path
) -> None:
    cluster = own_cluster
    node = GatewayProcess(write_config(tmp_path / "gw.toml", cluster.url, backend_extra="max_machines = 5000"))
    try:
        ec2 = node.client()
        (image,) = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu-24.04"]}])["Images"]
        # The victim serves the simulator account's slot: every launch needs it while it is gone.
        with cluster.client() as probe:
            slot = probe.keyslot("{demo/local-1}")
            victim_port = probe.nodes_manager.get_node_from_slot(slot).port
        (victim,) = [s for s in cluster.servers if s.port == victim_port]
        heir = cluster.replica_of(victim)
        stream = Stream()
        threads = [threading.Thread(target=_launching, args=(node, image["ImageId"], stream)) for _ in range(THREADS)]
        deadline = time.monotonic() + LOAD_BOUND
        for thread in threads:
            thread.start()
        try:
            _until(lambda: len(stream.acknowledged) >= BEFORE, "no launches before the kill", deadline)
            waited = sum(_waits(s) for s in cluster.servers if cluster.is_master(s))
            killed = time.monotonic()
            victim.kill()
            _until(lambda: cluster.is_master(heir) and _served(cluster), "the replica was not promoted", deadline)
            failover = time.monotonic() - killed
            with stream.lock:
                stream.failover_done = True
            _until(lambda: stream.after_failover >= AFTER, "launches did not resume after the failover", deadline)
            recovered = time.monotonic() - killed
            _until(lambda: _ready(node), "/readyz did not answer 200 again", deadline)
        finally:
            stream.stop.set()
            for thread in threads:
                thread.join(60)
        failed = [f for f in stream.failed if f[0] >= killed]
        print(
            f"failover: replica promoted {failover:.2f}s after the kill, launches served again within "
            f"{recovered:.2f}s; {len(stream.acknowledged)} launches acknowledged, {len(failed)} failed during the "
            f"failover (statuses {dict(stream.statuses)}), {len(stream.no_answer)} unanswered"
        )
        assert not stream.no_answer, stream.no_answer[:5]
        assert waited >= BEFORE, f"{waited} WAITs on the masters for {BEFORE}+ acknowledged launches"
        assert set(stream.statuses) <= {200, 503}, dict(stream.statuses)
        assert all(code in ("ServiceUnavailable", "Unavailable") and wait for _, _, code, wait in stream.failed), (
            stream.failed[:5]
        )

        # Every acknowledged launch is still there (without WAIT a write the master acknowledged but had not yet
        # sent its replica would be lost with it; each master that took a launch's id map, job or token record
        # had a replica acknowledge it before the client heard of it).
        ids = sorted(stream.acknowledged.values())
        found: set[str] = set()
        for start in range(0, len(ids), 200):
            answer = ec2.describe_instances(InstanceIds=ids[start : start + 200])
            found |= {i["InstanceId"] for r in answer["Reservations"] for i in r["Instances"]}
        lost = sorted(set(ids) - found)
        print(f"acknowledged launches readable after the failover: {len(found)} of {len(ids)}")
        assert not lost, f"{len(lost)} acknowledged launches lost: {lost[:5]}"
    finally:
        node.stop()
    # Faults of the lost master are logged (with the jobs they failed); nothing the cluster refused as misuse is.
    misuse = [line for line in node.log.read_text().splitlines() if MISUSE.search(line)]
    assert not misuse, misuse[:20]


def _ready(node: GatewayProcess) -> bool:
    return requests.get(f"{node.url}/readyz", timeout=10).status_code == 200


def _served(cluster: LocalRedisCluster) -> bool:
    """Every slot has a master that answers (asked of the live nodes)."""
    try:
        cluster.wait_ok(bound=0.0)
    except AssertionError:
        return False
    return True
