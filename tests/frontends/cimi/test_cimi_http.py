"""CIMI's HTTP semantics over a live gateway: statuses, headers, errors in the requested rendering,
negotiation of version and rendering, bad input refused with nothing made, jobs readable on any node."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from cimiclient import JSON, XML, Cimi, to_xml
from gateway_process import GatewayProcess, StartGateway
from lxml import etree

NS2 = "http://schemas.dmtf.org/cimi/2"


@pytest.fixture(scope="module")
def c(gateway: GatewayProcess) -> Cimi:
    return Cimi(gateway.url)


@pytest.fixture(scope="module")
def machine(c: Cimi) -> Iterator[str]:
    """One started machine for the module (deleted at the end)."""
    config = c.members("machineConfigs", "machineConfigurations")[0]["id"]
    image = c.members("machineImages", "machineImages")[0]["id"]
    body = {
        "name": "http-tests",
        "machineTemplate": {"machineConfig": {"href": config}, "machineImage": {"href": image}},
    }
    made = c.call("POST", "machines", body, "MachineCreate")
    c.accepted(made)
    yield made.headers["Location"]
    c.call("DELETE", made.headers["Location"])


def raw(gateway: GatewayProcess, method: str, path: str, **kw: Any) -> requests.Response:
    kw.setdefault("auth", ("demo", "demo-secret"))
    return requests.request(method, f"{gateway.url}/cimi/{path}", timeout=30, **kw)


def machine_count(c: Cimi) -> int:
    return c.ok("GET", "machines").doc["count"]


# -- authentication and authorization -------------------------------------------------------------------
def test_no_credentials_is_401_with_basic_challenge(gateway: GatewayProcess) -> None:
    r = raw(gateway, "GET", "machines", auth=None)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic ")
    assert r.json()["status"] == 401


@pytest.mark.parametrize(
    "header",
    [
        "Basic !!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Bearer x",
        "Basic " + base64.b64encode(b"demo:wrong").decode(),
    ],
)
def test_bad_credentials_are_401(gateway: GatewayProcess, header: str) -> None:
    r = raw(gateway, "GET", "machines", auth=None, headers={"Authorization": header})
    assert r.status_code == 401 and "WWW-Authenticate" in r.headers


def test_a_reader_reads_but_cannot_write(gateway: GatewayProcess, c: Cimi) -> None:
    reader = Cimi(gateway.url, auth=("reader", "reader-secret"))
    assert reader.get("machines").status == 200
    before = machine_count(c)
    answer = reader.call("POST", "machineTemplates", {"name": "nope"}, "MachineTemplateCreate")
    assert answer.status == 403 and answer.doc["status"] == 403
    image = c.members("machineImages", "machineImages")[0]["id"]
    config = c.members("machineConfigs", "machineConfigurations")[0]["id"]
    body = {"machineTemplate": {"machineConfig": {"href": config}, "machineImage": {"href": image}}}
    assert reader.call("POST", "machines", body, "MachineCreate").status == 403
    assert machine_count(c) == before


def test_another_tenant_sees_nothing_of_ours(gateway: GatewayProcess, machine: str) -> None:
    other = Cimi(gateway.url, auth=("other", "other-secret"))
    assert other.get(machine).status == 404
    assert machine not in {m["id"] for m in other.members("machines", "machines")}
    assert other.action(machine, "stop").status == 404


# -- statuses ---------------------------------------------------------------------------------------------
def test_unknown_collection_and_member_are_404(c: Cimi) -> None:
    assert c.get("nothingHere").status == 404
    assert c.get("machines/00000000-0000-5000-8000-000000000000").status == 404
    assert c.get("jobs/00000000-0000-7000-8000-000000000000").status == 404


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "machines", {"GET", "POST"}),
        ("DELETE", "machineConfigs", {"GET"}),
        ("POST", "cloudEntryPoint", {"GET"}),
        ("POST", "machineConfigs", {"GET"}),
    ],
)
def test_method_not_allowed_names_what_is(gateway: GatewayProcess, method: str, path: str, allow: set[str]) -> None:
    r = raw(gateway, method, path, data=b"{}", headers={"Content-Type": JSON})
    assert r.status_code == 405, r.text
    assert {m.strip() for m in r.headers["Allow"].split(",")} == allow


def test_a_member_that_cannot_be_edited_is_405(gateway: GatewayProcess, c: Cimi) -> None:
    config = c.members("machineConfigs", "machineConfigurations")[0]["id"]
    r = requests.put(config, json={"name": "x"}, auth=("demo", "demo-secret"), timeout=30)
    assert r.status_code == 405 and "GET" in r.headers["Allow"]


def test_an_action_not_allowed_in_this_state_is_409(c: Cimi, machine: str) -> None:
    answer = c.action(machine, "start")  # it is started
    assert answer.status == 409 and "STARTED" in answer.doc["message"]


def test_an_unknown_action_is_400(c: Cimi, machine: str) -> None:
    assert c.action(machine, "fly").status == 400


def test_if_match_guards_edits_and_deletes(c: Cimi) -> None:
    made = c.ok("POST", "machineTemplates", {"name": "etag"}, "MachineTemplateCreate", status=201)
    href = made.headers["Location"]
    read = c.ok("GET", href)
    etag = read.headers["ETag"]
    stale = c.call("PUT", href, {"name": "etag-2"}, "MachineTemplate", headers={"If-Match": '"stale"'})
    assert stale.status == 412 and stale.doc["status"] == 412
    edited = c.call("PUT", href, {"name": "etag-2"}, "MachineTemplate", headers={"If-Match": etag})
    assert edited.status == 200 and edited.doc["name"] == "etag-2"
    assert c.call("DELETE", href, headers={"If-Match": etag}).status == 412  # changed since
    assert c.call("DELETE", href, headers={"If-Match": c.ok("GET", href).headers["ETag"]}).status == 204


def test_every_member_has_an_etag(c: Cimi, machine: str) -> None:
    first = c.ok("GET", machine).headers["ETag"]
    assert first.startswith('"') and c.ok("GET", machine).headers["ETag"] == first


# -- bad input ------------------------------------------------------------------------------------------
BAD_BODIES = [
    (JSON, b"{", "malformed JSON"),
    (JSON, b"[]", "not an object"),
    (JSON, b'{"machineTemplate": {"machineConfig": 5}}', "wrong type"),
    (JSON, b'{"bogus": 1, "machineTemplate": {}}', "unknown attribute"),
    (XML, b"<MachineCreate", "malformed XML"),
    (
        XML,
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><MachineCreate xmlns="'
        + NS2.encode()
        + b'"><name>&a;</name></MachineCreate>',
        "DTD",
    ),
    (XML, b'<MachineCreate xmlns="' + NS2.encode() + b'"><nope/></MachineCreate>', "unknown element"),
]


@pytest.mark.parametrize(("media", "body", "why"), BAD_BODIES, ids=[b[2] for b in BAD_BODIES])
def test_bad_bodies_are_400_and_make_nothing(
    gateway: GatewayProcess, c: Cimi, media: str, body: bytes, why: str
) -> None:
    before = machine_count(c)
    r = raw(gateway, "POST", "machines", data=body, headers={"Content-Type": media, "Accept": media})
    assert r.status_code == 400, (why, r.text)
    if media == XML:
        root = etree.fromstring(r.content)
        assert etree.QName(root).localname == "Error"
    else:
        assert r.json()["status"] == 400
    assert machine_count(c) == before


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"machineTemplate": {"machineConfig": {"href": "http://x/cimi/machineConfigs/nope"}}}, "no image"),
        (
            {
                "machineTemplate": {
                    "machineImage": {"href": "http://x/cimi/volumes/abc"},
                    "machineConfig": {"cpu": 1, "memory": 1},
                }
            },
            "wrong collection",
        ),
        (
            {
                "machineTemplate": {
                    "machineImage": {"href": "http://x/cimi/machineImages/00000000-0000-5000-8000-000000000000"},
                    "machineConfig": {"cpu": 1, "memory": 1},
                }
            },
            "no such image",
        ),
        ({"machineTemplate": {"href": "http://x/cimi/machineTemplates/nope"}}, "no such template"),
        ({}, "no template"),
    ],
)
def test_bad_references_are_400(c: Cimi, body: dict[str, Any], why: str) -> None:
    before = machine_count(c)
    answer = c.call("POST", "machines", body, "MachineCreate")
    assert answer.status == 400, (why, answer.raw)
    assert machine_count(c) == before


def test_oversized_body_is_413(gateway: GatewayProcess) -> None:
    r = raw(gateway, "POST", "machines", data=b"{" + b" " * 2_000_000 + b"}", headers={"Content-Type": JSON})
    assert r.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_unknown_body_type_is_415(gateway: GatewayProcess, content_type: str) -> None:
    r = raw(gateway, "POST", "machines", data=b"name=x", headers={"Content-Type": content_type})
    assert r.status_code == 415


def test_malformed_filter_says_where(c: Cimi) -> None:
    answer = c.get("machines?$filter=state='STARTED' and and")
    assert answer.status == 400 and "column" in answer.doc["message"]
    assert c.get("machines?$first=0").status == 400
    assert c.get("machines?$bogus=1").status == 400


# -- negotiation -------------------------------------------------------------------------------------------
def test_versions_are_negotiated_and_named(gateway: GatewayProcess) -> None:
    for asked, said, ns in (
        ("1.1", "1.1.0", "/cimi/1/"),
        ("2.0", "2.0.0", "/cimi/2/"),
        ("1.1, 2.0", "2.0.0", "/cimi/2/"),
        (None, "2.0.0", "/cimi/2/"),
    ):
        headers = {"CIMI-Specification-Version": asked} if asked else {}
        r = raw(gateway, "GET", "cloudEntryPoint", headers=headers)
        assert r.status_code == 200 and r.headers["CIMI-Specification-Version"] == said
        assert ns in r.json()["resourceURI"]
    assert raw(gateway, "GET", "cloudEntryPoint", headers={"CIMI-Specification-Version": "3.0"}).status_code == 400


def test_rendering_follows_accept_then_the_request(gateway: GatewayProcess) -> None:
    assert raw(gateway, "GET", "cloudEntryPoint", headers={"Accept": XML}).headers["Content-Type"].startswith(XML)
    assert (
        raw(gateway, "GET", "cloudEntryPoint", headers={"Accept": "text/xml"}).headers["Content-Type"].startswith(XML)
    )
    assert raw(gateway, "GET", "cloudEntryPoint", headers={"Accept": "*/*"}).headers["Content-Type"].startswith(JSON)
    body = to_xml({"name": "negotiated"}, "MachineTemplateCreate", "2")
    r = raw(gateway, "POST", "machineTemplates", data=body, headers={"Content-Type": XML})
    assert r.status_code == 201 and r.headers["Content-Type"].startswith(XML)
    assert raw(gateway, "GET", "cloudEntryPoint", headers={"Accept": "text/html"}).status_code == 406


def test_xml_shapes_per_version(gateway: GatewayProcess, machine: str) -> None:
    """2.0 wraps lists (``<operations><operation/>``), 1.1 repeats them unwrapped."""
    for version, wrapped in (("2.0", True), ("1.1", False)):
        r = raw(gateway, "GET", "machines", headers={"Accept": XML, "CIMI-Specification-Version": version})
        root = etree.fromstring(r.content)
        ns = etree.QName(root).namespace
        assert ns.endswith("/1" if version == "1.1" else "/2")
        children = [etree.QName(e).localname for e in root]
        if wrapped:
            assert "machines" in children and "Machine" not in children
            assert root.find(f"{{{ns}}}operations/{{{ns}}}operation") is not None
        else:
            assert "Machine" in children and "machines" not in children
            assert root.find(f"{{{ns}}}operation") is not None


# -- jobs are everyone's ------------------------------------------------------------------------------------
def test_a_job_started_on_one_node_is_read_on_another(start_gateway: StartGateway) -> None:
    first = start_gateway()
    second = GatewayProcess(first.config)
    try:
        a, b = Cimi(first.url), Cimi(second.url)
        config = a.members("machineConfigs", "machineConfigurations")[0]["id"]
        image = a.members("machineImages", "machineImages")[0]["id"]
        body = {"machineTemplate": {"machineConfig": {"href": config}, "machineImage": {"href": image}}}
        made = a.call("POST", "machines", body, "MachineCreate")
        assert made.status == 202
        job_path = made.headers["CIMI-Job-URI"].split("/cimi/", 1)[1]
        job = b.wait(job_path)
        assert job["targetResource"]["href"].endswith(made.headers["Location"].split("/cimi/", 1)[1])
        assert b.ok("GET", made.headers["Location"].split("/cimi/", 1)[1]).doc["state"] == "STARTED"
    finally:
        second.stop()
