"""Check 6 of issue 14: slow and abusive clients do not starve a well-behaved one.

One gateway (2 workers) with rate limits per access key, behind nginx as deployed. An abuser far over its rate
gets EC2's ``RequestLimitExceeded`` (CIMI and OCCI: 429), each with ``Retry-After``; ``LORIS`` slow-loris
connections send a header byte a second and never finish, at the balancer (which buffers whole requests, so they
hold nginx, not the node: what a deployment sees), and as many again straight at the node (what the node must
survive on its own: a worker gathers heads on its event loop, gateway.server.HeadFirstWorker). Meanwhile a well-behaved
client's median latency through the balancer stays within 2x of what it was unloaded, measured in the same run and
printed.
"""

from __future__ import annotations

import resource
import socket
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from cluster_nodes import Nginx
from gateway_process import GatewayProcess, StartGateway, write_config
from redis_process import RedisProcess

#: every key: 20 requests a second, 40 at once; the well-behaved client stays under it, the abuser does not
LIMITS = """
[gateway.rate_limits]
rate_per_key = 20
burst_per_key = 40
rate_per_tenant = 1000
burst_per_tenant = 2000
"""
LORIS = 200
SAMPLES = 30


@pytest.fixture(scope="module")
def limited(start_gateway: StartGateway) -> GatewayProcess:
    return start_gateway(LIMITS)


def _p50(client: Any) -> tuple[float, int]:
    """The median seconds of SAMPLES paced DescribeInstances, and how many failed."""
    took, failed = [], 0
    for _ in range(SAMPLES):
        start = time.perf_counter()
        try:
            client.describe_instances()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            failed += 1
        took.append(time.perf_counter() - start)
        time.sleep(0.06)  # ~12 requests a second: within the key's 20
    return statistics.median(took), failed


class Abuser:
    """EC2 requests through the balancer as fast as one thread sends them, counting the answers."""

    def __init__(self, lb: Nginx) -> None:
        self.client = lb.client("other", "other-secret", retries={"total_max_attempts": 1})
        self.stop = threading.Event()
        self.codes: dict[str, int] = {}
        self.retry_after: set[str] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.client.describe_instances()
                code = "ok"
            except botocore.exceptions.ClientError as exc:
                code = exc.response["Error"]["Code"]
                self.retry_after.add(exc.response["ResponseMetadata"]["HTTPHeaders"].get("retry-after", ""))
            except botocore.exceptions.BotoCoreError as exc:
                code = type(exc).__name__
            self.codes[code] = self.codes.get(code, 0) + 1


class SlowLoris:
    """LORIS connections to each of ``ports`` that send a request line, then one header byte a second, and never
    end the head."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.stop = threading.Event()
        self.socks: dict[socket.socket, int] = {}  # each connection's port
        self.dropped = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, port: int) -> None:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.sendall(b"GET /cimi/cloudEntryPoint HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        self.socks[s] = port

    def _run(self) -> None:
        for _ in range(LORIS):
            for port in self.ports:
                self._open(port)
        while not self.stop.wait(1.0):
            for s, port in list(self.socks.items()):
                try:
                    s.sendall(b"x")
                except OSError:  # the server closed it: open another (bounded by the stop event)
                    self.dropped += 1
                    del self.socks[s]
                    s.close()
                    self._open(port)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for s in self.socks:
            s.close()


@pytest.fixture
def balancer(limited: GatewayProcess, start_nginx: Callable[[list[int]], Nginx]) -> Nginx:
    return start_nginx([limited.port])


@pytest.fixture
def abuse(limited: GatewayProcess, balancer: Nginx) -> Iterator[tuple[Abuser, SlowLoris]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * LORIS + 512  # the loris, and what the clients and the test's own modules hold
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    abuser, loris = Abuser(balancer), SlowLoris([balancer.port, limited.port])
    try:
        yield abuser, loris
    finally:
        abuser.stop.set()
        abuser.thread.join(10)
        loris.close()


def test_the_abuser_is_refused_and_the_loris_do_not_starve_a_good_client(
    balancer: Nginx, abuse: tuple[Abuser, SlowLoris], figures: Callable[[str], None]
) -> None:
    good = balancer.client(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=5)
    good.describe_instances()  # warm: the answer is kept
    unloaded, failed_unloaded = _p50(good)
    abuser, loris = abuse
    loris.thread.start()
    abuser.thread.start()
    deadline = time.monotonic() + 30
    while len(loris.socks) < LORIS * 2 and loris.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the loris are trickling; the abuser has spent its burst
    loaded, failed_loaded = _p50(good)
    codes = dict(abuser.codes)
    at = Counter("balancer" if port == balancer.port else "node" for port in list(loris.socks.values()))
    figures(
        f"good client p50: unloaded {unloaded * 1000:.1f} ms, loaded {loaded * 1000:.1f} ms "
        f"(x{loaded / unloaded:.2f}); failed {failed_unloaded}/{failed_loaded}; abuser answers {codes}, "
        f"Retry-After {sorted(abuser.retry_after)}; slow-loris open {dict(at)}, dropped {loris.dropped}"
    )
    assert at == {"balancer": LORIS, "node": LORIS}
    assert failed_unloaded == failed_loaded == 0
    assert codes.get("RequestLimitExceeded", 0) > 5 * codes.get("ok", 0) > 0  # far over its rate
    assert set(codes) <= {"ok", "RequestLimitExceeded"}
    assert abuser.retry_after == {"1"}  # 20 a second: a token within a second
    assert loaded <= 2 * max(unloaded, 0.005)


def test_cimi_and_occi_answer_429_with_retry_after(limited: GatewayProcess) -> None:
    over = None
    with requests.Session() as http:
        http.auth = ("reader", "reader-secret")
        for _ in range(200):  # bounded: the key's burst is 40
            over = http.get(f"{limited.url}/cimi/cloudEntryPoint", timeout=5)
            if over.status_code != 200:
                break
        assert over is not None and over.status_code == 429, over.text
        assert over.headers["Retry-After"] == "1"
        assert over.json()["code"] == "TooManyRequests"
        occi = http.get(f"{limited.url}/occi/compute/", headers={"Accept": "application/occi+json"}, timeout=5)
        assert occi.status_code == 429 and occi.headers["Retry-After"] == "1"
        assert "error" in occi.json()
        # the same tenant's other key has its own bucket
        fine = http.get(f"{limited.url}/cimi/cloudEntryPoint", auth=("demo", "demo-secret"), timeout=5)
        assert fine.status_code == 200


def test_redis_down_under_rate_limits_is_503_with_retry_after(tmp_path: Path) -> None:
    """The limiter's own Redis calls failing are the gateway's Redis failing: each frontend's 503, never a 500."""
    server = RedisProcess(tmp_path / "redis")
    gw = None
    try:
        config = write_config(tmp_path / "gw.toml", server.url, gateway_extra="redis_socket_timeout = 0.5\n" + LIMITS)
        gw = GatewayProcess(config)
        ec2 = gw.client(read_timeout=10, connect_timeout=5)
        ec2.describe_instances()
        server.kill()
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            ec2.describe_instances()
        meta = caught.value.response["ResponseMetadata"]
        assert (caught.value.response["Error"]["Code"], meta["HTTPStatusCode"]) == ("ServiceUnavailable", 503)
        assert meta["HTTPHeaders"]["retry-after"]
        for path in ("/cimi/cloudEntryPoint", "/occi/compute/"):
            answer = requests.get(gw.url + path, auth=("demo", "demo-secret"), timeout=10)
            assert answer.status_code == 503 and answer.headers["Retry-After"], (path, answer.text)
    finally:
        if gw is not None:
            gw.stop()
        server.stop()


def _answers(sock: socket.socket, count: int) -> bytes:
    """What the gateway sent until ``count`` status lines came (bounded by the socket's timeout)."""
    data = b""
    while data.count(b"HTTP/1.1 200") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_heads_pipelined_or_trickled_are_served(limited: GatewayProcess) -> None:
    """The worker gathers heads itself (gateway/server.py): two heads in one packet, and one head sent in pieces
    on a kept-alive connection, are each answered."""
    get = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", limited.port), timeout=5) as s:
        s.sendall(get + get)
        assert _answers(s, 2).count(b"HTTP/1.1 200") == 2
        for piece in (get[:5], get[5:20], get[20:]):
            s.sendall(piece)
            time.sleep(0.2)
        assert _answers(s, 1).count(b"HTTP/1.1 200") == 1
