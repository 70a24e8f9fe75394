"""What tools ask of one instance besides DescribeInstances: status checks, attributes, console output."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

from frontends.ec2.actions.base import Call, Handler, describe_resources, reader, writer
from frontends.ec2.actions.instances import (
    EC2_STATES,
    Related,
    block_device_mappings,
    ec2_state,
    flavor_id_of,
)
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.paging import refuse_with_ids
from frontends.ec2.vocabulary import root_device
from translator.model import Machine, MachineState, MachineUpdate

# -- DescribeInstanceStatus ----------------------------------------------------------------------------

#: canonical state -> (instance and system status, reachability detail); None = not-applicable.
STATUS_CHECKS: dict[MachineState, tuple[str, str] | None] = {
    MachineState.PENDING: ("initializing", "initializing"),
    MachineState.RUNNING: ("ok", "passed"),
    MachineState.REBOOTING: ("ok", "passed"),
    MachineState.STOPPING: None,
    MachineState.STOPPED: None,
    MachineState.SUSPENDED: None,
    MachineState.PAUSED: None,  # shown stopped
    MachineState.CAPTURING: ("ok", "passed"),  # shown running
    MachineState.TERMINATING: None,
    MachineState.TERMINATED: None,
    MachineState.ERROR: ("impaired", "failed"),
}

STATUS_FILTERS = table(
    {
        "availability-zone": "AvailabilityZone",
        "instance-state-code": "InstanceState.Code",
        "instance-state-name": "InstanceState.Name",
        "instance-status.reachability": "InstanceStatus.Details[].Status",
        "instance-status.status": "InstanceStatus.Status",
        "system-status.reachability": "SystemStatus.Details[].Status",
        "system-status.status": "SystemStatus.Status",
        "event.code": "Events[].Code",
        "event.description": "Events[].Description",
        "event.instance-event-id": "Events[].InstanceEventId",
        "event.not-after": "Events[].NotAfter",
        "event.not-before": "Events[].NotBefore",
        "event.not-before-deadline": "Events[].NotBeforeDeadline",
        "instance-id": "InstanceId",
    },
    tags=False,
)


def _status(check: tuple[str, str] | None) -> dict[str, Any]:
    if check is None:
        return {"Status": "not-applicable", "Details": []}
    return {"Status": check[0], "Details": [{"Name": "reachability", "Status": check[1]}]}


#: States DescribeInstanceStatus shows without IncludeAllInstances: those EC2 names "running".
_RUNNING = {str(state) for state, (name, _code) in EC2_STATES.items() if name == "running"}


def _status_item(m: Machine) -> dict[str, Any]:
    return {
        "AvailabilityZone": m.zone,
        "InstanceId": public_id("machine", m.id),
        "InstanceState": ec2_state(m.state),
        "InstanceStatus": _status(STATUS_CHECKS[m.state]),
        "SystemStatus": _status(STATUS_CHECKS[m.state]),
        "Events": [],
    }


def describe_instance_status(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    ids = args.get("InstanceIds")
    refuse_with_ids(args, ids, "instancesSet")
    match = None if args.get("IncludeAllInstances") else {"state": _RUNNING}
    items, token = describe_resources(
        call, "DescribeInstanceStatus", "machine", args, _status_item, STATUS_FILTERS, ids=ids, match=match
    )
    return {"InstanceStatuses": items, "NextToken": token}


# -- DescribeInstanceAttribute / ModifyInstanceAttribute ------------------------------------------------

Reader = Callable[[Call, Machine], dict[str, Any]]


def _groups(call: Call, m: Machine) -> dict[str, Any]:
    return {"Groups": Related.of(call, [m]).groups(m)}


def _user_data_attribute(call: Call, m: Machine) -> dict[str, Any]:
    value = call.translator.machine_user_data(call.principal, m.id)
    return {"UserData": {"Value": value} if value else {}}


#: EC2 attribute name -> the output member it fills. One row per attribute of the API reference.
ATTRIBUTES: dict[str, Reader] = {
    "instanceType": lambda call, m: {"InstanceType": {"Value": m.flavor_name}},
    "kernel": lambda call, m: {"KernelId": {}},
    "ramdisk": lambda call, m: {"RamdiskId": {}},
    "userData": _user_data_attribute,
    "disableApiTermination": lambda call, m: {"DisableApiTermination": {"Value": False}},
    "instanceInitiatedShutdownBehavior": lambda call, m: {"InstanceInitiatedShutdownBehavior": {"Value": "stop"}},
    "rootDeviceName": lambda call, m: {"RootDeviceName": {"Value": root_device(m)}},
    "blockDeviceMapping": lambda call, m: {"BlockDeviceMappings": block_device_mappings(m, Related.of(call, [m]))},
    "productCodes": lambda call, m: {"ProductCodes": []},
    "sourceDestCheck": lambda call, m: {"SourceDestCheck": {"Value": True}},
    "groupSet": _groups,
    "ebsOptimized": lambda call, m: {"EbsOptimized": {"Value": False}},
    "sriovNetSupport": lambda call, m: {"SriovNetSupport": {}},
    "enaSupport": lambda call, m: {"EnaSupport": {"Value": True}},
    "enclaveOptions": lambda call, m: {"EnclaveOptions": {"Enabled": False}},
    "disableApiStop": lambda call, m: {"DisableApiStop": {"Value": False}},
}


def _one_machine(call: Call, instance_id: str | None) -> Machine:
    if not instance_id:
        raise EC2Error("MissingParameter", "The request must contain the parameter InstanceId")
    (gid,) = resolve_ids(call.translator, "machine", [instance_id])
    (machine,) = call.translator.get_many(call.principal, "machine", [gid])
    return machine


def describe_instance_attribute(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    attribute = args.get("Attribute") or ""
    read = ATTRIBUTES.get(attribute)
    if read is None:
        raise EC2Error("InvalidParameterValue", f"Value ({attribute}) for parameter attribute is invalid.")
    m = _one_machine(call, args.get("InstanceId"))
    return {"InstanceId": public_id("machine", m.id), **read(call, m)}


#: Attributes the gateway reports but cannot change: name -> (argument, the only value accepted).
FIXED_ATTRIBUTES: dict[str, tuple[str, Any]] = {
    "sourceDestCheck": ("SourceDestCheck", True),
    "disableApiTermination": ("DisableApiTermination", False),
    "disableApiStop": ("DisableApiStop", False),
    "ebsOptimized": ("EbsOptimized", False),
    "enaSupport": ("EnaSupport", True),
    "instanceInitiatedShutdownBehavior": ("InstanceInitiatedShutdownBehavior", "stop"),
}


def _flat_value(args: dict[str, Any], attribute: str) -> Any:
    """The value of the old ``Attribute=...&Value=...`` form, if that form names ``attribute``."""
    return args.get("Value") if args.get("Attribute") == attribute else None


def _user_data(args: dict[str, Any]) -> str | None:
    """User data as base64 text (the canonical form), from the blob or the flat form."""
    blob = (args.get("UserData") or {}).get("Value")
    if blob is None:
        flat = _flat_value(args, "userData")
        return None if flat is None else flat
    raw = blob if isinstance(blob, bytes) else str(blob).encode()
    return base64.b64encode(raw).decode("ascii")


def modify_instance_attribute(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    m = _one_machine(call, args.get("InstanceId"))
    instance_type = (args.get("InstanceType") or {}).get("Value") or _flat_value(args, "instanceType")
    user_data = _user_data(args)
    for attribute, (member, only) in FIXED_ATTRIBUTES.items():
        given = (args.get(member) or {}).get("Value")
        if given is None:
            given = _flat_value(args, attribute)
        if given is not None and str(given).lower() != str(only).lower():
            raise EC2Error("UnsupportedOperation", f"The attribute {attribute} cannot be changed on this cloud.")
    if args.get("Groups") or args.get("BlockDeviceMappings") or args.get("Kernel") or args.get("Ramdisk"):
        raise EC2Error("UnsupportedOperation", "Only instanceType and userData can be changed on this cloud.")
    if instance_type is None and user_data is None:
        return {}
    flavor_id = None
    if instance_type is not None:
        flavor_id = flavor_id_of(call, instance_type)
    if m.state != MachineState.STOPPED:
        raise EC2Error(
            "IncorrectInstanceState",
            f"The instance '{public_id('machine', m.id)}' is not in the 'stopped' state.",
        )
    call.translator.update_machine(call.principal, m.id, MachineUpdate(flavor_id=flavor_id, user_data=user_data))
    return {}


# -- GetConsoleOutput ----------------------------------------------------------------------------------


def get_console_output(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    m = _one_machine(call, args.get("InstanceId"))
    text = call.translator.console_output(call.principal, m.id)
    return {
        "InstanceId": public_id("machine", m.id),
        "Output": base64.b64encode(text.encode("utf-8")).decode("ascii") if text else None,
        "Timestamp": time.time(),
    }


ACTIONS: dict[str, Handler] = {
    "DescribeInstanceStatus": reader(describe_instance_status),
    "DescribeInstanceAttribute": reader(describe_instance_attribute),
    "ModifyInstanceAttribute": writer(modify_instance_attribute),
    "GetConsoleOutput": reader(get_console_output),
}
