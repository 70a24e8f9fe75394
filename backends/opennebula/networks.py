"""Networks: the virtual networks the user may use (``one.vnpool.info``), and the machines' NICs on them.

A virtual network's address ranges are one flat range, not zoned: its network's CIDR is the smallest block
covering every IPv4 range, and it offers one subnet per account zone spanning that block (native id
``<vnet id>:<zone>``), as the model asks of clouds with flat networks. The default network is the lowest-numbered
one the user sees. An interface is a NIC hot-plugged with ``one.vm.attachnic`` (oned leases it an address of the
network's ranges) and removed with ``one.vm.detachnic``.

Networks made through the gateway use only what an OpenNebula user may do with the ``NET:CREATE`` right and
ownership (adding address ranges to a network needs ``NET:ADMIN``, which owners lack by default): a network is a
virtual network without address ranges whose template names its CIDR (``CLOUDGATE_CIDR``, and ``NETWORK_ADDRESS``
/ ``NETWORK_MASK`` as oned's contextualization reads them), and each of its subnets is a virtual network of its
own, allocated with one address range spanning the subnet's CIDR and marked with its network and zone
(``CLOUDGATE_NETWORK``, ``CLOUDGATE_ZONE``). A subnet's id keeps the ``<vnet id>:<zone>`` form, so a machine
launched on it gets a NIC on that virtual network and reads back in its network.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.opennebula.catalog import ALL, oid
from backends.opennebula.machines import interface_of, pick_zone, settled_vm, subnet_id, zone_of
from backends.opennebula.templates import single, to_xml, vectors
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.model import (
    InterfaceSpec,
    Network,
    NetworkInterface,
    NetworkSpec,
    NetworkState,
    NetworkUpdate,
    Subnet,
    SubnetSpec,
)

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

#: Virtual network STATE (VirtualNetwork::VirtualNetworkState) -> canonical; LOCK_DELETE and DONE are networks
#: going or gone, and are not listed.
NETWORK_STATES: Mapping[int, NetworkState] = {
    0: NetworkState.PENDING,  # INIT
    1: NetworkState.AVAILABLE,  # READY
    2: NetworkState.PENDING,  # LOCK_CREATE: its driver still setting it up
    5: NetworkState.ERROR,  # ERROR
    6: NetworkState.AVAILABLE,  # UPDATE_FAILURE: usable; an update did not reach every VM
}


CIDR_ATTRIBUTE = "CLOUDGATE_CIDR"  # on a network made through the gateway: its range (it has no address ranges)
PARENT_ATTRIBUTE = "CLOUDGATE_NETWORK"  # on a subnet's virtual network: the network it belongs to
ZONE_ATTRIBUTE = "CLOUDGATE_ZONE"  # ... and its zone
#: ... and the name it was given: vnet names are unique per user in oned, and a subnet may share its network's
SUBNET_NAME_ATTRIBUTE = "CLOUDGATE_NAME"
MERGE = 1


def parent_of(vnet: Any) -> str:
    """The network a subnet's virtual network belongs to ("" for any other virtual network)."""
    return single(vnet.TEMPLATE, PARENT_ATTRIBUTE)


def _ranges(vnet: Any) -> list[tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]]:
    """(first, last) address of each IPv4 range (Ethernet-only ranges have none)."""
    out = []
    for ar in vnet.AR_POOL.AR if vnet.AR_POOL is not None else []:
        first = getattr(ar, "IP", None)
        if first:
            start = ipaddress.IPv4Address(first)
            out.append((start, start + max(int(ar.SIZE or 1), 1) - 1))
    return out


def _cidr(vnet: Any) -> str:
    """The network's own CIDR where it names one, else the smallest block covering every address range ("" for a
    network without IPv4 ranges)."""
    named = single(vnet.TEMPLATE, CIDR_ATTRIBUTE)
    if named:
        return named
    ranges = _ranges(vnet)
    if not ranges:
        return ""
    low, high = min(r[0] for r in ranges), max(r[1] for r in ranges)
    prefix = 32 - (int(low) ^ int(high)).bit_length()
    return str(ipaddress.IPv4Network(f"{low}/{prefix}", strict=False))


def _size(vnet: Any) -> int:
    return sum(int(last) - int(first) + 1 for first, last in _ranges(vnet))


def _listed(vnet: Any) -> bool:
    return vnet.STATE in NETWORK_STATES


def pool(b: OpenNebulaBackend) -> list[Any]:
    """Every virtual network the user sees and that is not going away, by id."""
    found = b.one.pool("vnpool.info", ALL, element="VNET", kind="network", what="list networks")
    return sorted((v for v in found if _listed(v)), key=lambda v: v.ID)


def network_of(vnet: Any, default: bool) -> Network:
    return Network(
        native_id=str(vnet.ID),
        name=vnet.NAME,
        description=single(vnet.TEMPLATE, "DESCRIPTION"),
        cidr=_cidr(vnet),
        state=NETWORK_STATES[vnet.STATE],
        is_default=default,
    )


def _zones(b: OpenNebulaBackend, vnet: Any) -> tuple[str, ...]:
    """The zones a virtual network offers a subnet in: a subnet's its one zone, a gateway network's none (its
    subnets are virtual networks of their own), any other's every zone of the account (flat)."""
    if parent_of(vnet):
        zone = single(vnet.TEMPLATE, ZONE_ATTRIBUTE)
        return (zone,) if zone in b.account.zones else ()
    return () if single(vnet.TEMPLATE, CIDR_ATTRIBUTE) else b.account.zones


def subnets_of(b: OpenNebulaBackend, vnet: Any, default: bool) -> list[Subnet]:
    free = max(_size(vnet) - int(vnet.USED_LEASES or 0), 0)
    return [
        Subnet(
            native_id=subnet_id(str(vnet.ID), zone),
            name=single(vnet.TEMPLATE, SUBNET_NAME_ATTRIBUTE) or vnet.NAME,
            description=single(vnet.TEMPLATE, "DESCRIPTION"),
            network_id=parent_of(vnet) or str(vnet.ID),
            cidr=_cidr(vnet),
            zone=zone,
            state=NETWORK_STATES[vnet.STATE],
            is_default=default,
            available_ips=free,
        )
        for zone in _zones(b, vnet)
    ]


def _networks(vnets: list[Any]) -> list[Any]:
    return [v for v in vnets if not parent_of(v)]


def list_networks(b: OpenNebulaBackend) -> list[Network]:
    vnets = _networks(pool(b))
    return [network_of(v, i == 0) for i, v in enumerate(vnets)]


def list_subnets(b: OpenNebulaBackend) -> list[Subnet]:
    vnets = pool(b)
    default = next((v.ID for v in _networks(vnets)), None)
    return [s for v in vnets for s in subnets_of(b, v, default == v.ID or parent_of(v) == str(default))]


def find_network(b: OpenNebulaBackend, native_id: str, kind: str = "network") -> Any:
    """The virtual network; NotFound (of ``kind``) for one missing, not the user's to use, or going away."""
    vnet = b.one.call("vn.info", oid(native_id, kind), False, kind=kind, what=f"read {kind}")
    if not _listed(vnet):
        raise NotFound(f"The {kind} '{native_id}' does not exist.", kind=kind)
    return vnet


def find_subnet(b: OpenNebulaBackend, native_id: str) -> tuple[Any, str]:
    """A subnet's virtual network and zone; NotFound for an id that names none."""
    network, _, zone = native_id.partition(":")
    vnet = find_network(b, network, "subnet") if zone in b.account.zones else None
    if vnet is None or zone not in _zones(b, vnet):
        raise NotFound(f"The subnet '{native_id}' does not exist.", kind="subnet")
    return vnet, zone


def _network(b: OpenNebulaBackend, native_id: str) -> Any:
    """A network (not a subnet's virtual network); NotFound otherwise."""
    vnet = find_network(b, native_id)
    if parent_of(vnet):
        raise NotFound(f"The network '{native_id}' does not exist.", kind="network")
    return vnet


def _in_zone(b: OpenNebulaBackend, vnet: Any, zone: str) -> Any:
    """The virtual network an interface on ``vnet`` in ``zone`` goes on: a gateway network's subnet there."""
    if not single(vnet.TEMPLATE, CIDR_ATTRIBUTE):
        return vnet
    found = next((v for v in pool(b) if parent_of(v) == str(vnet.ID) and zone in _zones(b, v)), None)
    if found is None:
        raise InvalidParameter(f"The network '{vnet.ID}' has no subnet in zone {zone}.", kind="subnet", reason="zone")
    return found


def attach_interface(b: OpenNebulaBackend, machine_id: str, spec: InterfaceSpec) -> NetworkInterface:
    """A NIC on the subnet's (or the network's) virtual network, with an address oned leases from its ranges."""
    vm = settled_vm(b, machine_id)
    zone = zone_of(b, vm)
    if spec.subnet_id is not None:
        vnet, subnet_zone = find_subnet(b, spec.subnet_id)
        if subnet_zone != zone:
            raise InvalidParameter(
                f"The subnet '{spec.subnet_id}' is in zone {subnet_zone}, the machine in {zone}.",
                kind="subnet",
                reason="zone",
            )
    elif spec.network_id is not None:
        vnet = _in_zone(b, _network(b, spec.network_id), zone)
    else:
        raise InvalidParameter("An interface needs a subnet or a network.", kind="network_interface")
    before = {n.get("NIC_ID") for n in vectors(vm.TEMPLATE, "NIC")}
    nic = {"NETWORK_ID": str(vnet.ID)}
    b.one.call("vm.attachnic", vm.ID, to_xml({"NIC": nic}), kind="network_interface", what="attach interface")
    after = b.one.call("vm.info", vm.ID, False, kind="machine", what="read machine")
    made = next(n for n in vectors(after.TEMPLATE, "NIC") if n.get("NIC_ID") not in before)
    interface = interface_of(made, zone, float(after.STIME or 0))
    interface.network_id = b.network_of_vnet(interface.network_id)
    return interface


def detach_interface(b: OpenNebulaBackend, machine_id: str, interface_id: str) -> None:
    vm = settled_vm(b, machine_id)
    if not any(n.get("NIC_ID") == interface_id for n in vectors(vm.TEMPLATE, "NIC")):
        raise NotFound(f"The machine '{machine_id}' has no interface '{interface_id}'.", kind="network_interface")
    b.one.call("vm.detachnic", vm.ID, int(interface_id), kind="network_interface", what="detach interface")


# -- networks and subnets made through the gateway ---------------------------------------------------------------


def _block(cidr: str, kind: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(cidr)
    except ValueError:
        raise InvalidParameter(f"'{cidr}' is not an IPv4 network.", kind=kind, reason="cidr") from None


def _addressing(block: ipaddress.IPv4Network) -> dict[str, str]:
    return {"NETWORK_ADDRESS": str(block.network_address), "NETWORK_MASK": str(block.netmask)}


def _allocate(b: OpenNebulaBackend, template: dict[str, Any], kind: str) -> str:
    body = {"VN_MAD": b.opts.network_driver} | template
    return str(b.one.call("vn.allocate", to_xml(body), -1, kind=kind, what=f"create {kind}"))


def create_network(b: OpenNebulaBackend, spec: NetworkSpec) -> Network:
    """A virtual network without address ranges naming the CIDR (its subnets bring the addresses)."""
    block = _block(spec.cidr, "network")
    name = spec.name or f"cloudgate-network-{uuid.uuid4().hex[:12]}"
    template = {"NAME": name, CIDR_ATTRIBUTE: str(block), **_addressing(block)}
    if spec.description:
        template["DESCRIPTION"] = spec.description
    vn_id = _allocate(b, template, "network")
    return network_of(find_network(b, vn_id), False)


def _subnets(b: OpenNebulaBackend, network_id: str) -> list[Any]:
    return [v for v in pool(b) if parent_of(v) == network_id]


def delete_network(b: OpenNebulaBackend, native_id: str) -> None:
    """Delete a network; one whose subnets remain is a Conflict (delete them first), as oned keeps them apart."""
    vnet = _network(b, native_id)
    if _subnets(b, str(vnet.ID)):
        raise Conflict(f"The network '{native_id}' still has subnets.", kind="network", reason="dependency")
    b.one.call("vn.delete", vnet.ID, kind="network", what="delete network")


def update_network(b: OpenNebulaBackend, native_id: str, update: NetworkUpdate) -> Network:
    """Rename (``one.vn.rename``) and describe (``DESCRIPTION`` merged into its template) a network."""
    vnet = _network(b, native_id)
    if update.name is not None and update.name != vnet.NAME:
        if not update.name.strip():
            raise InvalidParameter("A network's name cannot be empty.", kind="network", reason="name")
        b.one.call("vn.rename", vnet.ID, update.name, kind="network", what="rename network")
    if update.description is not None:
        body = to_xml({"DESCRIPTION": update.description})
        b.one.call("vn.update", vnet.ID, body, MERGE, kind="network", what="describe network")
    vnets = _networks(pool(b))
    return network_of(find_network(b, native_id), bool(vnets) and str(vnets[0].ID) == native_id)


def create_subnet(b: OpenNebulaBackend, spec: SubnetSpec) -> Subnet:
    """A virtual network of the subnet's CIDR (one address range of its usable addresses) in a gateway network."""
    network = _network(b, spec.network_id)
    outer = single(network.TEMPLATE, CIDR_ATTRIBUTE)
    if not outer:
        raise InvalidParameter(
            f"The network '{spec.network_id}' is the operator's: its subnets are its zones.", kind="subnet"
        )
    block = _block(spec.cidr, "subnet")
    if not block.subnet_of(ipaddress.IPv4Network(outer)):
        raise InvalidParameter(f"'{spec.cidr}' is not inside {outer}.", kind="subnet", reason="cidr")
    zone = pick_zone(b, spec.zone)
    for sibling in _subnets(b, str(network.ID)):
        theirs = _cidr(sibling)
        if theirs and block.overlaps(ipaddress.IPv4Network(theirs)):
            raise Conflict(
                f"The subnet {spec.cidr} overlaps subnet {sibling.ID} ({theirs}).",
                kind="subnet",
                reason="duplicate",
            )
    hosts = list(block.hosts()) if block.prefixlen < 31 else list(block)
    template = {
        "NAME": f"{spec.name or network.NAME}-{zone}-{uuid.uuid4().hex[:8]}",
        "AR": {"TYPE": "IP4", "IP": str(hosts[0]), "SIZE": str(len(hosts))},
        PARENT_ATTRIBUTE: str(network.ID),
        ZONE_ATTRIBUTE: zone,
        CIDR_ATTRIBUTE: str(block),
        **_addressing(block),
    }
    if spec.name:
        template[SUBNET_NAME_ATTRIBUTE] = spec.name
    if spec.description:
        template["DESCRIPTION"] = spec.description
    vn_id = _allocate(b, template, "subnet")
    return subnets_of(b, find_network(b, vn_id, "subnet"), False)[0]


def delete_subnet(b: OpenNebulaBackend, native_id: str) -> None:
    """Delete a subnet's virtual network (Conflict while NICs hold its leases); an operator network's zone view
    is no subnet of its own to delete."""
    vnet, _ = find_subnet(b, native_id)
    if not parent_of(vnet):
        raise Conflict(
            f"The subnet '{native_id}' is a zone of network {vnet.ID}, not a network of its own.",
            kind="subnet",
            reason="dependency",
        )
    b.one.call("vn.delete", vnet.ID, kind="subnet", what="delete subnet")
