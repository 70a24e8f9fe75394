"""Smoke tests of the OpenStack peers: real Keystone tokens and catalog, a server's lifecycle in the real Nova API
on the real Neutron."""

from __future__ import annotations

import ipaddress
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ks_exc
from peers.openstack import Credentials, Keystone, Nova, start_keystone
from peers.openstack.venvs import build_seconds, venv_path

# The first test to ask for the peers may build both venvs (a minute or two on a cold machine).
pytestmark = pytest.mark.timeout(900)

MICROVERSION = "2.79"  # networks "auto" (2.37+), server tags and descriptions; what a backend is likely to use
IMAGE = "155d900f-4e14-4e4c-a73d-069cbf4541e6"  # in the fake Glance
SETTLE_SECONDS = 60.0


def compute(credentials: Credentials) -> adapter.Adapter:
    """A client of the compute endpoint found in the user's catalog, as any OpenStack SDK would make one."""
    return adapter.Adapter(
        credentials.session(),
        service_type="compute",
        interface="public",
        region_name=credentials.region_name,
        default_microversion=MICROVERSION,
    )


def server_status(nova_api: adapter.Adapter, server_id: str) -> str:
    return nova_api.get(f"/servers/{server_id}").json()["server"]["status"]


def wait_status(nova_api: adapter.Adapter, server_id: str, wanted: str) -> dict[str, Any]:
    """Poll until the server reaches ``wanted`` (bounded); fail on ERROR or when time runs out."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        server = nova_api.get(f"/servers/{server_id}").json()["server"]
        if server["status"] == wanted:
            return server
        assert server["status"] != "ERROR", server.get("fault")
        assert time.monotonic() < deadline, f"server {server_id} still {server['status']}, wanted {wanted}"
        time.sleep(0.1)


def wait_gone(nova_api: adapter.Adapter, server_id: str) -> None:
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        response = nova_api.get(f"/servers/{server_id}", raise_exc=False)
        if response.status_code == 404:
            return
        assert time.monotonic() < deadline, f"server {server_id} not gone: {response.json()['server']['status']}"
        time.sleep(0.1)


def boot(nova_api: adapter.Adapter, name: str) -> str:
    body = {"server": {"name": name, "flavorRef": "1", "imageRef": IMAGE, "networks": "auto"}}
    response = nova_api.post("/servers", json=body)
    assert response.status_code == 202
    return response.json()["server"]["id"]


def ports_of(credentials: Credentials, server_id: str) -> list[dict[str, Any]]:
    """The Neutron ports a project sees for a server (Nova makes them in the server's project)."""
    network = adapter.Adapter(credentials.session(), service_type="network", interface="public")
    return network.get("/v2.0/ports", params={"device_id": server_id}).json()["ports"]


def action(nova_api: adapter.Adapter, server_id: str, body: dict[str, Any]) -> None:
    assert nova_api.post(f"/servers/{server_id}/action", json=body).status_code == 202


def test_password_token_scoped_to_the_project_with_catalog(
    keystone: Keystone, nova: Nova, openstack_project: Credentials
) -> None:
    session = openstack_project.session()
    access = session.auth.get_access(session)
    assert access.project_id == openstack_project.project_id
    assert access.user_id == openstack_project.user_id
    assert "member" in access.role_names
    assert access.service_catalog.url_for(service_type="compute", interface="public") == nova.url
    assert access.service_catalog.url_for(service_type="identity", interface="public") == keystone.url
    assert {entry["type"] for entry in access.service_catalog.catalog} >= {"identity", "compute"}


def test_wrong_password_is_refused(keystone: Keystone, openstack_project: Credentials) -> None:
    wrong = Credentials(**{**openstack_project.__dict__, "password": "not-the-password"})
    with pytest.raises(ks_exc.Unauthorized):
        wrong.session().get_token()


def test_nova_checks_tokens_with_keystone(nova: Nova, openstack_project: Credentials) -> None:
    assert requests.get(f"{nova.url}/flavors", headers={"X-Auth-Token": "bogus"}, timeout=30).status_code == 401
    assert requests.get(f"{nova.url}/flavors", timeout=30).status_code == 401
    token = openstack_project.session().get_token()
    response = requests.get(f"{nova.url}/flavors", headers={"X-Auth-Token": token}, timeout=30)
    assert response.status_code == 200


def test_flavors_and_images(nova: Nova, openstack_project: Credentials) -> None:
    nova_api = compute(openstack_project)
    flavors = {f["name"]: f for f in nova_api.get("/flavors/detail").json()["flavors"]}
    assert {"m1.tiny", "m1.small", "m1.medium", "m1.large", "m1.xlarge"} <= set(flavors)
    assert flavors["m1.tiny"]["vcpus"] == 1
    images = nova_api.get("/images", microversion="2.35").json()["images"]
    assert IMAGE in {image["id"] for image in images}


def test_server_lifecycle(nova: Nova, openstack_project: Credentials) -> None:
    nova_api = compute(openstack_project)
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    server_id = boot(nova_api, name)

    server = wait_status(nova_api, server_id, "ACTIVE")
    assert server["name"] == name
    assert server["tenant_id"] == openstack_project.project_id
    assert server["OS-EXT-AZ:availability_zone"] == "nova"
    # "auto": the project's only network is Neutron's shared "private", and the port is the project's own.
    (address,) = server["addresses"]["private"]
    assert ipaddress.ip_address(address["addr"]) in ipaddress.ip_network("10.0.0.0/16")
    (port,) = ports_of(openstack_project, server_id)
    assert (port["project_id"], port["fixed_ips"][0]["ip_address"]) == (openstack_project.project_id, address["addr"])
    listed = nova_api.get("/servers").json()["servers"]
    assert server_id in {s["id"] for s in listed}

    action(nova_api, server_id, {"os-stop": None})
    wait_status(nova_api, server_id, "SHUTOFF")
    action(nova_api, server_id, {"os-start": None})
    wait_status(nova_api, server_id, "ACTIVE")
    action(nova_api, server_id, {"reboot": {"type": "SOFT"}})
    wait_status(nova_api, server_id, "ACTIVE")
    action(nova_api, server_id, {"reboot": {"type": "HARD"}})
    wait_status(nova_api, server_id, "ACTIVE")

    assert nova_api.delete(f"/servers/{server_id}").status_code == 204
    wait_gone(nova_api, server_id)


def test_projects_are_isolated_on_the_shared_network(keystone: Keystone, nova: Nova) -> None:
    first, second = keystone.create_project_user(), keystone.create_project_user()
    try:
        api_one, api_two = compute(first), compute(second)
        one, two = boot(api_one, "one"), boot(api_two, "two")
        three = boot(api_one, "three")
        addresses = [
            wait_status(api, server_id, "ACTIVE")["addresses"]["private"][0]["addr"]
            for api, server_id in ((api_one, one), (api_two, two), (api_one, three))
        ]
        assert len(set(addresses)) == 3  # one subnet, an address each
        assert {s["id"] for s in api_one.get("/servers").json()["servers"]} == {one, three}
        assert api_two.get(f"/servers/{one}", raise_exc=False).status_code == 404
        assert ports_of(second, one) == [] and len(ports_of(first, one)) == 1
        for api, server_id in ((api_one, one), (api_two, two), (api_one, three)):
            api.delete(f"/servers/{server_id}")
            wait_gone(api, server_id)
        # Nova removes the ports it made.
        assert ports_of(first, one) == [] and ports_of(second, two) == []
    finally:
        keystone.delete_project_user(first)
        keystone.delete_project_user(second)


def test_concurrent_requests(nova: Nova, openstack_project: Credentials) -> None:
    """The gateway's workers call Nova at once: boots, listings and deletes must all go through."""
    nova_api = compute(openstack_project)
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda i: boot(nova_api, f"many-{i}"), range(6)))
        listings = list(pool.map(lambda _: nova_api.get("/servers/detail").status_code, range(16)))
        assert listings == [200] * 16
        for server_id in ids:
            wait_status(nova_api, server_id, "ACTIVE")
        assert all(code == 204 for code in pool.map(lambda i: nova_api.delete(f"/servers/{i}").status_code, ids))
    for server_id in ids:
        wait_gone(nova_api, server_id)


def test_venvs_are_cached_and_reported(keystone: Keystone, nova: Nova) -> None:
    names = ("keystone", "neutron", "cinder", "nova")  # the nova fixture starts Neutron and Cinder first
    built = {name: build_seconds(venv_path(name)) for name in names}
    assert all(seconds is not None for seconds in built.values()), f"venvs without a completion marker: {built}"
    print("venv build: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in built.items()))
    print(f"start-up: keystone {keystone.startup_seconds:.1f}s, nova {nova.startup_seconds:.1f}s")


def test_stop_ends_every_process(tmp_path: Any) -> None:
    server = start_keystone(tmp_path / "keystone", progress=lambda message: None)
    pgid = server.process.pid
    assert requests.get(server.url, timeout=10).status_code == 200
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url, timeout=5)
