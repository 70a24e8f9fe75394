"""Machines: VMs instantiated from flavor templates, their STATE/LCM_STATE in one table, and their actions.

Launching instantiates the flavor's template (``one.template.instantiate``) with the image's disk in place of the
template's first disk, rather than allocating a generated template (``one.vm.allocate``): everything else the
operator put in the template (NICs, context, scheduling requirements, graphics, OS settings) stays theirs, the
user's rights on templates keep governing what may be launched, and the VM records its ``TEMPLATE_ID``, which is
how a machine's flavor reads back. What the gateway needs to find again lives in the VM's ``USER_TEMPLATE``: the
create's idempotency key (so a retried create finds its VMs even if Redis was lost), the machine's place in its
launch, and its zone.
"""

from __future__ import annotations

import base64
import contextlib
import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyone

from backends.opennebula.catalog import find_image, flavor_template, oid
from backends.opennebula.groups import find_group
from backends.opennebula.tags import tags_of, written
from backends.opennebula.templates import number, single, to_xml, vectors
from translator.errors import (
    CloudgateError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    TransientBackendError,
    Unsupported,
)
from translator.model import (
    ActionMethod,
    InterfaceState,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkInterface,
)

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

KEY_ATTRIBUTE = "CLOUDGATE_IDEMPOTENCY_KEY"
INDEX_ATTRIBUTE = "CLOUDGATE_LAUNCH_INDEX"
ZONE_ATTRIBUTE = "CLOUDGATE_ZONE"
KEY_NAME_ATTRIBUTE = "CLOUDGATE_KEY_PAIR"
FLAVOR_ATTRIBUTE = "CLOUDGATE_FLAVOR"  # the flavor a resize gave the VM (TEMPLATE_ID stays the one it launched from)
MINE = -3  # pool filter: the session user's own objects (the account is that user)
ANY_STATE = -2

VM_STATES = pyone.VM_STATE
LCM_STATES = pyone.LCM_STATE


def _lcm(state: MachineState, *names: str) -> dict[str, MachineState]:
    return {f"ACTIVE/{name}": state for name in names}


#: ``STATE`` (when not ACTIVE, its LCM_STATE is always LCM_INIT) or ``ACTIVE/<LCM_STATE>`` -> canonical state.
#: Names are oned's (VirtualMachine::VmState, VirtualMachine::LcmState), as pyone's VM_STATE and LCM_STATE spell them.
STATE_MAP: Mapping[str, MachineState] = {
    "INIT": MachineState.PENDING,
    "PENDING": MachineState.PENDING,
    "HOLD": MachineState.PENDING,  # waiting for a release before the scheduler deploys it
    "STOPPED": MachineState.STOPPED,  # saved to the datastore, off its host
    "SUSPENDED": MachineState.SUSPENDED,
    "DONE": MachineState.TERMINATED,
    "FAILED": MachineState.ERROR,
    "POWEROFF": MachineState.STOPPED,
    "UNDEPLOYED": MachineState.STOPPED,  # off, its disks back in the datastore
    "CLONING": MachineState.PENDING,  # its images are being copied
    "CLONING_FAILURE": MachineState.ERROR,
    **_lcm(MachineState.RUNNING, "RUNNING", "MIGRATE", "HOTPLUG", "HOTPLUG_NIC", "HOTPLUG_SNAPSHOT", "HOTPLUG_RESIZE"),
    **_lcm(MachineState.RUNNING, "DISK_SNAPSHOT", "DISK_SNAPSHOT_DELETE", "DISK_RESIZE"),
    **_lcm(MachineState.CAPTURING, "HOTPLUG_SAVEAS", "DISK_SNAPSHOT_REVERT"),
    **_lcm(MachineState.PENDING, "PROLOG", "BOOT", "PROLOG_RESUME", "PROLOG_UNDEPLOY", "BOOT_UNDEPLOY"),
    **_lcm(MachineState.PENDING, "BOOT_POWEROFF", "BOOT_SUSPENDED", "BOOT_STOPPED", "BOOT_UNKNOWN"),
    **_lcm(MachineState.PENDING, "SAVE_MIGRATE", "PROLOG_MIGRATE", "BOOT_MIGRATE", "CLEANUP_RESUBMIT"),
    **_lcm(MachineState.PENDING, "PROLOG_MIGRATE_POWEROFF", "PROLOG_MIGRATE_SUSPEND", "PROLOG_MIGRATE_UNKNOWN"),
    **_lcm(MachineState.STOPPING, "SAVE_STOP", "SAVE_SUSPEND", "EPILOG_STOP", "SHUTDOWN_POWEROFF"),
    **_lcm(MachineState.STOPPING, "SHUTDOWN_UNDEPLOY", "EPILOG_UNDEPLOY"),
    **_lcm(MachineState.TERMINATING, "SHUTDOWN", "EPILOG", "CANCEL", "CLEANUP_DELETE"),
    # Changes made while the VM is off (POWEROFF, SUSPENDED, UNDEPLOYED or STOPPED underneath): it stays off.
    **_lcm(MachineState.STOPPED, "HOTPLUG_PROLOG_POWEROFF", "HOTPLUG_EPILOG_POWEROFF", "HOTPLUG_NIC_POWEROFF"),
    **_lcm(MachineState.STOPPED, "DISK_SNAPSHOT_POWEROFF", "DISK_SNAPSHOT_DELETE_POWEROFF", "DISK_RESIZE_POWEROFF"),
    **_lcm(MachineState.STOPPED, "DISK_RESIZE_UNDEPLOYED"),
    **_lcm(MachineState.SUSPENDED, "DISK_SNAPSHOT_SUSPENDED", "DISK_SNAPSHOT_DELETE_SUSPENDED"),
    **_lcm(MachineState.CAPTURING, "HOTPLUG_SAVEAS_POWEROFF", "HOTPLUG_SAVEAS_SUSPENDED", "HOTPLUG_SAVEAS_UNDEPLOYED"),
    **_lcm(MachineState.CAPTURING, "HOTPLUG_SAVEAS_STOPPED", "DISK_SNAPSHOT_REVERT_POWEROFF"),
    **_lcm(MachineState.CAPTURING, "DISK_SNAPSHOT_REVERT_SUSPENDED"),
    # The host is lost, or a driver operation failed: the VM waits for an operator's recover.
    **_lcm(MachineState.ERROR, "UNKNOWN", "FAILURE", "BOOT_FAILURE", "BOOT_MIGRATE_FAILURE", "PROLOG_FAILURE"),
    **_lcm(MachineState.ERROR, "PROLOG_MIGRATE_FAILURE", "EPILOG_FAILURE", "EPILOG_STOP_FAILURE"),
    **_lcm(MachineState.ERROR, "EPILOG_UNDEPLOY_FAILURE", "PROLOG_MIGRATE_POWEROFF_FAILURE"),
    **_lcm(MachineState.ERROR, "PROLOG_MIGRATE_SUSPEND_FAILURE", "BOOT_UNDEPLOY_FAILURE", "BOOT_STOPPED_FAILURE"),
    **_lcm(MachineState.ERROR, "PROLOG_RESUME_FAILURE", "PROLOG_UNDEPLOY_FAILURE", "PROLOG_MIGRATE_UNKNOWN_FAILURE"),
}

#: Every state oned reports: each VM_STATE but ACTIVE alone, and ACTIVE with each LCM_STATE but LCM_INIT.
NATIVE_STATES: frozenset[str] = frozenset(
    {s.name for s in VM_STATES if s is not VM_STATES.ACTIVE}
    | {f"ACTIVE/{lcm.name}" for lcm in LCM_STATES if lcm is not LCM_STATES.LCM_INIT}
)


def native_state(state: int, lcm: int) -> str:
    """The STATE_MAP key of a VM's STATE/LCM_STATE numbers (a number pyone does not know reads as itself)."""
    try:
        name = VM_STATES(state).name
    except ValueError:
        return str(state)
    if name != "ACTIVE":
        return name
    try:
        return f"ACTIVE/{LCM_STATES(lcm).name}"
    except ValueError:
        return f"ACTIVE/{lcm}"


def machine_state(state: int, lcm: int) -> MachineState:
    return STATE_MAP.get(native_state(state, lcm), MachineState.ERROR)


#: action -> canonical state the VM is in -> oned action per method (None: already there, EC2's idempotence).
#: A state missing from a row is ``Conflict(reason="state")``; oned refusing one it allows is the same conflict.
Verb = Mapping[ActionMethod, str] | None


def _verbs(graceful: str, hard: str | None = None) -> Mapping[ActionMethod, str]:
    return {ActionMethod.GRACEFUL: graceful, ActionMethod.HARD: hard or graceful}


ACTIONS: Mapping[MachineAction, Mapping[MachineState, Verb]] = {
    MachineAction.START: {
        MachineState.STOPPED: _verbs("resume"),
        MachineState.RUNNING: None,
        MachineState.PENDING: None,
    },
    MachineAction.STOP: {
        MachineState.RUNNING: _verbs("poweroff", "poweroff-hard"),
        MachineState.STOPPING: None,
        MachineState.STOPPED: None,
    },
    MachineAction.REBOOT: {MachineState.RUNNING: _verbs("reboot", "reboot-hard")},
    MachineAction.SUSPEND: {MachineState.RUNNING: _verbs("suspend"), MachineState.SUSPENDED: None},
    MachineAction.RESUME: {
        MachineState.SUSPENDED: _verbs("resume"),
        MachineState.RUNNING: None,
        MachineState.PENDING: None,
    },
    MachineAction.TERMINATE: {
        MachineState.PENDING: _verbs("terminate-hard"),  # not yet booted: nothing to shut down
        MachineState.RUNNING: _verbs("terminate", "terminate-hard"),
        MachineState.STOPPING: _verbs("terminate-hard"),
        MachineState.STOPPED: _verbs("terminate", "terminate-hard"),
        MachineState.SUSPENDED: _verbs("terminate", "terminate-hard"),
        MachineState.CAPTURING: _verbs("terminate-hard"),
        MachineState.ERROR: _verbs("terminate-hard"),
        MachineState.TERMINATING: None,
        MachineState.TERMINATED: None,
    },
}


# -- reading ---------------------------------------------------------------------------------------------------


def subnet_id(network_id: str, zone: str) -> str:
    """A subnet's native id: oned's virtual networks are not zoned, so each offers one subnet per account zone."""
    return f"{network_id}:{zone}"


def interface_of(nic: Mapping[str, str], zone: str, attached: float, index: int = 0) -> NetworkInterface:
    network = nic.get("NETWORK_ID") or None
    return NetworkInterface(
        native_id=nic.get("NIC_ID", str(index)),
        network_id=network,
        subnet_id=subnet_id(network, zone) if network else None,
        private_ip=nic.get("IP") or None,
        mac=nic.get("MAC", "").lower(),
        state=InterfaceState.ACTIVE,
        attached=attached,
    )


def _interfaces(vm: Any, zone: str, public: str | None) -> tuple[list[NetworkInterface], str | None]:
    """The VM's interfaces, and its public address: a NIC on the public network is that, not an interface."""
    attached = float(vm.STIME or 0)
    nics = vectors(vm.TEMPLATE, "NIC")
    address = next((n.get("IP") for n in nics if public is not None and n.get("NETWORK_ID") == public), None)
    interfaces = [
        interface_of(nic, zone, attached, index)
        for index, nic in enumerate(nics)
        if public is None or nic.get("NETWORK_ID") != public
    ]
    if interfaces and address:
        interfaces[0].public_ip = address
    return interfaces, address


def zone_of(b: OpenNebulaBackend, vm: Any) -> str:
    return single(vm.USER_TEMPLATE or {}, ZONE_ATTRIBUTE) or b.account.zones[0]


def volume_ids(disks: list[dict[str, str]]) -> list[str]:
    """The VM's volumes: its persistent image disks after the boot disk (volumes are persistent data blocks)."""
    return [d["IMAGE_ID"] for d in disks[1:] if d.get("IMAGE_ID") and d.get("PERSISTENT", "").upper() == "YES"]


def _groups(nics: list[dict[str, str]]) -> list[str]:
    """The security groups of the VM's NICs, in order, once each."""
    found = (g.strip() for nic in nics for g in nic.get("SECURITY_GROUPS", "").split(","))
    return list(dict.fromkeys(g for g in found if g))


def machine_of(b: OpenNebulaBackend, vm: Any) -> Machine:
    """A pyone VM body (whole: ``one.vm.info`` or ``one.vmpool.infoextended``) as a Machine."""
    body, user = vm.TEMPLATE or {}, vm.USER_TEMPLATE or {}
    state = machine_state(vm.STATE, vm.LCM_STATE)
    disks = vectors(body, "DISK")
    gone = state == MachineState.TERMINATED
    zone = zone_of(b, vm)
    interfaces, public_ip = ([], None) if gone else _interfaces(vm, zone, b.public_network())
    for interface in interfaces:  # a NIC on a subnet's virtual network is in that subnet's network
        interface.network_id = b.network_of_vnet(interface.network_id)
    primary = interfaces[0] if interfaces else None
    history = vm.HISTORY_RECORDS.HISTORY if vm.HISTORY_RECORDS is not None else []
    flavor_id = single(user, FLAVOR_ATTRIBUTE) or single(body, "TEMPLATE_ID") or None
    return Machine(
        native_id=str(vm.ID),
        name=vm.NAME,
        state=state,
        state_reason=native_state(vm.STATE, vm.LCM_STATE),
        image_id=disks[0].get("IMAGE_ID") if disks and disks[0].get("IMAGE_ID") else None,
        flavor_id=flavor_id,
        flavor_name=b.flavor_name(flavor_id),
        vcpus=int(number(body, "VCPU")) or math.ceil(number(body, "CPU")),
        memory_mb=int(number(body, "MEMORY")),
        zone=zone,
        network_id=primary.network_id if primary else None,
        subnet_id=primary.subnet_id if primary else None,
        public_ip=public_ip,
        security_group_ids=_groups(vectors(body, "NIC")),
        private_ip=primary.private_ip if primary else None,
        interfaces=interfaces,
        volume_ids=[] if gone else volume_ids(disks),
        root_device=f"/dev/{disks[0]['TARGET']}" if disks and disks[0].get("TARGET") else "",
        created=float(vm.STIME or 0),
        launched=float((getattr(history[0], "STIME", 0) if history else 0) or vm.STIME or 0),
        launch_key=single(user, KEY_ATTRIBUTE),
        key_name=single(user, KEY_NAME_ATTRIBUTE) or None,
        tags=tags_of(user),
        user_data=user_data_of(vm),
    )


def _retained(b: OpenNebulaBackend, vm: Any, now: float) -> bool:
    """A DONE VM is listed (terminated) for ``terminated_retention`` seconds after it ended; oned keeps it forever."""
    return vm.STATE != VM_STATES.DONE or now - float(vm.ETIME or 0) <= b.opts.terminated_retention


def _pool(b: OpenNebulaBackend) -> list[Any]:
    """The user's VMs in any state, whole bodies (the short ones lack TEMPLATE_ID and CONTEXT)."""
    pool = b.one.pool("vmpool.infoextended", MINE, ANY_STATE, element="VM", kind="machine", what="list machines")
    now = time.time()
    return [vm for vm in pool if _retained(b, vm, now)]


def list_machines(b: OpenNebulaBackend) -> list[Machine]:
    return [machine_of(b, vm) for vm in _hide_twins(b, _pool(b))]


def read_vm(b: OpenNebulaBackend, native_id: str) -> Any:
    return b.one.call("vm.info", oid(native_id, "machine"), False, kind="machine", what="read machine")


#: LCM states of a hot-plug (disk, NIC, disk snapshot, resize) under way: oned refuses the next until it ends.
HOTPLUGGING = frozenset(
    getattr(LCM_STATES, name).value
    for name in (
        "HOTPLUG", "HOTPLUG_NIC", "HOTPLUG_SNAPSHOT", "HOTPLUG_RESIZE", "HOTPLUG_PROLOG_POWEROFF",
        "HOTPLUG_EPILOG_POWEROFF", "HOTPLUG_NIC_POWEROFF", "DISK_SNAPSHOT", "DISK_SNAPSHOT_DELETE",
        "DISK_SNAPSHOT_POWEROFF", "DISK_SNAPSHOT_DELETE_POWEROFF", "DISK_RESIZE", "DISK_RESIZE_POWEROFF",
    )
)  # fmt: skip
HOTPLUG_POLL = 0.05  # seconds between reads while waiting for a hot-plug to end


def settled_vm(b: OpenNebulaBackend, native_id: str) -> Any:
    """The VM's body once no hot-plug is under way (bounded by the account's timeout): oned takes one hot-plug
    at a time per VM, and a gateway attach or detach should wait for the previous one rather than fail."""
    deadline = time.monotonic() + b.opts.timeout
    vm = read_vm(b, native_id)
    while vm.STATE == VM_STATES.ACTIVE and vm.LCM_STATE in HOTPLUGGING and time.monotonic() < deadline:
        time.sleep(HOTPLUG_POLL)
        vm = read_vm(b, native_id)
    return vm


def get_machines(b: OpenNebulaBackend, native_ids: list[str]) -> list[Machine]:
    """A few by ``one.vm.info`` each; more from one listing."""
    wanted = [n for n in dict.fromkeys(native_ids) if n.isdigit()]
    if len(wanted) > 4:
        return [m for m in list_machines(b) if m.native_id in set(wanted)]
    found = []
    now = time.time()
    for native_id in wanted:
        try:
            vm = read_vm(b, native_id)
        except (NotFound, Forbidden):
            continue  # missing, or another user's: not this account's
        if _retained(b, vm, now):
            found.append(machine_of(b, vm))
    return found


# -- launching -------------------------------------------------------------------------------------------------


def pick_zone(b: OpenNebulaBackend, zone: str | None) -> str:
    """The account's zone named (its first when None); a zone that is not the account's is InvalidParameter."""
    if zone is None:
        return b.account.zones[0]
    if zone not in b.account.zones:
        raise InvalidParameter(f"The zone '{zone}' is not one of this account's.", kind="zone", reason="zone")
    return zone


def _extra(
    spec: MachineSpec,
    template: Mapping[str, Any],
    public_key: str | None,
    zone: str,
    index: int,
    network: str | None,
    groups: str,
) -> str:
    """What instantiate adds to the flavor's template: the image's disk first, user data and key in its context,
    the gateway's marks."""
    disks = vectors(template, "DISK")
    boot: dict[str, str] = {"IMAGE_ID": spec.image_id}
    for device in spec.block_devices:
        if not device.boot or device.snapshot_id:
            raise Unsupported("The opennebula backend launches with the boot disk only.", reason="block_devices")
        if device.size_gb:
            boot["SIZE"] = str(device.size_gb * 1024)
    extra: dict[str, Any] = {"DISK": [boot, *disks[1:]]}
    context = (vectors(template, "CONTEXT") or [{}])[0]
    if spec.user_data:
        context |= {"USER_DATA": spec.user_data, "USERDATA_ENCODING": "base64"}
    if public_key:
        context |= {"SSH_PUBLIC_KEY": public_key}
    if spec.user_data or public_key:
        extra["CONTEXT"] = context
    nics = [{"NETWORK_ID": network}] if network is not None else vectors(template, "NIC")  # the subnet's, or
    if groups:  # the template's NICs, in the groups asked for
        nics = [nic | {"SECURITY_GROUPS": groups} for nic in nics]
    if network is not None or groups:
        extra["NIC"] = nics
    extra |= written(dict(spec.tags))  # in USER_TEMPLATE, as oned keeps every attribute it does not know
    extra[ZONE_ATTRIBUTE] = zone
    if spec.key_name:
        extra[KEY_NAME_ATTRIBUTE] = spec.key_name
    if spec.idempotency_key:
        extra[KEY_ATTRIBUTE] = spec.idempotency_key
        extra[INDEX_ATTRIBUTE] = str(index)
    return to_xml(extra)


def _launched(b: OpenNebulaBackend, key: str) -> dict[int, list[Any]]:
    """VMs attempts of this create made: launch index -> their bodies, lowest id (the one that counts) first."""
    if not key:
        return {}
    return {index: vms for (k, index), vms in _keyed(_pool(b)).items() if k == key}


def _on_hold(vm: Any) -> bool:
    return native_state(vm.STATE, vm.LCM_STATE) == "HOLD"


def _settle_launch(b: OpenNebulaBackend, key: str) -> dict[int, str]:
    """Each index's machine: the lowest VM id carrying the key and index, released from hold; its twins, still
    on hold, terminated.

    oned has no idempotent create: a call stalled past the timeout may still reach it after this attempt looked
    for what earlier ones made, and make a twin. So keyed launches are made on hold and only the lowest id of an
    index is ever released, by whichever attempt settles first: ids only grow, so a twin arriving later is never
    the one kept, and the listing drops it (``_hide_twins``)."""
    chosen: dict[int, str] = {}
    for index, (keep, *twins) in _launched(b, key).items():
        for twin in twins:
            if _on_hold(twin):
                with contextlib.suppress(CloudgateError):  # another attempt settling at once terminated it first
                    b.one.call("vm.action", "terminate-hard", int(twin.ID), kind="machine", what="drop twin launch")
        if _on_hold(keep):
            with contextlib.suppress(Conflict):  # another attempt settling at once released it first
                b.one.call("vm.action", "release", int(keep.ID), kind="machine", what="release launch")
        chosen[index] = str(keep.ID)
    return chosen


def _hide_twins(b: OpenNebulaBackend, pool: list[Any]) -> list[Any]:
    """The pool without twin launches that reached oned after their create settled (on hold, a lower id holds
    their key and index); each is terminated on the way, best effort."""
    twins = set()
    for vms in _keyed(pool).values():
        twins |= {int(vm.ID) for vm in vms[1:] if _on_hold(vm)}
    for twin in twins:
        with contextlib.suppress(CloudgateError):
            b.one.call("vm.action", "terminate-hard", twin, kind="machine", what="drop twin launch")
    return [vm for vm in pool if int(vm.ID) not in twins] if twins else pool


def _keyed(pool: list[Any]) -> dict[tuple[str, int], list[Any]]:
    """(key, index) -> the VMs launched with it, lowest id first."""
    found: dict[tuple[str, int], list[Any]] = {}
    for vm in pool:
        user = vm.USER_TEMPLATE or {}
        key = single(user, KEY_ATTRIBUTE)
        if key:
            found.setdefault((key, int(single(user, INDEX_ATTRIBUTE, "0") or 0)), []).append(vm)
    for vms in found.values():
        vms.sort(key=lambda vm: int(vm.ID))
    return found


def create_machines(b: OpenNebulaBackend, spec: MachineSpec) -> list[Machine]:
    """Instantiate the flavor ``spec.count`` times, all or none; a repeat with the same key finds the first."""
    if spec.count < 1:
        raise InvalidParameter("count must be at least 1.", reason="count")
    flavor, template = flavor_template(b, spec.flavor_id)
    find_image(b, spec.image_id)
    public_key = b.find_key(spec.key_name) if spec.key_name is not None else None
    network = None
    zone_wanted = spec.zone
    if spec.subnet_id is not None:
        from backends.opennebula.networks import find_subnet  # networks builds on this module

        vnet, subnet_zone = find_subnet(b, spec.subnet_id)
        if zone_wanted is not None and zone_wanted != subnet_zone:
            raise InvalidParameter(f"The subnet '{spec.subnet_id}' is not in zone {zone_wanted}.", reason="zone")
        network, zone_wanted = str(vnet.ID), subnet_zone
    groups = ",".join(find_group(b, g) for g in spec.security_group_ids)
    zone = pick_zone(b, zone_wanted)
    key = spec.idempotency_key
    made = {index: str(vms[0].ID) for index, vms in _launched(b, key).items()}
    try:
        for index in range(spec.count):
            if index in made:
                continue
            extra = _extra(spec, template, public_key, zone, index, network, groups)
            vm_id = b.one.call(
                "template.instantiate", int(flavor.native_id), spec.name, bool(key), extra, False,
                kind="machine", what="instantiate",
            )  # fmt: skip
            made[index] = str(vm_id)
        if key:
            made = _settle_launch(b, key)
    except CloudgateError as exc:
        if isinstance(exc, OutcomeUnknown) or (key and isinstance(exc, TransientBackendError)):
            raise  # what oned made carries the key: a retry finds it and settles the launch
        for vm_id in made.values():  # all or none
            with contextlib.suppress(CloudgateError):  # best effort; the original failure is what the caller sees
                b.one.call("vm.action", "terminate-hard", int(vm_id), kind="machine", what="undo launch")
        raise
    return get_machines_in_order(b, [made[i] for i in sorted(made)])


def get_machines_in_order(b: OpenNebulaBackend, native_ids: list[str]) -> list[Machine]:
    return [machine_of(b, read_vm(b, native_id)) for native_id in native_ids]


# -- actions ---------------------------------------------------------------------------------------------------


def act_on_machine(b: OpenNebulaBackend, native_id: str, action: MachineAction, method: ActionMethod) -> Machine:
    machine = machine_of(b, read_vm(b, native_id))
    row = ACTIONS.get(action)
    if row is None:
        raise b.unsupported(f"machine action {action}")
    if machine.state not in row:
        raise Conflict(
            f"The machine '{native_id}' cannot {action} while {machine.state} ({machine.state_reason}).",
            kind="machine",
            reason="state",
        )
    verbs = row[machine.state]
    if verbs is None:
        return replace(machine, previous_state=machine.state)
    b.one.call("vm.action", verbs[method], int(native_id), kind="machine", what=f"{action} machine")
    return replace(machine_of(b, read_vm(b, native_id)), previous_state=machine.state)


# -- updates ---------------------------------------------------------------------------------------------------


def update_machine(b: OpenNebulaBackend, native_id: str, update: MachineUpdate) -> Machine:
    """A stopped machine's new flavor (``one.vm.resize`` to the flavor template's CPU, VCPU and MEMORY, the flavor
    then kept in the VM's USER_TEMPLATE), user data (its CONTEXT through ``one.vm.updateconf``) and name
    (``one.vm.rename``); everything is checked before any change.

    oned resizes a VM that is off (POWEROFF, UNDEPLOYED) and one still pending; a running one only by CPU and
    memory hot-plug, which not every host offers: the gateway asks for a stopped machine, as EC2 does."""
    vm = read_vm(b, native_id)
    machine = machine_of(b, vm)
    if machine.state != MachineState.STOPPED:
        raise Conflict(
            f"The machine '{native_id}' must be stopped to change it ({machine.state_reason}).",
            kind="machine",
            reason="state",
        )
    if update.name is not None and not update.name.strip():
        raise InvalidParameter("A machine's name cannot be empty.", kind="machine", reason="name")
    resize = None
    if update.flavor_id is not None:
        flavor, body = flavor_template(b, update.flavor_id)
        cpu = single(body, "CPU") or str(flavor.vcpus)
        resize = (flavor.native_id, {"CPU": cpu, "VCPU": str(flavor.vcpus), "MEMORY": str(flavor.memory_mb)})
    vm_id = int(native_id)
    if resize is not None:
        flavor_id, sizes = resize
        b.one.call("vm.resize", vm_id, to_xml(sizes), True, kind="machine", what="resize machine")
        mark = to_xml({FLAVOR_ATTRIBUTE: flavor_id})
        b.one.call("vm.update", vm_id, mark, 1, kind="machine", what="mark flavor")
    if update.user_data is not None:
        body = to_xml({"CONTEXT": _context_with(vm, update.user_data)})
        b.one.call("vm.updateconf", vm_id, body, 1, kind="machine", what="change user data")
    if update.name is not None:
        b.one.call("vm.rename", vm_id, update.name, kind="machine", what="rename machine")
    return machine_of(b, read_vm(b, native_id))


#: CONTEXT values oned makes itself (the context disk, each NIC's ETH<n>_* values); updateconf refuses ETH*.
def _oned_context_key(key: str) -> bool:
    return key in ("DISK_ID", "TARGET") or key.startswith("ETH")


def _context_with(vm: Any, user_data: str) -> dict[str, str]:
    """The VM's CONTEXT with new user data (base64; "" removes it), as ``one.vm.updateconf`` takes it whole."""
    context = {k: v or "" for k, v in (vectors(vm.TEMPLATE, "CONTEXT") or [{}])[0].items() if not _oned_context_key(k)}
    context = {k: v for k, v in context.items() if k not in ("USER_DATA", "USERDATA_ENCODING")}
    if user_data:
        context |= {"USER_DATA": user_data, "USERDATA_ENCODING": "base64"}
    return context


def user_data_of(vm: Any) -> str | None:
    """The user data of the VM's context as base64 (the gateway's form), None when it has none."""
    context = (vectors(vm.TEMPLATE, "CONTEXT") or [{}])[0]
    data = context.get("USER_DATA") or ""
    if not data:
        return None
    if context.get("USERDATA_ENCODING", "").lower() == "base64":
        return data
    return base64.b64encode(data.encode()).decode()
