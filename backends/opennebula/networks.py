"""Networks: the virtual networks the user may use (``one.vnpool.info``), and the machines' NICs on them.

A virtual network's address ranges are one flat range, not zoned: its network's CIDR is the smallest block
covering every IPv4 range, and it offers one subnet per account zone spanning that block (native id
``<vnet id>:<zone>``), as the model asks of clouds with flat networks. The default network is the lowest-numbered
one the user sees. An interface is a NIC hot-plugged with ``one.vm.attachnic`` (oned leases it an address of the
network's ranges) and removed with ``one.vm.detachnic``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.opennebula.catalog import ALL, oid
from backends.opennebula.machines import interface_of, settled_vm, subnet_id, zone_of
from backends.opennebula.templates import single, to_xml, vectors
from translator.errors import InvalidParameter, NotFound
from translator.model import InterfaceSpec, Network, NetworkInterface, NetworkState, Subnet

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
    """The smallest block covering every address range ("" for a network without IPv4 ranges)."""
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


def _pool(b: OpenNebulaBackend) -> list[Any]:
    pool = b.one.call("vnpool.info", ALL, -1, -1, kind="network", what="list networks")
    return sorted((v for v in pool.VNET if _listed(v)), key=lambda v: v.ID)


def network_of(vnet: Any, default: bool) -> Network:
    return Network(
        native_id=str(vnet.ID),
        name=vnet.NAME,
        description=single(vnet.TEMPLATE, "DESCRIPTION"),
        cidr=_cidr(vnet),
        state=NETWORK_STATES[vnet.STATE],
        is_default=default,
    )


def subnets_of(b: OpenNebulaBackend, vnet: Any, default: bool) -> list[Subnet]:
    free = max(_size(vnet) - int(vnet.USED_LEASES or 0), 0)
    return [
        Subnet(
            native_id=subnet_id(str(vnet.ID), zone),
            name=vnet.NAME,
            network_id=str(vnet.ID),
            cidr=_cidr(vnet),
            zone=zone,
            state=NETWORK_STATES[vnet.STATE],
            is_default=default,
            available_ips=free,
        )
        for zone in b.account.zones
    ]


def list_networks(b: OpenNebulaBackend) -> list[Network]:
    vnets = _pool(b)
    return [network_of(v, i == 0) for i, v in enumerate(vnets)]


def list_subnets(b: OpenNebulaBackend) -> list[Subnet]:
    vnets = _pool(b)
    return [s for i, v in enumerate(vnets) for s in subnets_of(b, v, i == 0)]


def find_network(b: OpenNebulaBackend, native_id: str, kind: str = "network") -> Any:
    """The virtual network; NotFound (of ``kind``) for one missing, not the user's to use, or going away."""
    vnet = b.one.call("vn.info", oid(native_id, kind), False, kind=kind, what=f"read {kind}")
    if not _listed(vnet):
        raise NotFound(f"The {kind} '{native_id}' does not exist.", kind=kind)
    return vnet


def find_subnet(b: OpenNebulaBackend, native_id: str) -> tuple[Any, str]:
    """A subnet's virtual network and zone; NotFound for an id that names none."""
    network, _, zone = native_id.partition(":")
    if zone not in b.account.zones:
        raise NotFound(f"The subnet '{native_id}' does not exist.", kind="subnet")
    return find_network(b, network, "subnet"), zone


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
        vnet = find_network(b, spec.network_id)
    else:
        raise InvalidParameter("An interface needs a subnet or a network.", kind="network_interface")
    before = {n.get("NIC_ID") for n in vectors(vm.TEMPLATE, "NIC")}
    nic = {"NETWORK_ID": str(vnet.ID)}
    b.one.call("vm.attachnic", vm.ID, to_xml({"NIC": nic}), kind="network_interface", what="attach interface")
    after = b.one.call("vm.info", vm.ID, False, kind="machine", what="read machine")
    made = next(n for n in vectors(after.TEMPLATE, "NIC") if n.get("NIC_ID") not in before)
    return interface_of(made, zone, float(after.STIME or 0))


def detach_interface(b: OpenNebulaBackend, machine_id: str, interface_id: str) -> None:
    vm = settled_vm(b, machine_id)
    if not any(n.get("NIC_ID") == interface_id for n in vectors(vm.TEMPLATE, "NIC")):
        raise NotFound(f"The machine '{machine_id}' has no interface '{interface_id}'.", kind="network_interface")
    b.one.call("vm.detachnic", vm.ID, int(interface_id), kind="network_interface", what="detach interface")
