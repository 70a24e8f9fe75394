"""EBS volumes and snapshots."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.ec2 import machines, mapping, native_tags, to_ec2
from translator.errors import Conflict, InvalidParameter, NotFound, QuotaExceeded
from translator.model import Snapshot, Volume, VolumeSpec, VolumeState, VolumeTier, VolumeUpdate

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend


#: EC2 volume types that need provisioned IOPS, and the IOPS per GiB given (EC2's largest ratio for io1),
#: within EC2's bounds.
PROVISIONED_IOPS = frozenset({"io1", "io2"})
IOPS_PER_GB, MIN_IOPS, MAX_IOPS = 50, 100, 64000


def volume_type(b: EC2Backend, tier: VolumeTier, size_gb: int | None) -> dict[str, Any]:
    """VolumeType (and Iops where EC2 wants them) for a tier; nothing for a tier the options leave unmapped."""
    native = b.settings.volume_types.native(tier)
    if native is None:
        return {}
    if native not in PROVISIONED_IOPS:
        return {"VolumeType": native}
    return {"VolumeType": native, "Iops": min(max(IOPS_PER_GB * (size_gb or 0), MIN_IOPS), MAX_IOPS)}


def list_volumes(b: EC2Backend) -> list[Volume]:
    tiers = b.settings.volume_types
    return [mapping.volume(v, b.gateway_zone, tiers) for v in b.pages("describe_volumes", "Volumes", "volume")]


def get_volumes(b: EC2Backend, native_ids: list[str]) -> list[Volume]:
    items = b.named("describe_volumes", "Volumes", "volume", "volume-id", native_ids)
    return [mapping.volume(v, b.gateway_zone, b.settings.volume_types) for v in items]


def volume(b: EC2Backend, native_id: str) -> Volume:
    """One volume, read by id."""
    found = b.call("describe_volumes", "volume", VolumeIds=[native_id]).get("Volumes") or []
    if not found:
        raise NotFound(f"The volume '{native_id}' does not exist.", kind="volume")
    return mapping.volume(found[0], b.gateway_zone, b.settings.volume_types)


def create_volume(b: EC2Backend, spec: VolumeSpec) -> Volume:
    params: dict[str, Any] = {
        "AvailabilityZone": b.ec2_zone(spec.zone),
        "TagSpecifications": to_ec2.name_tags("volume", spec.name),
        **volume_type(b, spec.tier, spec.size_gb),
    }
    if spec.size_gb:
        params["Size"] = spec.size_gb
    if spec.snapshot_id:
        params["SnapshotId"] = spec.snapshot_id
    if spec.idempotency_key:
        params["ClientToken"] = spec.idempotency_key
    return mapping.volume(b.call("create_volume", "volume", **params), b.gateway_zone, b.settings.volume_types)


def update_volume(b: EC2Backend, native_id: str, update: VolumeUpdate) -> Volume:
    """A name is the ``Name`` tag; a larger size is ModifyVolume (EC2 grows volumes in use too, in the
    background). EC2 refuses a smaller size with a generic code (moto takes it): answered here."""
    native_tags.no_description("volume", update.description)
    current = volume(b, native_id)
    if update.size_gb is not None and update.size_gb < current.size_gb:
        raise InvalidParameter(
            f"The volume '{native_id}' has {current.size_gb} GiB; EC2 does not shrink volumes.",
            kind="volume",
            reason="size",
        )
    native_tags.rename(b, "volume", native_id, update.name)
    if update.size_gb is not None and update.size_gb > current.size_gb:
        b.call("modify_volume", "volume", VolumeId=native_id, Size=update.size_gb)
    return volume(b, native_id)


def delete_volume(b: EC2Backend, native_id: str) -> None:
    b.call("delete_volume", "volume", VolumeId=native_id)


#: Device names EC2 recommends for EBS volumes on Linux, tried in order when an attach names none (EC2 needs one).
FREE_DEVICES = tuple(f"/dev/sd{letter}" for letter in "fghijklmnop")


def _letters(devices: list[str]) -> set[str]:
    """The drive letters in use: ``/dev/sdf`` and ``/dev/xvdf`` are the same disk to a Linux guest."""
    return {d.removeprefix("/dev/").removeprefix("xvd").removeprefix("sd")[:1] for d in devices}


def pick_device(taken: list[str]) -> str:
    used = _letters(taken)
    found = next((d for d in FREE_DEVICES if d[-1] not in used), None)
    if found is None:
        raise QuotaExceeded(f"Every one of {', '.join(FREE_DEVICES)} is in use.", kind="attachment")
    return found


def attach_volume(b: EC2Backend, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
    # Looked up first: EC2 answers both clashes below with codes that do not say which (and moto takes both).
    vol = volume(b, native_id)
    if vol.state != VolumeState.AVAILABLE:
        reason = "in_use" if vol.state == VolumeState.IN_USE else "state"
        raise Conflict(f"vol '{native_id}' is not 'available'. It is '{vol.state}'.", kind="volume", reason=reason)
    item = machines.instance(b, machine_native_id)
    mapped = [str(m.get("DeviceName") or "") for m in item.get("BlockDeviceMappings") or ()]
    device = device or pick_device(mapped)
    if device in mapped:
        raise Conflict(f"Attachment point {device} is already in use", kind="attachment", reason="in_use")
    b.call("attach_volume", "volume", VolumeId=native_id, InstanceId=machine_native_id, Device=device)
    return volume(b, native_id)


def detach_volume(b: EC2Backend, native_id: str, machine_native_id: str | None, force: bool) -> Volume:
    vol = volume(b, native_id)
    if not vol.attachments:
        raise Conflict(f"Volume '{native_id}' is in the '{vol.state}' state.", kind="volume", reason="state")
    attachment = vol.attachments[0]
    if machine_native_id is not None and attachment.machine_id != machine_native_id:
        raise NotFound(f"The volume '{native_id}' is not attached to '{machine_native_id}'.", kind="attachment")
    # The instance is always named: AWS takes DetachVolume with or without it, moto answers a 500 without.
    params: dict[str, Any] = {"VolumeId": native_id, "InstanceId": attachment.machine_id}
    if force:
        params["Force"] = True
    b.call("detach_volume", "volume", **params)
    return volume(b, native_id)


def list_snapshots(b: EC2Backend) -> list[Snapshot]:
    items = b.pages("describe_snapshots", "Snapshots", "snapshot", OwnerIds=["self"])
    return [mapping.snapshot(s) for s in items]


def get_snapshots(b: EC2Backend, native_ids: list[str]) -> list[Snapshot]:
    items = b.named("describe_snapshots", "Snapshots", "snapshot", "snapshot-id", native_ids)
    return [mapping.snapshot(s) for s in items]


def create_snapshot(b: EC2Backend, volume_native_id: str, description: str) -> Snapshot:
    extra = {"Description": description} if description else {}
    return mapping.snapshot(b.call("create_snapshot", "volume", VolumeId=volume_native_id, **extra))


def delete_snapshot(b: EC2Backend, native_id: str) -> None:
    b.call("delete_snapshot", "snapshot", SnapshotId=native_id)
