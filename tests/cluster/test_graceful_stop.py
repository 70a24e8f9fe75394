"""Graceful stop: on SIGTERM a node turns /readyz to 503 first, keeps serving through its drain, then exits cleanly."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import requests
from gateway_process import GatewayProcess, write_config

DRAIN_SECONDS = 3
#: bound on waiting for the stop to show or end (drain, then at most gunicorn's 10 s request drain)
BOUND = 30.0


def test_sigterm_makes_readyz_503_while_the_node_still_serves_then_it_exits(
    tmp_path: Path, redis_server: Any, nodes: list[GatewayProcess]
) -> None:
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/0"
    client = redis_server.client()
    client.flushdb()
    client.close()
    config = write_config(tmp_path / "gw.toml", redis_url, workers=2, gateway_extra=f"drain_seconds = {DRAIN_SECONDS}")
    node = GatewayProcess(config, workers=2)
    nodes.append(node)
    ec2 = node.client()
    assert requests.get(f"{node.url}/readyz", timeout=5).status_code == 200

    node.proc.send_signal(signal.SIGTERM)  # the master only, as systemd's KillMode=mixed does
    deadline = time.monotonic() + BOUND
    while (ready := requests.get(f"{node.url}/readyz", timeout=5)).status_code == 200:
        assert time.monotonic() < deadline, "/readyz never turned 503"
        time.sleep(0.05)
    assert (ready.status_code, ready.json()["status"]) == (503, "stopping")
    # Draining: the balancer stops sending, but what still arrives is served.
    assert ec2.describe_instances()["Reservations"] == []
    assert requests.get(f"{node.url}/healthz", timeout=5).status_code == 200

    assert node.proc.wait(BOUND) == 0
    log = node.log.read_text(errors="replace")
    assert "Traceback" not in log and "Exception during worker exit" not in log, log[-3000:]
