"""Check 8 of issue 14, the tenant isolation matrix: three tenants on one gateway (simulator backend), each
owning one of every resource kind; every tenant tries every other tenant's ids with every operation that takes
an id, through every frontend. Each attempt must be answered exactly as for an id that does not exist (the
protocol's own not-found), and the owner's view of the resource, tags included, must be unchanged.

``MATRIX`` is the table: one row per (frontend, kind, operation), with how to make the call with a foreign id
and what not-found looks like there. A new frontend or kind joins by adding rows (and a ``VIEWS`` entry).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from botocore.exceptions import ClientError
from gateway_process import GatewayProcess

TENANTS = ("alpha", "bravo", "charlie")
#: (attacker, owner): every ordered pair of distinct tenants
PAIRS = [(a, o) for a in TENANTS for o in TENANTS if a != o]
WAIT = 60.0
EMPTY = "[]"  # a listing filtered by a foreign id: as for an id that does not exist, nothing

CONFIG = """
[gateway]
workers = 2
threads = 4
redis_url = "{redis_url}"

[translator]
cache_ttl = 5.0
transitional_cache_ttl = 0.2
retry_attempts = 3
retry_initial_wait = 0.01
retry_max_wait = 0.05

[backends.sim]
driver = "simulator"
boot_delay = 0.2
"""
TENANT = """
[tenants.{name}]
account_id = "{account}"
[tenants.{name}.regions.local-1]
backend = "sim"
zones = ["local-1a"]

[[users]]
access_key = "{name}"
secret = "{name}-secret"
tenant = "{name}"
role = "admin"
"""


@dataclass
class Estate:
    """One tenant's clients and resources (one of each kind, all settled, all tagged ``owner=<tenant>``)."""

    name: str
    ec2: Any
    http: requests.Session
    url: str
    ids: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, key: str) -> str:
        try:
            return self.__dict__["ids"][key]
        except KeyError:
            raise AttributeError(key) from None


# -- calls: (attacker, owner) -> the outcome as a string (an EC2 error code, an HTTP status, or a listing) -------

Attempt = Callable[[Estate, Estate], str]


def ec2(call: Callable[[Any, Estate, Estate], Any]) -> Attempt:
    """An EC2 call by the attacker: its error code, or ``ok`` (the call was NOT refused)."""

    def attempt(me: Estate, them: Estate) -> str:
        try:
            call(me.ec2, me, them)
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return "ok"

    return attempt


def listed(call: Callable[[Any, Estate, Estate], list[Any]]) -> Attempt:
    """An EC2 listing filtered by the foreign id: what it shows (it must show nothing)."""
    return lambda me, them: repr(call(me.ec2, me, them))


def http(method: str, path: str, body: Callable[[Estate, Estate], Any] | None = None, **headers: str) -> Attempt:
    """A CIMI/OCCI request by the attacker (``path`` formatted with the owner's ids): its HTTP status."""

    def attempt(me: Estate, them: Estate) -> str:
        data = body(me, them) if body else None
        kw: dict[str, Any] = {"json": data} if isinstance(data, dict) else {"data": data}
        answer = me.http.request(method, me.url + path.format_map(names(me, them)), headers=headers, timeout=60, **kw)
        return str(answer.status_code)

    return attempt


def tag(key: str) -> Callable[[Any, Estate, Estate], Any]:
    return lambda c, me, them: c.create_tags(Resources=[them.ids[key]], Tags=[{"Key": "owner", "Value": me.name}])


def untag(key: str) -> Callable[[Any, Estate, Estate], Any]:
    return lambda c, me, them: c.delete_tags(Resources=[them.ids[key]], Tags=[{"Key": "owner"}])


def tags_of(key: str) -> Callable[[Any, Estate, Estate], list[Any]]:
    return lambda c, me, them: c.describe_tags(Filters=[{"Name": "resource-id", "Values": [them.ids[key]]}])["Tags"]


CIMI = "2.0"
CIMI_NS = "http://schemas.dmtf.org/cimi/2"
OCCI_INFRA = "http://schemas.ogf.org/occi/infrastructure#"
OCCI_BODY = {"Content-Type": "application/occi+json"}
CIMI_MACHINE, CIMI_VOLUME = "/cimi/machines/{instance_uuid}", "/cimi/volumes/{volume_uuid}"
OCCI_COMPUTE, OCCI_STORAGE = "/occi/compute/{instance_uuid}", "/occi/storage/{volume_uuid}"
#: what the CIMI and OCCI rows name, each of which its owner reaches
OWNER_PATHS = (
    CIMI_MACHINE,
    CIMI_VOLUME,
    CIMI_MACHINE + "/volumes/{attached_uuid}",
    OCCI_COMPUTE,
    OCCI_STORAGE,
    "/occi/storagelink/{instance_uuid}_{attached_uuid}",
)


def names(me: Estate, them: Estate) -> dict[str, str]:
    """What a row's path or body can name: the owner's ids, and the attacker's own as ``my_<key>``."""
    return {**them.ids, **{f"my_{key}": value for key, value in me.ids.items()}}


def cimi_action(name: str) -> Callable[[Estate, Estate], Any]:
    return lambda me, them: {"resourceURI": f"{CIMI_NS}/Action", "action": f"{CIMI_NS}/action/{name}"}


def cimi_attach(volume: str) -> Callable[[Estate, Estate], Any]:
    """A MachineVolume naming the volume ``volume`` (a key of ``names``)."""
    return lambda me, them: {
        "resourceURI": f"{CIMI_NS}/MachineVolume",
        "volume": {"href": f"{me.url}/cimi/volumes/{names(me, them)[volume]}"},
        "initialLocation": "/dev/sdk",
    }


def occi_action(kind: str, term: str, attributes: dict[str, Any] | None = None) -> Callable[[Estate, Estate], Any]:
    scheme = f"http://schemas.ogf.org/occi/infrastructure/{kind}/action#"
    return lambda me, them: json.dumps({"action": scheme + term, "attributes": attributes or {}}).encode()


def occi_link(kind: str, source: str, target: str) -> Callable[[Estate, Estate], Any]:
    """An OCCI link (JSON rendering) from ``source`` to ``target`` (locations under /occi/, formatted by ``names``)."""

    def body(me: Estate, them: Estate) -> bytes:
        def where(location: str) -> str:
            return f"{me.url}/occi/{location.format_map(names(me, them))}"

        return json.dumps(
            {"kind": OCCI_INFRA + kind, "source": {"location": where(source)}, "target": {"location": where(target)}}
        ).encode()

    return body


@dataclass(frozen=True)
class Row:
    frontend: str
    kind: str
    operation: str  # read / modify / delete / attach / source / tag
    attempt: Attempt
    not_found: str  # what the protocol answers for an id that does not exist

    @property
    def id(self) -> str:
        return f"{self.frontend}-{self.kind}-{self.operation}"


TERMINATE = "terminate"
MATRIX: list[Row] = [
    # -- EC2: machines
    Row("ec2", "instance", "read", ec2(lambda c, me, t: c.describe_instances(InstanceIds=[t.instance])),
        "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "read-filter", listed(lambda c, me, t: c.describe_instances(
        Filters=[{"Name": "instance-id", "Values": [t.instance]}])["Reservations"]), EMPTY),
    Row("ec2", "instance", "read-status", ec2(lambda c, me, t: c.describe_instance_status(
        InstanceIds=[t.instance], IncludeAllInstances=True)), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "read-attribute", ec2(lambda c, me, t: c.describe_instance_attribute(
        InstanceId=t.instance, Attribute="instanceType")), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "read-console", ec2(lambda c, me, t: c.get_console_output(InstanceId=t.instance)),
        "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "modify", ec2(lambda c, me, t: c.modify_instance_attribute(
        InstanceId=t.instance, DisableApiTermination={"Value": True})), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "stop", ec2(lambda c, me, t: c.stop_instances(InstanceIds=[t.instance])),
        "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "start", ec2(lambda c, me, t: c.start_instances(InstanceIds=[t.instance])),
        "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "reboot", ec2(lambda c, me, t: c.reboot_instances(InstanceIds=[t.instance])),
        "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "delete", ec2(lambda c, me, t: c.terminate_instances(InstanceIds=[t.instance])),
        "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "attach-volume-to", ec2(lambda c, me, t: c.attach_volume(
        VolumeId=me.volume, InstanceId=t.instance, Device="/dev/sdk")), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "associate-address-to", ec2(lambda c, me, t: c.associate_address(
        AllocationId=me.allocation, InstanceId=t.instance, AllowReassociation=True)), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "source-image", ec2(lambda c, me, t: c.create_image(
        InstanceId=t.instance, Name=f"stolen-{me.name}-{t.name}")), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "tag", ec2(tag("instance")), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "untag", ec2(untag("instance")), "InvalidInstanceID.NotFound"),
    Row("ec2", "instance", "read-tags", listed(tags_of("instance")), EMPTY),
    # -- EC2: volumes
    Row("ec2", "volume", "read", ec2(lambda c, me, t: c.describe_volumes(VolumeIds=[t.volume])),
        "InvalidVolume.NotFound"),
    Row("ec2", "volume", "read-filter", listed(lambda c, me, t: c.describe_volumes(
        Filters=[{"Name": "volume-id", "Values": [t.volume]}])["Volumes"]), EMPTY),
    Row("ec2", "volume", "delete", ec2(lambda c, me, t: c.delete_volume(VolumeId=t.volume)),
        "InvalidVolume.NotFound"),
    Row("ec2", "volume", "attach", ec2(lambda c, me, t: c.attach_volume(
        VolumeId=t.volume, InstanceId=me.instance, Device="/dev/sdk")), "InvalidVolume.NotFound"),
    Row("ec2", "volume", "detach", ec2(lambda c, me, t: c.detach_volume(VolumeId=t.attached)),
        "InvalidVolume.NotFound"),
    Row("ec2", "volume", "detach-forced", ec2(lambda c, me, t: c.detach_volume(
        VolumeId=t.attached, InstanceId=t.instance, Force=True)), "InvalidVolume.NotFound"),
    Row("ec2", "volume", "source-snapshot", ec2(lambda c, me, t: c.create_snapshot(VolumeId=t.volume)),
        "InvalidVolume.NotFound"),
    Row("ec2", "volume", "tag", ec2(tag("volume")), "InvalidVolume.NotFound"),
    Row("ec2", "volume", "untag", ec2(untag("volume")), "InvalidVolume.NotFound"),
    Row("ec2", "volume", "read-tags", listed(tags_of("volume")), EMPTY),
    # -- EC2: snapshots
    Row("ec2", "snapshot", "read", ec2(lambda c, me, t: c.describe_snapshots(SnapshotIds=[t.snapshot])),
        "InvalidSnapshot.NotFound"),
    Row("ec2", "snapshot", "delete", ec2(lambda c, me, t: c.delete_snapshot(SnapshotId=t.snapshot)),
        "InvalidSnapshot.NotFound"),
    Row("ec2", "snapshot", "source-volume", ec2(lambda c, me, t: c.create_volume(
        SnapshotId=t.snapshot, AvailabilityZone="local-1a")), "InvalidSnapshot.NotFound"),
    Row("ec2", "snapshot", "tag", ec2(tag("snapshot")), "InvalidSnapshot.NotFound"),
    Row("ec2", "snapshot", "untag", ec2(untag("snapshot")), "InvalidSnapshot.NotFound"),
    # -- EC2: images (made from the tenant's instance; private)
    Row("ec2", "image", "read", ec2(lambda c, me, t: c.describe_images(ImageIds=[t.image])),
        "InvalidAMIID.NotFound"),
    Row("ec2", "image", "read-filter", listed(lambda c, me, t: c.describe_images(
        Filters=[{"Name": "image-id", "Values": [t.image]}])["Images"]), EMPTY),
    Row("ec2", "image", "delete", ec2(lambda c, me, t: c.deregister_image(ImageId=t.image)),
        "InvalidAMIID.NotFound"),
    Row("ec2", "image", "source-instance", ec2(lambda c, me, t: c.run_instances(
        ImageId=t.image, InstanceType="t3.micro", MinCount=1, MaxCount=1)), "InvalidAMIID.NotFound"),
    Row("ec2", "image", "tag", ec2(tag("image")), "InvalidAMIID.NotFound"),
    Row("ec2", "image", "untag", ec2(untag("image")), "InvalidAMIID.NotFound"),
    # -- EC2: key pairs (by name and by id)
    Row("ec2", "keypair", "read", ec2(lambda c, me, t: c.describe_key_pairs(KeyNames=[t.key_name])),
        "InvalidKeyPair.NotFound"),
    Row("ec2", "keypair", "read-id", ec2(lambda c, me, t: c.describe_key_pairs(KeyPairIds=[t.key_id])),
        "InvalidKeyPair.NotFound"),
    Row("ec2", "keypair", "use", ec2(lambda c, me, t: c.run_instances(
        ImageId=me.public_image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName=t.key_name)),
        "InvalidKeyPair.NotFound"),
    Row("ec2", "keypair", "tag", ec2(tag("key_id")), "InvalidKeyPair.NotFound"),
    # -- EC2: security groups
    Row("ec2", "group", "read", ec2(lambda c, me, t: c.describe_security_groups(GroupIds=[t.group])),
        "InvalidGroup.NotFound"),
    Row("ec2", "group", "modify-ingress", ec2(lambda c, me, t: c.authorize_security_group_ingress(
        GroupId=t.group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                                         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])), "InvalidGroup.NotFound"),
    Row("ec2", "group", "revoke-ingress", ec2(lambda c, me, t: c.revoke_security_group_ingress(
        GroupId=t.group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                                         "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])), "InvalidGroup.NotFound"),
    Row("ec2", "group", "modify-egress", ec2(lambda c, me, t: c.authorize_security_group_egress(
        GroupId=t.group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 25, "ToPort": 25,
                                         "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])), "InvalidGroup.NotFound"),
    Row("ec2", "group", "revoke-egress", ec2(lambda c, me, t: c.revoke_security_group_egress(
        GroupId=t.group, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])),
        "InvalidGroup.NotFound"),
    Row("ec2", "group", "delete", ec2(lambda c, me, t: c.delete_security_group(GroupId=t.group)),
        "InvalidGroup.NotFound"),
    Row("ec2", "group", "use", ec2(lambda c, me, t: c.run_instances(
        ImageId=me.public_image, InstanceType="t3.micro", MinCount=1, MaxCount=1, SecurityGroupIds=[t.group])),
        "InvalidGroup.NotFound"),
    Row("ec2", "group", "tag", ec2(tag("group")), "InvalidGroup.NotFound"),
    # -- EC2: VPCs
    Row("ec2", "vpc", "read", ec2(lambda c, me, t: c.describe_vpcs(VpcIds=[t.vpc])), "InvalidVpcID.NotFound"),
    Row("ec2", "vpc", "delete", ec2(lambda c, me, t: c.delete_vpc(VpcId=t.vpc)), "InvalidVpcID.NotFound"),
    Row("ec2", "vpc", "source-subnet", ec2(lambda c, me, t: c.create_subnet(VpcId=t.vpc, CidrBlock="10.9.9.0/24")),
        "InvalidVpcID.NotFound"),
    Row("ec2", "vpc", "source-group", ec2(lambda c, me, t: c.create_security_group(
        VpcId=t.vpc, GroupName=f"in-{t.name}-{me.name}", Description="x")), "InvalidVpcID.NotFound"),
    Row("ec2", "vpc", "tag", ec2(tag("vpc")), "InvalidVpcID.NotFound"),
    # -- EC2: subnets
    Row("ec2", "subnet", "read", ec2(lambda c, me, t: c.describe_subnets(SubnetIds=[t.subnet])),
        "InvalidSubnetID.NotFound"),
    Row("ec2", "subnet", "delete", ec2(lambda c, me, t: c.delete_subnet(SubnetId=t.subnet)),
        "InvalidSubnetID.NotFound"),
    Row("ec2", "subnet", "use", ec2(lambda c, me, t: c.run_instances(
        ImageId=me.public_image, InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=t.subnet)),
        "InvalidSubnetID.NotFound"),
    Row("ec2", "subnet", "tag", ec2(tag("subnet")), "InvalidSubnetID.NotFound"),
    # -- EC2: elastic addresses (by allocation id, association id and public IP)
    Row("ec2", "address", "read", ec2(lambda c, me, t: c.describe_addresses(AllocationIds=[t.allocation])),
        "InvalidAllocationID.NotFound"),
    Row("ec2", "address", "read-ip", ec2(lambda c, me, t: c.describe_addresses(PublicIps=[t.public_ip])),
        "InvalidAddress.NotFound"),
    Row("ec2", "address", "read-attribute", ec2(lambda c, me, t: c.describe_addresses_attribute(
        AllocationIds=[t.allocation], Attribute="domain-name")), "InvalidAllocationID.NotFound"),
    Row("ec2", "address", "associate", ec2(lambda c, me, t: c.associate_address(
        AllocationId=t.allocation, InstanceId=me.instance, AllowReassociation=True)), "InvalidAllocationID.NotFound"),
    Row("ec2", "address", "disassociate", ec2(lambda c, me, t: c.disassociate_address(AssociationId=t.association)),
        "InvalidAssociationID.NotFound"),
    Row("ec2", "address", "delete", ec2(lambda c, me, t: c.release_address(AllocationId=t.allocation)),
        "InvalidAllocationID.NotFound"),
    Row("ec2", "address", "tag", ec2(tag("allocation")), "InvalidAllocationID.NotFound"),
    # -- CIMI: machines and volumes (by their gateway ids, UUIDs; {my_...} is the attacker's own)
    Row("cimi", "instance", "read", http("GET", CIMI_MACHINE), "404"),
    Row("cimi", "instance", "modify", http("PUT", CIMI_MACHINE, lambda me, t: {"name": "stolen"}), "404"),
    Row("cimi", "instance", "stop", http("POST", CIMI_MACHINE, cimi_action("stop")), "404"),
    Row("cimi", "instance", "delete", http("DELETE", CIMI_MACHINE), "404"),
    Row("cimi", "instance", "read-volumes", http("GET", CIMI_MACHINE + "/volumes"), "404"),
    Row("cimi", "instance", "attach-volume-to", http("POST", CIMI_MACHINE + "/volumes", cimi_attach("my_volume_uuid")),
        "404"),
    Row("cimi", "instance", "detach-volume", http("DELETE", CIMI_MACHINE + "/volumes/{attached_uuid}"), "404"),
    Row("cimi", "instance", "read-interfaces", http("GET", CIMI_MACHINE + "/networkInterfaces"), "404"),
    Row("cimi", "volume", "read", http("GET", CIMI_VOLUME), "404"),
    Row("cimi", "volume", "modify", http("PUT", CIMI_VOLUME, lambda me, t: {"name": "stolen"}), "404"),
    Row("cimi", "volume", "delete", http("DELETE", CIMI_VOLUME), "404"),
    Row("cimi", "volume", "attach", http("POST", "/cimi/machines/{my_instance_uuid}/volumes",
        cimi_attach("volume_uuid")), "404"),
    # -- OCCI: computes and storages (JSON rendering)
    Row("occi", "instance", "read", http("GET", OCCI_COMPUTE), "404"),
    Row("occi", "instance", "stop", http("POST", OCCI_COMPUTE + "?action=stop", occi_action("compute", "stop"),
        **OCCI_BODY), "404"),
    Row("occi", "instance", "delete", http("DELETE", OCCI_COMPUTE), "404"),
    Row("occi", "instance", "attach-storage-to", http("POST", "/occi/storagelink/", occi_link(
        "storagelink", "compute/{instance_uuid}", "storage/{my_volume_uuid}"), **OCCI_BODY), "404"),
    Row("occi", "instance", "attach-address-to", http("POST", "/occi/networkinterface/", occi_link(
        "networkinterface", "compute/{instance_uuid}", "network/public"), **OCCI_BODY), "404"),
    Row("occi", "volume", "read", http("GET", OCCI_STORAGE), "404"),
    Row("occi", "volume", "resize", http("POST", OCCI_STORAGE + "?action=resize", occi_action("storage", "resize",
        {"occi.storage.size": 5}), **OCCI_BODY), "404"),
    Row("occi", "volume", "delete", http("DELETE", OCCI_STORAGE), "404"),
    Row("occi", "volume", "attach", http("POST", "/occi/storagelink/", occi_link(
        "storagelink", "compute/{my_instance_uuid}", "storage/{volume_uuid}"), **OCCI_BODY), "404"),
    Row("occi", "volume", "detach", http("DELETE", "/occi/storagelink/{instance_uuid}_{attached_uuid}"), "404"),
]  # fmt: skip

#: kind -> the owner's view of its resources of that kind (tags included): it must not change under attack
VIEWS: dict[str, Callable[[Estate], Any]] = {
    "instance": lambda o: (
        o.ec2.describe_instances(InstanceIds=[o.instance])["Reservations"][0]["Instances"],
        o.ec2.describe_instance_attribute(InstanceId=o.instance, Attribute="disableApiTermination")[
            "DisableApiTermination"
        ],
    ),
    "volume": lambda o: o.ec2.describe_volumes(VolumeIds=[o.volume, o.attached])["Volumes"],
    "snapshot": lambda o: o.ec2.describe_snapshots(SnapshotIds=[o.snapshot])["Snapshots"],
    "image": lambda o: o.ec2.describe_images(ImageIds=[o.image])["Images"],
    "keypair": lambda o: o.ec2.describe_key_pairs(KeyNames=[o.key_name])["KeyPairs"],
    "group": lambda o: o.ec2.describe_security_groups(GroupIds=[o.group])["SecurityGroups"],
    "vpc": lambda o: (
        o.ec2.describe_vpcs(VpcIds=[o.vpc])["Vpcs"],
        o.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [o.vpc]}])["Subnets"],
        o.ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [o.vpc]}])["SecurityGroups"],
    ),
    "subnet": lambda o: o.ec2.describe_subnets(SubnetIds=[o.subnet])["Subnets"],
    "address": lambda o: o.ec2.describe_addresses(AllocationIds=[o.allocation])["Addresses"],
}


def everything(o: Estate) -> dict[str, int]:
    """How many of each kind a tenant has: nothing made in anybody's account by a refused attempt."""
    c = o.ec2
    return {
        "instances": sum(len(r["Instances"]) for r in c.describe_instances()["Reservations"]),
        "volumes": len(c.describe_volumes()["Volumes"]),
        "snapshots": len(c.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
        "images": len(c.describe_images(Owners=["self"])["Images"]),
        "groups": len(c.describe_security_groups()["SecurityGroups"]),
        "subnets": len(c.describe_subnets()["Subnets"]),
        "tags": len(c.describe_tags()["Tags"]),
    }


# -- the three tenants' resources, made once per module ----------------------------------------------------------


def _wait(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"{what} did not settle"
        time.sleep(0.2)


def _build(gw: GatewayProcess, name: str) -> Estate:
    c = gw.client(name, f"{name}-secret")
    http_session = requests.Session()
    http_session.auth = (name, f"{name}-secret")
    http_session.headers.update({"Accept": "application/json", "CIMI-Specification-Version": CIMI})
    e = Estate(name, c, http_session, gw.url)
    ids = e.ids
    ids["public_image"] = next(i["ImageId"] for i in c.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")
    ids["vpc"] = c.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    ids["subnet"] = c.create_subnet(VpcId=ids["vpc"], CidrBlock="10.20.1.0/24", AvailabilityZone="local-1a")["Subnet"][
        "SubnetId"
    ]
    ids["group"] = c.create_security_group(GroupName=f"{name}-sg", Description="isolation", VpcId=ids["vpc"])["GroupId"]
    c.authorize_security_group_ingress(
        GroupId=ids["group"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}],
    )
    key = c.create_key_pair(KeyName=f"{name}-key")
    ids["key_name"], ids["key_id"] = key["KeyName"], key["KeyPairId"]
    ids["instance"] = c.run_instances(
        ImageId=ids["public_image"],
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        KeyName=ids["key_name"],
        SubnetId=ids["subnet"],
        SecurityGroupIds=[ids["group"]],
    )["Instances"][0]["InstanceId"]
    ids["volume"] = c.create_volume(Size=1, AvailabilityZone="local-1a")["VolumeId"]
    ids["attached"] = c.create_volume(Size=1, AvailabilityZone="local-1a")["VolumeId"]
    _wait("instance", lambda: _one(c.describe_instances(InstanceIds=[ids["instance"]]))["State"]["Name"] == "running")
    _wait("volumes", lambda: _volume_states(c, ids["volume"], ids["attached"]) == {"available"})
    c.attach_volume(VolumeId=ids["attached"], InstanceId=ids["instance"], Device="/dev/sdf")
    ids["snapshot"] = c.create_snapshot(VolumeId=ids["volume"])["SnapshotId"]
    ids["image"] = c.create_image(InstanceId=ids["instance"], Name=f"{name}-image")["ImageId"]
    # each tenant is its own simulated cloud, with its own address pool: tenant n keeps its (n+1)th address so
    # that no tenant holds another's public IP
    addresses = [c.allocate_address(Domain="vpc") for _ in range(TENANTS.index(name) + 1)]
    for spare in addresses[:-1]:
        c.release_address(AllocationId=spare["AllocationId"])
    ids["allocation"], ids["public_ip"] = addresses[-1]["AllocationId"], addresses[-1]["PublicIp"]
    ids["association"] = c.associate_address(AllocationId=ids["allocation"], InstanceId=ids["instance"])[
        "AssociationId"
    ]
    _wait("attachment", lambda: _volume_states(c, ids["attached"]) == {"in-use"})
    _wait(
        "snapshot", lambda: c.describe_snapshots(SnapshotIds=[ids["snapshot"]])["Snapshots"][0]["State"] == "completed"
    )
    _wait("image", lambda: c.describe_images(ImageIds=[ids["image"]])["Images"][0]["State"] == "available")
    _wait("instance", lambda: _one(c.describe_instances(InstanceIds=[ids["instance"]]))["State"]["Name"] == "running")
    tagged = [ids[k] for k in ("instance", "volume", "attached", "snapshot", "image", "key_id", "group", "vpc")]
    tagged += [ids["subnet"], ids["allocation"]]
    c.create_tags(Resources=tagged, Tags=[{"Key": "owner", "Value": name}])
    # CIMI and OCCI name the same resources by their gateway ids (UUIDs; the EC2 id is the first 17 hex digits)
    for collection, attribute, keys in (
        ("machines", "machines", ("instance",)),
        ("volumes", "volumes", ("volume", "attached")),
    ):
        docs = http_session.get(f"{gw.url}/cimi/{collection}", timeout=60).json()[attribute]
        by_short = {doc["id"].rsplit("/", 1)[1].replace("-", "")[:17]: doc["id"].rsplit("/", 1)[1] for doc in docs}
        for key in keys:
            ids[f"{key}_uuid"] = by_short[ids[key].split("-", 1)[1]]
    return e


def ghost(like: Estate) -> Estate:
    """A tenant nobody is: ids of the same forms as ``like``'s, naming nothing."""
    ids: dict[str, str] = {}
    for key, value in like.ids.items():
        if key.endswith("_uuid"):
            ids[key] = str(uuid.uuid4())
        elif key == "public_ip":
            ids[key] = "192.0.2.77"
        elif key == "key_name":
            ids[key] = f"ghost-{uuid.uuid4().hex[:8]}"
        else:
            prefix, _, digits = value.rpartition("-")
            ids[key] = f"{prefix}-{uuid.uuid4().hex[: len(digits)]}"
    return Estate("ghost", like.ec2, like.http, like.url, ids)


def _one(answer: dict[str, Any]) -> dict[str, Any]:
    return answer["Reservations"][0]["Instances"][0]


def _volume_states(c: Any, *ids: str) -> set[str]:
    return {v["State"] for v in c.describe_volumes(VolumeIds=list(ids))["Volumes"]}


@pytest.fixture(scope="module")
def estates(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Estate]]:
    """Three tenants on one gateway (one simulator account), each with one settled resource of every kind."""
    url = redis_server.url.rsplit("/", 1)[0] + "/0"
    redis.Redis.from_url(url).flushdb()
    text = CONFIG.format(redis_url=url) + "".join(
        TENANT.format(name=name, account=f"{n + 1:012d}") for n, name in enumerate(TENANTS)
    )
    path: Path = tmp_path_factory.mktemp("isolation") / "gw.toml"
    path.write_text(text)
    gw = GatewayProcess(path)
    try:
        yield {name: _build(gw, name) for name in TENANTS}
    finally:
        gw.stop()
        assert b"Traceback" not in gw.log.read_bytes(), gw.log.read_text()[-3000:]


def test_owners_still_reach_their_own(estates: dict[str, Estate]) -> None:
    """The matrix's premise: every id it uses is live for its owner, in every frontend (so a refusal is isolation,
    not a typo)."""
    for e in estates.values():
        for view in VIEWS.values():
            assert view(e)
        for path in OWNER_PATHS:
            assert e.http.get(e.url + path.format_map(e.ids), timeout=60).status_code == 200, path


@pytest.fixture(scope="module")
def counts(estates: dict[str, Estate]) -> dict[str, dict[str, int]]:
    """How many of each kind every tenant has before the matrix runs."""
    return {name: everything(e) for name, e in estates.items()}


@pytest.mark.parametrize("row", MATRIX, ids=[row.id for row in MATRIX])
def test_foreign_id_is_not_found_and_changes_nothing(
    row: Row, estates: dict[str, Estate], counts: dict[str, dict[str, int]]
) -> None:
    # the expected answer is the one for an id nobody has: a foreign id is indistinguishable from a missing one
    me = estates[TENANTS[0]]
    assert row.attempt(me, ghost(me)) == row.not_found, "the row's not-found is not what a missing id gets"
    for attacker, owner in PAIRS:
        me, them = estates[attacker], estates[owner]
        view = VIEWS[row.kind]
        before = view(them)
        outcome = row.attempt(me, them)
        assert outcome == row.not_found, f"{attacker} on {owner}'s {row.kind}: {outcome}"
        assert view(them) == before, f"{attacker} changed {owner}'s {row.kind}"


def test_nothing_was_made_anywhere(estates: dict[str, Estate], counts: dict[str, dict[str, int]]) -> None:
    """After the whole matrix, every tenant has exactly what it had: no refused attempt made anything."""
    assert {name: everything(e) for name, e in estates.items()} == counts
