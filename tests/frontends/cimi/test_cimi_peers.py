"""The CIMI primer's scenario through real clouds' APIs: moto's EC2 server behind the ``ec2`` backend, and
the real Keystone and Nova (fake virt driver), Cinder, Glance and Neutron behind the ``openstack`` backend.
A cloud that goes away is CIMI's 503 with ``Retry-After``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cimiclient import JSON, XML, Cimi
from ec2_cloud_config import moto_account
from gateway_process import GatewayProcess
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer
from peers.openstack.gateway import BOOTABLE, keystone_identity, over_project
from primer import run_primer

MOTO_CONFIG = """
[gateway]
workers = 2
threads = 4

[translator]
cache_ttl = 2.0
transitional_cache_ttl = 0.2
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05
"""
TYPES = ("t3.micro", "t3.small", "m5.large")
MOTO_ACCOUNT: dict[str, Any] = {"zones": {"moto-1a": "us-east-1a", "moto-1b": "us-east-1b"}, "instance_types": TYPES}


@pytest.fixture(scope="module")
def moto_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, GatewayProcess]]:
    tmp = tmp_path_factory.mktemp("cimi-moto")
    moto = MotoServer(tmp)
    gw = None
    try:
        moto.register_image(moto.client(), "ubuntu-24.04")
        config = tmp / "gw.toml"
        config.write_text(MOTO_CONFIG + moto_account(moto.url, ACCESS_KEY, SECRET_KEY, **MOTO_ACCOUNT))
        gw = GatewayProcess(config, data_dir=tmp / "data")
        yield moto, gw
    finally:
        if gw is not None:
            gw.stop()
        moto.stop()


@pytest.mark.parametrize(("media", "version"), [(JSON, "2"), (XML, "2"), (JSON, "1"), (XML, "1")])
def test_primer_on_moto(moto_gateway: tuple[MotoServer, GatewayProcess], media: str, version: str) -> None:
    _, gw = moto_gateway
    run_primer(Cimi(gw.url, media, version, auth=("alice", "alice-secret")))


def test_moto_down_is_a_cimi_503(tmp_path: Path) -> None:
    moto = MotoServer(tmp_path)
    gw = None
    try:
        moto.register_image(moto.client(), "ubuntu-24.04")
        config = tmp_path / "gw.toml"
        config.write_text(
            MOTO_CONFIG.replace("cache_ttl = 2.0", "cache_ttl = 0.0")
            + moto_account(moto.url, ACCESS_KEY, SECRET_KEY, **MOTO_ACCOUNT)
        )
        gw = GatewayProcess(config, data_dir=tmp_path / "data")
        c = Cimi(gw.url, auth=("alice", "alice-secret"))
        assert c.get("machines").status == 200
        moto.stop()
        deadline = time.monotonic() + 30
        while (answer := c.get("machines")).status != 503:
            assert answer.status == 200 and time.monotonic() < deadline, answer.raw[:300]
            time.sleep(0.2)
        assert answer.headers["Retry-After"].isdigit() and answer.doc["status"] == 503
        xml = requests.get(
            f"{gw.url}/cimi/machineImages", auth=("alice", "alice-secret"), headers={"Accept": XML}, timeout=30
        )
        assert xml.status_code == 503 and b"<Error" in xml.content
    finally:
        if gw is not None:
            gw.stop()
        moto.stop()


@pytest.mark.parametrize(("media", "version"), [(JSON, "2"), (XML, "2"), (JSON, "1"), (XML, "1")])
def test_primer_on_openstack(nova, openstack_project, tmp_path: Path, media: str, version: str) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(over_project(openstack_project))
    gw = GatewayProcess(config, data_dir=tmp_path / "data")
    try:
        # Nova's fake virt driver boots only some of the peer Glance's images: name one it can run.
        run_primer(Cimi(gw.url, media, version, auth=("alice", "alice-secret")), image_name=BOOTABLE)
    finally:
        gw.stop()


def test_keystone_tokens_log_in_to_cimi(keystone, tmp_path: Path) -> None:
    """``X-Auth-Token``: a token of a project bound to a tenant is that tenant's caller; a bad token is 401."""
    member = keystone.create_project_user()
    config = tmp_path / "gw.toml"
    config.write_text(keystone_identity(keystone, member))
    gw = GatewayProcess(config, data_dir=tmp_path / "data", workers=1)
    try:
        token = member.session().get_token()
        answer = requests.get(f"{gw.url}/cimi/machineImages", headers={"X-Auth-Token": token}, timeout=30)
        assert answer.status_code == 200 and answer.json()["count"] >= 1
        bad = requests.get(f"{gw.url}/cimi/machineImages", headers={"X-Auth-Token": "not-a-token"}, timeout=30)
        assert bad.status_code == 401 and bad.json()["status"] == 401
    finally:
        gw.stop()
