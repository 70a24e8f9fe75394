"""The OCCI scenario through the real Keystone, Nova (fake virt driver), Cinder and Neutron behind the
``openstack`` backend, in every rendering; and Keystone tokens: a request without credentials is challenged
with ``WWW-Authenticate: Keystone uri=...``, a token of a bound project is its tenant's caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import scenario
from gateway_process import GatewayProcess
from occiclient import OCCI_JSON, TEXT_PLAIN, Doc, Occi
from scenario import COMPUTE, RENDERINGS, action

AUTH = ("alice", "alice-secret")
#: Nova's fake Glance names most images alike, and some of those ask for a trait the fake hypervisor lacks
#: (ephemeral encryption: NoValidHost); this one boots, so it is the tenant's default and the os_tpl used
IMAGE = "fakeimage7"

OPENSTACK_CONFIG = """
[gateway]
workers = 2
threads = 4

[translator]
cache_ttl = 2.0
transitional_cache_ttl = 0.5
retry_attempts = 2
retry_initial_wait = 0.05
retry_max_wait = 0.2

[backends.os]
driver = "openstack"
auth_url = "{auth_url}"
region_name = "{region}"
nova_proxies = ["images"]
network = "private"
timeout = 20
delete_wait = 5

[tenants.acme]
account_id = "123456789012"
default_image = "{image}"
[tenants.acme.regions.os-1]
backend = "os"
zones = ["nova"]
username = "{username}"
password = "{password}"
project_name = "{project}"
user_domain_name = "{user_domain}"
project_domain_name = "{project_domain}"

[[users]]
access_key = "alice"
secret = "alice-secret"
tenant = "acme"
role = "admin"
"""

KEYSTONE_CONFIG = """
[gateway]
workers = 1
threads = 4

[backends.sim]
driver = "simulator"
boot_delay = 0.1

[tenants.acme]
account_id = "123456789012"
keystone_project_id = "{project_id}"
[tenants.acme.regions.local-1]
backend = "sim"

[identity.keystone]
auth_url = "{auth_url}"
username = "{username}"
password = "{password}"
project_name = "{project}"
"""


@pytest.fixture(scope="module")
def openstack_gateway(nova, keystone, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """One gateway over a fresh project of the peers for the module's renderings (the project is removed after)."""
    tmp = tmp_path_factory.mktemp("occi-openstack")
    creds = keystone.create_project_user()
    config = tmp / "gw.toml"
    config.write_text(
        OPENSTACK_CONFIG.format(
            auth_url=creds.auth_url,
            region=creds.region_name,
            username=creds.username,
            password=json.dumps(creds.password)[1:-1],
            project=creds.project_name,
            user_domain=creds.user_domain_name,
            project_domain=creds.project_domain_name,
            image=IMAGE,
        )
    )
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
    scenario.computes_storage_network_links(o, image=IMAGE)


def test_keystone_tokens_log_in_to_occi(keystone, tmp_path: Path) -> None:
    """No credentials: 401 naming the Keystone; a token of the bound project: its tenant; a bad token: 401."""
    member = keystone.create_project_user()
    admin = keystone.admin
    config = tmp_path / "gw.toml"
    config.write_text(
        KEYSTONE_CONFIG.format(
            project_id=member.project_id,
            auth_url=keystone.url,
            username=admin.username,
            password=json.dumps(admin.password)[1:-1],
            project=admin.project_name,
        )
    )
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
