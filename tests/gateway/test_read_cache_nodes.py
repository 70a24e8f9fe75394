"""Answers kept by one gateway node's read cache never hide a write made through another node: two ``cloudgate
serve`` processes on one Redis, reads repeated on node A (so they are answered from its cache) around writes
made on node B, in EC2, CIMI and OCCI; and a kept answer is never given to credentials no longer valid."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError
from gateway_process import GatewayProcess, write_config

from translator.identity import Identity, User

AUTH = ("demo", "demo-secret")


@pytest.fixture
def nodes(tmp_path: Path, redis_server, redis_client) -> Iterator[tuple[GatewayProcess, GatewayProcess]]:
    config = write_config(tmp_path / "gw.toml", redis_server.url)
    a = GatewayProcess(config)
    try:
        b = GatewayProcess(config)
        try:
            yield a, b
        finally:
            b.stop()
    finally:
        a.stop()


def instances(ec2: Any) -> dict[str, dict[str, Any]]:
    return {i["InstanceId"]: i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}


def repeated(read: Any, times: int = 3) -> Any:
    """The same read a few times (the first ones fill the cache, the last is answered from it); the last answer."""
    answers = [read() for _ in range(times)]
    return answers[-1]


def test_ec2_reads_on_one_node_show_writes_made_on_another_at_once(nodes: tuple[GatewayProcess, ...]) -> None:
    a, b = nodes
    on_a, on_b = a.client(), b.client()
    image = on_b.describe_images()["Images"][0]["ImageId"]
    made = [i["InstanceId"] for i in on_b.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]]
    deadline = time.monotonic() + 20
    while {instances(on_a)[i]["State"]["Name"] for i in made} != {"running"}:
        assert time.monotonic() < deadline, "the instances did not start"
        time.sleep(0.2)
    assert set(repeated(lambda: instances(on_a))) >= set(made)

    on_b.create_tags(Resources=[made[0]], Tags=[{"Key": "team", "Value": "blue"}])
    tags = instances(on_a)[made[0]].get("Tags", [])
    assert {"Key": "team", "Value": "blue"} in tags
    assert {"Key": "team", "Value": "blue"} in repeated(lambda: instances(on_a))[made[0]].get("Tags", [])

    on_b.stop_instances(InstanceIds=[made[1]])
    assert instances(on_a)[made[1]]["State"]["Name"] in ("stopping", "stopped")
    on_b.terminate_instances(InstanceIds=made)
    assert {repeated(lambda: instances(on_a)).get(i, {}).get("State", {}).get("Name", "gone") for i in made} <= {
        "shutting-down",
        "terminated",
        "gone",
    }


def test_cimi_and_occi_reads_on_one_node_show_writes_made_on_another_at_once(nodes: tuple[GatewayProcess, ...]) -> None:
    a, b = nodes
    ec2 = b.client()
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (made,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    json = {"Accept": "application/json"}
    machines = repeated(lambda: requests.get(f"{a.url}/cimi/machines", auth=AUTH, headers=json, timeout=10).json())
    (machine,) = machines["machines"]
    href = machine["id"].removeprefix(a.url)
    computes = repeated(lambda: requests.get(f"{a.url}/occi/compute/", auth=AUTH, headers=json, timeout=10).text)
    assert href.rsplit("/", 1)[1] in computes

    renamed = requests.put(f"{b.url}{href}", auth=AUTH, json={"name": "renamed"}, headers=json, timeout=10)
    assert renamed.status_code == 200, renamed.text
    assert requests.get(f"{a.url}{href}", auth=AUTH, headers=json, timeout=10).json()["name"] == "renamed"
    listed = requests.get(f"{a.url}/cimi/machines", auth=AUTH, headers=json, timeout=10).json()["machines"]
    assert [m["name"] for m in listed] == ["renamed"]
    plain = {"Accept": "text/plain"}
    entity = f"{a.url}/occi/compute/{href.rsplit('/', 1)[1]}"
    assert 'occi.core.title="renamed"' in requests.get(entity, auth=AUTH, headers=plain, timeout=10).text

    ec2.terminate_instances(InstanceIds=[made["InstanceId"]])
    listed = requests.get(f"{a.url}/cimi/machines", auth=AUTH, headers=json, timeout=10).json().get("machines", [])
    assert all(m["state"] in ("DELETING", "DELETED") for m in listed), listed


def test_a_kept_answer_is_never_given_to_credentials_no_longer_valid(
    nodes: tuple[GatewayProcess, ...], redis_client
) -> None:
    a, _ = nodes
    identity = Identity(redis_client)
    identity.add_user(User(access_key="temp", secret="temp-secret", tenant="demo", role="reader"))
    reader = a.client(key="temp", secret="temp-secret")
    json = {"Accept": "application/json"}

    def cimi(secret: str = "temp-secret") -> requests.Response:
        return requests.get(f"{a.url}/cimi/machines", auth=("temp", secret), headers=json, timeout=10)

    def occi(secret: str = "temp-secret") -> requests.Response:
        return requests.get(f"{a.url}/occi/compute/", auth=("temp", secret), headers=json, timeout=10)

    ec2 = a.client()
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)
    assert len(repeated(reader.describe_instances)["Reservations"]) == 1
    assert len(repeated(cimi).json()["machines"]) == 1 and len(repeated(occi).json()["resources"]) == 1
    assert cimi("wrong").status_code == 401 and occi("wrong").status_code == 401

    # the same credentials moved to another tenant: its (empty) listings, not the answers kept for the first
    identity.add_user(User(access_key="temp", secret="temp-secret", tenant="other", role="reader"), replace=True)
    assert reader.describe_instances()["Reservations"] == []
    assert cimi().json().get("machines", []) == [] and occi().json().get("resources", []) == []
    identity.add_user(User(access_key="temp", secret="temp-secret", tenant="demo", role="reader"), replace=True)

    identity.add_user(User(access_key="temp", secret="new-secret", tenant="demo", role="reader"), replace=True)
    with pytest.raises(ClientError) as failed:
        reader.describe_instances()
    assert failed.value.response["Error"]["Code"] == "AuthFailure"
    assert cimi().status_code == 401 and occi().status_code == 401
    assert cimi("new-secret").status_code == 200

    identity.remove_user("temp")
    with pytest.raises(ClientError) as failed:
        a.client(key="temp", secret="new-secret").describe_instances()
    assert failed.value.response["Error"]["Code"] == "AuthFailure"
    assert cimi("new-secret").status_code == 401 and occi("new-secret").status_code == 401
