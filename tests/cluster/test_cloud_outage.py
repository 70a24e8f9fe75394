"""Check 5 of issue 14: the clouds behind a gateway go away under load for 20 s and come back.

A real ``cloudgate serve`` (two workers) has one tenant with two regions, each on a cloud reached over HTTP by
the EC2 backend: a real moto server, and the simulator served by a ``cloudgate serve`` of its own (the simulator
is in-process to the gateway that runs it, its state in that gateway's Redis; served over EC2 it is a cloud with
an address, which can be stopped like any other). Clients (boto3, retries off) keep calling DescribeInstances and
RunInstances in both regions while both clouds are stopped for ``OUTAGE`` seconds and then started again (moto
empty, the simulator from its append-only file). Every answer must be 200 or EC2's 503 ``Unavailable`` with
``Retry-After`` (never a 500); each account's circuit breaker must open (seen in /metrics and /readyz) so that
its cloud's address sees only a handful of connections while it is down; and service must return within seconds
of the restart.

The gateway reaches each cloud through a small TCP relay of the test's own (``Relay``): it counts the connections
that arrive while the cloud is down (each refused by the cloud, reset by the relay), which is how the test knows
how many calls reached the cloud's address. The restarted clouds listen on new ports, and each is started while
its address is still unreachable (moto's first EC2 call loads its model for seconds): the relay follows it once
the outage has lasted ``OUTAGE`` seconds.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests
from botocore.exceptions import ClientError
from ec2_cloud_config import admin, ec2_backend, region, tenant
from gateway_process import GatewayProcess, write_config
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer

#: seconds each cloud is unreachable (the issue's figure)
OUTAGE = 20.0
#: client threads calling each cloud's region through the outage
CLIENTS = 3
#: the breaker as configured for this test: the defaults (a cool-down of 5 s bounds both the probes that reach a
#: cloud that is down and the wait for one that is back)
FAILURES, WINDOW, COOLDOWN = 5, 10.0, 5.0
WORKERS, RETRY_ATTEMPTS = 2, 2
#: seconds after a cloud is back by which DescribeInstances must answer 200 again: a cool-down, and room for a
#: loaded CI machine (the figure itself is printed)
RECOVERY_BOUND = COOLDOWN + 10.0
TENANT = "acme"

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
"""


class Relay:
    """A TCP relay on loopback in front of the cloud; counts the connections moto refused (it was down)."""

    def __init__(self) -> None:
        #: where the cloud listens; None (refused) until it has started
        self.upstream_port: int | None = None
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
                if self.upstream_port is None:
                    raise ConnectionRefusedError
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


class Cloud(Protocol):
    """A cloud the gateway reaches over HTTP: started on construction, stopped and started again by the test."""

    name: str
    region: str

    @property
    def port(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class MotoCloud:
    """moto's EC2 server. It restarts empty: the image is registered again (moto's first EC2 call also loads its
    EC2 model, seconds) before the relay leads to it."""

    name, region = "moto", "moto-1"

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.server: MotoServer | None = None
        self.start()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def start(self) -> None:
        self.server = MotoServer(self.workdir)
        try:
            self.server.register_image(self.server.client(), "ubuntu-24.04")
        except Exception:
            self.server.stop()
            raise

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


class SimulatorCloud:
    """The simulator served over EC2 by a ``cloudgate serve`` of its own, its state in an embedded Redis with an
    append-only file: stopped, the cloud and its store are gone; started again, it has what it had."""

    name, region = "simulator", "sim-1"

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config = write_config(workdir / "sim.toml", None, workers=1)
        self.data = workdir / "data"
        self.server: GatewayProcess | None = None
        self.start()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def start(self) -> None:
        self.server = GatewayProcess(self.config, data_dir=self.data, workers=1)  # a new port: the relay follows

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


@dataclass
class Tally:
    """What the clients got, by phase (``up``, ``stopping``, ``down``, ``back``)."""

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


@dataclass
class Side:
    """One cloud's part of the run: its relay, the phase its clients are in, and what they and the test saw."""

    cloud: Cloud
    relay: Relay
    image: str = ""
    phase: str = "up"
    tally: Tally = field(default_factory=Tally)
    reached_while_down: int = 0
    down_for: float = 0.0
    recovered: float | None = None
    seen_open_in_metrics: bool = False
    #: seconds from the start of the stop to the first /metrics showing the breaker open
    opened_after: float | None = None
    seen_open_in_readyz: bool = False
    #: the most connections the breakers' arithmetic lets reach the cloud while it is down
    bound: float = 0.0

    @property
    def account(self) -> str:
        return f"{TENANT}/{self.cloud.region}"


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


def image_of(ec2: Any) -> str:
    return ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu-24.04"]}])["Images"][0]["ImageId"]


def client_loop(gw: GatewayProcess, side: Side, n: int, stop: threading.Event) -> None:
    """DescribeInstances twice, then a RunInstances with a token of its own, ten calls a second, until stopped."""
    ec2 = gw.client("alice", "alice-secret", region=side.cloud.region)
    i = 0
    while not stop.is_set():
        i += 1
        if i % 3:
            operation, kwargs = "describe_instances", {}
        else:
            kwargs = {"ImageId": side.image, "InstanceType": "t3.micro", "MinCount": 1, "MaxCount": 1}
            operation, kwargs = "run_instances", kwargs | {"ClientToken": f"{side.cloud.name}-{n}-{i}"}
        seen = side.phase
        answer, status, retry_after = call(ec2, operation, kwargs)
        if answer == "InvalidAMIID.NotFound" and seen == "back":
            answer = "image gone with the restart"  # moto restarts empty; the test registers it anew
        side.tally.add(seen, answer, retry_after, status)
        time.sleep(0.1)


def clouds(moto_url: str, sim_url: str) -> str:
    """Tenant acme's two regions: moto-1 on moto, sim-1 on the simulator served over EC2."""
    return "\n".join(
        [
            ec2_backend("aws", moto_url),
            ec2_backend("sim", sim_url, "local-1", None, image_owners=["self", "amazon"]),
            tenant(TENANT)
            + region(TENANT, "moto-1", "aws", {"moto-1a": "us-east-1a"}, ACCESS_KEY, SECRET_KEY)
            + region(TENANT, "sim-1", "sim", {"sim-1a": "local-1a"}, "demo", "demo-secret"),
            admin("alice", "alice-secret", TENANT),
        ]
    )


def test_cloud_outage_is_answered_503_and_the_breaker_spares_the_cloud(tmp_path: Path, figures: Any) -> None:
    sides: list[Side] = []
    gw: GatewayProcess | None = None
    stop = threading.Event()
    threads: list[threading.Thread] = []
    relays = {"moto": Relay(), "simulator": Relay()}
    makers: dict[str, Callable[[Path], Cloud]] = {"moto": MotoCloud, "simulator": SimulatorCloud}
    try:
        config = tmp_path / "gw.toml"
        config.write_text(
            CONFIG.format(
                failures=FAILURES,
                window=WINDOW,
                cooldown=COOLDOWN,
                workers=WORKERS,
                attempts=RETRY_ATTEMPTS,
            )
            + clouds(f"http://127.0.0.1:{relays['moto'].port}", f"http://127.0.0.1:{relays['simulator'].port}")
        )
        with ThreadPoolExecutor(3) as pool:  # each start waits for its server to answer: start them together
            futures = {name: pool.submit(make, tmp_path / name) for name, make in makers.items()}
            futures["gateway"] = pool.submit(GatewayProcess, config, data_dir=tmp_path / "data", workers=WORKERS)
        # keep what started for the cleanup, then fail on what did not
        gw = futures["gateway"].result() if futures["gateway"].exception() is None else None
        sides = [Side(f.result(), relays[n]) for n, f in futures.items() if n in makers and f.exception() is None]
        for name, future in futures.items():
            if future.exception() is not None:
                raise RuntimeError(f"{name} did not start") from future.exception()
        assert gw is not None
        for side in sides:
            side.relay.upstream_port = side.cloud.port
            side.image = image_of(gw.client("alice", "alice-secret", region=side.cloud.region))
        threads = [
            threading.Thread(target=client_loop, args=(gw, side, n, stop), daemon=True)
            for side in sides
            for n in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)

        # -- the clouds go away: stopped, then started again at once on new ports the relays do not lead to yet ----
        with ThreadPoolExecutor(len(sides)) as pool:
            stopping_at = time.monotonic()
            for side in sides:
                side.phase = "stopping"  # a stop drains what is under way: answers or 503s, both fine
            list(pool.map(lambda side: side.cloud.stop(), sides))
            down_at = time.monotonic()
            for side in sides:
                side.phase = "down"
            restarts = [pool.submit(side.cloud.start) for side in sides]
            while time.monotonic() - down_at < OUTAGE:
                text = requests.get(f"{gw.url}/metrics", timeout=10).text
                ready = requests.get(f"{gw.url}/readyz", timeout=10)
                for side in sides:
                    side.seen_open_in_metrics |= (
                        metric(text, "cloudgate_backend_circuit_opened_total", account=side.account) > 0
                        and metric(text, "cloudgate_backend_circuit_state", account=side.account, state="open") >= 1
                    )
                    side.seen_open_in_readyz |= ready.status_code == 503 and side.account in ready.json()["breakers"]
                    if side.seen_open_in_metrics and side.opened_after is None:
                        side.opened_after = round(time.monotonic() - stopping_at, 1)
                time.sleep(0.5)
            for restart in restarts:
                restart.result()

        # -- and comes back ----------------------------------------------------------------------------------------
        for side in sides:
            side.reached_while_down = side.relay.refused  # the outage lasted until here
            side.down_for = time.monotonic() - down_at
            side.phase = "back"  # first: a call counted as made while down must not find the cloud back
            side.relay.upstream_port = side.cloud.port
        back_at = time.monotonic()
        ec2s = {side.cloud.name: gw.client("alice", "alice-secret", region=side.cloud.region) for side in sides}
        while time.monotonic() - back_at < RECOVERY_BOUND + 5 and any(s.recovered is None for s in sides):
            for side in sides:
                if side.recovered is None and call(ec2s[side.cloud.name], "describe_instances", {})[0] == "200":
                    side.recovered = round(time.monotonic() - back_at, 1)
            time.sleep(0.1)
        for side in sides:
            side.image = image_of(ec2s[side.cloud.name])
        # the clients go on until each has been answered by the cloud again: another worker's breaker may still be
        # cooling down when this thread's probe found the cloud back (bounded like the recovery)
        time.sleep(1.0)
        while time.monotonic() - back_at < RECOVERY_BOUND + 5 and any(s.tally.count("200", "back") == 0 for s in sides):
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(30)
        launched = {
            side.cloud.name: ec2s[side.cloud.name].run_instances(
                ImageId=side.image, InstanceType="t3.micro", MinCount=1, MaxCount=1
            )["Instances"][0]["State"]["Name"]
            for side in sides
        }
        deadline = time.monotonic() + COOLDOWN + 5  # each worker's breaker closes on its first call after cool-down
        while (ready := requests.get(f"{gw.url}/readyz", timeout=10)).status_code != 200 or ready.json()["breakers"]:
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)

        # what opens each worker's breaker (calls under way may each finish their attempts), then a probe per worker
        # and cool-down, for requests and for readiness (twice: on a loaded machine a cool-down may end between them)
        for side in sides:
            tally = side.tally
            side.bound = WORKERS * (FAILURES + CLIENTS * RETRY_ATTEMPTS) + 2 * WORKERS * (side.down_for / COOLDOWN + 1)
            figures(
                f"cloud outage ({side.cloud.name}) of {side.down_for:.1f}s: {sum(tally.answers.values())} calls "
                f"({dict(tally.answers)}); 503s {tally.count('Unavailable')}, 500s {tally.count('InternalError')}; "
                f"breaker seen open after {side.opened_after}s; connections that reached the cloud while down: "
                f"{side.reached_while_down} (bound {side.bound:.0f}); back after {side.recovered}s"
            )
        for side in sides:
            tally = side.tally
            codes = {answer for _, answer in tally.answers}
            assert codes <= {"200", "Unavailable", "image gone with the restart"}, (side.cloud.name, tally.answers)
            assert tally.missing_retry_after == 0
            assert tally.count("200", "up") > 0 and tally.count("Unavailable", "down") > 0
            assert tally.count("200", "down") == 0  # nothing could be served without the cloud
            assert side.seen_open_in_metrics and side.seen_open_in_readyz, side.cloud.name
            assert side.opened_after is not None and side.opened_after <= WINDOW, side.cloud.name
            assert side.reached_while_down <= side.bound, side.cloud.name
            # without the breaker each 503 would have cost two connections (two attempts); with it most cost none
            assert side.reached_while_down * 2 < tally.count("Unavailable", "down"), side.cloud.name
            assert side.recovered is not None and side.recovered <= RECOVERY_BOUND, side.cloud.name
            assert tally.count("200", "back") > 0
            assert launched[side.cloud.name] == "pending"
        assert ready.status_code == 200 and ready.json()["breakers"] == {}, ready.json()
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        if gw is not None:
            gw.stop()
        for relay in relays.values():
            relay.stop()
        for side in sides:
            side.cloud.stop()
