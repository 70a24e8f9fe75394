"""Turning a backend's record (native ids) into a published one (gateway ids, tenant, account)."""

from __future__ import annotations

from typing import Any

from translator.backend import AccountConfig
from translator.ids import gateway_id
from translator.refs import map_refs


def publish(account: AccountConfig, record: Any, entries: list[tuple[str, str, str, str]]) -> None:
    """Stamp ``record`` in place and append its id-map rows to ``entries``.

    References (``REFS``) are rewritten from native to gateway ids: uuid5 needs no lookup, so this is
    pure computation.
    """
    key = account.key
    record.id = gateway_id(key, record.KIND, record.native_id)
    record.tenant = account.tenant
    record.account = key
    entries.append((record.id, key, record.KIND, record.native_id))
    map_refs(record, lambda kind, native: gateway_id(key, kind, native), in_place=True)
