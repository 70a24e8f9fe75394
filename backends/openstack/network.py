"""Networks, subnets and floating IPs: Neutron from the catalog, else Nova's proxies (microversion 2.35).

REST through the keystoneauth1 session: libcloud's Neutron calls need its own catalog lookup (bypassed
here) and it has no floating-IP association by port. Neutron networks carry no address range of their own
(their subnets do): the range a network is created with is kept as a Neutron tag on it, and a network
without one shows its first IPv4 subnet's. Behind Nova's proxy a network is flat: it shows one subnet per
zone of the account, as the simulator's default network does.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.openstack.machines import parse_time
from backends.openstack.session import PROXY_MICROVERSION
from translator.backend import Capability
from translator.errors import Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import (
    Address,
    Network,
    NetworkAction,
    NetworkSpec,
    NetworkState,
    NetworkUpdate,
    Subnet,
    SubnetSpec,
)

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend

#: Neutron network status -> canonical network state.
NETWORK_STATES: Mapping[str, NetworkState] = {
    "ACTIVE": NetworkState.AVAILABLE,
    "BUILD": NetworkState.PENDING,
    "DOWN": NetworkState.DOWN,
    "ERROR": NetworkState.ERROR,
}


def network_state(raw: Mapping[str, Any]) -> NetworkState:
    """A network taken down (``admin_state_up`` false) is down whatever its status says: ML2 leaves that ACTIVE
    where no agent reports on it."""
    if raw.get("admin_state_up") is False:
        return NetworkState.DOWN
    return NETWORK_STATES.get(str(raw.get("status")), NetworkState.ERROR)


CIDR_TAG = "cloudgate:cidr="


def _neutron(b: OpenStackBackend) -> bool:
    return b.cloud.has("network")


def _net(b: OpenStackBackend, method: str, path: str, kind: str, what: str, body: Any = None) -> Any:
    return b.cloud.rest(method, "network", path, kind=kind, what=what, body=body)


def _proxy(b: OpenStackBackend, method: str, path: str, kind: str, what: str, body: Any = None) -> Any:
    return b.cloud.rest(method, "compute", path, kind=kind, what=what, body=body, microversion=PROXY_MICROVERSION)


def _parse_cidr(cidr: str, kind: str) -> ipaddress.IPv4Network:
    """An IPv4 CIDR with no host bits set, as Neutron takes (this backend makes IPv4 subnets only)."""
    try:
        net = ipaddress.ip_network(cidr, strict=True)
    except ValueError:
        raise InvalidParameter(f"The CIDR '{cidr}' is invalid.", kind=kind, reason="cidr") from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise InvalidParameter(f"The CIDR '{cidr}' is not IPv4.", kind=kind, reason="cidr")
    return net


# -- networks ----------------------------------------------------------------------------------------


def _default_id(b: OpenStackBackend, raw: list[dict[str, Any]], name: str, id_key: str = "id") -> str | None:
    """The network launches use: the ``network`` option (name or id), else the only one there is."""
    wanted = b.opts.network
    if wanted:
        return next((n[id_key] for n in raw if wanted in (n[id_key], n.get(name))), None)
    return raw[0][id_key] if len(raw) == 1 else None


def _neutron_networks(b: OpenStackBackend) -> list[dict[str, Any]]:
    raw = b.cloud.pages("network", "/networks", "networks", what="list networks")
    return [n for n in raw if not n.get("router:external")]


def list_networks(b: OpenStackBackend) -> list[Network]:
    if not _neutron(b):
        raw = _proxy(b, "GET", "/os-networks", "network", "list networks")["networks"]
        default = _default_id(b, raw, "label")
        return [
            Network(
                native_id=n["id"], name=n.get("label") or "", cidr=n.get("cidr") or "", is_default=n["id"] == default
            )
            for n in raw
        ]
    raw = _neutron_networks(b)
    subnets = _neutron_subnets(b)
    default = _default_id(b, raw, "name")
    out = []
    for n in raw:
        tagged = next((t[len(CIDR_TAG) :] for t in n.get("tags") or () if t.startswith(CIDR_TAG)), "")
        cidr = tagged or next(
            (s["cidr"] for s in subnets if s["network_id"] == n["id"] and s.get("ip_version") == 4), ""
        )
        out.append(
            Network(
                native_id=n["id"],
                name=n.get("name") or "",
                description=str(n.get("description") or ""),
                created=parse_time(n.get("created_at")),
                cidr=cidr,
                state=network_state(n),
                is_default=n["id"] == default,
            )
        )
    return out


def create_network(b: OpenStackBackend, spec: NetworkSpec) -> Network:
    """A Neutron network, its address range in a tag (Neutron's ``standard-attr-tag``, on by default)."""
    cidr = _parse_cidr(spec.cidr, "network")
    body = {"network": {"name": spec.name, "description": spec.description}}
    made = _net(b, "POST", "/networks", "network", "create network", body)["network"]
    with contextlib.suppress(NotFound):  # a Neutron without tags: the range shows through the subnets only
        tags = {"tags": [f"{CIDR_TAG}{cidr}"]}
        _net(b, "PUT", f"/networks/{made['id']}/tags", "network", "tag network", tags)
    return Network(
        native_id=made["id"],
        name=made.get("name") or "",
        description=str(made.get("description") or ""),
        created=parse_time(made.get("created_at")),
        cidr=str(cidr),
        state=NetworkState.AVAILABLE,
    )


def delete_network(b: OpenStackBackend, native_id: str) -> None:
    """Neutron deletes a network's subnets along with it, and refuses while ports (machines) use it."""
    _net(b, "DELETE", f"/networks/{native_id}", "network", "delete network")


def update_network(b: OpenStackBackend, native_id: str, update: NetworkUpdate) -> Network:
    """Neutron's network update: name and description."""
    body = {"network": {k: v for k, v in (("name", update.name), ("description", update.description)) if v is not None}}
    _net(b, "PUT", f"/networks/{native_id}", "network", "update network", body)
    return _network(b, native_id)


def _network(b: OpenStackBackend, native_id: str) -> Network:
    found = next((n for n in list_networks(b) if n.native_id == native_id), None)
    if found is None:
        raise NotFound(f"The network '{native_id}' does not exist.", kind="network")
    return found


def act_on_network(b: OpenStackBackend, native_id: str, action: NetworkAction) -> Network:
    """Neutron's ``admin_state_up``: false takes the network down, true brings it up."""
    body = {"network": {"admin_state_up": action is NetworkAction.UP}}
    _net(b, "PUT", f"/networks/{native_id}", "network", f"network {action}", body)
    return _network(b, native_id)


# -- subnets -----------------------------------------------------------------------------------------


def _neutron_subnets(b: OpenStackBackend) -> list[dict[str, Any]]:
    return b.cloud.pages("network", "/subnets", "subnets", what="list subnets")


def _free_ips(cidr: str) -> int:
    return max(0, ipaddress.ip_network(cidr, strict=False).num_addresses - 3)


def list_subnets(b: OpenStackBackend) -> list[Subnet]:
    networks = {n.native_id: n for n in list_networks(b)}
    zone = b.account.zones[0]
    if not _neutron(b):
        return [
            Subnet(
                native_id=f"{n.native_id}/{z}",
                name=n.name,
                network_id=n.native_id,
                cidr=n.cidr,
                zone=z,
                is_default=n.is_default,
                available_ips=_free_ips(n.cidr) if n.cidr else 0,
            )
            for n in networks.values()
            for z in b.account.zones
        ]
    return [
        Subnet(
            native_id=s["id"],
            name=s.get("name") or "",
            description=str(s.get("description") or ""),
            created=parse_time(s.get("created_at")),
            network_id=s["network_id"],
            cidr=s["cidr"],
            zone=zone,
            is_default=networks[s["network_id"]].is_default,
            available_ips=_free_ips(s["cidr"]),
        )
        for s in _neutron_subnets(b)
        if s["network_id"] in networks and s.get("ip_version") == 4
    ]


def create_subnet(b: OpenStackBackend, spec: SubnetSpec) -> Subnet:
    network = next((n for n in list_networks(b) if n.native_id == spec.network_id), None)
    if network is None:
        raise NotFound(f"The network '{spec.network_id}' does not exist.", kind="network")
    cidr = _parse_cidr(spec.cidr, "subnet")
    for s in _neutron_subnets(b):
        if s["network_id"] == spec.network_id and ipaddress.ip_network(s["cidr"]).overlaps(cidr):
            raise Conflict(f"The CIDR '{cidr}' overlaps subnet {s['id']}.", kind="subnet", reason="duplicate")
    if spec.zone is not None and spec.zone not in b.account.zones:
        raise InvalidParameter(f"The zone '{spec.zone}' is not one of this region's.", kind="zone")
    body = {
        "subnet": {
            "network_id": spec.network_id,
            "cidr": str(cidr),
            "ip_version": 4,
            "name": spec.name,
            "description": spec.description,
        }
    }
    made = _net(b, "POST", "/subnets", "subnet", "create subnet", body)["subnet"]
    return Subnet(
        native_id=made["id"],
        name=made.get("name") or "",
        description=str(made.get("description") or ""),
        network_id=spec.network_id,
        cidr=made["cidr"],
        zone=spec.zone or b.account.zones[0],
        available_ips=_free_ips(made["cidr"]),
    )


def delete_subnet(b: OpenStackBackend, native_id: str) -> None:
    _net(b, "DELETE", f"/subnets/{native_id}", "subnet", "delete subnet")


class _NetworkRef:
    """What libcloud's ``create_node`` reads of a network: its ``id``."""

    def __init__(self, native_id: str) -> None:
        self.id = native_id


def launch_networks(b: OpenStackBackend, subnet_id: str | None) -> list[_NetworkRef]:
    """The network a launch asks for: the subnet's, else the ``network`` option's, else Nova's choice."""
    if subnet_id:
        if _neutron(b):
            subnet = _net(b, "GET", f"/subnets/{subnet_id}", "subnet", "get subnet")["subnet"]
            return [_NetworkRef(subnet["network_id"])]
        return [_NetworkRef(subnet_id.split("/", 1)[0])]
    if b.opts.network and Capability.NETWORKS in b.capabilities:
        found = next((n for n in list_networks(b) if n.is_default), None)
        if found is None:
            raise InvalidParameter(f"The network '{b.opts.network}' (option network) does not exist.", kind="network")
        return [_NetworkRef(found.native_id)]
    return []


# -- floating IPs ------------------------------------------------------------------------------------


def list_addresses(b: OpenStackBackend) -> list[Address]:
    if not _neutron(b):
        return [
            _proxied_address(a)
            for a in _proxy(b, "GET", "/os-floating-ips", "address", "list addresses")["floating_ips"]
        ]
    ips = b.cloud.pages("network", "/floatingips", "floatingips", what="list addresses")
    # Neutron's fip-port-details extension names the server of an associated IP; without it, the ports do.
    devices = {ip["port_id"]: ip["port_details"].get("device_id") or "" for ip in ips if ip.get("port_details")}
    if any(ip.get("port_id") and ip["port_id"] not in devices for ip in ips):
        ports = b.cloud.pages("network", "/ports", "ports", what="list ports")
        devices = {p["id"]: p.get("device_id") or "" for p in ports}
    return [
        Address(
            native_id=ip["id"],
            created=parse_time(ip.get("created_at")),
            public_ip=ip["floating_ip_address"],
            machine_id=devices.get(ip.get("port_id") or "") or None,
            private_ip=ip.get("fixed_ip_address"),
        )
        for ip in ips
    ]


def _proxied_address(raw: Mapping[str, Any]) -> Address:
    return Address(
        native_id=str(raw["id"]),
        public_ip=raw["ip"],
        machine_id=raw.get("instance_id") or None,
        private_ip=raw.get("fixed_ip"),
    )


def _address(b: OpenStackBackend, native_id: str) -> Address:
    found = next((a for a in list_addresses(b) if a.native_id == native_id), None)
    if found is None:
        raise NotFound(f"The address '{native_id}' does not exist.", kind="address")
    return found


def _external_network(b: OpenStackBackend) -> str:
    wanted = b.opts.floating_network
    raw = b.cloud.pages("network", "/networks", "networks", params={"router:external": "true"}, what="list networks")
    if wanted:
        found = next((n["id"] for n in raw if wanted in (n["id"], n.get("name"))), None)
    else:
        found = raw[0]["id"] if len(raw) == 1 else None
    if found is None:
        raise Unsupported("No external network for floating IPs (set the floating_network option).", reason="address")
    return found


def allocate_address(b: OpenStackBackend) -> Address:
    if not _neutron(b):
        body = {"pool": b.opts.floating_network} if b.opts.floating_network else {}
        return _proxied_address(
            _proxy(b, "POST", "/os-floating-ips", "address", "allocate address", body)["floating_ip"]
        )
    body = {"floatingip": {"floating_network_id": _external_network(b)}}
    made = _net(b, "POST", "/floatingips", "address", "allocate address", body)["floatingip"]
    return Address(native_id=made["id"], public_ip=made["floating_ip_address"])


def associate_address(b: OpenStackBackend, native_id: str, machine_native_id: str) -> Address:
    address = _address(b, native_id)
    if not _neutron(b):
        action = {"addFloatingIp": {"address": address.public_ip}}
        _proxy(b, "POST", f"/servers/{machine_native_id}/action", "machine", "associate address", action)
        return _address(b, native_id)
    ports = b.cloud.pages("network", "/ports", "ports", params={"device_id": machine_native_id}, what="list ports")
    if not ports:
        raise InvalidParameter(f"The machine '{machine_native_id}' has no port to associate.", kind="machine")
    body = {"floatingip": {"port_id": ports[0]["id"]}}
    _net(b, "PUT", f"/floatingips/{native_id}", "address", "associate address", body)
    return _address(b, native_id)


def disassociate_address(b: OpenStackBackend, native_id: str) -> Address:
    address = _address(b, native_id)
    if address.machine_id is None:
        return address
    if not _neutron(b):
        action = {"removeFloatingIp": {"address": address.public_ip}}
        _proxy(b, "POST", f"/servers/{address.machine_id}/action", "machine", "disassociate address", action)
    else:
        _net(b, "PUT", f"/floatingips/{native_id}", "address", "disassociate", {"floatingip": {"port_id": None}})
    return _address(b, native_id)


def release_address(b: OpenStackBackend, native_id: str) -> None:
    """Released even while associated, as Neutron (and Nova's proxy) do."""
    _address(b, native_id)
    if _neutron(b):
        _net(b, "DELETE", f"/floatingips/{native_id}", "address", "release address")
    else:
        _proxy(b, "DELETE", f"/os-floating-ips/{native_id}", "address", "release address")
