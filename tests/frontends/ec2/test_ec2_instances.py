"""Instances, images, key pairs and STS through boto3 against a real gateway: what EC2 documents, checked."""

from __future__ import annotations

import base64
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from ec2util import error_of, unique

FAST = {"Delay": 1, "MaxAttempts": 40}


def image_id(ec2: Any, name: str = "ubuntu-24.04") -> str:
    (image,) = ec2.describe_images(Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return image["ImageId"]


def launch(ec2: Any, count: int = 1, tag: str | None = None, **kw: Any) -> list[dict[str, Any]]:
    specs = [{"ResourceType": "instance", "Tags": [{"Key": "suite", "Value": tag}]}] if tag else []
    kw.setdefault("InstanceType", "t3.micro")
    return ec2.run_instances(ImageId=image_id(ec2), MinCount=count, MaxCount=count, TagSpecifications=specs, **kw)[
        "Instances"
    ]


def instances(ec2: Any, **kw: Any) -> list[dict[str, Any]]:
    return [i for r in ec2.describe_instances(**kw)["Reservations"] for i in r["Instances"]]


def ids_of(items: list[dict[str, Any]]) -> list[str]:
    return [i["InstanceId"] for i in items]


# -- the full lifecycle -----------------------------------------------------------------------------


def test_full_lifecycle_with_waiters_paginators_and_the_resource_api(ec2: Any, gateway: Any) -> None:
    suite = unique("life")
    key = ec2.create_key_pair(KeyName=unique("key"))
    assert key["KeyMaterial"].startswith("-----BEGIN")
    group = ec2.create_security_group(GroupName=unique("web"), Description="web")["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )
    token = unique("tok")
    request = {
        "ImageId": image_id(ec2),
        "InstanceType": "t3.small",
        "MinCount": 3,
        "MaxCount": 3,
        "KeyName": key["KeyName"],
        "SecurityGroupIds": [group],
        "ClientToken": token,
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "suite", "Value": suite}]}],
    }
    run = ec2.run_instances(**request)
    launched = ids_of(run["Instances"])
    assert len(launched) == 3 and all(i["State"] == {"Code": 0, "Name": "pending"} for i in run["Instances"])
    assert sorted(i["AmiLaunchIndex"] for i in run["Instances"]) == [0, 1, 2]
    # the same token and parameters: the same reservation, nothing new launched
    again = ec2.run_instances(**request)
    assert again["ReservationId"] == run["ReservationId"] and sorted(ids_of(again["Instances"])) == sorted(launched)

    ec2.get_waiter("instance_running").wait(InstanceIds=launched, WaiterConfig=FAST)
    mine = instances(ec2, Filters=[{"Name": "tag:suite", "Values": [suite]}])
    assert sorted(ids_of(mine)) == sorted(launched)
    for inst in mine:
        assert inst["State"] == {"Code": 16, "Name": "running"}
        assert inst["KeyName"] == key["KeyName"]
        assert [g["GroupId"] for g in inst["SecurityGroups"]] == [group]
        assert inst["BlockDeviceMappings"][0]["DeviceName"] == inst["RootDeviceName"]
        assert inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"].startswith("vol-")
        (eni,) = inst["NetworkInterfaces"]
        assert eni["PrivateIpAddress"] == inst["PrivateIpAddress"] and eni["SubnetId"] == inst["SubnetId"]

    resource = boto3.resource(
        "ec2",
        endpoint_url=gateway.url,
        region_name="local-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    by_resource = resource.instances.filter(Filters=[{"Name": "tag:suite", "Values": [suite]}])
    assert sorted(i.id for i in by_resource) == sorted(launched)
    first = resource.Instance(launched[0])
    assert first.instance_type == "t3.small" and first.state["Name"] == "running"

    # a volume in the instance's zone: attach, snapshot, detach, delete
    target = next(i for i in mine if i["InstanceId"] == launched[0])
    zone = target["Placement"]["AvailabilityZone"]
    volume = ec2.create_volume(Size=2, AvailabilityZone=zone, VolumeType="gp3")["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
    ec2.attach_volume(VolumeId=volume, InstanceId=launched[0], Device="/dev/sdh")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[volume], WaiterConfig=FAST)
    (attached,) = instances(ec2, InstanceIds=launched[:1])
    assert "/dev/sdh" in {m["DeviceName"] for m in attached["BlockDeviceMappings"]}
    snapshot = ec2.create_snapshot(VolumeId=volume, Description="lifecycle")["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snapshot], WaiterConfig=FAST)
    with pytest.raises(ClientError) as in_use:
        ec2.delete_volume(VolumeId=volume)
    assert error_of(in_use) == ("VolumeInUse", 400)
    ec2.detach_volume(VolumeId=volume)
    ec2.get_waiter("volume_available").wait(VolumeIds=[volume], WaiterConfig=FAST)
    ec2.delete_volume(VolumeId=volume)
    ec2.delete_snapshot(SnapshotId=snapshot)

    # an elastic address: allocate, associate (the instance shows it), release
    address = ec2.allocate_address(Domain="vpc")
    association = ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=launched[0])
    (addressed,) = instances(ec2, InstanceIds=launched[:1])
    assert addressed["PublicIpAddress"] == address["PublicIp"]
    ec2.disassociate_address(AssociationId=association["AssociationId"])
    ec2.release_address(AllocationId=address["AllocationId"])

    ec2.stop_instances(InstanceIds=launched[:1])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=launched[:1], WaiterConfig=FAST)
    ec2.start_instances(InstanceIds=launched[:1])
    ec2.get_waiter("instance_running").wait(InstanceIds=launched[:1], WaiterConfig=FAST)

    image = ec2.create_image(InstanceId=launched[0], Name=unique("img"), Description="from an instance")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[image], WaiterConfig=FAST)
    mine_images = ec2.describe_images(Owners=["self"])["Images"]
    assert image in [i["ImageId"] for i in mine_images]

    changes = ec2.terminate_instances(InstanceIds=launched)["TerminatingInstances"]
    assert {c["PreviousState"]["Name"] for c in changes} == {"running"}
    ec2.get_waiter("instance_terminated").wait(InstanceIds=launched, WaiterConfig=FAST)
    # terminated instances stay visible for a while, as on EC2, without their interfaces
    gone = instances(ec2, InstanceIds=launched)
    assert {i["State"]["Name"] for i in gone} == {"terminated"} and all(not i["NetworkInterfaces"] for i in gone)
    ec2.deregister_image(ImageId=image)
    assert image not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]


# -- filters and pagination ------------------------------------------------------------------------


def test_filters_with_wildcards_and_documented_names(ec2: Any) -> None:
    suite = unique("filt")
    small = launch(ec2, 2, suite, InstanceType="t3.small", Placement={"AvailabilityZone": "local-1b"})
    micro = launch(ec2, 1, suite, InstanceType="t3.micro", Placement={"AvailabilityZone": "local-1a"})
    mine = {"Name": "tag:suite", "Values": [suite]}

    def found(*filters: dict[str, Any]) -> set[str]:
        return set(ids_of(instances(ec2, Filters=[mine, *filters])))

    assert found({"Name": "instance-type", "Values": ["t3.s*"]}) == set(ids_of(small))
    assert found({"Name": "instance-type", "Values": ["t3.micr?"]}) == set(ids_of(micro))
    assert found({"Name": "availability-zone", "Values": ["local-1a", "local-1b"]}) == set(ids_of(small + micro))
    assert found({"Name": "instance-id", "Values": [micro[0]["InstanceId"]]}) == set(ids_of(micro))
    assert found({"Name": "image-id", "Values": [image_id(ec2)]}) == set(ids_of(small + micro))
    assert found({"Name": "image-id", "Values": [image_id(ec2, "debian-12")]}) == set()
    assert found({"Name": "instance-state-name", "Values": ["pending", "running"]}) == set(ids_of(small + micro))
    assert found({"Name": "instance-state-code", "Values": ["48"]}) == set()
    assert found({"Name": "tag-key", "Values": ["sui?e"]}) == set(ids_of(small + micro))
    assert found({"Name": "reservation-id", "Values": [_reservation(ec2, small)]}) == set(ids_of(small))
    assert found({"Name": "owner-id", "Values": ["111111111111"]}) == set(ids_of(small + micro))
    assert found({"Name": "block-device-mapping.device-name", "Values": ["/dev/sda1"]}) == set(ids_of(small + micro))
    vpc = instances(ec2, InstanceIds=ids_of(micro))[0]["VpcId"]
    assert found({"Name": "vpc-id", "Values": [vpc]}) == set(ids_of(small + micro))
    # a literal star is escaped with a backslash
    assert found({"Name": "instance-type", "Values": ["t3\\*"]}) == set()
    with pytest.raises(ClientError) as bad:
        ec2.describe_instances(Filters=[{"Name": "no-such-filter", "Values": ["x"]}])
    assert error_of(bad) == ("InvalidParameterValue", 400)
    ec2.terminate_instances(InstanceIds=ids_of(small + micro))


def _reservation(ec2: Any, batch: list[dict[str, Any]]) -> str:
    (reservation,) = ec2.describe_instances(InstanceIds=ids_of(batch[:1]))["Reservations"]
    return reservation["ReservationId"]


def test_paginator_max_results_5_over_12_instances_is_stable_while_instances_change(ec2: Any) -> None:
    suite = unique("page")
    launched = ids_of(launch(ec2, 12, suite))
    pages = ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "tag:suite", "Values": [suite]}], PaginationConfig={"PageSize": 5}
    )
    sizes, seen = [], []
    for page in pages:
        batch = [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
        sizes.append(len(batch))
        seen += batch
    assert sizes == [5, 5, 2] and sorted(seen) == sorted(launched)

    # pages continue after the last item seen: launching and terminating in between shifts nothing
    first = ec2.describe_instances(Filters=[{"Name": "tag:suite", "Values": [suite]}], MaxResults=5)
    first_ids = [i["InstanceId"] for r in first["Reservations"] for i in r["Instances"]]
    ec2.terminate_instances(InstanceIds=first_ids[:2])
    late = ids_of(launch(ec2, 1, suite))
    rest: list[str] = []
    token = first["NextToken"]
    for _ in range(10):
        page = ec2.describe_instances(Filters=[{"Name": "tag:suite", "Values": [suite]}], MaxResults=5, NextToken=token)
        rest += [i["InstanceId"] for r in page["Reservations"] for i in r["Instances"]]
        token = page.get("NextToken")
        if not token:
            break
    assert not set(rest) & set(first_ids)
    assert sorted(rest) == sorted(set(launched) - set(first_ids) | set(late))

    with pytest.raises(ClientError) as bad_token:
        ec2.describe_instances(MaxResults=5, NextToken="not-a-token")
    assert error_of(bad_token) == ("InvalidPaginationToken", 400)
    with pytest.raises(ClientError) as too_small:
        ec2.describe_instances(MaxResults=4)
    assert error_of(too_small) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as combined:
        ec2.describe_instances(InstanceIds=launched[:1], MaxResults=5)
    assert error_of(combined) == ("InvalidParameterCombination", 400)
    ec2.terminate_instances(InstanceIds=launched + late)


# -- launch details ----------------------------------------------------------------------------------


def test_block_device_mappings_on_launch_are_volumes_of_the_instance(ec2: Any) -> None:
    (inst,) = launch(
        ec2,
        BlockDeviceMappings=[
            {"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 20, "VolumeType": "gp3"}},
            {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 5, "DeleteOnTermination": False}},
            {"DeviceName": "/dev/sdb", "VirtualName": "ephemeral0"},
        ],
    )
    iid = inst["InstanceId"]
    (described,) = instances(ec2, InstanceIds=[iid])
    mappings = {m["DeviceName"]: m["Ebs"] for m in described["BlockDeviceMappings"]}
    assert set(mappings) == {"/dev/sda1", "/dev/sdf"}
    volumes = {
        v["VolumeId"]: v
        for v in ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]
    }
    assert volumes[mappings["/dev/sda1"]["VolumeId"]]["Size"] == 20
    assert volumes[mappings["/dev/sdf"]["VolumeId"]]["Size"] == 5
    assert mappings["/dev/sdf"]["DeleteOnTermination"] is False
    attribute = ec2.describe_instance_attribute(InstanceId=iid, Attribute="blockDeviceMapping")
    assert {m["DeviceName"] for m in attribute["BlockDeviceMappings"]} == {"/dev/sda1", "/dev/sdf"}
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    # the kept disk survives termination, detached; the root disk is gone
    kept = ec2.describe_volumes(VolumeIds=[mappings["/dev/sdf"]["VolumeId"]])["Volumes"][0]
    assert kept["State"] == "available" and not kept.get("Attachments")
    with pytest.raises(ClientError) as gone:
        ec2.describe_volumes(VolumeIds=[mappings["/dev/sda1"]["VolumeId"]])
    assert error_of(gone) == ("InvalidVolume.NotFound", 400)
    ec2.delete_volume(VolumeId=kept["VolumeId"])


def test_user_data_instance_type_and_console_output(ec2: Any) -> None:
    (inst,) = launch(ec2, UserData="#!/bin/sh\necho hello\n")
    iid = inst["InstanceId"]
    data = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(data) == b"#!/bin/sh\necho hello\n"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    with pytest.raises(ClientError) as running:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.medium"})
    assert error_of(running) == ("IncorrectInstanceState", 400)
    output = ec2.get_console_output(InstanceId=iid)
    assert output["InstanceId"] == iid and "Linux" in output["Output"]  # boto3 decodes the base64

    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t3.medium"})
    ec2.modify_instance_attribute(InstanceId=iid, UserData={"Value": b"second"})
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="instanceType", Value="m5.large")
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="instanceType")["InstanceType"]["Value"] == (
        "m5.large"
    )
    data = ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(data) == b"second"
    with pytest.raises(ClientError) as bad_type:
        ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "z9.huge"})
    assert error_of(bad_type) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as bad_attr:
        ec2.describe_instance_attribute(InstanceId=iid, Attribute="colour")
    assert error_of(bad_attr)[1] == 400
    groups = ec2.describe_instance_attribute(InstanceId=iid, Attribute="groupSet")["Groups"]
    assert [g["GroupName"] for g in groups] == ["default"]
    ec2.terminate_instances(InstanceIds=[iid])


def test_instance_status(ec2: Any) -> None:
    (inst,) = launch(ec2)
    iid = inst["InstanceId"]
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=[iid], WaiterConfig=FAST)
    (status,) = ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"]
    assert status["InstanceState"]["Name"] == "running"
    assert status["InstanceStatus"]["Status"] == "ok" and status["SystemStatus"]["Status"] == "ok"
    ec2.stop_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    assert ec2.describe_instance_status(InstanceIds=[iid])["InstanceStatuses"] == []
    (stopped,) = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"]
    assert stopped["InstanceStatus"]["Status"] == "not-applicable"
    ec2.terminate_instances(InstanceIds=[iid])


def test_client_token_with_other_parameters_is_a_mismatch(ec2: Any) -> None:
    token = unique("tok")
    (first,) = ec2.run_instances(
        ImageId=image_id(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=token
    )["Instances"]
    with pytest.raises(ClientError) as mismatch:
        ec2.run_instances(ImageId=image_id(ec2), InstanceType="t3.small", MinCount=1, MaxCount=1, ClientToken=token)
    assert error_of(mismatch) == ("IdempotentParameterMismatch", 400)
    ec2.terminate_instances(InstanceIds=[first["InstanceId"]])


def test_describe_instances_shows_the_client_token_of_the_launch(ec2: Any) -> None:
    token, other = unique("tok"), unique("tok")
    run = launch(ec2, 2, ClientToken=token)
    assert {i["ClientToken"] for i in run} == {token}
    (elsewhere,) = launch(ec2, ClientToken=other)
    described = instances(ec2, InstanceIds=[*ids_of(run), elsewhere["InstanceId"]])
    assert {i["InstanceId"]: i["ClientToken"] for i in described} == {
        **dict.fromkeys(ids_of(run), token),
        elsewhere["InstanceId"]: other,
    }
    by_token = instances(ec2, Filters=[{"Name": "client-token", "Values": [token]}])
    assert sorted(ids_of(by_token)) == sorted(ids_of(run))
    ec2.terminate_instances(InstanceIds=ids_of(described))


# -- images and key pairs ---------------------------------------------------------------------------


def test_images_filters_and_errors(ec2: Any) -> None:
    public = ec2.describe_images(Owners=["amazon"])["Images"]
    assert {i["Name"] for i in public} >= {"ubuntu-24.04", "debian-12"}
    assert all(i["ImageOwnerAlias"] == "amazon" and i["Public"] for i in public)
    by_name = ec2.describe_images(Filters=[{"Name": "name", "Values": ["deb*"]}])["Images"]
    assert [i["Name"] for i in by_name] == ["debian-12"]
    assert (
        ec2.describe_images(Filters=[{"Name": "is-public", "Values": ["false"]}, {"Name": "name", "Values": ["deb*"]}])[
            "Images"
        ]
        == []
    )
    with pytest.raises(ClientError) as missing:
        ec2.describe_images(ImageIds=["ami-0123456789abcdef0"])
    assert error_of(missing) == ("InvalidAMIID.NotFound", 400)
    with pytest.raises(ClientError) as malformed:
        ec2.describe_images(ImageIds=["ami-xyz"])
    assert error_of(malformed) == ("InvalidAMIID.Malformed", 400)
    with pytest.raises(ClientError) as not_mine:
        ec2.deregister_image(ImageId=image_id(ec2))
    assert error_of(not_mine)[0] == "AuthFailure"


def test_create_image_name_rules(ec2: Any) -> None:
    (inst,) = launch(ec2)
    name = unique("img")
    ec2.get_waiter("instance_running").wait(InstanceIds=[inst["InstanceId"]], WaiterConfig=FAST)
    image = ec2.create_image(
        InstanceId=inst["InstanceId"],
        Name=name,
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "role", "Value": "golden"}]}],
    )["ImageId"]
    (described,) = ec2.describe_images(ImageIds=[image])["Images"]
    assert described["Name"] == name and described["OwnerId"] == "111111111111"
    assert described["Tags"] == [{"Key": "role", "Value": "golden"}]
    assert described["SourceInstanceId"] == inst["InstanceId"]
    with pytest.raises(ClientError) as duplicate:
        ec2.create_image(InstanceId=inst["InstanceId"], Name=name)
    assert error_of(duplicate) == ("InvalidAMIName.Duplicate", 400)
    with pytest.raises(ClientError) as malformed:
        ec2.create_image(InstanceId=inst["InstanceId"], Name="no {braces}")
    assert error_of(malformed) == ("InvalidAMIName.Malformed", 400)
    # another tenant cannot see a private image
    other = ec2_client_of(ec2, "other", "other-secret")
    with pytest.raises(ClientError) as hidden:
        other.describe_images(ImageIds=[image])
    assert error_of(hidden) == ("InvalidAMIID.NotFound", 400)
    ec2.deregister_image(ImageId=image)
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])


def ec2_client_of(ec2: Any, key: str, secret: str) -> Any:
    return boto3.client(
        "ec2",
        endpoint_url=ec2.meta.endpoint_url,
        region_name="local-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_key_pairs_by_id_and_filter(ec2: Any) -> None:
    name = unique("kp")
    created = ec2.create_key_pair(KeyName=name, KeyType="ed25519")
    with pytest.raises(ClientError) as duplicate:
        ec2.create_key_pair(KeyName=name)
    assert error_of(duplicate) == ("InvalidKeyPair.Duplicate", 400)
    (by_id,) = ec2.describe_key_pairs(KeyPairIds=[created["KeyPairId"]])["KeyPairs"]
    assert by_id["KeyName"] == name and "PublicKey" not in by_id
    (with_key,) = ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    assert with_key["PublicKey"].startswith("ssh-ed25519 ")
    found = ec2.describe_key_pairs(
        Filters=[{"Name": "key-type", "Values": ["ed25519"]}, {"Name": "key-name", "Values": [name[:4] + "*"]}]
    )
    assert name in [k["KeyName"] for k in found["KeyPairs"]]
    with pytest.raises(ClientError) as unknown:
        ec2.describe_key_pairs(KeyNames=[unique("none")])
    assert error_of(unknown) == ("InvalidKeyPair.NotFound", 400)
    ec2.delete_key_pair(KeyPairId=created["KeyPairId"])
    assert name not in [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]


# -- errors, permissions, STS ------------------------------------------------------------------------


def test_error_codes_of_instances(ec2: Any, gateway: Any) -> None:
    cases = [
        (lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceID.NotFound"),
        (lambda: ec2.describe_instances(InstanceIds=["i-123"]), "InvalidInstanceID.Malformed"),
        (lambda: ec2.stop_instances(InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceID.NotFound"),
        (
            lambda: ec2.run_instances(ImageId="ami-0123456789abcdef0", MinCount=1, MaxCount=1),
            "InvalidAMIID.NotFound",
        ),
        (
            lambda: ec2.run_instances(ImageId=image_id(ec2), InstanceType="z9.huge", MinCount=1, MaxCount=1),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.run_instances(ImageId=image_id(ec2), MinCount=2, MaxCount=1),
            "InvalidParameterValue",
        ),
        (
            lambda: ec2.run_instances(ImageId=image_id(ec2), MinCount=1, MaxCount=1, KeyName=unique("nokey")),
            "InvalidKeyPair.NotFound",
        ),
        (
            lambda: ec2.run_instances(ImageId=image_id(ec2), MinCount=5000, MaxCount=5000),
            "InstanceLimitExceeded",
        ),
        (lambda: ec2.get_console_output(InstanceId="i-0123456789abcdef0"), "InvalidInstanceID.NotFound"),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == (code, 400), code
    # the message names the id the client sent, never the gateway's internal one
    with pytest.raises(ClientError) as excinfo:
        ec2.stop_instances(InstanceIds=["i-0123456789abcdef0"])
    assert "i-0123456789abcdef0" in excinfo.value.response["Error"]["Message"]

    (inst,) = launch(ec2)
    iid = inst["InstanceId"]
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    with pytest.raises(ClientError) as excinfo:
        ec2.start_instances(InstanceIds=[iid])
    assert error_of(excinfo) == ("IncorrectInstanceState", 400)
    # a tenant never sees another's instance
    other = gateway.client("other", "other-secret")
    with pytest.raises(ClientError) as excinfo:
        other.describe_instances(InstanceIds=[iid])
    assert error_of(excinfo) == ("InvalidInstanceID.NotFound", 400)


def test_missing_parameters_are_missing_parameter(gateway: Any) -> None:
    """boto3 checks required parameters itself; with its validation off the gateway must say it."""
    loose = gateway.client(parameter_validation=False)
    for call in (
        lambda: loose.run_instances(MinCount=1, MaxCount=1),
        lambda: loose.describe_instance_attribute(Attribute="instanceType"),
        lambda: loose.create_key_pair(),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_of(excinfo) == ("MissingParameter", 400)


def test_dry_run_and_roles(ec2: Any, gateway: Any) -> None:
    reader = gateway.client("reader", "reader-secret")
    with pytest.raises(ClientError) as allowed:
        ec2.run_instances(ImageId=image_id(ec2), MinCount=1, MaxCount=1, DryRun=True)
    assert error_of(allowed) == ("DryRunOperation", 412)
    with pytest.raises(ClientError) as denied:
        reader.run_instances(ImageId=image_id(ec2), MinCount=1, MaxCount=1, DryRun=True)
    assert error_of(denied) == ("UnauthorizedOperation", 403)
    with pytest.raises(ClientError) as refused:
        reader.run_instances(ImageId=image_id(ec2), MinCount=1, MaxCount=1)
    assert error_of(refused) == ("UnauthorizedOperation", 403)
    with pytest.raises(ClientError) as read_dry:
        reader.describe_instances(DryRun=True)
    assert error_of(read_dry) == ("DryRunOperation", 412)


def test_sts_get_caller_identity_names_the_tenant_account(gateway: Any) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="local-1",
        aws_access_key_id="other",
        aws_secret_access_key="other-secret",
        config=Config(retries={"total_max_attempts": 1}),
    )
    identity = sts.get_caller_identity()
    assert identity["Account"] == "222222222222"
    assert identity["Arn"].startswith("arn:aws:iam::222222222222:user/")
    with pytest.raises(ClientError) as excinfo:
        sts.assume_role(RoleArn="arn:aws:iam::222222222222:role/x", RoleSessionName="session")
    assert error_of(excinfo) == ("InvalidAction", 400)
    bad = boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="local-1",
        aws_access_key_id="other",
        aws_secret_access_key="wrong",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as denied:
        bad.get_caller_identity()
    assert error_of(denied)[1] in (401, 403)


def test_terminated_instances_stay_visible(ec2: Any) -> None:
    """EC2 keeps terminated instances in DescribeInstances for about an hour; so does the gateway."""
    (inst,) = launch(ec2)
    ec2.terminate_instances(InstanceIds=[inst["InstanceId"]])
    deadline = time.monotonic() + 20
    state = ""
    while time.monotonic() < deadline and state != "terminated":
        (found,) = instances(ec2, InstanceIds=[inst["InstanceId"]])
        state = found["State"]["Name"]
        time.sleep(0.2)
    assert state == "terminated"
    states = {
        i["State"]["Name"] for i in instances(ec2, Filters=[{"Name": "instance-id", "Values": [inst["InstanceId"]]}])
    }
    assert states == {"terminated"}


def test_run_instances_checks_its_tag_specifications(ec2: Any) -> None:
    """Tags for the volumes are valid (and not put on the instance); a type RunInstances cannot tag, or a
    reserved key, is refused before anything is launched."""
    before = len(instances(ec2))
    specs = [
        {"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"}]},
        {"ResourceType": "volume", "Tags": [{"Key": "disk", "Value": "root"}]},
    ]
    (inst,) = ec2.run_instances(ImageId=image_id(ec2), MinCount=1, MaxCount=1, TagSpecifications=specs)["Instances"]
    assert inst["Tags"] == [{"Key": "role", "Value": "web"}]
    for bad in (
        [{"ResourceType": "vpc", "Tags": [{"Key": "a", "Value": "b"}]}],
        [{"ResourceType": "instance", "Tags": [{"Key": "aws:owner", "Value": "me"}]}],
        [{"ResourceType": "volume", "Tags": [{"Key": "", "Value": "empty"}]}],
    ):
        with pytest.raises(ClientError) as caught:
            ec2.run_instances(ImageId=image_id(ec2), MinCount=1, MaxCount=1, TagSpecifications=bad)
        assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert len(instances(ec2)) == before + 1


def test_hibernation(ec2: Any) -> None:
    """Launched with HibernationOptions, StopInstances(Hibernate) leaves it stopped for hibernation and
    StartInstances wakes it; the option shows in DescribeInstances and filters."""
    (inst,) = launch(ec2, HibernationOptions={"Configured": True})
    iid = inst["InstanceId"]
    assert inst["HibernationOptions"] == {"Configured": True}
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    configured = instances(ec2, Filters=[{"Name": "hibernation-options.configured", "Values": ["true"]}])
    assert iid in [i["InstanceId"] for i in configured]
    ec2.stop_instances(InstanceIds=[iid], Hibernate=True)
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid], WaiterConfig=FAST)
    (item,) = instances(ec2, InstanceIds=[iid])
    assert item["StateReason"]["Code"] == "Client.UserInitiatedHibernate"
    ec2.start_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    ec2.terminate_instances(InstanceIds=[iid])


def test_ec2_only_attributes_are_derived_from_the_machine(ec2: Any) -> None:
    """Network performance from the size, one reservation per launch, the AMI's root device on the instance."""
    types = {
        t["InstanceType"]: t["NetworkInfo"]["NetworkPerformance"]
        for t in ec2.describe_instance_types()["InstanceTypes"]
    }
    assert (types["t3.micro"], types["c5.xlarge"]) == ("Up to 5 Gigabit", "Up to 10 Gigabit")  # 2 and 4 vCPUs
    suite = unique("derived")
    pair, single = launch(ec2, count=2, tag=suite), launch(ec2, tag=suite)
    reservations = ec2.describe_instances(InstanceIds=ids_of(pair + single))["Reservations"]
    assert sorted(len(r["Instances"]) for r in reservations) == [1, 2]
    (image,) = ec2.describe_images(ImageIds=[image_id(ec2)])["Images"]
    assert {i["RootDeviceName"] for i in pair + single} == {image["RootDeviceName"]}
    ec2.terminate_instances(InstanceIds=ids_of(pair + single))
