"""VPCs and subnets over HTTP with boto3: DescribeVpcs, CreateVpc, DeleteVpc, DescribeSubnets, CreateSubnet,
DeleteSubnet, checked against the EC2 API reference (filters, pagination, error codes, tenancy).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import error_of, unique

WAIT = {"Delay": 1, "MaxAttempts": 30}
VPC_ID = re.compile(r"^vpc-[0-9a-f]{17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{17}$")


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _vpc(ec2: Any, cidr: str = "10.20.0.0/16", **tags: str) -> dict[str, Any]:
    spec = [{"ResourceType": "vpc", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return ec2.create_vpc(CidrBlock=cidr, TagSpecifications=spec)["Vpc"]


def _subnet(ec2: Any, vpc_id: str, cidr: str, zone: str = "local-1a", **tags: str) -> dict[str, Any]:
    spec = [{"ResourceType": "subnet", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}] if tags else []
    return ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=spec)["Subnet"]


def _image_id(ec2: Any) -> str:
    return next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")


def _fails(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return error_of(excinfo)


# -- the default VPC -----------------------------------------------------------------------------------


def test_default_vpc_has_one_default_subnet_per_zone(ec2: Any) -> None:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]
    assert VPC_ID.match(vpc["VpcId"])
    assert vpc["IsDefault"] is True
    assert vpc["State"] == "available"
    assert vpc["OwnerId"] == "111111111111"
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlock"] == vpc["CidrBlock"]
    assert vpc["CidrBlockAssociationSet"][0]["CidrBlockState"]["State"] == "associated"
    subnets = ec2.describe_subnets(
        Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}, {"Name": "default-for-az", "Values": ["true"]}]
    )["Subnets"]
    assert sorted(s["AvailabilityZone"] for s in subnets) == ["local-1a", "local-1b"]
    network = ipaddress.ip_network(vpc["CidrBlock"])
    for s in subnets:
        assert SUBNET_ID.match(s["SubnetId"])
        assert s["DefaultForAz"] is True
        assert s["MapPublicIpOnLaunch"] is True  # EC2 maps public IPs on default subnets
        assert s["VpcId"] == vpc["VpcId"]
        assert ipaddress.ip_network(s["CidrBlock"]).subnet_of(network)
        # EC2 reserves the first four and the last address of every subnet
        assert 0 <= s["AvailableIpAddressCount"] <= ipaddress.ip_network(s["CidrBlock"]).num_addresses - 5


# -- CreateVpc / DescribeVpcs ----------------------------------------------------------------------------


def test_create_vpc_returns_it_tagged_and_describe_finds_it(ec2: Any) -> None:
    name = unique("vpc")
    vpc = _vpc(ec2, "10.21.0.0/16", Name=name, team="blue")
    assert VPC_ID.match(vpc["VpcId"])
    assert vpc["CidrBlock"] == "10.21.0.0/16"
    assert vpc["IsDefault"] is False
    assert vpc["State"] in ("pending", "available")
    assert _tags(vpc.get("Tags")) == {"Name": name, "team": "blue"}
    (found,) = ec2.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]
    assert found["VpcId"] == vpc["VpcId"]
    assert found["State"] == "available"
    assert found["OwnerId"] == "111111111111"
    assert _tags(found["Tags"]) == {"Name": name, "team": "blue"}


@pytest.mark.parametrize(
    ("name", "values", "hit"),
    [
        ("vpc-id", ["{id}"], True),
        ("vpc-id", ["vpc-*"], True),
        ("cidr", ["10.22.0.0/16"], True),
        ("cidr", ["10.22.*"], True),
        ("cidr", ["10.23.0.0/16"], False),
        ("cidr-block-association.cidr-block", ["10.22.0.0/16"], True),
        ("is-default", ["false"], True),
        ("is-default", ["true"], False),
        ("state", ["available"], True),
        ("state", ["pending"], False),
        ("owner-id", ["111111111111"], True),
        ("owner-id", ["222222222222"], False),
        ("dhcp-options-id", ["*"], True),
        ("tag:Name", ["{name}"], True),
        ("tag:Name", ["{name_prefix}*"], True),
        ("tag:Name", ["nothing-like-it", "{name}"], True),  # values of one filter are OR-ed
        ("tag:Name", ["nothing-like-it"], False),
        ("tag-key", ["Name"], True),
        ("tag-value", ["{name}"], True),
    ],
)
def test_describe_vpcs_filters(ec2: Any, name: str, values: list[str], hit: bool) -> None:
    tag = unique("vpcf")
    vpc = _vpc(ec2, "10.22.0.0/16", Name=tag)
    subs = {"id": vpc["VpcId"], "name": tag, "name_prefix": tag[:-3]}
    filters = [
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
        {"Name": name, "Values": [v.format(**subs) for v in values]},
    ]
    found = [v["VpcId"] for v in ec2.describe_vpcs(Filters=filters)["Vpcs"]]
    assert found == ([vpc["VpcId"]] if hit else [])


def test_describe_vpcs_unknown_filter_is_refused(ec2: Any) -> None:
    assert _fails(ec2.describe_vpcs, Filters=[{"Name": "no-such-filter", "Values": ["x"]}]) == (
        "InvalidParameterValue",
        400,
    )


def test_describe_vpcs_pagination_is_stable_across_creations(ec2: Any) -> None:
    run = unique("page")
    created = [_vpc(ec2, f"10.30.{i}.0/24", run=run)["VpcId"] for i in range(7)]
    filters = [{"Name": "tag:run", "Values": [run]}]
    first = ec2.describe_vpcs(Filters=filters, MaxResults=5)
    assert len(first["Vpcs"]) == 5
    assert first.get("NextToken")
    late = _vpc(ec2, "10.30.99.0/24", run=run)["VpcId"]
    seen = [v["VpcId"] for v in first["Vpcs"]]
    token = first["NextToken"]
    for _ in range(10):
        page = ec2.describe_vpcs(Filters=filters, MaxResults=5, NextToken=token)
        seen += [v["VpcId"] for v in page["Vpcs"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)), "a VPC was returned twice"
    assert set(created) <= set(seen), "a VPC was skipped"
    assert set(seen) <= {*created, late}


@pytest.mark.parametrize("limit", [4, 1001])
def test_describe_vpcs_max_results_bounds(gateway: Any, limit: int) -> None:
    raw = gateway.client(parameter_validation=False)  # boto3 itself refuses values below 5
    assert _fails(raw.describe_vpcs, MaxResults=limit) == ("InvalidParameterValue", 400)


def test_describe_vpcs_bad_token(ec2: Any) -> None:
    assert _fails(ec2.describe_vpcs, MaxResults=5, NextToken="not-a-token") == ("InvalidPaginationToken", 400)


def test_describe_vpcs_unknown_and_malformed_ids(ec2: Any) -> None:
    assert _fails(ec2.describe_vpcs, VpcIds=["vpc-00000000000000000"]) == ("InvalidVpcID.NotFound", 400)
    assert _fails(ec2.describe_vpcs, VpcIds=["vpc-nothex"]) == ("InvalidVpcID.Malformed", 400)


def test_create_vpc_cidr_errors(ec2: Any) -> None:
    assert _fails(ec2.create_vpc, CidrBlock="not-a-cidr") == ("InvalidParameterValue", 400)
    assert _fails(ec2.create_vpc, CidrBlock="10.0.0.0/8") == ("InvalidVpc.Range", 400)  # EC2 allows /16../28
    assert _fails(ec2.create_vpc, CidrBlock="10.0.0.0/29") == ("InvalidVpc.Range", 400)
    assert _fails(ec2.create_vpc) == ("MissingParameter", 400)


def test_create_vpc_refuses_tags_for_another_resource_type(ec2: Any) -> None:
    spec = [{"ResourceType": "subnet", "Tags": [{"Key": "a", "Value": "b"}]}]
    assert _fails(ec2.create_vpc, CidrBlock="10.24.0.0/16", TagSpecifications=spec) == ("InvalidParameterValue", 400)


# -- subnets ---------------------------------------------------------------------------------------------


def test_create_subnet_returns_it_and_describe_finds_it(ec2: Any) -> None:
    vpc = _vpc(ec2, "10.40.0.0/16")
    name = unique("sn")
    subnet = _subnet(ec2, vpc["VpcId"], "10.40.1.0/24", "local-1b", Name=name)
    assert SUBNET_ID.match(subnet["SubnetId"])
    assert subnet["VpcId"] == vpc["VpcId"]
    assert subnet["CidrBlock"] == "10.40.1.0/24"
    assert subnet["AvailabilityZone"] == "local-1b"
    assert subnet["DefaultForAz"] is False
    assert subnet["MapPublicIpOnLaunch"] is False  # only default subnets map public IPs
    assert subnet["AvailableIpAddressCount"] == 251  # 256 minus the five addresses EC2 reserves
    assert _tags(subnet["Tags"]) == {"Name": name}
    (found,) = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]
    assert found["SubnetId"] == subnet["SubnetId"]
    assert found["State"] == "available"
    assert found["OwnerId"] == "111111111111"
    assert found["AvailableIpAddressCount"] == 251
    assert _tags(found["Tags"]) == {"Name": name}


@pytest.mark.parametrize(
    ("name", "values", "hit"),
    [
        ("subnet-id", ["{subnet}"], True),
        ("vpc-id", ["{vpc}"], True),
        ("cidr-block", ["10.41.2.0/24"], True),
        ("cidrBlock", ["10.41.2.0/24"], True),
        ("cidr-block", ["10.41.3.0/24"], False),
        ("availability-zone", ["local-1a"], True),
        ("availability-zone", ["local-1?"], True),
        ("availability-zone", ["local-1b"], False),
        ("availability-zone-id", ["*"], True),
        ("default-for-az", ["false"], True),
        ("defaultForAz", ["true"], False),
        ("state", ["available"], True),
        ("available-ip-address-count", ["251"], True),
        ("available-ip-address-count", ["250"], False),
        ("map-public-ip-on-launch", ["false"], True),
        ("owner-id", ["111111111111"], True),
        ("tag:role", ["web*"], True),
        ("tag:role", ["db"], False),
        ("tag-key", ["role"], True),
    ],
)
def test_describe_subnets_filters(ec2: Any, name: str, values: list[str], hit: bool) -> None:
    vpc = _vpc(ec2, "10.41.0.0/16")
    subnet = _subnet(ec2, vpc["VpcId"], "10.41.2.0/24", "local-1a", role="web-front")
    subs = {"subnet": subnet["SubnetId"], "vpc": vpc["VpcId"]}
    filters = [
        {"Name": "vpc-id", "Values": [vpc["VpcId"]]},
        {"Name": name, "Values": [v.format(**subs) for v in values]},
    ]
    found = [s["SubnetId"] for s in ec2.describe_subnets(Filters=filters)["Subnets"]]
    assert found == ([subnet["SubnetId"]] if hit else [])


def test_describe_subnets_pagination_is_stable_across_creations(ec2: Any) -> None:
    vpc = _vpc(ec2, "10.42.0.0/16")
    created = [_subnet(ec2, vpc["VpcId"], f"10.42.{i}.0/24")["SubnetId"] for i in range(6)]
    filters = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    first = ec2.describe_subnets(Filters=filters, MaxResults=5)
    assert len(first["Subnets"]) == 5
    late = _subnet(ec2, vpc["VpcId"], "10.42.200.0/24")["SubnetId"]
    second = ec2.describe_subnets(Filters=filters, MaxResults=5, NextToken=first["NextToken"])
    seen = [s["SubnetId"] for s in first["Subnets"] + second["Subnets"]]
    assert not second.get("NextToken")
    assert len(seen) == len(set(seen))
    assert set(seen) == {*created, late}


def test_create_subnet_overlap_is_conflict(ec2: Any) -> None:
    vpc = _vpc(ec2, "10.43.0.0/16")
    first = _subnet(ec2, vpc["VpcId"], "10.43.0.0/24")["SubnetId"]
    with pytest.raises(ClientError) as exc:
        ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.43.0.128/25")
    assert error_of(exc) == ("InvalidSubnet.Conflict", 400)
    # The backend names the subnet in the way by its own id; the client reads the EC2 one.
    assert first in exc.value.response["Error"]["Message"], exc.value.response["Error"]["Message"]
    assert _fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.43.0.0/16") == ("InvalidSubnet.Conflict", 400)


def test_create_subnet_outside_the_vpc_is_range(ec2: Any) -> None:
    vpc = _vpc(ec2, "10.44.0.0/16")
    assert _fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.45.0.0/24") == ("InvalidSubnet.Range", 400)
    assert _fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.44.0.0/29") == ("InvalidSubnet.Range", 400)
    assert _fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.44.0.0/33") == ("InvalidParameterValue", 400)


def test_create_subnet_unknown_vpc_and_zone(ec2: Any) -> None:
    assert _fails(ec2.create_subnet, VpcId="vpc-00000000000000000", CidrBlock="10.0.0.0/24") == (
        "InvalidVpcID.NotFound",
        400,
    )
    vpc = _vpc(ec2, "10.46.0.0/16")
    assert _fails(ec2.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.46.0.0/24", AvailabilityZone="mars-1a") == (
        "InvalidParameterValue",
        400,
    )


def test_describe_subnets_unknown_and_malformed_ids(ec2: Any) -> None:
    assert _fails(ec2.describe_subnets, SubnetIds=["subnet-00000000000000000"]) == ("InvalidSubnetID.NotFound", 400)
    assert _fails(ec2.describe_subnets, SubnetIds=["subnet-xyz"]) == ("InvalidSubnetID.Malformed", 400)


# -- deletion ----------------------------------------------------------------------------------------------


def test_delete_vpc_with_a_subnet_is_a_dependency_violation(ec2: Any) -> None:
    vpc = _vpc(ec2, "10.50.0.0/16")
    subnet = _subnet(ec2, vpc["VpcId"], "10.50.0.0/24")
    assert _fails(ec2.delete_vpc, VpcId=vpc["VpcId"]) == ("DependencyViolation", 400)
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    assert _fails(ec2.describe_subnets, SubnetIds=[subnet["SubnetId"]]) == ("InvalidSubnetID.NotFound", 400)
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert _fails(ec2.describe_vpcs, VpcIds=[vpc["VpcId"]]) == ("InvalidVpcID.NotFound", 400)
    assert _fails(ec2.delete_vpc, VpcId=vpc["VpcId"]) == ("InvalidVpcID.NotFound", 400)


def test_delete_subnet_with_an_instance_is_a_dependency_violation(ec2: Any) -> None:
    vpc = _vpc(ec2, "10.51.0.0/16")
    subnet = _subnet(ec2, vpc["VpcId"], "10.51.0.0/24")
    (inst,) = ec2.run_instances(
        ImageId=_image_id(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1, SubnetId=subnet["SubnetId"]
    )["Instances"]
    assert inst["SubnetId"] == subnet["SubnetId"]
    (counted,) = ec2.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]
    assert counted["AvailableIpAddressCount"] == 250  # the instance holds one address
    assert _fails(ec2.delete_subnet, SubnetId=subnet["SubnetId"]) == ("DependencyViolation", 400)
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=WAIT)
    ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc["VpcId"])


def test_delete_unknown_subnet(ec2: Any) -> None:
    assert _fails(ec2.delete_subnet, SubnetId="subnet-00000000000000000") == ("InvalidSubnetID.NotFound", 400)


# -- roles and tenants --------------------------------------------------------------------------------------


def test_reader_can_describe_but_not_write(ec2: Any, gateway: Any) -> None:
    reader = gateway.client("reader", "reader-secret")
    vpc = _vpc(ec2, "10.60.0.0/16")
    subnet = _subnet(ec2, vpc["VpcId"], "10.60.0.0/24")
    assert [v["VpcId"] for v in reader.describe_vpcs(VpcIds=[vpc["VpcId"]])["Vpcs"]] == [vpc["VpcId"]]
    assert [s["SubnetId"] for s in reader.describe_subnets(SubnetIds=[subnet["SubnetId"]])["Subnets"]] == [
        subnet["SubnetId"]
    ]
    assert _fails(reader.create_vpc, CidrBlock="10.61.0.0/16") == ("UnauthorizedOperation", 403)
    assert _fails(reader.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.60.1.0/24") == (
        "UnauthorizedOperation",
        403,
    )
    assert _fails(reader.delete_subnet, SubnetId=subnet["SubnetId"]) == ("UnauthorizedOperation", 403)
    assert _fails(reader.delete_vpc, VpcId=vpc["VpcId"]) == ("UnauthorizedOperation", 403)
    assert _fails(reader.create_vpc, CidrBlock="10.61.0.0/16", DryRun=True) == ("UnauthorizedOperation", 403)
    assert _fails(ec2.create_vpc, CidrBlock="10.61.0.0/16", DryRun=True) == ("DryRunOperation", 412)


def test_other_tenant_sees_none_of_demos_networks(ec2: Any, gateway: Any) -> None:
    other = gateway.client("other", "other-secret")
    tag = unique("iso")
    vpc = _vpc(ec2, "10.70.0.0/16", owner=tag)
    subnet = _subnet(ec2, vpc["VpcId"], "10.70.0.0/24")
    assert other.describe_vpcs(Filters=[{"Name": "tag:owner", "Values": [tag]}])["Vpcs"] == []
    other_vpcs = {v["VpcId"] for v in other.describe_vpcs()["Vpcs"]}
    assert vpc["VpcId"] not in other_vpcs
    assert all(v["OwnerId"] == "222222222222" for v in other.describe_vpcs()["Vpcs"])
    assert subnet["SubnetId"] not in {s["SubnetId"] for s in other.describe_subnets()["Subnets"]}
    assert _fails(other.describe_vpcs, VpcIds=[vpc["VpcId"]]) == ("InvalidVpcID.NotFound", 400)
    assert _fails(other.describe_subnets, SubnetIds=[subnet["SubnetId"]]) == ("InvalidSubnetID.NotFound", 400)
    assert _fails(other.delete_subnet, SubnetId=subnet["SubnetId"]) == ("InvalidSubnetID.NotFound", 400)
    assert _fails(other.delete_vpc, VpcId=vpc["VpcId"]) == ("InvalidVpcID.NotFound", 400)
    assert _fails(other.create_subnet, VpcId=vpc["VpcId"], CidrBlock="10.70.1.0/24") == (
        "InvalidVpcID.NotFound",
        400,
    )
    # the other tenant has a default VPC of its own, in its single zone
    (own,) = other.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    demo_default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    assert own["VpcId"] != demo_default["VpcId"]
