"""What every OCCI controller works with: the caller, absolute URLs, the hub, and the tenant's categories."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from translator.backend import Capability
from translator.documents import DocumentStore
from translator.model import Principal, Resource
from translator.translator import Translator

if TYPE_CHECKING:
    from frontends.occi.catalog import Catalog

PREFIX = "/occi/"


@dataclass(slots=True)
class Ctx:
    principal: Principal
    translator: Translator
    documents: DocumentStore
    #: scheme and host clients reach us at (``public_endpoint`` or the request's), no trailing slash
    base: str
    #: rendering many entities at once (a collection): related resources are read as whole listings, once,
    #: instead of by id for each entity
    bulk: bool = False
    _capabilities: dict[str, frozenset[Capability]] = field(default_factory=dict)
    _catalog: Any = None
    _related: dict[str, list[Resource]] = field(default_factory=dict)

    def url(self, path: str) -> str:
        """The absolute URL of an OCCI path relative to ``/occi/`` (``compute/<id>``)."""
        return f"{self.base}{PREFIX}{path}"

    def path_of(self, location: str) -> str:
        """An OCCI location (absolute URL or path) relative to ``/occi/``; '' when it is not one of ours."""
        if location.startswith(self.base):
            location = location[len(self.base) :]
        elif "://" in location:
            return ""
        return location[len(PREFIX) :] if location.startswith(PREFIX) else ""

    def capabilities(self, resource: Resource) -> frozenset[Capability]:
        caps = self._capabilities.get(resource.account)
        if caps is None:
            account = self.translator.accounts.get(resource.account)
            caps = self.translator.capabilities(account) if account else frozenset()
            self._capabilities[resource.account] = caps
        return caps

    def tenant_capabilities(self) -> frozenset[Capability]:
        caps: set[Capability] = set()
        for account in self.translator.regions(self.principal):
            caps |= self.translator.capabilities(account)
        return frozenset(caps)

    def related(self, kind: str, ids: list[str] | None = None) -> list[Resource]:
        """Resources of ``kind`` a rendering refers to: those of ``ids`` (one read), or, in bulk, the whole
        listing read once per request (a collection of N computes costs one read, not N)."""
        if not self.bulk:
            if ids is not None and not ids:
                return []
            return self.translator.page(self.principal, kind, ids=ids).items
        if kind not in self._related:
            self._related[kind] = self.translator.page(self.principal, kind).items
        found = self._related[kind]
        return found if ids is None else [r for r in found if r.id in set(ids)]

    def forget_catalog(self) -> None:
        """After a change of the tenant's categories (user mixins), the next read builds them again."""
        self._catalog = None

    @property
    def catalog(self) -> Catalog:
        """The tenant's categories, built on first use in this request."""
        if self._catalog is None:
            from frontends.occi.catalog import Catalog

            self._catalog = Catalog.of(self)
        return self._catalog
