"""Tags kept in OpenNebula itself: one vector attribute per tag in the object's template (a VM's ``USER_TEMPLATE``,
an image's ``TEMPLATE``), ``CLOUDGATE_TAG_<key in base32> = [ KEY = "...", VALUE = "..." ]``.

Why this shape: oned's attribute names are upper-cased ``[A-Z0-9_-]``, so a tag key (any case, spaces, ``=``,
``:``, unicode) cannot be one; as a vector's value it is kept as given, and an operator reads ``KEY``/``VALUE`` in
Sunstone's attribute table. The attribute's name is derived from the key (base32 is upper case already, so
oned's upper-casing leaves it alone, and distinct keys never share a name), so setting a tag is a merge update of
that one attribute: concurrent writes of other tags, the gateway's own attributes (idempotency key, zone, key pair
name) and whatever the operator keeps there are never rewritten. Only attributes with this prefix are tags: an
operator's plain attribute (``OWNER = "ops"``) is not one, and a tag named like a gateway attribute lives in its
own vector, so neither can overwrite the other. An empty value is written as a vector without ``VALUE`` (read
back as ``""``), which oned keeps whatever it does with empty values.

Removing a tag needs a replace update (oned's merge cannot delete an attribute): the template is read and written
back without the tag's vectors.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backends.opennebula.templates import to_xml
from translator.errors import InvalidParameter

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

PREFIX = "CLOUDGATE_TAG_"
MERGE, REPLACE = 1, 0


def attribute(key: str) -> str:
    """The template attribute holding the tag ``key``."""
    return PREFIX + base64.b32encode(key.encode()).decode().rstrip("=")


def vector(key: str, value: str) -> dict[str, str]:
    return {"KEY": key, "VALUE": value} if value else {"KEY": key}


def written(tags: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """Template attributes for these tags (for an instantiate's extra template or a merge update)."""
    for key in tags:
        if not key:
            raise InvalidParameter("A tag key cannot be empty.", kind="tag", reason="key")
    return {attribute(key): vector(key, value) for key, value in tags.items()}


def _items(template: Mapping[str, Any] | None) -> list[tuple[str, Mapping[str, Any]]]:
    """(attribute name, vector) of every tag vector of a parsed template."""
    out = []
    for name, value in (template or {}).items():
        if name.startswith(PREFIX):
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, Mapping) and item.get("KEY"):
                    out.append((name, item))
    return out


def tags_of(template: Mapping[str, Any] | None) -> dict[str, str]:
    """The tags a parsed template (pyone's dict) carries."""
    return {str(item["KEY"]): str(item.get("VALUE") or "") for _, item in _items(template)}


@dataclass(frozen=True, slots=True)
class Target:
    """Where a kind's tags live: how to read the object (NotFound of that kind when missing), which template of
    the body holds them, and the ``one.*.update`` call that writes that template."""

    read: Callable[[OpenNebulaBackend, str], Any]
    template: str
    update: str


def set_tags(b: OpenNebulaBackend, target: Target, kind: str, native_id: str, tags: Mapping[str, str]) -> None:
    body = target.read(b, native_id)
    template = getattr(body, target.template) or {}
    new = written(tags)
    # A vector of one of these keys under another name (written by hand): rewrite the template whole, so that
    # the key is held once; otherwise a merge touches only these tags' attributes.
    stray = any(item["KEY"] in tags and name != attribute(str(item["KEY"])) for name, item in _items(template))
    if not stray:
        b.one.call(target.update, body.ID, to_xml(new), MERGE, kind=kind, what="set tags")
        return
    _replace(b, target, kind, body, template, set(tags), new)


def remove_tags(b: OpenNebulaBackend, target: Target, kind: str, native_id: str, keys: list[str]) -> None:
    body = target.read(b, native_id)
    template = getattr(body, target.template) or {}
    gone = set(keys)
    if any(item["KEY"] in gone for _, item in _items(template)):
        _replace(b, target, kind, body, template, gone, {})


def _replace(
    b: OpenNebulaBackend,
    target: Target,
    kind: str,
    body: Any,
    template: Mapping[str, Any],
    keys: set[str],
    new: Mapping[str, Any],
) -> None:
    """Write the template back without the tag vectors of ``keys``, with ``new`` attributes added."""
    kept: dict[str, Any] = {}
    for name, value in template.items():
        items = [
            i
            for i in (value if isinstance(value, list) else [value])
            if not (name.startswith(PREFIX) and isinstance(i, Mapping) and i.get("KEY") in keys)
        ]
        if items:
            kept[name] = [_plain(i) for i in items]
    b.one.call(target.update, body.ID, to_xml(kept | dict(new)), REPLACE, kind=kind, what="write tags")


def _plain(item: Any) -> Any:
    """A parsed value as ``to_xml`` writes it back (pyone reads an empty element as None)."""
    if isinstance(item, Mapping):
        return {k: "" if v is None else v for k, v in item.items()}
    return "" if item is None else item
