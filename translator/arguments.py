"""A backend operation's arguments as JSON, so a job's work can be stored and run by any worker.

Model dataclasses and enums are tagged with their class name and rebuilt from ``translator.model``
only (a stored job names no other class); tuples stay tuples, so a rebuilt spec equals the original.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

from translator import model

#: The only classes a stored job may name: the canonical model's dataclasses and enums, by name.
CLASSES: dict[str, type] = {
    name: cls
    for name, cls in vars(model).items()
    if isinstance(cls, type)
    and cls.__module__ == model.__name__
    and (dataclasses.is_dataclass(cls) or issubclass(cls, Enum))
}


def encode(value: Any) -> Any:
    """A JSON-ready form of ``value`` (None, scalars, model dataclasses and enums, lists, tuples, dicts)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Enum):
        return {"$enum": type(value).__name__, "v": value.value}
    if isinstance(value, str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"$dc": type(value).__name__, "v": fields}
    if isinstance(value, tuple):
        return {"$tuple": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"$map": {str(k): encode(v) for k, v in value.items()}}
    raise TypeError(f"an operation argument cannot be a {type(value).__name__}")


def decode(data: Any) -> Any:
    """The value ``encode`` was given; ValueError for a class outside the model."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict):
        return data
    if "$tuple" in data:
        return tuple(decode(v) for v in data["$tuple"])
    if "$map" in data:
        return {k: decode(v) for k, v in data["$map"].items()}
    tag = data.get("$dc") or data.get("$enum")
    cls = CLASSES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ValueError(f"a stored operation names an unknown type {tag!r}")
    if "$enum" in data:
        return cls(data["v"])
    known = {f.name for f in dataclasses.fields(cls)}  # a newer version's extra fields are dropped
    return cls(**{k: decode(v) for k, v in data["v"].items() if k in known})
