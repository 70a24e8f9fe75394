"""Shared setup of the tests that run a real ``cloudgate serve`` over the OpenNebula and CloudStack simulators:
both simulators seeded alike, a gateway config with two tenants per cloud (two cloud users, one region each),
and the EC2 helpers the tests share.

    with running_clouds(tmp, timeout=1.0) as setup:   # the backends' per-call timeout, in seconds
        client = ec2(setup, "one-a", "one-1")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyone
from botocore.config import Config
from gateway_process import GatewayProcess
from peers.cloudstack import CloudStackSimulator
from peers.opennebula import OpenNebulaSimulator, Timings

ONE_IMAGE, CS_IMAGE = "debian-12", "Ubuntu 22.04"
#: seconds a test waits for a resource to reach a state (bounded loops only)
WAIT = 30.0
CLOUDS = ["opennebula", "cloudstack"]

CS_CONFIG: dict[str, Any] = {
    "accounts": [
        {"name": "alice", "apikey": "ak", "secretkey": "sk"},
        {"name": "bob", "apikey": "bk", "secretkey": "bs"},
    ],
    "zones": [{"name": "zone1", "networktype": "Advanced", "securitygroupsenabled": True}],
    "templates": [{"name": CS_IMAGE, "ostypename": "Ubuntu 22.04 LTS", "size_gb": 8, "zone": "zone1"}],
    "serviceofferings": [
        {"name": "Small Instance", "cpunumber": 1, "cpuspeed": 1000, "memory": 1024},
        {"name": "Medium Instance", "cpunumber": 2, "cpuspeed": 1000, "memory": 4096},
    ],
}

CONFIG = """
[gateway]
workers = 2
threads = 4

[translator]
cache_ttl = 1.0
transitional_cache_ttl = 0.2
retry_attempts = {retry_attempts}
retry_initial_wait = 0.01
retry_max_wait = 0.05
# These suites inject faults into most calls and retry at once on a 503: breakers off (they would answer the
# retries at once); tests/cluster/test_cloud_outage.py is the breaker's test.
breaker_failures = 0

[backends.one]
driver = "opennebula"
endpoint = "{one_url}"
timeout = {timeout}
public_network = "public"

[backends.cs]
driver = "cloudstack"
url = "{cs_url}"
timeout = {timeout}
poll_interval = 0.05
job_timeout = 30
expunge = true

[tenants.one-a]
account_id = "111111111111"
default_image = "{one_image}"
[tenants.one-a.regions.one-1]
backend = "one"
zones = ["one-a"]
session = "alice:alice-pw"

[tenants.one-b]
account_id = "222222222222"
default_image = "{one_image}"
[tenants.one-b.regions.one-1]
backend = "one"
zones = ["one-a"]
session = "bob:bob-pw"

[tenants.cs-a]
account_id = "333333333333"
default_image = "{cs_image}"
[tenants.cs-a.regions.cs-1]
backend = "cs"
zones = ["zone1"]
api_key = "ak"
secret_key = "sk"

[tenants.cs-b]
account_id = "444444444444"
default_image = "{cs_image}"
[tenants.cs-b.regions.cs-1]
backend = "cs"
zones = ["zone1"]
api_key = "bk"
secret_key = "bs"
{users}
{extra}
"""


def users() -> str:
    return "".join(
        f'\n[[users]]\naccess_key = "{t}"\nsecret = "{t}-secret"\ntenant = "{t}"\nrole = "admin"\n'
        for t in ("one-a", "one-b", "cs-a", "cs-b")
    )


@dataclass
class Cloud:
    """One cloud behind the gateway: its EC2 region and zone, its two tenants, and its fault knob (the
    simulator's own keywords: OpenNebula's ``drop`` runs the call and loses the answer, CloudStack's ``drop``
    never runs it and its ``lose`` does)."""

    region: str
    zone: str
    image: str
    tenant: str
    other: str
    faults: Callable[..., None]
    #: the backend offers networks (its VMs' NICs name one of them)
    networks: bool = True
    #: a tenant can make networks there (else a new one is 501)
    network_create: bool = False
    #: refuse every machine create until called again with False (the simulator's own fault knob)
    refuse_launches: Callable[[bool], None] = lambda refuse: None


@dataclass
class Setup:
    gw: GatewayProcess
    clouds: dict[str, Cloud]
    one: OpenNebulaSimulator
    cs: CloudStackSimulator


def seed_opennebula(one: OpenNebulaSimulator) -> None:
    """Two users, a private and a public network (addresses), an image and two flavor templates."""
    one.add_user("alice", "alice-pw")
    one.add_user("bob", "bob-pw")
    one.add_vnet("private", "10.0.0.10", 200)
    public = one.add_vnet("public", "198.51.100.2", 8)
    pyone.OneServer(one.url, session=one.admin_session).vn.chmod(public, -1, -1, -1, -1, -1, -1, -1, 1, -1)
    one.add_image(ONE_IMAGE, size_mb=2048)
    nic = f'NIC=[NETWORK="private"]\nDISK=[IMAGE="{ONE_IMAGE}"]\nCONTEXT=[NETWORK="YES"]'
    one.add_template("gw-small", f'CPU="0.5"\nVCPU="1"\nMEMORY="512"\n{nic}', GW_FLAVOR="small")
    one.add_template("gw-medium", f'CPU="2"\nVCPU="2"\nMEMORY="4096"\n{nic}', GW_FLAVOR="medium")


@contextmanager
def running_clouds(
    tmp: Path, *, timeout: float = 5.0, retry_attempts: int = 3, extra_config: str = ""
) -> Iterator[Setup]:
    """Both simulators and a gateway over them (``timeout``: each backend's per-call timeout; ``extra_config``:
    more TOML for the gateway); all stopped after."""
    one = OpenNebulaSimulator(admin_password="one-admin", timings=Timings())
    cs = gw = None
    try:
        seed_opennebula(one)
        cs = CloudStackSimulator(tmp, CS_CONFIG)
        config = tmp / "gw.toml"
        config.write_text(
            CONFIG.format(
                one_url=one.url,
                cs_url=cs.endpoint,
                one_image=ONE_IMAGE,
                cs_image=CS_IMAGE,
                users=users(),
                timeout=timeout,
                retry_attempts=retry_attempts,
                extra=extra_config,
            )
        )
        gw = GatewayProcess(config, data_dir=tmp / "data")
        clouds = {
            "opennebula": Cloud(
                "one-1",
                "one-a",
                ONE_IMAGE,
                "one-a",
                "one-b",
                one.faults.set,
                network_create=True,
                refuse_launches=lambda on: one.faults.set(
                    fail=1.0 if on else 0.0, methods=("one.template.instantiate",)
                ),
            ),
            "cloudstack": Cloud(
                "cs-1",
                "zone1",
                CS_IMAGE,
                "cs-a",
                "cs-b",
                cs.set_faults,
                network_create=True,
                refuse_launches=lambda on: cs.set_faults(
                    **({"fail": 1.0, "commands": ["deployVirtualMachine"]} if on else {})
                ),
            ),
        }
        yield Setup(gw, clouds, one, cs)
    finally:
        if gw is not None:
            gw.stop()
        if cs is not None:
            cs.stop()
        one.stop()


def ec2(s: Setup, tenant: str, region: str, **config: Any) -> Any:
    """A boto3 EC2 client of ``tenant``: one attempt a call unless ``config`` (botocore ``Config`` options) says."""
    options = {"retries": {"total_max_attempts": 1, "mode": "standard"}, **config}
    return boto3.client(
        "ec2",
        endpoint_url=s.gw.url,
        region_name=region,
        aws_access_key_id=tenant,
        aws_secret_access_key=f"{tenant}-secret",
        config=Config(**options),
    )


def wait_for(what: Callable[[], Any], until: Callable[[Any], bool], wait: float = WAIT) -> Any:
    """``what()`` once ``until`` holds for it, polled for at most ``wait`` seconds."""
    deadline = time.monotonic() + wait
    while True:
        value = what()
        if until(value):
            return value
        assert time.monotonic() < deadline, value
        time.sleep(0.2)


def instance_state(client: Any, instance_id: str) -> str:
    found = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return found["State"]["Name"]


def image_id(client: Any, name: str) -> str:
    return next(i["ImageId"] for i in client.describe_images()["Images"] if i.get("Name") == name)


def live_ids(client: Any) -> set[str]:
    """The instances of the client's tenant that are neither terminated nor on their way there."""
    return {
        i["InstanceId"]
        for r in client.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    }
