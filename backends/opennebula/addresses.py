"""Public addresses: leases of the operator's public virtual network (option ``public_network``), as econe-server's
elastic IPs were.

Allocating holds a free lease of that network (``one.vn.hold``); associating gives the hold back and hot-plugs a NIC
with that very address on the machine (``one.vm.attachnic`` with ``IP``); disassociating removes the NIC and holds
the address again; releasing gives the hold back (``one.vn.release``). oned's holds belong to nobody, so which
addresses are the account's is kept in the user's template (``CLOUDGATE_ADDRESSES``, space-separated), beside its
key pairs. A machine's NIC on the public network is its public address, not one of its interfaces.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from backends.opennebula.catalog import ALL
from backends.opennebula.machines import settled_vm
from backends.opennebula.templates import single, to_xml, vectors
from translator.errors import Conflict, NotFound, QuotaExceeded, Unsupported
from translator.model import Address

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

ATTRIBUTE = "CLOUDGATE_ADDRESSES"
MERGE = 1  # one.user.update: replace only the attributes sent
HELD = -1  # a lease's VM when it is on hold
TRIES = 5  # free addresses tried when others take the first ones meanwhile


def public_network_id(b: OpenNebulaBackend) -> int | None:
    """The id of the virtual network named by ``public_network`` (None when unset or not visible)."""
    name = b.opts.public_network
    if not name:
        return None
    pool = b.one.pool("vnpool.info", ALL, element="VNET", kind="address", what="find the public network")
    return next((v.ID for v in pool if name == v.NAME or str(v.ID) == name), None)


def _public(b: OpenNebulaBackend) -> Any:
    vn_id = public_network_id(b)
    if vn_id is None:
        raise Unsupported("This OpenNebula account has no public network (option public_network).", reason="addresses")
    return b.one.call("vn.info", vn_id, False, kind="address", what="read the public network")


def _mine(b: OpenNebulaBackend) -> tuple[Any, list[str]]:
    user = b.one.call("user.info", -1, False, kind="address", what="read user")
    return user, single(user.TEMPLATE, ATTRIBUTE).split()


def _write(b: OpenNebulaBackend, user: Any, ips: list[str]) -> None:
    body = to_xml({ATTRIBUTE: " ".join(ips)})
    b.one.call("user.update", user.ID, body, MERGE, kind="address", what="write addresses")


def _leases(vnet: Any) -> dict[str, int]:
    """Leased address -> its VM (-1: on hold)."""
    out = {}
    for ar in vnet.AR_POOL.AR if vnet.AR_POOL is not None else []:
        for lease in ar.LEASES.LEASE if ar.LEASES is not None else []:
            if lease.IP:
                out[lease.IP] = int(lease.VM if lease.VM is not None else HELD)
    return out


def _address(ip: str, holder: int) -> Address:
    machine = str(holder) if holder >= 0 else None
    return Address(native_id=ip, public_ip=ip, machine_id=machine)


def list_addresses(b: OpenNebulaBackend) -> list[Address]:
    _, ips = _mine(b)
    if not ips:
        return []
    leases = _leases(_public(b))
    return [_address(ip, leases[ip]) for ip in ips if ip in leases]


def _owned(b: OpenNebulaBackend, ip: str) -> tuple[Any, list[str], Any, int]:
    user, ips = _mine(b)
    if ip not in ips:
        raise NotFound(f"The address '{ip}' does not exist.", kind="address")
    vnet = _public(b)
    return user, ips, vnet, _leases(vnet).get(ip, HELD)


def _lease_xml(ip: str) -> str:
    return to_xml({"LEASES": {"IP": ip}})


def allocate_address(b: OpenNebulaBackend) -> Address:
    """Hold a free lease of the public network (trying the next when another client took it first)."""
    user, ips = _mine(b)
    vnet = _public(b)
    taken = set(_leases(vnet))
    tries = 0
    for ar in vnet.AR_POOL.AR if vnet.AR_POOL is not None else []:
        if not ar.IP:
            continue
        first = ipaddress.IPv4Address(ar.IP)
        for index in range(int(ar.SIZE or 0)):
            ip = str(first + index)
            if ip in taken:
                continue
            try:
                b.one.call("vn.hold", vnet.ID, _lease_xml(ip), kind="address", what="hold address")
            except Conflict:
                tries += 1
                if tries >= TRIES:
                    raise
                continue
            _write(b, user, [*ips, ip])
            return _address(ip, HELD)
    raise QuotaExceeded("The public network has no free address left.", kind="address", reason="addresses")


def _public_nic(vm: Any, vn_id: int, ip: str) -> dict[str, str] | None:
    nics = vectors(vm.TEMPLATE, "NIC")
    return next((n for n in nics if n.get("NETWORK_ID") == str(vn_id) and n.get("IP") == ip), None)


def _unbind(b: OpenNebulaBackend, vnet: Any, ip: str, holder: int) -> None:
    """Remove the address's NIC from its machine, then hold the address again."""
    vm = settled_vm(b, str(holder))
    nic = _public_nic(vm, vnet.ID, ip)
    if nic is not None:
        b.one.call("vm.detachnic", vm.ID, int(nic["NIC_ID"]), kind="address", what="disassociate address")
        settled_vm(b, str(holder))  # the lease is free once the hot-unplug ends
    b.one.call("vn.hold", vnet.ID, _lease_xml(ip), kind="address", what="hold address")


def associate_address(b: OpenNebulaBackend, ip: str, machine_id: str) -> Address:
    _, _, vnet, holder = _owned(b, ip)
    if machine_id.isdigit() and holder == int(machine_id):
        return _address(ip, holder)
    vm = settled_vm(b, machine_id)
    if holder >= 0:
        _unbind(b, vnet, ip, holder)
    b.one.call("vn.release", vnet.ID, _lease_xml(ip), kind="address", what="free address")
    try:
        nic = to_xml({"NIC": {"NETWORK_ID": str(vnet.ID), "IP": ip}})
        b.one.call("vm.attachnic", vm.ID, nic, kind="machine", what="associate address")
    except Exception:
        b.one.call("vn.hold", vnet.ID, _lease_xml(ip), kind="address", what="hold address again")
        raise
    return _address(ip, vm.ID)


def disassociate_address(b: OpenNebulaBackend, ip: str) -> Address:
    _, _, vnet, holder = _owned(b, ip)
    if holder >= 0:
        _unbind(b, vnet, ip, holder)
    return _address(ip, HELD)


def release_address(b: OpenNebulaBackend, ip: str) -> None:
    user, ips, vnet, holder = _owned(b, ip)
    if holder >= 0:
        raise Conflict(f"The address '{ip}' is associated with a machine.", kind="address", reason="in_use")
    b.one.call("vn.release", vnet.ID, _lease_xml(ip), kind="address", what="release address")
    _write(b, user, [i for i in ips if i != ip])
