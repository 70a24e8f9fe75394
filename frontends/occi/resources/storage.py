"""Storage (volumes): ``occi.storage.size`` in GiB (fractional sizes rounded up), state online/offline/error;
actions snapshot and backup (a snapshot) and resize where the backend can."""

from __future__ import annotations

import math

from frontends.occi import categories as c
from frontends.occi.catalog import zone_term
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from frontends.occi.model import ActionInvocation, Entity
from frontends.occi.resources.base import (
    MIXIN_TAG,
    NAME_TAG,
    KindController,
    check_attributes,
    common_attributes,
    remember_members,
    user_mixins_of,
)
from translator.backend import Capability
from translator.model import Resource, Volume, VolumeSpec, VolumeState, VolumeUpdate

#: canonical state -> (occi.storage.state, message); every state has a row
STATES: dict[VolumeState, tuple[str, str]] = {
    VolumeState.CREATING: ("offline", "creating"),
    VolumeState.AVAILABLE: ("online", ""),
    VolumeState.IN_USE: ("online", "attached"),
    VolumeState.DELETING: ("offline", "deleting"),
    VolumeState.DELETED: ("offline", "deleted"),
    VolumeState.ERROR: ("error", ""),
}
GONE = (VolumeState.DELETING, VolumeState.DELETED)
#: action -> the capability it needs
NEEDS = {c.SNAPSHOT.id: Capability.SNAPSHOTS, c.BACKUP.id: Capability.SNAPSHOTS, c.RESIZE.id: Capability.VOLUME_RESIZE}


def size_gb(value: object) -> int:
    """occi.storage.size (GiB, maybe fractional) as whole GiB, rounded up."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise OcciError(400, "occi.storage.size must be a positive number of GiB.")
    return max(1, math.ceil(value))


class Storages(KindController):
    kind = c.STORAGE
    canonical = "volume"

    def entity(self, ctx: Ctx, resource: Resource) -> Entity:
        assert isinstance(resource, Volume)
        v = resource
        location = ctx.url(f"storage/{v.id}")
        attrs = common_attributes(v)
        attrs["occi.storage.size"] = v.size_gb
        state, message = STATES[v.state]
        attrs["occi.storage.state"] = state
        if message:
            attrs["occi.storage.state.message"] = message
        mixins = [c.ZONE_SCHEME + zone_term(v.zone)] if v.zone else []
        mixins += user_mixins_of(v)
        caps = ctx.capabilities(v)
        actions = [
            (a, f"{location}?action={a.rsplit('#', 1)[1]}")
            for a, need in NEEDS.items()
            if need in caps and a in ctx.catalog.actions and v.state in (VolumeState.AVAILABLE, VolumeState.IN_USE)
        ]
        return Entity(c.STORAGE.id, v.id, location, mixins, attrs, actions, [], attrs.get("occi.core.title", ""))

    def listed(self, ctx: Ctx) -> list[Resource]:
        return [v for v in super().listed(ctx) if isinstance(v, Volume) and v.state not in GONE]

    def create(self, ctx: Ctx, request: Entity) -> Entity:
        check_attributes(ctx, request, self.kind, partial=False)
        if "occi.storage.size" not in request.attributes:
            raise OcciError(400, "A storage needs occi.storage.size (GiB).")
        size = size_gb(request.attributes["occi.storage.size"])
        zone = None
        for mixin_id in request.mixins:
            if mixin_id.startswith(c.ZONE_SCHEME):
                zone = ctx.catalog.zones.get(mixin_id[len(c.ZONE_SCHEME) :])
        if zone is None:  # OCCI may name none: the first available zone of the tenant's default region
            zones = [z for z in ctx.translator.zones(ctx.principal) if z.available]
            zone = zones[0].name if zones else None
        title = str((request.title or request.attributes.get("occi.core.title")) or "")
        summary = str((request.summary or request.attributes.get("occi.core.summary")) or "")
        spec = VolumeSpec(size_gb=size, zone=zone, name=title, description=summary)
        volume = ctx.translator.create_volume(ctx.principal, spec)
        tags = {MIXIN_TAG + m: ctx.catalog.mixins[m].title or m for m in request.mixins if m in ctx.catalog.user}
        if title:
            tags[NAME_TAG] = title
        if tags:
            ctx.translator.update_tags(ctx.principal, "volume", [volume.id], tags)
            volume.tags.update(tags)
        remember_members(ctx, "volume", volume.id, request.mixins)
        return self.entity(ctx, volume)

    def update(self, ctx: Ctx, resource: Resource, request: Entity) -> Entity:
        size = request.attributes.get("occi.storage.size")
        if size is not None:
            self._resize(ctx, resource, size)
            request.attributes = {k: v for k, v in request.attributes.items() if k != "occi.storage.size"}
        return super().update(ctx, resource, request)

    def _resize(self, ctx: Ctx, resource: Resource, size: object) -> None:
        assert isinstance(resource, Volume)
        wanted = size_gb(size)
        if wanted == resource.size_gb:
            return
        if wanted < resource.size_gb:
            raise OcciError(400, "A storage cannot shrink.")
        if Capability.VOLUME_RESIZE not in ctx.capabilities(resource):
            raise OcciError(501, "This storage's cloud cannot resize it.")
        ctx.translator.update_volume(ctx.principal, resource.id, VolumeUpdate(size_gb=wanted))

    def delete(self, ctx: Ctx, resource: Resource) -> None:
        ctx.translator.delete_volume(ctx.principal, resource.id)

    def act(self, ctx: Ctx, resource: Resource, invocation: ActionInvocation) -> Entity:
        need = NEEDS.get(invocation.action)
        if need is None or invocation.action not in ctx.catalog.actions:
            raise OcciError(400, f"A storage has no action '{invocation.action}' here.")
        if need not in ctx.capabilities(resource):
            raise OcciError(501, "This storage's cloud cannot do that.")
        if invocation.action == c.RESIZE.id:
            if "size" not in invocation.attributes:
                raise OcciError(400, "resize needs a size (GiB).")
            self._resize(ctx, resource, invocation.attributes["size"])
        else:
            ctx.translator.create_snapshot(ctx.principal, resource.id, f"OCCI {invocation.action.rsplit('#', 1)[1]}")
        return self.entity(ctx, self.find(ctx, resource.id))
