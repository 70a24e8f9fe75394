"""Elastic IPs over HTTP with boto3: AllocateAddress, DescribeAddresses, AssociateAddress, DisassociateAddress,
ReleaseAddress, DescribeAddressesAttribute, checked against the EC2 API reference.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import error_of, unique

WAIT = {"Delay": 1, "MaxAttempts": 30}
ALLOCATION_ID = re.compile(r"^eipalloc-[0-9a-f]{17}$")
ASSOCIATION_ID = re.compile(r"^eipassoc-[0-9a-f]{17}$")
#: RFC 5737 documentation address: never an elastic IP of anyone.
NOBODYS_IP = "203.0.113.77"


def _fails(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return error_of(excinfo)


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _allocate(ec2: Any, **tags: str) -> dict[str, Any]:
    spec = [{"ResourceType": "elastic-ip", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return ec2.allocate_address(Domain="vpc", TagSpecifications=spec)


def _one(ec2: Any, allocation_id: str) -> dict[str, Any]:
    (found,) = ec2.describe_addresses(AllocationIds=[allocation_id])["Addresses"]
    return found


@pytest.fixture(scope="module")
def instances(gateway: Any) -> list[dict[str, Any]]:
    """Two running instances of the demo tenant, shared by the association tests."""
    ec2 = gateway.client()
    image = next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")
    launched = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=2, MaxCount=2)["Instances"]
    ids = [i["InstanceId"] for i in launched]
    ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig=WAIT)
    return [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]


# -- allocate / describe / release -------------------------------------------------------------------------


def test_allocate_describe_release(ec2: Any) -> None:
    name = unique("eip")
    got = _allocate(ec2, Name=name)
    assert ALLOCATION_ID.match(got["AllocationId"])
    assert got["Domain"] == "vpc"
    ipaddress.IPv4Address(got["PublicIp"])  # a real IPv4 address
    found = _one(ec2, got["AllocationId"])
    assert found["PublicIp"] == got["PublicIp"]
    assert found["Domain"] == "vpc"
    assert "AssociationId" not in found and "InstanceId" not in found
    assert _tags(found["Tags"]) == {"Name": name}
    (by_ip,) = ec2.describe_addresses(PublicIps=[got["PublicIp"]])["Addresses"]
    assert by_ip["AllocationId"] == got["AllocationId"]
    ec2.release_address(AllocationId=got["AllocationId"])
    assert _fails(ec2.describe_addresses, AllocationIds=[got["AllocationId"]]) == ("InvalidAllocationID.NotFound", 400)
    assert _fails(ec2.release_address, AllocationId=got["AllocationId"]) == ("InvalidAllocationID.NotFound", 400)


def test_release_by_public_ip(ec2: Any) -> None:
    got = _allocate(ec2)
    ec2.release_address(PublicIp=got["PublicIp"])
    assert got["AllocationId"] not in {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]}


def test_two_allocations_get_distinct_addresses(ec2: Any) -> None:
    a, b = _allocate(ec2), _allocate(ec2)
    assert a["PublicIp"] != b["PublicIp"]
    assert a["AllocationId"] != b["AllocationId"]


@pytest.mark.parametrize(
    ("name", "values", "hit"),
    [
        ("allocation-id", ["{alloc}"], True),
        ("allocation-id", ["eipalloc-*"], True),
        ("domain", ["vpc"], True),
        ("domain", ["standard"], False),
        ("public-ip", ["{ip}"], True),
        ("public-ip", ["{ip_prefix}.*"], True),
        ("public-ip", [NOBODYS_IP], False),
        ("association-id", ["*"], False),  # not associated
        ("instance-id", ["*"], False),
        ("network-interface-id", ["*"], False),
        ("private-ip-address", ["*"], False),
        ("tag:env", ["prod"], True),
        ("tag:env", ["pr?d"], True),
        ("tag:env", ["dev"], False),
        ("tag-key", ["env"], True),
        ("tag-value", ["prod"], True),
    ],
)
def test_describe_addresses_filters(ec2: Any, name: str, values: list[str], hit: bool) -> None:
    got = _allocate(ec2, env="prod")
    subs = {"alloc": got["AllocationId"], "ip": got["PublicIp"], "ip_prefix": got["PublicIp"].rsplit(".", 1)[0]}
    filters = [
        {"Name": "allocation-id", "Values": [got["AllocationId"]]},
        {"Name": name, "Values": [v.format(**subs) for v in values]},
    ]
    found = [a["AllocationId"] for a in ec2.describe_addresses(Filters=filters)["Addresses"]]
    ec2.release_address(AllocationId=got["AllocationId"])
    assert found == ([got["AllocationId"]] if hit else [])


def test_describe_addresses_unknown_filter(ec2: Any) -> None:
    assert _fails(ec2.describe_addresses, Filters=[{"Name": "colour", "Values": ["red"]}]) == (
        "InvalidParameterValue",
        400,
    )


def test_describe_addresses_unknown_ids_and_ips(ec2: Any) -> None:
    assert _fails(ec2.describe_addresses, AllocationIds=["eipalloc-00000000000000000"]) == (
        "InvalidAllocationID.NotFound",
        400,
    )
    assert _fails(ec2.describe_addresses, PublicIps=[NOBODYS_IP]) == ("InvalidAddress.NotFound", 400)


def test_release_without_an_address_is_missing_parameter(ec2: Any) -> None:
    assert _fails(ec2.release_address) == ("MissingParameter", 400)
    assert _fails(ec2.release_address, PublicIp=NOBODYS_IP) == ("InvalidAddress.NotFound", 400)


def test_allocate_refuses_tags_for_another_resource_type(ec2: Any) -> None:
    spec = [{"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}]
    assert _fails(ec2.allocate_address, Domain="vpc", TagSpecifications=spec) == ("InvalidParameterValue", 400)


# -- association ------------------------------------------------------------------------------------------


def test_associate_disassociate_round_trip(ec2: Any, instances: list[dict[str, Any]]) -> None:
    inst = instances[0]
    got = _allocate(ec2)
    assoc = ec2.associate_address(AllocationId=got["AllocationId"], InstanceId=inst["InstanceId"])["AssociationId"]
    assert ASSOCIATION_ID.match(assoc)
    found = _one(ec2, got["AllocationId"])
    assert found["AssociationId"] == assoc
    assert found["InstanceId"] == inst["InstanceId"]
    assert found["PrivateIpAddress"] == inst["PrivateIpAddress"]
    (seen,) = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"]
    assert seen["PublicIpAddress"] == got["PublicIp"]
    for name, value in (
        ("association-id", assoc),
        ("instance-id", inst["InstanceId"]),
        ("private-ip-address", inst["PrivateIpAddress"]),
    ):
        hits = ec2.describe_addresses(Filters=[{"Name": name, "Values": [value]}])["Addresses"]
        assert [a["AllocationId"] for a in hits] == [got["AllocationId"]], name
    # an associated VPC address cannot be released
    assert _fails(ec2.release_address, AllocationId=got["AllocationId"]) == ("InvalidIPAddress.InUse", 400)
    ec2.disassociate_address(AssociationId=assoc)
    after = _one(ec2, got["AllocationId"])
    assert "AssociationId" not in after and "InstanceId" not in after
    (seen,) = ec2.describe_instances(InstanceIds=[inst["InstanceId"]])["Reservations"][0]["Instances"]
    assert seen.get("PublicIpAddress") != got["PublicIp"]
    ec2.release_address(AllocationId=got["AllocationId"])


def test_associate_by_public_ip_and_disassociate_by_public_ip_is_idempotent(
    ec2: Any, instances: list[dict[str, Any]]
) -> None:
    got = _allocate(ec2)
    assoc = ec2.associate_address(PublicIp=got["PublicIp"], InstanceId=instances[1]["InstanceId"])["AssociationId"]
    assert ASSOCIATION_ID.match(assoc)
    assert _one(ec2, got["AllocationId"])["InstanceId"] == instances[1]["InstanceId"]
    ec2.disassociate_address(PublicIp=got["PublicIp"])
    ec2.disassociate_address(PublicIp=got["PublicIp"])  # EC2: repeating it is not an error
    assert "InstanceId" not in _one(ec2, got["AllocationId"])
    ec2.release_address(AllocationId=got["AllocationId"])


def test_reassociation_moves_the_address_unless_refused(ec2: Any, instances: list[dict[str, Any]]) -> None:
    first, second = instances
    got = _allocate(ec2)
    ec2.associate_address(AllocationId=got["AllocationId"], InstanceId=first["InstanceId"])
    # EC2-VPC: with AllowReassociation false the call fails if the address is associated elsewhere
    assert _fails(
        ec2.associate_address,
        AllocationId=got["AllocationId"],
        InstanceId=second["InstanceId"],
        AllowReassociation=False,
    ) == ("Resource.AlreadyAssociated", 400)
    assert _one(ec2, got["AllocationId"])["InstanceId"] == first["InstanceId"]
    # ... and by default reassociation is automatic
    new = ec2.associate_address(AllocationId=got["AllocationId"], InstanceId=second["InstanceId"])["AssociationId"]
    assert ASSOCIATION_ID.match(new)
    found = _one(ec2, got["AllocationId"])
    assert found["InstanceId"] == second["InstanceId"]
    assert found["AssociationId"] == new
    (was,) = ec2.describe_instances(InstanceIds=[first["InstanceId"]])["Reservations"][0]["Instances"]
    assert was.get("PublicIpAddress") != got["PublicIp"]
    ec2.disassociate_address(AssociationId=new)
    ec2.release_address(AllocationId=got["AllocationId"])


def test_association_errors(ec2: Any, instances: list[dict[str, Any]]) -> None:
    got = _allocate(ec2)
    assert _fails(ec2.associate_address, AllocationId=got["AllocationId"]) == ("MissingParameter", 400)
    assert _fails(ec2.associate_address, InstanceId=instances[0]["InstanceId"]) == ("MissingParameter", 400)
    assert _fails(ec2.associate_address, AllocationId=got["AllocationId"], InstanceId="i-00000000000000000") == (
        "InvalidInstanceID.NotFound",
        400,
    )
    assert _fails(
        ec2.associate_address, AllocationId="eipalloc-00000000000000000", InstanceId=instances[0]["InstanceId"]
    ) == ("InvalidAllocationID.NotFound", 400)
    assert _fails(ec2.associate_address, PublicIp=NOBODYS_IP, InstanceId=instances[0]["InstanceId"]) == (
        "InvalidAddress.NotFound",
        400,
    )
    assert _fails(ec2.disassociate_address, AssociationId="eipassoc-00000000000000000") == (
        "InvalidAssociationID.NotFound",
        400,
    )
    assert _fails(ec2.disassociate_address) == ("MissingParameter", 400)
    assert _fails(ec2.disassociate_address, PublicIp=NOBODYS_IP) == ("InvalidAddress.NotFound", 400)
    ec2.release_address(AllocationId=got["AllocationId"])


# -- DescribeAddressesAttribute -----------------------------------------------------------------------------


def test_describe_addresses_attribute(ec2: Any) -> None:
    a, b = _allocate(ec2), _allocate(ec2)
    ids = [a["AllocationId"], b["AllocationId"]]
    got = ec2.describe_addresses_attribute(AllocationIds=ids, Attribute="domain-name")["Addresses"]
    assert {(x["AllocationId"], x["PublicIp"]) for x in got} == {
        (a["AllocationId"], a["PublicIp"]),
        (b["AllocationId"], b["PublicIp"]),
    }
    assert all("PtrRecord" not in x for x in got)  # no reverse DNS record was ever set
    first = ec2.describe_addresses_attribute(AllocationIds=ids, Attribute="domain-name", MaxResults=1)
    assert len(first["Addresses"]) == 1
    second = ec2.describe_addresses_attribute(
        AllocationIds=ids, Attribute="domain-name", MaxResults=1, NextToken=first["NextToken"]
    )
    assert {first["Addresses"][0]["AllocationId"], second["Addresses"][0]["AllocationId"]} == set(ids)
    assert _fails(ec2.describe_addresses_attribute, AllocationIds=["eipalloc-00000000000000000"]) == (
        "InvalidAllocationID.NotFound",
        400,
    )
    for x in ids:
        ec2.release_address(AllocationId=x)


# -- roles, tenants and limits ----------------------------------------------------------------------------


def test_reader_can_describe_but_not_write(ec2: Any, gateway: Any, instances: list[dict[str, Any]]) -> None:
    reader = gateway.client("reader", "reader-secret")
    got = _allocate(ec2)
    assert [a["AllocationId"] for a in reader.describe_addresses(AllocationIds=[got["AllocationId"]])["Addresses"]] == [
        got["AllocationId"]
    ]
    assert _fails(reader.allocate_address, Domain="vpc") == ("UnauthorizedOperation", 403)
    assert _fails(
        reader.associate_address, AllocationId=got["AllocationId"], InstanceId=instances[0]["InstanceId"]
    ) == (
        "UnauthorizedOperation",
        403,
    )
    assert _fails(reader.disassociate_address, PublicIp=got["PublicIp"]) == ("UnauthorizedOperation", 403)
    assert _fails(reader.release_address, AllocationId=got["AllocationId"]) == ("UnauthorizedOperation", 403)
    ec2.release_address(AllocationId=got["AllocationId"])


def test_other_tenant_sees_none_of_demos_addresses(ec2: Any, gateway: Any) -> None:
    other = gateway.client("other", "other-secret")
    got = _allocate(ec2)
    assert got["AllocationId"] not in {a["AllocationId"] for a in other.describe_addresses()["Addresses"]}
    assert _fails(other.describe_addresses, AllocationIds=[got["AllocationId"]]) == (
        "InvalidAllocationID.NotFound",
        400,
    )
    assert _fails(other.release_address, AllocationId=got["AllocationId"]) == ("InvalidAllocationID.NotFound", 400)
    assert _fails(other.describe_addresses_attribute, AllocationIds=[got["AllocationId"]]) == (
        "InvalidAllocationID.NotFound",
        400,
    )
    assert _one(ec2, got["AllocationId"])["PublicIp"] == got["PublicIp"]
    ec2.release_address(AllocationId=got["AllocationId"])


def test_address_limit_exceeded(gateway: Any) -> None:
    """Allocating until the backend's pool runs out ends in AddressLimitExceeded (in the other tenant)."""
    other = gateway.client("other", "other-secret")
    allocated: list[str] = []
    code = None
    try:
        for _ in range(1000):
            try:
                allocated.append(other.allocate_address(Domain="vpc")["AllocationId"])
            except ClientError as exc:
                code = (exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])
                break
    finally:
        for allocation in allocated:
            other.release_address(AllocationId=allocation)
    assert code == ("AddressLimitExceeded", 400)
    assert len(set(allocated)) == len(allocated) > 0
