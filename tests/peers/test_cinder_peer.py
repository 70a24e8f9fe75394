"""Smoke tests of the Cinder peer: tokens, catalog, volumes, snapshots, types and Nova's attachment flow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from keystoneauth1 import adapter, session
from keystoneauth1.service_token import ServiceTokenAuthWrapper
from peers.openstack import Credentials, Keystone
from peers.openstack.cinder_peer import Cinder

# The first test to ask for Cinder may build its venv (half a minute on a cold machine).
pytestmark = pytest.mark.timeout(900)

HTTP_TIMEOUT = 30.0
SETTLE_SECONDS = 60.0  # the bound of every wait for an asynchronous state change (they take about a second)
ATTACH = {"OpenStack-API-Version": "volume 3.44"}  # Nova's microversion for the attachments API
CONNECTOR = {"host": "compute", "initiator": "iqn.1993-08.org.debian:01:cloudgate", "ip": "127.0.0.1"}


def volume_api(credentials: Credentials, cinder: Cinder) -> adapter.Adapter:
    """A client of the block-storage endpoint found in the user's catalog, as any OpenStack SDK would make one."""
    return adapter.Adapter(
        credentials.session(), service_type="volumev3", interface="public", region_name=cinder.region
    )


def settle(probe: Callable[[], Any], what: str) -> Any:
    """Poll ``probe()`` until it returns something truthy, for at most ``SETTLE_SECONDS``."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not after {SETTLE_SECONDS:.0f}s"
        time.sleep(0.1)


def wait_status(api: adapter.Adapter, kind: str, item_id: str, wanted: str) -> dict[str, Any]:
    """Wait for a volume or snapshot (``kind``: "volume" or "snapshot") to reach ``wanted``; fail on an error state."""

    def probe() -> dict[str, Any] | None:
        item = api.get(f"/{kind}s/{item_id}").json()[kind]
        assert not item["status"].startswith("error"), item
        return item if item["status"] == wanted else None

    return settle(probe, f"{kind} {item_id} {wanted}")


def wait_gone(api: adapter.Adapter, kind: str, item_id: str) -> None:
    def probe() -> bool:
        response = api.get(f"/{kind}s/{item_id}", raise_exc=False)
        if response.status_code != 404:
            assert not response.json()[kind]["status"].startswith("error"), response.json()
        return response.status_code == 404

    settle(probe, f"{kind} {item_id} deleted")


def create_volume(api: adapter.Adapter, **fields: Any) -> dict[str, Any]:
    """Create a volume (1 GiB unless said otherwise; ``size=None`` leaves it out) and wait until it is available."""
    body = {"size": 1, "name": f"smoke-{uuid.uuid4().hex[:6]}", **fields}
    body = {key: value for key, value in body.items() if value is not None}
    response = api.post("/volumes", json={"volume": body})
    assert response.status_code == 202
    return wait_status(api, "volume", response.json()["volume"]["id"], "available")


def delete_volume(api: adapter.Adapter, volume_id: str) -> None:
    assert api.delete(f"/volumes/{volume_id}").status_code == 202
    wait_gone(api, "volume", volume_id)


def test_cinder_is_volumev3_in_the_catalog(cinder: Cinder, openstack_project: Credentials) -> None:
    session = openstack_project.session()
    assert cinder.url.endswith("/v3")
    assert session.get_endpoint(service_type="volumev3", interface="public", region_name=cinder.region) == cinder.url


def test_tokens_are_checked(cinder: Cinder, openstack_project: Credentials) -> None:
    assert requests.get(f"{cinder.url}/volumes", timeout=HTTP_TIMEOUT).status_code == 401
    bogus = {"X-Auth-Token": "not-a-token"}
    assert requests.get(f"{cinder.url}/volumes", headers=bogus, timeout=HTTP_TIMEOUT).status_code == 401
    token = openstack_project.session().get_token()
    listing = requests.get(f"{cinder.url}/volumes", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)
    assert listing.status_code == 200 and listing.json()["volumes"] == []


def test_volume_types_are_listed(cinder: Cinder, openstack_project: Credentials) -> None:
    names = {t["name"] for t in volume_api(openstack_project, cinder).get("/types").json()["volume_types"]}
    assert {"__DEFAULT__", "ssd", "hdd"} <= names
    assert set(cinder.volume_types) == names


def test_volume_lifecycle(cinder: Cinder, openstack_project: Credentials) -> None:
    api = volume_api(openstack_project, cinder)
    body = {"size": 2, "name": "data", "metadata": {"purpose": "smoke"}, "volume_type": "ssd"}
    created = api.post("/volumes", json={"volume": body})
    assert created.status_code == 202 and created.json()["volume"]["status"] == "creating"
    volume = wait_status(api, "volume", created.json()["volume"]["id"], "available")
    assert (volume["size"], volume["name"], volume["volume_type"]) == (2, "data", "ssd")
    assert (volume["metadata"], volume["availability_zone"]) == ({"purpose": "smoke"}, "nova")
    assert volume["attachments"] == [] and volume["bootable"] == "false"
    assert [v["id"] for v in api.get("/volumes/detail").json()["volumes"]] == [volume["id"]]
    # Listings filter by the resource filters Cinder ships (name, status, metadata, ...).
    assert [v["id"] for v in api.get("/volumes/detail", params={"name": "data"}).json()["volumes"]] == [volume["id"]]
    assert api.get("/volumes/detail", params={"name": "other"}).json()["volumes"] == []

    delete_volume(api, volume["id"])
    assert api.get("/volumes/detail").json()["volumes"] == []


def test_snapshot_and_a_volume_from_it(cinder: Cinder, openstack_project: Credentials) -> None:
    api = volume_api(openstack_project, cinder)
    source = create_volume(api, size=3, volume_type="hdd")
    created = api.post("/snapshots", json={"snapshot": {"volume_id": source["id"], "name": "snap"}})
    assert created.status_code == 202
    snapshot = wait_status(api, "snapshot", created.json()["snapshot"]["id"], "available")
    assert (snapshot["volume_id"], snapshot["size"], snapshot["name"]) == (source["id"], 3, "snap")
    assert [s["id"] for s in api.get("/snapshots/detail").json()["snapshots"]] == [snapshot["id"]]

    restored = create_volume(api, size=None, snapshot_id=snapshot["id"])
    assert (restored["size"], restored["snapshot_id"], restored["volume_type"]) == (3, snapshot["id"], "hdd")

    delete_volume(api, restored["id"])
    assert api.delete(f"/snapshots/{snapshot['id']}").status_code == 202
    wait_gone(api, "snapshot", snapshot["id"])
    assert api.get("/snapshots/detail").json()["snapshots"] == []
    delete_volume(api, source["id"])


def test_attachment_flow_as_nova_does_it(keystone: Keystone, cinder: Cinder, openstack_project: Credentials) -> None:
    api = volume_api(openstack_project, cinder)
    volume = create_volume(api)
    instance = str(uuid.uuid4())
    body = {"attachment": {"volume_uuid": volume["id"], "instance_uuid": instance}}
    attachment = api.post("/attachments", json=body, headers=ATTACH).json()["attachment"]
    assert (attachment["status"], attachment["instance"]) == ("reserved", instance)
    assert api.get(f"/volumes/{volume['id']}").json()["volume"]["status"] == "reserved"

    updated = api.put(
        f"/attachments/{attachment['id']}", json={"attachment": {"connector": CONNECTOR}}, headers=ATTACH
    ).json()["attachment"]
    # The fake driver answers as an iSCSI backend would; the API flattens the driver's ``data`` into it.
    info = updated["connection_info"]
    assert (info["driver_volume_type"], info["access_mode"], info["attachment_id"]) == ("iscsi", "rw", attachment["id"])
    completed = api.post(f"/attachments/{attachment['id']}/action", json={"os-complete": None}, headers=ATTACH)
    assert completed.status_code == 204
    attached = wait_status(api, "volume", volume["id"], "in-use")
    assert [(a["server_id"], a["attachment_id"]) for a in attached["attachments"]] == [(instance, attachment["id"])]
    # Only admins (and service users) see which compute host holds the volume: the connector's host.
    admin_view = keystone.admin_session().get(f"{cinder.url}/volumes/{volume['id']}").json()["volume"]
    assert admin_view["attachments"][0]["host_name"] == CONNECTOR["host"]
    assert attached["attachments"][0]["host_name"] is None

    refused = api.delete(f"/volumes/{volume['id']}", raise_exc=False)
    assert refused.status_code == 400
    assert api.get(f"/volumes/{volume['id']}").json()["volume"]["status"] == "in-use"

    # Cinder lets a plain user delete a connected attachment only once Nova says the server no longer uses it
    # (bug #2004555); Nova itself deletes with the user's token plus a service token of a ``service`` user.
    nova_service = keystone.create_project_user(roles=("service",))
    try:
        as_nova = session.Session(auth=ServiceTokenAuthWrapper(openstack_project.auth(), nova_service.auth()))
        nova_api = adapter.Adapter(as_nova, service_type="volumev3", interface="public", region_name=cinder.region)
        assert nova_api.delete(f"/attachments/{attachment['id']}", headers=ATTACH).status_code == 200
    finally:
        keystone.delete_project_user(nova_service)
    detached = wait_status(api, "volume", volume["id"], "available")
    assert detached["attachments"] == []
    delete_volume(api, volume["id"])


def test_volumes_stay_in_their_project(keystone: Keystone, cinder: Cinder) -> None:
    owner, other = keystone.create_project_user(), keystone.create_project_user()
    try:
        api = volume_api(owner, cinder)
        volume = create_volume(api)
        stranger = volume_api(other, cinder)
        assert stranger.get("/volumes/detail").json()["volumes"] == []
        assert stranger.get(f"/volumes/{volume['id']}", raise_exc=False).status_code == 404
        assert stranger.delete(f"/volumes/{volume['id']}", raise_exc=False).status_code == 404
        delete_volume(api, volume["id"])
    finally:
        keystone.delete_project_user(owner)
        keystone.delete_project_user(other)
