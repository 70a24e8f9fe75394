"""A machine's sub-collections: ``disks`` (its boot disk), ``volumes`` (attached volumes: add a MachineVolume
to attach, DELETE it or act ``remove`` to detach; ``insert`` on the collection attaches too) and
``networkInterfaces`` with each one's ``addresses`` (floating addresses associated through it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from frontends.cimi.context import Ctx, Reply
from frontends.cimi.controller import windowed
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery, apply_select
from translator.backend import Capability
from translator.errors import CloudgateError
from translator.model import Address, InterfaceSpec, InterfaceState, Machine, NetworkInterface, Volume
from translator.translator import Goal, Step

#: canonical interface state -> CIMI's (DSP0263 MachineNetworkInterface.state)
INTERFACE_STATES: dict[InterfaceState, str] = {
    InterfaceState.ATTACHING: "ATTACHING",
    InterfaceState.ACTIVE: "ACTIVE",
    InterfaceState.INACTIVE: "PASSIVE",
    InterfaceState.DETACHING: "DETACHING",
    InterfaceState.ERROR: "ERROR",
}


def dispatch(ctx: Ctx, machine: Machine, path: list[str], method: str, query: CollectionQuery | None) -> Reply:
    base = ctx.href("machines", machine.id)
    part, rest = path[0], path[1:]
    handler = PARTS.get(part)
    if handler is None:
        raise CimiError(404, f"A machine has no '{part[:64]}'.")
    return handler(ctx, machine, base, rest, method, query)


def _collection(
    ctx: Ctx, type_name: str, href: str, attr: str, docs: list[dict[str, Any]], query: CollectionQuery | None, add: bool
) -> Reply:
    if query is not None:
        docs = windowed(docs, query)
        if query.select:
            docs = [apply_select(d, query.select) for d in docs]
    doc: dict[str, Any] = {"resourceURI": ctx.uri(f"{type_name}Collection"), "id": href, "count": len(docs), attr: docs}
    if add:
        doc["operations"] = [{"rel": "add", "href": href}]
    return Reply(200, doc, f"{type_name}Collection")


def _member(docs: list[dict[str, Any]], href: str, what: str) -> dict[str, Any]:
    for doc in docs:
        if doc["id"] == href:
            return doc
    raise CimiError(404, f"The machine has no such {what}.")


# -- disks ------------------------------------------------------------------------------------------
def _disks(ctx: Ctx, m: Machine, base: str) -> list[dict[str, Any]]:
    size_gb = 0  # the flavor's disk, else the image's minimum (EBS-style flavors have none of their own)
    for kind, ref, attr in (("flavor", m.flavor_id, "disk_gb"), ("image", m.image_id, "min_disk_gb")):
        if ref and not size_gb:
            try:
                size_gb = getattr(ctx.translator.get(ctx.principal, kind, ref), attr, 0)
            except CloudgateError:  # no longer listed: the disk is shown without its size
                size_gb = 0
    capacity = size_gb * 1024 * 1024
    href = f"{base}/disks/0"
    doc: dict[str, Any] = {"resourceURI": ctx.uri("MachineDisk"), "id": href, "name": "boot"}
    if capacity:
        doc["capacity"] = capacity
    if m.root_device:
        doc["initialLocation"] = m.root_device
    doc["operations"] = []
    return [doc]


def disks(ctx: Ctx, m: Machine, base: str, rest: list[str], method: str, query: CollectionQuery | None) -> Reply:
    if method != "GET":
        raise CimiError(405, "A machine's disks are read-only.", headers={"Allow": "GET"})
    docs = _disks(ctx, m, base)
    if not rest:
        return _collection(ctx, "MachineDisk", f"{base}/disks", "disks", docs, query, False)
    return Reply(200, _member(docs, f"{base}/disks/{rest[0]}", "disk"), "MachineDisk")


# -- volumes ----------------------------------------------------------------------------------------
def _volume_doc(ctx: Ctx, base: str, volume: Volume, machine_id: str) -> dict[str, Any]:
    href = f"{base}/volumes/{volume.id}"
    attachment = next((a for a in volume.attachments if a.machine_id == machine_id), None)
    doc: dict[str, Any] = {"resourceURI": ctx.uri("MachineVolume"), "id": href}
    if attachment is not None and attachment.device:
        doc["initialLocation"] = attachment.device
    doc["volume"] = {"href": ctx.href("volumes", volume.id)}
    doc["operations"] = [{"rel": "delete", "href": href}]
    return doc


def _machine_volumes(ctx: Ctx, m: Machine, base: str) -> list[dict[str, Any]]:
    volumes = ctx.translator.page(ctx.principal, "volume", ids=m.volume_ids).items if m.volume_ids else []
    return [_volume_doc(ctx, base, v, m.id) for v in volumes if isinstance(v, Volume)]


def volumes(ctx: Ctx, m: Machine, base: str, rest: list[str], method: str, query: CollectionQuery | None) -> Reply:
    href = f"{base}/volumes"
    if not rest:
        if method == "GET":
            docs = _machine_volumes(ctx, m, base)
            return _collection(ctx, "MachineVolume", href, "volumes", docs, query, True)
        if method == "POST":
            return _attach(ctx, m, base, ctx.parse("MachineVolume"))
        raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": "GET, POST"})
    vid = rest[0]
    if method == "GET":
        return Reply(200, _member(_machine_volumes(ctx, m, base), f"{href}/{vid}", "volume"), "MachineVolume")
    if method == "DELETE":
        return _detach(ctx, m, vid)
    if method == "POST":
        action = ctx.parse("Action").get("action")
        if not isinstance(action, str) or action.rstrip("/").rsplit("/", 1)[-1] != "remove":
            raise CimiError(400, "A MachineVolume accepts the action 'remove' only.")
        return _detach(ctx, m, vid)
    raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": "GET, DELETE, POST"})


def volume_action(ctx: Ctx, m: Machine, action: str, body: dict[str, Any]) -> Reply:
    """CIMI 2.0's ``insert`` (attach the Action's ``volume`` at its ``initialLocation``) and ``remove``."""
    base = ctx.href("machines", m.id)
    if action == "insert":
        return _attach(ctx, m, base, body)
    return _detach(ctx, m, ctx.ref_id(body.get("volume"), "volumes", "volume"))


def _attach(ctx: Ctx, m: Machine, base: str, body: dict[str, Any]) -> Reply:
    vid = ctx.ref_id(body.get("volume"), "volumes", "volume")
    device = body.get("initialLocation") or None
    if device is not None and not isinstance(device, str):
        raise CimiError(400, "'initialLocation' must be a string.")
    job, volume = ctx.translator.follow(
        ctx.principal,
        "insert",
        Goal("volume", (Step(("in-use",)),)),
        lambda: ctx.translator.attach_volume(ctx.principal, vid, m.id, device),
        targets=[vid],
    )
    return accepted(ctx, job, _volume_doc(ctx, base, volume, m.id), "MachineVolume", f"{base}/volumes/{vid}")


def _detach(ctx: Ctx, m: Machine, vid: str) -> Reply:
    volume = ctx.translator.get(ctx.principal, "volume", vid)
    if not any(a.machine_id == m.id for a in getattr(volume, "attachments", ())):
        raise CimiError(404, "The volume is not attached to this machine.")
    job, _ = ctx.translator.follow(
        ctx.principal,
        "remove",
        Goal("volume", (Step(("available",)),)),
        lambda: ctx.translator.detach_volume(ctx.principal, vid, m.id),
        targets=[vid],
    )
    return accepted(ctx, job)


# -- network interfaces and their addresses ---------------------------------------------------------
def _interface_doc(ctx: Ctx, base: str, m: Machine, iface: NetworkInterface, primary: bool) -> dict[str, Any]:
    href = f"{base}/networkInterfaces/{iface.id}"
    doc: dict[str, Any] = {"resourceURI": ctx.uri("MachineNetworkInterface"), "id": href}
    doc["addresses"] = {"href": f"{href}/addresses"}
    if iface.network_id:
        doc["network"] = {"href": ctx.href("networks", iface.network_id)}
    if iface.mac:
        doc["macAddress"] = iface.mac
    doc["state"] = INTERFACE_STATES[iface.state]
    doc["networkType"] = "PUBLIC" if iface.public_ip else "PRIVATE"
    ops = (
        [{"rel": "delete", "href": href}]
        if not primary and Capability.MACHINE_INTERFACES in ctx.capabilities(m)
        else []
    )
    doc["operations"] = ops
    return doc


def _interfaces(ctx: Ctx, m: Machine, base: str) -> list[dict[str, Any]]:
    return [_interface_doc(ctx, base, m, iface, i == 0) for i, iface in enumerate(m.interfaces)]


def _addresses(ctx: Ctx, m: Machine, href: str) -> list[dict[str, Any]]:
    found = ctx.translator.page(ctx.principal, "address", match={"machine_id": [m.id]}).items
    docs = []
    for address in found:
        assert isinstance(address, Address)
        doc_href = f"{href}/{address.id}"
        docs.append(
            {
                "resourceURI": ctx.uri("MachineNetworkInterfaceAddress"),
                "id": doc_href,
                "address": {"href": ctx.href("addresses", address.id)},
                "operations": [{"rel": "delete", "href": doc_href}],
            }
        )
    return docs


def interfaces(ctx: Ctx, m: Machine, base: str, rest: list[str], method: str, query: CollectionQuery | None) -> Reply:
    href = f"{base}/networkInterfaces"
    if not rest:
        if method == "GET":
            docs = _interfaces(ctx, m, base)
            add = Capability.MACHINE_INTERFACES in ctx.capabilities(m)
            return _collection(ctx, "MachineNetworkInterface", href, "networkInterfaces", docs, query, add)
        if method == "POST":
            body = ctx.parse("MachineNetworkInterface")
            nid = ctx.ref_id(body.get("network"), "networks", "network")
            iface = ctx.translator.attach_interface(ctx.principal, m.id, InterfaceSpec(network_id=nid))
            doc = _interface_doc(ctx, base, m, iface, False)
            return Reply(201, doc, "MachineNetworkInterface", {"Location": doc["id"]})
        raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": "GET, POST"})
    iid, deeper = rest[0], rest[1:]
    ids = [i.id for i in m.interfaces]
    if iid not in ids:
        raise CimiError(404, "The machine has no such network interface.")
    if deeper:
        if deeper[0] != "addresses":
            raise CimiError(404, f"A network interface has no '{deeper[0][:64]}'.")
        return _interface_addresses(ctx, m, f"{href}/{iid}/addresses", deeper[1:], method, query, ids.index(iid) == 0)
    if method == "GET":
        return Reply(
            200,
            _interface_doc(ctx, base, m, m.interfaces[ids.index(iid)], ids.index(iid) == 0),
            "MachineNetworkInterface",
        )
    if method == "DELETE":
        if ids.index(iid) == 0:
            raise CimiError(409, "A machine's primary network interface cannot be removed.")
        ctx.translator.detach_interface(ctx.principal, m.id, iid)
        return Reply(204)
    raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": "GET, DELETE"})


def _interface_addresses(
    ctx: Ctx, m: Machine, href: str, rest: list[str], method: str, query: CollectionQuery | None, primary: bool
) -> Reply:
    docs = _addresses(ctx, m, href) if primary else []
    if not rest:
        if method == "GET":
            return _collection(ctx, "MachineNetworkInterfaceAddress", href, "addresses", docs, query, primary)
        if method == "POST":
            if not primary:
                raise CimiError(501, "Addresses are associated through a machine's primary interface here.")
            body = ctx.parse("MachineNetworkInterfaceAddress")
            aid = ctx.ref_id(body.get("address"), "addresses", "address")
            ctx.translator.associate_address(ctx.principal, aid, m.id)
            location = f"{href}/{aid}"
            doc = _member(_addresses(ctx, m, href), location, "address")
            return Reply(201, doc, "MachineNetworkInterfaceAddress", {"Location": location})
        raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": "GET, POST"})
    aid = rest[0]
    doc = _member(docs, f"{href}/{aid}", "address")
    if method == "GET":
        return Reply(200, doc, "MachineNetworkInterfaceAddress")
    if method == "DELETE":
        ctx.translator.disassociate_address(ctx.principal, aid)
        return Reply(204)
    raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": "GET, DELETE"})


Part = Callable[[Ctx, Machine, str, list[str], str, CollectionQuery | None], Reply]
PARTS: dict[str, Part] = {"disks": disks, "volumes": volumes, "networkInterfaces": interfaces}
