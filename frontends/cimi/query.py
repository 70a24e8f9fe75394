"""Placeholder until the real query module lands."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class QueryError(ValueError):
    pass


@dataclass(frozen=True)
class CollectionQuery:
    filter: Any = None
    select: frozenset[str] | None = None
    expand: frozenset[str] = frozenset()
    first: int | None = None
    last: int | None = None
    orderby: tuple[tuple[str, bool], ...] = ()


def parse_query(params: Any) -> CollectionQuery:
    return CollectionQuery()


def apply_select(doc: dict[str, Any], select: Any) -> dict[str, Any]:
    return doc


def sort_key(doc: dict[str, Any], attr: str) -> Any:
    return str(doc.get(attr, ""))


def window(first: int | None, last: int | None) -> tuple[int, int | None]:
    offset = (first or 1) - 1
    return offset, None if last is None else last - offset
