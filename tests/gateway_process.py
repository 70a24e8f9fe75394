"""A real ``cloudgate serve`` subprocess on a free loopback port, for tests that go over HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config
from netutil import free_port

BASE_CONFIG = """
[gateway]
workers = {workers}
threads = 4
{redis_line}
{gateway_extra}

[translator]
cache_ttl = 5.0
transitional_cache_ttl = 0.2
retry_attempts = {retry_attempts}
retry_initial_wait = 0.01
retry_max_wait = 0.05

[backends.sim]
driver = "simulator"
boot_delay = 0.2
{backend_extra}

[tenants.demo]
account_id = "111111111111"
[tenants.demo.regions.local-1]
backend = "sim"
zones = ["local-1a", "local-1b"]

[tenants.other]
account_id = "222222222222"
[tenants.other.regions.local-1]
backend = "sim"
zones = ["local-1a"]

[[users]]
access_key = "demo"
secret = "demo-secret"
tenant = "demo"
role = "admin"

[[users]]
access_key = "reader"
secret = "reader-secret"
tenant = "demo"
role = "reader"

[[users]]
access_key = "other"
secret = "other-secret"
tenant = "other"
role = "member"
"""


def write_config(
    path: Path,
    redis_url: str | None,
    *,
    workers: int = 2,
    retry_attempts: int = 3,
    backend_extra: str = "",
    gateway_extra: str = "",
) -> Path:
    path.write_text(
        BASE_CONFIG.format(
            workers=workers,
            redis_line=f'redis_url = "{redis_url}"' if redis_url else "",
            retry_attempts=retry_attempts,
            backend_extra=backend_extra,
            gateway_extra=gateway_extra,
        )
    )
    return path


#: the gateways running now: a failing test's report carries the end of each one's log (conftest.py)
RUNNING: set[GatewayProcess] = set()
#: lines of a gateway's log a failing test's report shows
LOG_TAIL_LINES = 60


class GatewayProcess:
    """Starts ``cloudgate serve``; ``stop()`` (always called by the fixture) ends it and its workers."""

    def __init__(self, config: Path, data_dir: Path | None = None, workers: int = 2, port: int | None = None) -> None:
        self.config = config
        self.port = port or free_port()  # a restarted node keeps its port (a balancer names it)
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config),
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]  # fmt: skip
        if data_dir:
            args += ["--data-dir", str(data_dir)]
        self.log = config.with_suffix(f".{self.port}.log")
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True)
        RUNNING.add(self)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"cloudgate serve did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def client(self, key: str = "demo", secret: str = "demo-secret", region: str = "local-1", **kw: Any) -> Any:
        return boto3.client(
            "ec2",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **kw),
        )

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The end of what the gateway (master and workers) has logged: why a worker died, what it refused."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(its log {self.log} could not be read: {exc})"

    def stop(self) -> int | None:
        RUNNING.discard(self)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self._log_file.close()
        return self.proc.returncode


#: The ``start_gateway`` fixture: extra ``[gateway]`` lines in, a running gateway out.
StartGateway = Callable[..., GatewayProcess]
