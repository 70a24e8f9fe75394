"""Every error OCCI's HTTP protocol names, provoked over HTTP, answered in the rendering asked for, with
nothing made half-way."""

from __future__ import annotations

import base64
import json

import pytest
import requests
from gateway_process import GatewayProcess
from occi_spec import INFRA
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, Doc, Occi

COMPUTE = INFRA + "compute"
STORAGE = INFRA + "storage"
RENDERINGS = [TEXT_PLAIN, TEXT_OCCI, OCCI_JSON]


def count(o: Occi) -> int:
    return len(o.locations(o.ok("GET", "compute/")))


def readable(answer: requests.Response, media: str) -> str:
    """The error message, read in the rendering it was asked in."""
    assert answer.headers["Content-Type"].split(";")[0] == media, answer.headers
    if media == OCCI_JSON:
        return answer.json()["error"]["message"]
    return answer.text


def raw(gateway: GatewayProcess, method: str, path: str, media: str = TEXT_PLAIN, **kw: object) -> requests.Response:
    kw.setdefault("auth", ("demo", "demo-secret"))
    headers = {"Accept": media, **kw.pop("headers", {})}  # type: ignore[dict-item]
    return requests.request(method, f"{gateway.url}/occi/{path}", headers=headers, timeout=30, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("media", RENDERINGS)
def test_authentication_and_authorization(gateway: GatewayProcess, media: str) -> None:
    anonymous = raw(gateway, "GET", "compute/", media, auth=None)
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert "credentials" in readable(anonymous, media)
    wrong = raw(
        gateway,
        "GET",
        "compute/",
        media,
        auth=None,
        headers={"Authorization": "Basic " + base64.b64encode(b"demo:x").decode()},
    )
    assert wrong.status_code == 401
    reader = Occi(gateway.url, media, auth=("reader", "reader-secret"))
    before = count(reader)
    assert reader.call("POST", "compute/", Doc(COMPUTE)).status == 403
    assert count(reader) == before


@pytest.mark.parametrize("media", RENDERINGS)
def test_statuses(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    assert raw(gateway, "GET", "compute/00000000-0000-5000-8000-000000000000", media).status_code == 404
    assert raw(gateway, "GET", "nothing/", media).status_code == 404
    not_allowed = raw(gateway, "PATCH", "compute/", media)
    assert not_allowed.status_code == 405 and "GET" in not_allowed.headers["Allow"]
    assert raw(gateway, "GET", "compute/", media, headers={"Accept": "text/html"}).status_code == 406
    big = raw(gateway, "POST", "compute/", media, data=b"X" * 2_000_000, headers={"Content-Type": TEXT_PLAIN})
    assert big.status_code == 413
    assert (
        raw(gateway, "POST", "compute/", media, data=b"<x/>", headers={"Content-Type": "application/xml"}).status_code
        == 415
    )
    made = o.ok("POST", "compute/", Doc(COMPUTE), status=201).headers["Location"]
    o.wait(made, "occi.compute.state", "active")
    assert o.call("POST", f"{made}?action=start", Doc(action=INFRA.rstrip("#") + "/compute/action#start")).status == 409
    o.ok("DELETE", made, status=204)


KIND = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\n'
BAD_TEXT = [
    ("Category: compute\n", "malformed category"),
    (
        KIND + "X-OCCI-Attribute: occi.compute.cores=\n",
        "malformed attribute",
    ),
    ('Category: nonsense; scheme="http://example.org/x#"; class="kind"\n', "unknown kind"),
    (
        KIND + 'Category: nope; scheme="http://example.org/x#"; class="mixin"\n',
        "unknown mixin",
    ),
    (
        KIND + 'X-OCCI-Attribute: occi.compute.cores="two"\n',
        "wrong type",
    ),
    (
        KIND + "X-OCCI-Attribute: occi.compute.bogus=1\n",
        "unknown attribute",
    ),
    (
        'Category: storage; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"\n',
        "missing required size",
    ),
]


@pytest.mark.parametrize(("body", "why"), BAD_TEXT, ids=[b[1] for b in BAD_TEXT])
def test_bad_text_requests_are_400_and_make_nothing(gateway: GatewayProcess, body: str, why: str) -> None:
    o = Occi(gateway.url, TEXT_PLAIN)
    before = count(o)
    kind = "storage/" if "storage" in body else "compute/"
    answer = raw(gateway, "POST", kind, data=body.encode(), headers={"Content-Type": TEXT_PLAIN})
    assert answer.status_code == 400, (why, answer.text)
    assert answer.text.strip()
    assert count(o) == before


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{", "malformed JSON"),
        (json.dumps({"kind": "nope"}).encode(), "bad category id"),
        (json.dumps({"kind": COMPUTE, "attributes": {"occi.compute.memory": "lots"}}).encode(), "wrong type"),
        (json.dumps({"kind": COMPUTE, "mixins": ["http://example.org/x#nope"]}).encode(), "unknown mixin"),
    ],
)
def test_bad_json_requests_are_400_and_make_nothing(gateway: GatewayProcess, body: bytes, why: str) -> None:
    o = Occi(gateway.url, OCCI_JSON)
    before = count(o)
    answer = raw(gateway, "POST", "compute/", OCCI_JSON, data=body, headers={"Content-Type": OCCI_JSON})
    assert answer.status_code == 400, (why, answer.text)
    assert readable(answer, OCCI_JSON)
    assert count(o) == before


def test_immutable_attributes_cannot_be_set(gateway: GatewayProcess) -> None:
    o = Occi(gateway.url, TEXT_PLAIN)
    made = o.ok("POST", "compute/", Doc(COMPUTE), status=201).headers["Location"]
    answer = o.call("POST", made, Doc(COMPUTE, attributes={"occi.compute.state": "active"}))
    assert answer.status == 400 and "cannot be changed" in answer.text()
    renamed = o.entity(o.ok("POST", made, Doc(COMPUTE, attributes={"occi.core.title": "renamed"})))
    assert renamed.title == "renamed"
    o.ok("DELETE", made, status=204)


def test_a_header_flood_is_refused(gateway: GatewayProcess) -> None:
    headers = {f"X-OCCI-Attribute-{i}": "x" for i in range(200)}
    answer = raw(gateway, "GET", "compute/", TEXT_OCCI, headers=headers)
    assert answer.status_code in (400, 431)
