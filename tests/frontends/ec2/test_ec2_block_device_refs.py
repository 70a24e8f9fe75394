"""Nested references: a snapshot named inside RunInstances' BlockDeviceMapping goes through the same id
translation and tenant check as a top-level id (the backend sees its own id, another tenant's is NotFound)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import error_of

WAIT = {"Delay": 1, "MaxAttempts": 30}


def _image(ec2: Any) -> str:
    return next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")


def _snapshot(ec2: Any) -> str:
    vid = ec2.create_volume(AvailabilityZone="local-1a", Size=3)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=WAIT)
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig=WAIT)
    return sid


def test_a_disk_from_a_gateway_snapshot_id_is_made_from_that_snapshot(ec2: Any) -> None:
    sid = _snapshot(ec2)
    mapping = [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": sid, "DeleteOnTermination": True}}]
    (launched,) = ec2.run_instances(
        ImageId=_image(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1, BlockDeviceMappings=mapping,
        Placement={"AvailabilityZone": "local-1a"},
    )["Instances"]  # fmt: skip
    iid = launched["InstanceId"]
    try:
        volumes = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"]
        assert [v["SnapshotId"] for v in volumes if v.get("SnapshotId")] == [sid]
        from_snapshot = next(v for v in volumes if v.get("SnapshotId") == sid)
        assert from_snapshot["Size"] == 3
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


def test_another_tenants_snapshot_in_a_mapping_is_not_found(gateway: Any, ec2: Any) -> None:
    sid = _snapshot(ec2)
    other = gateway.client("other", "other-secret")
    mapping = [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": sid}}]
    with pytest.raises(ClientError) as excinfo:
        other.run_instances(
            ImageId=_image(other), InstanceType="t3.micro", MinCount=1, MaxCount=1, BlockDeviceMappings=mapping
        )
    assert error_of(excinfo) == ("InvalidSnapshot.NotFound", 400)
    assert other.describe_instances()["Reservations"] == []
