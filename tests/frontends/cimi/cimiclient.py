"""A small CIMI client for the tests: JSON or XML, CIMI 1.1 or 2.0, HTTP Basic, over real HTTP.

Request bodies are written here, independently of the gateway's codec (XML by lxml from the rules of
DSP0263: references as ``href`` attributes, ``property key=`` elements, lists wrapped in 2.0 and repeated
in 1.1); responses are read by the codec, whose readers are tested on their own against sample documents.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from lxml import etree

from frontends.cimi import codec

JSON, XML = "application/json", "application/xml"
NAMESPACES = {"1": "http://schemas.dmtf.org/cimi/1", "2": "http://schemas.dmtf.org/cimi/2"}
VERSION_HEADERS = {"1": "1.1", "2": "2.0"}
#: list attributes of request bodies -> the XML name of one item
ITEMS = {
    "volumeTemplates": "volumeTemplate",
    "volumes": "volume",
    "networkInterfaces": "networkInterface",
    "componentDescriptors": "componentDescriptor",
    "disks": "disk",
}
#: how long a test waits for a job (bounded loops only)
JOB_WAIT = 90.0


def to_xml(doc: dict[str, Any], root: str, version: str) -> bytes:
    ns = NAMESPACES[version]
    element = etree.Element(f"{{{ns}}}{root}", nsmap={None: ns})
    _fill(element, doc, ns, version)
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")


def _fill(parent: etree._Element, doc: dict[str, Any], ns: str, version: str) -> None:
    for key, value in doc.items():
        if key == "properties":
            holder = etree.SubElement(parent, f"{{{ns}}}properties") if version == "2" else parent
            for k, v in value.items():
                etree.SubElement(holder, f"{{{ns}}}property", key=k).text = str(v)
        elif isinstance(value, list):
            holder = etree.SubElement(parent, f"{{{ns}}}{key}") if version == "2" else parent
            for item in value:
                _value(holder, ITEMS[key], item, ns, version)
        else:
            _value(parent, key, value, ns, version)


def _value(parent: etree._Element, name: str, value: Any, ns: str, version: str) -> None:
    child = etree.SubElement(parent, f"{{{ns}}}{name}")
    if isinstance(value, dict):
        if "href" in value:
            child.set("href", value["href"])
        _fill(child, {k: v for k, v in value.items() if k != "href"}, ns, version)
    elif isinstance(value, bool):
        child.text = "true" if value else "false"
    else:
        child.text = str(value)


@dataclass
class Answer:
    status: int
    headers: Any
    raw: bytes
    doc: dict[str, Any] = field(default_factory=dict)
    root: str = ""


class Cimi:
    """One client: a rendering, a version, credentials."""

    def __init__(
        self, url: str, media: str = JSON, version: str = "2", auth: tuple[str, str] = ("demo", "demo-secret")
    ) -> None:
        self.base = url.rstrip("/") + "/cimi"
        self.media, self.version = media, version
        self.session = requests.Session()
        self.session.auth = auth
        self.session.headers.update({"Accept": media, "CIMI-Specification-Version": VERSION_HEADERS[version]})

    def url(self, path: str) -> str:
        return path if path.startswith("http") else f"{self.base}/{path.lstrip('/')}"

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, type_name: str = "", **kw: Any
    ) -> Answer:
        headers = dict(kw.pop("headers", {}))
        data = None
        if body is not None:
            headers["Content-Type"] = self.media
            data = to_xml(body, type_name, self.version) if self.media == XML else codec.render_json(body, "2")
        response = self.session.request(method, self.url(path), data=data, headers=headers, timeout=60, **kw)
        answer = Answer(response.status_code, response.headers, response.content)
        if response.content:
            answer.root, answer.doc = self.read(response.content)
        return answer

    def read(self, raw: bytes) -> tuple[str, dict[str, Any]]:
        """The root type and the document of a response in this client's rendering."""
        if self.media == XML:
            root = etree.fromstring(raw, etree.XMLParser(resolve_entities=False, no_network=True))
            name = etree.QName(root).localname
            assert etree.QName(root).namespace == NAMESPACES[self.version], raw[:200]
            return name, codec.parse(raw, XML, name)
        import json

        doc = json.loads(raw)
        uri = doc.get("resourceURI", "")
        if uri:
            assert uri.startswith(NAMESPACES[self.version] + "/"), uri
        name = uri.rsplit("/", 1)[-1] if uri else "Error"
        return name, codec.parse(raw, JSON, name)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.call("GET", path, **kw)

    def ok(
        self, method: str, path: str, body: dict[str, Any] | None = None, type_name: str = "", status: int = 200
    ) -> Answer:
        answer = self.call(method, path, body, type_name)
        assert answer.status == status, (method, path, answer.status, answer.raw[:500])
        return answer

    def action(self, href: str, action: str, **extra: Any) -> Answer:
        body = {"action": f"{NAMESPACES[self.version]}/action/{action}", **extra}
        return self.call("POST", href, body, "Action")

    def wait(self, job_href: str, timeout: float = JOB_WAIT) -> dict[str, Any]:
        """Poll a job until it ends; its document (asserted successful)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.ok("GET", job_href).doc
            if job["state"] in ("SUCCESS", "FAILED", "STOPPED"):
                assert job["state"] == "SUCCESS", job
                return job
            assert time.monotonic() < deadline, f"job still {job['state']}: {job}"
            time.sleep(0.2)

    def accepted(self, answer: Answer) -> dict[str, Any]:
        """A 202's job, followed to success."""
        assert answer.status == 202, (answer.status, answer.raw[:500])
        return self.wait(answer.headers["CIMI-Job-URI"])

    def members(self, path: str, attribute: str, **params: Any) -> list[dict[str, Any]]:
        return self.ok("GET", path + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")).doc.get(
            attribute, []
        )
