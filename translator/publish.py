"""Turning a backend's record (native ids) into a published one (gateway ids, tenant, account)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from translator.backend import AccountConfig
from translator.ids import gateway_id
from translator.refs import map_refs

IdOf = Callable[[str, str, str], str]


def publish(
    account: AccountConfig, record: Any, entries: list[tuple[str, str, str, str]], ids: IdOf = gateway_id
) -> None:
    """Stamp ``record`` in place and append its id-map rows to ``entries``.

    References (``REFS``) are rewritten from native to gateway ids: uuid5 needs no lookup, so this is
    pure computation. Nested parts with a kind of their own (a machine's interfaces) get gateway ids too,
    without id-map rows: they are found through the resource holding them. ``ids`` computes them
    (``computed_id`` for a large listing: see there).
    """
    key = account.key
    record.id = ids(key, record.KIND, record.native_id)
    record.tenant = account.tenant
    record.account = key
    entries.append((record.id, key, record.KIND, record.native_id))
    for name, part_cls in record.NESTED.items():
        if getattr(part_cls, "KIND", ""):
            for part in getattr(record, name) or ():
                part.id = ids(key, part_cls.KIND, part.native_id)
    map_refs(record, lambda kind, native: ids(key, kind, native), in_place=True)


def publish_part(account: AccountConfig, part: Any) -> Any:
    """Stamp a nested part a backend returned on its own (an interface just attached), in place."""
    key = account.key
    part.id = gateway_id(key, part.KIND, part.native_id)
    return map_refs(part, lambda kind, native: gateway_id(key, kind, native), in_place=True)
