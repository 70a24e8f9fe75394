"""Placeholder until the real codec lands (JSON only)."""

from __future__ import annotations

from typing import Any

import orjson


class CodecError(ValueError):
    pass


def render_json(doc: dict[str, Any], version: str) -> bytes:
    return orjson.dumps(doc)


def render_xml(doc: dict[str, Any], type_name: str, version: str) -> bytes:
    raise CodecError("XML is not yet here")


def parse(body: bytes, content_type: str, type_name: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CodecError(str(exc)) from None
    if not isinstance(doc, dict):
        raise CodecError("not an object")
    return doc
