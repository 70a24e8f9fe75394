"""Volumes as the user's persistent DATABLOCK images, and snapshots as their clones (``one.image.clone``).

A volume is made with ``one.image.allocate`` (TYPE DATABLOCK, SIZE in MB, PERSISTENT YES) in the account's image
datastore, attached with ``one.vm.attach`` and detached with ``one.vm.detach``; its state is the image's, its
attachments the VMs the image lists, each with the device (``TARGET``) of the VM's disk made from it.

Snapshots are image clones rather than ``one.vm.disksnapshotcreate``: a disk snapshot lives inside a VM's disk, so
it needs the volume attached, goes with the disk, and becomes a volume only through a save-as of a running VM; a
clone is an image of its own, taken of an attached or detached volume, that outlives it (as EC2's do) and is
cloned again into a new volume. The gateway's words live in the images' templates: the name it was given (oned
wants image names unique per user, the gateway does not), its zone, its idempotency key, and on a snapshot the
volume it was taken of.

A keyed volume's image is named after its key (``VOLUME_PREFIX`` + key): a create call stalled past the timeout
that reaches oned after the retry made the volume is refused as a duplicate name, and one that reaches it first is
the image the retry finds, by its key or, for a clone its attempt never got to mark, by its name.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyone

from backends.opennebula.catalog import oid
from backends.opennebula.machines import KEY_ATTRIBUTE, MINE, ZONE_ATTRIBUTE, pick_zone, settled_vm
from backends.opennebula.tags import tags_of
from backends.opennebula.templates import single, to_xml, vectors
from translator.errors import Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import Attachment, Snapshot, SnapshotState, Volume, VolumeSpec, VolumeState, VolumeUpdate

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

NAME_ATTRIBUTE = "CLOUDGATE_NAME"
SNAPSHOT_OF = "CLOUDGATE_SNAPSHOT_OF"  # on a snapshot: the volume it was taken of
FROM_SNAPSHOT = "CLOUDGATE_FROM_SNAPSHOT"  # on a volume: the snapshot it was made from
OURS = (NAME_ATTRIBUTE, SNAPSHOT_OF, FROM_SNAPSHOT, KEY_ATTRIBUTE, ZONE_ATTRIBUTE, "DESCRIPTION")
VOLUME_PREFIX = "cloudgate-volume-"  # + the create's key (or a random one): the image's oned NAME
DATABLOCK = pyone.IMAGE_TYPES.DATABLOCK
MB_PER_GB = 1024

#: Image STATE -> volume state (Image::ImageState, as pyone.IMAGE_STATES names them).
VOLUME_STATES: Mapping[str, VolumeState] = {
    "INIT": VolumeState.CREATING,
    "READY": VolumeState.AVAILABLE,
    "USED": VolumeState.IN_USE,
    "DISABLED": VolumeState.ERROR,  # kept, but oned attaches it nowhere until its owner enables it
    "LOCKED": VolumeState.CREATING,  # being written: allocated, copied or cloned into
    "ERROR": VolumeState.ERROR,
    "CLONE": VolumeState.AVAILABLE,  # being copied from (a snapshot under way); still attachable
    "DELETE": VolumeState.DELETING,
    "USED_PERS": VolumeState.IN_USE,
    "LOCKED_USED": VolumeState.IN_USE,  # attached, and an operation on its data under way
    "LOCKED_USED_PERS": VolumeState.IN_USE,
}

#: Image STATE -> snapshot state; an image in DELETE is a snapshot going away and is no longer listed.
SNAPSHOT_STATES: Mapping[str, SnapshotState] = {
    "INIT": SnapshotState.PENDING,
    "LOCKED": SnapshotState.PENDING,  # the clone's copy under way
    "READY": SnapshotState.COMPLETED,
    "USED": SnapshotState.COMPLETED,
    "CLONE": SnapshotState.COMPLETED,
    "USED_PERS": SnapshotState.COMPLETED,
    "LOCKED_USED": SnapshotState.COMPLETED,
    "LOCKED_USED_PERS": SnapshotState.COMPLETED,
    "DISABLED": SnapshotState.ERROR,
    "ERROR": SnapshotState.ERROR,
}


def _state_name(value: int) -> str:
    try:
        return str(pyone.IMAGE_STATES(value).name)
    except ValueError:
        return ""


def _is_snapshot(image: Any) -> bool:
    """A clone marked as a snapshot; not one made for a volume, which copies its snapshot's marks until its create
    makes it persistent (an attempt that ended before that leaves it to the retry)."""
    return (
        image.TYPE == DATABLOCK
        and bool(single(image.TEMPLATE, SNAPSHOT_OF))
        and not image.PERSISTENT
        and not image.NAME.startswith(VOLUME_PREFIX)
    )


def _is_volume(image: Any) -> bool:
    return image.TYPE == DATABLOCK and bool(image.PERSISTENT)


def _gb(image: Any) -> int:
    return math.ceil((image.SIZE or 0) / MB_PER_GB)


def _vm_ids(image: Any) -> list[int]:
    return list(image.VMS.ID) if image.VMS is not None and image.VMS.ID else []


def volume_of(b: OpenNebulaBackend, image: Any, disks: Mapping[tuple[int, int], dict[str, str]]) -> Volume:
    """An image as a volume; ``disks`` maps (VM id, image id) to the VM's disk made from it."""
    body = image.TEMPLATE or {}
    attachments = []
    for vm_id in _vm_ids(image):
        disk = disks.get((vm_id, image.ID), {})
        target = disk.get("TARGET", "")
        attachments.append(Attachment(machine_id=str(vm_id), device=f"/dev/{target}" if target else ""))
    return Volume(
        native_id=str(image.ID),
        name=single(body, NAME_ATTRIBUTE) or image.NAME,
        description=single(body, "DESCRIPTION"),
        size_gb=_gb(image),
        state=VOLUME_STATES.get(_state_name(image.STATE), VolumeState.ERROR),
        zone=single(body, ZONE_ATTRIBUTE) or b.account.zones[0],
        snapshot_id=single(body, FROM_SNAPSHOT) or None,
        attachments=attachments,
        created=float(image.REGTIME or 0),
        tags=tags_of(body),
    )


def _images(b: OpenNebulaBackend) -> list[Any]:
    return b.one.pool("imagepool.info", MINE, element="IMAGE", kind="volume", what="list volumes")


def _disks(b: OpenNebulaBackend, images: list[Any]) -> dict[tuple[int, int], dict[str, str]]:
    """The disks of the VMs the images are attached to, read with one VM listing (none when nothing is)."""
    if not any(_vm_ids(i) for i in images):
        return {}
    pool = b.one.pool("vmpool.infoextended", MINE, -1, element="VM", kind="machine", what="list machines")
    return {
        (vm.ID, int(disk["IMAGE_ID"])): disk
        for vm in pool
        for disk in vectors(vm.TEMPLATE, "DISK")
        if disk.get("IMAGE_ID", "").isdigit()
    }


def list_volumes(b: OpenNebulaBackend) -> list[Volume]:
    images = [i for i in _images(b) if _is_volume(i)]
    disks = _disks(b, images)
    return [volume_of(b, i, disks) for i in images]


def _image(b: OpenNebulaBackend, native_id: str, kind: str) -> Any:
    return b.one.call("image.info", oid(native_id, kind), False, kind=kind, what=f"read {kind}")


def volume_image(b: OpenNebulaBackend, native_id: str) -> Any:
    image = _image(b, native_id, "volume")
    if not _is_volume(image):
        raise NotFound(f"The volume '{native_id}' does not exist.", kind="volume")
    return image


def get_volume(b: OpenNebulaBackend, native_id: str) -> Volume:
    image = volume_image(b, native_id)
    return volume_of(b, image, _disks(b, [image]))


def _by_key(b: OpenNebulaBackend, key: str) -> Any | None:
    """The image an earlier attempt of this create made, if any: a volume marked with the key, or the image named
    after it (a snapshot's clone whose attempt ended before it was made a volume)."""
    if not key:
        return None
    name = VOLUME_PREFIX + key
    return next(
        (i for i in _images(b) if name == i.NAME or (_is_volume(i) and single(i.TEMPLATE, KEY_ATTRIBUTE) == key)),
        None,
    )


def _marks(spec: VolumeSpec, zone: str) -> dict[str, str]:
    marks = {NAME_ATTRIBUTE: spec.name, ZONE_ATTRIBUTE: zone}
    if spec.description:
        marks["DESCRIPTION"] = spec.description
    if spec.idempotency_key:
        marks[KEY_ATTRIBUTE] = spec.idempotency_key
    return marks


def create_volume(b: OpenNebulaBackend, spec: VolumeSpec) -> Volume:
    """A blank persistent data block, or a clone of a snapshot made persistent; a key finds an earlier attempt."""
    zone = pick_zone(b, spec.zone)
    snapshot = snapshot_image(b, spec.snapshot_id) if spec.snapshot_id is not None else None
    if snapshot is None and not spec.size_gb:
        raise InvalidParameter("A volume needs a size or a snapshot.", kind="volume", reason="size")
    if snapshot is not None and spec.size_gb and spec.size_gb != _gb(snapshot):
        raise Unsupported("The opennebula backend makes a volume of its snapshot's size.", reason="size")
    if spec.size_gb is not None and spec.size_gb < 1:
        raise InvalidParameter("A volume's size is at least 1 GiB.", kind="volume", reason="size")
    key = spec.idempotency_key
    marks = _marks(spec, zone)
    image = _by_key(b, key)
    if image is None:
        # oned wants image names unique per user: the key (or a random suffix) makes it so, and a create call of
        # an earlier attempt reaching oned late meets this name instead of making a second volume.
        name = VOLUME_PREFIX + (key or uuid.uuid4().hex)
        try:
            if snapshot is None:
                template = {"NAME": name, "TYPE": "DATABLOCK", "SIZE": str(spec.size_gb * MB_PER_GB)}
                image_id = b.one.call(
                    "image.allocate", to_xml(template | {"PERSISTENT": "YES"} | marks), b.opts.image_datastore,
                    False, kind="volume", what="allocate volume",
                )  # fmt: skip
                return get_volume(b, str(image_id))
            image_id = b.one.call(
                "image.clone", snapshot.ID, name, b.opts.image_datastore, kind="snapshot", what="copy snapshot"
            )
        except Conflict as exc:
            image = _by_key(b, key) if exc.reason == "duplicate" and key else None
            if image is None:
                raise
        else:
            image = _image(b, str(image_id), "volume")
    if snapshot is not None and not (_is_volume(image) and single(image.TEMPLATE, KEY_ATTRIBUTE) == key):
        _make_volume(b, image, snapshot, marks)  # a clone not yet made a volume: this attempt's, or an earlier one's
    return get_volume(b, str(image.ID))


def _make_volume(b: OpenNebulaBackend, image: Any, snapshot: Any, marks: Mapping[str, str]) -> None:
    """A snapshot's clone made the volume: persistent first (from then on it lists as a volume, never as a
    second snapshot), then its template the snapshot's own attributes and the volume's marks."""
    if not image.PERSISTENT:
        b.one.call("image.persistent", image.ID, True, kind="volume", what="make volume persistent")
    kept = {k: v for k, v in (snapshot.TEMPLATE or {}).items() if k not in OURS and isinstance(v, str)}
    body = kept | dict(marks) | {FROM_SNAPSHOT: str(snapshot.ID)}
    b.one.call("image.update", image.ID, to_xml(body), 0, kind="volume", what="mark volume")


def delete_volume(b: OpenNebulaBackend, native_id: str) -> None:
    image = volume_image(b, native_id)
    if _vm_ids(image):
        raise Conflict(f"The volume '{native_id}' is attached to a machine.", kind="volume", reason="in_use")
    b.one.call("image.delete", image.ID, False, kind="volume", what="delete volume")


def update_volume(b: OpenNebulaBackend, native_id: str, update: VolumeUpdate) -> Volume:
    """A new name or description, merged into the image's template (its oned NAME stays the unique one made).

    No resize: oned grows a disk only through a VM it is attached to (``one.vm.diskresize``), and has no call that
    grows a detached persistent image, so the backend does not declare VOLUME_RESIZE."""
    image = volume_image(b, native_id)
    if update.size_gb is not None:
        raise Unsupported("OpenNebula cannot resize a detached volume.", kind="volume", reason="size")
    marks = {NAME_ATTRIBUTE: update.name, "DESCRIPTION": update.description}
    body = {k: v for k, v in marks.items() if v is not None}
    if body:
        b.one.call("image.update", image.ID, to_xml(body), 1, kind="volume", what="update volume")
    return get_volume(b, native_id)


def _target(vm: Any, device: str | None) -> str | None:
    """The wished device as oned's TARGET (``/dev/vdb`` -> ``vdb``), unless the VM already has a disk there."""
    if not device:
        return None
    target = device.removeprefix("/dev/")
    taken = {d.get("TARGET") for d in vectors(vm.TEMPLATE, "DISK")} | {
        c.get("TARGET") for c in vectors(vm.TEMPLATE, "CONTEXT")
    }
    return target if target.isalnum() and target not in taken else None


def attach_volume(b: OpenNebulaBackend, native_id: str, machine_id: str, device: str | None) -> Volume:
    image = volume_image(b, native_id)
    if _vm_ids(image):
        raise Conflict(f"The volume '{native_id}' is already attached.", kind="volume", reason="in_use")
    vm = settled_vm(b, machine_id)
    disk = {"IMAGE_ID": str(image.ID)}
    target = _target(vm, device)
    if target:
        disk["TARGET"] = target
    b.one.call("vm.attach", vm.ID, to_xml({"DISK": disk}), kind="volume", what="attach volume")
    return get_volume(b, native_id)


def detach_volume(b: OpenNebulaBackend, native_id: str, machine_id: str | None) -> Volume:
    image = volume_image(b, native_id)
    holders = [str(v) for v in _vm_ids(image)]
    if not holders or (machine_id is not None and machine_id not in holders):
        raise Conflict(f"The volume '{native_id}' is not attached there.", kind="volume", reason="state")
    vm = settled_vm(b, machine_id or holders[0])
    disk = next((d for d in vectors(vm.TEMPLATE, "DISK") if d.get("IMAGE_ID") == str(image.ID)), None)
    if disk is None:
        raise Conflict(f"The volume '{native_id}' is not attached there.", kind="volume", reason="state")
    b.one.call("vm.detach", vm.ID, int(disk["DISK_ID"]), kind="volume", what="detach volume")
    return get_volume(b, native_id)


# -- snapshots -------------------------------------------------------------------------------------------------


def snapshot_of(image: Any, volumes: set[str]) -> Snapshot:
    """An image clone as a snapshot; its volume is None once that volume is gone (``volumes``: those that exist)."""
    source = single(image.TEMPLATE, SNAPSHOT_OF)
    return Snapshot(
        native_id=str(image.ID),
        name=image.NAME,
        description=single(image.TEMPLATE, "DESCRIPTION"),
        volume_id=source if source in volumes else None,
        size_gb=_gb(image),
        state=SNAPSHOT_STATES[_state_name(image.STATE)],
        progress=100 if image.STATE != pyone.IMAGE_STATES.LOCKED else 0,
        created=float(image.REGTIME or 0),
        tags=tags_of(image.TEMPLATE),
    )


def _listed_snapshot(image: Any) -> bool:
    return _is_snapshot(image) and _state_name(image.STATE) in SNAPSHOT_STATES


def list_snapshots(b: OpenNebulaBackend) -> list[Snapshot]:
    images = _images(b)
    volumes = {str(i.ID) for i in images if _is_volume(i)}
    return [snapshot_of(i, volumes) for i in images if _listed_snapshot(i)]


def snapshot_image(b: OpenNebulaBackend, native_id: str) -> Any:
    image = _image(b, native_id, "snapshot")
    if not _listed_snapshot(image):
        raise NotFound(f"The snapshot '{native_id}' does not exist.", kind="snapshot")
    return image


def create_snapshot(b: OpenNebulaBackend, volume_id: str, description: str) -> Snapshot:
    """Clone the volume's image, then mark the clone as its snapshot (the clone copies the volume's template)."""
    volume = volume_image(b, volume_id)
    name = f"cloudgate-snapshot-{uuid.uuid4().hex}"
    image_id = b.one.call("image.clone", volume.ID, name, b.opts.image_datastore, kind="volume", what="snapshot")
    kept = {k: v for k, v in (volume.TEMPLATE or {}).items() if k not in OURS and isinstance(v, str)}
    body = kept | {SNAPSHOT_OF: str(volume.ID), "DESCRIPTION": description}
    b.one.call("image.update", image_id, to_xml(body), 0, kind="snapshot", what="mark snapshot")
    return snapshot_of(_image(b, str(image_id), "snapshot"), {str(volume.ID)})


def delete_snapshot(b: OpenNebulaBackend, native_id: str) -> None:
    image = snapshot_image(b, native_id)
    b.one.call("image.delete", image.ID, False, kind="snapshot", what="delete snapshot")
