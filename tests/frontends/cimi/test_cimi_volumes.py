"""CIMI Volumes and VolumeImages over HTTP against a real gateway (simulator backend), in JSON."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cimiclient import Cimi
from dsp0263 import check, check_collection
from ec2util import unique
from gateway_process import GatewayProcess

GIB = 1024 * 1024  # KiB


@pytest.fixture(scope="module")
def c(gateway: GatewayProcess) -> Cimi:
    return Cimi(gateway.url)


def create_volume(c: Cimi, template: dict[str, Any], **extra: Any) -> str:
    """A volume made and followed to its end; its URL."""
    answer = c.call("POST", "volumes", {"volumeTemplate": template, **extra}, "VolumeCreate")
    job = c.accepted(answer)
    href = answer.headers["Location"]
    assert job["targetResource"]["href"] == href
    return href


def delete(c: Cimi, href: str) -> None:
    c.accepted(c.call("DELETE", href))
    assert c.get(href).status == 404


@pytest.fixture(scope="module")
def machine(c: Cimi) -> str:
    config = c.members("machineConfigs", "machineConfigurations")[0]["id"]
    image = c.members("machineImages", "machineImages")[0]["id"]
    template = {"machineConfig": {"href": config}, "machineImage": {"href": image}}
    answer = c.call("POST", "machines", {"name": unique("vm"), "machineTemplate": template}, "MachineCreate")
    c.accepted(answer)
    return answer.headers["Location"]


def test_volume_create_list_edit_resize_delete(c: Cimi) -> None:
    name = unique("vol")
    answer = c.call(
        "POST",
        "volumes",
        {"name": name, "properties": {"team": "a"}, "volumeTemplate": {"volumeConfig": {"capacity": 2 * GIB}}},
        "VolumeCreate",
    )
    assert answer.status == 202 and answer.headers["Location"].startswith(c.base + "/volumes/")
    assert check("Volume", answer.doc)["state"] == "CREATING"
    c.accepted(answer)
    href = answer.headers["Location"]
    volume = check("Volume", c.ok("GET", href).doc)
    assert (volume["name"], volume["state"], volume["capacity"]) == (name, "AVAILABLE", 2 * GIB)
    assert volume["properties"] == {"team": "a"} and volume["bootable"] is False
    assert volume["type"].endswith(":standard")
    assert {op["rel"] for op in volume["operations"]} == {"edit", "delete"}

    listed = check_collection("Volume", c.ok("GET", "volumes").doc, "volumes")
    assert href in [v["id"] for v in listed]
    assert [
        v["id"] for v in c.members("volumes", "volumes", **{"$filter": f"name='{name}' and state='AVAILABLE'"})
    ] == [href]
    assert c.members("volumes", "volumes", **{"$filter": f"name='{name}' and state='ERROR'"}) == []
    by_property = c.members("volumes", "volumes", **{"$filter": f"property['team']='a' and name='{name}'"})
    assert [v["id"] for v in by_property] == [href]

    edited = c.ok("PUT", href, {"name": name + "-b", "description": "d", "properties": {"x": "1"}}, "Volume").doc
    assert (edited["name"], edited["description"], edited["properties"]) == (name + "-b", "d", {"x": "1"})

    c.accepted(c.call("PUT", href, {"capacity": 3 * GIB}, "Volume"))
    assert c.ok("GET", href).doc["capacity"] == 3 * GIB
    shrink = c.call("PUT", href, {"capacity": GIB}, "Volume")
    assert shrink.status == 400 and "shrink" in shrink.doc["message"]
    assert c.ok("GET", href).doc["capacity"] == 3 * GIB

    delete(c, href)
    assert href not in [v["id"] for v in c.members("volumes", "volumes")]


def test_volume_from_a_template_reference_and_from_a_volume_image(c: Cimi) -> None:
    template = c.call(
        "POST",
        "volumeTemplates",
        {"name": unique("vt"), "volumeConfig": {"href": c.url("volumeConfigs/ssd"), "capacity": GIB}},
        "VolumeTemplate",
    )
    assert template.status == 201, template.raw
    source = create_volume(c, {"href": template.headers["Location"]})
    assert c.ok("GET", source).doc["type"].endswith(":ssd")

    answer = c.call("POST", "volumeImages", {"imageLocation": source, "properties": {"k": "v"}}, "VolumeImage")
    c.accepted(answer)
    image_href = answer.headers["Location"]
    image = check("VolumeImage", c.ok("GET", image_href).doc)
    assert (image["state"], image["imageLocation"], image["bootable"]) == ("AVAILABLE", source, False)
    assert image["properties"] == {"k": "v"}
    assert image_href in [
        i["id"] for i in c.members("volumeImages", "volumeImages", **{"$filter": "state='AVAILABLE'"})
    ]

    copy = create_volume(c, {"volumeImage": {"href": image_href}})
    assert c.ok("GET", copy).doc["capacity"] == GIB

    for href in (copy, source, image_href):
        delete(c, href)
    c.ok("DELETE", template.headers["Location"], status=204)


def test_attach_and_detach_through_the_machine(c: Cimi, machine: str) -> None:
    href = create_volume(c, {"volumeConfig": {"capacity": GIB}})
    answer = c.call("POST", f"{machine}/volumes", {"volume": {"href": href}}, "MachineVolume")
    c.accepted(answer)
    link = answer.headers["Location"]
    attached = check_collection("MachineVolume", c.ok("GET", f"{machine}/volumes").doc, "volumes")
    assert [a["volume"]["href"] for a in attached if a["id"] == link] == [href]
    assert c.ok("GET", href).doc["state"] == "AVAILABLE"  # in use: CIMI shows the attachment, not a state
    busy = c.call("DELETE", href)
    assert busy.status == 409, busy.raw

    c.accepted(c.call("DELETE", link))
    assert href not in [a["volume"]["href"] for a in c.members(f"{machine}/volumes", "volumes")]
    delete(c, href)


def test_bad_references_and_missing_volumes(c: Cimi) -> None:
    missing = str(uuid.uuid4())
    bad_creates = [
        {},
        {"volumeTemplate": {}},
        {"volumeTemplate": {"volumeConfig": {"capacity": -1}}},
        {"volumeTemplate": {"volumeConfig": {"href": c.url("volumeConfigs/platinum")}}},
        {"volumeTemplate": {"volumeConfig": {"capacity": GIB, "type": "urn:x:gold"}}},
        {"volumeTemplate": {"volumeImage": {"href": c.url(f"volumeImages/{missing}")}}},
        {"volumeTemplate": {"volumeImage": {"href": c.url(f"machines/{missing}")}}},
        {"volumeTemplate": {"href": c.url(f"volumeTemplates/{missing}")}},
    ]
    for body in bad_creates:
        answer = c.call("POST", "volumes", body, "VolumeCreate")
        assert answer.status == 400, (body, answer.status, answer.raw)
    for body in ({}, {"imageLocation": c.url(f"volumes/{missing}")}, {"imageLocation": c.url("machines/x")}):
        answer = c.call("POST", "volumeImages", body, "VolumeImage")
        assert answer.status == 400, (body, answer.status, answer.raw)
    for path in (f"volumes/{missing}", f"volumeImages/{missing}", "volumes/not-an-id"):
        assert c.get(path).status == 404, path
        assert c.call("DELETE", path).status == 404, path
    assert c.call("PUT", f"volumes/{missing}", {"name": "x"}, "Volume").status == 404


def test_readers_cannot_write_and_other_tenants_cannot_see(c: Cimi, gateway: GatewayProcess) -> None:
    href = create_volume(c, {"volumeConfig": {"capacity": GIB}})
    reader = Cimi(gateway.url, auth=("reader", "reader-secret"))
    assert reader.ok("GET", href).doc["id"] == href
    body = {"volumeTemplate": {"volumeConfig": {"capacity": GIB}}}
    assert reader.call("POST", "volumes", body, "VolumeCreate").status == 403
    assert reader.call("PUT", href, {"name": "x"}, "Volume").status == 403
    assert reader.call("DELETE", href).status == 403
    assert reader.call("POST", "volumeImages", {"imageLocation": href}, "VolumeImage").status == 403

    other = Cimi(gateway.url, auth=("other", "other-secret"))
    assert other.get(href).status == 404
    assert href not in [v["id"] for v in other.members("volumes", "volumes")]
    assert other.call("DELETE", href).status == 404
    assert other.call("POST", "volumeImages", {"imageLocation": href}, "VolumeImage").status == 400
    delete(c, href)
