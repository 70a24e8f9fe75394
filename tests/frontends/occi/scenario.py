"""The OCCI scenario as functions of a client, so the same steps run on the simulator and on real clouds:
the query interface against the specification's tables; computes made from their kind alone, from an
``os_tpl`` + ``resource_tpl`` and from cores and memory; actions; storage and a network; links made, read
inline and removed; and deleting everything."""

from __future__ import annotations

import time
from typing import Any

from occi_spec import ACTION_SCHEMES, COMPUTE_STATES, INFRA, KINDS, MIXINS
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, WAIT, Doc, Occi

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


def query_interface(o: Occi, images: int, flavors: int) -> dict[str, Any]:
    """Every kind and mixin of the specification's tables with their attributes' mutability, one ``os_tpl``
    per image and one ``resource_tpl`` per flavor, and the same at the well-known location; the categories."""
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
    assert len([c for c in categories if c.startswith(OS_TPL)]) == images
    assert len([c for c in categories if c.startswith(RESOURCE_TPL)]) == flavors
    well_known = Occi(o.root, o.media, o.session.auth)  # type: ignore[arg-type]
    well_known.session.headers.update({k: v for k, v in o.session.headers.items() if k == "X-Auth-Token"})
    well_known.base = o.root + "/.well-known/org/ogf/occi/"
    assert o.category_ids(well_known.ok("GET", "-/")) == set(categories)
    return categories


def wait_state(o: Occi, location: str, state: str) -> Any:
    """The compute once in ``state`` (bounded); a failure names the state the cloud left it in, and why."""
    deadline = time.monotonic() + WAIT
    while True:
        entity = o.get(location)
        now = entity.attributes.get("occi.compute.state")
        if now == state:
            return entity
        message = entity.attributes.get("occi.compute.state.message")
        assert time.monotonic() < deadline and now != "error", f"{location}: {now} ({message}), not {state}"
        time.sleep(0.2)


def title(o: Occi, category: Any) -> str:
    return str(category.get("title", "")) if o.media == OCCI_JSON else category.title


def computes_storage_network_links(
    o: Occi, *, image: str = "", cores: int = 2, memory: float = 3.5, network_address: str = "10.77.0.0/16"
) -> None:
    """Computes made three ways, their actions (suspend where offered), a storage and a network, both
    linked to a compute and read inline, the links removed, and everything deleted again. ``image``: the
    title of the os_tpl to use (else the first)."""
    categories = o.categories(o.ok("GET", "-/"))
    os_tpls = sorted(c for c in categories if c.startswith(OS_TPL) and (not image or title(o, categories[c]) == image))
    os_tpl = os_tpls[0]
    resource_tpl = sorted(c for c in categories if c.startswith(RESOURCE_TPL))[0]
    before = set(o.locations(o.ok("GET", "compute/")))
    made_here: list[str] = []
    try:
        _computes_storage_network_links(
            o, categories, os_tpl, os_tpl if image else "", resource_tpl, cores, memory, network_address, made_here
        )
    finally:  # a failed step leaves nothing behind in a shared cloud
        for location in reversed(made_here):
            o.call("DELETE", location)
    assert set(o.locations(o.ok("GET", "compute/"))) == before


def _computes_storage_network_links(
    o: Occi,
    categories: dict[str, Any],
    os_tpl: str,
    default_os_tpl: str,
    resource_tpl: str,
    cores: int,
    memory: float,
    network_address: str,
    made_here: list[str],
) -> None:
    def create(path: str, doc: Doc) -> str:
        location = o.ok("POST", path, doc, status=201).headers["Location"]
        assert location.startswith(o.base + path), (location, o.base + path)
        made_here.append(location)
        return location

    # a compute from its kind alone, from templates, and from cores and memory
    first = create("compute/", Doc(COMPUTE, attributes={"occi.core.title": f"bare-{o.media.split('/')[-1]}"}))
    templated = create("compute/", Doc(COMPUTE, mixins=[os_tpl, resource_tpl]))
    sized = create("compute/", Doc(COMPUTE, attributes={"occi.compute.cores": cores, "occi.compute.memory": memory}))
    made = wait_state(o, first, "active")
    assert made.attributes["occi.compute.state"] in COMPUTE_STATES
    assert any(m.startswith(OS_TPL) for m in made.mixins) and any(m.startswith(RESOURCE_TPL) for m in made.mixins)
    if default_os_tpl:  # the tenant's default image is the one named
        assert default_os_tpl in made.mixins, (default_os_tpl, made.mixins)
    assert set(wait_state(o, templated, "active").mixins) >= {os_tpl, resource_tpl}
    big = wait_state(o, sized, "active")
    assert big.attributes["occi.compute.cores"] >= cores and big.attributes["occi.compute.memory"] >= memory
    assert {first, templated, sized} <= set(o.locations(o.ok("GET", "compute/")))

    # actions: stop and start, suspend where the cloud offers it; starting an active compute is a conflict
    steps = [("stop", "inactive"), ("start", "active")]
    if action("compute", "suspend") in categories:
        steps += [("suspend", "suspended"), ("start", "active")]
    for term, state in steps:
        o.ok("POST", f"{first}?action={term}", Doc(action=action("compute", term)))
        wait_state(o, first, state)
    assert o.call("POST", f"{first}?action=start", Doc(action=action("compute", "start"))).status == 409

    # storage (fractional sizes rounded up) and a network
    storage = create("storage/", Doc(STORAGE, attributes={"occi.storage.size": 1.5, "occi.core.title": "data"}))
    assert o.wait(storage, "occi.storage.state", "online").attributes["occi.storage.size"] == 2
    network = create("network/", Doc(NETWORK, mixins=[IPNETWORK], attributes={"occi.network.address": network_address}))
    assert o.get(network).attributes["occi.network.state"] == "active"

    # links, made on their own and shown inline in the compute
    slink = o.ok("POST", "storagelink/", Doc(STORAGELINK, source=first, target=storage), status=201).headers["Location"]
    nlink = o.ok("POST", "networkinterface/", Doc(NETWORKINTERFACE, source=first, target=network), status=201)
    nlink_location = nlink.headers["Location"]
    compute = o.get(first)
    targets = {(link.kind, link.target) for link in compute.links}
    assert (STORAGELINK, storage) in targets and (NETWORKINTERFACE, network) in targets
    assert o.link(o.ok("GET", slink)).target == storage
    assert o.link(o.ok("GET", nlink_location)).target == network
    o.ok("DELETE", slink, status=204)
    o.ok("DELETE", nlink_location, status=204)
    targets = {link.target for link in o.get(first).links}
    assert storage not in targets and network not in targets

    # delete everything
    for location in (first, templated, sized, storage, network):
        o.ok("DELETE", location, status=204)
        made_here.remove(location)
    assert o.call("GET", first).status == 404
