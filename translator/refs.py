"""One walker for the references a dataclass declares in ``REFS``, in either direction.

``REFS`` maps a field (``"image_id"``) or a field of list items (``"block_devices.snapshot_id"``,
``"attachments.machine_id"``) to the kind of resource it names. Backends fill native ids, frontends
send gateway ids; the translator rewrites both ways through ``map_refs`` only, so a nested reference is
translated (and tenant-checked) exactly like a top-level one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import cache
from typing import Any

#: ``convert(kind, id) -> id``: what to put in place of each referenced id.
Convert = Callable[[str, str], str]


@cache
def _frozen(cls: type) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return bool(params and params.frozen)


@cache
def _paths(cls: type) -> tuple[tuple[str, str, str], ...]:
    """``(head, tail, kind)`` for each entry of ``cls.REFS`` (tail empty for a top-level field)."""
    out = []
    for path, kind in getattr(cls, "REFS", {}).items():
        head, _, tail = path.partition(".")
        out.append((head, tail, kind))
    return tuple(out)


def _set(obj: Any, changes: dict[str, Any], in_place: bool) -> Any:
    if not changes:
        return obj
    if not in_place or _frozen(type(obj)):
        return dataclasses.replace(obj, **changes)
    for name, value in changes.items():
        setattr(obj, name, value)
    return obj


def _convert_value(value: Any, kind: str, convert: Convert) -> Any:
    if isinstance(value, tuple):
        return tuple(convert(kind, v) for v in value)
    if isinstance(value, list):
        return [convert(kind, v) for v in value]
    return convert(kind, value)


def map_refs(obj: Any, convert: Convert, *, in_place: bool = False) -> Any:
    """``obj`` with every id its ``REFS`` name replaced by ``convert(kind, id)``; empty ones left alone.

    By default a copy (a request's dataclasses stay the frontend's); ``in_place`` changes mutable
    records where they are, so publishing a listing of thousands stays cheap.
    """
    changes: dict[str, Any] = {}
    for head, tail, kind in _paths(type(obj)):
        value = changes.get(head, getattr(obj, head))
        if not value:
            continue
        if not tail:
            changes[head] = _convert_value(value, kind, convert)
            continue
        items = []
        for item in value:
            ref = getattr(item, tail)
            items.append(_set(item, {tail: convert(kind, ref)}, in_place) if ref else item)
        changes[head] = tuple(items) if isinstance(value, tuple) else items
    return _set(obj, changes, in_place)
