"""CIMI collection query parameters (DSP0263 §4.1.6): `$filter`, `$select`, `$expand`, `$first`, `$last`,
`$orderby`, read from a request's query mapping into one frozen `CollectionQuery`.

Pure functions, no HTTP: the controllers call `parse_query(req.params)`, turn a `QueryError` into a 400,
push `window()` and `equalities()` down to the paged listing, and use `sort_key` / `apply_select` on what
comes back.

Decisions where DSP0263 is loose:
- `$first`/`$last` are 1-based inclusive positions; either may come alone (`$first=3`: from the third to the
  end; `$last=5`: the first five); `$first` > `$last` is a 400, as is a position below 1.
- `$select` and `$expand` name top-level attributes, comma-separated, repeatable (the union); `*` means
  all. `$select` always keeps `resourceURI` and `id`, without which a client cannot tell what the entry is.
- `$orderby` is `attr[:asc|:desc]`, comma-separated, repeatable (in order); a dotted path reaches into a
  structure; documents missing the attribute sort last in either direction.
- Several `$filter` parameters are ANDed. An unknown `$` parameter is a 400 (a typo must not silently
  return everything); parameters without `$` are not ours and are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from frontends.cimi.filter import (
    Filter,
    FilterError,
    as_number,
    combine,
    is_attribute_name,
    parse_datetime,
    parse_filter,
    resolve,
)

MAX_POSITION = 2**53  # the largest $first/$last we accept: beyond any collection, still exact in JSON
ALWAYS_SELECTED = ("resourceURI", "id")

_DIGITS = re.compile(r"[0-9]+")
_TOP_LEVEL_NAME = re.compile(r"[^\W\d]\w*")
_DIRECTIONS = {"asc": False, "desc": True}


class QueryError(ValueError):
    """A malformed collection query parameter (a 400); `parameter` names it, `position` is set for $filter."""

    def __init__(self, message: str, parameter: str | None = None, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.position = position


@dataclass(frozen=True, slots=True)
class CollectionQuery:
    """Everything a collection GET asked for. `select` None means every attribute; `expand_all` is `$expand=*`;
    `first`/`last` are 1-based inclusive or None; `orderby` is ((attribute, descending), ...)."""

    filter: Filter | None = None
    select: frozenset[str] | None = None
    expand: frozenset[str] = frozenset()
    expand_all: bool = False
    first: int | None = None
    last: int | None = None
    orderby: tuple[tuple[str, bool], ...] = ()

    def expands(self, attribute: str) -> bool:
        """Whether the reference held in `attribute` is to be rendered inline."""
        return self.expand_all or attribute in self.expand

    def window(self) -> tuple[int, int | None]:
        """(offset, limit) for the listing; see `window`."""
        return window(self.first, self.last)


def _values(raw: str | Iterable[str]) -> list[str]:
    return [raw] if isinstance(raw, str) else list(raw)


def _names(parameter: str, values: list[str]) -> frozenset[str] | None:
    """The union of comma-separated top-level names; None for `*`."""
    names: set[str] = set()
    for value in values:
        for item in value.split(","):
            name = item.strip()
            if name == "*":
                return None
            if not _TOP_LEVEL_NAME.fullmatch(name):
                shown = f"{name!r}" if name else "an empty name"
                raise QueryError(f"{parameter}: {shown} is not an attribute name", parameter)
            names.add(name)
    return frozenset(names)


def _position(parameter: str, values: list[str]) -> int:
    if len(values) != 1:
        raise QueryError(f"{parameter} may be given only once", parameter)
    text = values[0].strip()
    if not _DIGITS.fullmatch(text):
        raise QueryError(f"{parameter} must be a whole number of at least 1, not {text[:40]!r}", parameter)
    digits = text.lstrip("0") or "0"
    number = int(digits) if len(digits) <= 20 else MAX_POSITION + 1
    if number < 1:
        raise QueryError(f"{parameter} counts from 1; {number} is not a position", parameter)
    if number > MAX_POSITION:
        raise QueryError(f"{parameter} is larger than {MAX_POSITION}", parameter)
    return number


def _orderby(values: list[str]) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    seen: set[str] = set()
    for value in values:
        for item in value.split(","):
            name, _, direction = item.strip().partition(":")
            name, direction = name.strip(), direction.strip().lower()
            if not is_attribute_name(name):
                shown = f"{name[:40]!r}" if name else "an empty name"
                raise QueryError(f"$orderby: {shown} is not an attribute name", "$orderby")
            if direction and direction not in _DIRECTIONS:
                raise QueryError(f"$orderby: {name} sorts :asc or :desc, not :{direction[:20]}", "$orderby")
            if name in seen:
                raise QueryError(f"$orderby: {name} is given twice", "$orderby")
            seen.add(name)
            keys.append((name, _DIRECTIONS.get(direction, False)))
    return tuple(keys)


def _filters(values: list[str]) -> Filter | None:
    parsed = []
    for value in values:
        try:
            parsed.append(parse_filter(value))
        except FilterError as e:
            raise QueryError(f"$filter: {e.message}", "$filter", e.position) from None
    return combine(parsed)


_PARAMETERS = ("$filter", "$select", "$expand", "$first", "$last", "$orderby")


def parse_query(params: Mapping[str, str | Iterable[str]]) -> CollectionQuery:
    """Read the CIMI query parameters from a request's query mapping (falcon's `req.params`)."""
    unknown = sorted(name for name in params if name.startswith("$") and name not in _PARAMETERS)
    if unknown:
        known = ", ".join(_PARAMETERS)
        raise QueryError(f"unknown query parameter {unknown[0][:40]!r}; CIMI defines {known}", unknown[0])
    values = {name: _values(params[name]) for name in _PARAMETERS if name in params}
    expand = _names("$expand", values["$expand"]) if "$expand" in values else frozenset()
    first = _position("$first", values["$first"]) if "$first" in values else None
    last = _position("$last", values["$last"]) if "$last" in values else None
    if first is not None and last is not None and first > last:
        raise QueryError(f"$first ({first}) is after $last ({last})", "$first")
    return CollectionQuery(
        filter=_filters(values["$filter"]) if "$filter" in values else None,
        select=_names("$select", values["$select"]) if "$select" in values else None,
        expand=expand or frozenset(),
        expand_all=expand is None,
        first=first,
        last=last,
        orderby=_orderby(values["$orderby"]) if "$orderby" in values else (),
    )


def window(first: int | None, last: int | None) -> tuple[int, int | None]:
    """Turn 1-based inclusive `$first`/`$last` into a 0-based offset and a maximum count (None: to the end)."""
    start = first or 1
    return start - 1, (None if last is None else max(0, last - start + 1))


def apply_select(
    doc: dict[str, Any], select: frozenset[str] | None, keep: Iterable[str] = ALWAYS_SELECTED
) -> dict[str, Any]:
    """The document with only the selected top-level attributes (and `keep`); all of it when `select` is None."""
    if select is None:
        return doc
    wanted = select.union(keep)
    return {name: value for name, value in doc.items() if name in wanted}


# Sort ranks: a value sorts among values of its kind; kinds in this order.
_NUMBER, _INSTANT, _STRING, _BOOLEAN = range(4)


class _Descending:
    """Wraps a key so that it sorts in reverse, letting one key tuple mix directions."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Descending) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)


def _typed(value: Any) -> tuple[int, Any] | None:
    """A comparable (kind, value) for a document value, or None when it has no order (absent, a structure)."""
    if isinstance(value, bool):
        return _BOOLEAN, value
    if isinstance(value, int | float | Decimal):
        number = as_number(value)
        return None if number is None else (_NUMBER, number)
    if isinstance(value, str):
        number = as_number(value)
        if number is not None:
            return _NUMBER, number
        instant = parse_datetime(value) if value[:1].isdigit() else None
        return (_INSTANT, instant) if instant is not None else (_STRING, value)
    return None


def sort_key(doc: dict[str, Any], attr: str, descending: bool = False) -> tuple[Any, ...]:
    """A sort key for one `$orderby` term: numbers (also in strings) numerically, date-times as instants,
    strings lexically, references by href; documents lacking the attribute sort last in either direction."""
    found = resolve(doc, attr)
    typed = _typed(found[0]) if found else None
    if typed is None:
        return (1,)
    return (0, _Descending(typed) if descending else typed)


def orderby_key(orderby: tuple[tuple[str, bool], ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """One key function for a whole `$orderby` (ties broken by `id`, so pages are stable)."""

    def key(doc: dict[str, Any]) -> tuple[Any, ...]:
        return (*(sort_key(doc, attr, descending) for attr, descending in orderby), str(doc.get("id", "")))

    return key


__all__ = [
    "ALWAYS_SELECTED",
    "CollectionQuery",
    "QueryError",
    "apply_select",
    "orderby_key",
    "parse_query",
    "sort_key",
    "window",
]
