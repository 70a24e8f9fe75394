"""The query interface (``/occi/-/``): the tenant's categories, filtered by category; user mixins made by POST
and removed by DELETE there. Mixin locations list the entities that have the mixin; user mixins are
associated with entities by posting their locations to the mixin's location."""

from __future__ import annotations

import re
from collections.abc import Iterable

from frontends.occi import categories as c
from frontends.occi.catalog import USER_MIXINS, zone_term
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from frontends.occi.model import Category, Mixin
from frontends.occi.resources.base import MIXIN_TAG
from translator.errors import CloudgateError, NotFound
from translator.identity import authorize
from translator.model import Machine, Resource, Volume

#: a user mixin's location: a path under /occi/ of lowercase words
_LOCATION = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}(/[a-z0-9][a-z0-9_.-]{0,63}){0,3}/$")
#: OCCI kind location -> (canonical kind, its OCCI location prefix)
ENTITY_KINDS = {"compute/": "machine", "storage/": "volume", "network/": "network"}


def query(ctx: Ctx, wanted: list[str]) -> list[Category]:
    """The categories the tenant can use; with ``wanted`` ids only those (404 when none is known)."""
    everything = ctx.catalog.all()
    if not wanted:
        return everything
    chosen = [cat for cat in everything if cat.id in set(wanted)]
    if not chosen:
        raise OcciError(404, "None of the categories asked for is offered here.")
    return chosen


def create_user_mixins(ctx: Ctx, mixins: list[Mixin]) -> list[Category]:
    """Define user mixins (tags); their location is the one asked for, or ``mixin/<term>/``."""
    authorize(ctx.principal, "write")
    if not mixins:
        raise OcciError(400, "Define at least one mixin.")
    made = []
    taken = {getattr(cat, "location", None) for cat in ctx.catalog.all()}
    for mixin in mixins:
        if mixin.id in {cat.id for cat in ctx.catalog.all()}:
            raise OcciError(409, f"The category '{mixin.id}' exists already.")
        location = ctx.path_of(mixin.location) if mixin.location else f"mixin/{mixin.term}/"
        if not location.endswith("/"):
            location += "/"
        if not _LOCATION.match(location) or location.split("/", 1)[0] in {*ENTITY_KINDS, "-", "compute", "storage",
                                                                            "network", "networkinterface",
                                                                            "storagelink", "os_tpl", "resource_tpl",
                                                                            "availability_zone"}:  # fmt: skip
            raise OcciError(400, f"'{mixin.location or location}' cannot be a mixin's location here.")
        if ctx.url(location) in taken:
            raise OcciError(409, f"The location '{location}' is taken.")
        body = {"scheme": mixin.scheme, "term": mixin.term, "title": mixin.title, "location": location,
                "applies": list(mixin.applies)}  # fmt: skip
        ctx.documents.create(ctx.principal.tenant, USER_MIXINS, body)
        taken.add(ctx.url(location))
        made.append(Mixin(mixin.scheme, mixin.term, mixin.title, location=ctx.url(location)))
    ctx.forget_catalog()  # the next read sees the new mixins
    return made


def delete_user_mixins(ctx: Ctx, ids: list[str]) -> None:
    """Remove user mixins and their association with every entity (the tags)."""
    authorize(ctx.principal, "write")
    if not ids:
        raise OcciError(400, "Name the mixin to remove with its category.")
    for mixin_id in ids:
        doc_id = ctx.catalog.user.get(mixin_id)
        if doc_id is None:
            if ctx.catalog.get(mixin_id) is not None:
                raise OcciError(403, f"'{mixin_id}' is not a user mixin: it cannot be removed.")
            raise OcciError(404, f"There is no mixin '{mixin_id}' here.")
        for kind, gid in _members(ctx, doc_id):
            try:
                ctx.translator.update_tags(ctx.principal, kind, [gid], {}, {MIXIN_TAG + mixin_id: None})
            except NotFound:
                continue
        ctx.documents.delete(ctx.principal.tenant, USER_MIXINS, doc_id)
    ctx.forget_catalog()


def _members(ctx: Ctx, doc_id: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    cursor: str | None = None
    while True:
        page = ctx.documents.members(ctx.principal.tenant, USER_MIXINS, doc_id, cursor, 1000)
        for member in page.items:
            kind, _, gid = member.partition(":")
            found.append((kind, gid))
        cursor = page.next_cursor
        if cursor is None:
            return found


def entities_with(ctx: Ctx, mixin: Category) -> list[tuple[str, Resource]]:
    """The (canonical kind, resource) pairs that have ``mixin``."""
    scheme, term = mixin.scheme, mixin.term
    if scheme == c.OS_TPL_SCHEME:
        return [("machine", m) for m in _machines(ctx) if m.image_id == term]
    if scheme == c.RESOURCE_TPL_SCHEME:
        return [("machine", m) for m in _machines(ctx) if m.flavor_id == term]
    if scheme == c.ZONE_SCHEME:
        found: list[tuple[str, Resource]] = [("machine", m) for m in _machines(ctx) if zone_term(m.zone) == term]
        volumes = ctx.translator.page(ctx.principal, "volume").items
        return found + [
            ("volume", v) for v in volumes if isinstance(v, Volume) and v.zone and zone_term(v.zone) == term
        ]
    doc_id = ctx.catalog.user.get(mixin.id)
    if doc_id is None:
        return []  # the parents (os_tpl, resource_tpl, ssh_key...) are not held by entities themselves
    result = []
    for kind, gid in _members(ctx, doc_id):
        try:
            resource = ctx.translator.get(ctx.principal, kind, gid)
        except NotFound:
            continue
        if MIXIN_TAG + mixin.id in resource.tags:
            result.append((kind, resource))
    return result


def _machines(ctx: Ctx) -> list[Machine]:
    return [m for m in ctx.translator.page(ctx.principal, "machine").items if isinstance(m, Machine)
            and str(m.state) not in ("terminating", "terminated")]  # fmt: skip


def associate(ctx: Ctx, mixin: Category, locations: Iterable[str], *, replace: bool) -> None:
    """Give the entities at ``locations`` a user mixin (PUT: exactly those entities have it afterwards)."""
    authorize(ctx.principal, "write")
    doc_id = ctx.catalog.user.get(mixin.id)
    if doc_id is None:
        raise OcciError(405, "Only user mixins are given to entities through their location.", {"Allow": "GET"})
    targets = [_resolve(ctx, loc) for loc in locations]
    if replace:
        keep = {gid for _, gid in targets}
        for kind, resource in entities_with(ctx, mixin):
            if resource.id not in keep:
                ctx.translator.update_tags(ctx.principal, kind, [resource.id], {}, {MIXIN_TAG + mixin.id: None})
    for kind, gid in targets:
        ctx.translator.update_tags(ctx.principal, kind, [gid], {MIXIN_TAG + mixin.id: mixin.title or mixin.term})
    ctx.documents.add_members(ctx.principal.tenant, USER_MIXINS, doc_id, [f"{k}:{g}" for k, g in targets])


def dissociate(ctx: Ctx, mixin: Category, locations: Iterable[str]) -> None:
    authorize(ctx.principal, "write")
    doc_id = ctx.catalog.user.get(mixin.id)
    if doc_id is None:
        raise OcciError(405, "Only user mixins are taken from entities through their location.", {"Allow": "GET"})
    targets = [_resolve(ctx, loc) for loc in locations]
    for kind, gid in targets:
        ctx.translator.update_tags(ctx.principal, kind, [gid], {}, {MIXIN_TAG + mixin.id: None})
    ctx.documents.remove_members(ctx.principal.tenant, USER_MIXINS, doc_id, [f"{k}:{g}" for k, g in targets])


def _resolve(ctx: Ctx, location: str) -> tuple[str, str]:
    path = ctx.path_of(location)
    for prefix, kind in ENTITY_KINDS.items():
        if path.startswith(prefix) and "/" not in path[len(prefix) :] and path[len(prefix) :]:
            gid = path[len(prefix) :]
            try:
                ctx.translator.get(ctx.principal, kind, gid)
            except CloudgateError:
                raise OcciError(400, f"'{location[:200]}' names no entity of this tenant.") from None
            return kind, gid
    raise OcciError(400, f"'{location[:200]}' is not an entity's location here.")
