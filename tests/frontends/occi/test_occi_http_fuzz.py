"""Random input over HTTP never gets a 500 or a traceback from OCCI: text/plain bodies, text/occi header sets,
JSON documents, paths and ``?action=`` values, each in a random rendering; bounded in count. Every answer is
OCCI's: a ``Server`` naming OCCI/1.2, a body only with one of our Content-Types, JSON errors as ``{"error"}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from gateway_process import GatewayProcess
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from occi_spec import ACTION_SCHEMES
from occiclient import CORE, INFRA, OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, URI_LIST, Doc, Occi

AUTH = ("demo", "demo-secret")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
ANSWER_MEDIA = {TEXT_PLAIN, TEXT_OCCI, OCCI_JSON, "application/json", URI_LIST}
ACCEPT = st.sampled_from([TEXT_PLAIN, TEXT_OCCI, OCCI_JSON, "application/json", URI_LIST, "*/*", "image/png"])
COLLECTIONS = ["compute/", "storage/", "network/", "networkinterface/", "storagelink/", "-/", "entity/", "link/"]
OS_TPL = "http://schemas.cloudgate.org/occi/template/os#"
RESOURCE_TPL = "http://schemas.cloudgate.org/occi/template/resource#"

#: identifiers and names OCCI requests use, so random requests reach past the first check
CATEGORY_IDS = [
    *(INFRA + t for t in ("compute", "storage", "network", "networkinterface", "storagelink")),
    *(CORE + t for t in ("entity", "resource", "link")),
    *(ACTION_SCHEMES["compute"] + t for t in ("start", "stop", "restart", "suspend", "save")),
    ACTION_SCHEMES["network"] + "up",
    INFRA.rstrip("#") + "/network#ipnetwork",
    INFRA.rstrip("#") + "/networkinterface#ipnetworkinterface",
    INFRA + "os_tpl",
    INFRA + "resource_tpl",
    OS_TPL + "ubuntu-24.04",
    RESOURCE_TPL + "t3.micro",
    "http://example.org/tags#t",
]
ATTRIBUTES = [
    "occi.core.id", "occi.core.title", "occi.core.summary", "occi.core.source", "occi.core.target",
    "occi.compute.cores", "occi.compute.memory", "occi.compute.state", "occi.compute.hostname",
    "occi.compute.architecture", "occi.storage.size", "occi.network.address", "occi.network.vlan",
    "occi.networkinterface.address", "occi.storagelink.deviceid", "occi.compute.userdata", "method", "x",
]  # fmt: skip
KIND_TERMS = {"compute", "storage", "network", "networkinterface", "storagelink", "entity", "resource", "link"}
CLASSES = ["kind", "mixin", "action", "", "bogus"]
#: header values: printable latin-1 without CR/LF (requests refuses those), never starting with a blank
VALUE_CHARS = st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")
SEGMENT = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%")

words = st.sampled_from([*CATEGORY_IDS, *ATTRIBUTES, "compute", "http://x/occi/compute/1", "/occi/network/public"])
scalars = st.none() | st.booleans() | st.integers(-5, 2**40) | st.floats(allow_nan=False) | st.text(max_size=20)
noise = st.text(VALUE_CHARS, max_size=40)


def _term_scheme(cid: str) -> tuple[str, str]:
    scheme, _, term = cid.partition("#")
    return term, scheme + "#"


@st.composite
def category_value(draw: st.DrawFn) -> str:
    """A category line: half of them well-formed (so requests get past the parser), the rest mangled."""
    cid = draw(st.sampled_from(CATEGORY_IDS))
    term, scheme = _term_scheme(cid)
    if draw(st.booleans()):
        cls = "action" if "/action#" in cid else "kind" if cid.rsplit("#", 1)[1] in KIND_TERMS else "mixin"
        return f'{term}; scheme="{scheme}"; class="{cls}"'
    parts = [draw(st.sampled_from([term, draw(noise)]))]
    if draw(st.booleans()):
        parts.append(f'scheme="{draw(st.sampled_from([scheme, draw(noise)]))}"')
    if draw(st.booleans()):
        parts.append(f'class="{draw(st.sampled_from(CLASSES))}"')
    parts += draw(st.lists(noise, max_size=2))
    return "; ".join(parts)


@st.composite
def attribute_value(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(ATTRIBUTES) | noise)
    value = draw(
        st.integers(-5, 2**40).map(str)
        | st.floats(allow_nan=True, allow_infinity=True).map(repr)
        | st.sampled_from(["true", "false", '"', '""', '"\\"', "{}", "[1]"])
        | noise.map(lambda s: '"' + s + '"')
        | noise
    )
    return f"{name}={value}" if draw(st.booleans()) else draw(st.sampled_from([name, f"{name}={value}", value]))


@st.composite
def link_value(draw: st.DrawFn) -> str:
    target = draw(st.sampled_from(["/occi/network/public", "/occi/storage/x", "http://x/occi/network/1"]) | noise)
    parts = [f"<{target}>" if draw(st.booleans()) else target]
    if draw(st.booleans()):
        parts.append(f'rel="{draw(st.sampled_from(CATEGORY_IDS) | noise)}"')
    if draw(st.booleans()):
        parts.append(f'category="{draw(st.sampled_from(CATEGORY_IDS) | noise)}"')
    parts += draw(st.lists(attribute_value(), max_size=2))
    return "; ".join(parts)


location_value = st.sampled_from(["/occi/compute/", "http://127.0.0.1/occi/compute/x", "-"]) | noise
occi_lines = st.lists(
    st.one_of(
        st.tuples(st.just("Category"), category_value()),
        st.tuples(st.just("X-OCCI-Attribute"), attribute_value()),
        st.tuples(st.just("Link"), link_value()),
        st.tuples(st.just("X-OCCI-Location"), location_value),
        st.tuples(st.sampled_from(["category", "X-OCCI-ATTRIBUTE", "X-Other", "Categor"]), noise),
    ),
    max_size=8,
)

json_values = st.recursive(
    scalars | words,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12) | words, inner, max_size=4),
    max_leaves=12,
)
#: member names of the JSON rendering, so random documents look like OCCI's
NAMES = st.sampled_from(
    ["kind", "mixins", "attributes", "links", "actions", "id", "title", "summary", "source", "target", "location",
     "action", "kinds", "resources", "term", "scheme", "rel", "parent", "depends", "applies", "type", "mutable",
     "required", "default", *ATTRIBUTES]
)  # fmt: skip
documents = st.recursive(
    scalars | words,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=5),
    max_leaves=15,
)


#: (method, where): every method on every collection and the compute, but DELETE of all networks (the
#: default network goes with them, and with it the means to make the next compute)
REQUESTS = st.sampled_from(
    [(m, t) for m in ("POST", "PUT", "GET", "DELETE") for t in (*COLLECTIONS, "compute")
     if (m, t) != ("DELETE", "network/")]
)  # fmt: skip


def _ok(response: requests.Response) -> None:
    """An OCCI answer, whatever the input: no 5xx but 501, no traceback, a body only in one of our renderings."""
    assert response.status_code < 500 or response.status_code == 501, (response.status_code, response.text[:500])
    assert response.headers.get("Server", "").endswith("OCCI/1.2"), response.headers
    if response.content:
        assert "Traceback" not in response.text
        media = response.headers.get("Content-Type", "").split(";")[0]
        assert media in ANSWER_MEDIA, media
        if response.status_code >= 400 and media in (OCCI_JSON, "application/json"):
            assert set(response.json()["error"]) == {"code", "message"}


@pytest.fixture(scope="module")
def base(gateway: GatewayProcess) -> str:
    return f"{gateway.url}/occi/"


@dataclass
class Compute:
    """The module's compute for random updates and actions; a new one when a random DELETE removed it."""

    base: str
    location: str = ""

    def live(self) -> str:
        if not self.location or requests.get(self.location, auth=AUTH, timeout=30).status_code == 404:
            o = Occi(self.base.removesuffix("/occi/"), TEXT_PLAIN)
            self.location = o.ok("POST", "compute/", Doc(INFRA + "compute"), status=201).headers["Location"]
            o.session.close()  # an idle keep-alive connection would hold the gateway's shutdown up
        return self.location


@pytest.fixture(scope="module")
def compute(base: str) -> Compute:
    return Compute(base)


def _send(method: str, url: str, accept: str, **kw: Any) -> None:
    headers = {"Accept": accept, **kw.pop("headers", {})}
    _ok(requests.request(method, url, auth=AUTH, headers=headers, timeout=30, **kw))


@SETTINGS
@given(
    method_target=REQUESTS,
    accept=ACCEPT,
    lines=occi_lines,
    garbage=st.binary(max_size=60),
)
def test_random_text_plain_bodies(
    base: str,
    compute: Compute,
    method_target: tuple[str, str],
    accept: str,
    lines: list[tuple[str, str]],
    garbage: bytes,
) -> None:
    method, target = method_target
    url = compute.live() if target == "compute" else base + target
    body = "".join(f"{name}: {value}\n" for name, value in lines).encode("utf-8") + garbage
    _send(method, url, accept, data=body, headers={"Content-Type": TEXT_PLAIN})


@SETTINGS
@given(
    method_target=REQUESTS,
    accept=ACCEPT,
    lines=occi_lines,
)
def test_random_text_occi_headers(
    base: str, compute: Compute, method_target: tuple[str, str], accept: str, lines: list[tuple[str, str]]
) -> None:
    method, target = method_target
    url = compute.live() if target == "compute" else base + target
    headers: dict[str, str] = {"Content-Type": TEXT_OCCI}
    for name, value in lines:
        value = value.lstrip()  # requests refuses a header value that starts blank
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    _send(method, url, accept, headers=headers)


@SETTINGS
@given(
    method_target=REQUESTS,
    accept=ACCEPT,
    body=documents | json_values,
    media=st.sampled_from([OCCI_JSON, "application/json"]),
)
def test_random_json_bodies(
    base: str, compute: Compute, method_target: tuple[str, str], accept: str, body: Any, media: str
) -> None:
    method, target = method_target
    url = compute.live() if target == "compute" else base + target
    _send(method, url, accept, data=json.dumps(body).encode(), headers={"Content-Type": media})


ACTION_TERMS = ["start", "stop", "restart", "suspend", "save", "up", "online", ""]
#: (?action= value, action category): half of them matching, so the compute acts in random orders
action_pairs = st.sampled_from(ACTION_TERMS).map(lambda t: (t, ACTION_SCHEMES["compute"] + t)) | st.tuples(
    st.sampled_from(ACTION_TERMS) | noise, st.sampled_from(CATEGORY_IDS) | noise
)


@SETTINGS
@given(
    pair=action_pairs,
    attributes=st.lists(attribute_value(), max_size=2),
    accept=ACCEPT,
    media=st.sampled_from([TEXT_PLAIN, TEXT_OCCI, OCCI_JSON]),
)
def test_random_actions(
    base: str, compute: Compute, pair: tuple[str, str], attributes: list[str], accept: str, media: str
) -> None:
    action, category = pair
    headers = {"Content-Type": media}
    term, scheme = _term_scheme(category)
    line = f'{term}; scheme="{scheme}"; class="action"'
    data: bytes | None = None
    lines = [("Category", line), *(("X-OCCI-Attribute", a) for a in attributes)]
    if media == OCCI_JSON:
        values = dict(a.partition("=")[::2] for a in attributes)
        data = json.dumps({"action": category, "attributes": values}).encode()
    elif media == TEXT_OCCI:
        headers["Category"] = line.lstrip()
        if attributes:
            headers["X-OCCI-Attribute"] = ", ".join(attributes).lstrip()
    else:
        data = "".join(f"{n}: {v}\n" for n, v in lines).encode()
    _send("POST", compute.live(), accept, params={"action": action}, data=data, headers=headers)


@SETTINGS
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    head=st.sampled_from(["compute", "storage", "network", "storagelink", "networkinterface", "-", "os_tpl",
                          "resource_tpl", "availability_zone", "mixin", "entity", "link", "resource", "x"]),
    rest=st.lists(st.text(alphabet=SEGMENT, min_size=1, max_size=12), max_size=4),
    accept=ACCEPT,
)  # fmt: skip
def test_random_paths(base: str, method: str, head: str, rest: list[str], accept: str) -> None:
    assume((method, head, rest) != ("DELETE", "network", []))  # see REQUESTS
    url = base + "/".join([head, *rest])
    _send(method, url, accept, data=b"", headers={"Content-Type": TEXT_PLAIN})
