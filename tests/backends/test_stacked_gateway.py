"""A gateway stacked on a gateway: cloudgate's own EC2 frontend as the cloud behind the ``ec2`` backend.

Gateway A serves the simulator (the usual test gateway, tenant ``demo``). Gateway B is a second
``cloudgate serve`` whose only backend is ``ec2`` with A's URL and A's ``demo`` credentials, its region
``stack-1`` mapped onto A's ``local-1`` with zone names of its own. boto3 drives B; A shows the result.
The shared contract also runs with the EC2 backend pointed straight at A.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from backend_contract import BackendContract, by_id, raises, settle
from botocore.exceptions import ClientError
from gateway_process import GatewayProcess, StartGateway

from backends.ec2 import EC2Backend, machines
from translator.backend import AccountConfig, BackendServices
from translator.errors import Unsupported
from translator.model import (
    InterfaceSpec,
    Limits,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    VolumeUpdate,
)

REPO = Path(__file__).resolve().parents[2]
ZONES = ("stack-1a", "stack-1b")
ZONE_MAP = {"stack-1a": "local-1a", "stack-1b": "local-1b"}

B_CONFIG = """
[gateway]
workers = 2
threads = 4

[translator]
cache_ttl = 5.0
transitional_cache_ttl = 0.2
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05

[backends.upstream]
driver = "ec2"
endpoint_url = "{a_url}"
aws_region = "local-1"
image_owners = ["self", "amazon"]
timeout = 20

[tenants.stack]
account_id = "333333333333"
[tenants.stack.regions.stack-1]
backend = "upstream"
zones = ["stack-1a", "stack-1b"]
zone_map = {{ "stack-1a" = "local-1a", "stack-1b" = "local-1b" }}
access_key_id = "demo"
secret_access_key = "{secret}"

[[users]]
access_key = "stacker"
secret = "stacker-secret"
tenant = "stack"
role = "admin"
"""


@pytest.fixture(scope="module")
def gateway_a(start_gateway: StartGateway) -> GatewayProcess:
    return start_gateway()


def _config_b(tmp: Path, a: GatewayProcess, secret: str = "demo-secret") -> Path:
    path = tmp / "b.toml"
    path.write_text(B_CONFIG.format(a_url=a.url, secret=secret))
    return path


@pytest.fixture(scope="module")
def gateway_b(gateway_a: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """B on an embedded Redis of its own (the shared test Redis is flushed by other fixtures)."""
    tmp = tmp_path_factory.mktemp("gw-b")
    gw = GatewayProcess(_config_b(tmp, gateway_a), data_dir=tmp / "data")
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def b(gateway_b: GatewayProcess) -> Any:
    return gateway_b.client("stacker", "stacker-secret", region="stack-1")


@pytest.fixture(scope="module")
def a(gateway_a: GatewayProcess) -> Any:
    return gateway_a.client()


def a_instance(a: Any, private_ip: str) -> dict[str, Any]:
    """A's instance with this private address (B's ids are B's own, derived from A's)."""
    found = [
        i
        for r in a.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i.get("PrivateIpAddress") == private_ip
    ]
    assert len(found) == 1, found
    return found[0]


def b_state(b: Any, instance_id: str) -> str:
    return b.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["State"]["Name"]


# ---------------------------------------------------------------------------------------------------


def test_b_offers_a_catalogue_under_its_own_zone_names(a: Any, b: Any) -> None:
    zones = b.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["State"]) for z in zones] == [("stack-1a", "available"), ("stack-1b", "available")]
    assert {i["Name"] for i in b.describe_images()["Images"]} == {i["Name"] for i in a.describe_images()["Images"]}
    b_types = {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in b.describe_instance_types()["InstanceTypes"]}
    a_types = {t["InstanceType"]: t["VCpuInfo"]["DefaultVCpus"] for t in a.describe_instance_types()["InstanceTypes"]}
    assert b_types == a_types


def test_instance_launched_through_b_lives_in_a(a: Any, b: Any) -> None:
    image = next(i["ImageId"] for i in b.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")
    launched = b.run_instances(
        ImageId=image, InstanceType="t3.small", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "stack-1b"}
    )["Instances"][0]
    iid = launched["InstanceId"]
    assert launched["Placement"]["AvailabilityZone"] == "stack-1b"
    settle(lambda: b_state(b, iid), lambda s: s == "running")
    mine = b.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    theirs = a_instance(a, mine["PrivateIpAddress"])
    assert theirs["State"]["Name"] == "running"
    assert theirs["InstanceType"] == "t3.small"
    assert theirs["Placement"]["AvailabilityZone"] == "local-1b"
    assert theirs["InstanceId"] != iid  # B names it by B's own id, derived from A's

    for action, settled in (("stop_instances", "stopped"), ("start_instances", "running")):
        getattr(b, action)(InstanceIds=[iid])
        settle(lambda: a_instance(a, mine["PrivateIpAddress"])["State"]["Name"], lambda s, want=settled: s == want)
        settle(lambda: b_state(b, iid), lambda s, want=settled: s == want)
    b.reboot_instances(InstanceIds=[iid])
    settle(lambda: b_state(b, iid), lambda s: s == "running")
    b.terminate_instances(InstanceIds=[iid])
    settle(lambda: a_instance(a, mine["PrivateIpAddress"])["State"]["Name"], lambda s: s == "terminated")
    with pytest.raises(ClientError) as info:
        b.start_instances(InstanceIds=[iid])
    assert info.value.response["Error"]["Code"] == "IncorrectInstanceState"


def test_tags_through_b_are_tags_in_a(a: Any, b: Any) -> None:
    """The ec2 backend keeps tags in the cloud (NATIVE_TAGS): launch tags and CreateTags/DeleteTags reach A."""
    image = next(i["ImageId"] for i in b.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")
    launched = b.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "suite", "Value": "stacked"}]}],
    )["Instances"][0]
    iid = launched["InstanceId"]
    settle(lambda: b_state(b, iid), lambda s: s == "running")
    mine = b.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in mine["Tags"]} == {"suite": "stacked"}
    b.create_tags(Resources=[iid], Tags=[{"Key": "team", "Value": "blue"}])
    b.delete_tags(Resources=[iid], Tags=[{"Key": "suite"}])
    theirs = a_instance(a, mine["PrivateIpAddress"])
    assert {t["Key"]: t["Value"] for t in theirs["Tags"]} == {"team": "blue"}
    found = b.describe_instances(Filters=[{"Name": "tag:team", "Values": ["blue"]}])["Reservations"]
    assert [i["InstanceId"] for r in found for i in r["Instances"]] == [iid]
    b.terminate_instances(InstanceIds=[iid])


def test_volume_through_b_attaches_in_a(a: Any, b: Any) -> None:
    image = b.describe_images()["Images"][0]["ImageId"]
    iid = b.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "stack-1a"}
    )["Instances"][0]["InstanceId"]
    settle(lambda: b_state(b, iid), lambda s: s == "running")
    vol = b.create_volume(Size=3, AvailabilityZone="stack-1a")["VolumeId"]
    settle(lambda: b.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"], lambda s: s == "available")
    b.attach_volume(VolumeId=vol, InstanceId=iid, Device="/dev/sdf")
    settle(lambda: b.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"], lambda s: s == "in-use")
    private_ip = b.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
    a_iid = a_instance(a, private_ip)["InstanceId"]
    attached = {(t["InstanceId"], t["Device"]) for v in a.describe_volumes()["Volumes"] for t in v["Attachments"]}
    in_a = [
        v
        for v in a.describe_volumes()["Volumes"]
        if any((t["InstanceId"], t["Device"]) == (a_iid, "/dev/sdf") for t in v["Attachments"])
    ]
    assert len(in_a) == 1 and in_a[0]["AvailabilityZone"] == "local-1a" and in_a[0]["Size"] == 3, attached
    b.detach_volume(VolumeId=vol)  # no InstanceId: B names the attachment's instance to A
    settle(lambda: b.describe_volumes(VolumeIds=[vol])["Volumes"][0]["State"], lambda s: s == "available")
    b.delete_volume(VolumeId=vol)
    assert not [v for v in a.describe_volumes()["Volumes"] if v["VolumeId"] == in_a[0]["VolumeId"]]


def test_security_groups_and_keys_through_b(a: Any, b: Any) -> None:
    gid = b.create_security_group(GroupName="stacked-web", Description="through B")["GroupId"]
    b.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    (group,) = [g for g in a.describe_security_groups()["SecurityGroups"] if g["GroupName"] == "stacked-web"]
    assert [(p["IpProtocol"], p["FromPort"]) for p in group["IpPermissions"]] == [("tcp", 443)]
    b.create_key_pair(KeyName="stacked-key")
    assert "stacked-key" in {k["KeyName"] for k in a.describe_key_pairs()["KeyPairs"]}
    b.delete_key_pair(KeyName="stacked-key")
    assert "stacked-key" not in {k["KeyName"] for k in a.describe_key_pairs()["KeyPairs"]}


def test_wrong_upstream_credentials_are_unavailable_not_500(
    gateway_a: GatewayProcess, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("gw-b-bad")
    config = _config_b(tmp, gateway_a, secret="not-the-secret")
    gw = GatewayProcess(config, data_dir=tmp / "data")
    try:
        ready = requests.get(f"{gw.url}/readyz", timeout=30)
        assert ready.status_code == 503  # its only account is down; why is the log's and `cloudgate check`'s
        assert ready.json()["checks"]["backend:stack/stack-1"] == "unavailable"
        with pytest.raises(ClientError) as info:
            gw.client("stacker", "stacker-secret", region="stack-1").describe_instances()
        assert info.value.response["Error"]["Code"] == "Unavailable"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    finally:
        gw.stop()
    checked = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(config), "--data-dir", str(tmp / "check")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert checked.returncode == 2, checked.stderr
    assert "FAIL  stack/stack-1 (ec2)" in checked.stdout and "AuthFailure" in checked.stdout


def test_a_retried_launch_is_one_launch(backend: EC2Backend, a: Any) -> None:
    """The translator retries a launch with the same spec; its ClientToken makes A answer the first one."""
    image = next(i.native_id for i in backend.list_images() if i.name == "debian-12")
    spec = MachineSpec(image_id=image, flavor_id="t3.micro", count=2)
    before = len([i for r in a.describe_instances()["Reservations"] for i in r["Instances"]])
    first = backend.create_machines(spec)
    again = backend.create_machines(spec)
    assert [m.native_id for m in again] == [m.native_id for m in first]
    assert len([i for r in a.describe_instances()["Reservations"] for i in r["Instances"]]) == before + 2
    other = backend.create_machines(MachineSpec(image_id=image, flavor_id="t3.micro", count=2))
    assert {m.native_id for m in other}.isdisjoint(m.native_id for m in first)


def test_limits_are_a_s(backend: EC2Backend) -> None:
    """B reads A's DescribeAccountAttributes: A's simulator limit (the test gateways' max_machines = 1000),
    EC2's defaults where A's backend says nothing."""
    assert backend.limits() == Limits(max_machines=1000, max_addresses=5)


def test_hibernation_reaches_a(backend: EC2Backend, a: Any) -> None:
    """Launched for hibernation, suspended (StopInstances Hibernate) and resumed (StartInstances) on A."""
    image = next(i.native_id for i in backend.list_images() if i.name == "ubuntu-24.04")
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id="t3.micro", hibernation=True))
    (plain,) = backend.create_machines(MachineSpec(image_id=image, flavor_id="t3.micro"))
    items = a.describe_instances(InstanceIds=[vm.native_id, plain.native_id])["Reservations"]
    configured = {i["InstanceId"]: i["HibernationOptions"]["Configured"] for r in items for i in r["Instances"]}
    assert configured == {vm.native_id: True, plain.native_id: False}
    assert (vm.hibernation, plain.hibernation) == (True, False)
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.RUNNING)
    backend.act_on_machine(vm.native_id, MachineAction.SUSPEND)
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.SUSPENDED)
    item = a.describe_instances(InstanceIds=[vm.native_id])["Reservations"][0]["Instances"][0]
    assert (item["State"]["Name"], item["StateReason"]["Code"]) == ("stopped", "Client.UserInitiatedHibernate")
    backend.act_on_machine(vm.native_id, MachineAction.RESUME)
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.RUNNING)


def test_user_data_and_type_changes_reach_a(backend: EC2Backend, a: Any) -> None:
    image = next(i.native_id for i in backend.list_images() if i.name == "ubuntu-24.04")
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id="t3.micro", user_data="b25l"))
    assert backend.machine_user_data(vm.native_id) == "b25l"
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.RUNNING)
    backend.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.STOPPED)
    user_data = base64.b64encode(b"#cloud-config\n").decode()
    updated = backend.update_machine(vm.native_id, MachineUpdate(flavor_id="m5.large", user_data=user_data))
    assert (updated.flavor_id, updated.vcpus, updated.memory_mb) == ("m5.large", 2, 8192)
    answer = a.describe_instance_attribute(InstanceId=vm.native_id, Attribute="userData")
    assert answer["UserData"]["Value"] == user_data
    assert backend.machine_user_data(vm.native_id) == user_data


# ---------------------------------------------------------------------------------------------------
# The contract, with the EC2 backend's cloud being gateway A.
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def backend(gateway_a: GatewayProcess, redis_server: Any) -> Iterator[EC2Backend]:
    options = {
        "endpoint_url": gateway_a.url,
        "aws_region": "local-1",
        "access_key_id": "demo",
        "secret_access_key": "demo-secret",
        "image_owners": ["self", "amazon"],
        "zone_map": ZONE_MAP,
        "timeout": 20,
    }
    assert EC2Backend.validate_options(options) == []
    account = AccountConfig(
        key="stack/stack-1", tenant="stack", region="stack-1", backend="upstream", driver="ec2", zones=ZONES,
        options=options,
    )  # fmt: skip
    # The EC2 backend keeps nothing in Redis; a client that is never flushed keeps A's database safe.
    client: redis.Redis = redis_server.client()
    made = EC2Backend(account, BackendServices(client))
    yield made
    made.close()
    client.close()


class TestStackedContract(BackendContract):
    """Every contract test, through the EC2 backend, against cloudgate's EC2 frontend over the simulator."""

    # The gateway's EC2 frontend offers no ENI actions (Create/Attach/DetachNetworkInterface): the backend's
    # attach is refused as unsupported by the gateway behind, before anything changes there.
    def test_interface_attach_detach(self, backend: EC2Backend) -> None:
        vm = self.launch(backend)[0]
        with raises(Unsupported):
            backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=vm.subnet_id))
        assert [i.native_id for i in self.machine(backend, vm.native_id).interfaces] == [
            i.native_id for i in vm.interfaces
        ]

    def test_interface_on_a_network(self, backend: EC2Backend) -> None:
        vm = self.launch(backend)[0]
        with raises(Unsupported):
            backend.attach_interface(vm.native_id, InterfaceSpec(network_id=vm.network_id))

    def test_volume_update(self, backend: EC2Backend) -> None:
        """A rename is a Name tag, which the gateway behind keeps; it offers no ModifyVolume, so a resize is
        refused as unsupported, and the volume is left as it was."""
        vol = self.new_volume(backend, size=2)
        backend.update_volume(vol, VolumeUpdate(name="renamed"))
        assert by_id(backend.list_volumes(), vol).name == "renamed"
        with raises(Unsupported, reason="description"):
            backend.update_volume(vol, VolumeUpdate(description="logs"))
        with raises(Unsupported):
            backend.update_volume(vol, VolumeUpdate(size_gb=3))
        assert by_id(backend.list_volumes(), vol).size_gb == 2
        backend.delete_volume(vol)
