"""Instances: RunInstances, DescribeInstances and the lifecycle actions."""

from __future__ import annotations

from typing import Any

from frontends.ec2.actions.base import Call, Handler, reader, tag_list, tags_from_specs, when, writer
from frontends.ec2.errors import EC2Error
from frontends.ec2.ids import public_id, resolve_ids
from translator.ids import gateway_id
from translator.model import Machine, MachineAction, MachineSpec, MachineState

#: canonical state -> (EC2 state name, EC2 state code). Every canonical state has a row.
EC2_STATES: dict[MachineState, tuple[str, int]] = {
    MachineState.PENDING: ("pending", 0),
    MachineState.RUNNING: ("running", 16),
    MachineState.REBOOTING: ("running", 16),  # EC2 reports a rebooting instance as running
    MachineState.STOPPING: ("stopping", 64),
    MachineState.STOPPED: ("stopped", 80),
    MachineState.SUSPENDED: ("stopped", 80),  # EC2 hibernation ends in "stopped"
    MachineState.TERMINATING: ("shutting-down", 32),
    MachineState.TERMINATED: ("terminated", 48),
    MachineState.ERROR: ("stopped", 80),  # with StateReason Server.InternalError, see _instance
}


_SHUTDOWN_STATES = frozenset(
    {MachineState.STOPPED, MachineState.STOPPING, MachineState.TERMINATED, MachineState.TERMINATING}
)


def ec2_state(state: MachineState) -> dict[str, Any]:
    name, code = EC2_STATES[state]
    return {"Code": code, "Name": name}


def reservation_id(machine: Machine) -> str:
    return "r-" + gateway_id(machine.account, "reservation", machine.reservation or machine.id).replace("-", "")[:17]


def _instance(m: Machine, index: int, group_names: dict[str, str]) -> dict[str, Any]:
    subnet = public_id("subnet", m.subnet_id)
    reason: dict[str, Any] | None = None
    if m.state == MachineState.ERROR:
        reason = {"Code": "Server.InternalError", "Message": m.state_reason or "Server.InternalError"}
    elif m.state in _SHUTDOWN_STATES:
        reason = {"Code": "Client.UserInitiatedShutdown", "Message": "Client.UserInitiatedShutdown"}
    private_dns = (
        f"ip-{m.private_ip.replace('.', '-')}.{m.zone[:-1] or 'local'}.compute.internal" if m.private_ip else ""
    )
    return {
        "InstanceId": public_id("machine", m.id),
        "ImageId": public_id("image", m.image_id),
        "State": ec2_state(m.state),
        "PrivateDnsName": private_dns,
        "PublicDnsName": "",
        "StateTransitionReason": reason["Message"] if reason else "",
        "KeyName": m.key_name,
        "AmiLaunchIndex": index,
        "InstanceType": m.flavor_name,
        "LaunchTime": when(m.launched or m.created),
        "Placement": {"AvailabilityZone": m.zone, "Tenancy": "default", "GroupName": ""},
        "Monitoring": {"State": "disabled"},
        "SubnetId": subnet,
        "VpcId": public_id("network", m.network_id),
        "PrivateIpAddress": m.private_ip,
        "PublicIpAddress": m.public_ip,
        "Architecture": m.architecture,
        "RootDeviceType": "ebs",
        "RootDeviceName": m.root_device,
        "BlockDeviceMappings": [],
        "SecurityGroups": [
            {"GroupId": public_id("security_group", g), "GroupName": group_names.get(g, "")}
            for g in m.security_group_ids
        ],
        "Tags": tag_list(m) or None,
        "StateReason": reason,
        "Hypervisor": "xen",
        "VirtualizationType": "hvm",
        "EbsOptimized": False,
        "EnaSupport": True,
        "SourceDestCheck": True,
        "CpuOptions": {"CoreCount": max(1, m.vcpus // 2), "ThreadsPerCore": 2 if m.vcpus > 1 else 1},
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "BootMode": "uefi-preferred",
    }


def _group_names(call: Call) -> dict[str, str]:
    return {g.id: g.name for g in call.translator.list(call.principal, "security_group", call.region)}


def _reservations(call: Call, machines: list[Machine]) -> list[dict[str, Any]]:
    names = _group_names(call) if any(m.security_group_ids for m in machines) else {}
    grouped: dict[str, list[Machine]] = {}
    for m in machines:
        grouped.setdefault(reservation_id(m), []).append(m)
    return [
        {
            "ReservationId": rid,
            "OwnerId": call.account_id,
            "Groups": [],
            "Instances": [_instance(m, i, names) for i, m in enumerate(batch)],
        }
        for rid, batch in grouped.items()
    ]


def describe_instances(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    machines = call.translator.list(call.principal, "machine", call.region)
    ids = args.get("InstanceIds")
    if ids:
        wanted = resolve_ids(call.translator, "machine", ids)
        by_id = {m.id: m for m in machines}
        missing = [pid for pid, gid in zip(ids, wanted, strict=True) if gid not in by_id]
        if missing:
            raise EC2Error("InvalidInstanceID.NotFound", f"The instance ID '{', '.join(missing)}' does not exist")
        machines = [by_id[g] for g in dict.fromkeys(wanted)]
    machines.sort(key=lambda m: (m.launched or m.created, m.id))
    return {"Reservations": _reservations(call, machines)}


def _flavor_id(call: Call, instance_type: str) -> str:
    for f in call.translator.list(call.principal, "flavor", call.region):
        if f.name == instance_type:
            return f.id
    raise EC2Error("InvalidParameterValue", f"Invalid value '{instance_type}' for InstanceType.")


def _group_ids(call: Call, args: dict[str, Any]) -> tuple[str, ...]:
    ids = list(resolve_ids(call.translator, "security_group", args.get("SecurityGroupIds") or []))
    names = args.get("SecurityGroups") or []
    if names:
        by_name = {g.name: g.id for g in call.translator.list(call.principal, "security_group", call.region)}
        for name in names:
            if name not in by_name:
                raise EC2Error("InvalidGroup.NotFound", f"The security group '{name}' does not exist")
            ids.append(by_name[name])
    return tuple(dict.fromkeys(ids))


def run_instances(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    low, high = args["MinCount"], args["MaxCount"]
    if low < 1 or high < low:
        raise EC2Error("InvalidParameterValue", "MinCount must be at least 1 and not more than MaxCount.")
    image_id = args.get("ImageId")
    if not image_id:
        raise EC2Error("MissingParameter", "The request must contain the parameter ImageId")
    (image,) = resolve_ids(call.translator, "image", [image_id])
    placement = args.get("Placement") or {}
    subnet = args.get("SubnetId")
    spec = MachineSpec(
        image_id=image,
        flavor_id=_flavor_id(call, args.get("InstanceType") or "m1.small"),
        count=high,
        key_name=args.get("KeyName"),
        security_group_ids=_group_ids(call, args),
        user_data=args.get("UserData"),
        zone=placement.get("AvailabilityZone"),
        subnet_id=resolve_ids(call.translator, "subnet", [subnet])[0] if subnet else None,
        tags=tags_from_specs(args.get("TagSpecifications"), "instance"),
    )
    machines = call.translator.create_machines(
        call.principal, spec, call.region, client_token=args.get("ClientToken") or ""
    )
    (reservation,) = _reservations(call, machines) if machines else [{}]
    return reservation


def _state_change(action: MachineAction) -> Any:
    def handler(call: Call, args: dict[str, Any]) -> dict[str, Any]:
        gids = resolve_ids(call.translator, "machine", args.get("InstanceIds") or [])
        before = call.translator.get_many(call.principal, "machine", gids)
        changes = []
        for gid, old in zip(gids, before, strict=True):
            new = call.translator.act_on_machine(call.principal, gid, action, bool(args.get("Force")))
            changes.append(
                {
                    "InstanceId": public_id("machine", gid),
                    "PreviousState": ec2_state(old.state),
                    "CurrentState": ec2_state(new.state),
                }
            )
        return {
            {
                MachineAction.START: "StartingInstances",
                MachineAction.STOP: "StoppingInstances",
                MachineAction.TERMINATE: "TerminatingInstances",
            }[action]: changes
        }

    return handler


def reboot_instances(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    for gid in resolve_ids(call.translator, "machine", args.get("InstanceIds") or []):
        call.translator.act_on_machine(call.principal, gid, MachineAction.REBOOT)
    return {}


ACTIONS: dict[str, Handler] = {
    "DescribeInstances": reader(describe_instances),
    "RunInstances": writer(run_instances),
    "StartInstances": writer(_state_change(MachineAction.START)),
    "StopInstances": writer(_state_change(MachineAction.STOP)),
    "TerminateInstances": writer(_state_change(MachineAction.TERMINATE)),
    "RebootInstances": writer(reboot_instances),
}
