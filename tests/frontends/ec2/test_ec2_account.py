"""Account-level reads over HTTP with boto3: DescribeAccountAttributes, DescribeIamInstanceProfileAssociations,
DescribeInstanceCreditSpecifications, checked against the EC2 API reference.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import error_of

WAIT = {"Delay": 1, "MaxAttempts": 30}
#: Every attribute DescribeAccountAttributes documents.
ATTRIBUTES = {
    "supported-platforms",
    "default-vpc",
    "max-instances",
    "vpc-max-security-groups-per-interface",
    "max-elastic-ips",
    "vpc-max-elastic-ips",
}
NUMERIC = ATTRIBUTES - {"supported-platforms", "default-vpc"}


def _fails(call: Any, **kwargs: Any) -> tuple[str, int]:
    with pytest.raises(ClientError) as excinfo:
        call(**kwargs)
    return error_of(excinfo)


def _attributes(client: Any, **kwargs: Any) -> dict[str, list[str]]:
    return {
        a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
        for a in client.describe_account_attributes(**kwargs)["AccountAttributes"]
    }


def _default_vpc(client: Any) -> str:
    (vpc,) = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


def _launch(ec2: Any, count: int) -> list[str]:
    image = next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")
    launched = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=count, MaxCount=count)
    return [i["InstanceId"] for i in launched["Instances"]]


# -- DescribeAccountAttributes --------------------------------------------------------------------------------


def test_all_attributes(ec2: Any) -> None:
    attrs = _attributes(ec2)
    assert set(attrs) == ATTRIBUTES
    assert attrs["supported-platforms"] == ["VPC"]  # EC2-Classic is retired
    assert attrs["default-vpc"] == [_default_vpc(ec2)]
    for name in NUMERIC:
        (value,) = attrs[name]
        assert int(value) > 0, name
    # The simulator's own limit (the test gateways set max_machines = 1000); where the backend says
    # nothing, EC2's defaults for a new account.
    assert attrs["max-instances"] == ["1000"]
    assert attrs["max-elastic-ips"] == attrs["vpc-max-elastic-ips"] == ["5"]


def test_named_attributes_only(ec2: Any) -> None:
    assert _attributes(ec2, AttributeNames=["default-vpc"]) == {"default-vpc": [_default_vpc(ec2)]}
    assert set(_attributes(ec2, AttributeNames=["supported-platforms", "max-instances"])) == {
        "supported-platforms",
        "max-instances",
    }


def test_unknown_attribute_is_refused(ec2: Any) -> None:
    assert _fails(ec2.describe_account_attributes, AttributeNames=["favourite-colour"]) == (
        "InvalidParameterValue",
        400,
    )


def test_default_vpc_is_per_tenant_and_none_once_deleted(ec2: Any, gateway: Any) -> None:
    other = gateway.client("other", "other-secret")
    (mine,) = _attributes(ec2, AttributeNames=["default-vpc"])["default-vpc"]
    (theirs,) = _attributes(other, AttributeNames=["default-vpc"])["default-vpc"]
    assert theirs == _default_vpc(other)
    assert theirs != mine
    # EC2 lets an account delete its default VPC; the attribute then reads "none"
    for subnet in other.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [theirs]}])["Subnets"]:
        other.delete_subnet(SubnetId=subnet["SubnetId"])
    other.delete_vpc(VpcId=theirs)
    assert _attributes(other, AttributeNames=["default-vpc"]) == {"default-vpc": ["none"]}
    assert _attributes(ec2, AttributeNames=["default-vpc"]) == {"default-vpc": [mine]}


def test_reader_may_read_attributes_and_dry_run(gateway: Any) -> None:
    reader = gateway.client("reader", "reader-secret")
    assert set(_attributes(reader)) == ATTRIBUTES
    assert _fails(reader.describe_account_attributes, DryRun=True) == ("DryRunOperation", 412)


# -- DescribeIamInstanceProfileAssociations ------------------------------------------------------------------------


def test_no_iam_instance_profile_associations(ec2: Any) -> None:
    assert ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"] == []
    (instance,) = _launch(ec2, 1)
    got = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance]}, {"Name": "state", "Values": ["associated"]}],
        MaxResults=5,
    )
    assert got["IamInstanceProfileAssociations"] == []
    assert "NextToken" not in got
    assert _fails(ec2.describe_iam_instance_profile_associations, Filters=[{"Name": "colour", "Values": ["x"]}]) == (
        "InvalidParameterValue",
        400,
    )


# -- DescribeInstanceCreditSpecifications --------------------------------------------------------------------------


def test_credit_specifications_by_id(ec2: Any) -> None:
    ids = _launch(ec2, 2)
    got = ec2.describe_instance_credit_specifications(InstanceIds=ids)["InstanceCreditSpecifications"]
    assert sorted(c["InstanceId"] for c in got) == sorted(ids)
    assert all(c["CpuCredits"] in ("standard", "unlimited") for c in got)
    one = ec2.describe_instance_credit_specifications(
        InstanceIds=ids, Filters=[{"Name": "instance-id", "Values": [ids[1]]}]
    )["InstanceCreditSpecifications"]
    assert [c["InstanceId"] for c in one] == [ids[1]]


def test_credit_specifications_without_ids_skip_terminated(ec2: Any) -> None:
    keep, gone = _launch(ec2, 2)
    ec2.terminate_instances(InstanceIds=[gone])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[gone], WaiterConfig=WAIT)
    listed = {c["InstanceId"] for c in _all_credit_specs(ec2)}
    assert keep in listed
    assert gone not in listed


def _all_credit_specs(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    page = client.describe_instance_credit_specifications(MaxResults=5, **kwargs)
    seen += page["InstanceCreditSpecifications"]
    for _ in range(200):
        token = page.get("NextToken")
        if not token:
            return seen
        page = client.describe_instance_credit_specifications(MaxResults=5, NextToken=token, **kwargs)
        seen += page["InstanceCreditSpecifications"]
    raise AssertionError("pagination did not end")


def test_credit_specifications_pagination_is_stable_across_launches(ec2: Any) -> None:
    ours = _launch(ec2, 6)
    filters = [{"Name": "instance-id", "Values": ours}]
    first = ec2.describe_instance_credit_specifications(Filters=filters, MaxResults=5)
    assert len(first["InstanceCreditSpecifications"]) == 5
    _launch(ec2, 1)
    second = ec2.describe_instance_credit_specifications(Filters=filters, MaxResults=5, NextToken=first["NextToken"])
    seen = [c["InstanceId"] for c in first["InstanceCreditSpecifications"] + second["InstanceCreditSpecifications"]]
    assert len(seen) == len(set(seen))
    assert set(seen) == set(ours)
    everything = [c["InstanceId"] for c in _all_credit_specs(ec2)]
    assert len(everything) == len(set(everything))
    assert set(ours) <= set(everything)


def test_credit_specification_errors(ec2: Any, gateway: Any) -> None:
    (instance,) = _launch(ec2, 1)
    assert _fails(ec2.describe_instance_credit_specifications, InstanceIds=["i-00000000000000000"]) == (
        "InvalidInstanceID.NotFound",
        400,
    )
    assert _fails(ec2.describe_instance_credit_specifications, InstanceIds=["i-zzz"]) == (
        "InvalidInstanceID.Malformed",
        400,
    )
    # EC2: MaxResults cannot be combined with instance ids
    assert _fails(ec2.describe_instance_credit_specifications, InstanceIds=[instance], MaxResults=5) == (
        "InvalidParameterCombination",
        400,
    )
    raw = gateway.client(parameter_validation=False)  # boto3 itself refuses values below 5
    assert _fails(raw.describe_instance_credit_specifications, MaxResults=4) == ("InvalidParameterValue", 400)


def test_other_tenant_sees_none_of_demos_instances(ec2: Any, gateway: Any) -> None:
    (instance,) = _launch(ec2, 1)
    other = gateway.client("other", "other-secret")
    assert instance not in {c["InstanceId"] for c in _all_credit_specs(other)}
    assert _fails(other.describe_instance_credit_specifications, InstanceIds=[instance]) == (
        "InvalidInstanceID.NotFound",
        400,
    )
    reader = gateway.client("reader", "reader-secret")
    got = reader.describe_instance_credit_specifications(InstanceIds=[instance])["InstanceCreditSpecifications"]
    assert [c["InstanceId"] for c in got] == [instance]
