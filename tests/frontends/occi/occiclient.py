"""A small OCCI client for the tests, in any rendering, over real HTTP with HTTP Basic.

Requests are written here from the OCCI 1.2 renderings' rules (independently of the gateway's renderers);
responses are read by the gateway's parsers, which are tested on their own against the specification's
grammar, pOCCI's fixtures and the JSON schemas.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from frontends.occi.rendering import json as json_rendering
from frontends.occi.rendering import text as text_rendering

TEXT_PLAIN, TEXT_OCCI, OCCI_JSON, URI_LIST = "text/plain", "text/occi", "application/occi+json", "text/uri-list"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
CORE = "http://schemas.ogf.org/occi/core#"
WAIT = 60.0


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attr(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return f"{name}={'true' if value else 'false'}"
    if isinstance(value, int | float):
        return f"{name}={value}"
    return f"{name}={_quote(str(value))}"


def _category(cid: str, cls: str) -> str:
    scheme, term = cid.split("#", 1)
    return f'{term}; scheme="{scheme}#"; class="{cls}"'


@dataclass
class Doc:
    """An entity request: kind, mixins, attributes, inline links (kind, target, attributes)."""

    kind: str = ""
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    action: str = ""
    source: str = ""
    target: str = ""


def text_lines(doc: Doc) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    if doc.action:
        lines.append(("Category", _category(doc.action, "action")))
    if doc.kind:
        lines.append(("Category", _category(doc.kind, "kind")))
    lines += [("Category", _category(m, "mixin")) for m in doc.mixins]
    for kind, target, attrs in doc.links:
        extra = "".join(f"; {_attr(k, v)}" for k, v in attrs.items())
        lines.append(("Link", f'<{target}>; rel="{_target_kind(kind)}"; category="{kind}"{extra}'))
    attrs = dict(doc.attributes)
    if doc.source:
        attrs["occi.core.source"] = doc.source
        attrs["occi.core.target"] = doc.target
    lines += [("X-OCCI-Attribute", _attr(k, v)) for k, v in attrs.items()]
    return lines


def json_body(doc: Doc) -> dict[str, Any]:
    if doc.action:
        return {"action": doc.action, "attributes": doc.attributes}
    body: dict[str, Any] = {"kind": doc.kind}
    if doc.mixins:
        body["mixins"] = doc.mixins
    if doc.attributes:
        body["attributes"] = doc.attributes
    if doc.source:
        body["source"] = {"location": doc.source}
        body["target"] = {"location": doc.target}
    if doc.links:
        # the spec's schema wants a source; the entity being created has no location yet: its kind's collection
        source = {"location": "/occi/" + doc.kind.rsplit("#", 1)[1] + "/", "kind": doc.kind}
        body["links"] = [
            {
                "kind": kind,
                "source": source,
                "target": {"location": target, "kind": _target_kind(kind)},
                "attributes": attrs,
            }
            for kind, target, attrs in doc.links
        ]
    return body


def _target_kind(link_kind: str) -> str:
    return INFRA + ("network" if link_kind.endswith("networkinterface") else "storage")


@dataclass
class Answer:
    status: int
    headers: Any
    raw: bytes
    media: str

    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")


class Occi:
    def __init__(
        self, url: str, media: str = TEXT_PLAIN, auth: tuple[str, str] | None = ("demo", "demo-secret")
    ) -> None:
        self.root = url.rstrip("/")
        self.base = self.root + "/occi/"
        self.media = media
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers["Accept"] = media
        self.reader = json_rendering if media == OCCI_JSON else text_rendering

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path.lstrip("/")

    def call(self, method: str, path: str, doc: Doc | None = None, **kw: Any) -> Answer:
        headers = dict(kw.pop("headers", {}))
        data = kw.pop("data", None)
        if doc is not None:
            if self.media == OCCI_JSON:
                headers["Content-Type"] = OCCI_JSON
                data = json.dumps(json_body(doc)).encode()
            elif self.media == TEXT_OCCI:
                headers["Content-Type"] = TEXT_OCCI
                for name, value in text_lines(doc):
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
            else:
                headers["Content-Type"] = TEXT_PLAIN
                data = "".join(f"{n}: {v}\n" for n, v in text_lines(doc)).encode()
        r = self.session.request(method, self.url(path), headers=headers, data=data, timeout=60, **kw)
        return Answer(r.status_code, r.headers, r.content, r.headers.get("Content-Type", ""))

    def ok(self, method: str, path: str, doc: Doc | None = None, status: int = 200, **kw: Any) -> Answer:
        answer = self.call(method, path, doc, **kw)
        assert answer.status == status, (method, path, answer.status, answer.raw[:600])
        assert answer.headers.get("Server", "").endswith("OCCI/1.2")
        if answer.raw or answer.media:
            assert answer.media.split(";")[0] == self.media, (answer.media, self.media)
        return answer

    def _pairs(self, answer: Answer) -> list[tuple[str, str]]:
        return [(k, v) for k, v in answer.headers.items()]

    def entity(self, answer: Answer) -> Any:
        return self.reader.parse_entity(answer.raw, self._pairs(answer))

    def link(self, answer: Answer) -> Any:
        return self.reader.parse_link(answer.raw, self._pairs(answer))

    def locations(self, answer: Answer) -> list[str]:
        """The locations of a collection: JSON renders whole entities (by id), the text renderings locations."""
        if self.media == OCCI_JSON:
            doc = json.loads(answer.raw)
            found = [self.base + r["kind"].rsplit("#", 1)[1] + "/" + r["id"] for r in doc.get("resources", [])]
            return found + [self.base + k["kind"].rsplit("#", 1)[1] + "/" + k["id"] for k in doc.get("links", [])]
        return self.reader.parse_locations(answer.raw, self._pairs(answer))

    def category_ids(self, answer: Answer) -> set[str]:
        """The identifiers of the categories of a query-interface answer."""
        if self.media == OCCI_JSON:
            doc = json.loads(answer.raw)
            return {c["scheme"] + c["term"] for key in ("kinds", "mixins", "actions") for c in doc.get(key, [])}
        return {c.id for c in text_rendering.parse_categories(answer.raw, self._pairs(answer))}

    def categories(self, answer: Answer) -> dict[str, Any]:
        """The query interface's categories by id, as JSON documents (JSON) or parsed categories (text)."""
        if self.media == OCCI_JSON:
            doc = json.loads(answer.raw)
            return {c["scheme"] + c["term"]: c for key in ("kinds", "mixins", "actions") for c in doc.get(key, [])}
        return {c.id: c for c in text_rendering.parse_categories(answer.raw, self._pairs(answer))}

    def get(self, path: str) -> Any:
        return self.entity(self.ok("GET", path))

    def wait(self, path: str, attribute: str, value: str) -> Any:
        deadline = time.monotonic() + WAIT
        while True:
            entity = self.get(path)
            if entity.attributes.get(attribute) == value:
                return entity
            assert time.monotonic() < deadline, f"{path}: {attribute} still {entity.attributes.get(attribute)}"
            time.sleep(0.2)
