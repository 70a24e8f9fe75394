"""The shape of an OCCI kind's controller, and what every one shares: mixins kept as tags, attribute checks
against the categories, filters of collections."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from frontends.occi import categories as c
from frontends.occi.catalog import USER_MIXINS
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from frontends.occi.model import ActionInvocation, AttributeDef, Entity, Kind, Link
from translator.model import Resource

#: A user mixin on a resource is this tag (key + the mixin's id, value its title): every frontend sees it.
MIXIN_TAG = "occi.mixin:"
#: The tag EC2 tools name resources by; OCCI's ``occi.core.title`` is it (or the cloud's own name).
NAME_TAG = "Name"
#: how many entities one collection read renders at most
MAX_COLLECTION = 10_000


class KindController:
    """Defaults answer 405; a controller overrides what its kind allows."""

    kind: Kind = c.RESOURCE
    #: the canonical kind listed
    canonical: str = ""

    def entity(self, ctx: Ctx, resource: Resource) -> Entity:
        raise NotImplementedError

    def find(self, ctx: Ctx, rid: str) -> Resource:
        """The resource behind ``/occi/<kind>/<rid>`` (404 when the caller has none)."""
        return ctx.translator.get(ctx.principal, self.canonical, rid)

    def listed(self, ctx: Ctx) -> Iterable[Resource]:
        return ctx.translator.page(ctx.principal, self.canonical, limit=MAX_COLLECTION).items

    def create(self, ctx: Ctx, request: Entity) -> Entity:
        raise OcciError(405, f"A {self.kind.term} cannot be created here.", {"Allow": "GET"})

    def update(self, ctx: Ctx, resource: Resource, request: Entity) -> Entity:
        """Partial update (POST to the entity): mixins added, mutable attributes changed."""
        check_attributes(ctx, request, self.kind, partial=True)
        add_user_mixins(ctx, self.canonical, resource, request.mixins)
        title = request.title or request.attributes.get("occi.core.title")
        if title is not None:
            ctx.translator.update_tags(ctx.principal, self.canonical, [resource.id], {NAME_TAG: str(title)})
        return self.entity(ctx, self.find(ctx, resource.id))

    def replace(self, ctx: Ctx, resource: Resource, request: Entity) -> Entity:
        """PUT on an existing entity: its mutable state becomes the request's (user mixins replaced)."""
        if request.kind and request.kind != self.kind.id:
            raise OcciError(400, f"The entity is a {self.kind.term}, not '{request.kind}'.")
        check_attributes(ctx, request, self.kind, partial=True)
        wanted = {m for m in request.mixins if m in ctx.catalog.user}
        current = {k[len(MIXIN_TAG) :] for k in resource.tags if k.startswith(MIXIN_TAG)}
        remove = {MIXIN_TAG + m: None for m in current - wanted}
        put = {MIXIN_TAG + m: ctx.catalog.mixins[m].title or m for m in wanted - current}
        title = request.title or request.attributes.get("occi.core.title")
        if title is not None:
            put[NAME_TAG] = str(title)
        if put or remove:
            ctx.translator.update_tags(ctx.principal, self.canonical, [resource.id], put, remove)
            remember_members(ctx, self.canonical, resource.id, wanted - current)
        return self.entity(ctx, self.find(ctx, resource.id))

    def delete(self, ctx: Ctx, resource: Resource) -> None:
        raise OcciError(405, f"A {self.kind.term} cannot be deleted here.", {"Allow": "GET"})

    def act(self, ctx: Ctx, resource: Resource, invocation: ActionInvocation) -> Entity:
        raise OcciError(400, f"A {self.kind.term} has no action '{invocation.action}'.")

    def link(self, ctx: Ctx, link: Link) -> Link:
        raise OcciError(405, "Links of this kind cannot be made here.")


# -- shared helpers ----------------------------------------------------------------------------------------
def common_attributes(resource: Resource) -> dict[str, Any]:
    attrs: dict[str, Any] = {"occi.core.id": resource.id}
    title = resource.tags.get(NAME_TAG) or resource.name
    if title:
        attrs["occi.core.title"] = title
    if resource.description:
        attrs["occi.core.summary"] = resource.description
    return attrs


def user_mixins_of(resource: Resource) -> list[str]:
    return sorted(k[len(MIXIN_TAG) :] for k in resource.tags if k.startswith(MIXIN_TAG))


def add_user_mixins(ctx: Ctx, kind: str, resource: Resource, mixins: Iterable[str]) -> None:
    """Associate user mixins (tags); a mixin that is not the tenant's is 400 (templates cannot be added later)."""
    put: dict[str, str] = {}
    for mixin_id in mixins:
        if mixin_id in ctx.catalog.user:
            put[MIXIN_TAG + mixin_id] = ctx.catalog.mixins[mixin_id].title or mixin_id
        elif mixin_id not in resource_mixins_fixed(ctx, resource):
            raise OcciError(400, f"The mixin '{mixin_id}' cannot be added to an existing {kind}.")
    if put:
        ctx.translator.update_tags(ctx.principal, kind, [resource.id], put)
        remember_members(ctx, kind, resource.id, [k[len(MIXIN_TAG) :] for k in put])


def remember_members(ctx: Ctx, kind: str, gid: str, mixin_ids: Iterable[str]) -> None:
    """Record that a resource has these user mixins, so their locations list it."""
    for mixin_id in mixin_ids:
        doc_id = ctx.catalog.user.get(mixin_id)
        if doc_id is not None:
            ctx.documents.add_members(ctx.principal.tenant, USER_MIXINS, doc_id, [f"{kind}:{gid}"])


def resource_mixins_fixed(ctx: Ctx, resource: Resource) -> set[str]:
    """Mixins a resource has from its making (templates, zone): naming them again in an update is harmless."""
    fixed = set()
    for attr, scheme in (("image_id", c.OS_TPL_SCHEME), ("flavor_id", c.RESOURCE_TPL_SCHEME)):
        value = getattr(resource, attr, None)
        if value:
            fixed.add(scheme + value)
    return fixed


def check_attributes(ctx: Ctx, request: Entity, kind: Kind, *, partial: bool) -> None:
    """Every attribute is defined by the kind or one of the request's mixins, of its type, and (in a change)
    mutable; on a create, the required ones are there."""
    definitions: dict[str, AttributeDef] = {}
    for category in (kind, *(ctx.catalog.get(m) for m in request.mixins)):
        if category is None:
            continue
        for definition in category.attributes:
            definitions.setdefault(definition.name, definition)
    parents = {c.ENTITY.id: c.ENTITY, c.RESOURCE.id: c.RESOURCE, c.LINK.id: c.LINK}
    parent = kind.parent
    while parent in parents:
        for definition in parents[parent].attributes:
            definitions.setdefault(definition.name, definition)
        parent = parents[parent].parent
    for name, value in request.attributes.items():
        definition = definitions.get(name)
        if definition is None:
            raise OcciError(400, f"The attribute '{name}' is not defined for a {kind.term} with these mixins.")
        check_value(definition, value)
        if partial and not definition.mutable and name not in ("occi.core.id", "occi.core.title"):
            raise OcciError(400, f"The attribute '{name}' cannot be changed.")
    for mixin_id in request.mixins:
        if ctx.catalog.get(mixin_id) is None:
            raise OcciError(400, f"There is no mixin '{mixin_id}' here.")


def check_value(definition: AttributeDef, value: Any) -> None:
    expected = {
        "string": (str,),
        "number": (int, float),
        "integer": (int,),
        "boolean": (bool,),
        "array": (list,),
        "object": (dict,),
    }[definition.type]
    if isinstance(value, bool) and definition.type in ("number", "integer"):
        raise OcciError(400, f"The attribute '{definition.name}' must be a {definition.type}.")
    if not isinstance(value, expected):
        raise OcciError(400, f"The attribute '{definition.name}' must be a {definition.type}, not {value!r:.40}.")
    if definition.enum and value not in definition.enum:
        raise OcciError(400, f"The attribute '{definition.name}' must be one of {', '.join(definition.enum)}.")
    if isinstance(value, float) and not math.isfinite(value):
        raise OcciError(400, f"The attribute '{definition.name}' must be a finite number.")


def user_mixin_doc_ids(ctx: Ctx) -> dict[str, str]:
    return dict(ctx.catalog.user)


__all__ = ["MIXIN_TAG", "NAME_TAG", "USER_MIXINS", "KindController"]
