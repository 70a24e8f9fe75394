"""The OpenNebula and CloudStack backends behind a real ``cloudgate serve``: the canonical lifecycle through the
EC2 (boto3), CIMI (the primer) and OCCI (the scenario) frontends on each simulator, two tenants per cloud that
are two cloud users and cannot see each other's machines, and transient faults that a client's retried
RunInstances with a ClientToken absorbs without a duplicate.

Each tenant holds one region, so CIMI and OCCI (which span a tenant's regions) see one cloud at a time."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import pyone
import pytest
from gateway_process import GatewayProcess
from peers.cloudstack import CloudStackSimulator
from peers.opennebula import OpenNebulaSimulator, Timings

FRONTENDS = Path(__file__).resolve().parents[1] / "frontends"
for _sub in ("cimi", "occi"):  # the CIMI and OCCI clients and scenarios live beside their frontends' tests
    if str(FRONTENDS / _sub) not in sys.path:
        sys.path.insert(0, str(FRONTENDS / _sub))

import scenario  # noqa: E402
from cimiclient import JSON, XML, Cimi  # noqa: E402
from occiclient import OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, Doc, Occi  # noqa: E402
from primer import run_primer  # noqa: E402

ONE_IMAGE, CS_IMAGE = "debian-12", "Ubuntu 22.04"
WAIT = 30.0

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
retry_attempts = 3
retry_initial_wait = 0.01
retry_max_wait = 0.05

[backends.one]
driver = "opennebula"
endpoint = "{one_url}"
timeout = 5
public_network = "public"

[backends.cs]
driver = "cloudstack"
url = "{cs_url}"
timeout = 5
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
"""


def users() -> str:
    return "".join(
        f'\n[[users]]\naccess_key = "{t}"\nsecret = "{t}-secret"\ntenant = "{t}"\nrole = "admin"\n'
        for t in ("one-a", "one-b", "cs-a", "cs-b")
    )


@dataclass
class Cloud:
    """One cloud behind the gateway: its EC2 region and zone, its two tenants, and its fault knob."""

    region: str
    zone: str
    image: str
    tenant: str
    other: str
    faults: Callable[..., None]
    #: the backend offers networks; CloudStack's does not, yet its VMs' NICs name their guest network
    networks: bool = True
    #: the backend makes networks (OpenNebula's: virtual networks of the tenant's user); else a new one is 501
    network_create: bool = False


@dataclass
class Setup:
    gw: GatewayProcess
    clouds: dict[str, Cloud]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("new-backends-gw")
    one = OpenNebulaSimulator(admin_password="one-admin", timings=Timings())
    cs = gw = None
    try:
        one.add_user("alice", "alice-pw")
        one.add_user("bob", "bob-pw")
        one.add_vnet("private", "10.0.0.10", 200)
        public = one.add_vnet("public", "198.51.100.2", 8)
        pyone.OneServer(one.url, session=one.admin_session).vn.chmod(public, -1, -1, -1, -1, -1, -1, -1, 1, -1)
        one.add_image(ONE_IMAGE, size_mb=2048)
        nic = f'NIC=[NETWORK="private"]\nDISK=[IMAGE="{ONE_IMAGE}"]\nCONTEXT=[NETWORK="YES"]'
        one.add_template("gw-small", f'CPU="0.5"\nVCPU="1"\nMEMORY="512"\n{nic}', GW_FLAVOR="small")
        one.add_template("gw-medium", f'CPU="2"\nVCPU="2"\nMEMORY="4096"\n{nic}', GW_FLAVOR="medium")
        cs = CloudStackSimulator(tmp, CS_CONFIG)
        config = tmp / "gw.toml"
        config.write_text(
            CONFIG.format(one_url=one.url, cs_url=cs.endpoint, one_image=ONE_IMAGE, cs_image=CS_IMAGE, users=users())
        )
        gw = GatewayProcess(config, data_dir=tmp / "data")
        clouds = {
            "opennebula": Cloud("one-1", "one-a", ONE_IMAGE, "one-a", "one-b", one.faults.set, network_create=True),
            "cloudstack": Cloud("cs-1", "zone1", CS_IMAGE, "cs-a", "cs-b", cs.set_faults, networks=False),
        }
        yield Setup(gw, clouds)
    finally:
        if gw is not None:
            gw.stop()
        if cs is not None:
            cs.stop()
        one.stop()


CLOUDS = ["opennebula", "cloudstack"]


def ec2(s: Setup, tenant: str, region: str) -> Any:
    return s.gw.client(tenant, f"{tenant}-secret", region)


def wait_for(what: Callable[[], Any], until: Callable[[Any], bool]) -> Any:
    deadline = time.monotonic() + WAIT
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
    return {
        i["InstanceId"]
        for r in client.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    }


@pytest.mark.parametrize("cloud", CLOUDS)
def test_ec2_lifecycle_and_tenant_isolation(setup: Setup, cloud: str) -> None:
    c = setup.clouds[cloud]
    mine, theirs = ec2(setup, c.tenant, c.region), ec2(setup, c.other, c.region)
    ran = mine.run_instances(ImageId=image_id(mine, c.image), MinCount=1, MaxCount=1)
    instance = ran["Instances"][0]["InstanceId"]
    try:
        wait_for(lambda: instance_state(mine, instance), lambda s: s == "running")
        with pytest.raises(botocore.exceptions.ClientError) as hidden:
            theirs.describe_instances(InstanceIds=[instance])
        assert hidden.value.response["Error"]["Code"] == "InvalidInstanceID.NotFound"
        assert instance not in live_ids(theirs)

        mine.stop_instances(InstanceIds=[instance])
        wait_for(lambda: instance_state(mine, instance), lambda s: s == "stopped")
        mine.start_instances(InstanceIds=[instance])
        wait_for(lambda: instance_state(mine, instance), lambda s: s == "running")

        volume = mine.create_volume(Size=1, AvailabilityZone=c.zone)["VolumeId"]
        describe_volume = lambda: mine.describe_volumes(VolumeIds=[volume])["Volumes"][0]  # noqa: E731
        wait_for(describe_volume, lambda v: v["State"] == "available")
        with pytest.raises(botocore.exceptions.ClientError):
            theirs.describe_volumes(VolumeIds=[volume])
        mine.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/vdb")
        attached = wait_for(describe_volume, lambda v: v["State"] == "in-use")
        assert attached["Attachments"][0]["InstanceId"] == instance
        mine.detach_volume(VolumeId=volume)
        wait_for(describe_volume, lambda v: v["State"] == "available")
        mine.delete_volume(VolumeId=volume)
    finally:
        mine.terminate_instances(InstanceIds=[instance])
    wait_for(lambda: live_ids(mine), lambda ids: instance not in ids)


@pytest.mark.parametrize(("media", "version"), [(JSON, "2"), (XML, "1")])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_cimi_primer(setup: Setup, cloud: str, media: str, version: str) -> None:
    c = setup.clouds[cloud]
    run_primer(Cimi(setup.gw.url, media, version, auth=(c.tenant, f"{c.tenant}-secret")), with_system=False)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_other_tenants_see_nothing_through_cimi_and_occi(setup: Setup, cloud: str) -> None:
    c = setup.clouds[cloud]
    mine = ec2(setup, c.tenant, c.region)
    cimi = Cimi(setup.gw.url, JSON, "2", auth=(c.tenant, f"{c.tenant}-secret"))
    before = {m["id"] for m in cimi.members("machines", "machines")}
    instance = mine.run_instances(ImageId=image_id(mine, c.image), MinCount=1, MaxCount=1)["Instances"][0]
    try:
        (href,) = {m["id"] for m in cimi.members("machines", "machines")} - before
        gid = href.rsplit("/", 1)[1]
        other_cimi = Cimi(setup.gw.url, JSON, "2", auth=(c.other, f"{c.other}-secret"))
        assert other_cimi.get(f"machines/{gid}").status == 404
        assert gid not in {m["id"].rsplit("/", 1)[1] for m in other_cimi.members("machines", "machines")}
        other_occi = Occi(setup.gw.url, TEXT_PLAIN, auth=(c.other, f"{c.other}-secret"))
        assert other_occi.call("GET", f"compute/{gid}").status == 404
        assert not any(loc.endswith(gid) for loc in other_occi.locations(other_occi.ok("GET", "compute/")))
    finally:
        mine.terminate_instances(InstanceIds=[instance["InstanceId"]])


@pytest.mark.parametrize("media", [TEXT_PLAIN, TEXT_OCCI, OCCI_JSON])
@pytest.mark.parametrize("cloud", CLOUDS)
def test_occi_scenario(setup: Setup, cloud: str, media: str) -> None:
    """The OCCI scenario reduced to what these clouds let a tenant do: a new network where the backend makes them
    (501 where it does not), and the compute linked to a network the cloud lists."""
    c = setup.clouds[cloud]
    o = Occi(setup.gw.url, media, auth=(c.tenant, f"{c.tenant}-secret"))
    categories = o.categories(o.ok("GET", "-/"))
    os_tpl = next(
        k for k in categories if k.startswith(scenario.OS_TPL) and scenario.title(o, categories[k]) == c.image
    )
    resource_tpl = sorted(k for k in categories if k.startswith(scenario.RESOURCE_TPL))[0]
    before = set(o.locations(o.ok("GET", "compute/")))
    made: list[str] = []
    try:
        for doc in (Doc(scenario.COMPUTE), Doc(scenario.COMPUTE, mixins=[os_tpl, resource_tpl])):
            made.append(o.ok("POST", "compute/", doc, status=201).headers["Location"])
        first = made[0]
        assert os_tpl in scenario.wait_state(o, first, "active").mixins  # the tenant's default image
        assert set(scenario.wait_state(o, made[1], "active").mixins) >= {os_tpl, resource_tpl}
        for term, state in (("stop", "inactive"), ("start", "active")):
            o.ok("POST", f"{first}?action={term}", Doc(action=scenario.action("compute", term)))
            scenario.wait_state(o, first, state)
        start = Doc(action=scenario.action("compute", "start"))
        assert o.call("POST", f"{first}?action=start", start).status == 409

        new_network = Doc(
            scenario.NETWORK, mixins=[scenario.IPNETWORK], attributes={"occi.network.address": "10.9.0.0/16"}
        )
        created = o.call("POST", "network/", new_network)
        assert created.status == (201 if c.network_create else 501)
        if c.network_create:
            made.append(created.headers["Location"])
        networks = set(o.locations(o.ok("GET", "network/")))
        storage = o.ok("POST", "storage/", Doc(scenario.STORAGE, attributes={"occi.storage.size": 1.0}), status=201)
        made.append(storage.headers["Location"])
        o.wait(made[-1], "occi.storage.state", "online")
        slink = o.ok("POST", "storagelink/", Doc(scenario.STORAGELINK, source=first, target=made[-1]), status=201)
        targets = {(link.kind, link.target) for link in o.get(first).links}
        assert (scenario.STORAGELINK, made[-1]) in targets
        interfaces = {target for kind, target in targets if kind == scenario.NETWORKINTERFACE}
        assert interfaces and (not c.networks or interfaces <= networks), (interfaces, networks)
        o.ok("DELETE", slink.headers["Location"], status=204)
        assert made[-1] not in {link.target for link in o.get(first).links}
        for location in reversed(made[:]):
            o.ok("DELETE", location, status=204)
            made.remove(location)
        assert o.call("GET", first).status == 404
    finally:
        for location in made:
            o.call("DELETE", location)
    assert set(o.locations(o.ok("GET", "compute/"))) == before


@pytest.mark.parametrize("cloud", CLOUDS)
def test_retried_run_with_client_token_under_faults_makes_one_instance(setup: Setup, cloud: str) -> None:
    c = setup.clouds[cloud]
    mine = ec2(setup, c.tenant, c.region)
    image = image_id(mine, c.image)
    before = live_ids(mine)
    token = f"{cloud}-faulty-run"
    answers: list[str] = []
    if cloud == "opennebula":
        c.faults(drop=0.15, fail=0.25, seed=7)
    else:
        c.faults(lose=0.15, fail=0.25, seed=7)
    try:
        for _ in range(30):
            try:
                ran = mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
            except botocore.exceptions.ClientError as e:
                answers.append(e.response["Error"]["Code"])
                continue
            answers.append(ran["Instances"][0]["InstanceId"])
            break
    finally:
        c.faults()
    made = answers[-1]
    assert made.startswith("i-"), answers
    again = mine.run_instances(ImageId=image, MinCount=1, MaxCount=1, ClientToken=token)
    assert again["Instances"][0]["InstanceId"] == made
    try:
        wait_for(lambda: instance_state(mine, made), lambda s: s == "running")
        assert live_ids(mine) - before == {made}, answers
    finally:
        mine.terminate_instances(InstanceIds=[made])
    wait_for(lambda: live_ids(mine), lambda ids: made not in ids)
