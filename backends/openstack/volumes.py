"""Volumes and snapshots: Cinder v3 from the catalog, else Nova's ``os-volumes`` proxy (microversion 2.35).

Both speak REST through the keystoneauth1 session: libcloud's driver reaches Cinder only through its own
catalog lookup, which we bypass, and has no proxy path. The two APIs differ only in paths and field names,
so one ``Dialect`` row per API carries those, and the mapping below reads through it. Attaching goes
through Nova in both cases (``os-volume_attachments``, via libcloud).

The device asked for is only a hint: Nova picks its own (``/dev/vdb``) on most hypervisors, and that is the
device reported. Volume types are tiers through the ``volume_types`` option.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from libcloud.compute.base import Node, StorageVolume
from libcloud.compute.types import NodeState

from backends.openstack.machines import parse_time
from backends.openstack.session import PROXY_MICROVERSION
from backends.openstack.settle import POLL, gone, settle
from backends.tiers import TierMap
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.model import (
    Attachment,
    AttachmentState,
    Snapshot,
    SnapshotState,
    Volume,
    VolumeSpec,
    VolumeState,
    VolumeUpdate,
)

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend
    from backends.openstack.session import ComputeDriver

#: Cinder volume status -> canonical volume state, and the state of its attachments in that status.
VOLUME_STATES: Mapping[str, tuple[VolumeState, AttachmentState]] = {
    "creating": (VolumeState.CREATING, AttachmentState.ATTACHED),
    "downloading": (VolumeState.CREATING, AttachmentState.ATTACHED),
    "restoring-backup": (VolumeState.CREATING, AttachmentState.ATTACHED),
    "available": (VolumeState.AVAILABLE, AttachmentState.DETACHED),
    "reserved": (VolumeState.IN_USE, AttachmentState.ATTACHING),
    "attaching": (VolumeState.IN_USE, AttachmentState.ATTACHING),
    "in-use": (VolumeState.IN_USE, AttachmentState.ATTACHED),
    "detaching": (VolumeState.IN_USE, AttachmentState.DETACHING),
    "extending": (VolumeState.AVAILABLE, AttachmentState.ATTACHED),
    "retyping": (VolumeState.AVAILABLE, AttachmentState.ATTACHED),
    "backing-up": (VolumeState.AVAILABLE, AttachmentState.ATTACHED),
    "uploading": (VolumeState.AVAILABLE, AttachmentState.ATTACHED),
    "maintenance": (VolumeState.AVAILABLE, AttachmentState.ATTACHED),
    "awaiting-transfer": (VolumeState.AVAILABLE, AttachmentState.DETACHED),
    "deleting": (VolumeState.DELETING, AttachmentState.DETACHED),
    "deleted": (VolumeState.DELETED, AttachmentState.DETACHED),
    "error": (VolumeState.ERROR, AttachmentState.DETACHED),
    "error_deleting": (VolumeState.ERROR, AttachmentState.DETACHED),
    "error_restoring": (VolumeState.ERROR, AttachmentState.DETACHED),
    "error_extending": (VolumeState.ERROR, AttachmentState.ATTACHED),
    "error_managing": (VolumeState.ERROR, AttachmentState.DETACHED),
}
#: Cinder snapshot status -> canonical snapshot state.
SNAPSHOT_STATES: Mapping[str, SnapshotState] = {
    "creating": SnapshotState.PENDING,
    "available": SnapshotState.COMPLETED,
    "backing-up": SnapshotState.COMPLETED,
    "restoring": SnapshotState.COMPLETED,
    "unmanaging": SnapshotState.COMPLETED,
    "deleting": SnapshotState.COMPLETED,
    "deleted": SnapshotState.COMPLETED,
    "error": SnapshotState.ERROR,
    "error_deleting": SnapshotState.ERROR,
}
MACHINE_KEY = "cloudgate_machine"  # the server an attachment is for, until Cinder lists the attachment itself
IDEMPOTENCY_KEY = "cloudgate_idempotency_key"  # the create that made a volume: a repeat finds it


@dataclass(frozen=True, slots=True)
class Dialect:
    """Where one volume API keeps things: service, paths, microversion and field names."""

    service: str
    volumes: str
    snapshots: str
    microversion: str | None
    name: str
    description: str
    request_name: str
    request_description: str
    zone: str
    created: str
    volume_type: str
    snapshot_id: str
    volume_id: str
    server_id: str


CINDER = Dialect(
    service="volumev3",
    volumes="/volumes",
    snapshots="/snapshots",
    microversion=None,
    name="name",
    description="description",
    request_name="name",
    request_description="description",
    zone="availability_zone",
    created="created_at",
    volume_type="volume_type",
    snapshot_id="snapshot_id",
    volume_id="volume_id",
    server_id="server_id",
)
NOVA_PROXY = Dialect(
    service="compute",
    volumes="/os-volumes",
    snapshots="/os-snapshots",
    microversion=PROXY_MICROVERSION,
    name="displayName",
    description="displayDescription",
    request_name="display_name",
    request_description="display_description",
    zone="availabilityZone",
    created="createdAt",
    volume_type="volumeType",
    snapshot_id="snapshotId",
    volume_id="volumeId",
    server_id="serverId",
)


def dialect(b: OpenStackBackend) -> Dialect:
    return CINDER if b.cloud.has("volumev3") else NOVA_PROXY


def _call(b: OpenStackBackend, method: str, path: str, kind: str, what: str, body: Any = None) -> Any:
    d = dialect(b)
    return b.cloud.rest(method, d.service, path, kind=kind, what=what, body=body, microversion=d.microversion)


def _to_volume(d: Dialect, raw: Mapping[str, Any], tiers: TierMap) -> Volume:
    state, attachment_state = VOLUME_STATES.get(str(raw.get("status")), (VolumeState.ERROR, AttachmentState.DETACHED))
    attachments = [
        Attachment(
            machine_id=a[d.server_id],
            device=a.get("device") or "",
            state=attachment_state,
            attached=parse_time(a.get("attached_at")),
        )
        for a in raw.get("attachments") or []
        if a and a.get(d.server_id)
    ]
    pending = (raw.get("metadata") or {}).get(MACHINE_KEY)
    if not attachments and pending and attachment_state is AttachmentState.ATTACHING:
        # Cinder lists an attachment once it is made; while "reserved" the volume shows none.
        attachments = [Attachment(machine_id=pending, device="", state=attachment_state)]
    return Volume(
        native_id=raw["id"],
        name=raw.get(d.name) or "",
        created=parse_time(raw.get(d.created)),
        size_gb=int(raw.get("size") or 0),
        state=state,
        zone=raw.get(d.zone) or "",
        tier=tiers.tier(raw.get(d.volume_type)),
        snapshot_id=raw.get(d.snapshot_id) or None,
        description=raw.get(d.description) or "",
        attachments=attachments,
    )


def _to_snapshot(d: Dialect, raw: Mapping[str, Any]) -> Snapshot:
    state = SNAPSHOT_STATES.get(str(raw.get("status")), SnapshotState.ERROR)
    progress = str(raw.get("os-extended-snapshot-attributes:progress") or "").rstrip("%")
    return Snapshot(
        native_id=raw["id"],
        name=raw.get(d.name) or "",
        created=parse_time(raw.get(d.created)),
        volume_id=raw.get(d.volume_id) or None,
        size_gb=int(raw.get("size") or 0),
        state=state,
        progress=int(progress) if progress.isdigit() else (100 if state is SnapshotState.COMPLETED else 0),
        description=raw.get(d.description) or "",
    )


def list_volumes(b: OpenStackBackend) -> list[Volume]:
    d = dialect(b)
    raw = b.cloud.pages(d.service, f"{d.volumes}/detail", "volumes", microversion=d.microversion, what="list volumes")
    return [v for v in (_to_volume(d, r, b.opts.volume_types) for r in raw) if v.state is not VolumeState.DELETED]


def get_volume(b: OpenStackBackend, native_id: str) -> Volume:
    d = dialect(b)
    raw = _call(b, "GET", f"{d.volumes}/{native_id}", "volume", "get volume")["volume"]
    return _to_volume(d, raw, b.opts.volume_types)


def made_with(b: OpenStackBackend, key: str) -> dict[str, Any] | None:
    """The volume an earlier create with this idempotency key made (its answer lost), if any. PERF: the volume
    APIs cannot filter on metadata through both dialects; one listing a keyed create."""
    if not key:
        return None
    d = dialect(b)
    raw = b.cloud.pages(d.service, f"{d.volumes}/detail", "volumes", microversion=d.microversion, what="list volumes")
    gone = ("deleting", "deleted", "error_deleting")
    return next(
        (v for v in raw if (v.get("metadata") or {}).get(IDEMPOTENCY_KEY) == key and v.get("status") not in gone), None
    )


def create_volume(b: OpenStackBackend, spec: VolumeSpec) -> Volume:
    """A new volume; repeated with its idempotency key (kept in the volume's metadata), the first one."""
    d = dialect(b)
    earlier = made_with(b, spec.idempotency_key)
    if earlier is not None:
        return _to_volume(d, earlier, b.opts.volume_types)
    size = spec.size_gb
    if spec.snapshot_id:
        snapshot = _call(b, "GET", f"{d.snapshots}/{spec.snapshot_id}", "snapshot", "get snapshot")["snapshot"]
        size = size or int(snapshot.get("size") or 0)
    if not size or size < 1:
        raise InvalidParameter("A volume needs a size of at least 1 GiB or a snapshot.", kind="volume", reason="size")
    body: dict[str, Any] = {"size": size}
    if spec.name:
        body[d.request_name] = spec.name
    if spec.description:
        body[d.request_description] = spec.description
    if spec.zone:
        body["availability_zone"] = spec.zone
    if spec.snapshot_id:
        body["snapshot_id"] = spec.snapshot_id
    cinder_type = b.opts.volume_types.native(spec.tier)
    if cinder_type:
        body["volume_type"] = cinder_type
    if spec.idempotency_key:
        body["metadata"] = {IDEMPOTENCY_KEY: spec.idempotency_key}
    made = _call(b, "POST", d.volumes, "volume", "create volume", body={"volume": body})["volume"]
    return _to_volume(d, made, b.opts.volume_types)


def update_volume(b: OpenStackBackend, native_id: str, update: VolumeUpdate) -> Volume:
    """Cinder's volume update (name, description) and ``os-extend`` (a larger size, of an available volume: an
    attached one needs Cinder 3.42 and a driver that can)."""
    volume = get_volume(b, native_id)
    if update.size_gb is not None and update.size_gb < volume.size_gb:
        raise InvalidParameter(
            f"The volume '{native_id}' has {volume.size_gb} GiB; Cinder does not shrink volumes.",
            kind="volume",
            reason="size",
        )
    fields = {k: v for k, v in (("name", update.name), ("description", update.description)) if v is not None}
    if fields:
        _call(b, "PUT", f"/volumes/{native_id}", "volume", "update volume", body={"volume": fields})
    if update.size_gb is not None and update.size_gb > volume.size_gb:
        body = {"os-extend": {"new_size": update.size_gb}}
        _call(b, "POST", f"/volumes/{native_id}/action", "volume", "extend volume", body=body)
    return get_volume(b, native_id)


def delete_volume(b: OpenStackBackend, native_id: str) -> None:
    """EC2 refuses to delete an attached volume (``VolumeInUse``); then wait for it to go (``delete_wait``)."""
    d = dialect(b)
    volume = get_volume(b, native_id)
    if volume.attachments or volume.state is VolumeState.IN_USE:
        raise Conflict(f"The volume '{native_id}' is attached.", kind="volume", reason="in_use")
    _call(b, "DELETE", f"{d.volumes}/{native_id}", "volume", "delete volume")
    settle(b.opts.delete_wait, gone(lambda: get_volume(b, native_id)))


def _node(driver: ComputeDriver, native_id: str) -> Node:
    return Node(id=native_id, name="", state=NodeState.UNKNOWN, public_ips=[], private_ips=[], driver=driver)


def attach_volume(b: OpenStackBackend, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
    """Attach through Nova (``device`` a hint it may not follow; without one Nova picks, ``/dev/vdb``...), once
    the volume is known to be free. Cinder lists the device Nova chose once the attachment is made."""
    volume = get_volume(b, native_id)
    if volume.attachments or volume.state is not VolumeState.AVAILABLE:
        raise Conflict(f"The volume '{native_id}' is {volume.state}.", kind="volume", reason="in_use")
    if dialect(b) is CINDER:
        body = {"metadata": {MACHINE_KEY: machine_native_id}}
        b.cloud.rest("POST", "volumev3", f"/volumes/{native_id}/metadata", kind="volume", what="tag volume", body=body)
    vol = StorageVolume(native_id, "", volume.size_gb, None, {})

    def attach(drv: ComputeDriver) -> bool:
        return drv.attach_volume(_node(drv, machine_native_id), vol, device or "auto")

    b.cloud.nova(attach, kind="machine", what="attach volume")
    if dialect(b) is NOVA_PROXY:
        # No metadata of ours behind the proxy: wait (``delete_wait`` at most) for Cinder to list the
        # attachment, which it does once Nova's compute has made it, so listings show whose volume it is.
        return _wait_attachment(b, native_id)
    return get_volume(b, native_id)


def _wait_attachment(b: OpenStackBackend, native_id: str) -> Volume:
    deadline = time.monotonic() + b.opts.delete_wait
    while True:
        volume = get_volume(b, native_id)
        if volume.attachments or time.monotonic() >= deadline:
            return volume
        time.sleep(POLL)


def detach_volume(b: OpenStackBackend, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
    volume = get_volume(b, native_id)
    servers = [a.machine_id for a in volume.attachments]
    if not servers:
        raise Conflict(f"The volume '{native_id}' is not attached.", kind="volume", reason="state")
    if machine_native_id is not None and machine_native_id not in servers:
        raise NotFound(
            f"The volume '{native_id}' is not attached to '{machine_native_id}'.", kind="attachment", reason="machine"
        )
    for server in [machine_native_id] if machine_native_id else servers:
        b.cloud.nova_json(
            "DELETE", f"/servers/{server}/os-volume_attachments/{native_id}", kind="volume", what="detach volume"
        )
    if dialect(b) is CINDER:
        with contextlib.suppress(NotFound):  # attached by someone else: nothing of ours to forget
            path = f"/volumes/{native_id}/metadata/{MACHINE_KEY}"
            b.cloud.rest("DELETE", "volumev3", path, kind="volume", what="untag volume")
    return get_volume(b, native_id)


def list_snapshots(b: OpenStackBackend) -> list[Snapshot]:
    d = dialect(b)
    path = f"{d.snapshots}/detail"
    raw = b.cloud.pages(d.service, path, "snapshots", microversion=d.microversion, what="list snapshots")
    return [_to_snapshot(d, r) for r in raw if r.get("status") != "deleted"]


def create_snapshot(b: OpenStackBackend, volume_native_id: str, description: str) -> Snapshot:
    d = dialect(b)
    get_volume(b, volume_native_id)
    body: dict[str, Any] = {"volume_id": volume_native_id, "force": True}
    if description:
        body[d.request_description] = description
    body = {"snapshot": body}
    return _to_snapshot(d, _call(b, "POST", d.snapshots, "snapshot", "create snapshot", body=body)["snapshot"])


def delete_snapshot(b: OpenStackBackend, native_id: str) -> None:
    """EC2 lets a snapshot go while volumes are still being made from it; Cinder would fail those volumes,
    so the delete waits (``delete_wait`` at most) for them to be made first."""
    d = dialect(b)
    settle(
        b.opts.delete_wait,
        lambda: not any(v.snapshot_id == native_id and v.state is VolumeState.CREATING for v in list_volumes(b)),
    )
    _call(b, "DELETE", f"{d.snapshots}/{native_id}", "snapshot", "delete snapshot")
    settle(b.opts.delete_wait, gone(lambda: _call(b, "GET", f"{d.snapshots}/{native_id}", "snapshot", "get snapshot")))
