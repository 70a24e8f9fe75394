"""Check 5 of issue 14, scaled for CI: the cloud behind a gateway goes away under load and comes back.

A real ``cloudgate serve`` (two workers) runs the EC2 backend on a real moto server. Clients (boto3, retries
off) keep calling DescribeInstances and RunInstances while moto is stopped for ``OUTAGE`` seconds and then
started again. Every answer must be 200 or EC2's 503 ``Unavailable`` with ``Retry-After`` (never a 500); the
account's circuit breaker must open (seen in /metrics and /readyz) so that the cloud's address sees only a
handful of connections while it is down; and service must return within seconds of moto's restart.

The gateway reaches moto through a small TCP relay of the test's own (``Relay``): it counts the connections
that arrive while moto is down (each refused by moto, reset by the relay), which is how the test knows how
many calls reached the cloud's address. A restarted moto listens on a new port; the relay follows it.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from botocore.exceptions import ClientError
from gateway_process import GatewayProcess
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer

#: seconds moto is down (issue 14 asks 20; 8 keep CI short and still span two cool-downs)
OUTAGE = 8.0
#: client threads calling through the outage
CLIENTS = 3
#: the breaker as configured for this test (the defaults but a shorter cool-down, so recovery is quick)
FAILURES, WINDOW, COOLDOWN = 5, 10.0, 2.0
WORKERS, RETRY_ATTEMPTS = 2, 2
#: seconds after moto's restart by which DescribeInstances must answer 200 again: a cool-down, and room for a
#: loaded CI machine (the figure itself is printed)
RECOVERY_BOUND = COOLDOWN + 10.0
ACCOUNT = "acme/moto-1"

CONFIG = """
[gateway]
workers = {workers}
threads = 4

[translator]
cache_ttl = 0.0
retry_attempts = {attempts}
retry_initial_wait = 0.01
retry_max_wait = 0.05
breaker_failures = {failures}
breaker_window = {window}
breaker_cooldown = {cooldown}

[backends.aws]
driver = "ec2"
endpoint_url = "{url}"
aws_region = "us-east-1"
instance_types = ["t3.micro"]
connect_timeout = 2
timeout = 10

[tenants.acme]
account_id = "123456789012"
[tenants.acme.regions.moto-1]
backend = "aws"
zones = ["moto-1a"]
zone_map = {{ "moto-1a" = "us-east-1a" }}
access_key_id = "{key}"
secret_access_key = "{secret}"

[[users]]
access_key = "alice"
secret = "alice-secret"
tenant = "acme"
role = "admin"
"""


class Relay:
    """A TCP relay on loopback in front of the cloud; counts the connections moto refused (it was down)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refused = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                with self._lock:
                    self.refused += 1
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()  # reset: what a balancer in front of a dead cloud answers
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(src, dst), daemon=True)
                pump.start()
                self._threads.append(pump)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def stop(self) -> None:
        self._stopped.set()
        self._server.close()
        with self._lock:
            open_now = list(self._open)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)


@dataclass
class Tally:
    """What the clients got, by phase (``up``, ``down``, ``back``)."""

    answers: Counter[tuple[str, str]] = field(default_factory=Counter)
    missing_retry_after: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, phase: str, answer: str, retry_after: str | None = None, status: int = 200) -> None:
        with self.lock:
            self.answers[(phase, answer)] += 1
            if status == 503 and not (retry_after or "").isdigit():
                self.missing_retry_after += 1

    def count(self, answer: str, phase: str | None = None) -> int:
        return sum(n for (p, a), n in self.answers.items() if a == answer and phase in (None, p))


def call(ec2: Any, operation: str, kwargs: dict[str, Any]) -> tuple[str, int, str | None]:
    """One call: (``200`` or the error code, status, Retry-After)."""
    try:
        getattr(ec2, operation)(**kwargs)
        return "200", 200, None
    except ClientError as exc:
        meta = exc.response["ResponseMetadata"]
        return exc.response["Error"]["Code"], meta["HTTPStatusCode"], meta["HTTPHeaders"].get("retry-after")


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if found and ",".join(sorted(found.group(1).split(","))) == wanted:
            return float(found.group(2))
    return 0.0


def test_cloud_outage_is_answered_503_and_the_breaker_spares_the_cloud(tmp_path: Path) -> None:
    moto = MotoServer(tmp_path)
    relay = Relay(moto.port)
    gw: GatewayProcess | None = None
    stop = threading.Event()
    workers: list[threading.Thread] = []
    try:
        moto.register_image(moto.client(), "ubuntu-24.04")
        config = tmp_path / "gw.toml"
        config.write_text(
            CONFIG.format(
                url=f"http://127.0.0.1:{relay.port}",
                key=ACCESS_KEY,
                secret=SECRET_KEY,
                failures=FAILURES,
                window=WINDOW,
                cooldown=COOLDOWN,
                workers=WORKERS,
                attempts=RETRY_ATTEMPTS,
            )
        )
        gw = GatewayProcess(config, data_dir=tmp_path / "data", workers=WORKERS)
        ec2 = gw.client("alice", "alice-secret", region="moto-1")
        image = {"id": ec2.describe_images()["Images"][0]["ImageId"]}
        phase = {"now": "up"}
        tally = Tally()

        def client(n: int) -> None:
            mine = gw.client("alice", "alice-secret", region="moto-1")
            i = 0
            while not stop.is_set():
                i += 1
                if i % 3:
                    operation, kwargs = "describe_instances", {}
                else:
                    kwargs = {"ImageId": image["id"], "InstanceType": "t3.micro", "MinCount": 1, "MaxCount": 1}
                    operation, kwargs = "run_instances", kwargs | {"ClientToken": f"c{n}-{i}"}
                seen = phase["now"]
                answer, status, retry_after = call(mine, operation, kwargs)
                if answer == "InvalidAMIID.NotFound" and seen == "back":
                    answer = "image gone with the restart"  # moto restarts empty; the test registers it anew
                tally.add(seen, answer, retry_after, status)
                time.sleep(0.1)

        workers = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for worker in workers:
            worker.start()
        time.sleep(1.0)

        # -- the cloud goes away -----------------------------------------------------------------------------------
        phase["now"] = "down"
        down_at = time.monotonic()
        moto.stop()
        seen_open_in_metrics = seen_open_in_readyz = False
        while time.monotonic() - down_at < OUTAGE:
            text = requests.get(f"{gw.url}/metrics", timeout=10).text
            seen_open_in_metrics |= (
                metric(text, "cloudgate_backend_circuit_opened_total", account=ACCOUNT) > 0
                and metric(text, "cloudgate_backend_circuit_state", account=ACCOUNT, state="open") >= 1
            )
            ready = requests.get(f"{gw.url}/readyz", timeout=10)
            seen_open_in_readyz |= ready.status_code == 503 and ACCOUNT in ready.json()["breakers"]
            time.sleep(0.5)

        # -- and comes back ----------------------------------------------------------------------------------------
        moto = MotoServer(tmp_path)
        # moto restarts empty, and its first EC2 call loads its EC2 model (seconds): pay both before it is reachable
        moto.register_image(moto.client(), "ubuntu-24.04")
        reached_while_down = relay.refused  # the outage lasted until here
        down_for = time.monotonic() - down_at
        phase["now"] = "back"  # first: a call counted as made while down must not find the cloud back
        relay.upstream_port = moto.port
        back_at = time.monotonic()
        recovered = None
        while time.monotonic() - back_at < RECOVERY_BOUND + 5:
            if call(ec2, "describe_instances", {})[0] == "200":
                recovered = time.monotonic() - back_at
                break
            time.sleep(0.1)
        image["id"] = ec2.describe_images()["Images"][0]["ImageId"]
        time.sleep(1.0)
        stop.set()
        for worker in workers:
            worker.join(30)
        launched = ec2.run_instances(ImageId=image["id"], InstanceType="t3.micro", MinCount=1, MaxCount=1)
        deadline = time.monotonic() + COOLDOWN + 5  # each worker's breaker closes on its first call after cool-down
        while (ready := requests.get(f"{gw.url}/readyz", timeout=10)).status_code != 200:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)

        calls = sum(tally.answers.values())
        # what opens each worker's breaker (calls under way may each finish their attempts), then a probe per worker
        # and cool-down, for requests and for readiness (twice: on a loaded machine a cool-down may end between them)
        bound = WORKERS * (FAILURES + CLIENTS * RETRY_ATTEMPTS) + 2 * WORKERS * (down_for / COOLDOWN + 1)
        print(
            f"\ncloud outage of {down_for:.1f}s: {calls} calls ({dict(tally.answers)}); "
            f"503s {tally.count('Unavailable')}, 500s {tally.count('InternalError')}; "
            f"connections that reached the cloud while down: {reached_while_down} (bound {bound:.0f}); "
            f"seconds to recover after restart: {recovered}"
        )
        codes = {answer for _, answer in tally.answers}
        assert codes <= {"200", "Unavailable", "image gone with the restart"}, tally.answers
        assert tally.missing_retry_after == 0
        assert tally.count("200", "up") > 0 and tally.count("Unavailable", "down") > 0
        assert tally.count("200", "down") == 0  # nothing could be served without the cloud
        assert seen_open_in_metrics and seen_open_in_readyz
        assert reached_while_down <= bound
        # without the breaker each 503 would have cost two connections (two attempts); with it most cost none
        assert reached_while_down * 2 < tally.count("Unavailable", "down")
        assert recovered is not None and recovered <= RECOVERY_BOUND
        assert tally.count("200", "back") > 0
        assert launched["Instances"][0]["State"]["Name"] == "pending"
        assert ready.status_code == 200 and ACCOUNT not in ready.json()["breakers"]
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
        if gw is not None:
            gw.stop()
        relay.stop()
        moto.stop()
