"""CIMI Networks, NetworkConfigurations and Addresses over HTTP against a real gateway (simulator backend), JSON."""

from __future__ import annotations

import ipaddress
import uuid

import pytest
from cimiclient import XML, Cimi
from dsp0263 import check, check_collection
from ec2util import unique
from gateway_process import GatewayProcess


@pytest.fixture(scope="module")
def c(gateway: GatewayProcess) -> Cimi:
    return Cimi(gateway.url)


@pytest.fixture(scope="module")
def machine(c: Cimi) -> str:
    config = c.members("machineConfigs", "machineConfigurations")[0]["id"]
    image = c.members("machineImages", "machineImages")[0]["id"]
    template = {"machineConfig": {"href": config}, "machineImage": {"href": image}}
    answer = c.call("POST", "machines", {"name": unique("vm"), "machineTemplate": template}, "MachineCreate")
    c.accepted(answer)
    return answer.headers["Location"]


def create_network(c: Cimi, template: dict, **extra: object) -> str:
    answer = c.call("POST", "networks", {"networkTemplate": template, **extra}, "NetworkCreate")
    c.accepted(answer)
    return answer.headers["Location"]


def delete(c: Cimi, href: str) -> None:
    c.accepted(c.call("DELETE", href))
    assert c.get(href).status == 404


def test_network_create_list_act_edit_delete(c: Cimi) -> None:
    name = unique("net")
    answer = c.call(
        "POST", "networks", {"name": name, "properties": {"t": "1"}, "networkTemplate": {}}, "NetworkCreate"
    )
    assert answer.status == 202 and answer.headers["Location"].startswith(c.base + "/networks/")
    c.accepted(answer)
    href = answer.headers["Location"]
    network = check("Network", c.ok("GET", href).doc)
    assert (network["name"], network["state"], network["networkType"]) == (name, "STARTED", "PRIVATE")
    assert network["properties"] == {"t": "1"}
    cidr = ipaddress.ip_network(network["cidr"])
    assert cidr.prefixlen == 16 and cidr.subnet_of(ipaddress.ip_network("10.0.0.0/8"))
    others = [n for n in check_collection("Network", c.ok("GET", "networks").doc, "networks") if n["id"] != href]
    assert others and not any(cidr.overlaps(ipaddress.ip_network(n["cidr"])) for n in others)
    rels = {op["rel"].rsplit("/", 1)[-1] for op in network["operations"]}
    assert rels == {"edit", "delete", "stop"}

    c.accepted(c.action(href, "stop"))
    assert c.ok("GET", href).doc["state"] == "STOPPED"
    stopped = c.members("networks", "networks", **{"$filter": f"state='STOPPED' and name='{name}'"})
    assert [n["id"] for n in stopped] == [href]
    assert c.action(href, "stop").status == 409
    c.accepted(c.action(href, "start"))
    assert c.ok("GET", href).doc["state"] == "STARTED"
    assert c.members("networks", "networks", **{"$filter": f"state='STOPPED' and name='{name}'"}) == []
    assert c.action(href, "restart").status == 400

    edited = c.ok("PUT", href, {"name": name + "-b", "description": "d", "properties": {"u": "2"}}, "Network").doc
    assert (edited["name"], edited["description"], edited["properties"]) == (name + "-b", "d", {"u": "2"})
    delete(c, href)


def test_network_configs_and_templates(c: Cimi, machine: str) -> None:
    configs = check_collection("NetworkConfiguration", c.ok("GET", "networkConfigs").doc, "networkConfigurations")
    private = next(cfg for cfg in configs if cfg["networkType"] == "PRIVATE")
    assert check("NetworkConfiguration", c.ok("GET", private["id"]).doc) == private

    by_reference = create_network(c, {"networkConfig": {"href": private["id"], "cidr": "172.20.0.0/16"}})
    assert c.ok("GET", by_reference).doc["cidr"] == "172.20.0.0/16"

    template = c.call(
        "POST",
        "networkTemplates",
        {"name": unique("nt"), "networkConfig": {"networkType": "PRIVATE", "cidr": "192.168.50.0/24"}},
        "NetworkTemplate",
    )
    assert template.status == 201, template.raw
    from_template = create_network(c, {"href": template.headers["Location"]}, name=unique("net"))
    assert c.ok("GET", from_template).doc["cidr"] == "192.168.50.0/24"

    # The network is usable: a machine gets an interface on it (in its subnet), and gives it back.
    answer = c.call(
        "POST", f"{machine}/networkInterfaces", {"network": {"href": from_template}}, "MachineNetworkInterface"
    )
    assert answer.status == 201, answer.raw
    iface = answer.headers["Location"]
    assert c.ok("GET", iface).doc["network"]["href"] == from_template
    assert c.call("DELETE", from_template).status == 409  # a machine is on it
    assert c.ok("GET", from_template).doc["state"] == "STARTED"
    c.ok("DELETE", iface, status=204)

    for href in (by_reference, from_template):
        delete(c, href)
    c.ok("DELETE", template.headers["Location"], status=204)


def test_addresses_allocate_associate_release(c: Cimi, machine: str) -> None:
    answer = c.call("POST", "addresses", {"properties": {"role": "web"}}, "AddressCreate")
    assert answer.status == 201, answer.raw
    href = answer.headers["Location"]
    address = check("Address", c.ok("GET", href).doc)
    ipaddress.ip_address(address["ip"])
    assert (address["allocation"], address["protocol"], address["properties"]) == ("dynamic", "IPv4", {"role": "web"})
    assert "resource" not in address
    listed = check_collection("Address", c.ok("GET", "addresses").doc, "addresses")
    assert href in [a["id"] for a in listed]
    assert [a["id"] for a in c.members("addresses", "addresses", **{"$filter": f"ip='{address['ip']}'"})] == [href]

    template = c.call("POST", "addressTemplates", {"name": unique("at")}, "AddressTemplate")
    assert template.status == 201, template.raw
    second = c.call("POST", "addresses", {"addressTemplate": {"href": template.headers["Location"]}}, "AddressCreate")
    assert second.status == 201, second.raw

    primary = c.members(f"{machine}/networkInterfaces", "networkInterfaces")[0]["id"]
    linked = c.call("POST", f"{primary}/addresses", {"address": {"href": href}}, "MachineNetworkInterfaceAddress")
    assert linked.status == 201, linked.raw
    link = linked.headers["Location"]
    assert [a["address"]["href"] for a in c.members(f"{primary}/addresses", "addresses")] == [href]
    associated = check("Address", c.ok("GET", href).doc)
    assert associated["resource"]["href"] == machine
    assert "delete" not in {op["rel"] for op in associated["operations"]}
    assert c.call("DELETE", href).status == 409  # associated: let it go first

    c.ok("DELETE", link, status=204)
    assert "resource" not in c.ok("GET", href).doc
    for one in (href, second.headers["Location"]):
        c.ok("DELETE", one, status=204)
        assert c.get(one).status == 404
    c.ok("DELETE", template.headers["Location"], status=204)


def test_bad_input_and_missing_resources(c: Cimi) -> None:
    missing = str(uuid.uuid4())
    bad = [
        {},
        {"networkTemplate": {"networkConfig": {"href": c.url("networkConfigs/public")}}},
        {"networkTemplate": {"networkConfig": {"href": c.url(f"volumeConfigs/{missing}")}}},
        {"networkTemplate": {"networkConfig": {"networkType": "PUBLIC"}}},
        {"networkTemplate": {"networkConfig": {"cidr": "10.999.0.0/16"}}},
        {"networkTemplate": {"href": c.url(f"networkTemplates/{missing}")}},
    ]
    for body in bad:
        answer = c.call("POST", "networks", body, "NetworkCreate")
        assert answer.status == 400, (body, answer.status, answer.raw)
    for body in (
        {"addressTemplate": {"network": {"href": c.url(f"networks/{missing}")}}},
        {"addressTemplate": {"href": c.url(f"addressTemplates/{missing}")}},
    ):
        answer = c.call("POST", "addresses", body, "AddressCreate")
        assert answer.status == 400, (body, answer.status, answer.raw)
    for path in (f"networks/{missing}", f"addresses/{missing}", f"networkConfigs/{missing}"):
        assert c.get(path).status == 404, path
    for path in (f"networks/{missing}", f"addresses/{missing}"):
        assert c.call("DELETE", path).status == 404, path
    assert c.action(c.url(f"networks/{missing}"), "stop").status == 404


def test_readers_cannot_write_and_other_tenants_cannot_see(c: Cimi, gateway: GatewayProcess) -> None:
    network = create_network(c, {})
    address = c.ok("POST", "addresses", {}, "AddressCreate", status=201).headers["Location"]
    reader = Cimi(gateway.url, auth=("reader", "reader-secret"))
    other = Cimi(gateway.url, auth=("other", "other-secret"))
    for href in (network, address):
        assert reader.ok("GET", href).doc["id"] == href
        assert reader.call("DELETE", href).status == 403
        assert other.get(href).status == 404
        assert other.call("DELETE", href).status == 404
    assert reader.call("POST", "networks", {"networkTemplate": {}}, "NetworkCreate").status == 403
    assert reader.call("POST", "addresses", {}, "AddressCreate").status == 403
    assert reader.call("PUT", network, {"name": "x"}, "Network").status == 403
    assert reader.action(network, "stop").status == 403
    assert network not in [n["id"] for n in other.members("networks", "networks")]
    assert address not in [a["id"] for a in other.members("addresses", "addresses")]
    delete(c, network)
    c.ok("DELETE", address, status=204)


@pytest.mark.parametrize("version", ["2", "1"])
def test_collections_read_in_xml(c: Cimi, gateway: GatewayProcess, version: str) -> None:
    address = c.ok("POST", "addresses", {}, "AddressCreate", status=201).headers["Location"]
    x = Cimi(gateway.url, XML, version)
    for path, type_name, attribute in (
        ("networks", "Network", "networks"),
        ("networkConfigs", "NetworkConfiguration", "networkConfigurations"),
        ("addresses", "Address", "addresses"),
        ("volumeImages", "VolumeImage", "volumeImages"),
    ):
        answer = x.ok("GET", path)
        assert answer.root == f"{type_name}Collection"
        check_collection(type_name, answer.doc, attribute)
    assert x.ok("GET", address).doc["ip"] == c.ok("GET", address).doc["ip"]
    c.ok("DELETE", address, status=204)
