"""Resources to and from plain dicts (JSON in Redis), with per-class field tables built once."""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import Any, TypeVar

import orjson

T = TypeVar("T")


@cache
def _plan(cls: type) -> tuple[tuple[str, ...], dict[str, type], dict[str, type], frozenset[str]]:
    names = tuple(f.name for f in dataclasses.fields(cls))
    return names, getattr(cls, "NESTED", {}), getattr(cls, "ENUMS", {}), frozenset(names)


def to_dict(obj: Any) -> dict[str, Any]:
    """A dataclass as a dict of JSON-ready values (nested dataclasses included)."""
    names, nested, _, _ = _plan(type(obj))
    out = {}
    for name in names:
        value = getattr(obj, name)
        if name in nested and value is not None:
            value = [to_dict(item) for item in value] if isinstance(value, list) else to_dict(value)
        out[name] = value
    return out


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a dataclass; keys it does not know (written by a newer version) are dropped."""
    _, nested, enums, known = _plan(cls)
    kwargs = {k: v for k, v in data.items() if k in known}
    for name, item_cls in nested.items():
        value = kwargs.get(name)
        if value is not None:
            kwargs[name] = (
                [from_dict(item_cls, v) for v in value] if isinstance(value, list) else from_dict(item_cls, value)
            )
    for name, enum in enums.items():
        if kwargs.get(name) is not None:
            kwargs[name] = enum(kwargs[name])
    return cls(**kwargs)


def dumps(obj: Any) -> bytes:
    """orjson with dataclass support; PERF: orjson is ~10x json for our records."""
    return orjson.dumps(obj)


loads = orjson.loads
