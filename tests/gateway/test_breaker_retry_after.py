"""An open circuit breaker's 503 tells the client its remaining cool-down in ``Retry-After``, on every frontend.

A real ``cloudgate serve`` runs the EC2 backend against a loopback port that refuses connections (a socket bound
and never listening: the cloud is down). The first read fails and opens the account's breaker (one fault opens
it here); every read after it is answered at once with the protocol's 503, whose ``Retry-After`` must be the
breaker's remaining cool-down (long here, so it cannot be mistaken for the default of 2 seconds).
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from ec2_cloud_config import moto_account
from gateway_process import GatewayProcess

COOLDOWN = 60
#: the default ``Retry-After`` of a 503 whose end nobody knows (gateway/app.py RETRY_AFTER)
DEFAULT_WAIT = 2
BASIC = ("alice", "alice-secret")

CONFIG = """
[gateway]
workers = 1
threads = 2

[translator]
cache_ttl = 0.0
retry_attempts = 1
breaker_failures = 1
breaker_window = 10.0
breaker_cooldown = {cooldown}
"""


@pytest.fixture
def dead_cloud(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway whose only cloud refuses every connection; the gateway and the socket are closed at the end."""
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))  # never listens: connections to it are refused, and no one else takes it
        config = tmp_path / "gateway.toml"
        config.write_text(
            CONFIG.format(cooldown=COOLDOWN)
            + moto_account(f"http://127.0.0.1:{refusing.getsockname()[1]}", "key", "secret", timeout=5)
        )
        gw = GatewayProcess(config, workers=1)
        try:
            yield gw
        finally:
            gw.stop()


def _ec2_wait(gw: GatewayProcess) -> tuple[str, str]:
    """DescribeInstances through boto3: EC2's error code and the answer's ``Retry-After``."""
    with pytest.raises(ClientError) as raised:
        gw.client("alice", "alice-secret", region="moto-1").describe_instances()
    answer = raised.value.response
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 503
    return answer["Error"]["Code"], answer["ResponseMetadata"]["HTTPHeaders"]["retry-after"]


def _http_wait(gw: GatewayProcess, path: str) -> str:
    resp = requests.get(gw.url + path, auth=BASIC, headers={"Accept": "application/json"}, timeout=30)
    assert resp.status_code == 503, resp.text
    return resp.headers["Retry-After"]


def test_open_breaker_answers_its_remaining_cooldown(dead_cloud: GatewayProcess) -> None:
    opened_by = time.monotonic()
    code, wait = _ec2_wait(dead_cloud)  # the call that finds the cloud down: no end is known yet
    assert (code, wait) == ("Unavailable", str(DEFAULT_WAIT))

    waits = {"ec2": _ec2_wait(dead_cloud), "cimi": _http_wait(dead_cloud, "/cimi/machines")}
    waits["occi"] = _http_wait(dead_cloud, "/occi/compute/")
    # the breaker opened after ``opened_by`` and ends a cool-down later: what is left is at most the cool-down
    # and at least the cool-down less the time gone since
    least = math.floor(COOLDOWN - (time.monotonic() - opened_by))
    assert waits["ec2"][0] == "Unavailable"
    for frontend, wait in {"ec2": waits["ec2"][1], "cimi": waits["cimi"], "occi": waits["occi"]}.items():
        assert least <= int(wait) <= COOLDOWN, f"{frontend}: Retry-After {wait}, not the breaker's cool-down"
