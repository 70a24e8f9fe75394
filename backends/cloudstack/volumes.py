"""CloudStack volumes and volume snapshots.

Data volumes are made from disk offerings: those the ``disk_offerings`` option names for the volume's tier
(the offerings no tier names for a tier it does not list), a size matching a fixed offering taking it, any
other size a customised offering with ``size``; a volume reads its tier back from its offering's name. Device
ids are CloudStack's integers (0 the root disk, 3 kept for the CD-ROM), shown as the virtio names KVM gives
them (``/dev/vd`` + a letter). Creates are sent without waiting: the volume's own fields say where it is.
Attaches, detaches and deletes of snapshots wait for their job (a worker dying meanwhile leaves it noted on
the core job: the next attempt follows it instead of sending again).

CloudStack has no idempotent create and keeps no names unique, so a keyed create (every create through the
translator carries a key) is made under the key's own name (``key_name``) and then settled (``_settle``): one
of the volumes made under that name is chosen, marked with ``IDEMPOTENCY_TAG`` and only then given the name
the user asked for; the others, twins from a call stalled past the timeout that still reached CloudStack, are
never marked, hidden from listings and deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import string
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.cloudstack import catalog, tags
from translator.errors import CloudgateError, Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import (
    Attachment,
    Snapshot,
    SnapshotState,
    Volume,
    VolumeSpec,
    VolumeState,
    VolumeTier,
    VolumeUpdate,
)

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

#: ``com.cloud.storage.Volume.State`` -> canonical state when the volume is on no VM (attached: IN_USE unless
#: the row says it is going or gone).
VOLUME_STATES: Mapping[str, VolumeState] = {
    "Allocated": VolumeState.AVAILABLE,  # made, not yet on primary storage (it is when first attached)
    "Creating": VolumeState.CREATING,
    "Ready": VolumeState.AVAILABLE,
    "Resizing": VolumeState.CREATING,  # busy: not usable until back to Ready
    "Migrating": VolumeState.CREATING,
    "Copying": VolumeState.CREATING,
    "Snapshotting": VolumeState.AVAILABLE,  # usable while its snapshot is taken
    "RevertSnapshotting": VolumeState.CREATING,
    "Attaching": VolumeState.CREATING,
    "Restoring": VolumeState.CREATING,
    "NotUploaded": VolumeState.CREATING,
    "UploadOp": VolumeState.CREATING,
    "Uploaded": VolumeState.AVAILABLE,
    "UploadInProgress": VolumeState.CREATING,
    "UploadError": VolumeState.ERROR,
    "UploadAbandoned": VolumeState.ERROR,
    "Destroy": VolumeState.DELETING,  # deleted, recoverable until expunged
    "Expunging": VolumeState.DELETING,
    "Expunged": VolumeState.DELETED,
}
#: Canonical states an attached volume keeps as they are (the rest read IN_USE while attached).
KEPT_WHEN_ATTACHED = frozenset({VolumeState.CREATING, VolumeState.DELETING, VolumeState.DELETED, VolumeState.ERROR})

#: ``com.cloud.storage.Snapshot.State`` -> canonical state.
SNAPSHOT_STATES: Mapping[str, SnapshotState] = {
    "Allocated": SnapshotState.PENDING,
    "Creating": SnapshotState.PENDING,
    "CreatedOnPrimary": SnapshotState.PENDING,
    "BackingUp": SnapshotState.PENDING,
    "BackedUp": SnapshotState.COMPLETED,
    "Copying": SnapshotState.PENDING,
    "Destroying": SnapshotState.COMPLETED,  # still there, going
    "Destroyed": SnapshotState.ERROR,
    "Error": SnapshotState.ERROR,
}

IDEMPOTENCY_TAG = tags.IDEMPOTENCY_TAG
CDROM_DEVICE = 3  # KVM keeps device id 3 for the CD-ROM


# -- device names -----------------------------------------------------------------------------------------


def device_name(device_id: Any) -> str:
    """``/dev/vdb`` for device id 1 (KVM's virtio naming of CloudStack's device ids)."""
    n = int(device_id)
    letters = ""
    n += 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = string.ascii_lowercase[rem] + letters
    return "/dev/vd" + letters


def device_id(device: str) -> int:
    """CloudStack's device id for a device name hint (``/dev/vdb``, ``/dev/sdb``, ``xvdb`` -> 1)."""
    tail = device.rsplit("/", 1)[-1].lstrip("xsvh").removeprefix("d")
    if not tail or not tail.isalpha() or not tail.islower():
        raise InvalidParameter(f"The device '{device}' is not a disk device name.", kind="volume", reason="device")
    n = 0
    for ch in tail:
        n = n * 26 + (ord(ch) - ord("a") + 1)
    return n - 1


# -- volumes ------------------------------------------------------------------------------------------------


def volume_state(vol: Mapping[str, Any]) -> VolumeState:
    state = VOLUME_STATES.get(str(vol.get("state")), VolumeState.ERROR)
    if vol.get("virtualmachineid") and state not in KEPT_WHEN_ATTACHED:
        return VolumeState.IN_USE
    return state


def to_volume(vol: Mapping[str, Any], tier: VolumeTier = VolumeTier.STANDARD) -> Volume:
    attachments = []
    if vol.get("virtualmachineid") and vol.get("deviceid") is not None:
        attachments.append(
            Attachment(
                machine_id=vol["virtualmachineid"],
                device=device_name(vol["deviceid"]),
                attached=catalog.parse_time(vol.get("attached") or vol.get("created")),
                delete_on_termination=vol.get("type") == "ROOT",
            )
        )
    return Volume(
        native_id=vol["id"],
        name=vol.get("name", ""),
        created=catalog.parse_time(vol.get("created")),
        size_gb=int(vol.get("size") or 0) >> 30,
        state=volume_state(vol),
        zone=vol.get("zonename", ""),
        snapshot_id=vol.get("snapshotid") or None,
        attachments=attachments,
        tags=tags.user_tags(vol),
        tier=tier,
    )


def _volume(b: CloudStackBackend, vol: Mapping[str, Any]) -> Volume:
    """A canonical volume, its tier read from its disk offering's name (root disks have none: standard)."""
    return to_volume(vol, b.opts.tier_of(vol.get("diskofferingname")))


def _volumes(b: CloudStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return b.cloud.listing("listVolumes", "volume", params, kind="volume", what="list volumes")


def raw_volumes(b: CloudStackBackend) -> list[dict[str, Any]]:
    """The account's volumes in its zones (root disks included, as EC2 lists them), twins of settled creates left
    out (and deleted on the way, best effort)."""
    found = [v for v in _volumes(b) if v.get("zonename") in b.account.zones]
    twins = _twins(found)
    for twin in twins:
        _drop(b, twin)
    return [v for v in found if v["id"] not in twins] if twins else found


def get_volume(b: CloudStackBackend, native_id: str) -> dict[str, Any] | None:
    try:
        found = _volumes(b, {"id": native_id})
    except (NotFound, InvalidParameter):  # CloudStack's PARAM_ERROR for an id that is not a volume's
        return None
    return next((v for v in found if v["id"] == native_id), None)


def need_volume(b: CloudStackBackend, native_id: str) -> dict[str, Any]:
    vol = get_volume(b, native_id)
    if vol is None:
        raise NotFound(f"The volume '{native_id}' does not exist.", kind="volume")
    return vol


def list_volumes(b: CloudStackBackend) -> list[Volume]:
    return [_volume(b, v) for v in raw_volumes(b)]


def get_volumes(b: CloudStackBackend, native_ids: list[str]) -> list[Volume]:
    found = (get_volume(b, native_id) for native_id in dict.fromkeys(native_ids))
    return [_volume(b, v) for v in found if v is not None]


def volumes_by_vm(b: CloudStackBackend, vm_id: str | None = None) -> dict[str, list[str]]:
    """Volume ids attached to each VM (one VM's when ``vm_id`` is given)."""
    out: dict[str, list[str]] = {}
    params = {"virtualmachineid": vm_id} if vm_id else None
    try:
        volumes = _volumes(b, params)
    except (NotFound, InvalidParameter):
        return out
    for vol in sorted(volumes, key=lambda v: int(v.get("deviceid") or 0)):
        if vol.get("virtualmachineid"):
            out.setdefault(vol["virtualmachineid"], []).append(vol["id"])
    return out


def key_name(key: str) -> str:
    """The name a create with this idempotency key gives its volume until it is settled (names are free text)."""
    return "cg-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _key_of(vol: Mapping[str, Any]) -> str | None:
    return tags.marks(vol).get(IDEMPOTENCY_TAG)


def made_with(b: CloudStackBackend, key: str) -> list[dict[str, Any]]:
    """The volumes attempts of the create with this key made: marked with it, or still named after it."""
    if not key:
        return []
    return [v for v in _volumes(b) if _key_of(v) == key or v.get("name") == key_name(key)]


def _twins(vols: list[dict[str, Any]]) -> set[str]:
    """Ids of volumes a create made beside the one it settled on: still named after a key another volume is
    marked with, unmarked and unattached (never acknowledged, never used)."""
    settled = {key_name(key) for v in vols if (key := _key_of(v))}
    if not settled:
        return set()
    return {v["id"] for v in vols if v.get("name") in settled and _key_of(v) is None and not v.get("virtualmachineid")}


def _drop(b: CloudStackBackend, native_id: str) -> None:
    with contextlib.suppress(CloudgateError):  # best effort: a later listing or retry tries again
        b.cloud.call("deleteVolume", {"id": native_id}, kind="volume", what="drop twin volume")


def _settle(b: CloudStackBackend, key: str, name: str, made: list[dict[str, Any]]) -> str:
    """The one volume of a keyed create (its id) among those its attempts ``made``; the others deleted.

    The marked volume when there is one, else the earliest made (creation time, then id: every attempt picks the
    same), which is marked; only then is it renamed from the key's name to the one the user gave, so that it is
    always recognisable. A twin that reaches CloudStack after the mark is never the one: unmarked under the key's
    name, it is hidden and deleted by the next listing (``_twins``).

    What remains: a twin arriving after its volume was deleted (or renamed through CloudStack) has nothing
    marked beside it and lists as a volume of its own; and two attempts settling at once (a takeover of the
    create's lease) from listings that differ by a twin could mark two volumes, both then kept."""
    marked = [v for v in made if _key_of(v) == key]
    winner = min(marked or made, key=lambda v: (catalog.parse_time(v.get("created")), v["id"]))
    if not marked:
        tags.mark(b, "volume", [winner["id"]], {IDEMPOTENCY_TAG: key})
    for twin in made:
        if twin is not winner and _key_of(twin) is None and not twin.get("virtualmachineid"):
            _drop(b, twin["id"])
    if name and winner.get("name") == key_name(key):
        b.cloud.run("updateVolume", {"id": winner["id"], "name": name}, kind="volume", what="name volume")
    return str(winner["id"])


def tier_offerings(b: CloudStackBackend, tier: VolumeTier) -> list[dict[str, Any]]:
    """The disk offerings that make volumes of a tier: those the option names for it, or, for a tier it does
    not list, those it names for no tier."""
    offerings = b.cloud.listing("listDiskOfferings", "diskoffering", kind="volume", what="list disk offerings")
    named = b.opts.disk_offerings.get(tier)
    if named is not None:
        return [o for o in offerings if o.get("name") in named]
    claimed = {n for names in b.opts.disk_offerings.values() for n in names}
    return [o for o in offerings if o.get("name") not in claimed]


def check_disk_offerings(b: CloudStackBackend) -> None:
    """InvalidParameter naming the offerings of ``disk_offerings`` that CloudStack does not have."""
    offerings = b.cloud.listing("listDiskOfferings", "diskoffering", kind="volume", what="list disk offerings")
    known = {o.get("name") for o in offerings}
    missing = [n for names in b.opts.disk_offerings.values() for n in names if n not in known]
    if missing:
        raise InvalidParameter(
            f"CloudStack has no disk offering named {', '.join(missing)}.", kind="volume", reason="disk_offering"
        )


def disk_offering(b: CloudStackBackend, size_gb: int, tier: VolumeTier = VolumeTier.STANDARD) -> dict[str, Any]:
    """The disk offering for a size of a tier: a fixed one of exactly that size, else a customised one (``size``
    sent)."""
    offerings = tier_offerings(b, tier)
    fixed = [o for o in offerings if not o.get("iscustomized") and int(o.get("disksize") or 0) == size_gb]
    custom = [o for o in offerings if o.get("iscustomized")]
    if fixed:
        return fixed[0]
    if custom:
        return custom[0]
    sizes = sorted({int(o.get("disksize") or 0) for o in offerings})
    raise InvalidParameter(
        f"CloudStack offers {tier} data disks of {', '.join(map(str, sizes)) or 'no'} GB only.",
        kind="volume",
        reason="size",
    )


def create_volume(b: CloudStackBackend, spec: VolumeSpec) -> Volume:
    """A volume of a size (a disk offering) or of a snapshot; a key finds what earlier attempts made, and settles
    on one of them (``_settle``)."""
    key = spec.idempotency_key
    made = made_with(b, key)
    if not made:
        params: dict[str, Any] = {"name": key_name(key) if key else spec.name or None}
        if spec.snapshot_id:
            if not get_snapshots(b, [spec.snapshot_id]):
                raise NotFound(f"The snapshot '{spec.snapshot_id}' does not exist.", kind="snapshot")
            params["snapshotid"] = spec.snapshot_id
        else:
            if not spec.size_gb or spec.size_gb < 1:
                raise InvalidParameter("A volume needs a size of at least 1 GB.", kind="volume", reason="size")
            offering = disk_offering(b, spec.size_gb, VolumeTier(spec.tier))
            params.update(zoneid=catalog.zone_id(b, spec.zone), diskofferingid=offering["id"])
            if offering.get("iscustomized"):
                params["size"] = spec.size_gb
        target = key_name(key) if key else None  # a noted create of this key is not sent again
        answer = b.cloud.start("createVolume", params, kind="volume", what="create volume", target=target)
        if not key:
            return _volume(b, need_volume(b, answer["id"]))
        made = [{"id": answer["id"], "name": key_name(key)}]
    return _volume(b, need_volume(b, _settle(b, key, spec.name, made)))


def delete_volume(b: CloudStackBackend, native_id: str) -> None:
    vol = need_volume(b, native_id)
    if vol.get("virtualmachineid"):
        raise Conflict(f"The volume '{native_id}' is attached to a machine.", kind="volume", reason="in_use")
    b.cloud.call("deleteVolume", {"id": native_id}, kind="volume", what="delete volume")


def update_volume(b: CloudStackBackend, native_id: str, update: VolumeUpdate) -> Volume:
    vol = need_volume(b, native_id)
    if update.description is not None:
        raise Unsupported("CloudStack volumes have no description.", kind="volume", reason="description")
    if update.size_gb is not None:
        current = int(vol.get("size") or 0) >> 30
        if update.size_gb < current:
            raise InvalidParameter(
                f"The volume '{native_id}' has {current} GB; CloudStack volumes only grow.",
                kind="volume",
                reason="size",
            )
        if update.size_gb > current:
            params = resize_params(b, vol, update.size_gb)
            b.cloud.start("resizeVolume", params, kind="volume", what="resize", target=native_id)
    if update.name is not None:
        b.cloud.run("updateVolume", {"id": native_id, "name": update.name}, kind="volume", what="rename volume")
    return _volume(b, need_volume(b, native_id))


def resize_params(b: CloudStackBackend, vol: Mapping[str, Any], size_gb: int) -> dict[str, Any]:
    """resizeVolume's parameters: a volume of a fixed offering moves to a customised one to take a new size."""
    params: dict[str, Any] = {"id": vol["id"], "size": size_gb}
    if vol.get("type") != "ROOT" and vol.get("diskofferingid"):
        offerings = tier_offerings(b, b.opts.tier_of(vol.get("diskofferingname")))
        current = next((o for o in offerings if o["id"] == vol["diskofferingid"]), None)
        custom = next((o for o in offerings if o.get("iscustomized")), None)  # of the volume's own tier
        if current is not None and not current.get("iscustomized"):
            if custom is None:
                raise Unsupported("No customised disk offering to resize to.", kind="volume", reason="size")
            params["diskofferingid"] = custom["id"]
    return params


def attach_volume(b: CloudStackBackend, native_id: str, vm_id: str, device: str | None) -> Volume:
    from backends.cloudstack.machines import need_vm

    if b.cloud.resume("attachVolume", native_id, kind="volume", what="attach volume"):  # sent by an earlier attempt
        return _volume(b, need_volume(b, native_id))
    vol = need_volume(b, native_id)
    need_vm(b, vm_id)
    if vol.get("virtualmachineid"):
        raise Conflict(f"The volume '{native_id}' is already attached.", kind="volume", reason="in_use")
    params: dict[str, Any] = {"id": native_id, "virtualmachineid": vm_id}
    if device:
        wanted = device_id(device)
        used = {int(v.get("deviceid") or 0) for v in _volumes(b, {"virtualmachineid": vm_id})}
        if wanted not in used and wanted not in (0, CDROM_DEVICE):
            params["deviceid"] = wanted  # a hint: a taken one lets CloudStack pick
    b.cloud.run("attachVolume", params, kind="volume", what="attach volume", target=native_id)
    return _volume(b, need_volume(b, native_id))


def detach_volume(b: CloudStackBackend, native_id: str, vm_id: str | None) -> Volume:
    if b.cloud.resume("detachVolume", native_id, kind="volume", what="detach volume"):  # sent by an earlier attempt
        return _volume(b, need_volume(b, native_id))
    vol = need_volume(b, native_id)
    on = vol.get("virtualmachineid")
    if not on or (vm_id and on != vm_id):
        raise Conflict(f"The volume '{native_id}' is not attached there.", kind="volume", reason="state")
    if vol.get("type") == "ROOT":
        raise Conflict(f"The volume '{native_id}' is a machine's root disk.", kind="volume", reason="root")
    b.cloud.run("detachVolume", {"id": native_id}, kind="volume", what="detach volume", target=native_id)
    return _volume(b, need_volume(b, native_id))


# -- snapshots ----------------------------------------------------------------------------------------------


def to_snapshot(snap: Mapping[str, Any]) -> Snapshot:
    state = SNAPSHOT_STATES.get(str(snap.get("state")), SnapshotState.ERROR)
    size = snap.get("virtualsize") or snap.get("physicalsize") or 0
    return Snapshot(
        native_id=snap["id"],
        name=snap.get("name", ""),
        created=catalog.parse_time(snap.get("created")),
        volume_id=snap.get("volumeid") or None,
        size_gb=int(size) >> 30,
        state=state,
        progress=100 if state is SnapshotState.COMPLETED else 0,
        tags=tags.user_tags(snap),
    )


def _snapshots(b: CloudStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return b.cloud.listing("listSnapshots", "snapshot", params, kind="snapshot", what="list snapshots")


def list_snapshots(b: CloudStackBackend) -> list[Snapshot]:
    return [to_snapshot(s) for s in _snapshots(b) if s.get("state") != "Destroyed"]


def get_snapshots(b: CloudStackBackend, native_ids: list[str]) -> list[Snapshot]:
    out = []
    for native_id in dict.fromkeys(native_ids):
        try:
            found = _snapshots(b, {"id": native_id})
        except (NotFound, InvalidParameter):
            continue
        out.extend(to_snapshot(s) for s in found if s["id"] == native_id and s.get("state") != "Destroyed")
    return out


def create_snapshot(b: CloudStackBackend, volume_id: str, description: str) -> Snapshot:
    """A snapshot of a volume (CloudStack snapshots have a name, not a description: the name carries it)."""
    need_volume(b, volume_id)
    params = {"volumeid": volume_id, "name": description[:255] or None}
    answer = b.cloud.start("createSnapshot", params, kind="snapshot", what="create snapshot", target=volume_id)
    found = get_snapshots(b, [answer["id"]])
    if not found:
        raise NotFound(f"The snapshot '{answer['id']}' vanished.", kind="snapshot")
    return found[0]


def delete_snapshot(b: CloudStackBackend, native_id: str) -> None:
    if b.cloud.resume("deleteSnapshot", native_id, kind="snapshot", what="delete snapshot"):
        return
    if not get_snapshots(b, [native_id]):
        raise NotFound(f"The snapshot '{native_id}' does not exist.", kind="snapshot")
    b.cloud.run("deleteSnapshot", {"id": native_id}, kind="snapshot", what="delete snapshot", target=native_id)
