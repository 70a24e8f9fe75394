"""Turning a backend's record (native ids) into a published one (gateway ids, tenant, account)."""

from __future__ import annotations

from typing import Any

from translator.backend import AccountConfig
from translator.ids import gateway_id


def publish(account: AccountConfig, record: Any, entries: list[tuple[str, str, str, str]]) -> None:
    """Stamp ``record`` in place and append its id-map rows to ``entries``.

    References listed in the class's ``REFS`` (``field`` or ``list_field.item_field``) are rewritten
    from native to gateway ids: uuid5 needs no lookup, so this is pure computation.
    """
    kind = record.KIND
    key = account.key
    record.id = gateway_id(key, kind, record.native_id)
    record.tenant = account.tenant
    record.account = key
    entries.append((record.id, key, kind, record.native_id))
    for path, ref_kind in record.REFS.items():
        head, _, tail = path.partition(".")
        value = getattr(record, head)
        if not value:
            continue
        if tail:
            for item in value:
                native = getattr(item, tail)
                if native:
                    setattr(item, tail, gateway_id(key, ref_kind, native))
        elif isinstance(value, list):
            setattr(record, head, [gateway_id(key, ref_kind, v) for v in value])
        else:
            setattr(record, head, gateway_id(key, ref_kind, value))
