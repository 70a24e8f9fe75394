"""Routing: which backend account a caller's request goes to, and where a gateway id lives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from translator.backend import AccountConfig, Backend, BackendServices, Capability, load_driver
from translator.errors import InvalidParameter, NotFound
from translator.identity import Tenant
from translator.model import Principal
from translator.refs import map_refs
from translator.store import Store


def not_found(kind: str, gid: str) -> NotFound:
    return NotFound(f"The {kind.replace('_', ' ')} ID '{gid}' does not exist", kind=kind)


class Accounts:
    """Tenants' backend accounts, their (lazily built) backend instances, and id location."""

    def __init__(
        self,
        accounts: Mapping[str, AccountConfig],
        tenants: Mapping[str, Tenant],
        store: Store,
        services: BackendServices,
    ) -> None:
        self.accounts = dict(accounts)
        self.tenants = dict(tenants)
        self.store = store
        self.services = services
        self._backends: dict[str, Backend] = {}
        #: Reads (and so publishes) the caller's listing of a kind; set by the translator (see ``find``).
        self.discover: Callable[[Principal, str], object] | None = None

    def backend(self, account: AccountConfig) -> Backend:
        """The backend instance of an account, built on first use (drivers load lazily)."""
        found = self._backends.get(account.key)
        if found is None:
            found = load_driver(account.driver)(account, self.services)
            found = self._backends.setdefault(account.key, found)
        return found

    def capabilities(self, account: AccountConfig) -> frozenset[Capability]:
        return self.backend(account).capabilities

    def tags_natively(self, account: AccountConfig, kind: str) -> bool:
        """Whether the account's cloud keeps the tags of ``kind`` itself (else Redis keeps them)."""
        backend = self.backend(account)
        return Capability.NATIVE_TAGS in backend.capabilities and kind in backend.NATIVE_TAG_KINDS

    def regions(self, principal: Principal) -> list[AccountConfig]:
        tenant = self.tenants.get(principal.tenant)
        return [self.accounts[k] for k in tenant.accounts] if tenant else []

    def account(self, principal: Principal, region: str | None = None) -> AccountConfig:
        """The caller's account in ``region`` (its first one when None)."""
        for acc in self.regions(principal):
            if region is None or acc.region == region:
                return acc
        raise NotFound(f"The region '{region}' does not exist or is not enabled.", kind="region")

    def locate(self, principal: Principal, kind: str, gids: list[str]) -> list[tuple[AccountConfig, str]]:
        """Account and native id of each gateway id; NotFound for unknown or other tenants' ids."""
        out = []
        for gid, where in zip(gids, self.find(principal, kind, gids), strict=True):
            if where is None:
                raise not_found(kind, gid)
            out.append(where)
        return out

    def find(self, principal: Principal, kind: str, gids: list[str]) -> list[tuple[AccountConfig, str] | None]:
        """Like ``locate``, with None for each id that is unknown, of another kind or another tenant's.

        An id never published may still name a resource: one met only as a reference (a machine's network)
        before its own kind was listed. Ids unknown to the map make the caller's listing of ``kind`` be read
        once (``discover``, which publishes what it lists) before they count as missing.
        """
        rows = self.store.resolve(gids)
        if self.discover is not None and any(row is None for row in rows):
            self.discover(principal, kind)
            rows = self.store.resolve(gids)
        tenant = self.tenants.get(principal.tenant)
        mine = set(tenant.accounts) if tenant else set()
        return [
            None
            if row is None or row[1] != kind or row[0] not in mine or row[0] not in self.accounts
            else (self.accounts[row[0]], row[2])
            for row in rows
        ]

    def native_refs(self, principal: Principal, account: AccountConfig, spec: Any) -> Any:
        """A copy of a request dataclass with every gateway-id reference (``REFS``, nested ones too) made
        native; each must be the caller's and in ``account``."""

        def native(kind: str, gid: str) -> str:
            ((acc, native_id),) = self.locate(principal, kind, [gid])
            if acc.key != account.key:
                raise InvalidParameter(f"The {kind.replace('_', ' ')} '{gid}' is in another region.", kind=kind)
            return native_id

        return map_refs(spec, native)

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()
