"""Tags: in the cloud where the backend tags that kind natively (NATIVE_TAG_KINDS), else in Redis beside the
cached listings."""

from __future__ import annotations

from translator.accounts import Accounts
from translator.backend import AccountConfig
from translator.identity import authorize
from translator.listings import Listings
from translator.model import Principal
from translator.mutations import Mutator
from translator.store import Store


class Tags:
    def __init__(self, accounts: Accounts, listings: Listings, mutator: Mutator, store: Store) -> None:
        self.accounts = accounts
        self.listings = listings
        self.mutator = mutator
        self.store = store

    def update(
        self,
        principal: Principal,
        kind: str,
        gids: list[str],
        put: dict[str, str],
        remove: dict[str, str | None] | None = None,
    ) -> None:
        """Set and remove tags on resources the caller owns."""
        authorize(principal, "write")
        located = self.accounts.locate(principal, kind, gids)
        for gid, (account, native) in zip(gids, located, strict=True):
            if self.accounts.tags_natively(account, kind):
                self._native(principal, account, kind, gid, native, put, remove or {})
            else:
                self.store.update_tags(account.key, kind, gid, put, remove or {})

    def _native(
        self,
        principal: Principal,
        account: AccountConfig,
        kind: str,
        gid: str,
        native: str,
        put: dict[str, str],
        remove: dict[str, str | None],
    ) -> None:
        drop = []
        if remove:  # a key given with a value goes only while it still has that value
            (current,) = self.listings.get_many(principal, kind, [gid])
            drop = [k for k, v in remove.items() if k in current.tags and (v is None or current.tags[k] == v)]
        if put:
            self.mutator.mutate(principal, account, "set_tags", kind, [gid], kind, native, put)
        if drop:
            self.mutator.mutate(principal, account, "remove_tags", kind, [gid], kind, native, drop)

    def launched_with(self, account: AccountConfig, kind: str, resources: list, tags: dict[str, str]) -> None:
        """Tags a create asked for, kept in Redis for backends without NATIVE_TAGS (those launch with them)."""
        if not tags or self.accounts.tags_natively(account, kind):
            return
        for r in resources:
            self.store.update_tags(account.key, kind, r.id, tags, {})
            r.tags = {**r.tags, **tags}

    def forget(self, principal: Principal, kind: str, gid: str) -> None:
        """After a successful delete: the resource's tags and id-map rows go with it."""
        ((account, _),) = self.accounts.locate(principal, kind, [gid])
        self.store.forget(account.key, kind, [gid])
