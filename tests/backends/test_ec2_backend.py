"""The EC2 backend against a real moto_server: the shared contract, then what only EC2 promises.

The account is region ``moto-1`` of the gateway, mapped onto moto's ``us-east-1`` with zone names of its
own, so every test also runs the zone mapping. Where moto answers differently from AWS, a comment says so.
"""

from __future__ import annotations

import base64
import importlib
import socket
import subprocess
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
import redis
import requests
from backend_contract import BackendContract, by_id, raises, settle
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ec2_cloud_config import moto_account
from gateway_process import GatewayProcess
from netutil import free_port
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer

from backends.ec2 import EC2Backend, machines, mapping, volumes
from backends.ec2.backend import UNSUPPORTED
from backends.ec2.settings import OPTIONS, parse_settings
from gateway.config import load as load_config
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.calls import RetryPolicy
from translator.errors import (
    BackendError,
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    QuotaExceeded,
    TransientBackendError,
    Unsupported,
)
from translator.identity import Tenant
from translator.model import (
    ActionMethod,
    BlockDevice,
    ImageSpec,
    ImageState,
    ImageUpdate,
    Limits,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    Principal,
    Rule,
    SecurityGroupSpec,
    SecurityGroupUpdate,
    VolumeSpec,
    VolumeState,
    VolumeTier,
)
from translator.store import Store
from translator.translator import Translator, TranslatorSettings

REPO = Path(__file__).resolve().parents[2]
REGION = "moto-1"
ZONES = ("moto-1a", "moto-1b")
ZONE_MAP = {"moto-1a": "us-east-1a", "moto-1b": "us-east-1b"}
TYPES = ["t3.micro", "t3.small", "m5.large"]


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


def options(server: MotoServer, **extra: Any) -> dict[str, Any]:
    return {
        "endpoint_url": server.url,
        "aws_region": "us-east-1",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        "timeout": 30,
        "zone_map": ZONE_MAP,
        "instance_types": TYPES,
    } | extra


def make_backend(client: redis.Redis, opts: dict[str, Any], zones: tuple[str, ...] = ZONES) -> EC2Backend:
    problems = EC2Backend.validate_options(opts)
    assert problems == [], problems
    account = AccountConfig(
        key=f"t1/{REGION}", tenant="t1", region=REGION, backend="aws", driver="ec2", zones=zones, options=opts
    )
    return EC2Backend(account, BackendServices(client))


@pytest.fixture
def fresh(moto: MotoServer) -> Any:
    """moto emptied, with two AMIs of the account's own; a boto3 client on it."""
    moto.reset()
    ec2 = moto.client()
    moto.register_image(ec2, "ubuntu-24.04")
    moto.register_image(ec2, "debian-12", root_device="/dev/xvda")
    return ec2


@pytest.fixture
def backend(fresh: Any, moto: MotoServer, redis_client: redis.Redis) -> Iterator[EC2Backend]:
    b = make_backend(redis_client, options(moto))
    yield b
    b.close()


class TestEC2Contract(BackendContract):
    """Every contract test against moto."""

    def test_suspend_resume(self, backend: Backend) -> None:
        """moto ignores ``Hibernate``: its instance just stops, where AWS's would read as hibernated (the
        contract's own test of this runs on the stacked gateway). Starting it again resumes it."""
        vm = self.launch(backend)[0]
        backend.act_on_machine(vm.native_id, MachineAction.SUSPEND)
        self.wait_machine(backend, vm.native_id, MachineState.STOPPED)
        backend.act_on_machine(vm.native_id, MachineAction.RESUME)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)

    def test_a_create_repeated_with_its_idempotency_key_finds_the_first(self, backend: Backend, fresh: Any) -> None:
        """moto keeps a RunInstances ClientToken but launches again for a repeat, where AWS answers with the
        first launch (the contract's own test of this runs on the stacked gateway): here, the key must reach
        EC2 as the ClientToken of every instance of the launch."""
        key = uuid.uuid4().hex
        made = backend.create_machines(
            MachineSpec(image_id=self.image_id(backend), flavor_id="t3.micro", count=2, idempotency_key=key)
        )
        items = fresh.describe_instances(InstanceIds=[m.native_id for m in made])["Reservations"][0]["Instances"]
        assert [i["ClientToken"] for i in items] == [key, key]


# ---------------------------------------------------------------------------------------------------
# Declaration and options
# ---------------------------------------------------------------------------------------------------


def test_declares_everything_ec2_has() -> None:
    assert EC2Backend.driver == "ec2"
    # Suspend is hibernation (for instances launched for it); tags are EC2's own (NATIVE_TAGS).
    assert EC2Backend.capabilities == frozenset(Capability) - UNSUPPORTED
    assert Capability.MACHINE_PAUSE in UNSUPPORTED and Capability.STOP_HARD not in UNSUPPORTED
    assert set(mapping.STATE_CODES.values()) <= set(mapping.STATE_MAP)


def test_native_states_are_ec2s() -> None:
    """The states the table reads are botocore's InstanceStateName enum, EC2 state reasons of those, and
    the documented extras of OpenStack's EC2 API: a row for anything else is padding."""
    model = botocore.session.get_session().get_service_model("ec2")
    assert set(model.shape_for("InstanceStateName").enum) == mapping.EC2_STATES
    assert all(key.split("/")[0] in mapping.EC2_STATES for key in mapping.REASON_STATES)
    assert set(mapping.STATE_MAP) == mapping.NATIVE_STATES == EC2Backend.NATIVE_STATES


def test_entry_point_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["cloudgate.backends"]["ec2"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is EC2Backend
    assert any(d.startswith("moto[server]") for d in project["project"]["optional-dependencies"]["test"])


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"endpoint_url": "ftp://x"}, "endpoint_url:"),
        ({"timeout": 0}, "timeout:"),
        ({"connect_timeout": "5"}, "connect_timeout:"),
        ({"max_pool_connections": 1.5}, "max_pool_connections:"),
        ({"zone_map": {"a": 1}}, "zone_map:"),
        ({"image_owners": "self"}, "image_owners:"),
        ({"image_filters": {"name": "ubuntu*"}}, "image_filters:"),
        ({"instance_types": [""]}, "instance_types:"),
        ({"tls_verify": ""}, "tls_verify:"),
        ({"secret_access_key": ""}, "access_key_id:"),
        ({"regoin": "us-east-1"}, "regoin: unknown option"),
    ],
)
def test_bad_options_are_named(change: dict[str, Any], problem: str) -> None:
    good = options_for("http://127.0.0.1:1")
    assert EC2Backend.validate_options(good) == []
    problems = EC2Backend.validate_options(good | change)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def options_for(url: str, **extra: Any) -> dict[str, Any]:
    return {"endpoint_url": url, "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY} | extra


def test_example_config_loads_and_documents_every_option() -> None:
    path = REPO / "conf" / "examples" / "ec2.toml"
    config = load_config(path)
    accounts = [a for a in config.accounts.values() if a.driver == "ec2"]
    assert len(accounts) == 2
    paris = config.accounts["acme/paris"]
    assert parse_settings(paris.options, paris.region, paris.zones).zone_map == {
        "paris-a": "eu-west-3a",
        "paris-b": "eu-west-3b",
    }
    text = path.read_text()
    missing = [key for key in OPTIONS if f"\n{key} = " not in text]
    assert missing == []


# ---------------------------------------------------------------------------------------------------
# Zones, catalogue, images
# ---------------------------------------------------------------------------------------------------


def test_zones_are_the_accounts_names_for_ec2_zones(backend: EC2Backend, fresh: Any) -> None:
    assert [(z.name, z.available) for z in backend.list_zones()] == [("moto-1a", True), ("moto-1b", True)]
    backend.check()
    vm = backend.create_machines(MachineSpec(image_id=image_named(fresh, "ubuntu-24.04"), flavor_id="t3.micro"))[0]
    assert vm.zone == "moto-1a"  # no zone asked: the account's first, not wherever EC2 would pick
    placed = fresh.describe_instances(InstanceIds=[vm.native_id])["Reservations"][0]["Instances"][0]["Placement"]
    assert placed["AvailabilityZone"] == "us-east-1a"
    vol = backend.create_volume(VolumeSpec(size_gb=1, zone="moto-1b"))
    assert vol.zone == "moto-1b"
    assert fresh.describe_volumes(VolumeIds=[vol.native_id])["Volumes"][0]["AvailabilityZone"] == "us-east-1b"
    # A volume made in a zone the account does not map is still listed, under its EC2 name.
    outside = fresh.create_volume(Size=1, AvailabilityZone="us-east-1c")["VolumeId"]
    assert by_id(backend.list_volumes(), outside).zone == "us-east-1c"
    # Subnets: only those in the account's zones (launches and new subnets stay there).
    assert {s.zone for s in backend.list_subnets()} == set(ZONES)
    with raises(NotFound, kind="zone"):
        backend.create_volume(VolumeSpec(size_gb=1, zone="us-east-1c"))


def test_check_names_a_zone_ec2_does_not_offer(fresh: Any, moto: MotoServer, redis_client: redis.Redis) -> None:
    wrong = make_backend(redis_client, options(moto, zone_map={"moto-1a": "us-east-1a", "moto-1b": "mars-1b"}))
    assert [z.available for z in wrong.list_zones()] == [True, False]
    with raises(InvalidParameter, kind="zone"):
        wrong.check()


def test_flavors_are_ec2_figures_and_only_those_configured(backend: EC2Backend) -> None:
    figures = {f.native_id: (f.vcpus, f.memory_mb, f.architecture) for f in backend.list_flavors()}
    assert figures == {
        "t3.micro": (2, 1024, "x86_64"),
        "t3.small": (2, 2048, "x86_64"),
        "m5.large": (2, 8192, "x86_64"),
    }
    with raises(NotFound, kind="flavor"):
        backend.create_machines(MachineSpec(image_id=backend.list_images()[0].native_id, flavor_id="c5.xlarge"))


def image_named(ec2: Any, name: str) -> str:
    return next(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"] if i["Name"] == name)


def test_image_listing_is_bounded_by_the_options(fresh: Any, moto: MotoServer, redis_client: redis.Redis) -> None:
    debian = image_named(fresh, "debian-12")
    names = lambda b: sorted(i.name for i in b.list_images())  # noqa: E731
    assert names(make_backend(redis_client, options(moto))) == ["debian-12", "ubuntu-24.04"]
    assert names(make_backend(redis_client, options(moto, image_filters={"name": ["ubuntu*"]}))) == ["ubuntu-24.04"]
    assert names(make_backend(redis_client, options(moto, image_owners=[], image_ids=[debian]))) == ["debian-12"]
    assert names(make_backend(redis_client, options(moto, image_owners=[]))) == []
    (image,) = make_backend(redis_client, options(moto, image_owners=[], image_ids=[debian])).list_images()
    item = fresh.describe_images(ImageIds=[debian])["Images"][0]
    root_size = item["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"]
    assert (image.native_id, image.state, image.public, image.owner) == (
        debian,
        ImageState.AVAILABLE,
        False,
        item["OwnerId"],
    )
    assert (image.root_device, image.min_disk_gb) == (item["RootDeviceName"], root_size)


# ---------------------------------------------------------------------------------------------------
# Machines: what a launch carries to EC2, and what EC2 had before the gateway
# ---------------------------------------------------------------------------------------------------


def test_launch_carries_name_user_data_keys_groups_and_disks(backend: EC2Backend, fresh: Any) -> None:
    backend.create_key_pair("ops", "ed25519")
    group = backend.create_security_group(SecurityGroupSpec(name="app", description="app servers"))
    user_data = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=image_named(fresh, "ubuntu-24.04"),
            flavor_id="t3.small",
            name="web-1",
            key_name="ops",
            security_group_ids=(group.native_id,),
            user_data=user_data,
            zone="moto-1b",
            block_devices=(
                BlockDevice(boot=True, size_gb=12),
                BlockDevice(device="/dev/sdb", size_gb=5, tier=VolumeTier.HDD),
            ),
        )
    )
    assert (vm.name, vm.flavor_id, vm.vcpus, vm.memory_mb, vm.zone) == ("web-1", "t3.small", 2, 2048, "moto-1b")
    assert vm.security_group_ids == [group.native_id] and vm.key_name == "ops"
    item = fresh.describe_instances(InstanceIds=[vm.native_id])["Reservations"][0]["Instances"][0]
    assert {"Key": "Name", "Value": "web-1"} in item["Tags"]
    # Canonical user data is base64 already: it reaches EC2 as given, not encoded twice.
    assert fresh.describe_instance_attribute(InstanceId=vm.native_id, Attribute="userData")["UserData"] == {
        "Value": user_data
    }
    assert backend.machine_user_data(vm.native_id) == user_data  # read back one machine at a time
    disks = {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in item["BlockDeviceMappings"]}
    made = {v["VolumeId"]: v for v in fresh.describe_volumes(VolumeIds=list(disks.values()))["Volumes"]}
    # The boot disk is the AMI's root device; the hdd tier is made as st1 (the default volume_types).
    assert (made[disks[item["RootDeviceName"]]]["Size"], vm.root_device) == (12, item["RootDeviceName"])
    assert (made[disks["/dev/sdb"]]["Size"], made[disks["/dev/sdb"]]["VolumeType"]) == (5, "st1")
    assert disks["/dev/sdb"] in machines.machine(backend, vm.native_id).volume_ids


def test_tiers_are_made_as_the_mapped_volume_types(fresh: Any, moto: MotoServer, redis_client: redis.Redis) -> None:
    b = make_backend(redis_client, options(moto, volume_types={"ssd": "gp3"}))
    made = {t: b.create_volume(VolumeSpec(size_gb=4, zone="moto-1a", tier=t)) for t in VolumeTier}
    ec2 = {v["VolumeId"]: v for v in fresh.describe_volumes()["Volumes"]}
    assert {t: ec2[v.native_id]["VolumeType"] for t, v in made.items()} == {
        VolumeTier.STANDARD: "standard",
        VolumeTier.SSD: "gp3",
        VolumeTier.HDD: "st1",
        VolumeTier.IO: "io1",
    }
    assert ec2[made[VolumeTier.IO].native_id]["Iops"] == 200  # io1 needs provisioned IOPS: 50 per GiB
    outside = fresh.create_volume(Size=1, AvailabilityZone="us-east-1a", VolumeType="sc1")["VolumeId"]
    listed = {v.native_id: v.tier for v in b.list_volumes()}
    assert {t: listed[v.native_id] for t, v in made.items()} == {t: t for t in VolumeTier}
    assert listed[outside] == VolumeTier.HDD  # an EC2 type no option names reads as its tier


def test_resources_made_outside_the_gateway_are_listed(backend: EC2Backend, fresh: Any) -> None:
    made = fresh.run_instances(
        ImageId=image_named(fresh, "debian-12"),
        InstanceType="m5.large",
        MinCount=2,
        MaxCount=2,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "legacy"}]}],
        UserData="echo legacy",  # boto3 base64-encodes it
    )
    listed = {m.native_id: m for m in backend.list_machines()}
    assert backend.machine_user_data(made["Instances"][0]["InstanceId"]) == base64.b64encode(b"echo legacy").decode()
    with raises(NotFound, kind="machine"):
        backend.machine_user_data("i-0123456789abcdef0")
    assert {listed[i["InstanceId"]].launch_key for i in made["Instances"]} == {made["Instances"][0]["ClientToken"]}
    for item in made["Instances"]:
        vm = listed[item["InstanceId"]]
        assert (vm.name, vm.flavor_name, vm.memory_mb) == ("legacy", "m5.large", 8192)
        assert vm.private_ip == item["PrivateIpAddress"] and vm.network_id == item["VpcId"]
    fresh.create_key_pair(KeyName="theirs")
    assert by_id(backend.list_key_pairs(), "theirs").key_type == "rsa"


def test_limits_come_from_describe_account_attributes(backend: EC2Backend, fresh: Any) -> None:
    wanted = ["max-instances", "vpc-max-elastic-ips"]
    # moto answers every attribute whatever AttributeNames asks (AWS: those named); the backend reads its own.
    answer = {
        a["AttributeName"]: int(a["AttributeValues"][0]["AttributeValue"])
        for a in fresh.describe_account_attributes(AttributeNames=wanted)["AccountAttributes"]
        if a["AttributeName"] in wanted
    }
    assert backend.limits() == Limits(max_machines=answer["max-instances"], max_addresses=answer["vpc-max-elastic-ips"])


def test_actions_answer_the_state_they_leave(backend: EC2Backend, fresh: Any) -> None:
    (vm,) = backend.create_machines(MachineSpec(image_id=image_named(fresh, "ubuntu-24.04"), flavor_id="t3.micro"))
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.RUNNING)
    # RebootInstances answers no state; the machine is reported rebooting until EC2 lists it again.
    assert backend.act_on_machine(vm.native_id, MachineAction.REBOOT).state == MachineState.REBOOTING
    assert backend.act_on_machine(vm.native_id, MachineAction.STOP, ActionMethod.HARD).state in (
        MachineState.STOPPING,
        MachineState.STOPPED,
    )
    # Hibernating a stopping instance: EC2's IncorrectInstanceState, answered before calling.
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.SUSPEND)
    settle(lambda: machines.machine(backend, vm.native_id).state, lambda s: s == MachineState.STOPPED)
    renamed = backend.update_machine(vm.native_id, MachineUpdate(name="renamed", flavor_id="t3.small"))
    assert (renamed.name, renamed.flavor_id) == ("renamed", "t3.small")


def test_a_picked_device_is_one_ec2_recommends_and_no_alias_of_a_taken_one() -> None:
    assert volumes.pick_device(["/dev/sda1"]) == "/dev/sdf"
    assert volumes.pick_device(["/dev/xvda", "/dev/xvdf", "/dev/sdg"]) == "/dev/sdh"
    with raises(QuotaExceeded, kind="attachment"):
        volumes.pick_device(list(volumes.FREE_DEVICES))


def test_where_moto_differs_from_aws_the_backend_answers_as_aws(backend: EC2Backend, fresh: Any) -> None:
    """Each case: what AWS answers, what moto does instead, and that the backend answers as AWS without
    leaving moto changed."""
    (vm,) = backend.create_machines(MachineSpec(image_id=image_named(fresh, "ubuntu-24.04"), flavor_id="t3.micro"))
    state = lambda: fresh.describe_instances(InstanceIds=[vm.native_id])["Reservations"][0]["Instances"][0]["State"]  # noqa: E731
    settle(lambda: state()["Name"], lambda s: s == "running")
    backend.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: state()["Name"], lambda s: s == "stopped")
    # Rebooting a stopped instance: AWS IncorrectInstanceState; moto "reboots" it into running.
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.REBOOT)
    assert state()["Name"] == "stopped"
    # Stopping a stopped instance: AWS leaves it stopped; moto answers "stopping" again.
    assert backend.act_on_machine(vm.native_id, MachineAction.STOP).state == MachineState.STOPPED
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    settle(lambda: state()["Name"], lambda s: s == "terminated")
    # Starting a terminated instance: AWS IncorrectInstanceState; moto starts it again.
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.START)
    assert state()["Name"] == "terminated"

    (vm,) = backend.create_machines(MachineSpec(image_id=image_named(fresh, "ubuntu-24.04"), flavor_id="t3.micro"))
    vol = backend.create_volume(VolumeSpec(size_gb=1, zone="moto-1a")).native_id
    other = backend.create_volume(VolumeSpec(size_gb=1, zone="moto-1a")).native_id
    backend.attach_volume(vol, vm.native_id, "/dev/sdf")
    # A device already in use: AWS InvalidParameterValue; moto attaches a second volume there.
    with raises(Conflict, kind="attachment", reason="in_use"):
        backend.attach_volume(other, vm.native_id, "/dev/sdf")
    assert fresh.describe_volumes(VolumeIds=[other])["Volumes"][0]["State"] == "available"
    # DetachVolume without InstanceId: AWS takes it; moto answers a 500 (an HTML page, not EC2 XML), which
    # is a transient fault to the backend. So the backend always names the attachment's instance.
    with raises(TransientBackendError):
        backend.call("detach_volume", "volume", VolumeId=vol)
    backend.detach_volume(vol, None)
    settle(lambda: volumes.volume(backend, vol).state, lambda s: s == VolumeState.AVAILABLE)

    address = backend.associate_address(backend.allocate_address().native_id, vm.native_id)
    # Releasing an associated address: AWS InvalidIPAddress.InUse; moto releases it.
    with raises(Conflict, kind="address", reason="in_use"):
        backend.release_address(address.native_id)
    assert fresh.describe_addresses(AllocationIds=[address.native_id])["Addresses"][0]["InstanceId"] == vm.native_id
    backend.disassociate_address(address.native_id)
    with raises(Conflict, kind="address", reason="state"):
        backend.disassociate_address(address.native_id)

    # A second AMI of the same name: AWS InvalidAMIName.Duplicate; moto makes it.
    backend.create_image(ImageSpec(machine_id=vm.native_id, name="golden"))
    with raises(Conflict, kind="image", reason="duplicate"):
        backend.create_image(ImageSpec(machine_id=vm.native_id, name="golden"))
    assert [i["Name"] for i in fresh.describe_images(Owners=["self"])["Images"]].count("golden") == 1

    # A port past 65535: AWS InvalidParameterValue; moto stores the rule.
    group = backend.create_security_group(SecurityGroupSpec(name="ports", description="ports"))
    with raises(InvalidParameter, kind="rule", reason="port"):
        backend.authorize_rules(
            group.native_id, [Rule(direction="ingress", protocol="tcp", from_port=1, to_port=70000, cidr="0.0.0.0/0")]
        )
    assert fresh.describe_security_groups(GroupIds=[group.native_id])["SecurityGroups"][0]["IpPermissions"] == []

    # HibernationOptions: moto keeps them but never shows them in DescribeInstances, so launching for
    # hibernation is tested against cloudgate's own frontend (test_stacked_gateway.py).
    # ModifyInstanceAttribute UserData: moto wants the blob base64 twice over (AWS and botocore: once),
    # so changing user data is tested against cloudgate's own frontend (test_stacked_gateway.py).


def test_rules_of_every_source_round_trip(backend: EC2Backend) -> None:
    group = backend.create_security_group(SecurityGroupSpec(name="mixed", description="mixed"))
    rules = [
        Rule(direction="ingress", protocol="icmp", from_port=8, to_port=-1, cidr="10.0.0.0/8"),
        Rule(direction="ingress", protocol="6", from_port=1, to_port=2, group_id=group.native_id),
        Rule(direction="ingress", protocol="tcp", from_port=3, to_port=3, cidr="2001:db8::/32", description="v6"),
        Rule(direction="egress", protocol="all", cidr="192.0.2.0/24"),
    ]
    after = backend.authorize_rules(group.native_id, rules)
    keys = {r.key() for r in after.rules}
    assert ("ingress", "icmp", 8, -1, "10.0.0.0/8", None) in keys
    assert ("ingress", "tcp", 1, 2, None, group.native_id) in keys
    assert ("ingress", "tcp", 3, 3, "2001:db8::/32", None) in keys
    assert ("egress", "-1", None, None, "192.0.2.0/24", None) in keys
    after = backend.revoke_rules(group.native_id, rules[:2])
    assert ("ingress", "icmp", 8, -1, "10.0.0.0/8", None) not in {r.key() for r in after.rules}
    with raises(InvalidParameter, kind="rule", reason="direction"):
        backend.authorize_rules(group.native_id, [Rule(direction="sideways", protocol="tcp", cidr="0.0.0.0/0")])


# ---------------------------------------------------------------------------------------------------
# Faults: the translation table, and real failures
# ---------------------------------------------------------------------------------------------------


def client_error(code: str, status: int = 400, message: str = "m") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Describe"
    )


@pytest.mark.parametrize(
    ("exc", "kind", "expected"),
    [
        (client_error("InvalidInstanceID.NotFound"), "machine", (NotFound, "machine", None)),
        (client_error("InvalidAMIID.Malformed"), "machine", (NotFound, "image", "malformed")),
        (client_error("DependencyViolation"), "network", (Conflict, "network", "dependency")),
        (client_error("IncorrectState"), "volume", (Conflict, "volume", "state")),
        (client_error("InvalidFrobnicator.NotFound"), "machine", (NotFound, "machine", None)),
        (client_error("VpcEndpointLimitExceeded"), "network", (QuotaExceeded, "network", None)),
        (client_error("RequestLimitExceeded", 503), "machine", (TransientBackendError, "machine", None)),
        (client_error("Throttling", 400), "image", (TransientBackendError, "image", None)),
        (client_error("SomethingNew", 502), "image", (TransientBackendError, "image", None)),
        (client_error("SomethingNew", 400), "image", (InvalidParameter, "image", None)),
        (client_error("SomethingNew", 302), "image", (BackendError, "image", None)),
        (client_error("AuthFailure", 401), "zone", (BackendUnavailable, "zone", "credentials")),
        (client_error("UnauthorizedOperation", 403), "volume", (Forbidden, "volume", None)),
        (client_error("InsufficientInstanceCapacity", 500), "machine", (BackendUnavailable, "machine", "capacity")),
    ],
)
def test_fault_table(exc: Exception, kind: str, expected: tuple[type, str, str | None]) -> None:
    error = mapping.canonical_error(exc, kind)
    assert error is not None and (type(error), error.kind, error.reason) == expected


def test_an_exception_not_from_botocore_is_left_to_the_translator() -> None:
    assert mapping.canonical_error(KeyError("bug"), "machine") is None


def test_refused_connections_and_silent_servers_are_transient(redis_client: redis.Redis) -> None:
    down = make_backend(redis_client, options_for(f"http://127.0.0.1:{free_port()}", aws_region="us-east-1"))
    with pytest.raises(TransientBackendError) as refused:
        down.list_machines()
    assert not isinstance(refused.value, OutcomeUnknown), "a refused connection never reached EC2: safe to resend"
    with raises(TransientBackendError):
        down.check()
    # A server that takes the connection and never answers: the read timeout ends the call.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        slow = make_backend(redis_client, options_for(url, aws_region="us-east-1", timeout=0.5, connect_timeout=0.5))
        with raises(OutcomeUnknown):  # the request was sent: EC2 may have acted on it
            slow.list_images()
        slow.close()
    down.close()


def test_the_translator_retries_then_answers_unavailable(redis_client: redis.Redis) -> None:
    account = AccountConfig(
        key="t1/down-1", tenant="t1", region="down-1", backend="aws", driver="ec2", zones=("down-1a",),
        options=options_for(f"http://127.0.0.1:{free_port()}", aws_region="us-east-1"),
    )  # fmt: skip
    translator = Translator(
        TranslatorSettings(retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.02)),
        {account.key: account},
        {"t1": Tenant(name="t1", account_id="111111111111", accounts=(account.key,))},
        Store(redis_client),
        BackendServices(redis_client),
    )
    who = Principal(user="u", tenant="t1", role="admin")
    with raises(BackendUnavailable, reason="unavailable"):
        translator.list(who, "machine")
    translator.close()


def test_tags_set_through_the_translator_are_ec2_tags(fresh: Any, moto: MotoServer, redis_client: redis.Redis) -> None:
    account = AccountConfig(
        key=f"t1/{REGION}", tenant="t1", region=REGION, backend="aws", driver="ec2", zones=ZONES,
        options=options(moto),
    )  # fmt: skip
    translator = Translator(
        TranslatorSettings(),
        {account.key: account},
        {"t1": Tenant(name="t1", account_id="111111111111", accounts=(account.key,))},
        Store(redis_client),
        BackendServices(redis_client),
    )
    who = Principal(user="u", tenant="t1", role="admin")
    image = next(i for i in translator.list(who, "image") if i.name == "ubuntu-24.04")
    flavor = next(f for f in translator.list(who, "flavor") if f.name == "t3.micro")
    (machine,) = translator.create_machines(who, MachineSpec(image_id=image.id, flavor_id=flavor.id))
    volume = translator.create_volume(who, VolumeSpec(size_gb=1, zone=ZONES[0]))
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    key = translator.import_key_pair(who, "tagged", public)
    for kind, gid in (("machine", machine.id), ("volume", volume.id), ("key_pair", key.id)):
        translator.update_tags(who, kind, [gid], {"team": "blue", "env": "prod"})
    described = fresh.describe_instances(InstanceIds=[machine.native_id])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in described["Tags"]}.items() >= {"team": "blue", "env": "prod"}.items()
    (pair,) = fresh.describe_key_pairs(KeyNames=["tagged"])["KeyPairs"]
    assert {t["Key"]: t["Value"] for t in pair["Tags"]} == {"team": "blue", "env": "prod"}
    # a value given with a key removes the tag only while it still has that value
    translator.update_tags(who, "volume", [volume.id], {}, {"team": "red", "env": None})
    (vol,) = fresh.describe_volumes(VolumeIds=[volume.native_id])["Volumes"]
    assert {t["Key"]: t["Value"] for t in vol.get("Tags") or ()} == {"team": "blue"}
    assert translator.get(who, "volume", volume.id).tags == {"team": "blue"}
    assert not redis_client.keys("cg:ix:*:tags"), "native tags are never kept in Redis"
    translator.close()


def test_what_ec2_cannot_do_is_refused_before_ec2_is_asked(
    fresh: Any, moto: MotoServer, redis_client: redis.Redis
) -> None:
    """The translator refuses an operation whose capability EC2 lacks, and leaves the cloud as it was."""
    account = AccountConfig(
        key=f"t1/{REGION}", tenant="t1", region=REGION, backend="aws", driver="ec2", zones=ZONES,
        options=options(moto),
    )  # fmt: skip
    translator = Translator(
        TranslatorSettings(),
        {account.key: account},
        {"t1": Tenant(name="t1", account_id="111111111111", accounts=(account.key,))},
        Store(redis_client),
        BackendServices(redis_client),
    )
    who = Principal(user="u", tenant="t1", role="admin")
    image = next(i for i in translator.list(who, "image") if i.name == "ubuntu-24.04")
    flavor = next(f for f in translator.list(who, "flavor") if f.name == "t3.micro")
    (machine,) = translator.create_machines(who, MachineSpec(image_id=image.id, flavor_id=flavor.id))
    settle(lambda: translator.get(who, "machine", machine.id).state, lambda s: s == MachineState.RUNNING)
    translator.list(who, "network")  # ids are learned from listings of their own kind
    group = next(g for g in translator.list(who, "security_group") if g.name == "default")
    refused = [
        (lambda: translator.act_on_machine(who, machine.id, MachineAction.PAUSE), "machine_pause"),
        (lambda: translator.act_on_machine(who, machine.id, MachineAction.REBOOT, "hard"), "reboot_hard"),
        (lambda: translator.act_on_network(who, machine.network_id, "down"), "network_up_down"),
        (lambda: translator.update_image(who, image.id, ImageUpdate(description="no")), "image_update"),
        (
            lambda: translator.update_security_group(who, group.id, SecurityGroupUpdate(name="no")),
            "security_group_update",
        ),
    ]
    for call, capability in refused:
        with raises(Unsupported, reason=capability):
            call()
    (item,) = fresh.describe_instances(InstanceIds=[machine.native_id])["Reservations"][0]["Instances"]
    assert item["State"]["Name"] == "running"
    (ami,) = fresh.describe_images(ImageIds=[image.native_id])["Images"]
    assert ami.get("Description", "") != "no"
    translator.close()


def test_client_token_is_kept_for_the_same_launch_only(backend: EC2Backend) -> None:
    spec = MachineSpec(image_id="ami-1", flavor_id="t3.micro")
    twin = MachineSpec(image_id="ami-1", flavor_id="t3.micro")
    assert backend.client_token(spec) == backend.client_token(spec)
    assert backend.client_token(twin) != backend.client_token(spec)


# ---------------------------------------------------------------------------------------------------
# Through a real gateway: EC2 calls reach moto; moto down is /readyz 503 and EC2 ``Unavailable``
# ---------------------------------------------------------------------------------------------------

GATEWAY_CONFIG = """
[gateway]
workers = 2
threads = 4

[translator]
cache_ttl = 0.0
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05
"""
MOTO_ACCOUNT: dict[str, Any] = {"zones": {"moto-1a": "us-east-1a", "moto-1b": "us-east-1b"}, "instance_types": TYPES}


def cloudgate_check(config: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(config), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_gateway_over_moto_then_moto_down(tmp_path: Path) -> None:
    own = MotoServer(tmp_path)
    gw = None
    try:
        upstream = own.client()
        own.register_image(upstream, "ubuntu-24.04")
        config = tmp_path / "gw.toml"
        config.write_text(GATEWAY_CONFIG + moto_account(own.url, ACCESS_KEY, SECRET_KEY, **MOTO_ACCOUNT))
        checked = cloudgate_check(config, tmp_path / "check")
        assert checked.returncode == 0 and "ok    acme/moto-1 (ec2)" in checked.stdout, checked.stdout + checked.stderr

        gw = GatewayProcess(config, data_dir=tmp_path / "data")
        assert requests.get(f"{gw.url}/readyz", timeout=30).json()["checks"]["backend:acme/moto-1"] == "ok"
        ec2 = gw.client("alice", "alice-secret", region="moto-1")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        made = ec2.run_instances(
            ImageId=image, InstanceType="t3.small", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "moto-1b"}
        )["Instances"][0]
        (theirs,) = [i for r in upstream.describe_instances()["Reservations"] for i in r["Instances"]]
        assert theirs["PrivateIpAddress"] == made["PrivateIpAddress"]
        assert theirs["Placement"]["AvailabilityZone"] == "us-east-1b" and theirs["InstanceType"] == "t3.small"
        ec2.stop_instances(InstanceIds=[made["InstanceId"]])
        settle(
            lambda: upstream.describe_instances()["Reservations"][0]["Instances"][0]["State"]["Name"], "stopped".__eq__
        )

        own.stop()
        # /readyz answers from a one-second cache: ask until it has looked again.
        ready = settle(lambda: requests.get(f"{gw.url}/readyz", timeout=30), lambda r: r.status_code == 503)
        assert ready.json()["checks"]["backend:acme/moto-1"].startswith("unavailable")
        with pytest.raises(ClientError) as info:
            ec2.describe_instances()
        assert info.value.response["Error"]["Code"] == "Unavailable"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        checked = cloudgate_check(config, tmp_path / "check")
        assert checked.returncode == 2 and "FAIL  acme/moto-1 (ec2)" in checked.stdout, checked.stdout
    finally:
        if gw is not None:
            gw.stop()
        own.stop()


def test_gateway_over_moto_makes_a_launch_disk_from_the_snapshot_it_names(tmp_path: Path) -> None:
    """RunInstances' BlockDeviceMapping names a gateway snapshot id; EC2 behind gets its own snapshot id."""
    own = MotoServer(tmp_path)
    gw = None
    try:
        upstream = own.client()
        own.register_image(upstream, "ubuntu-24.04")
        config = tmp_path / "gw.toml"
        config.write_text(GATEWAY_CONFIG + moto_account(own.url, ACCESS_KEY, SECRET_KEY, **MOTO_ACCOUNT))
        gw = GatewayProcess(config, data_dir=tmp_path / "data")
        ec2 = gw.client("alice", "alice-secret", region="moto-1")
        volume = ec2.create_volume(AvailabilityZone="moto-1a", Size=3)["VolumeId"]
        snapshot = ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        (theirs_volume,) = [v["VolumeId"] for v in upstream.describe_volumes()["Volumes"] if v["Size"] == 3]
        (theirs_snapshot,) = upstream.describe_snapshots(Filters=[{"Name": "volume-id", "Values": [theirs_volume]}])[
            "Snapshots"
        ]
        assert snapshot != theirs_snapshot["SnapshotId"]  # the gateway's id, not EC2's
        image = ec2.describe_images()["Images"][0]["ImageId"]
        mapping = [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshot, "DeleteOnTermination": True}}]
        ec2.run_instances(ImageId=image, InstanceType="t3.small", MinCount=1, MaxCount=1, BlockDeviceMappings=mapping)
        made = [
            v for v in upstream.describe_volumes()["Volumes"] if v.get("SnapshotId") == theirs_snapshot["SnapshotId"]
        ]
        assert [(v["Size"], v["Attachments"][0]["Device"]) for v in made] == [(3, "/dev/sdf")]
    finally:
        if gw is not None:
            gw.stop()
        own.stop()
