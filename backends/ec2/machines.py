"""EC2 instances as machines: listing, launch (with a client token per launch), lifecycle actions, updates."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backends.ec2 import images, machine_memo, mapping, to_ec2, volumes
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.model import ActionMethod, Limits, Machine, MachineAction, MachineSpec, MachineState, MachineUpdate

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend

_S = MachineState


@dataclass(frozen=True, slots=True)
class Act:
    """How a lifecycle action runs: the EC2 call, where its answer is, and the states that decide before it."""

    operation: str
    answer: str | None
    done: frozenset[MachineState]
    refused: frozenset[MachineState]
    params: tuple[tuple[str, Any], ...] = ()  # fixed arguments of the call
    #: Whether the instance is read first (for ``done`` and ``refused``). Without: one call, whose answer gives
    #: the states, and the machine returned holds only those (the Backend contract allows it).
    read_first: bool = True


#: Canonical action -> its call. ``done``: already there, the machine is returned as it is (EC2's idempotence).
#: ``refused``: EC2's IncorrectInstanceState, answered before calling because not every cloud checks (moto
#: restarts a terminated instance and "reboots" a stopped one into running). Any other state: EC2 decides.
#: TerminateInstances is sent without reading first: every cloud takes it in any state (a terminated instance
#: stays terminated), and it answers with the previous and current states.
ACTIONS: Mapping[MachineAction, Act] = {
    MachineAction.START: Act(
        "start_instances",
        "StartingInstances",
        done=frozenset({_S.PENDING, _S.RUNNING, _S.REBOOTING}),
        refused=frozenset({_S.STOPPING, _S.TERMINATING, _S.TERMINATED}),
    ),
    MachineAction.STOP: Act(
        "stop_instances",
        "StoppingInstances",
        done=frozenset({_S.STOPPING, _S.STOPPED, _S.SUSPENDED}),
        refused=frozenset({_S.PENDING, _S.TERMINATING, _S.TERMINATED}),
    ),
    MachineAction.REBOOT: Act(
        "reboot_instances",
        None,
        done=frozenset({_S.REBOOTING}),
        refused=frozenset({_S.PENDING, _S.STOPPING, _S.STOPPED, _S.SUSPENDED, _S.TERMINATING, _S.TERMINATED}),
    ),
    # Hibernation: AWS refuses it (UnsupportedHibernationConfiguration) for an instance not launched for it.
    MachineAction.SUSPEND: Act(
        "stop_instances",
        "StoppingInstances",
        done=frozenset({_S.SUSPENDED}),
        refused=frozenset({_S.PENDING, _S.STOPPING, _S.STOPPED, _S.TERMINATING, _S.TERMINATED}),
        params=(("Hibernate", True),),
    ),
    MachineAction.RESUME: Act(
        "start_instances",
        "StartingInstances",
        done=frozenset({_S.PENDING, _S.RUNNING, _S.REBOOTING}),
        refused=frozenset({_S.STOPPING, _S.TERMINATING, _S.TERMINATED}),
    ),
    MachineAction.TERMINATE: Act(
        "terminate_instances",
        "TerminatingInstances",
        done=frozenset({_S.TERMINATING, _S.TERMINATED}),
        refused=frozenset(),
        read_first=False,
    ),
}
#: EC2 changes an instance's type or user data only while it is stopped.
UPDATABLE_STATES = frozenset({MachineState.STOPPED})


def _machines(b: EC2Backend, reservations: list[dict[str, Any]]) -> list[Machine]:
    flavors = b.flavors()

    def map_all() -> list[Machine]:
        return [mapping.machine(i, b.gateway_zone, flavors) for r in reservations for i in r.get("Instances") or ()]

    return machine_memo.MEMO.machines(reservations, (b, flavors), map_all)


def list_machines(b: EC2Backend) -> list[Machine]:
    return _machines(b, b.pages("describe_instances", "Reservations", "machine"))


def get_machines(b: EC2Backend, native_ids: list[str]) -> list[Machine]:
    return _machines(b, b.named("describe_instances", "Reservations", "machine", "instance-id", native_ids))


def instance(b: EC2Backend, native_id: str) -> dict[str, Any]:
    """The raw EC2 item of one instance."""
    answer = b.call("describe_instances", "machine", InstanceIds=[native_id])
    for r in answer.get("Reservations") or ():
        for item in r.get("Instances") or ():
            if item.get("InstanceId") == native_id:
                return dict(item)
    raise NotFound(f"The instance ID '{native_id}' does not exist", kind="machine")


def machine(b: EC2Backend, native_id: str) -> Machine:
    """One machine, read by id."""
    return mapping.machine(instance(b, native_id), b.gateway_zone, b.flavors())


def _block_device_mappings(b: EC2Backend, spec: MachineSpec) -> list[dict[str, Any]]:
    """EC2's BlockDeviceMappings for the launch's disks; the boot disk is the AMI's root device."""
    out = []
    for d in spec.block_devices:
        device = d.device
        if d.boot:
            device = images.image(b, spec.image_id).root_device
            if not device:
                raise InvalidParameter(
                    f"The image '{spec.image_id}' names no root device to resize.", kind="machine", reason="device"
                )
        ebs = {
            "DeleteOnTermination": d.delete_on_termination,
            **volumes.volume_type(b, d.tier, d.size_gb),
            **({"VolumeSize": d.size_gb} if d.size_gb else {}),
            **({"SnapshotId": d.snapshot_id} if d.snapshot_id and not d.boot else {}),
        }
        out.append({"DeviceName": device, "Ebs": ebs})
    return out


def create_machines(b: EC2Backend, spec: MachineSpec) -> list[Machine]:
    flavors = b.flavors()
    # EC2 answers an unknown type with InvalidParameterValue (no kind); the catalogue answers precisely.
    if spec.flavor_id not in flavors:
        raise NotFound(f"The instance type '{spec.flavor_id}' is not offered.", kind="flavor")
    params: dict[str, Any] = {
        "ImageId": spec.image_id,
        "InstanceType": spec.flavor_id,
        "MinCount": spec.count,
        "MaxCount": spec.count,
        # The translator's idempotency key: EC2 answers a repeat (a retry after a lost answer) with the first launch.
        "ClientToken": spec.idempotency_key or b.client_token(spec),
        "TagSpecifications": to_ec2.name_tags("instance", spec.name, spec.tags),
    }
    if spec.subnet_id:
        params["SubnetId"] = spec.subnet_id
    if spec.zone is not None or not spec.subnet_id:
        params["Placement"] = {"AvailabilityZone": b.ec2_zone(spec.zone)}
    if spec.key_name is not None:
        params["KeyName"] = spec.key_name
    if spec.security_group_ids:
        params["SecurityGroupIds"] = list(spec.security_group_ids)
    if spec.user_data:
        params["UserData"] = spec.user_data
    if spec.hibernation:
        params["HibernationOptions"] = {"Configured": True}
    if spec.block_devices:
        params["BlockDeviceMappings"] = _block_device_mappings(b, spec)
    answer = b.call("run_instances", "machine", **params)
    return [mapping.machine(i, b.gateway_zone, flavors) for i in answer.get("Instances") or ()]


def act_on_machine(
    b: EC2Backend, native_id: str, action: MachineAction, method: ActionMethod = ActionMethod.GRACEFUL
) -> Machine:
    """EC2's lifecycle calls (ACTIONS); a hard stop is StopInstances with Force (EC2 has no hard reboot)."""
    act = ACTIONS.get(action)
    if act is None or (method is ActionMethod.HARD and action != MachineAction.STOP):
        raise b._unsupported(f"machine action {method} {action}")
    params: dict[str, Any] = {"InstanceIds": [native_id], **dict(act.params)}
    if method is ActionMethod.HARD:
        params["Force"] = True
    if not act.read_first:
        changes = b.call(act.operation, "machine", **params).get(act.answer or "") or []
        if changes:  # PERF: one call (the machine's other fields are not read: see the Backend contract)
            found = _state(changes[0], "PreviousState")
            # Already there, the action did nothing (moto answers "shutting-down" for a terminated instance).
            after = found if found in act.done else _state(changes[0], "CurrentState")
            return Machine(native_id=native_id, state=after, previous_state=found, updated=time.time())
        return machine(b, native_id)  # a cloud answering without the states: the state found is not known
    current = machine(b, native_id)
    before = current.previous_state = current.state
    if before in act.done:
        return current
    if before in act.refused:
        raise Conflict(
            f"The instance '{native_id}' is {before}: it cannot {action} now.", kind="machine", reason="state"
        )
    answer = b.call(act.operation, "machine", **params)
    changes = (answer.get(act.answer) or []) if act.answer else []
    if changes:
        current.state = _state(changes[0], "CurrentState")
    elif action == MachineAction.REBOOT:
        current.state = MachineState.REBOOTING  # EC2 answers RebootInstances with no state: it is rebooting
    current.updated = time.time()
    return current


def _state(change: Mapping[str, Any], which: str) -> MachineState:
    """A state of an action's answer (``CurrentState`` or ``PreviousState`` of an InstanceStateChange)."""
    return mapping.machine_state({"State": change.get(which) or {}})


def update_machine(b: EC2Backend, native_id: str, update: MachineUpdate) -> Machine:
    current = machine(b, native_id)
    changes: list[dict[str, Any]] = []
    if update.flavor_id is not None:
        if update.flavor_id not in b.flavors():
            raise NotFound(f"The instance type '{update.flavor_id}' is not offered.", kind="flavor")
        changes.append({"InstanceType": {"Value": update.flavor_id}})
    if update.user_data is not None:
        changes.append({"UserData": {"Value": to_ec2.user_data_blob(update.user_data)}})
    if changes and current.state not in UPDATABLE_STATES:
        raise Conflict(
            f"The instance '{native_id}' is {current.state}; it must be stopped to change it.",
            kind="machine",
            reason="state",
        )
    for change in changes:
        b.call("modify_instance_attribute", "machine", InstanceId=native_id, **change)
    if update.name:
        b.call("create_tags", "machine", Resources=[native_id], Tags=[{"Key": "Name", "Value": update.name}])
    elif update.name == "":
        b.call("delete_tags", "machine", Resources=[native_id], Tags=[{"Key": "Name"}])
    return machine(b, native_id)


def limits(b: EC2Backend) -> Limits:
    names = list(mapping.LIMIT_ATTRIBUTES)
    answer = b.call("describe_account_attributes", "account", AttributeNames=names)
    return mapping.limits(answer.get("AccountAttributes") or [])


def console_output(b: EC2Backend, native_id: str) -> str:
    # botocore decodes EC2's base64 Output already (handlers.decode_console_output).
    return str(b.call("get_console_output", "machine", InstanceId=native_id).get("Output") or "")


def user_data(b: EC2Backend, native_id: str) -> str | None:
    # DescribeInstances does not carry user data; this answer's value is already base64 text.
    found = b.call("describe_instance_attribute", "machine", InstanceId=native_id, Attribute="userData")
    return (found.get("UserData") or {}).get("Value") or None
