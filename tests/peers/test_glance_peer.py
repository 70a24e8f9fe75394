"""Smoke tests of the Glance peer: Keystone tokens it accepts, an image's upload, listing and deletion."""

from __future__ import annotations

import hashlib

import pytest
import requests
from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ka_exc
from peers.openstack import Credentials, Glance, Keystone

# The first test to ask for Glance may build its venv (half a minute on a cold machine).
pytestmark = pytest.mark.timeout(900)

HTTP_TIMEOUT = 30.0


def image_api(credentials: Credentials, glance: Glance) -> adapter.Adapter:
    """A client of the image endpoint found in the user's catalog, as any OpenStack SDK would make one."""
    return adapter.Adapter(credentials.session(), service_type="image", interface="public", region_name=glance.region)


def test_glance_is_in_its_own_region_of_the_catalog(
    keystone: Keystone, glance: Glance, openstack_project: Credentials
) -> None:
    session = openstack_project.session()
    assert session.get_endpoint(service_type="image", interface="public", region_name=glance.region) == glance.url
    # RegionOne stays compute-only: accounts there keep reading images through Nova's proxy.
    with pytest.raises(ka_exc.EndpointNotFound):
        session.get_endpoint(service_type="image", interface="public", region_name=keystone.region)


def test_tokens_are_checked(glance: Glance, openstack_project: Credentials) -> None:
    assert requests.get(f"{glance.url}/v2/images", timeout=HTTP_TIMEOUT).status_code == 401
    bogus = {"X-Auth-Token": "not-a-token"}
    assert requests.get(f"{glance.url}/v2/images", headers=bogus, timeout=HTTP_TIMEOUT).status_code == 401
    token = openstack_project.session().get_token()
    listing = requests.get(f"{glance.url}/v2/images", headers={"X-Auth-Token": token}, timeout=HTTP_TIMEOUT)
    assert listing.status_code == 200 and listing.json()["images"] == []


def test_upload_list_download_delete(glance: Glance, openstack_project: Credentials) -> None:
    api = image_api(openstack_project, glance)
    data = b"cloudgate test image\n" * 512
    body = {"name": "smoke", "disk_format": "raw", "container_format": "bare", "visibility": "private"}
    image = api.post("/v2/images", json=body).json()
    assert (image["status"], image["owner"]) == ("queued", openstack_project.project_id)

    headers = {"Content-Type": "application/octet-stream"}
    assert api.put(f"/v2/images/{image['id']}/file", data=data, headers=headers).status_code == 204
    shown = api.get(f"/v2/images/{image['id']}").json()
    assert (shown["status"], shown["size"], shown["visibility"]) == ("active", len(data), "private")
    assert shown["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert [i["id"] for i in api.get("/v2/images").json()["images"]] == [image["id"]]
    assert api.get(f"/v2/images/{image['id']}/file").content == data

    assert api.delete(f"/v2/images/{image['id']}").status_code == 204
    assert api.get(f"/v2/images/{image['id']}", raise_exc=False).status_code == 404
    assert api.get("/v2/images").json()["images"] == []


def test_private_images_stay_in_their_project(keystone: Keystone, glance: Glance) -> None:
    owner, other = keystone.create_project_user(), keystone.create_project_user()
    try:
        api = image_api(owner, glance)
        body = {"name": "mine", "disk_format": "raw", "container_format": "bare", "visibility": "private"}
        image = api.post("/v2/images", json=body).json()
        assert image_api(other, glance).get("/v2/images").json()["images"] == []
        api.delete(f"/v2/images/{image['id']}")
    finally:
        keystone.delete_project_user(owner)
        keystone.delete_project_user(other)
