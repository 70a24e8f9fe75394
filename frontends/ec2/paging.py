"""``MaxResults`` / ``NextToken`` pagination that stays stable while resources come and go.

A token carries the sort key of the last item returned, not an offset: the next page starts after
that key, so resources created or deleted between pages never shift, repeat or skip the others.
Items are sorted by a key that never changes for a resource (its launch or creation time, then its
id). Tokens name their action, so one action's token is refused by another.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from frontends.ec2.errors import EC2Error

SortKey = Callable[[dict[str, Any]], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


def paginate(
    action: str,
    items: list[dict[str, Any]],
    args: dict[str, Any],
    key: SortKey,
    *,
    lowest: int = 5,
    highest: int = 1000,
) -> Page:
    """One page of ``items`` (already filtered) in key order, as ``MaxResults``/``NextToken`` ask."""
    limit = args.get("MaxResults")
    token = args.get("NextToken")
    if limit is not None and not lowest <= limit <= highest:
        raise EC2Error(
            "InvalidParameterValue",
            f"Value ( {limit} ) for parameter maxResults is invalid. Expecting a value between {lowest} and {highest}.",
        )
    ordered = sorted(items, key=key)
    if token:
        after = _decode(action, token)
        ordered = [item for item in ordered if _comparable(key(item)) > after]
    if limit is None or len(ordered) <= limit:
        return Page(ordered, None)
    page = ordered[:limit]
    return Page(page, _encode(action, key(page[-1])))


def refuse_with_ids(args: dict[str, Any], ids: Any, wire_name: str) -> None:
    """EC2 refuses ``MaxResults`` together with an explicit list of ids (named ``wire_name`` on the wire)."""
    if ids and args.get("MaxResults") is not None:
        raise EC2Error(
            "InvalidParameterCombination", f"The parameter {wire_name} cannot be used with the parameter maxResults"
        )


def _encode(action: str, last: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([action, list(last)])).decode().rstrip("=")


def _decode(action: str, token: str) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        name, last = orjson.loads(raw)
        if name != action or not isinstance(last, list):
            raise ValueError(token)
        return _comparable(tuple(last))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise EC2Error("InvalidPaginationToken", "The specified pagination token is not valid or is expired.") from None


def _comparable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Keys survive JSON as lists of str/number; compare them as (type name, value) pairs."""
    return tuple((type(v).__name__, v) if not isinstance(v, int | float) else ("num", v) for v in key)
