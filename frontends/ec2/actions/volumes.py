"""EBS volumes and snapshots: Create/Describe/Delete/Attach/DetachVolume, Create/Describe/DeleteSnapshot.

Checks that EC2 answers with its own codes and public ids (not attached, attached elsewhere, wrong zone)
are made here against the caller's listing before the translator is asked; the backend still enforces
them atomically, so a race only changes the wording of the error, never the outcome.
"""

from __future__ import annotations

import functools
from typing import Any, cast

from frontends.ec2.actions.base import (
    Call,
    Handler,
    describe_resources,
    describer,
    tag_list,
    when,
    writer,
)
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.paging import refuse_with_ids
from frontends.ec2.vocabulary import TIER_NAMES, check_device, tier_of
from translator.model import (
    Attachment,
    AttachmentState,
    Machine,
    Resource,
    Snapshot,
    SnapshotState,
    Volume,
    VolumeSpec,
    VolumeState,
    replace,
)

#: canonical state -> EC2 state name, one row per canonical state.
VOLUME_STATES: dict[VolumeState, str] = {
    VolumeState.CREATING: "creating",
    VolumeState.AVAILABLE: "available",
    VolumeState.IN_USE: "in-use",
    VolumeState.DELETING: "deleting",
    VolumeState.DELETED: "deleted",
    VolumeState.ERROR: "error",
}
ATTACHMENT_STATES: dict[AttachmentState, str] = {
    AttachmentState.ATTACHING: "attaching",
    AttachmentState.ATTACHED: "attached",
    AttachmentState.DETACHING: "detaching",
    AttachmentState.DETACHED: "detached",
}
SNAPSHOT_STATES: dict[SnapshotState, str] = {
    SnapshotState.PENDING: "pending",
    SnapshotState.COMPLETED: "completed",
    SnapshotState.ERROR: "error",
}
#: MaxResults bounds (EC2 API reference): fewer than the low bound is refused, more than the high one
#: is served as the high one (the AWS CLI itself sends MaxResults=1000 to DescribeVolumes).
VOLUME_PAGE = (5, 500)
SNAPSHOT_PAGE = (5, 1000)
#: States a volume can be snapshotted in.
SNAPSHOTTABLE = frozenset({VolumeState.AVAILABLE, VolumeState.IN_USE})


# -- canonical -> EC2 ---------------------------------------------------------------------------------


def _attachment(volume: Volume, a: Attachment, state: str | None = None) -> dict[str, Any]:
    return {
        "VolumeId": public_id("volume", volume.id),
        "InstanceId": public_id("machine", a.machine_id),
        "Device": a.device,
        "State": state or ATTACHMENT_STATES[a.state],
        "AttachTime": when(a.attached),
        "DeleteOnTermination": a.delete_on_termination,
    }


def _volume(v: Volume) -> dict[str, Any]:
    return {
        "VolumeId": public_id("volume", v.id),
        "Size": v.size_gb,
        "SnapshotId": public_id("snapshot", v.snapshot_id) or "",  # EC2 sends "" for a blank volume
        "AvailabilityZone": v.zone,
        "AvailabilityZoneId": v.zone,  # zone ids are zone names here (DescribeAvailabilityZones)
        "State": VOLUME_STATES[v.state],
        "CreateTime": when(v.created),
        "Attachments": [_attachment(v, a) for a in v.attachments],
        "VolumeType": TIER_NAMES[v.tier],
        "Encrypted": False,
        "MultiAttachEnabled": False,
        "Tags": tag_list(v) or None,
        "_Created": v.created,
    }


def _snapshot(call: Call, s: Snapshot) -> dict[str, Any]:
    return {
        "SnapshotId": public_id("snapshot", s.id),
        "VolumeId": public_id("volume", s.volume_id),
        "State": SNAPSHOT_STATES[s.state],
        "StartTime": when(s.created),
        "Progress": f"{s.progress}%",
        "OwnerId": call.account_id,
        "Description": s.description,
        "VolumeSize": s.size_gb,
        "Encrypted": False,
        "StorageTier": "standard",
        "Tags": tag_list(s) or None,
        "_Created": s.created,
    }


#: DescribeVolumes filters, as EC2 documents them (tag:K, tag-key, tag-value are built in).
VOLUME_FILTERS = table(
    {
        "volume-id": "VolumeId",
        "status": "State",
        "size": "Size",
        "availability-zone": "AvailabilityZone",
        "availability-zone-id": "AvailabilityZoneId",
        "volume-type": "VolumeType",
        "snapshot-id": "SnapshotId",
        "create-time": "CreateTime",
        "encrypted": "Encrypted",
        "multi-attach-enabled": "MultiAttachEnabled",
        "attachment.attach-time": "Attachments[].AttachTime",
        "attachment.delete-on-termination": "Attachments[].DeleteOnTermination",
        "attachment.device": "Attachments[].Device",
        "attachment.instance-id": "Attachments[].InstanceId",
        "attachment.status": "Attachments[].State",
    }
)

#: DescribeSnapshots filters, as EC2 documents them.
SNAPSHOT_FILTERS = table(
    {
        "snapshot-id": "SnapshotId",
        "volume-id": "VolumeId",
        "status": "State",
        "owner-id": "OwnerId",
        "owner-alias": lambda item: None,  # only Amazon-maintained owners have an alias
        "description": "Description",
        "progress": "Progress",
        "start-time": "StartTime",
        "volume-size": "VolumeSize",
        "encrypted": "Encrypted",
        "storage-tier": "StorageTier",
    }
)


# -- helpers ------------------------------------------------------------------------------------------


def _required(args: dict[str, Any], name: str, wire: str) -> Any:
    value = args.get(name)
    if value is None or value == "":
        raise EC2Error("MissingParameter", f"The request must contain the parameter {wire}")
    return value


def _page_args(args: dict[str, Any], ids: list[str], ids_param: str, bounds: tuple[int, int]) -> dict[str, Any]:
    """EC2 refuses MaxResults with ids, and serves a MaxResults above its bound as the bound."""
    limit = args.get("MaxResults")
    if limit is None:
        return args
    refuse_with_ids(args, ids, ids_param)
    return {**args, "MaxResults": min(limit, bounds[1])}


def _volume_of(call: Call, pid: str) -> Volume:
    (gid,) = resolve_ids(call.translator, "volume", [pid])
    return cast(Volume, call.translator.get(call.principal, "volume", gid))


def _tag(call: Call, kind: str, resource: Resource, args: dict[str, Any], resource_type: str) -> None:
    tags = spec_tags(args, resource_type)
    if tags:
        call.translator.update_tags(call.principal, kind, [resource.id], dict(tags))
        resource.tags = dict(tags)


# -- volumes ------------------------------------------------------------------------------------------


def create_volume(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    zone = args.get("AvailabilityZone") or args.get("AvailabilityZoneId")
    if not zone:
        raise EC2Error("MissingParameter", "The request must contain the parameter AvailabilityZone")
    if zone not in {z.name for z in call.translator.zones(call.principal, call.region)}:
        raise EC2Error("InvalidParameterValue", f"Invalid availability zone: [{zone}]")
    size, snapshot = args.get("Size"), args.get("SnapshotId")
    if size is None and not snapshot:
        raise EC2Error("MissingParameter", "The request must contain the parameter size or snapshotId")
    if args.get("Encrypted") or args.get("MultiAttachEnabled"):
        raise EC2Error("UnsupportedOperation", "Encrypted and Multi-Attach volumes are not supported by this gateway.")
    spec = VolumeSpec(
        size_gb=size,
        zone=zone,
        tier=tier_of(args.get("VolumeType")),
        snapshot_id=resolve_ids(call.translator, "snapshot", [snapshot])[0] if snapshot else None,
        idempotency_key=args.get("ClientToken") or "",
    )
    volume = call.translator.create_volume(call.principal, spec, call.region)
    _tag(call, "volume", volume, args, "volume")
    return _volume(volume)


def describe_volumes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("VolumeIds") or []
    page_args = _page_args(args, ids, "volumeIds", VOLUME_PAGE)
    low, high = VOLUME_PAGE
    items, token = describe_resources(
        call, "DescribeVolumes", "volume", page_args, _volume, VOLUME_FILTERS, ids=ids, lowest=low, highest=high
    )
    return {"Volumes": items, "NextToken": token}


def delete_volume(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    pid = _required(args, "VolumeId", "VolumeId")
    volume = _volume_of(call, pid)
    if volume.attachments:
        instance = public_id("machine", volume.attachments[0].machine_id)
        raise EC2Error("VolumeInUse", f"Volume {pid} is currently attached to {instance}")
    call.translator.delete_volume(call.principal, volume.id)
    return {}


def attach_volume(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    pid = _required(args, "VolumeId", "VolumeId")
    instance_pid = _required(args, "InstanceId", "InstanceId")
    device = check_device(_required(args, "Device", "Device"))
    volume = _volume_of(call, pid)
    (machine_id,) = resolve_ids(call.translator, "machine", [instance_pid])
    machine = cast(Machine, call.translator.get(call.principal, "machine", machine_id))
    if volume.attachments:
        raise EC2Error("VolumeInUse", f"{pid} is already attached to an instance")
    if volume.state != VolumeState.AVAILABLE:
        raise EC2Error("IncorrectState", f"vol '{pid}' is not 'available'. It is '{VOLUME_STATES[volume.state]}'.")
    if volume.zone != machine.zone:
        raise EC2Error(
            "InvalidVolume.ZoneMismatch",
            f"The volume '{pid}' is not in the same availability zone as instance '{instance_pid}'",
        )
    updated = call.translator.attach_volume(call.principal, volume.id, machine_id, device)
    found = next((a for a in updated.attachments if a.machine_id == machine_id), None)
    if found is None:  # a backend that reports the attachment later
        return _attachment(updated, Attachment(machine_id=machine_id, device=device), "attaching")
    if not found.device:  # a cloud that names the device once it is attached
        found = replace(found, device=device)
    return _attachment(updated, found)


def detach_volume(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    pid = _required(args, "VolumeId", "VolumeId")
    volume = _volume_of(call, pid)
    instance_pid, device = args.get("InstanceId"), args.get("Device")
    machine_id = resolve_ids(call.translator, "machine", [instance_pid])[0] if instance_pid else None
    if not volume.attachments:
        raise EC2Error("IncorrectState", f"Volume '{pid}' is in the '{VOLUME_STATES[volume.state]}' state.")
    attachment = volume.attachments[0]
    if (machine_id and attachment.machine_id != machine_id) or (device and attachment.device != device):
        raise EC2Error(
            "InvalidAttachment.NotFound",
            f"Volume '{pid}' can not be detached from instance '{instance_pid or device}' as they are not attached",
        )
    updated = call.translator.detach_volume(call.principal, volume.id, machine_id, bool(args.get("Force")))
    still = next((a for a in updated.attachments if a.machine_id == attachment.machine_id), None)
    if still is not None:  # a backend that detaches in the background
        return _attachment(updated, still)
    return _attachment(updated, attachment, ATTACHMENT_STATES[AttachmentState.DETACHED])


# -- snapshots ----------------------------------------------------------------------------------------


def create_snapshot(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    pid = _required(args, "VolumeId", "VolumeId")
    volume = _volume_of(call, pid)
    if volume.state not in SNAPSHOTTABLE:
        raise EC2Error("IncorrectState", f"Volume '{pid}' is in the '{VOLUME_STATES[volume.state]}' state.")
    snapshot = call.translator.create_snapshot(call.principal, volume.id, args.get("Description") or "")
    _tag(call, "snapshot", snapshot, args, "snapshot")
    return _snapshot(call, snapshot)


def _owned(call: Call, owners: list[str]) -> bool:
    """Whether OwnerIds / RestorableByUserIds name the caller (every snapshot here is the caller's own)."""
    return not owners or any(o in ("self", call.account_id) for o in owners)


def describe_snapshots(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("SnapshotIds") or []
    page_args = _page_args(args, ids, "snapshotIds", SNAPSHOT_PAGE)
    owned = _owned(call, args.get("OwnerIds") or []) and _owned(call, args.get("RestorableByUserIds") or [])
    low, high = SNAPSHOT_PAGE
    items, token = describe_resources(
        call,
        "DescribeSnapshots",
        "snapshot",
        page_args,
        functools.partial(_snapshot, call),
        SNAPSHOT_FILTERS,
        ids=ids,
        keep=None if owned else lambda s: False,
        lowest=low,
        highest=high,
    )
    return {"Snapshots": items, "NextToken": token}


def delete_snapshot(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    pid = _required(args, "SnapshotId", "SnapshotId")
    (gid,) = resolve_ids(call.translator, "snapshot", [pid])
    call.translator.delete_snapshot(call.principal, gid)
    return {}


ACTIONS: dict[str, Handler] = {
    "CreateVolume": writer(create_volume),
    "DescribeVolumes": describer(describe_volumes),
    "DeleteVolume": writer(delete_volume),
    "AttachVolume": writer(attach_volume),
    "DetachVolume": writer(detach_volume),
    "CreateSnapshot": writer(create_snapshot),
    "DescribeSnapshots": describer(describe_snapshots),
    "DeleteSnapshot": writer(delete_snapshot),
}
