"""A machine's network interfaces: one made with it on its subnet, more attached and detached later.

Interfaces live in their machine's record (``Machine.interfaces``, the primary first), so an interface and
its machine never disagree. Addresses are taken from the subnet among those every live interface holds.
"""

from __future__ import annotations

from backends.simulator import machine_index, network
from backends.simulator.storage import Rec, Sim, Tx, new_id
from translator.errors import Conflict, InvalidParameter, NotFound, QuotaExceeded
from translator.model import (
    InterfaceSpec,
    InterfaceState,
    Machine,
    MachineState,
    NetworkInterface,
    NetworkState,
    Subnet,
)

#: Interfaces a machine can have (a hypervisor's PCI slots run out somewhere).
MAX_INTERFACES = 8
#: Machine states in which interfaces are added or removed (hot-plug or while stopped).
CHANGEABLE_STATES = frozenset({MachineState.RUNNING, MachineState.STOPPED})


def mac_of(native_id: str) -> str:
    """A stable, locally administered unicast MAC address for an interface id."""
    digits = native_id.replace("-", "")[-10:]
    return "02:" + ":".join(digits[i : i + 2] for i in range(0, 10, 2))


def new_interface(subnet: Subnet, ip: str, now: float, up: bool = True) -> NetworkInterface:
    native_id = new_id("nic")
    return NetworkInterface(
        native_id=native_id,
        network_id=subnet.network_id,
        subnet_id=subnet.native_id,
        private_ip=ip,
        mac=mac_of(native_id),
        state=InterfaceState.ACTIVE if up else InterfaceState.INACTIVE,
        attached=now,
    )


def primary_of(machine: Machine) -> None:
    """Records written before machines had interfaces get their primary one, derived from the machine."""
    if machine.interfaces or machine.state is MachineState.TERMINATED or not machine.subnet_id:
        return
    nic = f"nic-{machine.native_id.removeprefix('vm-')}"
    machine.interfaces = [
        NetworkInterface(
            native_id=nic,
            network_id=machine.network_id,
            subnet_id=machine.subnet_id,
            private_ip=machine.private_ip,
            mac=mac_of(nic),
            attached=machine.launched,
        )
    ]


def shown(machine: Machine) -> Machine:
    """A machine as listed: the primary interface carries the machine's public address."""
    primary_of(machine)
    if machine.interfaces:
        machine.interfaces[0].public_ip = machine.public_ip
    return machine


def free_ips(tx: Tx, subnet: Subnet, count: int) -> list[str]:
    """The subnet's first ``count`` addresses no live machine's interface holds."""
    free = network.first_free_ips(subnet.cidr, machine_index.held_ips(tx, subnet.native_id), count)
    if len(free) == count:
        return free
    raise QuotaExceeded(
        f"The subnet '{subnet.native_id}' has fewer than {count} free addresses.", kind="subnet", reason="addresses"
    )


def _subnet_for(tx: Tx, machine: Machine, spec: InterfaceSpec) -> Subnet:
    """The named subnet (in the machine's zone), or the network's subnet there (its default one first)."""
    if spec.subnet_id is not None:
        subnet = tx.require("subnet", spec.subnet_id).obj
        if spec.network_id is not None and subnet.network_id != spec.network_id:
            raise InvalidParameter(
                f"The subnet '{subnet.native_id}' is not in network '{spec.network_id}'.", kind="subnet"
            )
        if subnet.zone != machine.zone:
            raise InvalidParameter(
                f"The subnet '{subnet.native_id}' is in zone '{subnet.zone}', the machine in '{machine.zone}'.",
                kind="subnet",
                reason="zone",
            )
        return subnet
    tx.require("network", spec.network_id)
    here = [s.obj for s in tx.all("subnet") if s.obj.network_id == spec.network_id and s.obj.zone == machine.zone]
    if not here:
        raise InvalidParameter(
            f"The network '{spec.network_id}' has no subnet in zone '{machine.zone}'.", kind="network", reason="zone"
        )
    return min(here, key=lambda s: (not s.is_default, s.cidr))


def _changeable(tx: Tx, native_id: str) -> Rec[Machine]:
    rec = tx.require("machine", native_id)
    if rec.obj.state not in CHANGEABLE_STATES:
        raise Conflict(
            f"The machine '{native_id}' is {rec.obj.state}; interfaces change on running or stopped machines.",
            kind="machine",
            reason="state",
        )
    primary_of(rec.obj)
    return rec


def attach_interface(sim: Sim, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
    def run(tx: Tx) -> NetworkInterface:
        rec = _changeable(tx, native_id)
        subnet = _subnet_for(tx, rec.obj, spec)
        if len(rec.obj.interfaces) >= MAX_INTERFACES:
            raise QuotaExceeded(
                f"The machine '{native_id}' has {MAX_INTERFACES} interfaces already.", kind="network_interface"
            )
        net = tx.get("network", subnet.network_id)
        up = net is None or net.obj.state is not NetworkState.DOWN
        (ip,) = free_ips(tx, subnet, 1)
        nic = new_interface(subnet, ip, tx.now, up)
        rec.obj.interfaces.append(nic)
        rec.obj.updated = tx.now
        tx.put("machine", rec)
        return nic

    return sim.store.transact(run)


def detach_interface(sim: Sim, native_id: str, interface_native_id: str) -> None:
    """Remove an interface; the primary one carries the machine's address and stays."""

    def run(tx: Tx) -> None:
        rec = _changeable(tx, native_id)
        found = next((i for i in rec.obj.interfaces if i.native_id == interface_native_id), None)
        if found is None:
            raise NotFound(
                f"The machine '{native_id}' has no interface '{interface_native_id}'.", kind="network_interface"
            )
        if found is rec.obj.interfaces[0]:
            raise Conflict(
                f"The interface '{interface_native_id}' is the primary interface of '{native_id}'.",
                kind="network_interface",
                reason="primary",
            )
        rec.obj.interfaces.remove(found)
        rec.obj.updated = tx.now
        tx.put("machine", rec)

    sim.store.transact(run)
