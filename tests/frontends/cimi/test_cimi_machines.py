"""Machines through CIMI on the simulator: what a create may carry, edits, actions, sub-collections,
queries, credentials, and the same machines seen by the EC2 frontend."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from cimiclient import Cimi
from dsp0263 import check, check_collection
from gateway_process import GatewayProcess, write_config


@pytest.fixture(scope="module")
def c(gateway: GatewayProcess) -> Cimi:
    return Cimi(gateway.url)


@pytest.fixture(scope="module")
def catalog(c: Cimi) -> dict[str, Any]:
    configs = c.members("machineConfigs", "machineConfigurations")
    images = c.members("machineImages", "machineImages")
    return {"config": min(configs, key=lambda d: (d["cpu"], d["memory"])), "configs": configs, "image": images[0]}


def create(c: Cimi, catalog: dict[str, Any], name: str, **template: Any) -> tuple[str, dict[str, Any]]:
    tmpl = {"machineConfig": {"href": catalog["config"]["id"]}, "machineImage": {"href": catalog["image"]["id"]}}
    answer = c.call("POST", "machines", {"name": name, "machineTemplate": {**tmpl, **template}}, "MachineCreate")
    job = c.accepted(answer)
    return answer.headers["Location"], job


def test_inline_configuration_picks_the_smallest_that_fits(c: Cimi, catalog: dict[str, Any]) -> None:
    configs = sorted(catalog["configs"], key=lambda d: (d["cpu"], d["memory"]))
    bigger = configs[1]
    wanted = {"cpu": bigger["cpu"], "memory": bigger["memory"] - 1024}
    href, _ = create(c, catalog, "fits", machineConfig=wanted)
    machine = c.ok("GET", href).doc
    fitting = [d for d in configs if d["cpu"] >= wanted["cpu"] and d["memory"] >= wanted["memory"]]
    assert machine["machineConfig"]["href"] == fitting[0]["id"]
    too_big = c.call(
        "POST",
        "machines",
        {
            "machineTemplate": {
                "machineConfig": {"cpu": 4096, "memory": 1},
                "machineImage": {"href": catalog["image"]["id"]},
            }
        },
        "MachineCreate",
    )
    assert too_big.status == 400


def test_initial_state_stopped_ends_stopped(c: Cimi, catalog: dict[str, Any]) -> None:
    href, job = create(c, catalog, "cold", initialState="STOPPED")
    assert c.ok("GET", href).doc["state"] == "STOPPED"
    assert job["progress"] == 100 and job["returnCode"] == 0


def test_user_data_and_credential_reach_the_machine(gateway: GatewayProcess, c: Cimi, catalog: dict[str, Any]) -> None:
    made = c.ok("POST", "credentials", {"name": "cimi-key"}, "CredentialCreate", status=201)
    credential = check("Credential", made.doc)
    assert "BEGIN" in credential["privateKey"] and credential["key"].startswith("ssh-")
    again = c.ok("GET", made.headers["Location"]).doc
    assert "privateKey" not in again and again["key"] == credential["key"]
    user_data = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
    href, _ = create(c, catalog, "keyed", credential={"href": made.headers["Location"]}, userData=user_data)
    instance_id = ec2_id(gateway, href)
    described = gateway.client().describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert described["KeyName"] == "cimi-key"
    attr = gateway.client().describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    assert base64.b64decode(attr["UserData"]["Value"]) == b"#!/bin/sh\necho hello\n"
    assert c.call("POST", "machines", {"machineTemplate": {"userData": "%%%"}}, "MachineCreate").status == 400


def test_a_credential_by_value_is_imported(c: Cimi, catalog: dict[str, Any]) -> None:
    public = c.ok("POST", "credentials", {"name": "source-key"}, "CredentialCreate", status=201).doc["key"]
    href, _ = create(c, catalog, "by-value-key", credential={"key": public})
    assert c.ok("GET", href).doc["state"] == "STARTED"


def ec2_id(gateway: GatewayProcess, href: str) -> str:
    """The EC2 id of a CIMI machine, found through the EC2 frontend by the Name tag CIMI's name became."""
    name = Cimi(gateway.url).ok("GET", href).doc["name"]
    found = gateway.client().describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])["Reservations"]
    (instance,) = [i for r in found for i in r["Instances"] if i["State"]["Name"] != "terminated"]
    return instance["InstanceId"]


def test_cimi_and_ec2_see_the_same_machines(gateway: GatewayProcess, c: Cimi, catalog: dict[str, Any]) -> None:
    answer = c.call(
        "POST",
        "machines",
        {
            "name": "both-ways",
            "properties": {"team": "blue"},
            "machineTemplate": {
                "machineConfig": {"href": catalog["config"]["id"]},
                "machineImage": {"href": catalog["image"]["id"]},
            },
        },
        "MachineCreate",
    )
    c.accepted(answer)
    ec2 = gateway.client()
    instance = ec2.describe_instances(InstanceIds=[ec2_id(gateway, answer.headers["Location"])])["Reservations"][0][
        "Instances"
    ][0]
    assert {t["Key"]: t["Value"] for t in instance["Tags"]} == {"team": "blue", "Name": "both-ways"}
    # and the other way: a machine launched with RunInstances is in /cimi/machines with its configuration and image
    image_id = ec2.describe_images()["Images"][0]["ImageId"]
    launched = ec2.run_instances(
        ImageId=image_id,
        InstanceType=instance["InstanceType"],
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "from-ec2"}]}],
    )["Instances"][0]
    found = c.members("machines", "machines", **{"$filter": "name='from-ec2'"})
    assert len(found) == 1
    machine = check("Machine", found[0])
    config = c.ok("GET", machine["machineConfig"]["href"]).doc
    assert config["name"] == instance["InstanceType"]
    image = c.ok("GET", machine["machineImage"]["href"]).doc
    assert image["name"] == ec2.describe_images(ImageIds=[image_id])["Images"][0]["Name"]
    ec2.terminate_instances(InstanceIds=[launched["InstanceId"]])


def test_edit_renames_and_replaces_properties(c: Cimi, catalog: dict[str, Any]) -> None:
    href, _ = create(c, catalog, "editable")
    c.ok("PUT", href, {"properties": {"a": "1", "b": "2"}}, "Machine")
    edited = c.ok("PUT", href, {"properties": {"b": "3"}}, "Machine").doc
    assert edited["properties"] == {"b": "3"}
    assert c.members("machines", "machines", **{"$filter": "property['b']='3'"})[0]["id"] == href
    renamed = c.ok("PUT", href, {"name": "edited"}, "Machine").doc
    assert renamed["name"] == "edited" and renamed["properties"] == {"b": "3"}


def test_actions_follow_the_backend(c: Cimi, catalog: dict[str, Any]) -> None:
    href, _ = create(c, catalog, "acts")
    for action, state in (
        ("pause", "PAUSED"),
        ("start", "STARTED"),
        ("suspend", "SUSPENDED"),
        ("start", "STARTED"),
        ("restart", "STARTED"),
    ):
        job = c.accepted(c.action(href, action))
        assert job["action"].endswith(f"/action/{action}")
        assert c.ok("GET", href).doc["state"] == state
    job = c.accepted(c.action(href, "stop", force=True))
    assert c.ok("GET", href).doc["state"] == "STOPPED"
    assert job.get("nestedJobs")  # the backend call's own job
    nested = c.ok("GET", job["nestedJobs"][0]["href"]).doc
    assert nested["parentJob"]["href"] == job["id"]


def test_capture_by_posting_an_image_whose_location_is_the_machine(c: Cimi, catalog: dict[str, Any]) -> None:
    href, _ = create(c, catalog, "captured")
    answer = c.call("POST", "machineImages", {"name": "golden", "imageLocation": href}, "MachineImage")
    c.accepted(answer)
    image = check("MachineImage", c.ok("GET", answer.headers["Location"]).doc)
    assert image["name"] == "golden" and image["state"] == "AVAILABLE" and image["relatedImage"]["href"] == href
    c.accepted(c.call("DELETE", answer.headers["Location"]))
    assert c.get(answer.headers["Location"]).status == 404


def test_sub_collections(c: Cimi, catalog: dict[str, Any]) -> None:
    href, _ = create(c, catalog, "parts")
    disks = check_collection("MachineDisk", c.ok("GET", f"{href}/disks").doc, "disks")
    assert len(disks) == 1 and disks[0]["capacity"] > 0
    interfaces = check_collection(
        "MachineNetworkInterface", c.ok("GET", f"{href}/networkInterfaces").doc, "networkInterfaces"
    )
    assert len(interfaces) == 1 and interfaces[0]["state"] == "ACTIVE"
    assert c.ok("GET", interfaces[0]["id"]).doc["id"] == interfaces[0]["id"]
    assert c.get(f"{href}/nothing").status == 404
    assert c.get(f"{href}/networkInterfaces/nope").status == 404


def test_an_idempotency_key_makes_one_machine(c: Cimi, catalog: dict[str, Any]) -> None:
    body = {
        "name": "once",
        "machineTemplate": {
            "machineConfig": {"href": catalog["config"]["id"]},
            "machineImage": {"href": catalog["image"]["id"]},
        },
    }
    first = c.call("POST", "machines", body, "MachineCreate", headers={"Idempotency-Key": "cimi-once-1"})
    second = c.call("POST", "machines", body, "MachineCreate", headers={"Idempotency-Key": "cimi-once-1"})
    assert first.status == second.status == 202
    assert first.headers["Location"] == second.headers["Location"]
    assert len(c.members("machines", "machines", **{"$filter": "name='once'"})) == 1


def test_queries_on_a_collection(c: Cimi, catalog: dict[str, Any]) -> None:
    for i in range(3):
        create(c, catalog, f"q-{i}")
    names = [
        m["name"]
        for m in c.members("machines", "machines", **{"$filter": "name>='q-' and name<'q-9'", "$orderby": "name:desc"})
    ]
    assert names == ["q-2", "q-1", "q-0"]
    window = c.members(
        "machines", "machines", **{"$filter": "name>='q-' and name<'q-9'", "$orderby": "name", "$first": 2, "$last": 3}
    )
    assert [m["name"] for m in window] == ["q-1", "q-2"]
    selected = c.members("machines", "machines", **{"$filter": "name='q-0'", "$select": "name"})
    assert set(selected[0]) <= {"id", "resourceURI", "name"}
    expanded = c.members("machines", "machines", **{"$filter": "name='q-0'", "$expand": "machineConfig"})
    assert expanded[0]["machineConfig"]["cpu"] == catalog["config"]["cpu"]
    started = c.members("machines", "machines", **{"$filter": "state='STARTED' and cpu>=1"})
    assert {"q-0", "q-1", "q-2"} <= {m["name"] for m in started}
    created = c.members("machines", "machines", **{"$filter": "created>2000-01-01T00:00:00Z and name='q-1'"})
    assert len(created) == 1


def new_volume(c: Cimi, name: str) -> str:
    answer = c.call(
        "POST", "volumes", {"name": name, "volumeTemplate": {"volumeConfig": {"capacity": 1024 * 1024}}}, "VolumeCreate"
    )
    c.accepted(answer)
    return answer.headers["Location"]


def test_a_template_may_name_existing_volumes(c: Cimi, catalog: dict[str, Any]) -> None:
    volume = new_volume(c, "at-launch")
    href, job = create(c, catalog, "with-volume", volumes=[{"href": volume}])
    assert volume in [a["volume"]["href"] for a in c.members(f"{href}/volumes", "volumes")]
    assert job["nestedJobs"]  # the launch's and the attachment's own jobs
    taken = c.call(
        "POST",
        "machines",
        {
            "machineTemplate": {
                "machineConfig": {"href": catalog["config"]["id"]},
                "machineImage": {"href": catalog["image"]["id"]},
                "volumes": [{"href": volume}],
            }
        },
        "MachineCreate",
    )
    assert taken.status == 400  # attached already: refused before anything is made


def test_insert_and_remove_actions_attach_and_detach(c: Cimi, catalog: dict[str, Any]) -> None:
    href, _ = create(c, catalog, "inserts")
    volume = new_volume(c, "inserted")
    c.accepted(c.action(href, "insert", volume={"href": volume}))
    assert volume in [a["volume"]["href"] for a in c.members(f"{href}/volumes", "volumes")]
    c.accepted(c.action(href, "remove", volume={"href": volume}))
    assert volume not in [a["volume"]["href"] for a in c.members(f"{href}/volumes", "volumes")]


def test_a_followed_launch_fails_at_once_when_its_machine_is_deleted(tmp_path: Path, redis_server) -> None:
    """A machine deleted while still booting can never run: the job following its launch ends failed, and
    frees its runner, instead of polling until ``job_run_bound`` (a queue of such jobs starved the runners)."""
    config = write_config(tmp_path / "gw.toml", redis_server.url)
    config.write_text(config.read_text().replace("boot_delay = 0.2", "boot_delay = 120"))
    gw = GatewayProcess(config)
    try:
        c = Cimi(gw.url)
        configs = c.members("machineConfigs", "machineConfigurations")
        image = c.members("machineImages", "machineImages")[0]
        template = {"machineConfig": {"href": configs[0]["id"]}, "machineImage": {"href": image["id"]}}
        answer = c.call("POST", "machines", {"name": "short-lived", "machineTemplate": template}, "MachineCreate")
        assert answer.status == 202
        job_href, machine = answer.headers["CIMI-Job-URI"], answer.headers["Location"]
        assert c.ok("GET", job_href).doc["state"] in ("QUEUED", "RUNNING")  # the machine boots for two minutes
        assert c.call("DELETE", machine).status == 202
        deadline = time.monotonic() + 20
        while (job := c.ok("GET", job_href).doc)["state"] in ("QUEUED", "RUNNING") and time.monotonic() < deadline:
            time.sleep(0.2)
        assert job["state"] == "FAILED" and "deleted" in job["statusMessage"], job
    finally:
        gw.stop()
