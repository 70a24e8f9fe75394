"""``MaxResults`` / ``NextToken`` pagination that stays stable while resources come and go.

A token carries the sort key of the last item returned, not an offset: the next page starts after
that key, so resources created or deleted between pages never shift, repeat or skip the others.
Items are sorted by a key that never changes for a resource (its creation time, then its id). Tokens
name their action, so one action's token is refused by another.

Describe* actions over one kind of resource page in the translator (``page_args`` and ``token_for``
wrap its cursor in a token; DescribeTags, which walks several kinds, seals its own with ``seal_token``);
``paginate`` slices what an action builds itself.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from frontends.ec2.errors import EC2Error
from translator.errors import InvalidParameter
from translator.listings import decode_cursor

SortKey = Callable[[dict[str, Any]], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[dict[str, Any]]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class PageArgs:
    """What a request asks of the translator's page: its size (None: all) and the cursor to resume after."""

    limit: int | None
    cursor: str | None


def page_args(action: str, args: dict[str, Any], *, lowest: int = 5, highest: int = 1000) -> PageArgs:
    """``MaxResults`` checked against the action's bounds and ``NextToken`` opened (refused if not this action's)."""
    limit = _limit(args, lowest, highest)
    token = args.get("NextToken")
    if not token:
        return PageArgs(limit, None)
    cursor = _open(action, token)
    if not isinstance(cursor, str):
        raise _bad_token()
    try:
        decode_cursor(cursor)
    except InvalidParameter:
        raise _bad_token() from None
    return PageArgs(limit, cursor)


def token_for(action: str, cursor: str | None) -> str | None:
    """The ``NextToken`` carrying the translator's cursor, or None on the last page."""
    return None if cursor is None else _seal(action, cursor)


def max_results(args: dict[str, Any], *, lowest: int = 5, highest: int = 1000) -> int | None:
    """``MaxResults`` checked against the action's bounds (None: all), for actions that build their own tokens."""
    return _limit(args, lowest, highest)


def seal_token(action: str, content: Any) -> str:
    """A ``NextToken`` of ``action`` carrying ``content`` (JSON) that an action resuming more than one walk builds."""
    return _seal(action, content)


def open_token(action: str, token: str) -> Any:
    """What ``seal_token`` sealed; InvalidPaginationToken for another action's token or a broken one."""
    return _open(action, token)


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
    limit = _limit(args, lowest, highest)
    token = args.get("NextToken")
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


def _limit(args: dict[str, Any], lowest: int, highest: int) -> int | None:
    limit = args.get("MaxResults")
    if limit is not None and not lowest <= limit <= highest:
        raise EC2Error(
            "InvalidParameterValue",
            f"Value ( {limit} ) for parameter maxResults is invalid. Expecting a value between {lowest} and {highest}.",
        )
    return limit


def _seal(action: str, content: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([action, content])).decode().rstrip("=")


def _open(action: str, token: str) -> Any:
    """What a token of ``action`` carries; InvalidPaginationToken for another action's or a broken one."""
    try:
        name, content = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _bad_token() from None
    if name != action:
        raise _bad_token()
    return content


def _bad_token() -> EC2Error:
    return EC2Error("InvalidPaginationToken", "The specified pagination token is not valid or is expired.")


def _encode(action: str, last: tuple[Any, ...]) -> str:
    return _seal(action, list(last))


def _decode(action: str, token: str) -> tuple[Any, ...]:
    last = _open(action, token)
    if not isinstance(last, list):
        raise _bad_token()
    return _comparable(tuple(last))


def _comparable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Keys survive JSON as lists of str/number; compare them as (type name, value) pairs."""
    return tuple((type(v).__name__, v) if not isinstance(v, int | float) else ("num", v) for v in key)
