"""Volumes (create, attach, detach, delete) and snapshots, with the state and in-use rules of a block store.

A volume's attachment and its machine's ``volume_ids`` change in the same transaction, so they never
disagree, whichever worker made the change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from backends.simulator.storage import Rec, Sim, Tx, keep_key, made_with, new_id
from translator.errors import Conflict, InvalidParameter, NotFound, QuotaExceeded
from translator.model import (
    Attachment,
    BlockDevice,
    Machine,
    MachineState,
    Snapshot,
    SnapshotState,
    Volume,
    VolumeSpec,
    VolumeState,
    VolumeTier,
    VolumeUpdate,
)

MIN_SIZE_GB, MAX_SIZE_GB = 1, 16384
#: A device a disk can be attached as: a plain name under /dev (/dev/vdb, /dev/sdf, /dev/xvda1 ...).
DEVICE = re.compile(r"^/dev/[a-z][a-z0-9]{0,15}$")
#: Where the simulated hypervisor puts the boot disk when the image names no root device.
ROOT_DEVICE = "/dev/vda"
ATTACHABLE_MACHINE_STATES = frozenset({MachineState.RUNNING, MachineState.STOPPED})
#: Devices handed out, in order, when an attach names none (virtio disks after a KVM guest's root disk).
PICKED_DEVICES = tuple(f"/dev/vd{letter}" for letter in "bcdefghijklmnopqrstuvwxyz")


def check_device(device: str) -> None:
    if not DEVICE.match(device or ""):
        raise InvalidParameter(
            f"The device name '{device}' is invalid (e.g. /dev/vdb).", kind="attachment", reason="device"
        )


def check_size(size: int | None) -> None:
    if size is not None and not MIN_SIZE_GB <= size <= MAX_SIZE_GB:
        raise InvalidParameter(
            f"The size {size} GiB is not within {MIN_SIZE_GB}-{MAX_SIZE_GB}.", kind="volume", reason="size"
        )


def check_tier(tier: str) -> VolumeTier:
    """The simulator's volumes are of the canonical tiers themselves."""
    try:
        return VolumeTier(tier)
    except ValueError:
        known = ", ".join(VolumeTier)
        raise InvalidParameter(f"The tier '{tier}' is not one of {known}.", kind="volume", reason="tier") from None


def check_block_devices(devices: Sequence[BlockDevice]) -> None:
    """Launch-time disks: valid, distinct device names, sizes and tiers (references are checked later)."""
    names = [d.device for d in devices if not d.boot]
    if sum(d.boot for d in devices) > 1:
        raise InvalidParameter("Only one boot disk can be given.", kind="attachment", reason="device")
    for d in devices:
        if not d.boot:
            check_device(d.device)
        check_size(d.size_gb)
        check_tier(d.tier)
        if d.size_gb is None and d.snapshot_id is None and not d.boot:
            raise InvalidParameter(
                f"The block device {d.device} needs a size or a snapshot.", kind="volume", reason="missing"
            )
        if names.count(d.device) > 1:
            raise InvalidParameter(f"The device {d.device} is mapped twice.", kind="attachment", reason="device")


def sized_from(tx: Tx, size: int | None, snapshot_id: str | None) -> int:
    """The size of a new volume: the one asked for, at least its snapshot's; the snapshot's by default."""
    if snapshot_id is None:
        if size is None:
            raise InvalidParameter("A volume needs a size or a snapshot.", kind="volume", reason="missing")
        return size
    snap = tx.require("snapshot", snapshot_id).obj
    if snap.state is not SnapshotState.COMPLETED:
        raise Conflict(f"The snapshot '{snapshot_id}' is {snap.state}, not completed.", kind="snapshot", reason="state")
    if size is not None and size < snap.size_gb:
        raise InvalidParameter(
            f"The size {size} GiB is smaller than snapshot '{snapshot_id}' ({snap.size_gb} GiB).",
            kind="volume",
            reason="size",
        )
    return snap.size_gb if size is None else size


def block_device_sizes(tx: Tx, devices: Sequence[BlockDevice], boot_size: int) -> list[int]:
    """Each launch disk's size; the boot disk's is its own or the image's (``boot_size``)."""
    return [(d.size_gb or boot_size) if d.boot else sized_from(tx, d.size_gb, d.snapshot_id) for d in devices]


def new_attached(
    tx: Tx,
    machine: Machine,
    device: str,
    size: int,
    tier: VolumeTier,
    snapshot_id: str | None,
    delete_on_termination: bool,
) -> Volume:
    """A volume created attached to a machine being launched (root and block-device disks)."""
    attachment = Attachment(
        machine_id=machine.native_id,
        device=device,
        attached=tx.now,
        delete_on_termination=delete_on_termination,
    )
    volume = Volume(
        native_id=new_id("vol"),
        size_gb=size,
        state=VolumeState.IN_USE,
        zone=machine.zone,
        tier=tier,
        snapshot_id=snapshot_id,
        attachments=[attachment],
        created=tx.now,
        updated=tx.now,
    )
    tx.put("volume", Rec(volume))
    return volume


def clear_attachment(tx: Tx, vol: Rec[Volume]) -> None:
    """Detach a volume: it becomes available and leaves its machine's ``volume_ids``."""
    for attachment in vol.obj.attachments:
        machine = tx.get("machine", attachment.machine_id)
        if machine is not None and vol.obj.native_id in machine.obj.volume_ids:
            machine.obj.volume_ids.remove(vol.obj.native_id)
            machine.obj.updated = tx.now
            tx.put("machine", machine)
    vol.obj.attachments = []
    vol.obj.state = VolumeState.AVAILABLE
    vol.obj.updated = tx.now
    tx.put("volume", vol)


# -- volumes ---------------------------------------------------------------------------------------


def list_volumes(sim: Sim) -> list[Volume]:
    return [r.obj for r in sim.store.all("volume")]


def create_volume(sim: Sim, spec: VolumeSpec) -> Volume:
    if spec.zone is None:
        raise InvalidParameter("A volume needs a zone.", kind="volume", reason="missing")
    if spec.zone not in sim.account.zones:
        raise NotFound(f"The zone '{spec.zone}' does not exist (zones: {', '.join(sim.account.zones)}).", kind="zone")
    check_size(spec.size_gb)
    tier = check_tier(spec.tier)

    def run(tx: Tx) -> Volume:
        earlier = made_with(tx, "volume", spec.idempotency_key)
        if earlier:
            return earlier[0]
        size = sized_from(tx, spec.size_gb, spec.snapshot_id)
        rec = Rec(
            Volume(
                native_id=new_id("vol"),
                name=spec.name,
                description=spec.description,
                size_gb=size,
                zone=spec.zone or "",
                tier=tier,
                snapshot_id=spec.snapshot_id,
                state=VolumeState.CREATING,
                created=tx.now,
                updated=tx.now,
            )
        )
        rec.schedule(tx.now, sim.settings.boot_delay, state=VolumeState.AVAILABLE)
        keep_key(tx, "volume", rec, spec.idempotency_key)
        tx.put("volume", rec)
        return rec.obj

    return sim.store.transact(run)


def update_volume(sim: Sim, native_id: str, update: VolumeUpdate) -> Volume:
    """Rename, describe, grow (attached or not; never shrink)."""
    check_size(update.size_gb)

    def run(tx: Tx) -> Volume:
        vol = tx.require("volume", native_id)
        if update.size_gb is not None and update.size_gb < vol.obj.size_gb:
            raise InvalidParameter(
                f"The volume '{native_id}' has {vol.obj.size_gb} GiB; it cannot shrink to {update.size_gb} GiB.",
                kind="volume",
                reason="size",
            )
        if vol.obj.state not in (VolumeState.AVAILABLE, VolumeState.IN_USE):
            raise Conflict(f"The volume '{native_id}' is {vol.obj.state}.", kind="volume", reason="state")
        for name in ("name", "description", "size_gb"):
            value = getattr(update, name)
            if value is not None:
                setattr(vol.obj, name, value)
        vol.obj.updated = tx.now
        tx.put("volume", vol)
        return vol.obj

    return sim.store.transact(run)


def delete_volume(sim: Sim, native_id: str) -> None:
    def run(tx: Tx) -> None:
        vol = tx.require("volume", native_id).obj
        if vol.attachments:
            raise Conflict(
                f"The volume '{native_id}' is attached to '{vol.attachments[0].machine_id}'.",
                kind="volume",
                reason="in_use",
            )
        tx.delete("volume", native_id)

    sim.store.transact(run)


def next_device(taken: set[str]) -> str:
    """The first of ``PICKED_DEVICES`` no volume of the machine uses."""
    found = next((d for d in PICKED_DEVICES if d not in taken), None)
    if found is None:
        raise QuotaExceeded(f"Every one of {len(PICKED_DEVICES)} device names is in use.", kind="attachment")
    return found


def attach_volume(sim: Sim, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
    """Attach as ``device``, or as the machine's next free device when the caller names none."""
    if device is not None:
        check_device(device)

    def run(tx: Tx) -> Volume:
        vol = tx.require("volume", native_id)
        machine = tx.require("machine", machine_native_id)
        if vol.obj.attachments:
            raise Conflict(
                f"The volume '{native_id}' is already attached to '{vol.obj.attachments[0].machine_id}'.",
                kind="volume",
                reason="in_use",
            )
        if vol.obj.state is not VolumeState.AVAILABLE:
            raise Conflict(
                f"The volume '{native_id}' is {vol.obj.state}, not available.", kind="volume", reason="state"
            )
        if machine.obj.state not in ATTACHABLE_MACHINE_STATES:
            raise Conflict(
                f"The machine '{machine_native_id}' is {machine.obj.state}; volumes attach to running "
                "or stopped machines.",
                kind="machine",
                reason="state",
            )
        if vol.obj.zone != machine.obj.zone:
            raise InvalidParameter(
                f"The volume '{native_id}' is in zone '{vol.obj.zone}' and the machine in '{machine.obj.zone}'.",
                kind="volume",
                reason="zone",
            )
        taken: dict[str, str] = {}
        for other_id in machine.obj.volume_ids:
            other = tx.get("volume", other_id)
            for a in other.obj.attachments if other is not None else ():
                taken[a.device] = other_id
        if device in taken:
            raise Conflict(
                f"The device {device} is already used by '{taken[device]}' on machine '{machine_native_id}'.",
                kind="attachment",
                reason="in_use",
            )
        picked = device or next_device(set(taken))
        vol.obj.attachments = [Attachment(machine_id=machine_native_id, device=picked, attached=tx.now)]
        vol.obj.state = VolumeState.IN_USE
        vol.obj.updated = machine.obj.updated = tx.now
        machine.obj.volume_ids.append(native_id)
        tx.put("volume", vol)
        tx.put("machine", machine)
        return vol.obj

    return sim.store.transact(run)


def detach_volume(sim: Sim, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
    """Detach; a root volume only from a stopped machine (``force`` skips that, as EC2's Force does)."""

    def run(tx: Tx) -> Volume:
        vol = tx.require("volume", native_id)
        if not vol.obj.attachments:
            raise Conflict(f"The volume '{native_id}' is not attached.", kind="volume", reason="state")
        attachment = vol.obj.attachments[0]
        if machine_native_id is not None and attachment.machine_id != machine_native_id:
            raise NotFound(f"The volume '{native_id}' is not attached to '{machine_native_id}'.", kind="attachment")
        machine = tx.get("machine", attachment.machine_id)
        if (
            not force
            and machine is not None
            and attachment.device == machine.obj.root_device
            and machine.obj.state is not MachineState.STOPPED
        ):
            raise Conflict(
                f"The root volume '{native_id}' can only be detached while '{machine.obj.native_id}' is stopped.",
                kind="machine",
                reason="state",
            )
        clear_attachment(tx, vol)
        return vol.obj

    return sim.store.transact(run)


# -- snapshots -------------------------------------------------------------------------------------


def list_snapshots(sim: Sim) -> list[Snapshot]:
    return [r.obj for r in sim.store.all("snapshot")]


def create_snapshot(sim: Sim, volume_native_id: str, description: str) -> Snapshot:
    def run(tx: Tx) -> Snapshot:
        vol = tx.require("volume", volume_native_id).obj
        if vol.state not in (VolumeState.AVAILABLE, VolumeState.IN_USE):
            raise Conflict(f"The volume '{volume_native_id}' is {vol.state}.", kind="volume", reason="state")
        rec = Rec(
            Snapshot(
                native_id=new_id("snap"),
                volume_id=volume_native_id,
                size_gb=vol.size_gb,
                description=description,
                state=SnapshotState.PENDING,
                progress=0,
                created=tx.now,
                updated=tx.now,
            )
        )
        rec.schedule(tx.now, sim.settings.boot_delay, state=SnapshotState.COMPLETED, progress=100)
        tx.put("snapshot", rec)
        return rec.obj

    return sim.store.transact(run)


def delete_snapshot(sim: Sim, native_id: str) -> None:
    def run(tx: Tx) -> None:
        tx.require("snapshot", native_id)
        tx.delete("snapshot", native_id)

    sim.store.transact(run)
