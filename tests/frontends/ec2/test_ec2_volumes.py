"""EBS volumes and snapshots over HTTP with boto3: lifecycle, attachments, filters, pages, waiters, errors.

Expectations come from the EC2 API reference: volume states creating/available/in-use, attachment
fields, VolumeInUse / IncorrectState / InvalidVolume.ZoneMismatch, DescribeVolumes MaxResults 5..500
(larger values served as 500) and never with VolumeIds, snapshots owned by "self".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from ec2util import assert_pages_stable, error_of, unique

from frontends.ec2.actions.volumes import ATTACHMENT_STATES, SNAPSHOT_STATES, VOLUME_STATES
from translator.model import AttachmentState, SnapshotState, VolumeState

ACCOUNT = "111111111111"
WAIT = {"Delay": 1, "MaxAttempts": 30}
MISSING_VOLUME = "vol-0123456789abcdef0"
MISSING_SNAPSHOT = "snap-0123456789abcdef0"


def _tags(resource_type: str, **tags: str) -> list[dict[str, Any]]:
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]


def _volume(ec2: Any, vid: str) -> dict[str, Any]:
    (volume,) = ec2.describe_volumes(VolumeIds=[vid])["Volumes"]
    return volume


def _new_volume(ec2: Any, zone: str = "local-1a", size: int = 1, **kw: Any) -> str:
    return ec2.create_volume(AvailabilityZone=zone, Size=size, **kw)["VolumeId"]


def _available(ec2: Any, zone: str = "local-1a", size: int = 1, **kw: Any) -> str:
    vid = _new_volume(ec2, zone, size, **kw)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=WAIT)
    return vid


@pytest.fixture(scope="module")
def source(gateway: Any) -> str:
    """One available 2 GiB volume in local-1a that the snapshot tests take snapshots of."""
    ec2 = gateway.client()
    return _available(ec2, size=2, TagSpecifications=_tags("volume", role="snapshot-source"))


@pytest.fixture(scope="module")
def instance(gateway: Any) -> Iterator[str]:
    """One running instance in local-1a, shared by the attachment tests."""
    ec2 = gateway.client()
    image = next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "ubuntu-24.04")
    (launched,) = ec2.run_instances(
        ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": "local-1a"}
    )["Instances"]
    iid = launched["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=WAIT)
    yield iid
    ec2.terminate_instances(InstanceIds=[iid])


def test_every_canonical_state_has_an_ec2_name() -> None:
    """STYLE.md item 3: one row per canonical state, so no state ever renders as an error."""
    for states, names in (
        (VolumeState, VOLUME_STATES),
        (AttachmentState, ATTACHMENT_STATES),
        (SnapshotState, SNAPSHOT_STATES),
    ):
        assert set(names) == set(states)


# -- create and describe ---------------------------------------------------------------------------


def test_create_volume_then_it_becomes_available(ec2: Any) -> None:
    created = ec2.create_volume(
        AvailabilityZone="local-1b", Size=3, VolumeType="gp3", TagSpecifications=_tags("volume", Name="data")
    )
    vid = created["VolumeId"]
    assert vid.startswith("vol-") and len(vid) == 21
    assert created["State"] == "creating"
    # gp3 is made as the ssd tier, which EC2's name for it is gp2 (one name per tier, read back alike).
    assert created["Size"] == 3 and created["AvailabilityZone"] == "local-1b" and created["VolumeType"] == "gp2"
    assert created["Tags"] == [{"Key": "Name", "Value": "data"}]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=WAIT)
    volume = _volume(ec2, vid)
    assert volume["State"] == "available"
    assert volume["Size"] == 3 and volume["AvailabilityZone"] == "local-1b" and volume["VolumeType"] == "gp2"
    assert volume["SnapshotId"] == ""  # a blank volume has no source snapshot
    assert volume["Attachments"] == []
    assert volume["Encrypted"] is False
    assert volume["Tags"] == [{"Key": "Name", "Value": "data"}]
    assert volume["CreateTime"] == created["CreateTime"]


def test_default_volume_type_is_gp2(ec2: Any) -> None:
    assert ec2.create_volume(AvailabilityZone="local-1a", Size=1)["VolumeType"] == "gp2"


@pytest.mark.parametrize(
    ("asked", "shown"),
    [("standard", "standard"), ("gp3", "gp2"), ("io2", "io1"), ("io1", "io1"), ("sc1", "st1"), ("st1", "st1")],
)
def test_volume_types_are_tiers_named_in_ec2s_words(ec2: Any, asked: str, shown: str) -> None:
    assert ec2.create_volume(AvailabilityZone="local-1a", Size=1, VolumeType=asked)["VolumeType"] == shown


def test_create_volume_parameter_errors(gateway: Any, ec2: Any) -> None:
    unchecked = gateway.client(parameter_validation=False)
    cases = [
        (dict(Size=1), "MissingParameter"),
        (dict(AvailabilityZone="local-9z", Size=1), "InvalidParameterValue"),
        (dict(AvailabilityZone="local-1a"), "MissingParameter"),
        (dict(AvailabilityZone="local-1a", Size=0), "InvalidParameterValue"),
        (dict(AvailabilityZone="local-1a", Size=20000), "InvalidParameterValue"),
        (dict(AvailabilityZone="local-1a", Size=1, VolumeType="floppy"), "InvalidParameterValue"),
        (dict(AvailabilityZone="local-1a", SnapshotId="snap-nothex"), "InvalidSnapshotID.Malformed"),
        (dict(AvailabilityZone="local-1a", SnapshotId=MISSING_SNAPSHOT), "InvalidSnapshot.NotFound"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as exc:
            unchecked.create_volume(**kwargs)
        assert error_of(exc) == (code, 400), kwargs


def test_describe_unknown_and_malformed_ids(ec2: Any) -> None:
    with pytest.raises(ClientError) as exc:
        ec2.describe_volumes(VolumeIds=[MISSING_VOLUME])
    assert error_of(exc) == ("InvalidVolume.NotFound", 400)
    with pytest.raises(ClientError) as exc:
        ec2.describe_volumes(VolumeIds=["vol-xyz"])
    assert error_of(exc) == ("InvalidVolumeID.Malformed", 400)
    with pytest.raises(ClientError) as exc:
        ec2.delete_volume(VolumeId=MISSING_VOLUME)
    assert error_of(exc) == ("InvalidVolume.NotFound", 400)


def test_delete_volume(ec2: Any) -> None:
    vid = _available(ec2)
    ec2.delete_volume(VolumeId=vid)
    with pytest.raises(ClientError) as exc:
        ec2.describe_volumes(VolumeIds=[vid])
    assert error_of(exc) == ("InvalidVolume.NotFound", 400)
    with pytest.raises(ClientError) as exc:
        ec2.delete_volume(VolumeId=vid)
    assert error_of(exc) == ("InvalidVolume.NotFound", 400)


# -- attachments -----------------------------------------------------------------------------------


def test_attach_and_detach(ec2: Any, instance: str) -> None:
    vid = _available(ec2)
    attached = ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdf")
    assert attached["VolumeId"] == vid and attached["InstanceId"] == instance and attached["Device"] == "/dev/sdf"
    assert attached["State"] in ("attaching", "attached")
    ec2.get_waiter("volume_in_use").wait(VolumeIds=[vid], WaiterConfig=WAIT)
    volume = _volume(ec2, vid)
    assert volume["State"] == "in-use"
    (attachment,) = volume["Attachments"]
    assert attachment["InstanceId"] == instance and attachment["Device"] == "/dev/sdf"
    assert attachment["State"] == "attached"
    assert attachment["DeleteOnTermination"] is False  # AttachVolume never sets it
    assert attachment["AttachTime"] >= volume["CreateTime"]

    # An attached volume can be neither attached again nor deleted.
    with pytest.raises(ClientError) as exc:
        ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdg")
    assert error_of(exc) == ("VolumeInUse", 400)
    with pytest.raises(ClientError) as exc:
        ec2.delete_volume(VolumeId=vid)
    assert error_of(exc) == ("VolumeInUse", 400)

    detached = ec2.detach_volume(VolumeId=vid, InstanceId=instance)
    assert detached["VolumeId"] == vid and detached["InstanceId"] == instance and detached["Device"] == "/dev/sdf"
    assert detached["State"] in ("detaching", "detached")
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=WAIT)
    assert _volume(ec2, vid)["Attachments"] == []
    with pytest.raises(ClientError) as exc:
        ec2.detach_volume(VolumeId=vid)
    assert error_of(exc) == ("IncorrectState", 400)
    ec2.delete_volume(VolumeId=vid)


def test_attachment_errors(gateway: Any, ec2: Any, instance: str) -> None:
    fresh = _new_volume(ec2)
    if _volume(ec2, fresh)["State"] == "creating":  # EC2 attaches available volumes only
        with pytest.raises(ClientError) as exc:
            ec2.attach_volume(VolumeId=fresh, InstanceId=instance, Device="/dev/sdh")
        assert error_of(exc) == ("IncorrectState", 400)
    elsewhere, vid, second = _new_volume(ec2, zone="local-1b"), _new_volume(ec2), _new_volume(ec2)
    ec2.get_waiter("volume_available").wait(VolumeIds=[elsewhere, vid, second], WaiterConfig=WAIT)
    with pytest.raises(ClientError) as exc:
        ec2.attach_volume(VolumeId=elsewhere, InstanceId=instance, Device="/dev/sdh")
    assert error_of(exc) == ("InvalidVolume.ZoneMismatch", 400)

    for device in ("sdh", "/dev/floppy"):
        with pytest.raises(ClientError) as exc:
            ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device=device)
        assert error_of(exc) == ("InvalidParameterValue", 400), device
    with pytest.raises(ClientError) as exc:
        ec2.attach_volume(VolumeId=vid, InstanceId="i-0123456789abcdef0", Device="/dev/sdh")
    assert error_of(exc) == ("InvalidInstanceID.NotFound", 400)
    unchecked = gateway.client(parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        unchecked.attach_volume(VolumeId=vid, InstanceId=instance)
    assert error_of(exc) == ("MissingParameter", 400)

    ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdh")
    with pytest.raises(ClientError) as exc:  # the device name is taken on that instance
        ec2.attach_volume(VolumeId=second, InstanceId=instance, Device="/dev/sdh")
    assert error_of(exc) == ("InvalidParameterValue", 400)
    with pytest.raises(ClientError) as exc:  # attached, but not to that instance
        ec2.detach_volume(VolumeId=vid, InstanceId="i-0123456789abcdef0")
    assert error_of(exc) == ("InvalidInstanceID.NotFound", 400)
    with pytest.raises(ClientError) as exc:
        ec2.detach_volume(VolumeId=vid, Device="/dev/sdz")
    assert error_of(exc) == ("InvalidAttachment.NotFound", 400)
    ec2.detach_volume(VolumeId=vid, Device="/dev/sdh")
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig=WAIT)


def test_attachment_filters(ec2: Any, instance: str) -> None:
    vid, loose = _new_volume(ec2), _new_volume(ec2)
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid, loose], WaiterConfig=WAIT)
    attached = ec2.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdk")
    mine = [{"Name": "volume-id", "Values": [vid, loose]}]

    def ids(name: str, *values: str) -> set[str]:
        found = ec2.describe_volumes(Filters=[*mine, {"Name": name, "Values": list(values)}])["Volumes"]
        return {v["VolumeId"] for v in found}

    assert ids("attachment.instance-id", instance) == {vid}
    assert ids("attachment.device", "/dev/sd?") == {vid}
    assert ids("attachment.status", "attached") == {vid}
    assert ids("attachment.delete-on-termination", "false") == {vid}
    assert ids("attachment.attach-time", attached["AttachTime"].strftime("%Y-%m-%dT%H:%M:%S.*")) == {vid}
    assert ids("status", "in-use") == {vid}
    assert ids("status", "available") == {loose}
    # The instance's own root volume shows its attachment too.
    roots = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance]}])["Volumes"]
    assert vid in {v["VolumeId"] for v in roots} and len(roots) >= 2
    ec2.detach_volume(VolumeId=vid)


# -- filters and pages -----------------------------------------------------------------------------


def test_volume_filters_with_wildcards(ec2: Any) -> None:
    suite = unique("vf")
    small = _new_volume(ec2, "local-1a", 2, VolumeType="gp3", TagSpecifications=_tags("volume", suite=suite, tier="a"))
    big = _new_volume(ec2, "local-1b", 12, VolumeType="io1", TagSpecifications=_tags("volume", suite=suite, tier="b"))
    created = _volume(ec2, small)["CreateTime"]

    def ids(*filters: tuple[str, list[str]]) -> set[str]:
        query = [{"Name": "tag:suite", "Values": [suite]}] + [{"Name": n, "Values": v} for n, v in filters]
        return {v["VolumeId"] for v in ec2.describe_volumes(Filters=query)["Volumes"]}

    assert ids() == {small, big}
    assert ids(("size", ["2"])) == {small}
    assert ids(("size", ["1?"])) == {big}
    assert ids(("availability-zone", ["local-1b"])) == {big}
    assert ids(("availability-zone", ["local-1*"])) == {small, big}
    assert ids(("volume-type", ["gp2", "io1"])) == {small, big}
    assert ids(("volume-type", ["gp3"])) == set()  # read back as its tier's name, gp2
    assert ids(("volume-type", ["gp*"])) == {small}
    assert ids(("volume-id", [small])) == {small}
    assert ids(("tag:tier", ["b"])) == {big}
    assert ids(("tag-value", ["a"])) == {small}
    assert ids(("create-time", [created.strftime("%Y-%m-%dT*")])) == {small, big}
    assert ids(("create-time", ["1999-*"])) == set()
    assert ids(("encrypted", ["false"])) == {small, big}
    assert ids(("size", ["2"]), ("availability-zone", ["local-1b"])) == set()
    with pytest.raises(ClientError) as exc:
        ec2.describe_volumes(Filters=[{"Name": "colour", "Values": ["red"]}])
    assert error_of(exc) == ("InvalidParameterValue", 400)


def test_volume_pages_stay_stable_while_volumes_are_created(ec2: Any) -> None:
    suite = unique("vp")
    spec = _tags("volume", suite=suite)
    mine = [{"Name": "tag:suite", "Values": [suite]}]
    created = assert_pages_stable(
        ec2.describe_volumes, "Volumes", "VolumeId", mine,
        lambda: _new_volume(ec2, TagSpecifications=spec), first=7, later=3,
    )  # fmt: skip
    # The paginator walks them all.
    pages = ec2.get_paginator("describe_volumes").paginate(Filters=mine, PaginationConfig={"PageSize": 5})
    assert {v["VolumeId"] for p in pages for v in p["Volumes"]} == created


def test_volume_max_results_bounds(gateway: Any, ec2: Any) -> None:
    unchecked = gateway.client(parameter_validation=False)
    with pytest.raises(ClientError) as exc:
        unchecked.describe_volumes(MaxResults=4)
    assert error_of(exc) == ("InvalidParameterValue", 400)
    # Above 500 EC2 serves 500 (the AWS CLI sends 1000 by default).
    assert "Volumes" in ec2.describe_volumes(MaxResults=1000)
    vid = _new_volume(ec2)
    with pytest.raises(ClientError) as exc:
        ec2.describe_volumes(VolumeIds=[vid], MaxResults=5)
    assert error_of(exc) == ("InvalidParameterCombination", 400)


# -- snapshots -------------------------------------------------------------------------------------


def test_snapshot_lifecycle(ec2: Any, source: str) -> None:
    vid = source
    created = ec2.create_snapshot(
        VolumeId=vid, Description="nightly backup", TagSpecifications=_tags("snapshot", kind="nightly")
    )
    sid = created["SnapshotId"]
    assert sid.startswith("snap-") and len(sid) == 22
    assert created["State"] == "pending" and created["VolumeId"] == vid and created["VolumeSize"] == 2
    assert created["OwnerId"] == ACCOUNT and created["Description"] == "nightly backup"
    assert created["Tags"] == [{"Key": "kind", "Value": "nightly"}]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig=WAIT)
    (snapshot,) = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"]
    assert snapshot["State"] == "completed" and snapshot["Progress"] == "100%"
    assert snapshot["VolumeId"] == vid and snapshot["VolumeSize"] == 2 and snapshot["OwnerId"] == ACCOUNT
    assert snapshot["Tags"] == [{"Key": "kind", "Value": "nightly"}]

    # A volume restored from it takes its size unless asked for more, never less.
    restored = ec2.create_volume(AvailabilityZone="local-1b", SnapshotId=sid)
    assert restored["SnapshotId"] == sid and restored["Size"] == 2
    assert ec2.create_volume(AvailabilityZone="local-1a", SnapshotId=sid, Size=6)["Size"] == 6
    with pytest.raises(ClientError) as exc:
        ec2.create_volume(AvailabilityZone="local-1a", SnapshotId=sid, Size=1)
    assert error_of(exc) == ("InvalidParameterValue", 400)
    found = ec2.describe_volumes(Filters=[{"Name": "snapshot-id", "Values": [sid]}])["Volumes"]
    assert len(found) == 2 and restored["VolumeId"] in {v["VolumeId"] for v in found}

    ec2.delete_snapshot(SnapshotId=sid)
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(SnapshotIds=[sid])
    assert error_of(exc) == ("InvalidSnapshot.NotFound", 400)


def test_snapshot_errors(ec2: Any) -> None:
    for call, code in (
        (lambda: ec2.describe_snapshots(SnapshotIds=["snap-nope"]), "InvalidSnapshotID.Malformed"),
        (lambda: ec2.describe_snapshots(SnapshotIds=[MISSING_SNAPSHOT]), "InvalidSnapshot.NotFound"),
        (lambda: ec2.delete_snapshot(SnapshotId=MISSING_SNAPSHOT), "InvalidSnapshot.NotFound"),
        (lambda: ec2.create_snapshot(VolumeId=MISSING_VOLUME), "InvalidVolume.NotFound"),
        (lambda: ec2.create_snapshot(VolumeId="vol-1"), "InvalidVolumeID.Malformed"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == (code, 400)


def test_snapshot_filters_and_owners(ec2: Any, source: str) -> None:
    suite = unique("sf")
    vid = source
    one = ec2.create_snapshot(VolumeId=vid, Description=f"{suite} first", TagSpecifications=_tags("snapshot", s=suite))
    two = ec2.create_snapshot(VolumeId=vid, Description=f"{suite} second", TagSpecifications=_tags("snapshot", s=suite))
    a, b = one["SnapshotId"], two["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[a, b], WaiterConfig=WAIT)

    def ids(*filters: tuple[str, list[str]], **kw: Any) -> set[str]:
        query = [{"Name": "tag:s", "Values": [suite]}] + [{"Name": n, "Values": v} for n, v in filters]
        return {s["SnapshotId"] for s in ec2.describe_snapshots(Filters=query, **kw)["Snapshots"]}

    assert ids() == {a, b}
    assert ids(("description", ["* second"])) == {b}
    assert ids(("snapshot-id", [a])) == {a}
    assert ids(("volume-id", [vid])) == {a, b}
    assert ids(("status", ["completed"])) == {a, b}
    assert ids(("status", ["pending", "error"])) == set()
    assert ids(("progress", ["100%"])) == {a, b}
    assert ids(("volume-size", ["2"])) == {a, b}
    assert ids(("owner-id", [ACCOUNT])) == {a, b}
    assert ids(("start-time", [one["StartTime"].strftime("%Y-%m-%dT*")])) == {a, b}
    assert ids(OwnerIds=["self"]) == {a, b}
    assert ids(OwnerIds=[ACCOUNT]) == {a, b}
    assert ids(OwnerIds=["amazon"]) == set()
    with pytest.raises(ClientError) as exc:
        ec2.describe_snapshots(SnapshotIds=[a], MaxResults=5)
    assert error_of(exc) == ("InvalidParameterCombination", 400)


def test_snapshot_pages_stay_stable(ec2: Any, source: str) -> None:
    suite = unique("sp")
    spec = _tags("snapshot", suite=suite)
    mine = [{"Name": "tag:suite", "Values": [suite]}]
    assert_pages_stable(
        ec2.describe_snapshots, "Snapshots", "SnapshotId", mine,
        lambda: ec2.create_snapshot(VolumeId=source, TagSpecifications=spec)["SnapshotId"], first=6, later=2,
    )  # fmt: skip


# -- who may do what -------------------------------------------------------------------------------


def test_reader_may_describe_but_not_change(gateway: Any, ec2: Any, instance: str, source: str) -> None:
    reader = gateway.client("reader", "reader-secret")
    vid = _new_volume(ec2)
    sid = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    assert _volume(reader, vid)["VolumeId"] == vid
    assert [s["SnapshotId"] for s in reader.describe_snapshots(SnapshotIds=[sid])["Snapshots"]] == [sid]
    for attempt in (
        lambda: reader.create_volume(AvailabilityZone="local-1a", Size=1),
        lambda: reader.attach_volume(VolumeId=vid, InstanceId=instance, Device="/dev/sdm"),
        lambda: reader.detach_volume(VolumeId=vid),
        lambda: reader.delete_volume(VolumeId=vid),
        lambda: reader.create_snapshot(VolumeId=source),
        lambda: reader.delete_snapshot(SnapshotId=sid),
    ):
        with pytest.raises(ClientError) as exc:
            attempt()
        assert error_of(exc) == ("UnauthorizedOperation", 403)
    assert _volume(ec2, vid)["Attachments"] == []  # still there, never attached
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"]] == [sid]


def test_other_tenant_sees_none_of_them(gateway: Any, ec2: Any, source: str) -> None:
    other = gateway.client("other", "other-secret")
    vid = _new_volume(ec2)
    sid = ec2.create_snapshot(VolumeId=source)["SnapshotId"]
    assert vid not in {v["VolumeId"] for v in other.describe_volumes()["Volumes"]}
    assert sid not in {s["SnapshotId"] for s in other.describe_snapshots()["Snapshots"]}
    for attempt, code in (
        (lambda: other.describe_volumes(VolumeIds=[vid]), "InvalidVolume.NotFound"),
        (lambda: other.delete_volume(VolumeId=vid), "InvalidVolume.NotFound"),
        (lambda: other.create_snapshot(VolumeId=source), "InvalidVolume.NotFound"),
        (lambda: other.describe_snapshots(SnapshotIds=[sid]), "InvalidSnapshot.NotFound"),
        (lambda: other.delete_snapshot(SnapshotId=sid), "InvalidSnapshot.NotFound"),
        (lambda: other.create_volume(AvailabilityZone="local-1a", SnapshotId=sid), "InvalidSnapshot.NotFound"),
    ):
        with pytest.raises(ClientError) as exc:
            attempt()
        assert error_of(exc) == (code, 400)
    assert _volume(ec2, vid)["VolumeId"] == vid  # not deleted
