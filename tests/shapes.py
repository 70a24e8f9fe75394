"""Comparing botocore-shaped values: one normal form for parsed and expected sides of codec tests."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from botocore.model import Shape
from botocore.utils import parse_timestamp


def normalise(shape: Shape | None, value: Any, drop_empty: bool = False, coerce: bool = False) -> Any:
    """Comparable form: timestamps -> epoch, blobs -> bytes, floats by repr (so NaN == NaN).

    ``drop_empty`` removes empty lists, which EC2 Query input cannot express (botocore sends nothing);
    ``coerce`` turns integer and boolean text into numbers and booleans, for examples that break the model.
    """
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, item in value.items():
            converted = normalise(shape.members.get(name), item, drop_empty, coerce)
            if not (drop_empty and converted == []):
                out[name] = converted
        return out
    if kind == "list":
        return [normalise(shape.member, item, drop_empty, coerce) for item in value]
    if kind == "map":
        return {k: normalise(shape.value, v, drop_empty, coerce) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            return round(value.timestamp(), 3)
        if isinstance(value, str):
            return round(parse_timestamp(value).timestamp(), 3)
        return round(float(value), 3)
    if kind == "blob":
        return value.encode() if isinstance(value, str) else bytes(value)
    if coerce and kind in ("integer", "long"):
        return int(value)
    if coerce and kind == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind in ("float", "double"):
        number = float(value)
        return "NaN" if math.isnan(number) else repr(number)
    return value
