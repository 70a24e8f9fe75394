"""What every CIMI controller works with: the caller, the version and rendering, URLs, and the hub."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from frontends.cimi.errors import CimiError
from translator.backend import Capability
from translator.documents import DocumentStore
from translator.model import Principal, Resource
from translator.translator import Translator

#: a resource id in one of our URLs: gateway ids (UUIDs), document ids (UUIDv7) and flavor/tier names
_ID = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")

#: CIMI version -> namespace URI prefix (resource URIs are ``<prefix>/<Type>``, actions ``<prefix>/action/<name>``)
SCHEMAS: dict[str, str] = {"1": "http://schemas.dmtf.org/cimi/1", "2": "http://schemas.dmtf.org/cimi/2"}


@dataclass(slots=True)
class Reply:
    """A controller's answer: a status, a document of a CIMI type (or none), and headers."""

    status: int = 200
    doc: dict[str, Any] | None = None
    type_name: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Ctx:
    """One request: who asks, in which CIMI version, at which base URL."""

    principal: Principal
    version: str
    #: the absolute URL of ``/cimi`` as the client reached it (no trailing slash)
    base: str
    translator: Translator
    documents: DocumentStore
    #: ``If-Match`` of the request, for conditional edits and deletes
    if_match: str | None = None
    #: the request's ``Idempotency-Key``, if any: a retried create names its first attempt with it
    idempotency_key: str = ""
    #: GET an href of this service as a document (``$expand`` and template references use it)
    resolve: Callable[[Ctx, str], dict[str, Any]] | None = None
    #: the request body parsed as a CIMI type (400 when there is none or it does not parse)
    parse: Callable[[str], dict[str, Any]] = lambda type_name: {}
    _capabilities: dict[str, frozenset[Capability]] = field(default_factory=dict)

    def href(self, *parts: str) -> str:
        return "/".join((self.base, *parts))

    def uri(self, type_name: str) -> str:
        return f"{SCHEMAS[self.version]}/{type_name}"

    def action(self, name: str) -> str:
        """An operation's ``rel``: ``add``, ``edit`` and ``delete`` are plain words, the rest action URIs."""
        return name if name in ("add", "edit", "delete") else f"{SCHEMAS[self.version]}/action/{name}"

    def capabilities(self, resource: Resource) -> frozenset[Capability]:
        """What the backend behind a resource's account can do (looked up once per request and account)."""
        caps = self._capabilities.get(resource.account)
        if caps is None:
            account = self.translator.accounts.get(resource.account)
            caps = self.translator.capabilities(account) if account else frozenset()
            self._capabilities[resource.account] = caps
        return caps

    def tenant_capabilities(self) -> frozenset[Capability]:
        """What at least one of the caller's accounts can do."""
        caps: set[Capability] = set()
        for account in self.translator.regions(self.principal):
            caps |= self.translator.capabilities(account)
        return frozenset(caps)

    def ref_id(self, ref: Any, collection: str, attribute: str) -> str:
        """The id in a reference ``{"href": ".../<collection>/<id>"}`` (or a bare URL), checked to name
        a member of ``collection``."""
        href = ref.get("href") if isinstance(ref, dict) else ref
        if not isinstance(href, str) or not href:
            raise CimiError(400, f"'{attribute}' must be a reference with an href.")
        parts = urlsplit(href).path.rstrip("/").split("/")
        if len(parts) < 2 or parts[-2] != collection or not _ID.match(parts[-1]):
            raise CimiError(400, f"'{attribute}' must name one of /cimi/{collection}, not '{href[:200]}'.")
        return parts[-1]


def iso(timestamp: float | None) -> str | None:
    """A CIMI dateTime (ISO 8601, UTC) for a Unix time; None for none."""
    if not timestamp:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: The tag EC2 tools name resources by. A resource's CIMI name is this tag or, lacking it, the cloud's own name; a
#: name given in CIMI is set as this tag, so EC2 clients see the same name. It is not repeated among the properties.
NAME_TAG = "Name"


def common(ctx: Ctx, type_name: str, href: str, resource: Any) -> dict[str, Any]:
    """The attributes every CIMI resource carries, from a canonical resource."""
    doc: dict[str, Any] = {"resourceURI": ctx.uri(type_name), "id": href}
    tags = resource.tags
    name = tags.get(NAME_TAG) or resource.name
    if name:
        doc["name"] = name
    if resource.description:
        doc["description"] = resource.description
    created, updated = iso(resource.created), iso(resource.updated or resource.created)
    if created:
        doc["created"] = created
    if updated:
        doc["updated"] = updated
    doc["properties"] = {k: v for k, v in tags.items() if not (k == NAME_TAG and v == name)}
    return doc


def operations(ctx: Ctx, href: str, names: list[str]) -> list[dict[str, str]]:
    return [{"rel": ctx.action(name), "href": href} for name in names]
