"""Instances: RunInstances, DescribeInstances and the lifecycle actions."""

from __future__ import annotations

import functools
from typing import Any, cast

from frontends.ec2.actions.base import Call, Handler, describe_resources, describer, tag_list, when, writer
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.paging import refuse_with_ids
from frontends.ec2.render import Fragments
from frontends.ec2.service import get_model
from frontends.ec2.vocabulary import check_device, reservation_id, root_device, tier_of
from translator.backend import Capability
from translator.ids import short_form
from translator.listings import MissingIds, sort_key
from translator.model import (
    ActionMethod,
    Attachment,
    BlockDevice,
    Image,
    InterfaceState,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    NetworkInterface,
    Volume,
)

#: canonical state -> (EC2 state name, EC2 state code). Every canonical state has a row.
EC2_STATES: dict[MachineState, tuple[str, int]] = {
    MachineState.PENDING: ("pending", 0),
    MachineState.RUNNING: ("running", 16),
    MachineState.REBOOTING: ("running", 16),  # EC2 reports a rebooting instance as running
    MachineState.STOPPING: ("stopping", 64),
    MachineState.STOPPED: ("stopped", 80),
    MachineState.SUSPENDED: ("stopped", 80),  # EC2 hibernation ends in "stopped"
    # EC2 has no paused state. A paused machine runs no code, as a stopped one, and StartInstances wakes it
    # (UNPAUSE), so EC2 clients see "stopped", with StateReason Client.UserInitiatedPause (see instance_item).
    MachineState.PAUSED: ("stopped", 80),
    # EC2 keeps an instance "running" while CreateImage copies it.
    MachineState.CAPTURING: ("running", 16),
    MachineState.TERMINATING: ("shutting-down", 32),
    MachineState.TERMINATED: ("terminated", 48),
    MachineState.ERROR: ("stopped", 80),  # with StateReason Server.InternalError, see instance_item
}


_SHUTDOWN_STATES = frozenset(
    {MachineState.STOPPED, MachineState.STOPPING, MachineState.TERMINATED, MachineState.TERMINATING}
)


def ec2_state(state: MachineState) -> dict[str, Any]:
    name, code = EC2_STATES[state]
    return {"Code": code, "Name": name}


#: DescribeInstances filters (EC2 API reference) -> where each reads in an instance item.
INSTANCE_FILTERS = table(
    {
        "affinity": "Placement.Affinity",
        "architecture": "Architecture",
        "availability-zone": "Placement.AvailabilityZone",
        "block-device-mapping.attach-time": "BlockDeviceMappings[].Ebs.AttachTime",
        "block-device-mapping.delete-on-termination": "BlockDeviceMappings[].Ebs.DeleteOnTermination",
        "block-device-mapping.device-name": "BlockDeviceMappings[].DeviceName",
        "block-device-mapping.status": "BlockDeviceMappings[].Ebs.Status",
        "block-device-mapping.volume-id": "BlockDeviceMappings[].Ebs.VolumeId",
        "boot-mode": "BootMode",
        "client-token": "ClientToken",
        "cpu-options.core-count": "CpuOptions.CoreCount",
        "cpu-options.threads-per-core": "CpuOptions.ThreadsPerCore",
        "dns-name": "PublicDnsName",
        "ebs-optimized": "EbsOptimized",
        "ena-support": "EnaSupport",
        "group-id": "SecurityGroups[].GroupId",
        "group-name": "SecurityGroups[].GroupName",
        "hypervisor": "Hypervisor",
        "image-id": "ImageId",
        "instance-id": "InstanceId",
        "instance-lifecycle": "InstanceLifecycle",
        "instance-state-code": "State.Code",
        "instance-state-name": "State.Name",
        "instance-type": "InstanceType",
        "instance.group-id": "SecurityGroups[].GroupId",
        "instance.group-name": "SecurityGroups[].GroupName",
        "ip-address": "PublicIpAddress",
        "key-name": "KeyName",
        "launch-index": "AmiLaunchIndex",
        "launch-time": "LaunchTime",
        "metadata-options.http-endpoint": "MetadataOptions.HttpEndpoint",
        "metadata-options.http-put-response-hop-limit": "MetadataOptions.HttpPutResponseHopLimit",
        "metadata-options.http-tokens": "MetadataOptions.HttpTokens",
        "metadata-options.instance-metadata-tags": "MetadataOptions.InstanceMetadataTags",
        "hibernation-options.configured": "HibernationOptions.Configured",
        "monitoring-state": "Monitoring.State",
        "network-interface.addresses.association.public-ip": (
            "NetworkInterfaces[].PrivateIpAddresses[].Association.PublicIp"
        ),
        "network-interface.addresses.primary": "NetworkInterfaces[].PrivateIpAddresses[].Primary",
        "network-interface.addresses.private-ip-address": "NetworkInterfaces[].PrivateIpAddresses[].PrivateIpAddress",
        "network-interface.association.public-ip": "NetworkInterfaces[].Association.PublicIp",
        "network-interface.attachment.attachment-id": "NetworkInterfaces[].Attachment.AttachmentId",
        "network-interface.attachment.device-index": "NetworkInterfaces[].Attachment.DeviceIndex",
        "network-interface.attachment.status": "NetworkInterfaces[].Attachment.Status",
        "network-interface.group-id": "NetworkInterfaces[].Groups[].GroupId",
        "network-interface.group-name": "NetworkInterfaces[].Groups[].GroupName",
        "network-interface.mac-address": "NetworkInterfaces[].MacAddress",
        "network-interface.network-interface-id": "NetworkInterfaces[].NetworkInterfaceId",
        "network-interface.owner-id": "NetworkInterfaces[].OwnerId",
        "network-interface.private-dns-name": "NetworkInterfaces[].PrivateDnsName",
        "network-interface.source-dest-check": "NetworkInterfaces[].SourceDestCheck",
        "network-interface.status": "NetworkInterfaces[].Status",
        "network-interface.subnet-id": "NetworkInterfaces[].SubnetId",
        "network-interface.vpc-id": "NetworkInterfaces[].VpcId",
        "owner-id": "_OwnerId",
        "placement-group-name": "Placement.GroupName",
        "platform": "Platform",
        "platform-details": "PlatformDetails",
        "private-dns-name": "PrivateDnsName",
        "private-ip-address": "PrivateIpAddress",
        "reason": "StateTransitionReason",
        "reservation-id": "_ReservationId",
        "root-device-name": "RootDeviceName",
        "root-device-type": "RootDeviceType",
        "source-dest-check": "SourceDestCheck",
        "state-reason-code": "StateReason.Code",
        "state-reason-message": "StateReason.Message",
        "subnet-id": "SubnetId",
        "tenancy": "Placement.Tenancy",
        "usage-operation": "UsageOperation",
        "virtualization-type": "VirtualizationType",
        "vpc-id": "VpcId",
    }
)

#: TagSpecifications types RunInstances accepts besides ``instance``; the gateway tags the instances only.
RUN_INSTANCES_TAGGABLE = ("volume", "network-interface", "spot-instances-request", "elastic-gpu")

_METADATA_OPTIONS = {
    "State": "applied",
    "HttpTokens": "optional",
    "HttpPutResponseHopLimit": 1,
    "HttpEndpoint": "enabled",
    "HttpProtocolIpv6": "disabled",
    "InstanceMetadataTags": "disabled",
}


class Related:
    """What instance items show of other resources: each listed once per request, when first needed."""

    def __init__(self, call: Call, volumes_too: bool = True) -> None:
        self.call = call
        self.volumes_too = volumes_too
        # PERF: plain per-request caches: functools.cached_property on Python 3.11 holds one lock for every
        # instance while a value is computed (here a Redis read), so a worker's threads would wait on each other.
        self._group_names: dict[str, str] | None = None
        self._volumes: dict[str, list[tuple[Attachment, Volume]]] | None = None

    @classmethod
    def of(cls, call: Call, machines: list[Machine], volumes_too: bool = True) -> Related:
        return cls(call, volumes_too)

    @property
    def group_names(self) -> dict[str, str]:
        if self._group_names is None:
            call = self.call
            groups = call.translator.list(call.principal, "security_group", call.region)
            self._group_names = {g.id: g.name for g in groups}
        return self._group_names

    @property
    def volumes(self) -> dict[str, list[tuple[Attachment, Volume]]]:
        """Attachments by machine, from the region's volume listing (unless ``prefetch`` read them first)."""
        if self._volumes is None:
            call = self.call
            listed = call.translator.list(call.principal, "volume", call.region) if self.volumes_too else []
            self._volumes = self._by_machine(listed)
        return self._volumes

    def groups(self, m: Machine) -> list[dict[str, str]]:
        """An instance's groups, named as the cloud listed them with it, else from the group listing."""
        names = m.security_group_names
        if names is None or len(names) != len(m.security_group_ids):
            names = [self.group_names.get(g, "") for g in m.security_group_ids]
        return [
            {"GroupId": public_id("security_group", g), "GroupName": name}
            for g, name in zip(m.security_group_ids, names, strict=True)
        ]

    def prefetch(self, machines: list[Machine]) -> None:
        """Read just the volumes of ``machines`` (by id, in one call), not the region's listing; none for
        machines whose cloud listed their disks with them."""
        if not self.volumes_too or self._volumes is not None:
            return
        call = self.call
        wanted = list(dict.fromkeys(v for m in machines if m.disks is None for v in m.volume_ids))
        if not wanted:
            return
        try:
            found = call.translator.page(call.principal, "volume", ids=wanted, region=call.region).items
        except MissingIds:  # a volume gone since a machine was listed: the listing says who holds what now
            return
        self._volumes = self._by_machine(found)

    @staticmethod
    def _by_machine(volumes: list[Any]) -> dict[str, list[tuple[Attachment, Volume]]]:
        found: dict[str, list[tuple[Attachment, Volume]]] = {}
        for v in volumes:
            for a in v.attachments:
                found.setdefault(a.machine_id, []).append((a, v))
        return found


def block_device_mappings(m: Machine, related: Related) -> list[dict[str, Any]]:
    """The EBS volumes attached to an instance, root device first: as the cloud listed them with the instance,
    else from the volumes' attachments."""
    if m.disks is not None:
        disks = m.disks
    elif m.volume_ids:
        disks = [a.disk(v.id) for a, v in related.volumes.get(m.id, ())]
    else:
        return []
    root = root_device(m)
    return [
        {
            "DeviceName": d.device,
            "Ebs": {
                "AttachTime": when(d.attached),
                "DeleteOnTermination": d.delete_on_termination,
                "Status": str(d.state),
                "VolumeId": public_id("volume", d.volume_id),
            },
        }
        for d in sorted(disks, key=lambda d: (d.device != root, d.device))
    ]


#: canonical interface state -> (ENI Status, its Attachment.Status). Every canonical state has a row.
EC2_INTERFACE_STATES: dict[InterfaceState, tuple[str, str]] = {
    InterfaceState.ATTACHING: ("attaching", "attaching"),
    InterfaceState.ACTIVE: ("in-use", "attached"),
    InterfaceState.INACTIVE: ("in-use", "attached"),  # EC2 has no link state: an attached ENI is in use
    InterfaceState.DETACHING: ("detaching", "detaching"),
    InterfaceState.ERROR: ("in-use", "attached"),
}


def interface_gid(m: Machine, index: int, nic: NetworkInterface) -> str:
    """The gateway id an ENI id is made from: the instance's for the primary interface (its ENI id is what it was
    before interfaces were listed), the interface's own for the others."""
    return m.id if index == 0 else nic.id


def network_interfaces(m: Machine, groups: list[dict[str, Any]], private_dns: str, owner: str) -> list[dict[str, Any]]:
    """The instance's interfaces as the backend lists them, primary first; none once it is terminated."""
    if m.state in (MachineState.TERMINATED, MachineState.TERMINATING):
        return []
    out = []
    for index, nic in enumerate(m.interfaces):
        association = {"PublicIp": nic.public_ip, "PublicDnsName": "", "IpOwnerId": "amazon"} if nic.public_ip else None
        status, attachment_status = EC2_INTERFACE_STATES[nic.state]
        dns = private_dns if index == 0 else ""
        gid = interface_gid(m, index, nic)
        out.append(
            {
                "Association": association,
                "Attachment": {
                    "AttachTime": when(nic.attached or m.launched or m.created),
                    "AttachmentId": "eni-attach-" + short_form(gid),
                    "DeleteOnTermination": True,
                    "DeviceIndex": index,
                    "NetworkCardIndex": 0,
                    "Status": attachment_status,
                },
                "Description": "",
                "Groups": groups,
                "InterfaceType": "interface",
                "MacAddress": nic.mac,
                "NetworkInterfaceId": public_id("network_interface", gid),
                "OwnerId": owner,
                "PrivateDnsName": dns,
                "PrivateIpAddress": nic.private_ip,
                "PrivateIpAddresses": [
                    {
                        "Association": association,
                        "Primary": True,
                        "PrivateDnsName": dns,
                        "PrivateIpAddress": nic.private_ip,
                    }
                ],
                "SourceDestCheck": True,
                "Status": status,
                "SubnetId": public_id("subnet", nic.subnet_id),
                "VpcId": public_id("network", nic.network_id),
                "Ipv6Addresses": [],
            }
        )
    return out


def instance_item(m: Machine, index: int, related: Related, owner: str) -> dict[str, Any]:
    """One instance in DescribeInstances' shape, plus hidden ``_`` fields for filters and order."""
    reason: dict[str, Any] | None = None
    if m.state == MachineState.ERROR:
        reason = {"Code": "Server.InternalError", "Message": m.state_reason or "Server.InternalError"}
    elif m.state == MachineState.SUSPENDED:
        reason = {"Code": "Client.UserInitiatedHibernate", "Message": "Client.UserInitiatedHibernate"}
    elif m.state == MachineState.PAUSED:
        reason = {"Code": "Client.UserInitiatedPause", "Message": "Client.UserInitiatedPause: the instance is paused"}
    elif m.state in _SHUTDOWN_STATES:
        reason = {"Code": "Client.UserInitiatedShutdown", "Message": "Client.UserInitiatedShutdown"}
    private_dns = (
        f"ip-{m.private_ip.replace('.', '-')}.{m.zone[:-1] or 'local'}.compute.internal" if m.private_ip else ""
    )
    groups = related.groups(m)
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
        "SubnetId": public_id("subnet", m.subnet_id),
        "VpcId": public_id("network", m.network_id),
        "PrivateIpAddress": m.private_ip,
        "PublicIpAddress": m.public_ip,
        "Architecture": m.architecture,
        "RootDeviceType": "ebs",
        "RootDeviceName": root_device(m),
        "BlockDeviceMappings": block_device_mappings(m, related),
        "NetworkInterfaces": network_interfaces(m, groups, private_dns, owner),
        "SecurityGroups": groups,
        "Tags": tag_list(m) or None,
        "StateReason": reason,
        "ClientToken": m.client_token or None,
        "Hypervisor": "xen",
        "VirtualizationType": "hvm",
        "EbsOptimized": False,
        "EnaSupport": True,
        "SourceDestCheck": True,
        "CpuOptions": {"CoreCount": max(1, m.vcpus // 2), "ThreadsPerCore": 2 if m.vcpus > 1 else 1},
        "MetadataOptions": _METADATA_OPTIONS,
        "HibernationOptions": {"Configured": m.hibernation},
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "BootMode": "uefi-preferred",
        "CurrentInstanceBootMode": "uefi",
        "_ReservationId": reservation_id(m),
        "_OwnerId": owner,
        "_Launched": m.launched or m.created,
    }


def reservations(call: Call, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instance items grouped by reservation, in the order given; launch index within each."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        grouped.setdefault(item["_ReservationId"], []).append(item)
    return [
        {"ReservationId": rid, "OwnerId": call.account_id, "Groups": [], "Instances": batch}
        for rid, batch in grouped.items()
    ]


class InstanceRenderer:
    """Renders instances given in sort-key order, counting each reservation's launch index as it goes."""

    def __init__(self, call: Call, volumes_too: bool = True) -> None:
        self.call = call
        self.related = Related(call, volumes_too)
        self.indexes: dict[str, int] = {}

    def __call__(self, m: Machine) -> dict[str, Any]:
        rid = reservation_id(m)
        self.indexes[rid] = self.indexes.get(rid, -1) + 1
        return instance_item(m, self.indexes[rid], self.related, self.call.account_id)


def instance_items(call: Call, machines: list[Machine], volumes_too: bool = True) -> list[dict[str, Any]]:
    render = InstanceRenderer(call, volumes_too)
    ordered = sorted(machines, key=sort_key)
    render.related.prefetch(ordered)
    return [render(m) for m in ordered]


def describe_instances(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """A reservation split across two pages counts its launch indexes from each page's first instance."""
    ids = args.get("InstanceIds")
    refuse_with_ids(args, ids, "instancesSet")
    render = InstanceRenderer(call)
    items, token = describe_resources(
        call, "DescribeInstances", "machine", args, render, INSTANCE_FILTERS, ids=ids, prepare=render.related.prefetch
    )
    grouped = reservations(call, items)
    fragment = _instance_fragments()
    for reservation in grouped:
        reservation["Instances"] = [fragment(item) for item in reservation["Instances"]]
    return {"Reservations": grouped, "NextToken": token}


@functools.cache
def _instance_fragments() -> Fragments:
    """DescribeInstances' instance elements, rendered once per distinct item (``render.Fragments``)."""
    return Fragments(get_model().operation_model("DescribeInstances"), ("Reservations", "Instances"))


def flavor_id_of(call: Call, instance_type: str | None) -> str:
    """The flavor of an instance type; without one, EC2's default m1.small, else the smallest offered."""
    # PERF: every launch names a type; the catalogue is kept while its listing is unchanged (read_cache.py)
    flavors = call.translator.read_cache.answer(
        ("flavors", call.principal, call.region),
        lambda: call.translator.list(call.principal, "flavor", call.region),
        lambda found: 512 * len(found),
    )
    if instance_type is None:
        default = [f for f in flavors if f.name == "m1.small"] or sorted(flavors, key=lambda f: (f.vcpus, f.memory_mb))
        if default:
            return default[0].id
    for f in flavors:
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


def block_devices(call: Call, image_id: str, mappings: list[dict[str, Any]]) -> tuple[BlockDevice, ...]:
    """RunInstances' EBS mappings; instance-store (VirtualName) and NoDevice entries have no volume.

    A mapping of the AMI's root device name (as DescribeImages shows it) resizes or retypes the boot disk.
    """
    out = []
    root: str | None = None
    for bdm in mappings:
        device = bdm.get("DeviceName")
        if not device:
            raise EC2Error("MissingParameter", "The request must contain the parameter BlockDeviceMapping.DeviceName")
        ebs = bdm.get("Ebs")
        if ebs is None or bdm.get("NoDevice") is not None or bdm.get("VirtualName"):
            continue
        check_device(device)
        if root is None:
            root = root_device(cast(Image, call.translator.get(call.principal, "image", image_id)))
        snapshot = ebs.get("SnapshotId")
        size = ebs.get("VolumeSize")
        boot = device == root
        if size is None and not snapshot and not boot:
            raise EC2Error("InvalidBlockDeviceMapping", f"The device '{device}' needs a volume size or a snapshot id.")
        out.append(
            BlockDevice(
                device="" if boot else device,
                boot=boot,
                size_gb=size,
                tier=tier_of(ebs.get("VolumeType")),
                snapshot_id=resolve_ids(call.translator, "snapshot", [snapshot])[0] if snapshot and not boot else None,
                delete_on_termination=ebs.get("DeleteOnTermination", True),
            )
        )
    return tuple(out)


def _primary_interface(call: Call, args: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """Subnet and groups, from the top-level parameters or from the one NetworkInterfaces entry.

    Ansible's ec2_instance always launches through ``NetworkInterfaces`` with DeviceIndex 0. A machine
    here has exactly one interface, so more than one, or attaching an existing ENI, is refused.
    """
    interfaces = args.get("NetworkInterfaces") or []
    if not interfaces:
        return args.get("SubnetId"), _group_ids(call, args)
    if args.get("SubnetId") or args.get("SecurityGroupIds") or args.get("SecurityGroups"):
        raise EC2Error(
            "InvalidParameterCombination",
            "Network interfaces and an instance-level subnet ID or security groups may not be specified together.",
        )
    if len(interfaces) > 1 or interfaces[0].get("DeviceIndex", 0) != 0:
        raise EC2Error("UnsupportedOperation", "Only one network interface, at device index 0, is supported.")
    (eni,) = interfaces
    if eni.get("NetworkInterfaceId"):
        raise EC2Error("UnsupportedOperation", "Launching with an existing network interface is not supported.")
    if eni.get("AssociatePublicIpAddress"):
        raise EC2Error(
            "UnsupportedOperation", "Public addresses are assigned with AllocateAddress and AssociateAddress."
        )
    groups = tuple(dict.fromkeys(resolve_ids(call.translator, "security_group", eni.get("Groups") or [])))
    return eni.get("SubnetId"), groups


def run_instances(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    low, high = args["MinCount"], args["MaxCount"]
    if low < 1 or high < low:
        raise EC2Error("InvalidParameterValue", "MinCount must be at least 1 and not more than MaxCount.")
    image_id = args.get("ImageId")
    if not image_id:
        raise EC2Error("MissingParameter", "The request must contain the parameter ImageId")
    (image,) = resolve_ids(call.translator, "image", [image_id])
    placement = args.get("Placement") or {}
    subnet, group_ids = _primary_interface(call, args)
    spec = MachineSpec(
        image_id=image,
        flavor_id=flavor_id_of(call, args.get("InstanceType")),
        count=high,
        key_name=args.get("KeyName"),
        security_group_ids=group_ids,
        user_data=args.get("UserData"),
        zone=placement.get("AvailabilityZone"),
        subnet_id=resolve_ids(call.translator, "subnet", [subnet])[0] if subnet else None,
        block_devices=block_devices(call, image, args.get("BlockDeviceMappings") or []),
        hibernation=bool((args.get("HibernationOptions") or {}).get("Configured")),
        tags=tuple(spec_tags(args, "instance", also=RUN_INSTANCES_TAGGABLE).items()),
        idempotency_key=args.get("ClientToken") or "",
    )
    machines = call.translator.create_machines(call.principal, spec, call.region)
    # EC2 answers RunInstances before the disks are attached: no block device mappings yet.
    (reservation,) = reservations(call, instance_items(call, machines, volumes_too=False)) if machines else [{}]
    return reservation


def _reads_first(action: MachineAction, args: dict[str, Any]) -> bool:
    """Whether the canonical verb or method depends on the machine (``_action_for``, ``_method``)."""
    return action == MachineAction.START or (action == MachineAction.STOP and bool(args.get("Force")))


def _action_for(action: MachineAction, args: dict[str, Any], old: Machine | None) -> MachineAction:
    """EC2 hibernates with StopInstances (``Hibernate``) and wakes with StartInstances: suspend and resume; a
    paused machine, shown stopped, is woken by StartInstances too."""
    if action == MachineAction.STOP and args.get("Hibernate"):
        return MachineAction.SUSPEND
    if action == MachineAction.START and old is not None and old.state == MachineState.SUSPENDED:
        return MachineAction.RESUME
    if action == MachineAction.START and old is not None and old.state == MachineState.PAUSED:
        return MachineAction.UNPAUSE
    return action


def _method(call: Call, args: dict[str, Any], action: MachineAction, machine: Machine | None) -> ActionMethod:
    """StopInstances ``Force`` is a hard stop where the cloud has one; elsewhere (Nova) the machine is still
    stopped, gracefully: a client that forces a stop wants the machine stopped above all."""
    if action != MachineAction.STOP or not args.get("Force") or machine is None:
        return ActionMethod.GRACEFUL
    account = call.translator.accounts.get(machine.account)
    hard = account is not None and Capability.STOP_HARD in call.translator.capabilities(account)
    return ActionMethod.HARD if hard else ActionMethod.GRACEFUL


def _state_change(action: MachineAction) -> Any:
    def handler(call: Call, args: dict[str, Any]) -> dict[str, Any]:
        gids = resolve_ids(call.translator, "machine", args.get("InstanceIds") or [])
        # PERF: one machine whose verb the request alone decides is not read first (the backend reports the state
        # it found); several are all read first, so that none is acted on unless every one exists.
        reads = len(gids) != 1 or _reads_first(action, args)
        before: list[Machine | None] = (
            list(call.translator.get_many(call.principal, "machine", gids)) if reads else [None]
        )
        changes = []
        for gid, old in zip(gids, before, strict=True):
            verb = _action_for(action, args, old)
            new = call.translator.act_on_machine(call.principal, gid, verb, _method(call, args, verb, old))
            previous = new.previous_state or (old.state if old is not None else new.state)
            changes.append(
                {
                    "InstanceId": public_id("machine", gid),
                    # EC2's order; libcloud reads the first <name> as the new state.
                    "CurrentState": ec2_state(new.state),
                    "PreviousState": ec2_state(previous),
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
    "DescribeInstances": describer(describe_instances),
    "RunInstances": writer(run_instances),
    "StartInstances": writer(_state_change(MachineAction.START)),
    "StopInstances": writer(_state_change(MachineAction.STOP)),
    "TerminateInstances": writer(_state_change(MachineAction.TERMINATE)),
    "RebootInstances": writer(reboot_instances),
}
