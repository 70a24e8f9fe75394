"""Tags over HTTP with boto3: CreateTags, DeleteTags, DescribeTags on every taggable kind, checked against
the EC2 API reference (one DescribeTags item per resource and key, filters, pagination, limits, errors).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import assert_pages_stable, error_of, unique

WAIT = {"Delay": 1, "MaxAttempts": 30}


def _fails(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return error_of(excinfo)


def _image_id(ec2: Any) -> str:
    return next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")


def _tags_of(ec2: Any, resource_id: str) -> dict[str, str]:
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
    assert all(t["ResourceId"] == resource_id for t in found)
    return {t["Key"]: t["Value"] for t in found}


def _vpc(ec2: Any) -> str:
    return ec2.create_vpc(CidrBlock="10.90.0.0/16")["Vpc"]["VpcId"]


def _snapshot(ec2: Any) -> str:
    volume = ec2.create_volume(Size=1, AvailabilityZone="local-1a")["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=WAIT)
    return ec2.create_snapshot(VolumeId=volume)["SnapshotId"]


#: EC2 ResourceType -> how to make one (returns its id). Images are public ones, tagged per account.
MAKERS: dict[str, Callable[[Any], str]] = {
    "instance": lambda ec2: ec2.run_instances(ImageId=_image_id(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1)[
        "Instances"
    ][0]["InstanceId"],
    "image": _image_id,
    "volume": lambda ec2: ec2.create_volume(Size=1, AvailabilityZone="local-1a")["VolumeId"],
    "snapshot": _snapshot,
    "security-group": lambda ec2: ec2.create_security_group(GroupName=unique("grp"), Description="tag test")["GroupId"],
    "key-pair": lambda ec2: ec2.create_key_pair(KeyName=unique("kp"))["KeyPairId"],
    "elastic-ip": lambda ec2: ec2.allocate_address(Domain="vpc")["AllocationId"],
    "vpc": _vpc,
    "subnet": lambda ec2: ec2.create_subnet(VpcId=_vpc(ec2), CidrBlock="10.90.1.0/24")["Subnet"]["SubnetId"],
}


@pytest.mark.parametrize("resource_type", sorted(MAKERS))
def test_tag_round_trip_on_every_kind(ec2: Any, resource_type: str) -> None:
    rid = MAKERS[resource_type](ec2)
    key = unique("k")
    ec2.create_tags(Resources=[rid], Tags=[{"Key": key, "Value": "one"}, {"Key": f"{key}-b", "Value": ""}])
    found = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [rid]}])["Tags"]
    assert sorted((t["ResourceId"], t["ResourceType"], t["Key"], t["Value"]) for t in found) == [
        (rid, resource_type, key, "one"),
        (rid, resource_type, f"{key}-b", ""),
    ]
    # overwriting a key replaces its value
    ec2.create_tags(Resources=[rid], Tags=[{"Key": key, "Value": "two"}])
    assert _tags_of(ec2, rid) == {key: "two", f"{key}-b": ""}
    ec2.delete_tags(Resources=[rid], Tags=[{"Key": key}, {"Key": f"{key}-b"}])
    assert _tags_of(ec2, rid) == {}


def test_one_call_tags_several_kinds(ec2: Any) -> None:
    vpc = _vpc(ec2)
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.90.2.0/24")["Subnet"]["SubnetId"]
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    run = unique("mix")
    ec2.create_tags(Resources=[vpc, subnet, address], Tags=[{"Key": "run", "Value": run}])
    found = ec2.describe_tags(Filters=[{"Name": "value", "Values": [run]}])["Tags"]
    assert {(t["ResourceId"], t["ResourceType"]) for t in found} == {
        (vpc, "vpc"),
        (subnet, "subnet"),
        (address, "elastic-ip"),
    }
    # the resources' own Describe actions carry the tags too
    assert {"Key": "run", "Value": run} in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"][0]["Tags"]
    assert {"Key": "run", "Value": run} in ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["Tags"]
    assert {"Key": "run", "Value": run} in ec2.describe_addresses(AllocationIds=[address])["Addresses"][0]["Tags"]


# -- DeleteTags semantics ------------------------------------------------------------------------------------


def test_delete_tags_with_a_value_deletes_only_on_match(ec2: Any) -> None:
    vpc = _vpc(ec2)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "a", "Value": "not-1"}])
    assert _tags_of(ec2, vpc) == {"a": "1", "b": "2"}
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "a", "Value": "1"}])
    assert _tags_of(ec2, vpc) == {"b": "2"}


def test_delete_tags_with_an_empty_value_deletes_only_empty_values(ec2: Any) -> None:
    vpc = _vpc(ec2)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "full", "Value": "x"}, {"Key": "empty", "Value": ""}])
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "full", "Value": ""}, {"Key": "empty", "Value": ""}])
    assert _tags_of(ec2, vpc) == {"full": "x"}


def test_delete_tags_without_tags_deletes_them_all(ec2: Any) -> None:
    vpc = _vpc(ec2)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": f"k{i}", "Value": str(i)} for i in range(3)])
    ec2.delete_tags(Resources=[vpc])
    assert _tags_of(ec2, vpc) == {}


def test_delete_tags_of_a_missing_key_is_fine(ec2: Any) -> None:
    vpc = _vpc(ec2)
    ec2.delete_tags(Resources=[vpc], Tags=[{"Key": "never-set"}])
    assert _tags_of(ec2, vpc) == {}


# -- limits and refusals ---------------------------------------------------------------------------------------


def test_fifty_tags_per_resource(ec2: Any) -> None:
    vpc = _vpc(ec2)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    assert len(_tags_of(ec2, vpc)) == 50
    assert _fails(ec2.create_tags, Resources=[vpc], Tags=[{"Key": "one-more", "Value": "v"}]) == (
        "TagLimitExceeded",
        400,
    )
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k0", "Value": "overwritten"}])  # no new key: allowed
    assert _tags_of(ec2, vpc)["k0"] == "overwritten"
    fresh = _vpc(ec2)
    assert _fails(ec2.create_tags, Resources=[fresh], Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(51)]) == (
        "TagLimitExceeded",
        400,
    )
    assert _tags_of(ec2, fresh) == {}


@pytest.mark.parametrize("key", ["aws:owner", "AWS:owner"])
def test_aws_prefixed_keys_are_reserved(ec2: Any, key: str) -> None:
    vpc = _vpc(ec2)
    assert _fails(ec2.create_tags, Resources=[vpc], Tags=[{"Key": key, "Value": "x"}]) == ("InvalidParameterValue", 400)
    assert _fails(ec2.delete_tags, Resources=[vpc], Tags=[{"Key": key}]) == ("InvalidParameterValue", 400)


def test_over_long_keys_and_values_are_refused(ec2: Any) -> None:
    vpc = _vpc(ec2)
    assert _fails(ec2.create_tags, Resources=[vpc], Tags=[{"Key": "k" * 129, "Value": "x"}]) == (
        "InvalidParameterValue",
        400,
    )
    assert _fails(ec2.create_tags, Resources=[vpc], Tags=[{"Key": "k", "Value": "v" * 257}]) == (
        "InvalidParameterValue",
        400,
    )
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    assert _tags_of(ec2, vpc) == {"k" * 128: "v" * 256}


@pytest.mark.parametrize(
    ("resource_id", "code"),
    [
        ("foo-0123456789abcdef0", "InvalidID"),
        ("nonsense", "InvalidID"),
        ("i-00000000000000000", "InvalidInstanceID.NotFound"),
        ("vol-00000000000000000", "InvalidVolume.NotFound"),
        ("vpc-00000000000000000", "InvalidVpcID.NotFound"),
        ("subnet-00000000000000000", "InvalidSubnetID.NotFound"),
        ("eipalloc-00000000000000000", "InvalidAllocationID.NotFound"),
        ("i-nothex", "InvalidInstanceID.Malformed"),
    ],
)
def test_unknown_resource_ids(ec2: Any, resource_id: str, code: str) -> None:
    assert _fails(ec2.create_tags, Resources=[resource_id], Tags=[{"Key": "a", "Value": "b"}]) == (code, 400)
    assert _fails(ec2.delete_tags, Resources=[resource_id]) == (code, 400)


def test_one_bad_id_tags_nothing(ec2: Any) -> None:
    vpc = _vpc(ec2)
    assert _fails(ec2.create_tags, Resources=[vpc, "vpc-00000000000000000"], Tags=[{"Key": "a", "Value": "b"}]) == (
        "InvalidVpcID.NotFound",
        400,
    )
    assert _tags_of(ec2, vpc) == {}


# -- DescribeTags filters and pagination --------------------------------------------------------------------------


@pytest.fixture
def tagged(ec2: Any) -> dict[str, str]:
    """A VPC and an elastic IP, both tagged with a unique ``run`` value and a few more tags."""
    run = unique("run")
    vpc = _vpc(ec2)
    address = ec2.allocate_address(Domain="vpc")["AllocationId"]
    ec2.create_tags(Resources=[vpc, address], Tags=[{"Key": "run", "Value": run}, {"Key": "stage", "Value": "prod-eu"}])
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "owner", "Value": "alice"}])
    return {"run": run, "vpc": vpc, "address": address}


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([("key", ["owner"])], {("vpc", "owner")}),
        ([("key", ["ow*"])], {("vpc", "owner")}),
        ([("value", ["prod-*"])], {("vpc", "stage"), ("address", "stage")}),
        ([("value", ["alice", "prod-eu"])], {("vpc", "owner"), ("vpc", "stage"), ("address", "stage")}),
        ([("resource-type", ["elastic-ip"]), ("key", ["stage"])], {("address", "stage")}),
        ([("resource-type", ["vpc"]), ("key", ["stage", "owner"])], {("vpc", "stage"), ("vpc", "owner")}),
        ([("resource-type", ["instance"]), ("key", ["stage"])], set()),
        ([("resource-id", ["{address}"])], {("address", "run"), ("address", "stage")}),
        ([("resource-id", ["vpc-*"]), ("key", ["stage"])], {("vpc", "stage")}),
        ([("tag:stage", ["prod-eu"])], {("vpc", "stage"), ("address", "stage")}),
        ([("tag:stage", ["dev"])], set()),
    ],
)
def test_describe_tags_filters(
    ec2: Any, tagged: dict[str, str], filters: list[tuple[str, list[str]]], expected: set[tuple[str, str]]
) -> None:
    mine = {tagged["vpc"]: "vpc", tagged["address"]: "address"}
    wire = [{"Name": "resource-id", "Values": list(mine)}]
    wire += [{"Name": name, "Values": [v.format(**tagged) for v in values]} for name, values in filters]
    found = ec2.describe_tags(Filters=wire)["Tags"]
    assert {(mine[t["ResourceId"]], t["Key"]) for t in found} == expected


def test_describe_tags_unknown_filter(ec2: Any) -> None:
    assert _fails(ec2.describe_tags, Filters=[{"Name": "colour", "Values": ["red"]}]) == ("InvalidParameterValue", 400)


def test_describe_tags_pagination_is_stable_across_creations(ec2: Any) -> None:
    run = unique("page")
    vpcs = [_vpc(ec2) for _ in range(3)]
    for vpc in vpcs:
        ec2.create_tags(Resources=[vpc], Tags=[{"Key": f"t{i}", "Value": run} for i in range(3)])
    expected = {(v, f"t{i}") for v in vpcs for i in range(3)}
    filters = [{"Name": "value", "Values": [run]}]
    first = ec2.describe_tags(Filters=filters, MaxResults=5)
    assert len(first["Tags"]) == 3  # a page ends at a resource boundary: a second VPC's three would make six
    late = _vpc(ec2)
    ec2.create_tags(Resources=[late], Tags=[{"Key": "t0", "Value": run}])
    seen = [(t["ResourceId"], t["Key"]) for t in first["Tags"]]
    token = first["NextToken"]
    for _ in range(10):
        page = ec2.describe_tags(Filters=filters, MaxResults=5, NextToken=token)
        seen += [(t["ResourceId"], t["Key"]) for t in page["Tags"]]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == len(set(seen)), "a tag was returned twice"
    assert expected <= set(seen), "a tag was skipped"
    assert set(seen) <= {*expected, (late, "t0")}


def _all_pages(ec2: Any, **kwargs: Any) -> list[list[tuple[str, str, str]]]:
    """Every page of a DescribeTags (bounded), each as (ResourceId, Key, Value) items."""
    pages, token = [], None
    for _ in range(50):
        page = ec2.describe_tags(**kwargs, **({"NextToken": token} if token else {}))
        pages.append([(t["ResourceId"], t["Key"], t["Value"]) for t in page["Tags"]])
        token = page.get("NextToken")
        if not token:
            return pages
    raise AssertionError("DescribeTags never stopped paging")


def _tagged_across_kinds(ec2: Any, run: str, tags: int) -> set[str]:
    """Two instances, two volumes and two security groups, each with ``tags`` tags of value ``run``."""
    spec = [{"Key": f"k{i}", "Value": run} for i in range(tags)]
    made = {
        i["InstanceId"]
        for i in ec2.run_instances(
            ImageId=_image_id(ec2),
            InstanceType="t3.micro",
            MinCount=2,
            MaxCount=2,
            TagSpecifications=[{"ResourceType": "instance", "Tags": spec}],
        )["Instances"]
    }
    for _ in range(2):
        made.add(
            ec2.create_volume(
                Size=1, AvailabilityZone="local-1a", TagSpecifications=[{"ResourceType": "volume", "Tags": spec}]
            )["VolumeId"]
        )
        made.add(
            ec2.create_security_group(
                GroupName=unique("grp"),
                Description="tag paging",
                TagSpecifications=[{"ResourceType": "security-group", "Tags": spec}],
            )["GroupId"]
        )
    return made


def test_describe_tags_pages_across_kinds_at_resource_boundaries(ec2: Any) -> None:
    run = unique("kinds")
    made = _tagged_across_kinds(ec2, run, tags=2)
    filters = [{"Name": "value", "Values": [run]}]
    whole = ec2.describe_tags(Filters=filters)["Tags"]
    assert {t["ResourceId"] for t in whole} == made and len(whole) == 12
    assert [t["ResourceType"] for t in whole] == ["instance"] * 4 + ["volume"] * 4 + ["security-group"] * 4
    pages = _all_pages(ec2, Filters=filters, MaxResults=5)
    assert [item for page in pages for item in page] == [(t["ResourceId"], t["Key"], t["Value"]) for t in whole]
    assert all(len(page) <= 5 for page in pages)
    for page in pages:  # each resource's two tags on one page: pages of two resources
        assert len(page) in (0, 4) and all(page.count(item) == 1 for item in page)
    # a resource-type filter and a resource-id filter narrow the walk, and page the same way
    volumes = [t for t in whole if t["ResourceType"] == "volume"]
    assert ec2.describe_tags(Filters=[*filters, {"Name": "resource-type", "Values": ["volume"]}])["Tags"] == volumes
    named = [volumes[0]["ResourceId"], whole[-1]["ResourceId"], "vol-00000000000000000", "sg-nothex"]
    by_id = _all_pages(ec2, Filters=[{"Name": "resource-id", "Values": named}], MaxResults=5)
    assert [item[0] for page in by_id for item in page] == [named[0]] * 2 + [named[1]] * 2


def test_describe_tags_pages_stable_while_tagged_resources_appear(ec2: Any) -> None:
    run = unique("appear")
    makers = [
        lambda: ec2.create_volume(
            Size=1,
            AvailabilityZone="local-1a",
            TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "run", "Value": run}]}],
        )["VolumeId"],
        lambda: ec2.create_security_group(
            GroupName=unique("grp"),
            Description="tag paging",
            TagSpecifications=[{"ResourceType": "security-group", "Tags": [{"Key": "run", "Value": run}]}],
        )["GroupId"],
    ]
    count = iter(range(100))
    made = assert_pages_stable(
        ec2.describe_tags,
        "Tags",
        "ResourceId",
        [{"Name": "value", "Values": [run]}],
        lambda: makers[next(count) % 2](),
        first=7,
        later=4,
    )
    assert {t["ResourceId"] for t in ec2.describe_tags(Filters=[{"Name": "value", "Values": [run]}])["Tags"]} == made


def test_describe_tags_splits_only_a_resource_larger_than_a_page(ec2: Any) -> None:
    vpc, small = _vpc(ec2), _vpc(ec2)
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": f"k{i:02}", "Value": "v"} for i in range(12)])
    ec2.create_tags(Resources=[small], Tags=[{"Key": "a", "Value": "v"}, {"Key": "b", "Value": "v"}])
    pages = _all_pages(ec2, Filters=[{"Name": "resource-id", "Values": [vpc, small]}], MaxResults=5)
    assert [len(p) for p in pages] == [5, 5, 4]  # the last split page takes the small VPC whole
    assert [item[:2] for page in pages for item in page] == [(vpc, f"k{i:02}") for i in range(12)] + [
        (small, "a"),
        (small, "b"),
    ]


def test_describe_tags_refuses_another_actions_token(ec2: Any) -> None:
    for _ in range(6):
        _vpc(ec2)
    token = ec2.describe_vpcs(MaxResults=5)["NextToken"]
    assert _fails(ec2.describe_tags, MaxResults=5, NextToken=token) == ("InvalidPaginationToken", 400)


@pytest.mark.parametrize("limit", [4, 1001])
def test_describe_tags_max_results_bounds(gateway: Any, limit: int) -> None:
    raw = gateway.client(parameter_validation=False)  # boto3 itself refuses values below 5
    assert _fails(raw.describe_tags, MaxResults=limit) == ("InvalidParameterValue", 400)


def _forged(content: Any) -> str:
    """A DescribeTags token holding ``content`` (the gateway's format: base64url JSON of [action, content])."""
    return base64.urlsafe_b64encode(json.dumps(["DescribeTags", content]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        _forged(["no_such_kind", None, None, None]),
        _forged(["volume", "not-a-cursor", None, None]),
        _forged(["volume", None, "0" * 36, "k"]),
        _forged(["volume", None]),
        _forged({"kind": "volume"}),
    ],
)
def test_describe_tags_bad_token(ec2: Any, token: str) -> None:
    assert _fails(ec2.describe_tags, MaxResults=5, NextToken=token) == ("InvalidPaginationToken", 400)


# -- roles and tenants ---------------------------------------------------------------------------------------------


def test_reader_can_describe_but_not_tag(ec2: Any, gateway: Any, tagged: dict[str, str]) -> None:
    reader = gateway.client("reader", "reader-secret")
    found = reader.describe_tags(Filters=[{"Name": "value", "Values": [tagged["run"]]}])["Tags"]
    assert {t["ResourceId"] for t in found} == {tagged["vpc"], tagged["address"]}
    assert _fails(reader.create_tags, Resources=[tagged["vpc"]], Tags=[{"Key": "x", "Value": "y"}]) == (
        "UnauthorizedOperation",
        403,
    )
    assert _fails(reader.delete_tags, Resources=[tagged["vpc"]], Tags=[{"Key": "run"}]) == (
        "UnauthorizedOperation",
        403,
    )
    assert _tags_of(ec2, tagged["vpc"])["run"] == tagged["run"]


def test_other_tenant_sees_and_touches_none_of_demos_tags(ec2: Any, gateway: Any, tagged: dict[str, str]) -> None:
    other = gateway.client("other", "other-secret")
    assert other.describe_tags(Filters=[{"Name": "value", "Values": [tagged["run"]]}])["Tags"] == []
    assert other.describe_tags(Filters=[{"Name": "resource-id", "Values": [tagged["vpc"]]}])["Tags"] == []
    assert _fails(other.create_tags, Resources=[tagged["vpc"]], Tags=[{"Key": "x", "Value": "y"}]) == (
        "InvalidVpcID.NotFound",
        400,
    )
    assert _fails(other.delete_tags, Resources=[tagged["address"]]) == ("InvalidAllocationID.NotFound", 400)
    assert _tags_of(ec2, tagged["address"]) == {"run": tagged["run"], "stage": "prod-eu"}


def test_tags_on_a_public_image_are_the_tenants_own(ec2: Any, gateway: Any) -> None:
    image = _image_id(ec2)
    key = unique("img")
    ec2.create_tags(Resources=[image], Tags=[{"Key": key, "Value": "mine"}])
    try:
        assert _tags_of(ec2, image)[key] == "mine"
        other = gateway.client("other", "other-secret")
        assert other.describe_tags(Filters=[{"Name": "key", "Values": [key]}])["Tags"] == []
    finally:
        ec2.delete_tags(Resources=[image], Tags=[{"Key": key}])
    assert key not in _tags_of(ec2, image)
