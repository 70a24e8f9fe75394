"""CIMI Systems and SystemTemplates over HTTP on a live gateway (simulator backend, JSON): a system made of
machines, a volume, a network and an address created as one job, acted on and deleted; a component the
simulator refuses rolls the system back with nothing left behind; bad templates are 400; other tenants see
nothing; a worker killed in the middle of a create leaves the job to another, which makes nothing twice."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from gateway_process import GatewayProcess, write_config

V2 = "http://schemas.dmtf.org/cimi/2"
V1 = "http://schemas.dmtf.org/cimi/1"
#: more than the simulator's largest volume (16 TiB), in KiB: a machine asking for it is refused by the cloud
TOO_BIG_KIB = 16385 * 1024 * 1024


@pytest.fixture(scope="module")
def cimi(gateway: Any) -> tuple[requests.Session, str]:
    session = requests.Session()
    session.auth = ("demo", "demo-secret")
    return session, gateway.url + "/cimi"


@pytest.fixture(scope="module")
def refs(cimi: tuple[requests.Session, str]) -> dict[str, str]:
    """Hrefs of a machine configuration, an image and a stored machine template."""
    s, base = cimi
    config = s.get(f"{base}/machineConfigs").json()["machineConfigurations"][0]["id"]
    image = s.get(f"{base}/machineImages").json()["machineImages"][0]["id"]
    r = s.post(
        f"{base}/machineTemplates",
        json={"name": "web", "machineConfig": {"href": config}, "machineImage": {"href": image}},
    )
    assert r.status_code == 201, r.text
    return {"config": config, "image": image, "machineTemplate": r.headers["Location"]}


def finished(s: requests.Session, job_uri: str) -> dict[str, Any]:
    for _ in range(240):
        job = s.get(job_uri).json()
        if job["state"] in ("SUCCESS", "FAILED"):
            return job
        time.sleep(0.25)
    raise AssertionError(f"job {job_uri} did not end: {job}")


def live(gateway: Any) -> dict[str, set[str]]:
    """Everything of the demo tenant as EC2 sees it (machines not terminated)."""
    ec2 = gateway.client()
    machines = {
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    }
    return {
        "machines": machines,
        "volumes": {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]},
        "networks": {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]},
        "addresses": {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]},
    }


def component(kind: str, name: str, quantity: int = 1, **template: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": name, "type": f"{V2}/{kind}", "quantity": quantity}
    doc.update(template)
    return doc


def test_system_from_a_stored_template_is_made_acted_on_and_deleted(
    cimi: tuple[requests.Session, str], refs: dict[str, str], gateway: Any
) -> None:
    s, base = cimi
    before = live(gateway)
    r = s.post(f"{base}/volumeTemplates", json={"name": "2g", "volumeConfig": {"capacity": 2 * 1024 * 1024}})
    assert r.status_code == 201, r.text
    template = {
        "name": "appliance",
        "componentDescriptors": [
            component("Machine", "web", machineTemplate={"href": refs["machineTemplate"]}),
            component(
                "Machine",
                "db",
                machineTemplate={"machineConfig": {"href": refs["config"]}, "machineImage": {"href": refs["image"]}},
            ),
            component(
                "Volume",
                "data",
                volumeTemplate={"href": r.headers["Location"]},
                properties={"role": "db"},
            ),
            {"name": "net", "type": f"{V1}/Network", "networkTemplate": {"name": "n"}},  # a 1.1 type URI
            {"name": "ip", "type": "Address"},  # a bare type name, no template: an address from the pool
        ],
    }
    r = s.post(f"{base}/systemTemplates", json=template)
    assert r.status_code == 201, r.text
    tmpl_href = r.headers["Location"]
    assert [d["name"] for d in s.get(tmpl_href).json()["componentDescriptors"]] == ["web", "db", "data", "net", "ip"]

    r = s.post(
        f"{base}/systems", json={"name": "sys1", "properties": {"app": "x"}, "systemTemplate": {"href": tmpl_href}}
    )
    assert r.status_code == 202, r.text
    href, job_uri = r.headers["Location"], r.headers["CIMI-Job-URI"]
    assert r.json()["id"] == href and r.json()["state"] == "CREATING"
    job = finished(s, job_uri)
    assert job["state"] == "SUCCESS", job
    assert job["targetResource"] == {"href": href}
    assert job["action"] == "add"
    assert len(job["nestedJobs"]) >= 5  # one per member made, at least

    system = s.get(href).json()
    assert system["state"] == "STARTED" and system["name"] == "sys1" and system["properties"] == {"app": "x"}
    rels = {o["rel"].rsplit("/", 1)[-1] for o in system["operations"]}
    assert rels == {"edit", "delete", "stop", "restart"}
    members = {}
    for part, attr in (
        ("machines", "machine"),
        ("volumes", "volume"),
        ("networks", "network"),
        ("addresses", "address"),
    ):
        coll = s.get(system[part]["href"]).json()
        assert coll["resourceURI"].endswith(f"/System{attr.capitalize()}Collection")
        members[part] = [m[attr]["href"] for m in coll[part]]
        for m in coll[part]:
            assert s.get(m["id"]).json() == m
    assert [len(members[p]) for p in ("machines", "volumes", "networks", "addresses")] == [2, 1, 1, 1]
    listed = {m["id"] for m in s.get(f"{base}/machines").json()["machines"]}
    assert set(members["machines"]) <= listed
    assert {s.get(m).json()["name"] for m in members["machines"]} == {"web", "db"}
    made = live(gateway)
    # the volumes: the system's own and each machine's boot disk
    assert {k: len(made[k] - before[k]) for k in made} == {"machines": 2, "volumes": 3, "networks": 1, "addresses": 1}

    tagged = gateway.client().describe_volumes(Filters=[{"Name": "tag:role", "Values": ["db"]}])["Volumes"]
    assert [v["Size"] for v in tagged] == [2]

    # XML renders the same system
    assert s.get(href, headers={"Accept": "application/xml"}).status_code == 200

    r = s.put(href, json={"name": "sys1b", "properties": {"app": "y"}})
    assert r.status_code == 200 and r.json()["name"] == "sys1b" and r.json()["properties"] == {"app": "y"}

    for action, state in (("stop", "STOPPED"), ("start", "STARTED")):
        r = s.post(href, json={"action": f"{V2}/action/{action}"})
        assert r.status_code == 202, r.text
        job = finished(s, r.headers["CIMI-Job-URI"])
        assert job["state"] == "SUCCESS", job
        assert len(job["nestedJobs"]) == 2  # one per machine
        assert s.get(href).json()["state"] == state
        assert {s.get(m).json()["state"] for m in members["machines"]} == {state}
    r = s.post(href, json={"action": f"{V2}/action/start"})
    assert r.status_code == 409  # every machine already started

    r = s.delete(href)
    assert r.status_code == 202, r.text
    job = finished(s, r.headers["CIMI-Job-URI"])
    assert job["state"] == "SUCCESS", job
    assert s.get(href).status_code == 404
    listed = {m["id"] for m in s.get(f"{base}/machines").json()["machines"]}
    assert not set(members["machines"]) & listed
    assert live(gateway) == before


def test_a_failing_component_rolls_the_system_back(
    cimi: tuple[requests.Session, str], refs: dict[str, str], gateway: Any
) -> None:
    s, base = cimi
    before = live(gateway)
    good = {"machineConfig": {"href": refs["config"]}, "machineImage": {"href": refs["image"]}}
    # passes every check the gateway makes; the simulator refuses the 16 TiB + 1 GiB disk at launch
    bad = {**good, "volumeTemplates": [{"volumeConfig": {"capacity": TOO_BIG_KIB}, "initialLocation": "/dev/vdb"}]}
    template = {
        "componentDescriptors": [
            component("Network", "net"),
            component("Volume", "data", volumeTemplate={"volumeConfig": {"capacity": 1024 * 1024}}),
            component("Address", "ip"),
            component("Machine", "ok", 2, machineTemplate=good),
            component("Machine", "huge", machineTemplate=bad),
        ]
    }
    r = s.post(f"{base}/systems", json={"name": "doomed", "systemTemplate": template})
    assert r.status_code == 202, r.text
    href = r.headers["Location"]
    job = finished(s, r.headers["CIMI-Job-URI"])
    assert job["state"] == "FAILED"
    assert "'huge' failed" in job["statusMessage"] and "16384" in job["statusMessage"], job
    assert len(job["nestedJobs"]) >= 5  # what was made, the refused launch, and the rollback's deletions
    system = s.get(href).json()
    assert system["state"] == "ERROR"
    assert {o["rel"] for o in system["operations"]} == {"edit", "delete"}
    for part in ("machines", "volumes", "networks", "addresses"):
        assert s.get(f"{href}/{part}").json()["count"] == 0
    assert live(gateway) == before  # nothing orphaned
    assert s.delete(href).status_code == 204
    assert s.get(href).status_code == 404


@pytest.mark.parametrize(
    ("descriptors", "words"),
    [
        ([], "componentDescriptors"),
        ([{"name": "a", "type": "Credential"}], "made of"),
        ([{"name": "a", "type": "http://example.com/Machine"}], "resource URI"),
        ([{"name": "a", "type": "Machine"}], "needs a 'machineTemplate'"),
        ([{"name": "a", "type": "Machine", "quantity": 0, "machineTemplate": {"href": "T"}}], "quantity"),
        ([{"name": "a", "type": "Network", "quantity": 21}], "quantity"),
        ([{"name": "a", "type": "Volume", "machineTemplate": {"href": "T"}}], "takes a 'volumeTemplate'"),
        (
            [{"name": "a", "type": "Machine", "machineTemplate": {"href": "/cimi/volumeTemplates/x"}}],
            "machineTemplates",
        ),
        ([{"name": "a", "type": "Machine", "machineTemplate": {"href": "/cimi/machineTemplates/nope"}}], "names no"),
        ([{"name": "a", "type": "Network"}, {"name": "a", "type": "Address"}], "already named"),
        ([{"name": f"n{i}", "type": "Network", "quantity": 20} for i in range(6)], "at most"),
    ],
)
def test_bad_templates_are_refused(
    cimi: tuple[requests.Session, str], refs: dict[str, str], descriptors: list[Any], words: str
) -> None:
    s, base = cimi
    descriptors = [
        {k: ({"href": refs["machineTemplate"]} if v == {"href": "T"} else v) for k, v in d.items()} for d in descriptors
    ]
    r = s.post(f"{base}/systemTemplates", json={"componentDescriptors": descriptors})
    assert r.status_code == 400 and words in r.json()["message"], r.text
    r = s.post(f"{base}/systems", json={"systemTemplate": {"componentDescriptors": descriptors}})
    assert r.status_code == 400 and words in r.json()["message"], r.text


def test_bad_system_creates_are_refused(cimi: tuple[requests.Session, str], refs: dict[str, str]) -> None:
    s, base = cimi
    cases = [
        ({"name": "x"}, "systemTemplate"),
        ({"systemTemplate": {"href": f"{base}/systemTemplates/nope"}}, "names no"),
        ({"systemTemplate": {"href": f"{base}/machineTemplates/nope"}}, "systemTemplates"),
        (
            {
                "systemTemplate": {
                    "componentDescriptors": [
                        component("Machine", "m", machineTemplate={"machineImage": {"href": refs["image"]}})
                    ]
                }
            },
            "machineConfig",
        ),
        (
            {
                "systemTemplate": {
                    "componentDescriptors": [component("Volume", "v", volumeTemplate={"volumeConfig": {}})]
                }
            },
            "capacity",
        ),
    ]
    for body, words in cases:
        r = s.post(f"{base}/systems", json=body)
        assert r.status_code == 400 and words in r.json()["message"], (body, r.text)


def test_other_tenants_and_readers(cimi: tuple[requests.Session, str], gateway: Any) -> None:
    s, base = cimi
    template = {"componentDescriptors": [component("Network", "net")]}
    r = s.post(f"{base}/systems", json={"name": "mine", "systemTemplate": template})
    assert r.status_code == 202, r.text
    href = r.headers["Location"]
    assert finished(s, r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    assert s.get(href).json()["state"] == "STARTED"  # no machines: nothing stopped

    other = requests.Session()
    other.auth = ("other", "other-secret")
    assert other.get(href).status_code == 404
    assert other.get(f"{href}/networks").status_code == 404
    assert other.delete(href).status_code == 404
    assert other.post(href, json={"action": f"{V2}/action/stop"}).status_code == 404
    assert href not in {d["id"] for d in other.get(f"{base}/systems").json().get("systems", [])}

    reader = requests.Session()
    reader.auth = ("reader", "reader-secret")
    assert reader.get(href).status_code == 200
    assert reader.delete(href).status_code == 403
    assert reader.post(f"{base}/systems", json={"systemTemplate": template}).status_code == 403

    assert href in {d["id"] for d in s.get(f"{base}/systems").json()["systems"]}
    found = s.get(f"{base}/systems", params={"$filter": "name='mine' and state='STARTED'"}).json()
    assert [d["id"] for d in found["systems"]] == [href]
    r = s.post(href, json={"action": f"{V2}/action/stop"})
    assert r.status_code == 409  # a system without machines has nothing to stop
    r = s.delete(href)
    assert r.status_code == 202
    assert finished(s, r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    assert s.get(href).status_code == 404


@pytest.fixture(scope="module")
def slow(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, redis.Redis]]:
    """A gateway whose simulator holds every create's answer back a second (``faults.create_delay``), whose job
    leases and create tokens lapse within two seconds of their worker's death; on Redis database 0 (emptied)."""
    store = redis.Redis.from_url(redis_server.url)
    store.flushdb()
    path = write_config(
        tmp_path_factory.mktemp("slow") / "gw.toml",
        redis_server.url,
        backend_extra="faults = { create_delay = 1.0 }",
    )
    path.write_text(
        path.read_text().replace("[translator]\n", "[translator]\njob_lease = 2.0\nidempotency_lease = 1.0\n")
    )
    gw = GatewayProcess(Path(path))
    yield gw, store
    gw.stop()
    store.close()


def test_a_create_taken_over_after_its_worker_died_makes_nothing_twice(
    slow: tuple[GatewayProcess, redis.Redis],
) -> None:
    gw, store = slow
    s = requests.Session()
    s.auth = ("demo", "demo-secret")
    base = gw.url + "/cimi"
    config = s.get(f"{base}/machineConfigs").json()["machineConfigurations"][0]["id"]
    image = s.get(f"{base}/machineImages").json()["machineImages"][0]["id"]
    template = {
        "componentDescriptors": [
            component("Volume", "disk", 2, volumeTemplate={"volumeConfig": {"capacity": 1024 * 1024}}),
            component(
                "Machine", "m", machineTemplate={"machineConfig": {"href": config}, "machineImage": {"href": image}}
            ),
        ]
    }
    before = live(gw)
    r = s.post(f"{base}/systems", json={"name": "taken-over", "systemTemplate": template})
    assert r.status_code == 202, r.text
    href, job_uri = r.headers["Location"], r.headers["CIMI-Job-URI"]
    job_id = job_uri.rsplit("/", 1)[1]
    deadline = time.monotonic() + 20
    # the first volume recorded, the second made in the cloud with its answer held back: kill the job's worker
    while s.get(f"{href}/volumes").json()["count"] < 1 or len(live(gw)["volumes"] - before["volumes"]) < 2:
        assert time.monotonic() < deadline, s.get(job_uri).json()
        time.sleep(0.05)
    owner = store.hget("cg:jobq:{default}:owners", f"{job_id}:demo")
    assert owner is not None, "the system's job has no runner"
    pid = int(owner.decode().split(":")[1])
    assert pid != gw.proc.pid
    os.kill(pid, signal.SIGKILL)
    s.close()  # its pooled connections may be to the dead worker

    job = finished(s, job_uri)
    assert job["state"] == "SUCCESS", job
    assert store.hget(f"cg:job:{{demo}}:{job_id}", "attempts") == b"2"  # run again by another runner
    assert [s.get(f"{href}/{p}").json()["count"] for p in ("volumes", "machines")] == [2, 1]
    made = live(gw)
    # two volumes and the machine's boot disk, one machine: nothing made twice
    assert {k: len(made[k] - before[k]) for k in made} == {"machines": 1, "volumes": 3, "networks": 0, "addresses": 0}

    r = s.delete(href)
    assert r.status_code == 202
    assert finished(s, r.headers["CIMI-Job-URI"])["state"] == "SUCCESS"
    assert live(gw) == before
