"""Links: ``networkinterface`` (a compute's interface on a network; a floating address is an interface on
the ``public`` network) and ``storagelink`` (a volume attached to a compute). Both are shown inline in the
compute's rendering and live at ``/occi/<kind>/<compute id>_<target id>``."""

from __future__ import annotations

from typing import Any

from frontends.occi import categories as c
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from frontends.occi.model import Link
from translator.backend import Capability
from translator.errors import CloudgateError
from translator.model import Address, InterfaceSpec, InterfaceState, Machine, MachineState, Volume

#: the pseudo-network floating addresses are interfaces on
PUBLIC = "public"
#: canonical interface state -> occi.networkinterface.state
INTERFACE_STATES: dict[InterfaceState, str] = {
    InterfaceState.ATTACHING: "inactive",
    InterfaceState.ACTIVE: "active",
    InterfaceState.INACTIVE: "inactive",
    InterfaceState.DETACHING: "inactive",
    InterfaceState.ERROR: "error",
}


def link_id(machine_id: str, target_id: str) -> str:
    return f"{machine_id}_{target_id}"


def split_id(rid: str) -> tuple[str, str]:
    machine_id, sep, target_id = rid.partition("_")
    if not sep or not machine_id or not target_id:
        raise OcciError(404, f"There is no link '{rid[:80]}' here.")
    return machine_id, target_id


def interface_links(ctx: Ctx, m: Machine) -> list[Link]:
    source = ctx.url(f"compute/{m.id}")
    links = []
    for index, iface in enumerate(m.interfaces):
        attrs: dict[str, Any] = {
            "occi.core.id": link_id(m.id, iface.id),
            "occi.networkinterface.interface": f"eth{index}",
            "occi.networkinterface.state": INTERFACE_STATES[iface.state],
            "occi.networkinterface.allocation": "dynamic",
        }
        if iface.mac:
            attrs["occi.networkinterface.mac"] = iface.mac
        if iface.private_ip:
            attrs["occi.networkinterface.address"] = iface.private_ip
        links.append(
            Link(
                c.NETWORKINTERFACE.id,
                link_id(m.id, iface.id),
                ctx.url(f"networkinterface/{link_id(m.id, iface.id)}"),
                source,
                ctx.url(f"network/{iface.network_id}") if iface.network_id else "",
                c.NETWORK.id,
                [c.IPNETWORKINTERFACE.id],
                attrs,
            )
        )
    for address in _addresses(ctx, m):
        rid = link_id(m.id, address.id)
        attrs = {
            "occi.core.id": rid,
            "occi.networkinterface.interface": f"eth{len(links)}",
            "occi.networkinterface.state": "active",
            "occi.networkinterface.address": address.public_ip,
            "occi.networkinterface.allocation": "static",
        }
        links.append(
            Link(
                c.NETWORKINTERFACE.id,
                rid,
                ctx.url(f"networkinterface/{rid}"),
                source,
                ctx.url(f"network/{PUBLIC}"),
                c.NETWORK.id,
                [c.IPNETWORKINTERFACE.id],
                attrs,
            )
        )
    return links


def _addresses(ctx: Ctx, m: Machine) -> list[Address]:
    if not m.public_ip or Capability.ADDRESSES not in ctx.capabilities(m):
        return []
    if ctx.bulk:
        return [a for a in ctx.related("address") if isinstance(a, Address) and a.machine_id == m.id]
    found = ctx.translator.page(ctx.principal, "address", match={"machine_id": [m.id]}).items
    return [a for a in found if isinstance(a, Address)]


def storage_links(ctx: Ctx, m: Machine) -> list[Link]:
    if not m.volume_ids:
        return []
    source = ctx.url(f"compute/{m.id}")
    links = []
    for volume in ctx.related("volume", m.volume_ids):
        assert isinstance(volume, Volume)
        attachment = next((a for a in volume.attachments if a.machine_id == m.id), None)
        if attachment is None:
            continue
        rid = link_id(m.id, volume.id)
        attrs: dict[str, Any] = {
            "occi.core.id": rid,
            "occi.storagelink.state": "active" if str(attachment.state) == "attached" else "inactive",
        }
        if attachment.device:
            attrs["occi.storagelink.deviceid"] = attachment.device
        links.append(
            Link(
                c.STORAGELINK.id,
                rid,
                ctx.url(f"storagelink/{rid}"),
                source,
                ctx.url(f"storage/{volume.id}"),
                c.STORAGE.id,
                [],
                attrs,
            )
        )
    return links


def _machine(ctx: Ctx, location: str, what: str) -> Machine:
    path = ctx.path_of(location)
    if not path.startswith("compute/"):
        raise OcciError(400, f"The {what} of the link must be a compute of this service, not '{location[:200]}'.")
    m = ctx.translator.get(ctx.principal, "machine", path.split("/", 1)[1])
    assert isinstance(m, Machine)
    if m.state is MachineState.TERMINATED:
        raise OcciError(404, "The compute has been deleted.")
    return m


class NetworkInterfaces:
    """``/occi/networkinterface/``: link a compute to a network (an interface) or to ``public`` (an address)."""

    kind = c.NETWORKINTERFACE

    def get(self, ctx: Ctx, rid: str) -> Link:
        machine_id, _ = split_id(rid)
        m = _machine(ctx, ctx.url(f"compute/{machine_id}"), "source")
        for link in interface_links(ctx, m):
            if link.id == rid:
                return link
        raise OcciError(404, f"There is no network interface '{rid[:80]}' here.")

    def listed(self, ctx: Ctx) -> list[Link]:
        machines = ctx.translator.page(ctx.principal, "machine").items
        return [link for m in machines if isinstance(m, Machine) for link in interface_links(ctx, m)]

    def create(self, ctx: Ctx, link: Link) -> Link:
        m = _machine(ctx, link.source, "source")
        target = ctx.path_of(link.target)
        if target == f"network/{PUBLIC}":
            address = ctx.translator.allocate_address(
                ctx.principal, ctx.translator.region_of(ctx.principal, "machine", m.id)
            )
            try:
                ctx.translator.associate_address(ctx.principal, address.id, m.id)
            except CloudgateError:
                ctx.translator.release_address(ctx.principal, address.id)
                raise
            return self.get(ctx, link_id(m.id, address.id))
        if not target.startswith("network/"):
            raise OcciError(400, f"The target of a network interface must be a network, not '{link.target[:200]}'.")
        network_id = target.split("/", 1)[1]
        ctx.translator.get(ctx.principal, "network", network_id)
        iface = ctx.translator.attach_interface(ctx.principal, m.id, InterfaceSpec(network_id=network_id))
        return self.get(ctx, link_id(m.id, iface.id))

    def delete(self, ctx: Ctx, rid: str) -> None:
        machine_id, target_id = split_id(rid)
        m = _machine(ctx, ctx.url(f"compute/{machine_id}"), "source")
        if any(a.id == target_id for a in _addresses(ctx, m)):
            ctx.translator.disassociate_address(ctx.principal, target_id)
            ctx.translator.release_address(ctx.principal, target_id)
            return
        ids = [i.id for i in m.interfaces]
        if target_id not in ids:
            raise OcciError(404, f"There is no network interface '{rid[:80]}' here.")
        if ids.index(target_id) == 0:
            raise OcciError(409, "A compute's first network interface cannot be removed.")
        ctx.translator.detach_interface(ctx.principal, m.id, target_id)


class StorageLinks:
    """``/occi/storagelink/``: attach a storage to a compute, detach it by deleting the link."""

    kind = c.STORAGELINK

    def get(self, ctx: Ctx, rid: str) -> Link:
        machine_id, _ = split_id(rid)
        m = _machine(ctx, ctx.url(f"compute/{machine_id}"), "source")
        for link in storage_links(ctx, m):
            if link.id == rid:
                return link
        raise OcciError(404, f"There is no storage link '{rid[:80]}' here.")

    def listed(self, ctx: Ctx) -> list[Link]:
        machines = ctx.translator.page(ctx.principal, "machine").items
        return [link for m in machines if isinstance(m, Machine) for link in storage_links(ctx, m)]

    def create(self, ctx: Ctx, link: Link) -> Link:
        m = _machine(ctx, link.source, "source")
        target = ctx.path_of(link.target)
        if not target.startswith("storage/"):
            raise OcciError(400, f"The target of a storage link must be a storage, not '{link.target[:200]}'.")
        volume_id = target.split("/", 1)[1]
        device = link.attributes.get("occi.storagelink.deviceid")
        if device is not None and not isinstance(device, str):
            raise OcciError(400, "occi.storagelink.deviceid must be a string.")
        ctx.translator.attach_volume(ctx.principal, volume_id, m.id, device or None)
        rid = link_id(m.id, volume_id)
        m = _machine(ctx, link.source, "source")
        for made in storage_links(ctx, m):
            if made.id == rid:
                return made
        # Attached in the cloud but not yet listed on the compute: answer what was asked.
        return Link(c.STORAGELINK.id, rid, ctx.url(f"storagelink/{rid}"), ctx.url(f"compute/{m.id}"),
                    ctx.url(f"storage/{volume_id}"), c.STORAGE.id, [], {"occi.core.id": rid,
                    "occi.storagelink.state": "inactive"})  # fmt: skip

    def delete(self, ctx: Ctx, rid: str) -> None:
        machine_id, volume_id = split_id(rid)
        m = _machine(ctx, ctx.url(f"compute/{machine_id}"), "source")
        volume = ctx.translator.get(ctx.principal, "volume", volume_id)
        if not any(a.machine_id == m.id for a in getattr(volume, "attachments", ())):
            raise OcciError(404, f"There is no storage link '{rid[:80]}' here.")
        ctx.translator.detach_volume(ctx.principal, volume_id, m.id)
