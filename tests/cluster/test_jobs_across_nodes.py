"""A job is the gateway's, not a node's: any node answers for one another node started, and a job a stopping
node was running is handed back and ended by another node.

A CIMI machine create answers 202 with a job that follows the launch until the machine runs (the simulator
boots it in ``BOOT`` seconds). The first node, alone, claims that job; a second node starts and reads it; the
first is stopped gracefully (SIGTERM) while the job still follows the boot, hands the job back to the queue, and
the second node's runner takes it and ends it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from gateway_process import GatewayProcess, write_config

#: seconds the simulator takes to boot a machine: longer than a stopping node's job grace (3 s)
BOOT = 8.0
#: bound on every wait of the test
BOUND = 40.0
#: seconds a runner's lease on a job lasts: past BOUND, so only a hand-back lets another node end the job in time
LEASE = 60.0
AUTH = ("demo", "demo-secret")
JSON = {"Accept": "application/json", "CIMI-Specification-Version": "2.0"}


def _get(node: GatewayProcess, href: str) -> dict[str, Any]:
    """A CIMI resource read on ``node``, whatever node's address its href carries."""
    reply = requests.get(f"{node.url}{urlsplit(href).path}", auth=AUTH, headers=JSON, timeout=10)
    assert reply.status_code == 200, (href, reply.status_code, reply.text[:300])
    return reply.json()  # type: ignore[no-any-return]


def _until(read: Any, done: Any) -> Any:
    deadline = time.monotonic() + BOUND
    while not done(value := read()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return value


def test_a_job_is_read_on_any_node_and_ended_by_another_when_its_node_stops(
    tmp_path: Path, redis_server: Any, nodes: list[GatewayProcess], figures: Any
) -> None:
    client = redis_server.client()
    client.flushdb()
    client.close()
    config = write_config(tmp_path / "gw.toml", redis_server.url.rsplit("/", 1)[0] + "/0", workers=1)
    text = config.read_text().replace("boot_delay = 0.2", f"boot_delay = {BOOT}")
    config.write_text(text.replace("[translator]\n", f"[translator]\njob_lease = {LEASE}\n", 1))
    first = GatewayProcess(config, workers=1)
    nodes.append(first)

    configs = _get(first, "/cimi/machineConfigs")["machineConfigurations"]
    image = _get(first, "/cimi/machineImages")["machineImages"][0]
    template = {"machineConfig": {"href": configs[0]["id"]}, "machineImage": {"href": image["id"]}}
    answer = requests.post(
        f"{first.url}/cimi/machines",
        json={"name": "handed-over", "machineTemplate": template},
        auth=AUTH,
        headers=JSON,
        timeout=30,
    )
    assert answer.status_code == 202, answer.text[:300]
    job_href, machine_href = answer.headers["CIMI-Job-URI"], answer.headers["Location"]
    job = _until(lambda: _get(first, job_href), lambda j: j["state"] != "QUEUED")
    assert job["state"] == "RUNNING", job  # the first node's runner follows the boot

    second = GatewayProcess(config, workers=1)
    nodes.append(second)
    seen = _get(second, job_href)
    assert seen["id"].endswith(urlsplit(job_href).path) and seen["state"] == "RUNNING", seen

    stopped_at = time.monotonic()
    assert first.stop() == 0  # graceful: its runner hands the job back after its grace
    assert time.monotonic() - stopped_at < BOOT, "the first node held the job until the machine booted"
    job = _until(lambda: _get(second, job_href), lambda j: j["state"] not in ("QUEUED", "RUNNING"))
    ended_after = time.monotonic() - stopped_at
    assert job["state"] == "SUCCESS", job
    assert _get(second, machine_href)["state"] == "STARTED"
    figures(
        f"job {job['id'].rsplit('/', 1)[-1]}: running on node 1, node 1 stopped; ended {job['state']} on node 2 "
        f"{ended_after:.1f}s later (boot {BOOT:.0f}s)"
    )
