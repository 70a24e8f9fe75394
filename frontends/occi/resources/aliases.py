"""Locations a client chose with PUT. OCCI lets a client create an entity by PUT at a location of its
choosing; the clouds name their resources themselves, so the chosen location is kept as an alias of the
entity's own one, in the tenant's document store (``occi_alias``, id ``<kind>:<chosen id>``)."""

from __future__ import annotations

import contextlib
import re

from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from translator.errors import Conflict, NotFound
from translator.identity import authorize

KIND = "occi_alias"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")


def check(rid: str) -> None:
    if not _ID.match(rid):
        raise OcciError(
            400, "A location to PUT a new entity at ends in 1 to 128 letters, digits, '.', '_', '~' or '-'."
        )


def resolve(ctx: Ctx, kind: str, rid: str) -> str | None:
    """The entity id an alias stands for, or None when ``rid`` is no alias (or one still being made)."""
    if not _ID.match(rid):
        return None
    try:
        body = ctx.documents.get(ctx.principal.tenant, KIND, f"{kind}:{rid}").body
    except NotFound:
        return None
    return body.get("id") or None


def reserve(ctx: Ctx, kind: str, rid: str) -> None:
    """Claim the alias before the entity is made: two PUTs at one new location make one entity."""
    authorize(ctx.principal, "write")
    try:
        ctx.documents.create(ctx.principal.tenant, KIND, {"id": ""}, doc_id=f"{kind}:{rid}")
    except Conflict:
        raise OcciError(409, "An entity is being made at this location already; retry in a moment.") from None


def bind(ctx: Ctx, kind: str, rid: str, gid: str) -> None:
    ctx.documents.replace(ctx.principal.tenant, KIND, f"{kind}:{rid}", {"id": gid})


def forget(ctx: Ctx, kind: str, rid: str) -> None:
    with contextlib.suppress(NotFound):
        ctx.documents.delete(ctx.principal.tenant, KIND, f"{kind}:{rid}")
