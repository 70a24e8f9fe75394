"""Redis stalled or dead under load: every request is answered, 503 with ``Retry-After``; then service resumes.

A stalled Redis (SIGSTOP) costs a request at most the configured socket timeout; a dead one (SIGKILL) is a
refused connection. Either way the answer is EC2's ``ServiceUnavailable`` (or, when the simulator's own
Redis calls are what failed, its ``Unavailable``), never a 500 and never a hang; once Redis is back the
same workers serve again without a restart. The embedded Redis is restarted by the gateway itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from gateway_process import GatewayProcess, write_config
from redis_process import RedisProcess

#: short Redis timeouts keep a stalled Redis cheap to test
FAST_TIMEOUTS = "redis_connect_timeout = 0.5\nredis_socket_timeout = 0.5"
UNAVAILABLE = {"ServiceUnavailable", "Unavailable"}
#: any one request must be answered within this (a hang fails the test)
REQUEST_BOUND = 10


@dataclass
class Load:
    """A few client threads calling DescribeInstances in a loop; every answer is recorded."""

    gateway: GatewayProcess
    threads: int = 3
    answers: list[tuple[float, int, str, str]] = field(default_factory=list)  # time, status, code, Retry-After
    failures: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self.workers:
            worker.start()

    def _run(self) -> None:
        ec2 = self.gateway.client(read_timeout=REQUEST_BOUND, connect_timeout=5)
        for _ in range(2000):  # bounded; the test sets done long before
            if self.done.is_set():
                return
            try:
                ec2.describe_instances()
                answer = (time.monotonic(), 200, "", "")
            except ClientError as exc:
                meta = exc.response["ResponseMetadata"]
                headers = meta.get("HTTPHeaders", {})
                answer = (
                    time.monotonic(),
                    meta["HTTPStatusCode"],
                    exc.response["Error"]["Code"],
                    headers.get("retry-after", ""),
                )
            except Exception as exc:  # a timeout, a reset: what must never happen
                with self.lock:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                continue
            with self.lock:
                self.answers.append(answer)
            time.sleep(0.02)

    def wait_for(self, status: int, count: int, after: float, what: str, within: float = 15) -> None:
        """Until ``count`` answers of ``status`` came after ``after`` (bounded)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if sum(1 for a in self.since(after) if a[1] == status) >= count:
                return
            time.sleep(0.05)
        pytest.fail(f"no {count} {what} within {within}s; answers: {self.summary()}")

    def since(self, mark: float) -> list[tuple[float, int, str, str]]:
        with self.lock:
            return [a for a in self.answers if a[0] > mark]

    def stop(self) -> None:
        self.done.set()
        for worker in self.workers:
            worker.join(REQUEST_BOUND + 5)

    def summary(self) -> dict[tuple[int, str], int]:
        counts: dict[tuple[int, str], int] = {}
        for _, status, code, _ in self.since(0):
            counts[status, code] = counts.get((status, code), 0) + 1
        return counts


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test's own, with an append-only file so a restart keeps the data."""
    server = RedisProcess(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    yield server
    server.stop()


def _served_by_then_unavailable_then_served(load: Load, fault: Callable[[], None], heal: Callable[[], None]) -> None:
    load.wait_for(200, 1, 0, "first success")
    fault()
    faulted = time.monotonic()
    try:
        load.wait_for(503, 6, faulted, "503s")
    finally:
        heal()
    load.wait_for(200, 6, time.monotonic(), "successes after recovery")
    load.stop()
    assert load.failures == []
    answers = load.since(0)
    assert {(status, code) for _, status, code, _ in answers} <= {(200, "")} | {(503, c) for c in UNAVAILABLE}
    assert any(code == "ServiceUnavailable" for _, _, code, _ in answers)
    assert all(retry_after.isdigit() for _, status, _, retry_after in answers if status == 503)


def test_a_stalled_redis_is_answered_503_then_service_resumes(tmp_path: Path, own_redis: RedisProcess, gateways):
    gw = gateways(write_config(tmp_path / "gw.toml", own_redis.url, gateway_extra=FAST_TIMEOUTS))
    load = Load(gw)
    try:
        _served_by_then_unavailable_then_served(
            load, lambda: own_redis.signal(signal.SIGSTOP), lambda: own_redis.signal(signal.SIGCONT)
        )
    finally:
        load.stop()


def test_a_killed_redis_is_answered_503_then_its_restart_is_served(
    tmp_path: Path, own_redis: RedisProcess, gateways
) -> None:
    gw = gateways(write_config(tmp_path / "gw.toml", own_redis.url, gateway_extra=FAST_TIMEOUTS))
    load = Load(gw)
    try:
        _served_by_then_unavailable_then_served(load, own_redis.kill, own_redis.start)
    finally:
        load.stop()


def test_the_embedded_redis_is_restarted_with_its_data(tmp_path: Path, gateways) -> None:
    data = tmp_path / "data"
    gw = gateways(write_config(tmp_path / "gw.toml", None, gateway_extra=FAST_TIMEOUTS), data_dir=data)
    ec2 = gw.client()
    ec2.create_key_pair(KeyName="acknowledged")
    assert requests.get(f"{gw.url}/readyz", timeout=10).status_code == 200
    os.kill(int((data / "redis.pid").read_text()), signal.SIGKILL)

    # A worker may answer from a readiness result cached just before the kill (half a second): only a 200
    # well after the first 503 says Redis is back.
    first_503 = back = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and back is None:
        status, now = requests.get(f"{gw.url}/readyz", timeout=10).status_code, time.monotonic()
        if status == 503 and first_503 is None:
            first_503 = now
        elif status == 200 and first_503 is not None and now > first_503 + 1.0:
            back = now
        time.sleep(0.05)
    assert first_503 is not None, "readiness never reported the dead Redis"
    assert back is not None, "the embedded Redis did not come back"
    assert [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]] == ["acknowledged"]
    assert gw.stop() == 0
    assert not (data / "redis.sock").exists(), "the restarted Redis must stop with the gateway"
