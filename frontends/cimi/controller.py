"""The shape of a CIMI collection's controller, and the listing every collection shares.

A controller answers for one collection (``/cimi/<name>``) and its members; it never sees HTTP or a
content type (STYLE rule 8): it takes parsed documents as dicts in JSON shape and returns a ``Reply``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from frontends.cimi import vocabulary
from frontends.cimi.context import Ctx, Reply
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery, apply_select, orderby_key, window
from translator.model import Resource

#: the most members one collection read may sort in memory (``$orderby`` on an attribute the paging order lacks)
MAX_SORTED = 10_000


class Controller:
    """Defaults answer 405; a controller overrides what its collection allows."""

    #: the URL segment and the CloudEntryPoint attribute, e.g. ``machines``
    name: str = ""
    #: the CIMI type of a member, e.g. ``Machine``
    type_name: str = ""
    #: the CIMI type an ``add`` body is parsed as (``MachineCreate``), None when members cannot be added
    create_type: str | None = None
    #: the canonical kind listed, for translator-backed collections
    kind: str = ""

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        raise _not_allowed(self, "GET")

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        raise _not_allowed(self, "GET")

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        raise _not_allowed(self, "POST")

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        raise _not_allowed(self, "PUT")

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        raise _not_allowed(self, "DELETE")

    def act(self, ctx: Ctx, rid: str, action: str, body: dict[str, Any]) -> Reply:
        raise CimiError(400, f"A {self.type_name} has no action '{action}'.")

    #: the capability a tenant's backends need for the collection to be offered (None: always)
    needs: Any = None

    def offered(self, capabilities: frozenset[Any]) -> bool:
        """Whether the entry point names this collection, given what the tenant's backends can do."""
        return self.needs is None or self.needs in capabilities

    def register(self, translator: Any) -> None:
        """Register job handlers with the translator's runner (once per worker); most collections have none."""

    def sub(self, ctx: Ctx, rid: str, path: list[str], method: str, query: Any) -> Reply:
        """Sub-collections of a member (``/cimi/machines/<id>/volumes/...``)."""
        raise CimiError(404, "There is no such resource here.")

    def href(self, ctx: Ctx, rid: str) -> str:
        return ctx.href(self.name, rid)

    def allowed(self) -> list[str]:
        """The HTTP methods a member URL accepts (for 405's ``Allow``)."""
        methods = ["GET"]
        for method, name in (("PUT", "edit"), ("DELETE", "delete"), ("POST", "act")):
            if getattr(type(self), name) is not getattr(Controller, name):
                methods.append(method)
        return methods

    def collection_operations(self, ctx: Ctx) -> list[dict[str, str]]:
        if self.create_type and type(self).add is not Controller.add:
            return [{"rel": "add", "href": ctx.href(self.name)}]
        return []


def _not_allowed(controller: Controller, method: str) -> CimiError:
    return CimiError(
        405, f"{method} is not allowed on {controller.name}.", headers={"Allow": ", ".join(controller.allowed())}
    )


def collection(ctx: Ctx, controller: Controller, docs: list[dict[str, Any]], query: CollectionQuery) -> Reply:
    """The collection document of already-windowed members, with ``$select`` applied to each."""
    members = [apply_select(d, query.select) for d in docs] if query.select else docs
    doc: dict[str, Any] = {
        "resourceURI": ctx.uri(f"{controller.type_name}Collection"),
        "id": ctx.href(controller.name),
        "count": len(members),
        vocabulary.TYPES[controller.type_name].collection_attr or controller.name: members,
    }
    ops = controller.collection_operations(ctx)
    if ops:
        doc["operations"] = ops
    return Reply(200, doc, f"{controller.type_name}Collection")


def windowed(docs: Iterable[dict[str, Any]], query: CollectionQuery) -> list[dict[str, Any]]:
    """Filter, order and window documents that are all at hand (small, gateway-owned collections)."""
    matching = [d for d in docs if query.filter is None or query.filter.matches(d)]
    if query.orderby:
        matching = ordered(matching, query)
    offset, limit = window(query.first, query.last)
    return matching[offset : None if limit is None else offset + limit]


def ordered(docs: list[dict[str, Any]], query: CollectionQuery) -> list[dict[str, Any]]:
    """``$orderby``: every term in its direction, ties broken by id."""
    return sorted(docs, key=orderby_key(query.orderby))


def resource_listing(
    ctx: Ctx,
    controller: Controller,
    query: CollectionQuery,
    to_doc: Callable[[Ctx, Resource], dict[str, Any]],
    keep: Callable[[Resource], bool] | None = None,
) -> Reply:
    """A collection read over the translator's paged listing of ``controller.kind``.

    Without ``$orderby`` the walk stops once the window is full: ``$first``/``$last`` cost what they return
    (and what ``$filter`` skips), never the whole account. ``$orderby`` sorts every match in memory.
    """
    docs: dict[str, dict[str, Any]] = {}

    def doc_of(resource: Resource) -> dict[str, Any]:
        doc = docs.get(resource.id)
        if doc is None:
            doc = docs[resource.id] = to_doc(ctx, resource)
        return doc

    flt = query.filter

    def where(resource: Resource) -> bool:
        if keep is not None and not keep(resource):
            return False
        return flt is None or flt.matches(doc_of(resource))

    offset, limit = window(query.first, query.last)
    if query.orderby:
        page = ctx.translator.page(ctx.principal, controller.kind, where=where, limit=MAX_SORTED)
        members = ordered([doc_of(r) for r in page.items], query)
        members = members[offset : None if limit is None else offset + limit]
    else:
        need = None if limit is None else offset + limit
        page = ctx.translator.page(ctx.principal, controller.kind, where=where, limit=need)
        members = [doc_of(r) for r in page.items[offset:]]
    return collection(ctx, controller, members, query)
