"""Smoke tests of the Neutron peer: tokens, tenant isolation, security groups, subnets, port binding, floating IPs."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from keystoneauth1 import adapter
from peers.openstack import Credentials, Keystone
from peers.openstack.neutron_peer import Neutron

# The first test to ask for Neutron may build its venv (half a minute on a cold machine).
pytestmark = pytest.mark.timeout(900)

HTTP_TIMEOUT = 30.0


def network_api(credentials: Credentials, neutron: Neutron) -> adapter.Adapter:
    """A client of the network endpoint found in the user's catalog, as any OpenStack SDK would make one."""
    return adapter.Adapter(
        credentials.session(), service_type="network", interface="public", region_name=neutron.region
    )


def create(api: adapter.Adapter, collection: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST one resource (``security-groups`` -> ``security_group``) and return it."""
    resource = collection[:-1].replace("-", "_")
    return api.post(f"/v2.0/{collection}", json={resource: body}).json()[resource]


def names(api: adapter.Adapter, collection: str) -> set[str]:
    return {item["name"] for item in api.get(f"/v2.0/{collection}").json()[collection.replace("-", "_")]}


@pytest.fixture
def member(openstack_project: Credentials, neutron: Neutron) -> adapter.Adapter:
    """The network API as a fresh project's member."""
    return network_api(openstack_project, neutron)


@pytest.fixture
def service(neutron: Neutron) -> adapter.Adapter:
    """The network API as Neutron's service user (role admin), the way Nova will bind ports."""
    return network_api(neutron.service, neutron)


@pytest.fixture
def private_port(member: adapter.Adapter, service: adapter.Adapter, neutron: Neutron) -> Iterator[dict[str, Any]]:
    """A member's port on the shared network ``private``, deleted after the test by the service user.

    Once a port belongs to a server (``device_owner`` ``compute:*``) Neutron's policy lets only an admin or
    service delete it, as Nova does when the server goes.
    """
    port = create(member, "ports", {"network_id": neutron.private_network_id, "name": "smoke"})
    yield port
    assert service.delete(f"/v2.0/ports/{port['id']}").status_code == 204


def bind(service: adapter.Adapter, port_id: str, host: str = "compute") -> dict[str, Any]:
    """Bind a port to a compute host and give it a device, as Nova does when it plugs a server's interface."""
    body = {"port": {"binding:host_id": host, "device_id": str(uuid.uuid4()), "device_owner": "compute:nova"}}
    return service.put(f"/v2.0/ports/{port_id}", json=body).json()["port"]


def test_catalog_and_tokens(keystone: Keystone, neutron: Neutron, openstack_project: Credentials) -> None:
    session = openstack_project.session()
    assert session.get_endpoint(service_type="network", interface="public", region_name=neutron.region) == neutron.url
    assert neutron.region == keystone.region
    url = f"{neutron.url}/v2.0/networks"
    assert requests.get(url, timeout=HTTP_TIMEOUT).status_code == 401
    bogus = {"X-Auth-Token": "not-a-token"}
    assert requests.get(url, headers=bogus, timeout=HTTP_TIMEOUT).status_code == 401
    listing = requests.get(url, headers={"X-Auth-Token": session.get_token()}, timeout=HTTP_TIMEOUT)
    assert listing.status_code == 200


def test_member_sees_shared_and_external_networks_not_other_projects(
    keystone: Keystone, neutron: Neutron, member: adapter.Adapter
) -> None:
    other = keystone.create_project_user()
    try:
        theirs_api = network_api(other, neutron)
        theirs = create(theirs_api, "networks", {"name": f"theirs-{uuid.uuid4().hex[:6]}"})
        try:
            networks = {n["name"]: n for n in member.get("/v2.0/networks").json()["networks"]}
            assert {"private", "public"} <= networks.keys()
            assert theirs["name"] not in networks
            assert networks["private"]["id"] == neutron.private_network_id and networks["private"]["shared"]
            assert networks["public"]["id"] == neutron.public_network_id and networks["public"]["router:external"]
            assert member.get(f"/v2.0/networks/{theirs['id']}", raise_exc=False).status_code == 404
            assert theirs["name"] in names(theirs_api, "networks")
        finally:
            assert theirs_api.delete(f"/v2.0/networks/{theirs['id']}").status_code == 204
    finally:
        keystone.delete_project_user(other)


def test_security_groups_and_rules(member: adapter.Adapter, openstack_project: Credentials) -> None:
    groups = member.get("/v2.0/security-groups").json()["security_groups"]
    default = [g for g in groups if g["name"] == "default"]
    assert len(default) == 1 and default[0]["project_id"] == openstack_project.project_id

    group = create(member, "security-groups", {"name": "web", "description": "smoke"})
    ssh = {
        "security_group_id": group["id"],
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": "198.51.100.0/24",
    }
    dns = {
        "security_group_id": group["id"],
        "direction": "egress",
        "ethertype": "IPv4",
        "protocol": "udp",
        "port_range_min": 53,
        "port_range_max": 53,
    }
    ssh_rule = create(member, "security-group-rules", ssh)
    dns_rule = create(member, "security-group-rules", dns)
    duplicate = member.post("/v2.0/security-group-rules", json={"security_group_rule": ssh}, raise_exc=False)
    assert duplicate.status_code == 409

    rules = member.get(f"/v2.0/security-groups/{group['id']}").json()["security_group"]["security_group_rules"]
    assert {ssh_rule["id"], dns_rule["id"]} <= {r["id"] for r in rules}
    assert member.delete(f"/v2.0/security-group-rules/{ssh_rule['id']}").status_code == 204
    assert member.delete(f"/v2.0/security-groups/{group['id']}").status_code == 204
    assert member.get(f"/v2.0/security-groups/{group['id']}", raise_exc=False).status_code == 404


def test_network_and_subnet_lifecycle(member: adapter.Adapter, openstack_project: Credentials) -> None:
    network = create(member, "networks", {"name": "smoke-net"})
    assert (network["status"], network["project_id"]) == ("ACTIVE", openstack_project.project_id)
    subnet = create(
        member, "subnets", {"network_id": network["id"], "ip_version": 4, "cidr": "192.168.10.0/24", "name": "s1"}
    )
    assert (subnet["gateway_ip"], subnet["cidr"]) == ("192.168.10.1", "192.168.10.0/24")
    overlap = {"network_id": network["id"], "ip_version": 4, "cidr": "192.168.10.128/25"}
    refused = member.post("/v2.0/subnets", json={"subnet": overlap}, raise_exc=False)
    assert refused.status_code == 400, refused.text
    assert member.delete(f"/v2.0/subnets/{subnet['id']}").status_code == 204
    assert member.delete(f"/v2.0/networks/{network['id']}").status_code == 204
    assert member.get(f"/v2.0/networks/{network['id']}", raise_exc=False).status_code == 404


def test_port_binds_to_the_compute_host(
    member: adapter.Adapter, service: adapter.Adapter, private_port: dict[str, Any]
) -> None:
    address = ipaddress.ip_address(private_port["fixed_ips"][0]["ip_address"])
    assert address in ipaddress.ip_network("10.0.0.0/16")
    agents = service.get("/v2.0/agents", params={"host": "compute"}).json()["agents"]
    assert [(a["agent_type"], a["alive"]) for a in agents] == [("Open vSwitch agent", True)]
    # A host without an agent cannot take the port: the binding is Neutron's own, not a stub's.
    assert bind(service, private_port["id"], host="nowhere")["binding:vif_type"] == "binding_failed"
    bound = bind(service, private_port["id"])
    assert bound["binding:host_id"] == "compute"
    assert bound["binding:vif_type"] == "ovs", bound
    seen = member.get(f"/v2.0/ports/{private_port['id']}").json()["port"]
    assert (seen["device_id"], seen["device_owner"]) == (bound["device_id"], "compute:nova")
    assert "binding:vif_type" not in seen  # binding details are for admins and services
    assert member.delete(f"/v2.0/ports/{private_port['id']}", raise_exc=False).status_code == 403


def test_floating_ip_lifecycle(
    member: adapter.Adapter, service: adapter.Adapter, neutron: Neutron, private_port: dict[str, Any]
) -> None:
    bind(service, private_port["id"])
    fip = create(member, "floatingips", {"floating_network_id": neutron.public_network_id})
    assert ipaddress.ip_address(fip["floating_ip_address"]) in ipaddress.ip_network("203.0.113.0/24")
    assert fip["port_id"] is None and fip["fixed_ip_address"] is None

    body = {"floatingip": {"port_id": private_port["id"]}}
    associated = member.put(f"/v2.0/floatingips/{fip['id']}", json=body).json()["floatingip"]
    assert associated["fixed_ip_address"] == private_port["fixed_ips"][0]["ip_address"]
    assert associated["router_id"] == neutron.router_id
    shown = member.get(f"/v2.0/floatingips/{fip['id']}").json()["floatingip"]
    assert (shown["port_id"], shown["fixed_ip_address"]) == (private_port["id"], associated["fixed_ip_address"])

    body = {"floatingip": {"port_id": None}}
    released = member.put(f"/v2.0/floatingips/{fip['id']}", json=body).json()["floatingip"]
    assert released["port_id"] is None and released["fixed_ip_address"] is None
    assert member.delete(f"/v2.0/floatingips/{fip['id']}").status_code == 204
    assert member.delete(f"/v2.0/floatingips/{uuid.uuid4()}", raise_exc=False).status_code == 404
