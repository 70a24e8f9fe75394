"""The simulator's guest networks, network offerings and VM NICs (registered in ``server.COMMANDS``).

As CloudStack's reference has them: ``createNetwork`` answers at once (a network of a persistent offering is
Implemented at once, others stay Allocated until a VM is deployed on them), ``updateNetwork``, ``deleteNetwork``,
``addNicToVirtualMachine`` and ``removeNicFromVirtualMachine`` are asynchronous jobs; ``updateNetwork``'s
``guestvmcidr`` is CloudStack's IP reservation (the range VMs get addresses from narrows to a part of the
network's, ``networkcidr`` keeps the whole; giving the whole back resets it), allowed on Implemented isolated
networks only and never leaving an active NIC outside.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Iterator
from typing import Any

from peers.cloudstack.server import (
    INTERNAL,
    VM_CMD,
    ApiError,
    Call,
    Cloud,
    allocation_error,
    by_id_and_name,
    new_id,
    param_error,
    start_job,
    vm_result,
)

NETWORK_CMD = "org.apache.cloudstack.api.command.user.network."
#: Offerings every simulated cloud has (a config's ``networkofferings`` replaces them): CloudStack's default
#: isolated one, and a persistent one an operator made (its networks are implemented when created).
DEFAULT_OFFERINGS: list[dict[str, Any]] = [
    {
        "id": "8e0d9b7f-0000-4000-8000-000000000001",
        "name": "DefaultIsolatedNetworkOfferingWithSourceNatService",
        "displaytext": "Offering for Isolated networks with Source Nat service enabled",
    },
    {
        "id": "8e0d9b7f-0000-4000-8000-000000000002",
        "name": "IsolatedPersistent",
        "displaytext": "Persistent isolated networks with Source Nat",
        "ispersistent": True,
    },
]
SERVICES = [{"name": n, "provider": [{"name": "VirtualRouter"}]} for n in ("Dhcp", "Dns", "SourceNat", "StaticNat")]
#: Network.State values a listed network may be in.
LIVE_STATES = ("Allocated", "Implementing", "Implemented", "Setup", "Shutdown")


def offerings(cloud: Cloud) -> dict[str, dict[str, Any]]:
    """The cloud's network offerings by id (made once, from its config)."""
    if not hasattr(cloud, "networkofferings"):
        made = {}
        for spec in getattr(cloud, "config", {}).get("networkofferings") or DEFAULT_OFFERINGS:
            oid = spec.get("id", new_id())
            made[oid] = {
                "id": oid,
                "name": spec["name"],
                "displaytext": spec.get("displaytext", spec["name"]),
                "traffictype": "Guest",
                "guestiptype": spec.get("guestiptype", "Isolated"),
                "isdefault": spec.get("isdefault", oid == DEFAULT_OFFERINGS[0]["id"]),
                "ispersistent": bool(spec.get("ispersistent", False)),
                "specifyvlan": False,
                "specifyipranges": False,
                "conservemode": True,
                "availability": spec.get("availability", "Optional"),
                "networkrate": 200,
                "state": spec.get("state", "Enabled"),
                "forvpc": False,
                "egressdefaultpolicy": False,
                "serviceofferingid": "c6f8a2b4-0000-4000-8000-00000000000a",
                "service": SERVICES,
                "created": "2024-01-01T00:00:00+0000",
            }
        cloud.networkofferings = made  # type: ignore[attr-defined]
    return cloud.networkofferings  # type: ignore[attr-defined]


def list_network_offerings(call: Call) -> dict[str, Any]:
    kind, state = call.get("guestiptype"), call.get("state")
    records = [
        o
        for o in by_id_and_name(call, list(offerings(call.cloud).values()))
        if (not kind or o["guestiptype"].lower() == kind.lower()) and (not state or o["state"] == state)
    ]
    return call.listing("networkofferings", "networkoffering", records, rendered=True)


def free_ips(cloud: Cloud, net: dict[str, Any]) -> Iterator[str]:
    """Addresses for new NICs: from the network's current guest range, past the first ten (the router's)."""
    while True:
        used = {n["ipaddress"] for vm in cloud.tables["vms"].values() if not vm.get("_gone") for n in vm["nic"]}
        used.add(net["gateway"])
        hosts = itertools.islice(ipaddress.ip_network(net["cidr"]).hosts(), 9, None)
        found = next((str(h) for h in hosts if str(h) not in used), None)
        if found is None:
            raise allocation_error(f"Insufficient address capacity in network {net['name']}")
        yield found


def create_network(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    name = call.need("name")
    offering = offerings(cloud).get(call.need("networkofferingid"))
    if offering is None:
        raise call.invalid("networkofferingid", call.params["networkofferingid"])
    if offering["state"] != "Enabled":
        raise param_error(f"Network offering with specified id is not in {'Enabled'} state")
    zone = cloud.zones.get(call.need("zoneid"))
    if zone is None:
        raise call.invalid("zoneid", call.params["zoneid"])
    if zone["networktype"] == "Basic":
        raise param_error("Network creation is not allowed in zone with network type Basic")
    owner = call.owner()
    gateway, netmask = call.get("gateway"), call.get("netmask")
    if bool(gateway) != bool(netmask):
        raise param_error("gateway/netmask should be passed in pair")
    try:
        if gateway and netmask:
            cidr = ipaddress.ip_network(f"{gateway}/{netmask}", strict=False)
            ipaddress.ip_address(gateway)
        else:
            cidr, gateway = ipaddress.ip_network("10.1.1.0/24"), "10.1.1.1"
    except ValueError:
        raise param_error(f"Invalid gateway {gateway} or netmask {netmask}") from None
    if not cidr.is_private or cidr.version != 4:
        raise param_error(f"cidr {cidr} is not RFC 1918 compliant")
    if ipaddress.ip_address(gateway) not in cidr or cidr.prefixlen > 29:
        raise param_error(f"The gateway {gateway} is not a usable address of {cidr}")
    net = cloud.add(
        "networks",
        owner,
        name=name,
        displaytext=call.get("displaytext") or name,
        zoneid=zone["id"],
        zonename=zone["name"],
        type=offering["guestiptype"],
        traffictype="Guest",
        state="Implemented" if offering["ispersistent"] else "Allocated",
        cidr=str(cidr),
        gateway=gateway,
        netmask=str(cidr.netmask),
        canusefordeploy=True,
        isdefault=False,
        issystem=False,
        ispersistent=offering["ispersistent"],
        acltype="Account",
        broadcastdomaintype="Vlan",
        networkdomain=call.get("networkdomain") or "cs.internal",
        networkofferingid=offering["id"],
        networkofferingname=offering["name"],
        networkofferingdisplaytext=offering["displaytext"],
        networkofferingavailability=offering["availability"],
        networkofferingconservemode=True,
        restartrequired=False,
        specifyipranges=False,
        dns1="8.8.8.8",
        service=SERVICES,
    )
    net["related"] = net["id"]
    net["_hosts"] = free_ips(cloud, net)
    return {"network": cloud.render("networks", net)}


def _network_nics(cloud: Cloud, net: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(VM, NIC) pairs on the network, of VMs not yet expunged."""
    return [
        (vm, nic)
        for vm in cloud.tables["vms"].values()
        if not vm.get("_gone")
        for nic in vm["nic"]
        if nic["networkid"] == net["id"]
    ]


def _reserve(cloud: Cloud, net: dict[str, Any], value: str) -> None:
    """``guestvmcidr``: IP reservation, with CloudStack's checks (all within the job)."""
    if cloud.zones[net["zoneid"]]["networktype"] == "Basic":
        raise param_error("Guest VM CIDR can't be specified for zone with Basic networking")
    if net["type"] != "Isolated":
        raise param_error("Can only allow IP Reservation in networks with guest type Isolated")
    if net["state"] != "Implemented":
        raise param_error(
            f"The network must be in Implemented state. IP Reservation cannot be applied in {net['state']} state"
        )
    try:
        wanted = ipaddress.ip_network(value)
    except ValueError:
        raise param_error("Invalid format of Guest VM CIDR.") from None
    if not wanted.is_private:
        raise param_error("Invalid format of Guest VM CIDR. Make sure it is RFC1918 compliant. ")
    whole = ipaddress.ip_network(net.get("networkcidr") or net["cidr"])
    if not wanted.subnet_of(whole):
        raise param_error(
            f"Invalid value of Guest VM CIDR. For IP Reservation, Guest VM CIDR  should be a subset of network CIDR : "
            f"{whole}"
        )
    for _, nic in _network_nics(cloud, net):
        if ipaddress.ip_address(nic["ipaddress"]) not in wanted:
            raise param_error(
                f"Active IPs like {nic['ipaddress']} exist outside the Guest VM CIDR. Cannot apply reservation "
            )
    if wanted == whole:
        net.pop("networkcidr", None)  # the reservation is reset
    else:
        net["networkcidr"] = str(whole)
    net["cidr"] = str(wanted)


def update_network(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    net = call.find("networks", "id")
    changes = {k: call.get(k) for k in ("name", "displaytext") if call.get(k) is not None}
    guest = call.get("guestvmcidr")

    def finish() -> dict[str, Any]:
        if guest:
            _reserve(cloud, net, guest)
        net.update(changes)
        return {"network": cloud.render("networks", net)}

    job = start_job(call, NETWORK_CMD + "UpdateNetworkCmd", cloud.timings["job"], finish, ("Network", net["id"]))
    return {"jobid": job.id}


def delete_network(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    net = call.find("networks", "id")

    def finish() -> dict[str, Any]:
        for vm, _ in _network_nics(cloud, net):  # every VM not yet gone, Destroyed ones too
            raise ApiError(
                INTERNAL,
                f"Can't delete the network, not all user vms are expunged. Vm VM[User|{vm['name']}] is in "
                f"{vm['state']} state",
                4250,
            )
        net["_gone"] = True
        return {"success": True}

    job = start_job(call, NETWORK_CMD + "DeleteNetworkCmd", cloud.timings["job"], finish, ("Network", net["id"]))
    return {"jobid": job.id}


def new_nic(net: dict[str, Any], address: str, default: bool) -> dict[str, Any]:
    return {
        "id": new_id(),
        "networkid": net["id"],
        "networkname": net["name"],
        "netmask": net["netmask"],
        "gateway": net["gateway"],
        "ipaddress": address,
        "traffictype": "Guest",
        "type": net["type"],
        "isdefault": default,
        "macaddress": "02:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(4)),
        "broadcasturi": "vlan://untagged",
    }


def add_nic(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    vm = call.find("vms", "virtualmachineid")
    net = call.find("networks", "networkid")
    wanted = call.get("ipaddress")

    def finish() -> dict[str, Any]:
        zone = cloud.zones[vm["zoneid"]]
        if zone["networktype"] == "Basic":
            raise ApiError(INTERNAL, f"Zone {zone['name']}, has a NetworkType of Basic. Can't add a new NIC", 4250)
        if net["zoneid"] != vm["zoneid"]:
            raise ApiError(
                INTERNAL, f"Network {net['name']} is in zone {net['zonename']}, the VM in {zone['name']}", 4250
            )
        if vm["state"] not in ("Running", "Stopped"):
            raise ApiError(INTERNAL, f"Unable to add a NIC to VM[User|{vm['name']}] in state {vm['state']}", 4250)
        address = wanted or next(net["_hosts"])
        vm["nic"].append(new_nic(net, address, default=not vm["nic"]))
        if net["state"] == "Allocated":
            net["state"] = "Implemented"
        return vm_result(cloud, vm)

    job = start_job(call, VM_CMD + "AddNicToVMCmd", cloud.timings["job"], finish, ("VirtualMachine", vm["id"]), vm)
    return {"jobid": job.id}


def remove_nic(call: Call) -> dict[str, Any]:
    cloud = call.cloud
    vm = call.find("vms", "virtualmachineid")
    nicid = call.need("nicid")
    owner_vm = next((v for v in cloud.tables["vms"].values() for n in v["nic"] if n["id"] == nicid), None)
    if owner_vm is None:
        raise call.invalid("nicid", nicid)
    if owner_vm is not vm:
        raise param_error(f"Nic {nicid} does not belong to the VM {vm['id']}")
    nic = next(n for n in vm["nic"] if n["id"] == nicid)
    if nic["isdefault"]:
        raise param_error(f"Unable to remove nic from VM[User|{vm['name']}] in {nic['networkname']}, nic is default.")

    def finish() -> dict[str, Any]:
        vm["nic"] = [n for n in vm["nic"] if n["id"] != nicid]
        return vm_result(cloud, vm)

    job = start_job(call, VM_CMD + "RemoveNicFromVMCmd", cloud.timings["job"], finish, ("VirtualMachine", vm["id"]), vm)
    return {"jobid": job.id}


def list_nics(call: Call) -> dict[str, Any]:
    vm = call.find("vms", "virtualmachineid")
    nicid, network = call.get("nicid"), call.get("networkid")
    items = [
        {**nic, "virtualmachineid": vm["id"], "deviceid": str(number)}
        for number, nic in enumerate(vm["nic"])
        if (not nicid or nic["id"] == nicid) and (not network or nic["networkid"] == network)
    ]
    return call.listing("nics", "nic", items, rendered=True)


def deploy_networks(call: Call, zone_id: str, owner_key: tuple[str, str | None]) -> list[dict[str, Any]]:
    """``deployVirtualMachine``'s networks: ``networkids`` (each in the VM's zone), or the owner's one isolated
    network of the zone (CloudStack refuses to guess among several: "please specify networkIds")."""
    cloud = call.cloud
    wanted = [n for n in (call.get("networkids") or "").split(",") if n]
    if wanted:
        nets = [call.find("networks", "networkids", n) for n in wanted]
        for net in nets:
            if net["zoneid"] != zone_id:
                raise param_error(f"Network id={net['id']} doesn't belong to zone {cloud.zones[zone_id]['name']}")
    else:
        nets = [
            n
            for n in cloud.tables["networks"].values()
            if n["_owner"].key() == owner_key
            and not n.get("_gone")
            and n["zoneid"] == zone_id
            and n["type"] == "Isolated"
        ]
        if len(nets) > 1:
            raise param_error("More than 1 default Isolated networks are found for account; please specify networkIds")
    for net in nets:
        if net["state"] == "Allocated":
            net["state"] = "Implemented"  # the first VM on it implements it
    return nets


COMMANDS = {
    "listnetworkofferings": list_network_offerings,
    "createnetwork": create_network,
    "updatenetwork": update_network,
    "deletenetwork": delete_network,
    "addnictovirtualmachine": add_nic,
    "removenicfromvirtualmachine": remove_nic,
    "listnics": list_nics,
}
