"""CIMI Systems on OpenNebula and CloudStack through a real ``cloudgate serve``: a SystemTemplate of two machines
(one by a stored machine template, one by value), a volume and an address is created over each simulator as one
job; the system is STARTED with its members listed under it, stops and starts as a whole, and its deletion
removes every member, as the tenant's EC2 listings show. A machine the cloud refuses fails the system's job
after its other members were made, and those are rolled back.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from new_backends import CLOUDS, Cloud, Setup, ec2, running_clouds

FRONTENDS = Path(__file__).resolve().parents[1] / "frontends"
if str(FRONTENDS / "cimi") not in sys.path:  # the CIMI client lives beside the frontend's tests
    sys.path.insert(0, str(FRONTENDS / "cimi"))

from cimiclient import JSON, NAMESPACES, XML, Cimi  # noqa: E402

#: what the system's members are, as the sub-collections of a System name them
PARTS = {"machines": "machine", "volumes": "volume", "addresses": "address", "networks": "network"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with running_clouds(tmp_path_factory.mktemp("new-backends-systems")) as s:
        yield s


def live(s: Setup, c: Cloud) -> dict[str, dict[str, Any]]:
    """Everything of the cloud's first tenant as EC2 sees it: instances (not terminated), volumes, addresses."""
    client = ec2(s, c.tenant, c.region)
    instances = {
        i["InstanceId"]: {t["Key"]: t["Value"] for t in i.get("Tags", [])}
        for r in client.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    }
    return {
        "instances": instances,
        "volumes": {v["VolumeId"]: v for v in client.describe_volumes()["Volumes"]},
        "addresses": {a["AllocationId"]: a for a in client.describe_addresses()["Addresses"]},
    }


def refs(cimi: Cimi, image: str) -> dict[str, str]:
    """Hrefs of the smallest machine configuration, the cloud's image, and stored machine and volume templates."""
    configs = cimi.members("machineConfigs", "machineConfigurations")
    config = min(configs, key=lambda d: (d["cpu"], d["memory"]))["id"]
    image_href = next(i["id"] for i in cimi.members("machineImages", "machineImages") if i.get("name") == image)
    by_ref = {"machineConfig": {"href": config}, "machineImage": {"href": image_href}}
    machine = cimi.ok("POST", "machineTemplates", {"name": "web", **by_ref}, "MachineTemplateCreate", status=201)
    volume = cimi.ok(
        "POST", "volumeTemplates", {"name": "1g", "volumeConfig": {"capacity": 1024 * 1024}}, "VolumeTemplate", 201
    )
    return {
        "config": config,
        "image": image_href,
        "machineTemplate": machine.headers["Location"],
        "volumeTemplate": volume.headers["Location"],
    }


def descriptor(cimi: Cimi, kind: str, name: str, **template: Any) -> dict[str, Any]:
    return {"name": name, "type": f"{NAMESPACES[cimi.version]}/{kind}", "quantity": 1, **template}


@pytest.mark.parametrize(("media", "version"), [(JSON, "2"), (XML, "1")])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_system_is_made_stopped_started_and_deleted(setup: Setup, cloud: str, media: str, version: str) -> None:
    c = setup.clouds[cloud]
    cimi = Cimi(setup.gw.url, media, version, auth=(c.tenant, f"{c.tenant}-secret"))
    r = refs(cimi, c.image)
    template = {
        "name": f"{cloud}-appliance",
        "componentDescriptors": [
            descriptor(cimi, "Machine", "web", machineTemplate={"href": r["machineTemplate"]}),
            descriptor(
                cimi,
                "Machine",
                "db",
                machineTemplate={"machineConfig": {"href": r["config"]}, "machineImage": {"href": r["image"]}},
            ),
            descriptor(cimi, "Volume", "data", volumeTemplate={"href": r["volumeTemplate"]}, properties={"role": "db"}),
            descriptor(cimi, "Address", "ip"),
        ],
    }
    stored = cimi.ok("POST", "systemTemplates", template, "SystemTemplate", status=201).headers["Location"]
    assert [d["name"] for d in cimi.ok("GET", stored).doc["componentDescriptors"]] == ["web", "db", "data", "ip"]
    before = live(setup, c)

    made = cimi.call("POST", "systems", {"name": "sys", "systemTemplate": {"href": stored}}, "SystemCreate")
    job = cimi.accepted(made)
    href = made.headers["Location"]
    try:
        assert job["targetResource"]["href"] == href and job["action"] == "add"
        system = cimi.ok("GET", href).doc
        assert system["state"] == "STARTED" and system["name"] == "sys", system
        members: dict[str, list[str]] = {}
        for part, attribute in PARTS.items():
            collection = cimi.ok("GET", f"{href}/{part}").doc
            members[part] = [m[attribute]["href"] for m in collection.get(part, [])]
        assert {p: len(m) for p, m in members.items()} == {"machines": 2, "volumes": 1, "addresses": 1, "networks": 0}
        assert {cimi.ok("GET", m).doc["name"] for m in members["machines"]} == {"web", "db"}
        assert {cimi.ok("GET", m).doc["state"] for m in members["machines"]} == {"STARTED"}
        volume = cimi.ok("GET", members["volumes"][0]).doc
        assert volume["capacity"] == 1024 * 1024 and volume["state"] == "AVAILABLE", volume

        # EC2 sees the same members: two instances named as the components, the volume tagged, the address
        now = live(setup, c)
        new_instances = {i: tags for i, tags in now["instances"].items() if i not in before["instances"]}
        assert sorted(tags.get("Name") for tags in new_instances.values()) == ["db", "web"]
        new_volumes = [v for v in now["volumes"].values() if v["VolumeId"] not in before["volumes"]]
        data = [v for v in new_volumes if {"Key": "role", "Value": "db"} in v.get("Tags", [])]
        assert [v["Size"] for v in data] == [1] and data[0]["State"] == "available", new_volumes
        # any other new volume is a machine's boot disk, attached to one of the system's instances
        assert all(a["InstanceId"] in new_instances for v in new_volumes if v not in data for a in v["Attachments"])
        assert len(set(now["addresses"]) - set(before["addresses"])) == 1

        for action, state in (("stop", "STOPPED"), ("start", "STARTED")):
            cimi.accepted(cimi.action(href, action))
            assert cimi.ok("GET", href).doc["state"] == state
            assert {cimi.ok("GET", m).doc["state"] for m in members["machines"]} == {state}
        assert cimi.action(href, "start").status == 409  # every machine started already
    finally:
        deleted = cimi.call("DELETE", href)
        if deleted.status == 202:
            cimi.accepted(deleted)
    assert cimi.get(href).status == 404
    after = live(setup, c)
    assert {k: set(v) for k, v in after.items()} == {k: set(v) for k, v in before.items()}
    cimi.ok("DELETE", stored, status=204)  # the template too: nothing of the test stays


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_component_the_cloud_refuses_rolls_the_system_back(setup: Setup, cloud: str) -> None:
    """Components are made networks first, machines last: the cloud refusing the machine fails the job after the
    network (where the tenant may make one), the volume and the address were made, and those are removed; the
    system stays, empty, in ERROR until it is deleted."""
    c = setup.clouds[cloud]
    cimi = Cimi(setup.gw.url, JSON, "2", auth=(c.tenant, f"{c.tenant}-secret"))
    r = refs(cimi, c.image)
    components = [
        descriptor(cimi, "Address", "ip"),
        descriptor(cimi, "Volume", "data", volumeTemplate={"volumeConfig": {"capacity": 1024 * 1024}}),
        descriptor(cimi, "Machine", "doomed", machineTemplate={"href": r["machineTemplate"]}),
    ]
    if c.network_create:
        network = {"networkConfig": {"cidr": "10.77.0.0/16"}}
        components.append(descriptor(cimi, "Network", "net", networkTemplate=network))
    before, networks = live(setup, c), _networks(setup, c)
    c.refuse_launches(True)
    try:
        made = cimi.call("POST", "systems", {"name": "doomed", "systemTemplate": {"componentDescriptors": components}})
        assert made.status == 202, (made.status, made.raw)
        href = made.headers["Location"]
        job = wait_job(cimi, made.headers["CIMI-Job-URI"])
    finally:
        c.refuse_launches(False)
    assert job["state"] == "FAILED" and "'doomed' failed" in job["statusMessage"], job
    assert cimi.ok("GET", href).doc["state"] == "ERROR"
    for part in PARTS:
        assert cimi.ok("GET", f"{href}/{part}").doc["count"] == 0
    cimi.ok("DELETE", href, status=204)
    assert cimi.get(href).status == 404
    after = live(setup, c)
    assert {k: set(v) for k, v in after.items()} == {k: set(v) for k, v in before.items()}
    assert _networks(setup, c) == networks
    for stored in (r["machineTemplate"], r["volumeTemplate"]):
        cimi.ok("DELETE", stored, status=204)


def _networks(s: Setup, c: Cloud) -> set[str]:
    return {v["VpcId"] for v in ec2(s, c.tenant, c.region).describe_vpcs()["Vpcs"]}


def wait_job(cimi: Cimi, job_href: str) -> dict[str, Any]:
    """A job's document once it has ended, successful or not (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        job = cimi.ok("GET", job_href).doc
        if job["state"] in ("SUCCESS", "FAILED", "STOPPED"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
