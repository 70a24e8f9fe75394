"""Redis failover: the Sentinel master gets SIGKILL during a stream of acknowledged writes; none is lost.

A master, its replica and three sentinels (tests/cluster/redis_sentinels.py); two gateway nodes behind nginx
configured with the ``redis+sentinel://`` URL. Client threads launch instances (each with its own ClientToken)
and tag each one they launched, one call at a time, never retrying; the master is killed once enough writes are
acknowledged, and the stream goes on until writes have been acknowledged by the new master too. Then every
acknowledged launch is found by id and every acknowledged tag is on its instance, and every call that failed
got a clean 503 with ``Retry-After`` (never a 500, never a dropped connection).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import BotoCoreError, ClientError
from cluster_nodes import Nginx
from gateway_process import GatewayProcess, write_config
from redis_sentinels import SentinelSet

NODES = 2
THREADS = 4
#: acknowledged writes before the kill, and after the failover, before the stream stops
BEFORE, AFTER = 40, 40
#: seconds the sentinels have to promote the replica
FAILOVER_BOUND = 30.0
#: a bound on the whole stream, so a stuck gateway fails the test instead of hanging it
LOAD_BOUND = 120.0
#: seconds a client thread pauses after a failed call (a real client would honour Retry-After; the stream must
#: go on through the failover to see when it ends)
FAILED_PAUSE = 0.05


@dataclass
class Stream:
    """What the clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    killed_at: float | None = None
    acknowledged: int = 0
    after_kill: int = 0  # acknowledged by calls that started after the kill
    first_after_kill: float | None = None  # when the first of them was answered
    launched: dict[str, str] = field(default_factory=dict)  # ClientToken -> instance id
    tagged: dict[str, str] = field(default_factory=dict)  # instance id -> the tag value acknowledged
    failures: Counter[str] = field(default_factory=Counter)  # "503", "500", "connection", ...
    unclean: list[str] = field(default_factory=list)

    def call(self, do: Any) -> Any:
        """``do()``, counted: its answer, or None when it failed."""
        started = time.monotonic()
        try:
            answer = do()
        except ClientError as exc:
            meta = exc.response["ResponseMetadata"]
            status = meta["HTTPStatusCode"]
            with self.lock:
                self.failures[str(status)] += 1
                if status != 503 or "retry-after" not in meta.get("HTTPHeaders", {}):
                    self.unclean.append(f"{status} {exc.response.get('Error', {})} {meta.get('HTTPHeaders')}")
            return None
        except BotoCoreError as exc:
            with self.lock:
                self.failures["connection"] += 1
                self.unclean.append(f"connection: {exc}")
            return None
        with self.lock:
            self.acknowledged += 1
            if self.killed_at is not None and started >= self.killed_at:
                self.after_kill += 1
                if self.first_after_kill is None:
                    self.first_after_kill = time.monotonic()
        return answer


def _client(lb: Nginx, image: str, stream: Stream) -> None:
    ec2 = lb.client(retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=30)
    while not stream.stop.is_set():
        token = f"fo-{uuid.uuid4().hex}"
        answer = stream.call(
            lambda t=token: ec2.run_instances(
                ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=t
            )
        )
        if answer is None:
            time.sleep(FAILED_PAUSE)
            continue
        (instance,) = answer["Instances"]
        with stream.lock:
            stream.launched[token] = instance["InstanceId"]
        tagged = stream.call(
            lambda i=instance["InstanceId"], t=token: ec2.create_tags(Resources=[i], Tags=[{"Key": "k", "Value": t}])
        )
        if tagged is not None:
            with stream.lock:
                stream.tagged[instance["InstanceId"]] = token


def _described(ec2: Any, ids: list[str]) -> dict[str, dict[str, str]]:
    """Instance id -> its tags, for the ids found (100 a call; one by one where a batch names a missing id)."""
    found: dict[str, dict[str, str]] = {}
    for start in range(0, len(ids), 100):
        chunk = ids[start : start + 100]
        try:
            reservations = ec2.describe_instances(InstanceIds=chunk)["Reservations"]
        except ClientError:
            reservations = []
            for one in chunk:
                with contextlib.suppress(ClientError):  # a lost launch: reported by the caller
                    reservations += ec2.describe_instances(InstanceIds=[one])["Reservations"]
        for r in reservations:
            for i in r["Instances"]:
                found[i["InstanceId"]] = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
    return found


def _wait_short(node: GatewayProcess) -> float:
    """The node's count of writes no replica acknowledged in time (/metrics)."""
    text = requests.get(f"{node.url}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("cloudgate_redis_wait_short"))


@pytest.fixture
def sentinels(tmp_path: Path) -> Any:
    started = SentinelSet(tmp_path / "redis")
    yield started
    started.stop()


def test_a_killed_master_loses_no_acknowledged_write(
    tmp_path: Path, sentinels: SentinelSet, start_nginx: Any, nodes: list[GatewayProcess]
) -> None:
    config = write_config(tmp_path / "gw.toml", sentinels.url, workers=1, backend_extra="max_machines = 5000")
    for _ in range(NODES):
        nodes.append(GatewayProcess(config, workers=1))
    # nginx after the nodes: its start-up probe would otherwise find them down and leave them out for 5 s
    lb = start_nginx([node.port for node in nodes])
    ec2 = lb.client(retries={"total_max_attempts": 5, "mode": "standard"})
    (image,) = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu-24.04"]}])["Images"]

    stream = Stream()
    threads = [
        threading.Thread(target=_client, args=(lb, image["ImageId"], stream), daemon=True) for _ in range(THREADS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        while stream.acknowledged < BEFORE and time.monotonic() - started < LOAD_BOUND:
            time.sleep(0.01)
        before = stream.acknowledged
        waits = sentinels.calls("wait")  # the writes so far waited for the replica
        with stream.lock:
            stream.killed_at = time.monotonic()
        sentinels.kill_master()
        promoted = sentinels.await_failover(FAILOVER_BOUND)
        while stream.after_kill < AFTER and time.monotonic() - started < LOAD_BOUND:
            time.sleep(0.05)
    finally:
        stream.stop.set()
        for thread in threads:
            thread.join(30)
    assert not any(t.is_alive() for t in threads), "a client call did not end"
    assert stream.killed_at is not None
    assert stream.after_kill >= AFTER, f"only {stream.after_kill} writes acknowledged after the kill"

    ec2 = lb.client(retries={"total_max_attempts": 5, "mode": "standard"})
    launched = list(stream.launched.values())
    found = _described(ec2, launched)
    lost_launches = [i for i in launched if i not in found]
    lost_tags = [i for i, value in stream.tagged.items() if found.get(i, {}).get("k") != value]
    assert stream.first_after_kill is not None
    gap = stream.first_after_kill - stream.killed_at
    failed = sum(stream.failures.values())
    short = sum(_wait_short(node) for node in nodes)
    print(
        f"\nredis failover: acknowledged={stream.acknowledged} (before kill {before}) launches={len(launched)} "
        f"tags={len(stream.tagged)} lost_launches={len(lost_launches)} lost_tags={len(lost_tags)} "
        f"sentinel_failover_seconds={promoted:.2f} write_gap_seconds={gap:.2f} failed_requests={failed} "
        f"failures={dict(stream.failures)} waits_before_kill={waits} wait_short={short:.0f} "
        f"seconds={time.monotonic() - started:.1f}"
    )
    assert stream.unclean == [], stream.unclean[:5]
    assert lost_launches == [], lost_launches[:5]
    assert lost_tags == [], lost_tags[:5]
    assert waits > 0, "no write waited for the replica"
    assert short >= 1, "the new master has no replica: the first write after the failover must have counted that"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])
