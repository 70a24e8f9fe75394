"""OCCI over a live gateway (simulator) in every rendering: the query interface against the specification's
tables, computes made three ways, actions, storage and networks, links made and removed, user mixins,
filters, and deleting everything."""

from __future__ import annotations

import json
from typing import Any

import pytest
from gateway_process import GatewayProcess
from occi_spec import ACTION_SCHEMES, COMPUTE_STATES, INFRA, KINDS, MIXINS
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, Doc, Occi

RENDERINGS = [TEXT_PLAIN, TEXT_OCCI, OCCI_JSON]
OS_TPL = "http://schemas.cloudgate.org/occi/template/os#"
RESOURCE_TPL = "http://schemas.cloudgate.org/occi/template/resource#"
COMPUTE, STORAGE, NETWORK = INFRA + "compute", INFRA + "storage", INFRA + "network"
NETWORKINTERFACE, STORAGELINK = INFRA + "networkinterface", INFRA + "storagelink"
IPNETWORK = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"


def action(kind: str, term: str) -> str:
    return ACTION_SCHEMES[kind] + term


def attribute_flags(o: Occi, category: Any) -> dict[str, bool]:
    """attribute name -> mutable, from a category of the query interface in either rendering."""
    if o.media == OCCI_JSON:
        return {name: bool(d.get("mutable")) for name, d in category.get("attributes", {}).items()}
    return {a.name: a.mutable for a in category.attributes}


@pytest.mark.parametrize("media", RENDERINGS)
def test_query_interface_matches_the_specification(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    categories = o.categories(o.ok("GET", "-/"))
    for kind_id, (_, attributes, _actions) in KINDS.items():
        assert kind_id in categories, kind_id
        flags = attribute_flags(o, categories[kind_id])
        for name, mutable in attributes.items():
            assert name in flags, (kind_id, name)
            assert flags[name] == mutable, (kind_id, name)
    for mixin_id, attributes in MIXINS.items():
        assert mixin_id in categories, mixin_id
        assert set(attribute_flags(o, categories[mixin_id])) >= set(attributes)
    # the simulator does all of these; storage online/offline has no canonical operation
    for kind, terms in (
        ("compute", ("start", "stop", "restart", "suspend", "save")),
        ("storage", ("snapshot", "resize")),
    ):
        for term in terms:
            assert action(kind, term) in categories, (kind, term)
    assert action("storage", "online") not in categories
    images = gateway.client().describe_images()["Images"]
    assert len([c for c in categories if c.startswith(OS_TPL)]) == len(images)
    flavors = gateway.client().describe_instance_types()["InstanceTypes"]
    assert len([c for c in categories if c.startswith(RESOURCE_TPL)]) == len(flavors)
    # the well-known location answers the same
    well_known = Occi(gateway.url, media)
    well_known.base = gateway.url + "/.well-known/org/ogf/occi/"
    assert o.category_ids(well_known.ok("GET", "-/")) == set(categories)


@pytest.mark.parametrize("media", RENDERINGS)
def test_query_interface_filtered_by_category(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    filtered = (
        o.ok("GET", "-/", Doc(kind=COMPUTE))
        if media != OCCI_JSON
        else o.ok("GET", "-/", headers={"Content-Type": OCCI_JSON}, data=json.dumps({"kinds": [COMPUTE]}).encode())
    )
    assert o.category_ids(filtered) == {COMPUTE}


def wait_state(o: Occi, location: str, state: str) -> Any:
    return o.wait(location, "occi.compute.state", state)


@pytest.mark.parametrize("media", RENDERINGS)
def test_compute_storage_network_and_links(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    categories = o.categories(o.ok("GET", "-/"))
    os_tpl = sorted(c for c in categories if c.startswith(OS_TPL))[0]
    resource_tpl = sorted(c for c in categories if c.startswith(RESOURCE_TPL))[0]
    before = set(o.locations(o.ok("GET", "compute/")))

    # a compute from its kind alone, from templates, and from cores and memory
    bare = o.ok("POST", "compute/", Doc(COMPUTE, attributes={"occi.core.title": f"bare-{media}"}), status=201)
    first = bare.headers["Location"]
    assert first.startswith(gateway.url + "/occi/compute/")
    templated = o.ok("POST", "compute/", Doc(COMPUTE, mixins=[os_tpl, resource_tpl]), status=201).headers["Location"]
    sized = o.ok(
        "POST", "compute/", Doc(COMPUTE, attributes={"occi.compute.cores": 2, "occi.compute.memory": 3.5}), status=201
    ).headers["Location"]
    made = wait_state(o, first, "active")
    assert made.attributes["occi.compute.state"] in COMPUTE_STATES
    assert any(m.startswith(OS_TPL) for m in made.mixins) and any(m.startswith(RESOURCE_TPL) for m in made.mixins)
    assert set(wait_state(o, templated, "active").mixins) >= {os_tpl, resource_tpl}
    big = wait_state(o, sized, "active")
    assert big.attributes["occi.compute.cores"] >= 2 and big.attributes["occi.compute.memory"] >= 3.5
    assert {first, templated, sized} <= set(o.locations(o.ok("GET", "compute/")))

    # actions
    for term, state in (("stop", "inactive"), ("start", "active"), ("suspend", "suspended"), ("start", "active")):
        o.ok("POST", f"{first}?action={term}", Doc(action=action("compute", term)))
        wait_state(o, first, state)
    assert o.call("POST", f"{first}?action=start", Doc(action=action("compute", "start"))).status == 409

    # storage (fractional sizes rounded up) and a network
    storage = o.ok(
        "POST", "storage/", Doc(STORAGE, attributes={"occi.storage.size": 1.5, "occi.core.title": "data"}), status=201
    ).headers["Location"]
    assert o.wait(storage, "occi.storage.state", "online").attributes["occi.storage.size"] == 2
    network = o.ok(
        "POST", "network/", Doc(NETWORK, mixins=[IPNETWORK], attributes={"occi.network.address": "10.77.0.0/16"}),
        status=201,
    ).headers["Location"]  # fmt: skip
    assert o.get(network).attributes["occi.network.state"] == "active"

    # links, made on their own and shown inline in the compute
    slink = o.ok("POST", "storagelink/", Doc(STORAGELINK, source=first, target=storage), status=201).headers["Location"]
    nlink = o.ok("POST", "networkinterface/", Doc(NETWORKINTERFACE, source=first, target=network), status=201)
    nlink_location = nlink.headers["Location"]
    compute = o.get(first)
    targets = {(link.kind, link.target) for link in compute.links}
    assert (STORAGELINK, storage) in targets and (NETWORKINTERFACE, network) in targets
    assert o.link(o.ok("GET", slink)).target == storage
    o.ok("DELETE", slink, status=204)
    o.ok("DELETE", nlink_location, status=204)
    targets = {link.target for link in o.get(first).links}
    assert storage not in targets and network not in targets

    # delete everything
    for location in (first, templated, sized):
        o.ok("DELETE", location, status=204)
    o.ok("DELETE", storage, status=204)
    o.ok("DELETE", network, status=204)
    assert o.call("GET", first).status == 404
    assert set(o.locations(o.ok("GET", "compute/"))) == before


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
