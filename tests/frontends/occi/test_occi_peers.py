"""The OCCI scenario through the real Keystone, Nova (fake virt driver), Cinder and Neutron behind the
``openstack`` backend, in every rendering; and Keystone tokens: a request without credentials is challenged
with ``WWW-Authenticate: Keystone uri=...``, a token of a bound project is its tenant's caller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import scenario
from gateway_process import GatewayProcess
from occiclient import OCCI_JSON, TEXT_PLAIN, Doc, Occi
from peers.openstack.gateway import AUTH, BOOTABLE, keystone_identity, over_project
from scenario import COMPUTE, RENDERINGS, action


@pytest.fixture(scope="module")
def openstack_gateway(nova, keystone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway over a fresh project of the peers for the module's renderings (the project is removed after)."""
    tmp = tmp_path_factory.mktemp("occi-openstack")
    creds = keystone.create_project_user()
    config = tmp / "gw.toml"
    config.write_text(over_project(creds, default_image=BOOTABLE))
    gw = None
    try:
        gw = GatewayProcess(config, data_dir=tmp / "data")
        yield gw
    finally:
        if gw is not None:
            gw.stop()
        keystone.delete_project_user(creds)


@pytest.mark.parametrize("media", RENDERINGS)
def test_occi_scenario_on_openstack(openstack_gateway: GatewayProcess, media: str) -> None:
    gw = openstack_gateway
    ec2 = gw.client(*AUTH, region="os-1")
    images, flavors = ec2.describe_images()["Images"], ec2.describe_instance_types()["InstanceTypes"]
    o = Occi(gw.url, media, auth=AUTH)
    categories = scenario.query_interface(o, len(images), len(flavors))
    for term in ("start", "stop", "restart"):
        assert action("compute", term) in categories, term
    scenario.computes_storage_network_links(o, image=BOOTABLE)


def test_keystone_tokens_log_in_to_occi(keystone, tmp_path: Path) -> None:
    """No credentials: 401 naming the Keystone; a token of the bound project: its tenant; a bad token: 401."""
    member = keystone.create_project_user()
    config = tmp_path / "gw.toml"
    config.write_text(keystone_identity(keystone, member))
    gw = GatewayProcess(config, data_dir=tmp_path / "data", workers=1)
    try:
        for media in (TEXT_PLAIN, OCCI_JSON):
            bare = requests.get(f"{gw.url}/occi/compute/", headers={"Accept": media}, timeout=30)
            assert bare.status_code == 401, bare.text[:300]
            assert bare.headers["WWW-Authenticate"] == f"Keystone uri='{keystone.url}'"
            assert bare.headers["Content-Type"].split(";")[0] == media
        token = member.session().get_token()
        o = Occi(gw.url, TEXT_PLAIN, auth=None)
        o.session.headers["X-Auth-Token"] = token
        assert COMPUTE in o.category_ids(o.ok("GET", "-/"))
        made = o.ok("POST", "compute/", Doc(COMPUTE), status=201).headers["Location"]
        assert made in o.locations(o.ok("GET", "compute/"))
        o.ok("DELETE", made, status=204)
        bad = requests.get(f"{gw.url}/occi/compute/", headers={"X-Auth-Token": "not-a-token"}, timeout=30)
        assert bad.status_code == 401 and bad.headers["WWW-Authenticate"].startswith("Keystone uri=")
    finally:
        gw.stop()
        keystone.delete_project_user(member)
