"""A server's network interfaces: Neutron ports where the catalog has Neutron, else Nova's addresses.

Attach and detach go through Nova's ``os-interface`` API in both cases. Nova takes a network (it makes the
port, and deletes it on detach) or a port; an interface on a chosen subnet therefore needs a port made here
on that subnet first, which is marked as ours (``OWN_PORT``) and deleted here once Nova has let it go.
Behind Nova's proxies a network is flat and ports are not listed: an interface is named by its server and
MAC address, and its port is looked up by MAC when it is detached.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from backends.openstack.settle import settle
from translator.errors import Conflict, Forbidden, InvalidParameter, NotFound
from translator.model import InterfaceSpec, InterfaceState, NetworkInterface

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend

#: Neutron port status -> canonical interface state.
PORT_STATES: Mapping[str, InterfaceState] = {
    "ACTIVE": InterfaceState.ACTIVE,
    "DOWN": InterfaceState.INACTIVE,
    "BUILD": InterfaceState.ATTACHING,
    "ERROR": InterfaceState.ERROR,
}
#: Description of the ports made here for an interface on a chosen subnet (deleted here on detach).
OWN_PORT = "cloudgate: port of an interface attached on a chosen subnet"


def _ipv4(fixed_ips: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    return next((f for f in fixed_ips if "." in str(f.get("ip_address", ""))), {})


def from_ports(ports: list[Mapping[str, Any]], floating: Mapping[str, str]) -> list[NetworkInterface]:
    """A server's interfaces from its Neutron ports, oldest (the one it booted with) first. Neutron times ports
    to the second: of ports made in one second, one attached here on a chosen subnet comes after the others."""
    out = []
    order = sorted(ports, key=lambda p: (str(p.get("created_at") or ""), p.get("description") == OWN_PORT, p["id"]))
    for port in order:
        fixed = _ipv4(port.get("fixed_ips") or [])
        out.append(
            NetworkInterface(
                native_id=port["id"],
                network_id=port.get("network_id"),
                subnet_id=fixed.get("subnet_id"),
                private_ip=fixed.get("ip_address"),
                public_ip=floating.get(port["id"]),
                mac=str(port.get("mac_address") or "").lower(),
                state=PORT_STATES.get(str(port.get("status")), InterfaceState.ERROR),
            )
        )
    return out


def from_addresses(
    server: Mapping[str, Any], network_id: Callable[[str], str | None], zone: str
) -> list[NetworkInterface]:
    """A server's interfaces from Nova's ``addresses`` (no Neutron in the catalog): one per MAC address, named
    ``<server>/<MAC>``, on the network's one flat subnet in the server's zone."""
    found: dict[str, NetworkInterface] = {}
    for name, entries in (server.get("addresses") or {}).items():
        for entry in entries:
            mac = str(entry.get("OS-EXT-IPS-MAC:mac_addr") or "").lower()
            if entry.get("version", 4) != 4 or not mac:
                continue
            nic = found.get(mac)
            if nic is None:
                net = network_id(name)
                nic = found[mac] = NetworkInterface(
                    native_id=f"{server['id']}/{mac}",
                    network_id=net,
                    subnet_id=f"{net}/{zone}" if net else None,
                    mac=mac,
                )
            if entry.get("OS-EXT-IPS:type") == "floating":
                nic.public_ip = nic.public_ip or entry["addr"]
            elif nic.private_ip is None:
                nic.private_ip = entry["addr"]
    return list(found.values())


def _server(b: OpenStackBackend, native_id: str) -> dict[str, Any]:
    return b.cloud.nova_json("GET", f"/servers/{native_id}", kind="machine", what="get server")["server"]


def _request(b: OpenStackBackend, native_id: str, spec: InterfaceSpec) -> dict[str, Any]:
    """The ``interfaceAttachment`` to ask Nova for: a network, or a port made here on the chosen subnet."""
    if not b.cloud.has("network"):
        network = spec.network_id
        if spec.subnet_id is not None:  # a flat network's subnet: "<network>/<zone>"
            network, _, zone = spec.subnet_id.partition("/")
            if not zone or zone not in b.account.zones or spec.network_id not in (None, network):
                raise NotFound(f"The subnet '{spec.subnet_id}' does not exist.", kind="subnet")
        if not any(n.native_id == network for n in b.list_networks()):
            kind = "network" if spec.subnet_id is None else "subnet"
            raise NotFound(f"The {kind} '{spec.subnet_id or network}' does not exist.", kind=kind)
        return {"net_id": network}
    if spec.subnet_id is None:
        b.cloud.rest("GET", "network", f"/networks/{spec.network_id}", kind="network", what="get network")
        return {"net_id": spec.network_id}
    path = f"/subnets/{spec.subnet_id}"
    subnet = b.cloud.rest("GET", "network", path, kind="subnet", what="get subnet")["subnet"]
    if spec.network_id is not None and subnet["network_id"] != spec.network_id:
        raise InvalidParameter(f"The subnet '{spec.subnet_id}' is not in network '{spec.network_id}'.", kind="subnet")
    body = {
        "port": {
            "network_id": subnet["network_id"],
            "fixed_ips": [{"subnet_id": spec.subnet_id}],
            "description": OWN_PORT,
            "name": f"cloudgate-{native_id}",
        }
    }
    port = b.cloud.rest("POST", "network", "/ports", kind="network_interface", what="create port", body=body)["port"]
    return {"port_id": port["id"]}


def attach_interface(b: OpenStackBackend, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
    """Nova's os-interface attach; the interface as Nova reports it (a port made here is deleted if it fails)."""
    server = _server(b, native_id)
    request = _request(b, native_id, spec)
    try:
        made = b.cloud.nova_json(
            "POST",
            f"/servers/{native_id}/os-interface",
            kind="machine",
            what="attach interface",
            body={"interfaceAttachment": request},
        )["interfaceAttachment"]
    except Exception:
        if "port_id" in request:
            _delete_port(b, request["port_id"])
        raise
    fixed = _ipv4(made.get("fixed_ips") or [])
    mac = str(made.get("mac_addr") or "").lower()
    neutron = b.cloud.has("network")
    zone = server.get("OS-EXT-AZ:availability_zone") or b.account.zones[0]
    return NetworkInterface(
        native_id=made["port_id"] if neutron else f"{native_id}/{mac}",
        network_id=made.get("net_id"),
        subnet_id=fixed.get("subnet_id") if neutron else f"{made.get('net_id')}/{zone}",
        private_ip=fixed.get("ip_address"),
        mac=mac,
        state=PORT_STATES.get(str(made.get("port_state")), InterfaceState.ATTACHING),
    )


def _attached(b: OpenStackBackend, native_id: str) -> list[dict[str, Any]]:
    path = f"/servers/{native_id}/os-interface"
    return b.cloud.nova_json("GET", path, kind="machine", what="list interfaces")["interfaceAttachments"]


def detach_interface(b: OpenStackBackend, native_id: str, interface_native_id: str) -> None:
    """Nova's os-interface detach (Nova finishes it on the host later); a port made here is deleted once free."""
    attached = _attached(b, native_id)
    if b.cloud.has("network"):
        port = next((a for a in attached if a.get("port_id") == interface_native_id), None)
    else:
        mac = interface_native_id.rpartition("/")[2]
        port = next((a for a in attached if str(a.get("mac_addr") or "").lower() == mac), None)
    if port is None:
        raise NotFound(f"The machine '{native_id}' has no interface '{interface_native_id}'.", kind="network_interface")
    port_id = port["port_id"]
    path = f"/servers/{native_id}/os-interface/{port_id}"
    b.cloud.nova_json("DELETE", path, kind="network_interface", what="detach interface")
    if b.cloud.has("network"):
        try:
            raw = b.cloud.rest("GET", "network", f"/ports/{port_id}", kind="network_interface", what="get port")
        except NotFound:
            return
        if raw["port"].get("description") == OWN_PORT:
            settle(b.opts.delete_wait, lambda: not _port(b, port_id).get("device_id"))
            with contextlib.suppress(Conflict, Forbidden):  # still held by Nova: the detach itself is done
                _delete_port(b, port_id)


def _port(b: OpenStackBackend, port_id: str) -> dict[str, Any]:
    try:
        return b.cloud.rest("GET", "network", f"/ports/{port_id}", what="get port")["port"]
    except NotFound:
        return {}


def _delete_port(b: OpenStackBackend, port_id: str) -> None:
    with contextlib.suppress(NotFound):
        b.cloud.rest("DELETE", "network", f"/ports/{port_id}", kind="network_interface", what="delete port")
