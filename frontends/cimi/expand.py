"""``$expand``: references in a document replaced by what they name, read as the caller would read them."""

from __future__ import annotations

from typing import Any

from frontends.cimi.context import Ctx
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery
from translator.errors import CloudgateError

#: attributes that are never expanded (the document's own identity, its operations)
NEVER = frozenset({"id", "resourceURI", "operations", "properties"})


def expand(ctx: Ctx, doc: dict[str, Any], query: CollectionQuery) -> None:
    """Expand the references ``query.expand`` names (every one for ``*``), in a member or in each member
    of a collection."""
    if not (query.expand or query.expand_all):
        return
    members = [d for value in doc.values() if isinstance(value, list) for d in value if isinstance(d, dict)]
    is_collection = "count" in doc
    for target in members if is_collection else [doc]:
        _expand_one(ctx, target, query)


def _expand_one(ctx: Ctx, doc: dict[str, Any], query: CollectionQuery) -> None:
    for attr, value in list(doc.items()):
        if attr in NEVER or not query.expands(attr):
            continue
        if _is_ref(value):
            doc[attr] = _fetch(ctx, value) or value
        elif isinstance(value, list) and value and all(_is_ref(v) for v in value):
            doc[attr] = [_fetch(ctx, v) or v for v in value]


def _is_ref(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("href"), str) and len(value) <= 2


def _fetch(ctx: Ctx, ref: dict[str, Any]) -> dict[str, Any] | None:
    """The referenced document, or None when it cannot be read (it stays a reference)."""
    if ctx.resolve is None:
        return None
    try:
        return {"href": ref["href"], **ctx.resolve(ctx, ref["href"])}
    except (CimiError, CloudgateError):
        return None
