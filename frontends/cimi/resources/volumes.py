"""Volumes (DSP0263 Volume): the backends' block volumes. Create from a VolumeCreate whose template is by value
or by reference (a ``volumeConfig`` sizes it, a ``volumeImage`` makes it from that snapshot), edit (name,
description, properties, a larger ``capacity`` grows it), delete. Attaching is a machine's MachineVolume.

CIMI names no zone: a volume goes to the first available zone of its region (the region of its volumeImage,
else the tenant's default), where machines created without a zone go too, so the two can be attached.
"""

from __future__ import annotations

import math
from typing import Any

from frontends.cimi import states
from frontends.cimi.context import Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, resource_listing
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery
from frontends.cimi.resources.configs import TYPE_PREFIX
from frontends.cimi.resources.machines import replace_properties
from frontends.cimi.resources.templates import existing, resolve, volume_config
from translator.backend import Capability
from translator.identity import authorize
from translator.model import Resource, Volume, VolumeSpec, VolumeState, VolumeUpdate
from translator.translator import Goal, Step

KIND = "volume"
#: KiB in a GiB: CIMI counts capacity in kibibytes, the canonical model in GiB
KIB_PER_GIB = 1024 * 1024
#: canonical states a volume settles in after a create or a resize (attached or not)
SETTLED = ("available", "in-use")


def volume_doc(ctx: Ctx, volume: Resource) -> dict[str, Any]:
    assert isinstance(volume, Volume)
    href = ctx.href("volumes", volume.id)
    doc = common(ctx, "Volume", href, volume)
    doc["state"] = states.VOLUME[volume.state]
    doc["type"] = TYPE_PREFIX + volume.tier.value
    doc["capacity"] = volume.size_gb * KIB_PER_GIB
    # The canonical model has no boot flag: volumes made here are data volumes.
    doc["bootable"] = False
    gone = volume.state in (VolumeState.DELETING, VolumeState.DELETED)
    doc["operations"] = operations(ctx, href, [] if gone else ["edit", "delete"])
    return doc


class Volumes(Controller):
    name = "volumes"
    type_name = "Volume"
    create_type = "VolumeCreate"
    kind = KIND
    needs = Capability.VOLUMES

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, volume_doc, keep=lambda r: r.state is not VolumeState.DELETED)

    def volume(self, ctx: Ctx, rid: str) -> Volume:
        volume = ctx.translator.get(ctx.principal, KIND, rid)
        assert isinstance(volume, Volume)
        if volume.state is VolumeState.DELETED:
            raise CimiError(404, f"The volume '{rid}' has been deleted.")
        return volume

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return volume_doc(ctx, self.volume(ctx, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        if "volumeTemplate" not in body:
            raise CimiError(400, "A VolumeCreate needs a 'volumeTemplate'.")
        tmpl = resolve(ctx, body["volumeTemplate"], "volumeTemplates", "cimi_volume_template", "volumeTemplate")
        size_gb, tier = volume_config(ctx, tmpl.get("volumeConfig"))
        snapshot_id, region = None, None
        if tmpl.get("volumeImage") is not None:
            sid = ctx.ref_id(tmpl["volumeImage"], "volumeImages", "volumeImage")
            snapshot_id = existing(ctx, "snapshot", sid, "volumeImage").id
            region = ctx.translator.region_of(ctx.principal, "snapshot", snapshot_id)
        if size_gb is None and snapshot_id is None:
            raise CimiError(400, "The volume template needs a volumeConfig with a 'capacity', or a volumeImage.")
        spec = VolumeSpec(
            size_gb=size_gb,
            zone=_zone(ctx, region),
            tier=tier,
            snapshot_id=snapshot_id,
            name=str(body.get("name") or ""),
            description=str(body.get("description") or ""),
            idempotency_key=ctx.idempotency_key,
        )
        job, volume = ctx.translator.follow(
            ctx.principal,
            "add",
            Goal(KIND, (Step(SETTLED),)),
            lambda: ctx.translator.create_volume(ctx.principal, spec, region),
        )
        properties = body.get("properties")
        if isinstance(properties, dict) and properties:
            tags = {str(k): str(v) for k, v in properties.items()}
            ctx.translator.update_tags(ctx.principal, KIND, [volume.id], tags)
            volume.tags.update(tags)
        return accepted(ctx, job, volume_doc(ctx, volume), "Volume", location=ctx.href("volumes", volume.id))

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        """Name, description and properties at once (200); a larger ``capacity`` grows the volume (202, a job
        that follows it until it is usable again)."""
        authorize(ctx.principal, "write")
        volume = self.volume(ctx, rid)
        caps = ctx.capabilities(volume)
        name, description = body.get("name"), body.get("description")
        size_gb = _new_size(volume, body.get("capacity"))
        if size_gb is not None and Capability.VOLUME_RESIZE not in caps:
            raise CimiError(501, "This volume's cloud cannot resize it.")
        renamed = (name is not None and name != volume.name) or (
            description is not None and description != volume.description
        )
        if renamed and Capability.VOLUME_UPDATE not in caps:
            raise CimiError(501, "This volume's cloud cannot rename it or change its description.")
        if renamed:
            ctx.translator.update_volume(ctx.principal, rid, VolumeUpdate(name=name, description=description))
        if "properties" in body:
            replace_properties(ctx, KIND, volume, body["properties"])
        if size_gb is None:
            return Reply(200, self.get(ctx, rid), "Volume")
        job, _ = ctx.translator.follow(
            ctx.principal,
            "edit",
            Goal(KIND, (Step(SETTLED),)),
            lambda: ctx.translator.update_volume(ctx.principal, rid, VolumeUpdate(size_gb=size_gb)),
            targets=[rid],
        )
        return accepted(ctx, job, self.get(ctx, rid), "Volume", location=ctx.href("volumes", rid))

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        authorize(ctx.principal, "write")
        self.volume(ctx, rid)
        job, _ = ctx.translator.follow(
            ctx.principal,
            "delete",
            Goal(KIND, (Step(("deleted",), gone=True),)),
            lambda: ctx.translator.delete_volume(ctx.principal, rid),
            targets=[rid],
        )
        return accepted(ctx, job)


def _new_size(volume: Volume, capacity: Any) -> int | None:
    """The GiB an edit's ``capacity`` (KiB) asks for, None when it asks for no change; a shrink is refused."""
    if capacity is None:
        return None
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise CimiError(400, "'capacity' must be a positive number of KiB.")
    size_gb = math.ceil(capacity / KIB_PER_GIB)
    if size_gb < volume.size_gb:
        raise CimiError(400, f"A volume cannot shrink: it has {volume.size_gb * KIB_PER_GIB} KiB.")
    return None if size_gb == volume.size_gb else size_gb


def _zone(ctx: Ctx, region: str | None) -> str | None:
    """The first available zone of the region (None: the backend's own choice, where it lists none)."""
    zones = ctx.translator.zones(ctx.principal, region)
    usable = [z.name for z in zones if z.available] or [z.name for z in zones]
    return usable[0] if usable else None
