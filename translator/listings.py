"""Reads: listings per account (cached in Redis, fanned out over a tenant's accounts) and reads by id."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from translator.accounts import Accounts, not_found
from translator.backend import AccountConfig, Capability
from translator.calls import BackendCaller
from translator.codec import dumps, from_dict, loads, to_dict
from translator.metrics import CACHE_LOOKUPS
from translator.model import RESOURCE_TYPES, Principal, Resource, in_transition
from translator.publish import publish
from translator.store import Store

#: Kind -> (backend listing method, capability needed to list it).
LISTINGS: dict[str, tuple[str, Capability]] = {
    "machine": ("list_machines", Capability.MACHINES),
    "image": ("list_images", Capability.IMAGES),
    "flavor": ("list_flavors", Capability.MACHINES),
    "volume": ("list_volumes", Capability.VOLUMES),
    "snapshot": ("list_snapshots", Capability.SNAPSHOTS),
    "network": ("list_networks", Capability.NETWORKS),
    "subnet": ("list_subnets", Capability.NETWORKS),
    "address": ("list_addresses", Capability.ADDRESSES),
    "key_pair": ("list_key_pairs", Capability.KEY_PAIRS),
    "security_group": ("list_security_groups", Capability.SECURITY_GROUPS),
}

# One pool per process for fanning a listing out over a tenant's accounts.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cg-fanout")


@dataclass(frozen=True, slots=True)
class CacheTimes:
    ttl: float
    transitional_ttl: float


class Listings:
    """Every resource of a kind an account holds, served from Redis while fresh."""

    def __init__(self, accounts: Accounts, store: Store, caller: BackendCaller, times: CacheTimes) -> None:
        self.accounts = accounts
        self.store = store
        self.caller = caller
        self.times = times

    def list(self, principal: Principal, kind: str, region: str | None = None) -> list[Resource]:
        """Every resource of ``kind`` the caller sees, in one region or across all of them."""
        accounts = [self.accounts.account(principal, region)] if region else self.accounts.regions(principal)
        if len(accounts) == 1:
            return self.list_account(accounts[0], kind)
        results = _POOL.map(lambda acc: self.list_account(acc, kind), accounts)
        return [r for batch in results for r in batch]

    def get_many(self, principal: Principal, kind: str, gids: Iterable[str]) -> list[Resource]:
        """The named resources in order; NotFound names the first that does not exist for the caller."""
        gids = list(gids)
        located = self.accounts.locate(principal, kind, gids)
        by_account: dict[str, dict[str, Resource]] = {}
        out = []
        for gid, (account, _native) in zip(gids, located, strict=True):
            if account.key not in by_account:
                by_account[account.key] = {r.id: r for r in self.list_account(account, kind)}
            found = by_account[account.key].get(gid)
            if found is None:
                raise not_found(kind, gid)
            out.append(found)
        return out

    def list_account(self, account: AccountConfig, kind: str) -> list[Resource]:
        method, capability = LISTINGS[kind]
        backend = self.accounts.backend(account)
        if capability not in backend.capabilities:
            return []
        cls = RESOURCE_TYPES[kind]
        generation, payload, tags = self.store.cache_read(account.key, kind)
        if payload is not None:
            CACHE_LOOKUPS.labels(kind, "hit").inc()
            records = [from_dict(cls, d) for d in loads(payload)]
        else:
            CACHE_LOOKUPS.labels(kind, "miss").inc()
            records = self.caller.call(account.driver, method, getattr(backend, method))
            self.publish_all(account, records)
            ttl = self.times.ttl
            if any(in_transition(r) for r in records):
                ttl = min(ttl, self.times.transitional_ttl)
            self.store.cache_write(account.key, kind, generation, dumps([to_dict(r) for r in records]), ttl)
        if tags:
            for r in records:
                extra = tags.get(r.id)
                if extra:
                    r.tags = {**r.tags, **extra}
        return records

    def publish_all(self, account: AccountConfig, records: Iterable[Any]) -> None:
        """Stamp gateway ids on backend records and remember the reverse mapping."""
        entries: list[tuple[str, str, str, str]] = []
        for record in records:
            publish(account, record, entries)
        self.store.remember(entries)
