"""OCCI features over a live gateway (simulator) in every rendering, each checked where its effect shows:
collection filters and filtered deletes, mixin locations, network and storage actions, inline links made
with a compute, compute save / ssh_key / user_data / stop methods, floating addresses, and PUT."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gateway_process import GatewayProcess
from occi_spec import ACTION_SCHEMES, INFRA
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, URI_LIST, Doc, Occi

from frontends.ec2.ids import public_id

RENDERINGS = [TEXT_PLAIN, TEXT_OCCI, OCCI_JSON]
SHORT = {TEXT_PLAIN: "p", TEXT_OCCI: "o", OCCI_JSON: "j"}
OWN = "http://schemas.cloudgate.org/occi/"
OS_TPL, RESOURCE_TPL, ZONE = OWN + "template/os#", OWN + "template/resource#", OWN + "availability_zone#"
COMPUTE, STORAGE, NETWORK = INFRA + "compute", INFRA + "storage", INFRA + "network"
NETWORKINTERFACE, STORAGELINK = INFRA + "networkinterface", INFRA + "storagelink"
IPNETWORK = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"
SSH_KEY = "http://schemas.ogf.org/occi/infrastructure/credentials#ssh_key"
USER_DATA = "http://schemas.ogf.org/occi/infrastructure/compute#user_data"
USER_SCHEME = "http://example.org/features#"
#: how long a test waits for an effect in the cloud (the simulator boots in 0.2 s)
WAIT = 30.0


def action(kind: str, term: str) -> str:
    return ACTION_SCHEMES[kind] + term


def until(what: str, probe: Callable[[], Any]) -> Any:
    """``probe()`` once it is truthy (bounded)."""
    deadline = time.monotonic() + WAIT
    while True:
        found = probe()
        if found:
            return found
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.2)


def create(o: Occi, path: str, doc: Doc) -> str:
    return o.ok("POST", path, doc, status=201).headers["Location"]


def running(o: Occi, doc: Doc) -> str:
    location = create(o, "compute/", doc)
    o.wait(location, "occi.compute.state", "active")
    return location


def gid(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[1]


def listed(o: Occi, path: str, doc: Doc | None = None, method: str = "GET") -> set[str]:
    return set(o.locations(o.ok(method, path, doc)))


def templates(o: Occi) -> tuple[list[str], list[str], list[str]]:
    """The os_tpl, resource_tpl and zone mixins of the query interface (the simulator's defaults first)."""
    ids = sorted(o.category_ids(o.ok("GET", "-/")))
    return (
        [c for c in ids if c.startswith(OS_TPL)],
        [c for c in ids if c.startswith(RESOURCE_TPL)],
        [c for c in ids if c.startswith(ZONE)],
    )


def define_mixin(o: Occi, term: str) -> str:
    """A user mixin at ``mixin/<term>/``, defined in the client's rendering; its id."""
    location = f"{o.base}mixin/{term}/"
    if o.media == OCCI_JSON:
        body = json.dumps({"mixins": [{"term": term, "scheme": USER_SCHEME, "title": term, "location": location}]})
        o.ok("POST", "-/", headers={"Content-Type": OCCI_JSON}, data=body.encode())
    else:
        line = f'{term}; scheme="{USER_SCHEME}"; class="mixin"; title="{term}"; location="{location}"'
        if o.media == TEXT_OCCI:
            o.ok("POST", "-/", headers={"Content-Type": TEXT_OCCI, "Category": line})
        else:
            o.ok("POST", "-/", headers={"Content-Type": TEXT_PLAIN}, data=f"Category: {line}\n".encode())
    return USER_SCHEME + term


def delete_all(o: Occi, *locations: str) -> None:
    for location in locations:
        o.ok("DELETE", location, status=204)


def ec2_id(kind: str, location: str) -> str:
    """The EC2 id of an OCCI entity (the same resource, under EC2's name for it)."""
    found = public_id(kind, gid(location))
    assert found is not None
    return found


def instance(gateway: GatewayProcess, location: str) -> dict[str, Any]:
    reservations = gateway.client().describe_instances(InstanceIds=[ec2_id("machine", location)])["Reservations"]
    return reservations[0]["Instances"][0]


# -- 1. filters ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_collections_filtered_by_attribute_and_category_and_deleted_by_category(
    gateway: GatewayProcess, media: str
) -> None:
    o = Occi(gateway.url, media)
    os_tpls, resource_tpls, zones = templates(o)
    s = SHORT[media]
    a = create(o, "compute/", Doc(COMPUTE, [os_tpls[0], resource_tpls[0], zones[0]], {"occi.core.title": f"fa-{s}"}))
    b = create(o, "compute/", Doc(COMPUTE, [os_tpls[1], resource_tpls[1], zones[1]], {"occi.core.title": f"fb-{s}"}))
    disk = create(o, "storage/", Doc(STORAGE, [zones[1]], {"occi.storage.size": 1, "occi.core.title": f"fd-{s}"}))
    everything = listed(o, "compute/")
    assert {a, b} <= everything

    # by attribute value (X-OCCI-Attribute in the text renderings, an entity-shaped body in JSON)
    assert listed(o, "compute/", Doc(COMPUTE, attributes={"occi.core.title": f"fa-{s}"})) == {a}
    assert listed(o, "compute/", Doc(COMPUTE, attributes={"occi.core.title": "nobody"})) == set()
    if media == OCCI_JSON:  # category lists filter too
        body = json.dumps({"mixins": [os_tpls[1]]}).encode()
        found = set(o.locations(o.ok("GET", "compute/", headers={"Content-Type": OCCI_JSON}, data=body)))
        assert b in found and a not in found
    else:  # attributes alone, with no Category
        assert listed(o, "compute/", Doc(attributes={"occi.core.title": f"fb-{s}"})) == {b}
    assert listed(o, "storage/", Doc(STORAGE, attributes={"occi.storage.size": 1, "occi.core.title": f"fd-{s}"})) == {
        disk
    }
    # by category: the kind itself, a template, a zone, and several at once (all must be held)
    assert listed(o, "compute/", Doc(COMPUTE)) == everything
    for mixin, wanted, unwanted in (
        (os_tpls[0], a, b),
        (resource_tpls[1], b, a),
        (zones[0], a, b),
    ):
        found = listed(o, "compute/", Doc(COMPUTE, [mixin]))
        assert wanted in found and unwanted not in found, mixin
    assert listed(o, "compute/", Doc(COMPUTE, [os_tpls[0], zones[1]])) & {a, b} == set()
    assert disk in listed(o, "storage/", Doc(STORAGE, [zones[1]]))
    assert disk not in listed(o, "storage/", Doc(STORAGE, [zones[0]]))
    # both at once: a category and an attribute value
    assert listed(o, "compute/", Doc(COMPUTE, [zones[1]], {"occi.core.title": f"fa-{s}"})) == set()

    # DELETE of the collection with a category filter removes only what matches
    o.ok("DELETE", "compute/", Doc(COMPUTE, [os_tpls[0], resource_tpls[0], zones[0]]), status=204)
    assert o.call("GET", a).status == 404
    assert o.get(b).title == f"fb-{s}"
    assert a not in listed(o, "compute/") and b in listed(o, "compute/")
    delete_all(o, b, disk)


# -- 2. mixin locations -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_mixin_locations_list_their_entities_in_every_collection_rendering(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    uris = Occi(gateway.url, URI_LIST)
    os_tpls, resource_tpls, zones = templates(o)
    a = create(o, "compute/", Doc(COMPUTE, [os_tpls[0], resource_tpls[0], zones[0]]))
    b = create(o, "compute/", Doc(COMPUTE, [os_tpls[1], resource_tpls[1], zones[1]]))
    disk = create(o, "storage/", Doc(STORAGE, [zones[1]], {"occi.storage.size": 1}))
    for m in (a, b):
        o.wait(m, "occi.compute.state", "active")
    roots = {
        m: {link.target for link in o.get(m).links if link.kind == STORAGELINK} for m in (a, b)
    }  # a compute's root disk is a storage in its zone too
    expected = {
        os_tpls[0]: {a},
        os_tpls[1]: {b},
        resource_tpls[0]: {a},
        resource_tpls[1]: {b},
        zones[0]: {a, *roots[a]},
        zones[1]: {b, disk, *roots[b]},
    }
    term_of = {OS_TPL: "os_tpl", RESOURCE_TPL: "resource_tpl", ZONE: "availability_zone"}
    for mixin, members in expected.items():
        scheme, term = mixin.split("#", 1)
        path = f"{term_of[scheme + '#']}/{term}/"
        answer = o.ok("GET", path)
        assert set(o.locations(answer)) == members, (path, o.locations(answer))
        if media == OCCI_JSON:
            assert {r["id"] for r in json.loads(answer.raw)["resources"]} == {gid(m) for m in members}
        else:
            assert {v.strip() for v in _location_values(o, answer)} == members
        assert set(uris.ok("GET", path).text().splitlines()) == members, path
    delete_all(o, a, b, disk)


def _location_values(o: Occi, answer: Any) -> list[str]:
    """The X-OCCI-Location values of a text collection: in the body (text/plain) or the headers (text/occi)."""
    if o.media == TEXT_OCCI:
        return [v for value in answer.headers.get("X-OCCI-Location", "").split(",") if (v := value.strip())]
    return [line.split(":", 1)[1] for line in answer.text().splitlines() if line.startswith("X-OCCI-Location:")]


# -- 3. networks ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_network_actions_partial_update_and_inline_interface(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    s = SHORT[media]
    offered = o.category_ids(o.ok("GET", "-/"))
    assert {action("network", "up"), action("network", "down")} <= offered
    cidr = {TEXT_PLAIN: "10.81.0.0/16", TEXT_OCCI: "10.82.0.0/16", OCCI_JSON: "10.83.0.0/16"}[media]
    net = create(o, "network/", Doc(NETWORK, [IPNETWORK], {"occi.network.address": cidr, "occi.core.title": f"n-{s}"}))
    made = o.wait(net, "occi.network.state", "active")
    assert IPNETWORK in made.mixins and made.attributes["occi.network.address"] == cidr
    assert action("network", "down") in {a for a, _ in made.actions}

    up, down = Doc(action=action("network", "up")), Doc(action=action("network", "down"))
    assert o.call("POST", f"{net}?action=up", up).status == 409
    o.ok("POST", f"{net}?action=down", down)
    assert action("network", "up") in {a for a, _ in o.wait(net, "occi.network.state", "inactive").actions}
    assert o.call("POST", f"{net}?action=down", down).status == 409
    o.ok("POST", f"{net}?action=up", up)
    o.wait(net, "occi.network.state", "active")

    # partial update of the title: the rest stays
    renamed = o.entity(o.ok("POST", net, Doc(NETWORK, attributes={"occi.core.title": f"renamed-{s}"})))
    assert renamed.title == f"renamed-{s}"
    assert o.get(net).attributes["occi.network.address"] == cidr

    # a compute made with an inline interface sits on that network
    compute = running(o, Doc(COMPUTE, links=[(NETWORKINTERFACE, net, {})]))
    interfaces = [link for link in o.get(compute).links if link.kind == NETWORKINTERFACE]
    assert [link.target for link in interfaces] == [net]
    subnets = gateway.client().describe_subnets(SubnetIds=[instance(gateway, compute)["SubnetId"]])["Subnets"]
    assert subnets[0]["VpcId"] == ec2_id("network", net)
    o.ok("DELETE", compute, status=204)
    until("the network to go", lambda: o.call("DELETE", net).status == 204)


# -- 4. storage ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_storage_snapshot_resize_and_inline_storagelink(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    ec2 = gateway.client()
    disk = create(o, "storage/", Doc(STORAGE, attributes={"occi.storage.size": 1}))
    o.wait(disk, "occi.storage.state", "online")
    volume = ec2_id("volume", disk)

    o.ok("POST", f"{disk}?action=snapshot", Doc(action=action("storage", "snapshot")))
    snapshots = until(
        "the snapshot",
        lambda: ec2.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [volume]}])["Snapshots"],
    )
    assert len(snapshots) == 1 and snapshots[0]["VolumeId"] == ec2_id("volume", disk)

    resize = action("storage", "resize")
    grown = o.entity(o.ok("POST", f"{disk}?action=resize", Doc(action=resize, attributes={"size": 3})))
    assert grown.attributes["occi.storage.size"] == 3
    assert o.call("POST", f"{disk}?action=resize", Doc(action=resize, attributes={"size": 2})).status == 400
    # a partial update of the size resizes too (fractions rounded up); a shrink is refused the same way
    updated = o.entity(o.ok("POST", disk, Doc(STORAGE, attributes={"occi.storage.size": 4.2})))
    assert updated.attributes["occi.storage.size"] == 5
    assert o.call("POST", disk, Doc(STORAGE, attributes={"occi.storage.size": 1})).status == 400
    assert ec2.describe_volumes(VolumeIds=[ec2_id("volume", disk)])["Volumes"][0]["Size"] == 5

    # a compute made with an inline storage link gets the storage once it runs
    compute = running(o, Doc(COMPUTE, links=[(STORAGELINK, disk, {})]))
    link = until(
        "the inline storage link",
        lambda: [link for link in o.get(compute).links if link.kind == STORAGELINK and link.target == disk],
    )
    assert link[0].source == compute
    attachments = ec2.describe_volumes(VolumeIds=[ec2_id("volume", disk)])["Volumes"][0]["Attachments"]
    assert [a["InstanceId"] for a in attachments] == [ec2_id("machine", compute)]
    o.ok("DELETE", compute, status=204)
    until("the storage to go", lambda: o.call("DELETE", disk).status == 204)
    for snapshot in snapshots:
        ec2.delete_snapshot(SnapshotId=snapshot["SnapshotId"])


# -- 5. compute -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_compute_save_makes_an_os_tpl_that_makes_computes(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    s = SHORT[media]
    source = running(o, Doc(COMPUTE))
    saved = o.ok("POST", f"{source}?action=save", Doc(action=action("compute", "save"), attributes={"name": f"sv-{s}"}))
    mixins = o.categories(saved)
    assert len(mixins) == 1
    [template] = mixins
    assert template.startswith(OS_TPL)
    until("the saved os_tpl in the query interface", lambda: template in o.category_ids(o.ok("GET", "-/")))
    image = gateway.client().describe_images(ImageIds=[public_id("image", template.split("#", 1)[1])])["Images"][0]
    assert image["Name"] == f"sv-{s}"
    copy = running(o, Doc(COMPUTE, [template]))
    assert template in o.get(copy).mixins
    assert instance(gateway, copy)["ImageId"] == image["ImageId"]
    delete_all(o, copy, source)
    gateway.client().deregister_image(ImageId=image["ImageId"])


def public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


@pytest.mark.parametrize("media", RENDERINGS)
def test_compute_ssh_key_user_data_and_stop_methods(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    ec2 = gateway.client()
    userdata = base64.b64encode(f"#cloud-config\nhostname: {SHORT[media]}\n".encode()).decode()
    before = listed(o, "compute/")
    bad = Doc(COMPUTE, [USER_DATA], {"occi.compute.userdata": "not base64 at all!"})
    refused = o.call("POST", "compute/", bad)
    assert refused.status == 400 and "base64" in refused.text()
    bad_key = Doc(COMPUTE, [SSH_KEY], {"occi.credentials.ssh.publickey": "ssh-rsa not-a-key"})
    assert o.call("POST", "compute/", bad_key).status == 400
    assert listed(o, "compute/") == before

    attributes = {"occi.credentials.ssh.publickey": public_key(), "occi.compute.userdata": userdata}
    compute = running(o, Doc(COMPUTE, [SSH_KEY, USER_DATA], attributes))
    machine = instance(gateway, compute)
    assert machine["KeyName"].startswith("occi-")
    assert ec2.describe_key_pairs(KeyNames=[machine["KeyName"]])["KeyPairs"]
    attribute = ec2.describe_instance_attribute(InstanceId=ec2_id("machine", compute), Attribute="userData")
    assert attribute["UserData"]["Value"] == userdata

    stop = Doc(action=action("compute", "stop"), attributes={"method": "poweroff"})
    o.ok("POST", f"{compute}?action=stop", stop)
    o.wait(compute, "occi.compute.state", "inactive")
    assert instance(gateway, compute)["State"]["Name"] == "stopped"
    o.ok("POST", f"{compute}?action=start", Doc(action=action("compute", "start")))
    o.wait(compute, "occi.compute.state", "active")
    for method in ("graceful", "cold"):
        restart = Doc(action=action("compute", "restart"), attributes={"method": method})
        o.ok("POST", f"{compute}?action=restart", restart)
        until(
            "the restart to end",
            lambda: "occi.compute.state.message" not in o.wait(compute, "occi.compute.state", "active").attributes,
        )
    assert o.call("POST", f"{compute}?action=restart", Doc(action=action("compute", "restart"))).status == 200
    o.ok("DELETE", compute, status=204)


# -- 6. floating addresses ------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_floating_address_is_a_second_interface(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    ec2 = gateway.client()
    compute = running(o, Doc(COMPUTE))
    public = f"{gateway.url}/occi/network/public"
    answer = o.ok("POST", "networkinterface/", Doc(NETWORKINTERFACE, source=compute, target=public), status=201)
    link = o.link(answer)
    address = link.attributes["occi.networkinterface.address"]
    assert link.target == public and link.source == compute
    described = ec2.describe_addresses(PublicIps=[address])["Addresses"]
    assert described[0].get("InstanceId") == ec2_id("machine", compute)

    interfaces = [link for link in o.get(compute).links if link.kind == NETWORKINTERFACE]
    assert len(interfaces) == 2
    assert interfaces[1].target == public and interfaces[1].attributes["occi.networkinterface.address"] == address
    assert o.link(o.ok("GET", answer.headers["Location"])).attributes["occi.networkinterface.address"] == address

    o.ok("DELETE", answer.headers["Location"], status=204)
    found = ec2.describe_addresses(Filters=[{"Name": "public-ip", "Values": [address]}])["Addresses"]
    assert found == []
    assert [link.target for link in o.get(compute).links if link.kind == NETWORKINTERFACE] == [interfaces[0].target]
    o.ok("DELETE", compute, status=204)


# -- 7. PUT --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("media", RENDERINGS)
def test_put_replaces_title_and_user_mixins(gateway: GatewayProcess, media: str) -> None:
    o = Occi(gateway.url, media)
    s = SHORT[media]
    first, second = define_mixin(o, f"first{s}"), define_mixin(o, f"second{s}")
    compute = running(o, Doc(COMPUTE, [first], {"occi.core.title": f"before-{s}"}))
    templated = [m for m in o.get(compute).mixins if m.startswith((OS_TPL, RESOURCE_TPL))]

    replaced = o.entity(o.ok("PUT", compute, Doc(COMPUTE, [second], {"occi.core.title": f"after-{s}"})))
    assert replaced.title == f"after-{s}"
    assert second in replaced.mixins and first not in replaced.mixins
    assert set(templated) <= set(replaced.mixins)
    read = o.get(compute)
    assert read.title == f"after-{s}" and read.mixins == replaced.mixins
    assert compute not in listed(o, f"mixin/first{s}/") and compute in listed(o, f"mixin/second{s}/")
    tags = {t["Key"]: t["Value"] for t in instance(gateway, compute).get("Tags", [])}
    assert tags["Name"] == f"after-{s}" and f"occi.mixin:{second}" in tags and f"occi.mixin:{first}" not in tags
    o.ok("DELETE", compute, status=204)


# -- application/json ----------------------------------------------------------------------------------------
def test_application_json_is_answered_in_application_json(gateway: GatewayProcess) -> None:
    auth = ("demo", "demo-secret")
    headers = {"Accept": "application/json"}
    o = Occi(gateway.url, OCCI_JSON)
    compute = create(o, "compute/", Doc(COMPUTE))
    collection = requests.get(f"{gateway.url}/occi/compute/", headers=headers, auth=auth, timeout=30)
    assert collection.status_code == 200 and collection.headers["Content-Type"].split(";")[0] == "application/json"
    assert gid(compute) in {r["id"] for r in collection.json()["resources"]}
    one = requests.get(compute, headers=headers, auth=auth, timeout=30)
    assert one.headers["Content-Type"].split(";")[0] == "application/json"
    assert one.json()["kind"] == COMPUTE and one.json()["id"] == gid(compute)
    query = requests.get(f"{gateway.url}/occi/-/", headers=headers, auth=auth, timeout=30)
    assert query.headers["Content-Type"].split(";")[0] == "application/json"
    assert COMPUTE in {k["scheme"] + k["term"] for k in query.json()["kinds"]}
    made = requests.post(
        f"{gateway.url}/occi/compute/",
        headers={**headers, "Content-Type": "application/json"},
        data=json.dumps({"kind": COMPUTE}),
        auth=auth,
        timeout=30,
    )
    assert made.status_code == 201 and made.headers["Content-Type"].split(";")[0] == "application/json"
    missing = requests.get(f"{compute}x", headers=headers, auth=auth, timeout=30)
    assert missing.status_code == 404 and missing.headers["Content-Type"].split(";")[0] == "application/json"
    assert missing.json()["error"]["code"] == 404
    delete_all(o, compute, made.headers["Location"])
