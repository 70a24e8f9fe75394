"""Failures are answers on OCCI too: Redis stalled or dead, and a cloud that goes away, are OCCI's 503 with
``Retry-After`` in the requested rendering, never a 500 or a hang; service resumes when Redis is back."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests
from ec2_cloud_config import moto_account
from gateway_process import GatewayProcess, write_config
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer
from redis_process import RedisProcess

FAST_TIMEOUTS = "redis_connect_timeout = 0.5\nredis_socket_timeout = 0.5"

MOTO_CONFIG = """
[gateway]
workers = 1
threads = 4

[translator]
cache_ttl = 0.0
transitional_cache_ttl = 0.0
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05
"""


def get(url: str, media: str, auth: tuple[str, str] = ("demo", "demo-secret")) -> requests.Response:
    return requests.get(f"{url}/occi/compute/", auth=auth, headers={"Accept": media}, timeout=10)


def settle(url: str, status: int, auth: tuple[str, str] = ("demo", "demo-secret")) -> requests.Response:
    """Poll (bounded) until the compute collection answers ``status``; only 200 and 503 are allowed meanwhile."""
    deadline = time.monotonic() + 30
    while True:
        answer = get(url, OCCI_JSON, auth)
        if answer.status_code == status:
            return answer
        assert answer.status_code in (200, 503), answer.text[:300]
        assert time.monotonic() < deadline, f"still {answer.status_code}: {answer.text[:300]}"
        time.sleep(0.1)


def assert_occi_503(url: str, auth: tuple[str, str] = ("demo", "demo-secret")) -> None:
    """A 503 with ``Retry-After`` in every rendering: a one-line message (text), ``{"error": ...}`` (JSON)."""
    for media in (TEXT_PLAIN, TEXT_OCCI, OCCI_JSON):
        answer = get(url, media, auth)
        assert answer.status_code == 503, (media, answer.status_code, answer.text[:300])
        assert answer.headers["Retry-After"].isdigit(), media
        assert answer.headers["Content-Type"].split(";")[0] == media
        assert answer.headers["Server"].endswith("OCCI/1.2")
        assert "Traceback" not in answer.text
        if media == OCCI_JSON:
            error = answer.json()["error"]
            assert error["code"] == 503 and error["message"], error
        else:
            assert answer.text.strip() and "\n" not in answer.text.strip(), answer.text


@pytest.mark.parametrize("fault", ["stall", "kill"])
def test_redis_faults_are_occi_503s(tmp_path: Path, fault: str) -> None:
    server = RedisProcess(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    gw = GatewayProcess(write_config(tmp_path / "gw.toml", server.url, gateway_extra=FAST_TIMEOUTS), workers=1)
    try:
        settle(gw.url, 200)
        if fault == "stall":
            server.signal(signal.SIGSTOP)
        else:
            server.kill()
        try:
            settle(gw.url, 503)
            assert_occi_503(gw.url)
        finally:
            if fault == "stall":
                server.signal(signal.SIGCONT)
            else:
                server.start()
        settle(gw.url, 200)
        query = requests.get(f"{gw.url}/occi/-/", auth=("demo", "demo-secret"), timeout=10)
        assert query.status_code == 200 and "compute" in query.text
    finally:
        gw.stop()
        server.stop()


def test_cloud_gone_is_an_occi_503(tmp_path: Path) -> None:
    """moto's EC2 server behind the ``ec2`` backend stops answering: OCCI's 503, not a 500 or a 502."""
    moto = MotoServer(tmp_path)
    gw = None
    auth = ("alice", "alice-secret")
    try:
        moto.register_image(moto.client(), "ubuntu-24.04")
        config = tmp_path / "gw.toml"
        types = ("t3.micro", "t3.small")
        config.write_text(MOTO_CONFIG + moto_account(moto.url, ACCESS_KEY, SECRET_KEY, instance_types=types))
        gw = GatewayProcess(config, data_dir=tmp_path / "data", workers=1)
        settle(gw.url, 200, auth)
        moto.stop()
        settle(gw.url, 503, auth)
        assert_occi_503(gw.url, auth)
    finally:
        if gw is not None:
            gw.stop()
        moto.stop()
