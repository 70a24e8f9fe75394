"""CloudStack guest networks as canonical networks, each with its one subnet; NICs added to and removed from VMs.

A CloudStack guest network lives in one zone and is one address range, so it is both a canonical network and
that network's only subnet (same native id, different kind). The subnet's range is the one VMs get addresses
from: the whole network unless CloudStack's IP reservation (``updateNetwork guestvmcidr``) narrowed it, which is
what ``create_subnet`` does and ``delete_subnet`` undoes. CloudStack allows a reservation on an isolated network
once it is Implemented: at creation with a persistent offering, otherwise when its first VM is deployed.

The default network is the one the account's VMs go on when a create names none: ``default_network`` (a name or
id) or else the oldest isolated network of the account's first zone — CloudStack itself refuses to guess as soon
as an account has two, so deploys always name it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.cloudstack import catalog, machines
from translator.errors import Conflict, InvalidParameter, NotFound, OutcomeUnknown
from translator.model import (
    InterfaceSpec,
    MachineState,
    Network,
    NetworkInterface,
    NetworkSpec,
    NetworkState,
    NetworkUpdate,
    Subnet,
    SubnetSpec,
)

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

#: ``com.cloud.network.Network.State`` -> canonical state (``Destroy``: being deleted, no longer listed).
STATES: Mapping[str, NetworkState] = {
    "Allocated": NetworkState.AVAILABLE,  # usable: CloudStack implements it when the first VM comes
    "Setup": NetworkState.AVAILABLE,  # shared networks, set up by the operator
    "Implementing": NetworkState.PENDING,
    "Implemented": NetworkState.AVAILABLE,
    "Shutdown": NetworkState.AVAILABLE,  # garbage-collected while idle, implemented again on use
}
GONE = frozenset({"Destroy"})


# -- reads ------------------------------------------------------------------------------------------------


def _guest_networks(b: CloudStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The account's guest networks in its zones."""
    zones = {z["id"] for name, z in catalog.zone_index(b).items() if name in b.account.zones}
    nets = b.cloud.listing("listNetworks", "network", params, kind="network", what="list networks")
    return [
        n
        for n in nets
        if n.get("zoneid") in zones and n.get("traffictype", "Guest") == "Guest" and n.get("state") not in GONE
    ]


def _read(b: CloudStackBackend, native_id: str) -> dict[str, Any] | None:
    try:
        found = _guest_networks(b, {"id": native_id})
    except (NotFound, InvalidParameter):  # CloudStack's PARAM_ERROR for an id naming nothing
        return None
    return next((n for n in found if n["id"] == native_id), None)


def need_network(b: CloudStackBackend, native_id: str, kind: str = "network") -> dict[str, Any]:
    net = _read(b, native_id)
    if net is None:
        raise NotFound(f"The {kind} '{native_id}' does not exist.", kind=kind)
    return net


def _default_key(b: CloudStackBackend) -> str:
    return f"cg:cloudstack:{{{b.account.key}}}:default_network"


def default_id(b: CloudStackBackend, nets: list[dict[str, Any]], zone: str | None = None) -> str | None:
    """The network a create naming none goes on, in ``zone`` (the account's first when None): ``default_network``,
    or the zone's oldest isolated network, pinned in Redis when first chosen so that it stays the default while it
    exists (CloudStack dates networks to the second: a later one made within it must not take over)."""
    zone = zone or b.account.zones[0]
    here = [n for n in nets if n.get("zonename") == zone]
    wanted = b.opts.default_network
    if wanted:
        match = next((n for n in here if wanted in (n["id"], n.get("name"))), None)
        return match["id"] if match else None
    pinned = b.services.redis.hget(_default_key(b), zone)
    pinned = pinned.decode() if isinstance(pinned, bytes) else pinned
    if pinned and any(n["id"] == pinned for n in here):
        return pinned
    isolated = [n for n in here if n.get("type", "Isolated") == "Isolated" and n.get("canusefordeploy", True)]
    candidates = isolated or [n for n in here if n.get("canusefordeploy", True)]
    if not candidates:
        return None
    chosen = min(candidates, key=lambda n: (catalog.parse_time(n.get("created")), n["id"]))["id"]
    b.services.redis.hset(_default_key(b), zone, chosen)
    return chosen


def whole_range(net: Mapping[str, Any]) -> str:
    """The network's whole range (``networkcidr`` when an IP reservation narrowed ``cidr``)."""
    return str(net.get("networkcidr") or net.get("cidr") or "")


def to_network(net: Mapping[str, Any], default: str | None) -> Network:
    return Network(
        native_id=net["id"],
        name=net.get("name", ""),
        description=net.get("displaytext", ""),
        created=catalog.parse_time(net.get("created")),
        cidr=whole_range(net),
        state=STATES.get(str(net.get("state")), NetworkState.ERROR),
        is_default=net["id"] == default,
        tags={t["key"]: t.get("value", "") for t in net.get("tags") or [] if "key" in t},
    )


def to_subnet(net: Mapping[str, Any], default: str | None) -> Subnet:
    cidr = str(net.get("cidr") or "")
    hosts = ipaddress.ip_network(cidr).num_addresses - 3 if cidr else 0  # network, broadcast, gateway
    return Subnet(
        native_id=net["id"],
        name=net.get("name", ""),
        description=net.get("displaytext", ""),
        created=catalog.parse_time(net.get("created")),
        network_id=net["id"],
        cidr=cidr,
        zone=net.get("zonename", ""),
        state=STATES.get(str(net.get("state")), NetworkState.ERROR),
        is_default=net["id"] == default,
        available_ips=max(hosts, 0),  # CloudStack reports no free count: the range's usable addresses
    )


def list_networks(b: CloudStackBackend) -> list[Network]:
    nets = _guest_networks(b)
    default = default_id(b, nets)
    return [to_network(n, default) for n in nets]


def get_networks(b: CloudStackBackend, native_ids: list[str]) -> list[Network]:
    wanted = set(native_ids)
    return [n for n in list_networks(b) if n.native_id in wanted] if wanted else []


def list_subnets(b: CloudStackBackend) -> list[Subnet]:
    nets = _guest_networks(b)
    default = default_id(b, nets)
    return [to_subnet(n, default) for n in nets]


def get_subnets(b: CloudStackBackend, native_ids: list[str]) -> list[Subnet]:
    wanted = set(native_ids)
    return [s for s in list_subnets(b) if s.native_id in wanted] if wanted else []


# -- placement of new VMs ----------------------------------------------------------------------------------


def placement(b: CloudStackBackend, subnet_id: str | None, zone: str | None) -> tuple[str | None, str | None]:
    """(zone name, network id) a create goes to: the chosen subnet's (NotFound, or InvalidParameter for a zone
    that is not its), or the default network of the zone asked for (None: CloudStack's own choice)."""
    if subnet_id:
        net = need_network(b, subnet_id, "subnet")
        if zone and net.get("zonename") != zone:
            raise InvalidParameter(
                f"The subnet '{subnet_id}' is in zone {net.get('zonename')}, not {zone}.", kind="subnet", reason="zone"
            )
        return net.get("zonename"), net["id"]
    return zone, default_id(b, _guest_networks(b), zone)


# -- networks ---------------------------------------------------------------------------------------------


def _cidr(value: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise InvalidParameter(f"'{value}' is not an address range.", kind="network", reason="cidr") from None
    if not isinstance(net, ipaddress.IPv4Network) or net.prefixlen > 29:
        raise InvalidParameter(
            f"CloudStack guest networks are IPv4 ranges of /29 or larger, not {value}.", reason="cidr"
        )
    return net


def offering_id(b: CloudStackBackend, zone_id: str) -> str:
    """The id of the network offering named by ``network_offering``, enabled for guest networks."""
    name = b.opts.network_offering
    found = b.cloud.listing(
        "listNetworkOfferings",
        "networkoffering",
        {"zoneid": zone_id, "state": "Enabled"},  # ``name`` is a name or an id: matched here
        kind="network",
        what="network offerings",
        owned=False,
    )
    match = next((o for o in found if name in (o.get("name"), o.get("id"))), None)
    if match is None:
        raise InvalidParameter(
            f"CloudStack has no enabled network offering '{name}'.", kind="network", reason="offering"
        )
    return match["id"]


def create_network(b: CloudStackBackend, spec: NetworkSpec) -> Network:
    cidr = _cidr(spec.cidr)
    zone_id = catalog.zone_id(b, None)
    default = default_id(b, _guest_networks(b))  # chosen (and pinned) before the new one may compete
    params = {
        "name": spec.name or f"cloudgate-{cidr.network_address}-{cidr.prefixlen}",
        "displaytext": spec.description or spec.name or str(cidr),
        "zoneid": zone_id,
        "networkofferingid": offering_id(b, zone_id),
        "gateway": str(next(cidr.hosts())),
        "netmask": str(cidr.netmask),
    }
    made = b.cloud.call("createNetwork", params, kind="network", what="create network")["network"]
    return to_network(made, default)


def _in_use(b: CloudStackBackend, net_id: str) -> list[str]:
    """VMs not yet expunged with a NIC on the network (CloudStack deletes a network only without them)."""
    vms = b.cloud.listing("listVirtualMachines", "virtualmachine", kind="machine", what="network users")
    return [vm["id"] for vm in vms if any(n.get("networkid") == net_id for n in vm.get("nic") or [])]


def delete_network(b: CloudStackBackend, native_id: str) -> None:
    need_network(b, native_id)
    users = _in_use(b, native_id)
    if users:
        raise Conflict(
            f"The network '{native_id}' still has machines ({', '.join(users)}).", kind="network", reason="in_use"
        )
    try:
        b.cloud.run("deleteNetwork", {"id": native_id}, kind="network", what="delete network", target=native_id)
    except OutcomeUnknown as exc:  # the job failed: CloudStack keeps a network until its VMs are expunged
        if "expunged" not in str(exc):
            raise
        raise Conflict(str(exc), kind="network", reason="in_use") from exc


def update_network(b: CloudStackBackend, native_id: str, update: NetworkUpdate) -> Network:
    net = need_network(b, native_id)
    params = {"id": native_id, "name": update.name or None, "displaytext": update.description}
    if update.description == "":
        params["displaytext"] = net.get("name", "")  # CloudStack keeps no empty display text
    if params["name"] or params["displaytext"] is not None:
        b.cloud.run("updateNetwork", params, kind="network", what="update network")
    nets = _guest_networks(b)
    return to_network(need_network(b, native_id), default_id(b, nets))


# -- subnets: the guest range of a network -----------------------------------------------------------------


def _reserve(b: CloudStackBackend, net: Mapping[str, Any], cidr: str) -> dict[str, Any]:
    params = {"id": net["id"], "guestvmcidr": cidr}
    return b.cloud.run("updateNetwork", params, kind="subnet", what="reserve guest range").get("network") or {}


def create_subnet(b: CloudStackBackend, spec: SubnetSpec) -> Subnet:
    """Narrow the network's guest range to ``spec.cidr`` (IP reservation); the whole range is the subnet it has."""
    net = need_network(b, spec.network_id)
    wanted = _cidr(spec.cidr)
    if spec.zone and spec.zone != net.get("zonename"):
        raise InvalidParameter(
            f"The network '{net['id']}' is in zone {net.get('zonename')}, not {spec.zone}.",
            kind="subnet",
            reason="zone",
        )
    whole = ipaddress.ip_network(whole_range(net))
    if not wanted.subnet_of(whole):
        raise InvalidParameter(f"{wanted} is not within the network's range {whole}.", kind="subnet", reason="cidr")
    default = default_id(b, _guest_networks(b))
    if net.get("networkcidr"):
        raise Conflict(
            f"A CloudStack network has one subnet, and '{net['id']}' already has {net.get('cidr')}.",
            kind="subnet",
            reason="overlap",
        )
    if wanted == whole:
        return to_subnet(net, default)
    if net.get("state") != "Implemented":
        raise Conflict(
            f"CloudStack narrows the range of an implemented network only; '{net['id']}' is {net.get('state')} "
            "(deploy a machine on it first, or create networks with a persistent offering).",
            kind="subnet",
            reason="state",
        )
    outside = [
        n.get("ipaddress")
        for vm in b.cloud.listing("listVirtualMachines", "virtualmachine", kind="machine", what="subnet users")
        for n in vm.get("nic") or []
        if n.get("networkid") == net["id"] and ipaddress.ip_address(n.get("ipaddress") or "0.0.0.0") not in wanted
    ]
    if outside:
        raise Conflict(
            f"Machines have addresses outside {wanted}: {', '.join(outside)}.", kind="subnet", reason="in_use"
        )
    _reserve(b, net, str(wanted))
    return to_subnet(need_network(b, net["id"], "subnet"), default)


def delete_subnet(b: CloudStackBackend, native_id: str) -> None:
    """Undo the reservation: the guest range is the whole network again. A subnet that is already the whole range
    has nothing to undo (it stays listed as long as its network, which is what it is)."""
    net = need_network(b, native_id, "subnet")
    users = _in_use(b, net["id"])
    if users:
        raise Conflict(f"The subnet '{native_id}' has machines ({', '.join(users)}).", kind="subnet", reason="in_use")
    if net.get("networkcidr"):
        _reserve(b, net, whole_range(net))


# -- NICs -------------------------------------------------------------------------------------------------

#: VM states CloudStack adds and removes NICs in.
NIC_STATES = frozenset({MachineState.RUNNING, MachineState.STOPPED})


def attach_interface(b: CloudStackBackend, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
    vm = machines.need_vm(b, native_id)
    kind = "subnet" if spec.subnet_id else "network"
    net = need_network(b, spec.subnet_id or spec.network_id or "", kind)
    if net.get("zoneid") != vm.get("zoneid"):
        raise InvalidParameter(
            f"The {kind} '{net['id']}' is in zone {net.get('zonename')}, the machine in {vm.get('zonename')}.",
            kind=kind,
            reason="zone",
        )
    if machines.machine_state(str(vm.get("state"))) not in NIC_STATES:
        raise Conflict(f"The machine '{native_id}' cannot take an interface while {vm.get('state')}.", reason="state")
    # A runner taking the job over polls the job the first attempt started (the NIC it adds is then among the
    # VM's NICs already): which NICs there were before the first attempt is noted with it.
    target = f"{native_id}:{net['id']}"
    earlier = b.cloud.noted("nicsBefore", target)
    before = set(earlier["ids"]) if earlier is not None else {n["id"] for n in vm.get("nic") or []}
    if earlier is None:
        b.cloud.note("nicsBefore", target, {"ids": sorted(before)})
    params = {"virtualmachineid": native_id, "networkid": net["id"]}
    answer = b.cloud.run("addNicToVirtualMachine", params, kind="machine", what="add NIC", target=target)
    after = answer.get("virtualmachine") or {}
    nic = next((n for n in after.get("nic") or [] if n["id"] not in before), None)
    if nic is None:  # the job's answer lacks it: read the VM again
        nic = next(n for n in machines.need_vm(b, native_id).get("nic") or [] if n["id"] not in before)
    return machines.to_interface(nic, after or vm, False)


def detach_interface(b: CloudStackBackend, native_id: str, interface_native_id: str) -> None:
    vm = machines.need_vm(b, native_id)
    nic = next((n for n in vm.get("nic") or [] if n["id"] == interface_native_id), None)
    if nic is None:
        raise NotFound(f"The machine '{native_id}' has no interface '{interface_native_id}'.", kind="network_interface")
    if nic.get("isdefault"):
        raise Conflict(
            f"'{interface_native_id}' is the machine's default interface: CloudStack keeps it.",
            kind="network_interface",
            reason="primary",
        )
    params = {"virtualmachineid": native_id, "nicid": interface_native_id}
    b.cloud.start(
        "removeNicFromVirtualMachine", params, kind="network_interface", what="remove NIC", target=interface_native_id
    )
