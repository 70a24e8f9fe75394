"""The categories a tenant sees: the static kinds, mixins and actions its backends can serve, an ``os_tpl``
mixin per image, a ``resource_tpl`` mixin per flavor (its cores and memory as attribute defaults), a zone
mixin per availability zone, and the tenant's own user mixins (from the document store). Locations are
absolute URLs."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from frontends.occi import categories as c
from frontends.occi.context import Ctx
from frontends.occi.model import AttributeDef, Category, Kind, Mixin
from translator.identity import authorize
from translator.model import Flavor, Image, ImageState

#: the document kind of user mixins in the core's document store
USER_MIXINS = "occi_mixin"
_TERM = re.compile(r"[^a-z0-9_.-]")


def zone_term(zone: str) -> str:
    """A zone's name as an OCCI term (letters, digits, ``-``, ``_``, ``.``)."""
    term = _TERM.sub("_", zone.lower())
    return term if term and term[0].isalnum() else f"z{term}"


def os_tpl(ctx: Ctx, image: Image) -> Mixin:
    return Mixin(
        c.OS_TPL_SCHEME,
        image.id,
        image.name or image.id,
        depends=(c.OS_TPL.id,),
        applies=(c.COMPUTE.id,),
        location=ctx.url(f"os_tpl/{image.id}/"),
    )


def resource_tpl(ctx: Ctx, flavor: Flavor) -> Mixin:
    attributes = (
        AttributeDef("occi.compute.cores", "integer", default=flavor.vcpus),
        AttributeDef("occi.compute.memory", "number", default=round(flavor.memory_mb / 1024, 3)),
    )
    return Mixin(
        c.RESOURCE_TPL_SCHEME,
        flavor.id,
        flavor.name or flavor.id,
        attributes,
        depends=(c.RESOURCE_TPL.id,),
        applies=(c.COMPUTE.id,),
        location=ctx.url(f"resource_tpl/{flavor.id}/"),
    )


def zone_mixin(ctx: Ctx, zone: str) -> Mixin:
    term = zone_term(zone)
    return Mixin(
        c.ZONE_SCHEME,
        term,
        zone,
        depends=(c.AVAILABILITY_ZONE.id,),
        applies=(c.COMPUTE.id, c.STORAGE.id),
        location=ctx.url(f"availability_zone/{term}/"),
    )


def user_mixin(ctx: Ctx, body: dict[str, Any]) -> Mixin:
    return Mixin(
        body["scheme"],
        body["term"],
        body.get("title", ""),
        applies=tuple(body.get("applies", ())),
        location=ctx.url(body["location"]),
    )


def absolute(ctx: Ctx, category: Category) -> Category:
    """A static category with its relative location made absolute."""
    location = getattr(category, "location", None)
    if location and "://" not in location:
        return dataclasses.replace(category, location=ctx.url(location))  # type: ignore[type-var]
    return category


@dataclass(slots=True)
class Catalog:
    kinds: dict[str, Kind] = field(default_factory=dict)
    mixins: dict[str, Mixin] = field(default_factory=dict)
    actions: dict[str, Category] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    flavors: dict[str, Flavor] = field(default_factory=dict)
    #: zone term -> zone name
    zones: dict[str, str] = field(default_factory=dict)
    #: user mixin id -> its document id
    user: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: Ctx) -> Catalog:
        authorize(ctx.principal, "read")
        caps = ctx.tenant_capabilities()
        catalog = cls()
        for kind in c.KINDS:
            need = c.KIND_NEEDS.get(kind.id)
            if need is None or need in caps:
                catalog.kinds[kind.id] = absolute(ctx, kind)  # type: ignore[assignment]
        for offered in c.ACTIONS:
            if offered.needs is None or offered.needs in caps:
                catalog.actions[offered.action.id] = offered.action
        offered_actions = set(catalog.actions)
        for kid, kind in list(catalog.kinds.items()):
            catalog.kinds[kid] = dataclasses.replace(
                kind, actions=tuple(a for a in kind.actions if a in offered_actions)
            )
        for mixin in c.MIXINS:
            catalog.mixins[mixin.id] = absolute(ctx, mixin)  # type: ignore[assignment]
        for image in ctx.translator.list(ctx.principal, "image"):
            if isinstance(image, Image) and image.state is ImageState.AVAILABLE:
                catalog.images[image.id] = image
                catalog.mixins[c.OS_TPL_SCHEME + image.id] = os_tpl(ctx, image)
        for flavor in ctx.translator.list(ctx.principal, "flavor"):
            if isinstance(flavor, Flavor):
                catalog.flavors[flavor.id] = flavor
                catalog.mixins[c.RESOURCE_TPL_SCHEME + flavor.id] = resource_tpl(ctx, flavor)
        for zone in ctx.translator.zones(ctx.principal):
            mixin = zone_mixin(ctx, zone.name)
            catalog.zones[mixin.term] = zone.name
            catalog.mixins[mixin.id] = mixin
        cursor: str | None = None
        while True:
            page = ctx.documents.list(ctx.principal.tenant, USER_MIXINS, cursor, 1000)
            for doc in page.items:
                mixin = user_mixin(ctx, doc.body)
                catalog.mixins[mixin.id] = mixin
                catalog.user[mixin.id] = doc.id
            cursor = page.next_cursor
            if cursor is None:
                break
        return catalog

    def all(self) -> list[Category]:
        return [*self.kinds.values(), *self.mixins.values(), *self.actions.values()]

    def get(self, category_id: str) -> Category | None:
        return self.kinds.get(category_id) or self.mixins.get(category_id) or self.actions.get(category_id)

    def by_location(self, url: str) -> Category | None:
        for category in (*self.kinds.values(), *self.mixins.values()):
            if getattr(category, "location", None) == url:
                return category
        return None
