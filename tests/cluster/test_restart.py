"""Restart: the embedded Redis and the node are killed and come back; ids, tags, idempotency and jobs remain.

``cloudgate serve`` with no redis_url runs its own Redis on the data directory with an append-only file
(written before each reply), so what it acknowledged survives the server's death: first the Redis alone
is SIGKILLed (the node restarts it), then the node and its Redis together (a new node starts it again).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import requests
from cluster_nodes import kill_node
from gateway_process import GatewayProcess, write_config

from gateway.embedded_redis import PID_NAME

TOKEN = "restart-token-1"
TAGS = [{"Key": "Name", "Value": "survivor"}, {"Key": "team", "Value": "nodes"}]
#: the launch, repeated with its token after each restart (the same arguments: EC2 compares them)
LAUNCH: dict[str, Any] = {
    "InstanceType": "t3.micro",
    "MinCount": 1,
    "MaxCount": 1,
    "ClientToken": TOKEN,
    "TagSpecifications": [{"ResourceType": "instance", "Tags": TAGS[:1]}],
}
#: bound on waiting for the restarted Redis to serve again
BOUND = 30.0


def _pid(data_dir: Path) -> int | None:
    """The embedded Redis's pid (None while a restarting server has not written it yet)."""
    try:
        return int((data_dir / PID_NAME).read_text())
    except (OSError, ValueError):
        return None


def _jobs(node: GatewayProcess) -> set[str]:
    reply = requests.get(
        f"{node.url}/cimi/jobs", auth=("demo", "demo-secret"), headers={"Accept": "application/json"}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    return {job["id"].rsplit("/", 1)[1] for job in reply.json().get("jobs", [])}


def _state(node: GatewayProcess, image: str) -> dict[str, Any]:
    """What must survive: the instance (by id, with its tags), the token's answer, and the job listing."""
    ec2 = node.client()
    deadline = time.monotonic() + BOUND
    while requests.get(f"{node.url}/readyz", timeout=5).status_code != 200:  # the Redis is coming back
        assert time.monotonic() < deadline, "the node never became ready"
        time.sleep(0.1)
    (reservation,) = ec2.describe_instances()["Reservations"]
    (instance,) = reservation["Instances"]
    again = ec2.run_instances(ImageId=image, **LAUNCH)
    return {
        "id": instance["InstanceId"],
        "tags": sorted((t["Key"], t["Value"]) for t in instance.get("Tags", [])),
        "token answers": [i["InstanceId"] for i in again["Instances"]],
        "jobs": _jobs(node),
    }


def test_ids_tags_tokens_and_jobs_survive_redis_and_node_restarts(tmp_path: Path, nodes: list[GatewayProcess]) -> None:
    data_dir = tmp_path / "data"
    config = write_config(tmp_path / "gw.toml", None, workers=1)
    node = GatewayProcess(config, data_dir=data_dir, workers=1)
    nodes.append(node)
    ec2 = node.client()
    (image,) = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu-24.04"]}])["Images"]
    launched = ec2.run_instances(ImageId=image["ImageId"], **LAUNCH)
    instance_id = launched["Instances"][0]["InstanceId"]
    ec2.create_tags(Resources=[instance_id], Tags=TAGS[1:])
    before = _state(node, image["ImageId"])
    assert before["id"] == instance_id and before["token answers"] == [instance_id]
    assert before["tags"] == sorted((t["Key"], t["Value"]) for t in TAGS)
    assert before["jobs"], "the launch left no job"

    # The Redis alone dies: the node's supervisor restarts it on the same append-only file.
    redis_pid = int((data_dir / PID_NAME).read_text())
    os.kill(redis_pid, signal.SIGKILL)
    deadline = time.monotonic() + BOUND
    while _pid(data_dir) in (redis_pid, None):
        assert time.monotonic() < deadline, "the node did not restart its Redis"
        time.sleep(0.1)
    after_redis = _state(node, image["ImageId"])
    # The node and its Redis die together; a new node starts the Redis again from the file.
    kill_node(node)
    os.kill(_pid(data_dir) or 0, signal.SIGKILL)
    node = GatewayProcess(config, data_dir=data_dir, workers=1)
    nodes.append(node)
    after_both = _state(node, image["ImageId"])
    print(f"\nrestart: before={before} after_redis={after_redis} after_both={after_both}")
    assert before == after_redis == after_both
