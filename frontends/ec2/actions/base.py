"""What every EC2 handler receives, and small helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import FilterTable, apply
from frontends.ec2.ids import ID_FORMS, public_id, resolve_ids
from frontends.ec2.paging import Page, SortKey, paginate
from translator.model import Principal, Resource
from translator.translator import Translator


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


def reader(fn: Callable[[Call, dict[str, Any]], dict[str, Any]]) -> Handler:
    return Handler(fn, mutating=False)


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
    """The caller's resources of ``kind`` in the region (or ``resources``), narrowed to the public ``ids`` if given."""
    if resources is None:
        resources = call.translator.list(call.principal, kind, call.region)
    if not ids:
        return resources
    resolve_ids(call.translator, kind, ids)  # Malformed, or NotFound for an id never seen
    form = ID_FORMS[kind]
    return pick(resources, ids, lambda r: public_id(kind, r.id) or "", form.not_found, f"{form.noun} ID")


def when(epoch: float) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def tag_list(resource: Resource) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(resource.tags.items())]


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
    """Filter then paginate the output items of a Describe* action (filters.py, paging.py)."""
    return paginate(action, apply(items, args.get("Filters"), filter_table), args, key, lowest=lowest, highest=highest)


def by_created(id_field: str) -> SortKey:
    """The stable pagination order of most resources: creation time, then id."""
    return lambda item: (_epoch(item.get("_Created")), item.get(id_field) or "")


def _epoch(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0
