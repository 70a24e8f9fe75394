"""What every EC2 handler receives, and small helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import FilterTable, apply, compile_filters
from frontends.ec2.ids import ID_FORMS, public_id, resolve_ids
from frontends.ec2.paging import Page, SortKey, page_args, paginate, token_for
from translator.model import Principal, Resource
from translator.translator import Match, MissingIds, Translator


@dataclass(frozen=True, slots=True)
class Call:
    """One authenticated EC2 request, as handlers see it."""

    translator: Translator
    principal: Principal
    region: str
    request_id: str
    account_id: str
    #: the URL the client reached this gateway at (DescribeRegions' Endpoint)
    endpoint: str = ""


@dataclass(frozen=True, slots=True)
class Handler:
    fn: Callable[[Call, dict[str, Any]], dict[str, Any]]
    mutating: bool
    #: its answer is built from listings alone: kept and reused while they are unchanged (translator/read_cache.py)
    reusable: bool = False


def reader(fn: Callable[[Call, dict[str, Any]], dict[str, Any]]) -> Handler:
    return Handler(fn, mutating=False)


def describer(fn: Callable[[Call, dict[str, Any]], dict[str, Any]]) -> Handler:
    """A reader whose answer depends only on the request, the caller and the listings it reads."""
    return Handler(fn, mutating=False, reusable=True)


def writer(fn: Callable[[Call, dict[str, Any]], dict[str, Any]]) -> Handler:
    return Handler(fn, mutating=True)


R = TypeVar("R")


def pick(resources: Iterable[R], wanted: list[str], key: Callable[[R], str], code: str, noun: str) -> list[R]:
    """The resources whose ``key`` is wanted, in request order and once each; EC2's ``code`` names the missing.

    The one place an EC2 action selects what a request names: another tenant's resource is missing too.
    """
    found = {key(r): r for r in resources}
    missing = [w for w in wanted if w not in found]
    if missing:
        raise EC2Error(code, f"The {noun} '{', '.join(dict.fromkeys(missing))}' does not exist")
    return [found[w] for w in dict.fromkeys(wanted)]


def selected(call: Call, kind: str, ids: list[str] | None, resources: list[Any] | None = None) -> list[Any]:
    """The caller's resources of ``kind`` in the region (or ``resources``), narrowed to the public ``ids`` if given.

    Without ``resources``, named ones are read by id, not picked out of the region's listing."""
    if not ids:
        return call.translator.list(call.principal, kind, call.region) if resources is None else resources
    gids = resolve_ids(call.translator, kind, ids)  # Malformed, or NotFound for an id never seen
    if resources is None:
        try:
            found = {r.id: r for r in call.translator.page(call.principal, kind, ids=gids, region=call.region).items}
        except MissingIds as exc:
            raise not_found(kind, exc.ids) from None
        return [found[g] for g in dict.fromkeys(gids)]
    form = ID_FORMS[kind]
    return pick(resources, ids, lambda r: public_id(kind, r.id) or "", form.not_found, f"{form.noun} ID")


def not_found(kind: str, gids: list[str]) -> EC2Error:
    """EC2's NotFound naming every one of ``gids`` by its public id."""
    form = ID_FORMS[kind]
    missing = ", ".join(public_id(kind, g) or "" for g in gids)
    return EC2Error(form.not_found, f"The {form.noun} ID '{missing}' does not exist")


def when(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def tag_list(resource: Resource) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(resource.tags.items())]


def describe_resources(
    call: Call,
    action: str,
    kind: str,
    args: dict[str, Any],
    render: Callable[[Any], dict[str, Any]],
    filter_table: FilterTable,
    *,
    ids: list[str] | None = None,
    keep: Callable[[Any], bool] | None = None,
    match: Match | None = None,
    prepare: Callable[[list[Any]], None] | None = None,
    lowest: int = 5,
    highest: int = 1000,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a Describe* action over one kind, and its NextToken: the translator walks the caller's
    resources in order and stops at ``MaxResults`` matches; each is rendered once (``render``, in walk order)
    for the ``Filters`` and the answer. ``ids`` are public ids (every one the caller cannot see is named in
    EC2's NotFound); ``keep`` and ``match`` narrow by the resource itself. ``prepare`` is given the page's
    resources not yet rendered, before they are (to read what they refer to in one go)."""
    paging = page_args(action, args, lowest=lowest, highest=highest)
    filters = compile_filters(args.get("Filters"), filter_table)
    gids = resolve_ids(call.translator, kind, ids) if ids else None
    rendered: dict[str, dict[str, Any]] = {}

    def item(resource: Any) -> dict[str, Any]:
        found = rendered.get(resource.id)
        if found is None:
            found = rendered[resource.id] = render(resource)
        return found

    def where(resource: Any) -> bool:
        return (keep is None or keep(resource)) and all(f.matches(item(resource)) for f in filters)

    try:
        page = call.translator.page(
            call.principal,
            kind,
            limit=paging.limit,
            cursor=paging.cursor,
            ids=gids,
            where=where if keep is not None or filters else None,
            match=match,
            region=call.region,
        )
    except MissingIds as exc:
        raise not_found(kind, exc.ids) from None
    if prepare is not None:
        prepare([r for r in page.items if r.id not in rendered])
    return [item(r) for r in page.items], token_for(action, page.next_cursor)


def describe(
    action: str,
    args: dict[str, Any],
    items: list[dict[str, Any]],
    filter_table: FilterTable,
    key: SortKey,
    *,
    lowest: int = 5,
    highest: int = 1000,
) -> Page:
    """Filter then paginate output items an action builds itself (filters.py, paging.py); actions over one kind
    of resource use ``describe_resources``, which never takes a whole listing."""
    return paginate(action, apply(items, args.get("Filters"), filter_table), args, key, lowest=lowest, highest=highest)


def by_created(id_field: str) -> SortKey:
    """The stable pagination order of most resources: creation time, then id."""
    return lambda item: (_epoch(item.get("_Created")), item.get(id_field) or "")


def _epoch(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
