"""Random input over HTTP never gets a 500 from CIMI: bodies, query strings and paths, bounded in count."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from gateway_process import GatewayProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

AUTH = ("demo", "demo-secret")
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
COLLECTIONS = [
    "machines",
    "machineTemplates",
    "volumes",
    "networks",
    "addresses",
    "credentials",
    "systems",
    "systemTemplates",
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
#: attribute names CIMI bodies use, so random documents reach past the first check
NAMES = st.sampled_from(
    ["name", "machineTemplate", "machineConfig", "machineImage", "href", "cpu", "memory", "volumeTemplate",
     "volumeConfig", "capacity", "properties", "systemTemplate", "componentDescriptors", "quantity", "action",
     "volume", "initialLocation", "networkTemplate", "key", "initialState", "userData", "type"]
)  # fmt: skip
documents = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 2**33)
    | st.text(max_size=30)
    | st.just({"href": "http://x/cimi/machines/1"}),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=5),
    max_leaves=15,
)


SEGMENT = st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%")


def _ok(response: requests.Response) -> None:
    assert response.status_code < 500 or response.status_code in (501, 503), response.text[:500]
    if response.content:
        assert "Traceback" not in response.text


@pytest.fixture(scope="module")
def base(gateway: GatewayProcess) -> str:
    return f"{gateway.url}/cimi"


@SETTINGS
@given(collection=st.sampled_from(COLLECTIONS), body=documents | json_values)
def test_random_json_bodies(base: str, collection: str, body: Any) -> None:
    r = requests.post(f"{base}/{collection}", data=json.dumps(body), auth=AUTH, timeout=30,
                      headers={"Content-Type": "application/json"})  # fmt: skip
    _ok(r)


@SETTINGS
@given(collection=st.sampled_from(COLLECTIONS), body=st.binary(max_size=200))
def test_random_xml_bodies(base: str, collection: str, body: bytes) -> None:
    xml = b'<MachineCreate xmlns="http://schemas.dmtf.org/cimi/2">' + body + b"</MachineCreate>"
    r = requests.post(
        f"{base}/{collection}", data=xml, auth=AUTH, timeout=30, headers={"Content-Type": "application/xml"}
    )
    _ok(r)


@SETTINGS
@given(
    collection=st.sampled_from([*COLLECTIONS, "jobs", "machineConfigs", "resourceMetadata"]),
    params=st.dictionaries(st.sampled_from(["$filter", "$select", "$expand", "$first", "$last", "$orderby", "x"]),
                           st.text(max_size=40), max_size=3),
)  # fmt: skip
def test_random_queries(base: str, collection: str, params: dict[str, str]) -> None:
    _ok(requests.get(f"{base}/{collection}", params=params, auth=AUTH, timeout=30))


@SETTINGS
@given(
    method=st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "OPTIONS"]),
    path=st.lists(st.text(alphabet=SEGMENT, min_size=1, max_size=12), min_size=1, max_size=5),
)
def test_random_paths(base: str, method: str, path: list[str]) -> None:
    r = requests.request(method, f"{base}/{'/'.join(path)}", data=b"{}", auth=AUTH, timeout=30,
                         headers={"Content-Type": "application/json"})  # fmt: skip
    _ok(r)
