"""Machines: launch, lifecycle actions with EC2's rules, updates while stopped, console output.

A machine's native state (``_native``, EC2's vocabulary plus ``suspended``, ``paused`` and ``capturing``, the
last while an image is made of it) is kept next to the canonical
one; ``STATE_MAP`` is the one table between them. Transitions are scheduled, not run: see ``storage``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from backends.simulator import interfaces, machine_index, network, volumes
from backends.simulator.security_groups import DEFAULT_GROUP
from backends.simulator.storage import Rec, Sim, Tx, keep_key, made_with, new_id
from translator.errors import Conflict, InvalidParameter, NotFound, QuotaExceeded
from translator.model import (
    ActionMethod,
    Flavor,
    Image,
    ImageState,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkState,
    Subnet,
    Volume,
    VolumeTier,
)

#: The simulator's native machine states -> canonical states (complete: a test checks every value).
STATE_MAP: Mapping[str, MachineState] = {
    "pending": MachineState.PENDING,
    "running": MachineState.RUNNING,
    "stopping": MachineState.STOPPING,
    "stopped": MachineState.STOPPED,
    "suspended": MachineState.SUSPENDED,
    "paused": MachineState.PAUSED,
    "rebooting": MachineState.REBOOTING,
    "capturing": MachineState.CAPTURING,
    "shutting-down": MachineState.TERMINATING,
    "terminated": MachineState.TERMINATED,
    "error": MachineState.ERROR,
}

#: Where an action takes a machine: native state -> (state now, state after boot_delay or None).
#: ``None`` as the whole value means "already there: return the machine unchanged" (EC2's idempotence);
#: a state missing from an action's row means the action is impossible (``Conflict(reason="state")``).
Move = tuple[str, str | None] | None
_TERMINATE: Move = ("shutting-down", "terminated")
ACTIONS: Mapping[MachineAction, Mapping[str, Move]] = {
    MachineAction.START: {
        "stopped": ("pending", "running"),
        "running": None,
        "pending": None,
        "rebooting": None,
    },
    MachineAction.STOP: {
        "running": ("stopping", "stopped"),
        "rebooting": ("stopping", "stopped"),
        "suspended": ("stopping", "stopped"),
        "paused": ("stopping", "stopped"),
        "stopping": None,
        "stopped": None,
    },
    MachineAction.REBOOT: {"running": ("rebooting", "running"), "rebooting": None},
    MachineAction.SUSPEND: {"running": ("suspended", None), "suspended": None},
    MachineAction.RESUME: {"suspended": ("pending", "running"), "running": None, "pending": None},
    MachineAction.PAUSE: {"running": ("paused", None), "paused": None},
    MachineAction.UNPAUSE: {"paused": ("pending", "running"), "running": None, "pending": None},
    MachineAction.TERMINATE: {
        **{
            s: _TERMINATE
            for s in ("pending", "running", "stopping", "stopped", "suspended", "paused", "rebooting", "capturing")
        },
        "error": _TERMINATE,
        "shutting-down": None,
        "terminated": None,
    },
}
_CUT: Move = ("stopped", None)
_RESET: Move = ("rebooting", "running")
#: The hard methods (power cut, reset), replacing ``ACTIONS``' row of their action: at once, and from where a
#: graceful stop or reboot would wait (a stop under way, a machine in error).
HARD: Mapping[MachineAction, Mapping[str, Move]] = {
    MachineAction.STOP: {
        **{s: _CUT for s in ("running", "rebooting", "suspended", "paused", "stopping", "error")},
        "stopped": None,
    },
    MachineAction.REBOOT: {s: _RESET for s in ("running", "rebooting", "error")},
}
#: Where a launch goes: running, or error for a machine that fails to boot (``faults.boot_failure_rate``).
LAUNCH: tuple[str, str] = ("pending", "running")
BOOT_FAILURE = "simulator: the machine failed to boot (faults.boot_failure_rate)"
#: The state of a machine while an image is made of it (``images.create_image``).
CAPTURING = "capturing"
#: Every state a simulated machine can be in: a launch's, a capture's, and those the actions above move it to.
NATIVE_STATES = frozenset(
    {*LAUNCH, "error", CAPTURING}
    | {
        state
        for table in (ACTIONS, HARD)
        for row in table.values()
        for move in row.values()
        if move
        for state in move
        if state
    }
)
#: state_reason shown once an action has been taken (EC2's wording).
REASONS: Mapping[MachineAction, str] = {
    MachineAction.STOP: "Client.UserInitiatedShutdown: User initiated shutdown",
    MachineAction.TERMINATE: "Client.UserInitiatedShutdown: User initiated shutdown",
    MachineAction.SUSPEND: "Client.UserInitiatedSuspend: User initiated suspend",
}
UPDATABLE_STATES = frozenset({MachineState.STOPPED})


def _native(rec: Rec[Machine]) -> str:
    return rec.sim.get("_native", "pending")


def move(rec: Rec[Machine], now: float, delay: float, to: str, then: str | None) -> None:
    """Put a machine in ``to`` now and schedule ``then`` (a booted machine has console output)."""
    rec.sim.pop("_next", None)
    rec.sim["_native"] = to
    rec.obj.state = STATE_MAP[to]
    rec.obj.updated = now
    if then is not None:
        extra: dict[str, Any] = {"_booted": True} if then == "running" else {}
        if then == "error":
            extra["state_reason"] = BOOT_FAILURE
        rec.schedule(now, delay, state=STATE_MAP[then], _native=then, **extra)


# -- launch ----------------------------------------------------------------------------------------


def find_image(sim: Sim, tx: Tx, native_id: str) -> Image:
    image = sim.settings.image(native_id)
    if image is None:
        image = tx.require("image", native_id).obj
    if image.state is not ImageState.AVAILABLE:
        raise Conflict(f"The image '{native_id}' is {image.state}, not available.", kind="image", reason="state")
    return image


def find_flavor(sim: Sim, native_id: str | None) -> Flavor:
    flavor = sim.settings.flavor(native_id) if native_id else None
    if flavor is None:
        raise NotFound(f"The flavor '{native_id}' does not exist.", kind="flavor")
    return flavor


def placement(sim: Sim, tx: Tx, spec: MachineSpec) -> Subnet:
    """The subnet a launch lands in: the named one (its zone wins) or the zone's default subnet."""
    if spec.subnet_id is None:
        return network.default_subnet(tx, network.default_network_id(sim), network.zone_of(sim, spec.zone)).obj
    subnet = tx.require("subnet", spec.subnet_id).obj
    if spec.zone is not None and spec.zone != subnet.zone:
        raise InvalidParameter(
            f"The subnet '{subnet.native_id}' is in zone '{subnet.zone}', not '{spec.zone}'.",
            kind="subnet",
            reason="zone",
        )
    return subnet


def security_groups_of(tx: Tx, spec: MachineSpec, network_id: str) -> list[str]:
    """The named groups, which must be in the machine's network; else the network's default group."""
    for gid in spec.security_group_ids:
        group = tx.require("security_group", gid).obj
        if group.network_id != network_id:
            raise InvalidParameter(
                f"The security group '{gid}' is not in network '{network_id}'.",
                kind="security_group",
                reason="network",
            )
    if spec.security_group_ids:
        return list(dict.fromkeys(spec.security_group_ids))
    groups = tx.all("security_group")
    found = [g.obj.native_id for g in groups if g.obj.network_id == network_id and g.obj.name == DEFAULT_GROUP]
    return found[:1]


def check_launch(sim: Sim, tx: Tx, spec: MachineSpec) -> tuple[Image, Flavor, Subnet, list[str]]:
    """Everything a launch refers to, checked before anything is written."""
    if spec.count < 1:
        raise InvalidParameter(f"count must be at least 1, got {spec.count}.", kind="machine", reason="count")
    image, flavor = find_image(sim, tx, spec.image_id), find_flavor(sim, spec.flavor_id)
    if spec.key_name is not None and not any(k.obj.name == spec.key_name for k in tx.all("key_pair")):
        raise NotFound(f"The key pair '{spec.key_name}' does not exist.", kind="key_pair")
    subnet = placement(sim, tx, spec)
    groups = security_groups_of(tx, spec, subnet.network_id)
    live = machine_index.live_count(tx)
    if live + spec.count > sim.settings.max_machines:
        raise QuotaExceeded(
            f"Launching {spec.count} machine(s) would exceed the limit of {sim.settings.max_machines} ({live} in use).",
            kind="machine",
        )
    return image, flavor, subnet, groups


def create_machines(sim: Sim, spec: MachineSpec) -> list[Machine]:
    volumes.check_block_devices(spec.block_devices)

    def run(tx: Tx) -> list[Machine]:
        earlier = made_with(tx, "machine", spec.idempotency_key)
        if earlier:
            return earlier
        image, flavor, subnet, groups = check_launch(sim, tx, spec)
        root_size = max(image.min_disk_gb, flavor.disk_gb, volumes.MIN_SIZE_GB)
        root_device = image.root_device or volumes.ROOT_DEVICE
        disks = volumes.block_device_sizes(tx, spec.block_devices, root_size)
        for bd, size in zip(spec.block_devices, disks, strict=True):
            if bd.boot and size < image.min_disk_gb:
                raise InvalidParameter(
                    f"The root volume of {size} GiB is smaller than image's {image.min_disk_gb} GiB.",
                    kind="volume",
                    reason="size",
                )
            if not bd.boot and bd.device == root_device:
                raise InvalidParameter(
                    f"The device {bd.device} is the boot disk's.", kind="attachment", reason="device"
                )
        now = tx.now
        net = tx.get("network", subnet.network_id)
        up = net is None or net.obj.state is not NetworkState.DOWN
        launched = []
        for ip in interfaces.free_ips(tx, subnet, spec.count):
            rec = Rec(
                Machine(
                    native_id=new_id("vm"),
                    name=spec.name,
                    state=MachineState.PENDING,
                    created=now,
                    updated=now,
                    image_id=image.native_id,
                    flavor_id=flavor.native_id,
                    flavor_name=flavor.name,
                    vcpus=flavor.vcpus,
                    memory_mb=flavor.memory_mb,
                    zone=subnet.zone,
                    key_name=spec.key_name,
                    security_group_ids=list(groups),
                    network_id=subnet.network_id,
                    subnet_id=subnet.native_id,
                    private_ip=ip,
                    interfaces=[interfaces.new_interface(subnet, ip, now, up)],
                    root_device=root_device,
                    user_data=spec.user_data,
                    hibernation=spec.hibernation,
                    architecture=image.architecture,
                    platform=image.platform,
                    launched=now,
                    launch_key=spec.idempotency_key,
                    client_token=spec.client_token,
                )
            )
            fails = random.random() < sim.settings.faults.boot_failure_rate
            move(rec, now, sim.settings.boot_delay, LAUNCH[0], "error" if fails else LAUNCH[1])
            keep_key(tx, "machine", rec, spec.idempotency_key)
            attached = []
            if not any(bd.boot for bd in spec.block_devices):
                attached.append(
                    volumes.new_attached(tx, rec.obj, root_device, root_size, VolumeTier.STANDARD, None, True)
                )
            # A boot disk given at launch replaces the default one.
            attached += [
                volumes.new_attached(
                    tx,
                    rec.obj,
                    root_device if bd.boot else bd.device,
                    size,
                    bd.tier,
                    None if bd.boot else bd.snapshot_id,
                    bd.delete_on_termination,
                )
                for bd, size in zip(spec.block_devices, disks, strict=True)
            ]
            rec.obj.volume_ids = [v.native_id for v in attached]
            tx.put("machine", rec)
            launched.append(rec.obj)
        return launched

    return sim.store.transact(run)


# -- lifecycle -------------------------------------------------------------------------------------


def release_resources(tx: Tx, rec: Rec[Machine]) -> None:
    """On termination: delete delete-on-termination volumes, detach the others, let addresses and interfaces go."""
    for vid in list(rec.obj.volume_ids):  # a copy: detaching edits the list
        vol: Rec[Volume] | None = tx.get("volume", vid)
        if vol is None:
            continue
        if any(a.machine_id == rec.obj.native_id and a.delete_on_termination for a in vol.obj.attachments):
            tx.delete("volume", vid)
        else:
            volumes.clear_attachment(tx, vol)
    for address in tx.all("address"):
        if address.obj.machine_id == rec.obj.native_id:
            network.unlink_address(tx, address)
    rec.obj.volume_ids = []
    rec.obj.interfaces = []


def act_on_machine(
    sim: Sim, native_id: str, action: MachineAction, method: ActionMethod = ActionMethod.GRACEFUL
) -> Machine:
    """Apply an action by the ``ACTIONS`` table, or ``HARD``'s for a hard stop or reboot."""
    table = HARD if method is ActionMethod.HARD else ACTIONS
    row = table.get(action)
    if row is None:
        raise InvalidParameter(f"Unknown machine action '{action} ({method})'.", kind="machine", reason="action")

    def run(tx: Tx) -> Machine:
        rec = tx.require("machine", native_id)
        state = _native(rec)
        if state not in row:
            raise Conflict(f"The machine '{native_id}' is {state}; it cannot {action}.", kind="machine", reason="state")
        outcome = row[state]
        before = rec.obj.state
        if outcome is not None:
            move(rec, tx.now, sim.settings.boot_delay, *outcome)
            rec.obj.state_reason = REASONS.get(action, "")
            if action == MachineAction.TERMINATE:
                release_resources(tx, rec)
            tx.put("machine", rec)
        return replace(rec.obj, previous_state=before)  # a copy: the stored machine has no previous state

    return sim.store.transact(run)


def update_machine(sim: Sim, native_id: str, update: MachineUpdate) -> Machine:
    flavor = find_flavor(sim, update.flavor_id) if update.flavor_id is not None else None

    def run(tx: Tx) -> Machine:
        rec = tx.require("machine", native_id)
        if rec.obj.state not in UPDATABLE_STATES:
            raise Conflict(
                f"The machine '{native_id}' is {_native(rec)}; it can only be changed while stopped.",
                kind="machine",
                reason="state",
            )
        changes: dict[str, Any] = {"name": update.name, "user_data": update.user_data}
        if flavor is not None:
            changes |= {
                "flavor_id": flavor.native_id,
                "flavor_name": flavor.name,
                "vcpus": flavor.vcpus,
                "memory_mb": flavor.memory_mb,
            }
        for name, value in changes.items():
            if value is not None:
                setattr(rec.obj, name, value)
        rec.obj.updated = tx.now
        tx.put("machine", rec)
        return rec.obj

    return sim.store.transact(run)


def list_machines(sim: Sim) -> list[Machine]:
    return with_relations(sim, [interfaces.shown(r.obj) for r in sim.store.all("machine")])


def get_machines(sim: Sim, native_ids: list[str]) -> list[Machine]:
    """Machines by id, as listed (EC2 describes an instance the same either way)."""
    return with_relations(sim, [interfaces.shown(r.obj) for r in sim.store.some("machine", native_ids)])


def with_relations(sim: Sim, found: list[Machine]) -> list[Machine]:
    """Machines as listed: with their disks and group names, as EC2 lists an instance's (one round trip)."""
    related = sim.store.several(
        {
            "volume": list(dict.fromkeys(v for m in found for v in m.volume_ids)),
            "security_group": list(dict.fromkeys(g for m in found for g in m.security_group_ids)),
        }
    )
    volumes = {r.obj.native_id: r.obj for r in related["volume"]}
    names = {r.obj.native_id: r.obj.name for r in related["security_group"]}
    for m in found:
        m.disks = [
            a.disk(v.native_id)
            for v in (volumes.get(vid) for vid in m.volume_ids)
            if v is not None
            for a in v.attachments
            if a.machine_id == m.native_id
        ]
        m.security_group_names = [names.get(g, "") for g in m.security_group_ids]
    return found


def console_output(sim: Sim, native_id: str) -> str:
    """A plausible serial console log once the machine has booted; empty before (as on EC2)."""
    rec = sim.store.get("machine", native_id)
    if rec is None:
        raise NotFound(f"The machine '{native_id}' does not exist.", kind="machine")
    if not rec.sim.get("_booted"):
        return ""
    m = rec.obj
    host = "ip-" + (m.private_ip or "0.0.0.0").replace(".", "-")
    stamp = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(m.launched))
    return "\n".join(
        (
            "[    0.000000] Linux version 6.8.0-cloudgate (simulator) #1 SMP PREEMPT_DYNAMIC",
            f"[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz root={m.root_device} ro console=ttyS0",
            f"[    0.004000] DMI: cloudgate simulator/{m.flavor_name}, BIOS 1.0 {m.native_id}",
            f"[    0.812000] Memory: {m.memory_mb * 1024}K available, {m.vcpus} CPUs",
            f"[    3.510000] cloud-init[412]: Cloud-init v. 24.1 running 'init' at {stamp}.",
            f"[    3.620000] cloud-init[412]: ci-info: | eth0 | True | {m.private_ip} | global |",
            f"[    4.100000] cloud-init[412]: Set hostname to <{host}> for instance {m.native_id}",
            f"[    5.200000] cloud-init[530]: Cloud-init v. 24.1 finished at {stamp}. Up 5.20 seconds",
            "",
            f"{m.platform.capitalize()} {host} ttyS0",
            "",
            f"{host} login: ",
        )
    )
