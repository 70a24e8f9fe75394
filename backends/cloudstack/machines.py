"""CloudStack virtual machines as machines: listing, deploy, lifecycle actions.

VMs are read as CloudStack's JSON (libcloud's ``Node`` folds ``Error`` into terminated and ``Starting`` into
rebooting). Deploys and actions are sent without waiting for their jobs: the VM's own state says where it is,
and the translator re-reads until it settles.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from backends.cloudstack import catalog, networks, tags, volumes
from translator.errors import CloudgateError, Conflict, Forbidden, InvalidParameter, NotFound, Unsupported
from translator.model import (
    ActionMethod,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkInterface,
)

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

#: ``com.cloud.vm.VirtualMachine.State``: every state CloudStack reports for a VM.
NATIVE_STATES = frozenset(
    {
        "Starting",
        "Running",
        "Stopping",
        "Stopped",
        "Destroyed",
        "Expunging",
        "Migrating",
        "Error",
        "Unknown",
        "Shutdown",
        "Restoring",
    }
)

#: CloudStack VM state -> canonical state (one row each; libcloud's map folds Error into terminated).
STATE_MAP: Mapping[str, MachineState] = {
    "Starting": MachineState.PENDING,
    "Running": MachineState.RUNNING,
    "Migrating": MachineState.RUNNING,  # live migration: the guest keeps running
    "Stopping": MachineState.STOPPING,
    "Stopped": MachineState.STOPPED,
    "Shutdown": MachineState.STOPPED,  # powered off from inside the guest
    "Restoring": MachineState.STOPPED,  # powered off while its disks are restored from a backup
    "Destroyed": MachineState.TERMINATED,  # destroyed, recoverable by an administrator until expunged
    "Expunging": MachineState.TERMINATED,  # destroyed, its disks being removed
    "Error": MachineState.ERROR,
    "Unknown": MachineState.ERROR,  # its host does not report it
}

#: action -> canonical state the VM is in -> CloudStack command (None: already there). A state missing from
#: a row is ``Conflict(reason="state")``.
ACTIONS: Mapping[MachineAction, Mapping[MachineState, str | None]] = {
    MachineAction.START: {
        MachineState.STOPPED: "startVirtualMachine",
        MachineState.PENDING: None,
        MachineState.RUNNING: None,
    },
    MachineAction.STOP: {
        MachineState.RUNNING: "stopVirtualMachine",
        MachineState.PENDING: "stopVirtualMachine",
        MachineState.ERROR: "stopVirtualMachine",
        MachineState.STOPPING: None,
        MachineState.STOPPED: None,
    },
    MachineAction.REBOOT: {MachineState.RUNNING: "rebootVirtualMachine"},  # hard: ``forced`` (stop, start)
    MachineAction.TERMINATE: {
        **{s: "destroyVirtualMachine" for s in MachineState if s is not MachineState.TERMINATED},
        MachineState.TERMINATED: None,
    },
}

#: The tag naming the create that made a VM (the translator's idempotency key); the VM's host name carries a
#: digest of it too, set by deployVirtualMachine itself, so a retry finds the VM even before it is tagged.
IDEMPOTENCY_TAG = tags.IDEMPOTENCY_TAG
GONE = frozenset({"Destroyed", "Expunging"})


def machine_state(native: str) -> MachineState:
    return STATE_MAP.get(native, MachineState.ERROR)


def to_machine(vm: Mapping[str, Any], volume_ids: list[str] | None = None) -> Machine:
    """A canonical machine from CloudStack's virtualmachine JSON."""
    nics = vm.get("nic") or []
    primary = next((n for n in nics if n.get("isdefault")), nics[0] if nics else {})
    created = catalog.parse_time(vm.get("created"))
    state = machine_state(str(vm.get("state", "Unknown")))
    if state is MachineState.STOPPING and vm.get(DESTROYING):
        state = MachineState.TERMINATING
    if vm.get(RESETTING) and state in (MachineState.STOPPING, MachineState.STOPPED, MachineState.PENDING):
        state = MachineState.REBOOTING
    ordered = [primary, *(n for n in nics if n is not primary)] if primary else []
    interfaces = [] if state is MachineState.TERMINATED else [to_interface(n, vm, n is primary) for n in ordered]
    return Machine(
        native_id=vm["id"],
        name=vm.get("displayname") or vm.get("name", ""),
        created=created,
        state=state,
        image_id=vm.get("templateid"),
        flavor_id=vm.get("serviceofferingid"),
        flavor_name=vm.get("serviceofferingname", ""),
        vcpus=int(vm.get("cpunumber") or 0),
        memory_mb=int(vm.get("memory") or 0),
        zone=vm.get("zonename", ""),
        key_name=vm.get("keypair") or None,
        security_group_ids=[g["id"] for g in vm.get("securitygroup") or []],
        network_id=primary.get("networkid"),
        subnet_id=primary.get("networkid"),  # a CloudStack network is its own one subnet
        private_ip=primary.get("ipaddress"),
        public_ip=vm.get("publicip") or None,
        interfaces=interfaces,
        volume_ids=[] if state is MachineState.TERMINATED else list(volume_ids or []),
        root_device=volumes.device_name(0),
        user_data=vm.get("userdata") or None,
        platform="windows" if "windows" in str(vm.get("ostypename", "")).lower() else "linux",
        launched=created,
        state_reason="CloudStack reports the VM in error" if state is MachineState.ERROR else "",
        launch_key=tags.marks(vm).get(IDEMPOTENCY_TAG, ""),
        tags=tags.user_tags(vm),
    )


def to_interface(nic: Mapping[str, Any], vm: Mapping[str, Any], primary: bool) -> NetworkInterface:
    """A VM's NIC; static NAT binds the VM's public address to its primary one."""
    return NetworkInterface(
        native_id=nic["id"],
        network_id=nic.get("networkid"),
        subnet_id=nic.get("networkid"),
        private_ip=nic.get("ipaddress"),
        public_ip=(vm.get("publicip") or None) if primary else None,
        mac=str(nic.get("macaddress", "")).lower(),
    )


# -- terminated VMs, kept a while after CloudStack forgets them (expunged) --------------------------------


def _gone_key(b: CloudStackBackend) -> str:
    return f"cg:cloudstack:{{{b.account.key}}}:terminated"


#: Set on a VM's JSON that CloudStack still shows ``Stopping`` after we asked to destroy it: destroying stops the
#: VM first, and without this mark it would read as stopping instead of terminating.
DESTROYING = "_cloudgate_destroying"


def marked(vm: dict[str, Any], gone: Mapping[str, Any]) -> dict[str, Any]:
    """``vm``, marked as being destroyed when it is among the remembered destroyed VMs ``gone``."""
    return {**vm, DESTROYING: True} if vm.get("state") == "Stopping" and vm["id"] in gone else vm


#: Set on a VM's JSON while a hard reboot we sent runs: CloudStack (4.17+, ``forced``) stops and starts the VM,
#: which then reads as rebooting rather than stopping, stopped and starting.
RESETTING = "_cloudgate_resetting"


def _resets_key(b: CloudStackBackend) -> str:
    return f"cg:cloudstack:{{{b.account.key}}}:resetting"


def remember_reset(b: CloudStackBackend, native_id: str, jobid: str) -> None:
    b.services.redis.hset(_resets_key(b), native_id, json.dumps({"at": time.time(), "jobid": jobid}))


def forget_reset(b: CloudStackBackend, native_id: str) -> None:
    b.services.redis.hdel(_resets_key(b), native_id)


def mark_resets(b: CloudStackBackend, vms: dict[str, dict[str, Any]]) -> None:
    """Mark the VMs whose hard reboot is under way; forget those whose reboot job ended (or is too old)."""
    pending = b.services.redis.hgetall(_resets_key(b))
    for raw_id, raw in pending.items():
        native_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
        record = json.loads(raw)
        ended = time.time() - record["at"] > b.opts.job_timeout
        if not ended and native_id not in vms:
            continue
        if not ended:
            try:
                job = b.cloud.raw("queryAsyncJobResult", {"jobid": record["jobid"]}, kind=None, what="reboot")
            except (NotFound, InvalidParameter, Forbidden):  # a job CloudStack no longer knows has ended
                job = {"jobstatus": 2}
            ended = int(job.get("jobstatus", 0)) != 0
        if ended:
            forget_reset(b, native_id)
        else:
            vms[native_id] = {**vms[native_id], RESETTING: True}


def remember_terminated(b: CloudStackBackend, vm: Mapping[str, Any]) -> None:
    """Keep a destroyed VM's last JSON for ``terminated_retention`` seconds (listed as Destroyed)."""
    if b.opts.terminated_retention <= 0:
        return
    record = json.dumps({"at": time.time(), "vm": {**vm, "state": "Destroyed"}})
    b.services.redis.hset(_gone_key(b), vm["id"], record)


def terminated(b: CloudStackBackend) -> dict[str, dict[str, Any]]:
    """Destroyed VMs still within the retention, by id; older ones are dropped."""
    if b.opts.terminated_retention <= 0:
        return {}
    found, stale = {}, []
    horizon = time.time() - b.opts.terminated_retention
    for native_id, raw in b.services.redis.hgetall(_gone_key(b)).items():
        record = json.loads(raw)
        key = native_id.decode() if isinstance(native_id, bytes) else native_id
        if record["at"] < horizon:
            stale.append(key)
        else:
            found[key] = record["vm"]
    if stale:
        b.services.redis.hdel(_gone_key(b), *stale)
    return found


# -- reads ------------------------------------------------------------------------------------------------


def _vms(b: CloudStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return b.cloud.listing("listVirtualMachines", "virtualmachine", params, kind="machine", what="list VMs")


def list_machines(b: CloudStackBackend) -> list[Machine]:
    gone = terminated(b)
    vms = {vm["id"]: marked(vm, gone) for vm in _vms(b)}
    mark_resets(b, vms)
    for native_id, vm in gone.items():
        vms.setdefault(native_id, vm)
    attached = volumes.volumes_by_vm(b)
    return [to_machine(vm, attached.get(vm["id"])) for vm in vms.values()]


def get_vm(b: CloudStackBackend, native_id: str) -> dict[str, Any] | None:
    """One VM's JSON (a recently destroyed one included), or None."""
    try:
        found = _vms(b, {"id": native_id})
    except (NotFound, InvalidParameter):  # CloudStack's PARAM_ERROR for an id that is not a VM's
        found = []
    match = next((vm for vm in found if vm["id"] == native_id), None)
    gone = terminated(b)
    if match is None:
        return gone.get(native_id)
    one = {native_id: marked(match, gone)}
    mark_resets(b, one)
    return one[native_id]


def need_vm(b: CloudStackBackend, native_id: str) -> dict[str, Any]:
    vm = get_vm(b, native_id)
    if vm is None:
        raise NotFound(f"The machine '{native_id}' does not exist.", kind="machine")
    return vm


def get_machines(b: CloudStackBackend, native_ids: list[str]) -> list[Machine]:
    found = (get_vm(b, native_id) for native_id in dict.fromkeys(native_ids))
    return [to_machine(vm, volumes.volumes_by_vm(b, vm["id"]).get(vm["id"])) for vm in found if vm is not None]


# -- deploy -----------------------------------------------------------------------------------------------


def host_prefix(key: str) -> str:
    """The host-name prefix of a create's VMs: a digest of its key (CloudStack host names are letters, digits
    and hyphens, at most 63)."""
    return "cg-" + hashlib.sha256(key.encode()).hexdigest()[:20] + "-"


def launched_with(b: CloudStackBackend, key: str) -> dict[int, dict[str, Any]]:
    """The live VMs an earlier create with this key made (its answer lost), by their index in it."""
    if not key:
        return {}
    prefix = host_prefix(key)
    found = {}
    # PERF: one listing per create; ``name`` filters differ between CloudStack versions (substring or exact).
    for vm in _vms(b):
        name = str(vm.get("name", ""))
        index = name.removeprefix(prefix)
        if name.startswith(prefix) and index.isdigit() and vm.get("state") not in GONE:
            found[int(index)] = vm
    return found


def _check_references(b: CloudStackBackend, spec: MachineSpec) -> None:
    """Missing references are NotFound of their kind before anything is deployed (CloudStack says 431 for all)."""
    if spec.count < 1:
        raise InvalidParameter("The count of machines must be at least 1.", kind="machine")
    tags.refuse_reserved(dict(spec.tags))
    if not any(f.native_id == spec.flavor_id for f in b.list_flavors()):
        raise NotFound(f"The flavor '{spec.flavor_id}' does not exist.", kind="flavor")
    if not b.get_images([spec.image_id]):
        raise NotFound(f"The image '{spec.image_id}' does not exist.", kind="image")
    if spec.key_name:
        pairs = b.cloud.listing("listSSHKeyPairs", "sshkeypair", {"name": spec.key_name}, kind="key_pair", what="key")
        if not any(p.get("name") == spec.key_name for p in pairs):
            raise NotFound(f"The key pair '{spec.key_name}' does not exist.", kind="key_pair")
    if spec.security_group_ids:
        known = {
            g["id"]
            for g in b.cloud.listing("listSecurityGroups", "securitygroup", kind="security_group", what="groups")
        }
        missing = [g for g in spec.security_group_ids if g not in known]
        if missing:
            raise NotFound(f"The security group '{missing[0]}' does not exist.", kind="security_group")
    extra = [d for d in spec.block_devices if not d.boot]
    if extra:
        raise Unsupported("This backend does not launch machines with extra disks yet.", reason="block_device")


def deploy_params(
    b: CloudStackBackend, spec: MachineSpec, index: int, zone: str | None = None, network: str | None = None
) -> dict[str, Any]:
    """``zone`` and ``network``: where ``networks.placement`` puts the create (the spec's zone and CloudStack's
    choice of network when not given)."""
    params: dict[str, Any] = {
        "zoneid": catalog.zone_id(b, zone or spec.zone),
        "networkids": network,
        "serviceofferingid": spec.flavor_id,
        "templateid": spec.image_id,
        "displayname": spec.name or None,
        "name": host_prefix(spec.idempotency_key) + str(index) if spec.idempotency_key else None,
        "keypair": spec.key_name,
        "securitygroupids": ",".join(spec.security_group_ids) or None,
        "userdata": spec.user_data,  # base64 already, as CloudStack wants it
        "startvm": "true",
    }
    boot = next((d for d in spec.block_devices if d.boot and d.size_gb), None)
    if boot is not None:
        params["rootdisksize"] = boot.size_gb
    return params


def create_machines(b: CloudStackBackend, spec: MachineSpec) -> list[Machine]:
    """Deploy ``spec.count`` VMs, all or none; a create repeated with its key finds what the first made and
    deploys only the missing ones."""
    earlier = launched_with(b, spec.idempotency_key)
    zone, network = spec.zone, None
    if len(earlier) < spec.count:
        _check_references(b, spec)
        zone, network = networks.placement(b, spec.subnet_id, spec.zone)
    made: dict[int, str] = {i: vm["id"] for i, vm in earlier.items()}
    try:
        for i in range(spec.count):
            if i not in made:
                params = deploy_params(b, spec, i, zone, network)
                target = params["name"]  # a noted deploy of this host name is not sent again
                try:
                    answer = b.cloud.start("deployVirtualMachine", params, kind="machine", what="deploy", target=target)
                except InvalidParameter:
                    # CloudStack keeps a host name unique in a network: another attempt of this create (its
                    # answer lost, or still in flight when this one looked) deployed this index. That VM is it.
                    found = launched_with(b, spec.idempotency_key).get(i) if spec.idempotency_key else None
                    if found is None:
                        raise
                    earlier[i], made[i] = found, found["id"]
                    continue
                made[i] = answer["id"]
    except CloudgateError:
        for native_id in made.values():
            if native_id not in {vm["id"] for vm in earlier.values()}:
                _destroy_quietly(b, native_id)
        raise
    vms = [need_vm(b, made[i]) for i in range(spec.count)]
    wanted = {**({IDEMPOTENCY_TAG: spec.idempotency_key} if spec.idempotency_key else {}), **dict(spec.tags)}
    # One createTags puts the key and the user's tags together: a VM with the key has them all.
    untagged = [vm["id"] for vm in vms if not (tags.marks(vm) if spec.idempotency_key else tags.user_tags(vm))]
    if wanted and untagged:
        tags.mark(b, "machine", untagged, wanted)
        vms = [need_vm(b, made[i]) for i in range(spec.count)]
    return [to_machine(vm) for vm in vms]


def _destroy_quietly(b: CloudStackBackend, native_id: str) -> None:
    """Roll back one VM of a create that failed part-way (best effort: the failure is what is reported)."""
    with contextlib.suppress(CloudgateError):
        b.cloud.start("destroyVirtualMachine", {"id": native_id, "expunge": "true"}, kind="machine", what="roll back")


# -- actions ----------------------------------------------------------------------------------------------


def act_on_machine(b: CloudStackBackend, native_id: str, action: MachineAction, method: ActionMethod) -> Machine:
    row = ACTIONS.get(action)
    if row is None:
        raise Unsupported(f"CloudStack machines cannot {action}.", kind="machine", reason=str(action))
    sent = next(c for c in row.values() if c)
    if b.cloud.resume(sent, native_id, kind="machine", what=action.value):  # an earlier attempt sent it
        return to_machine(need_vm(b, native_id))  # the state it found is that attempt's: not known here
    vm = need_vm(b, native_id)
    state = machine_state(str(vm.get("state")))
    if state not in row:
        raise Conflict(f"The machine '{native_id}' cannot {action} while {state}.", kind="machine", reason="state")
    command = row[state]
    if command is None:
        return replace(to_machine(vm), previous_state=state)
    params: dict[str, Any] = {"id": native_id}
    if command in ("stopVirtualMachine", "rebootVirtualMachine") and method is ActionMethod.HARD:
        params["forced"] = "true"  # stop: power cut; reboot (CloudStack 4.17+): stop, then start
    if command == "destroyVirtualMachine":
        params["expunge"] = "true" if b.opts.expunge else None
        remember_terminated(b, vm)
    forget_reset(b, native_id)
    answer = b.cloud.start(command, params, kind="machine", what=action.value, target=native_id)
    if params.get("forced") and command == "rebootVirtualMachine":
        remember_reset(b, native_id, answer["jobid"])
    return replace(to_machine(get_vm(b, native_id) or vm), previous_state=state)


# -- updates ----------------------------------------------------------------------------------------------


def update_machine(b: CloudStackBackend, native_id: str, update: MachineUpdate) -> Machine:
    """A stopped VM's service offering (changeServiceForVirtualMachine), display name and user data
    (updateVirtualMachine); both answer at once, no job."""
    vm = need_vm(b, native_id)
    state = machine_state(str(vm.get("state")))
    if state is not MachineState.STOPPED:
        raise Conflict(f"The machine '{native_id}' must be stopped, not {state}.", kind="machine", reason="state")
    if update.flavor_id is not None and update.flavor_id != vm.get("serviceofferingid"):
        if not any(f.native_id == update.flavor_id for f in b.list_flavors()):
            raise NotFound(f"The flavor '{update.flavor_id}' does not exist.", kind="flavor")
        params = {"id": native_id, "serviceofferingid": update.flavor_id}
        b.cloud.call("changeServiceForVirtualMachine", params, kind="machine", what="resize")
    changes = {"displayname": update.name or None, "userdata": update.user_data}
    if any(v is not None for v in changes.values()):
        b.cloud.call("updateVirtualMachine", {"id": native_id, **changes}, kind="machine", what="update")
    vm = need_vm(b, native_id)
    return to_machine(vm, volumes.volumes_by_vm(b, native_id).get(native_id))
