"""OCCI over a live gateway (simulator) in every rendering: the query interface against the specification's
tables, computes made three ways, actions, storage and networks, links made and removed, user mixins,
filters, and deleting everything."""

from __future__ import annotations

import json

import pytest
import scenario
from gateway_process import GatewayProcess
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, Doc, Occi
from scenario import COMPUTE, RENDERINGS, action


@pytest.mark.parametrize("media", RENDERINGS)
def test_query_interface_matches_the_specification(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    images = gateway.client().describe_images()["Images"]
    flavors = gateway.client().describe_instance_types()["InstanceTypes"]
    categories = scenario.query_interface(o, len(images), len(flavors))
    # the simulator does all of these; storage online/offline has no canonical operation
    for kind, terms in (
        ("compute", ("start", "stop", "restart", "suspend", "save")),
        ("storage", ("snapshot", "resize")),
    ):
        for term in terms:
            assert action(kind, term) in categories, (kind, term)
    assert action("storage", "online") not in categories


@pytest.mark.parametrize("media", RENDERINGS)
def test_query_interface_filtered_by_category(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    filtered = (
        o.ok("GET", "-/", Doc(kind=COMPUTE))
        if media != OCCI_JSON
        else o.ok("GET", "-/", headers={"Content-Type": OCCI_JSON}, data=json.dumps({"kinds": [COMPUTE]}).encode())
    )
    assert o.category_ids(filtered) == {COMPUTE}


@pytest.mark.parametrize("media", RENDERINGS)
def test_compute_storage_network_and_links(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    assert action("compute", "suspend") in o.category_ids(o.ok("GET", "-/"))  # so the scenario suspends too
    scenario.computes_storage_network_links(o)


@pytest.mark.parametrize("media", RENDERINGS)
def test_user_mixins_tag_and_filter(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    term = "team" + {TEXT_PLAIN: "p", TEXT_OCCI: "o", OCCI_JSON: "j"}[media]
    scheme = "http://example.org/tags#"
    location = f"{gateway.url}/occi/mixin/{term}/"
    if media == OCCI_JSON:
        body = json.dumps({"mixins": [{"term": term, "scheme": scheme, "title": "Team", "location": location}]})
        o.ok("POST", "-/", headers={"Content-Type": OCCI_JSON}, data=body.encode())
    else:
        line = f'{term}; scheme="{scheme}"; class="mixin"; title="Team"; location="{location}"'
        if media == TEXT_OCCI:
            o.ok("POST", "-/", headers={"Content-Type": TEXT_OCCI, "Category": line})
        else:
            o.ok("POST", "-/", headers={"Content-Type": TEXT_PLAIN}, data=f"Category: {line}\n".encode())
    assert scheme + term in o.categories(o.ok("GET", "-/"))

    tagged = o.ok("POST", "compute/", Doc(COMPUTE, mixins=[scheme + term]), status=201).headers["Location"]
    other = o.ok("POST", "compute/", Doc(COMPUTE), status=201).headers["Location"]
    assert scheme + term in o.get(tagged).mixins
    # associate the other one through the mixin's location
    if media == OCCI_JSON:
        o.ok("POST", location, headers={"Content-Type": OCCI_JSON}, data=json.dumps([other]).encode(), status=204)
    elif media == TEXT_OCCI:
        o.ok("POST", location, headers={"Content-Type": TEXT_OCCI, "X-OCCI-Location": other}, status=204)
    else:
        body = f"X-OCCI-Location: {other}\n".encode()
        o.ok("POST", location, headers={"Content-Type": TEXT_PLAIN}, data=body, status=204)
    assert {tagged, other} <= set(o.locations(o.ok("GET", location)))
    filtered = o.ok("GET", "compute/", Doc(COMPUTE, mixins=[scheme + term]))
    assert set(o.locations(filtered)) == {tagged, other}
    # the tag is what EC2 sees too
    instance_tags = [
        {t["Key"] for t in i.get("Tags", [])}
        for r in gateway.client().describe_instances()["Reservations"]
        for i in r["Instances"]
    ]
    assert any(f"occi.mixin:{scheme}{term}" in tags for tags in instance_tags)
    # removing the mixin removes it from every entity
    if media == OCCI_JSON:
        o.ok(
            "DELETE",
            "-/",
            headers={"Content-Type": OCCI_JSON},
            data=json.dumps({"mixins": [scheme + term]}).encode(),
            status=204,
        )
    else:
        delete = Doc(mixins=[scheme + term])
        o.ok("DELETE", "-/", delete, status=204)
    assert scheme + term not in o.get(tagged).mixins
    for location in (tagged, other):
        o.ok("DELETE", location, status=204)


@pytest.mark.parametrize("media", RENDERINGS)
def test_put_creates_at_the_location_asked_then_replaces(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    chosen = f"compute/mine-{media.replace('/', '-').replace('+', '-')}"
    made = o.ok("PUT", chosen, Doc(COMPUTE, attributes={"occi.core.title": "chosen"}), status=201)
    assert made.headers["Location"] == o.url(chosen)
    entity = o.get(chosen)
    assert entity.title == "chosen"
    own = o.url(f"compute/{entity.id}")
    assert o.get(own).title == "chosen"  # the same entity at the cloud's own id
    replaced = o.entity(o.ok("PUT", chosen, Doc(COMPUTE, attributes={"occi.core.title": "renamed"})))
    assert replaced.title == "renamed" and replaced.id == entity.id
    o.ok("DELETE", chosen, status=204)
    assert o.call("GET", chosen).status == 404 and o.call("GET", own).status == 404
