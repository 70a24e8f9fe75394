"""Failures are answers on CIMI too: Redis stalled or dead is CIMI's 503 with ``Retry-After``, in the
requested rendering, never a 500 or a hang; service resumes when Redis is back."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import requests
from cimiclient import JSON, XML
from gateway_process import GatewayProcess, write_config
from lxml import etree
from redis_process import RedisProcess

FAST_TIMEOUTS = "redis_connect_timeout = 0.5\nredis_socket_timeout = 0.5"


def get(gw: GatewayProcess, media: str) -> requests.Response:
    return requests.get(f"{gw.url}/cimi/machines", auth=("demo", "demo-secret"), headers={"Accept": media}, timeout=10)


def settle(gw: GatewayProcess, status: int) -> requests.Response:
    deadline = time.monotonic() + 20
    while True:
        answer = get(gw, JSON)
        if answer.status_code == status:
            return answer
        assert time.monotonic() < deadline, f"still {answer.status_code}: {answer.text[:300]}"
        time.sleep(0.1)


@pytest.mark.parametrize("fault", ["stall", "kill"])
def test_redis_faults_are_cimi_503s(tmp_path: Path, fault: str) -> None:
    server = RedisProcess(tmp_path / "redis", "--appendonly", "yes", "--appendfsync", "always")
    gw = GatewayProcess(write_config(tmp_path / "gw.toml", server.url, gateway_extra=FAST_TIMEOUTS), workers=1)
    try:
        settle(gw, 200)
        if fault == "stall":
            server.signal(signal.SIGSTOP)
        else:
            server.kill()
        try:
            answer = settle(gw, 503)
            assert answer.headers["Retry-After"].isdigit() and answer.json()["status"] == 503
            xml = get(gw, XML)
            assert xml.status_code == 503 and xml.headers["Retry-After"].isdigit()
            assert etree.QName(etree.fromstring(xml.content)).localname == "Error"
        finally:
            if fault == "stall":
                server.signal(signal.SIGCONT)
            else:
                server.start()
        settle(gw, 200)
    finally:
        gw.stop()
        server.stop()
