"""EC2 -> canonical: the one machine-state table, the one fault table, then one converter per resource kind.

EC2 answers in its own vocabulary (state names, error codes, ``Tags``); everything here turns that into the
canonical model with native ids. Nothing here calls EC2.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from backends.tiers import TierMap
from translator.errors import (
    BackendError,
    BackendUnavailable,
    CloudgateError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    QuotaExceeded,
    TransientBackendError,
    Unsupported,
)
from translator.model import (
    RULE_PROTOCOLS,
    Address,
    Attachment,
    AttachmentState,
    Flavor,
    Image,
    ImageState,
    InterfaceState,
    KeyPair,
    Limits,
    Machine,
    MachineDisk,
    MachineState,
    Network,
    NetworkInterface,
    NetworkState,
    Rule,
    SecurityGroup,
    Snapshot,
    SnapshotState,
    Subnet,
    Volume,
    VolumeState,
    VolumeTier,
)

# ---------------------------------------------------------------------------------------------------
# Machine states. Keys are EC2 state names, or "name/StateReason.Code" where the reason tells more.
# ---------------------------------------------------------------------------------------------------

#: The states an EC2 instance has: botocore's ``InstanceStateName`` enum (a test checks it), the
#: state-reason pairs read below, and what OpenStack's EC2 API sends besides (nova's ``inst_state``
#: names for paused, suspended, rescued and resized servers, and the VM states it passes through as they
#: are: ``error``, ``shelved``, ``shelved_offloaded``). Every one has a row in STATE_MAP and nothing else does.
EC2_STATES = frozenset({"pending", "running", "shutting-down", "terminated", "stopping", "stopped"})
REASON_STATES = frozenset(
    {"stopped/Client.UserInitiatedHibernate", "stopped/Server.InternalError", "stopped/Client.UserInitiatedPause"}
)
OPENSTACK_EC2_STATES = frozenset({"pause", "suspend", "rescue", "resize", "error", "shelved", "shelved_offloaded"})
NATIVE_STATES = EC2_STATES | REASON_STATES | OPENSTACK_EC2_STATES

STATE_MAP: Mapping[str, MachineState] = {
    "pending": MachineState.PENDING,
    "running": MachineState.RUNNING,
    "stopping": MachineState.STOPPING,
    "stopped": MachineState.STOPPED,
    "shutting-down": MachineState.TERMINATING,
    "terminated": MachineState.TERMINATED,
    # AWS: a hibernated instance is "stopped" for this reason.
    "stopped/Client.UserInitiatedHibernate": MachineState.SUSPENDED,
    # What an instance in error, or paused, looks like through cloudgate's own EC2 frontend (a stacked gateway).
    "stopped/Server.InternalError": MachineState.ERROR,
    "stopped/Client.UserInitiatedPause": MachineState.PAUSED,
    # OpenStack's EC2 API.
    "pause": MachineState.PAUSED,
    "suspend": MachineState.SUSPENDED,
    "rescue": MachineState.RUNNING,
    "resize": MachineState.PENDING,
    "error": MachineState.ERROR,
    "shelved": MachineState.STOPPED,
    "shelved_offloaded": MachineState.STOPPED,
}
#: A name missing above is read by its code (the low byte), which every EC2-compatible cloud sends.
STATE_CODES: Mapping[int, str] = {
    0: "pending",
    16: "running",
    32: "shutting-down",
    48: "terminated",
    64: "stopping",
    80: "stopped",
}

# ---------------------------------------------------------------------------------------------------
# Faults. EC2 error code -> (canonical class, kind, reason); a kind of None is the kind the call is about.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fault:
    cls: type[CloudgateError]
    kind: str | None = None
    reason: str | None = None


_TRANSIENT = Fault(TransientBackendError)
_CREDENTIALS = Fault(BackendUnavailable, reason="credentials")

ERRORS: Mapping[str, Fault] = {
    # Not there (a malformed id names nothing, so it is not found either).
    "InvalidInstanceID.NotFound": Fault(NotFound, "machine"),
    "InvalidInstanceID.Malformed": Fault(NotFound, "machine", "malformed"),
    "InvalidAMIID.NotFound": Fault(NotFound, "image"),
    "InvalidAMIID.Malformed": Fault(NotFound, "image", "malformed"),
    "InvalidAMIID.Unavailable": Fault(NotFound, "image", "unavailable"),
    "InvalidInstanceType.NotFound": Fault(NotFound, "flavor"),
    "InvalidInstanceType": Fault(NotFound, "flavor"),
    "InvalidVolume.NotFound": Fault(NotFound, "volume"),
    "InvalidVolumeID.Malformed": Fault(NotFound, "volume", "malformed"),
    "InvalidSnapshot.NotFound": Fault(NotFound, "snapshot"),
    "InvalidSnapshotID.Malformed": Fault(NotFound, "snapshot", "malformed"),
    "InvalidKeyPair.NotFound": Fault(NotFound, "key_pair"),
    "InvalidGroup.NotFound": Fault(NotFound, "security_group"),
    "InvalidGroupId.Malformed": Fault(NotFound, "security_group", "malformed"),
    "InvalidSecurityGroupID.NotFound": Fault(NotFound, "security_group"),
    "InvalidPermission.NotFound": Fault(NotFound, "rule"),
    "InvalidAllocationID.NotFound": Fault(NotFound, "address"),
    "InvalidAddress.NotFound": Fault(NotFound, "address"),
    "InvalidAddressID.NotFound": Fault(NotFound, "address"),
    "InvalidAssociationID.NotFound": Fault(NotFound, "address", "association"),
    "InvalidVpcID.NotFound": Fault(NotFound, "network"),
    "InvalidVpcID.Malformed": Fault(NotFound, "network", "malformed"),
    "InvalidSubnetID.NotFound": Fault(NotFound, "subnet"),
    "InvalidSubnetID.Malformed": Fault(NotFound, "subnet", "malformed"),
    "InvalidAttachment.NotFound": Fault(NotFound, "attachment"),
    "InvalidNetworkInterfaceID.NotFound": Fault(NotFound, "network_interface"),
    "InvalidNetworkInterfaceID.Malformed": Fault(NotFound, "network_interface", "malformed"),
    "InvalidAttachmentID.NotFound": Fault(NotFound, "network_interface"),
    "InvalidZone.NotFound": Fault(NotFound, "zone"),
    # Clashes with the current state.
    "InvalidKeyPair.Duplicate": Fault(Conflict, "key_pair", "duplicate"),
    "InvalidGroup.Duplicate": Fault(Conflict, "security_group", "duplicate"),
    "InvalidPermission.Duplicate": Fault(Conflict, "rule", "duplicate"),
    "InvalidAMIName.Duplicate": Fault(Conflict, "image", "duplicate"),
    "InvalidSubnet.Conflict": Fault(Conflict, "subnet", "duplicate"),
    "CannotDelete": Fault(Conflict, "security_group", "default"),
    "IncorrectInstanceState": Fault(Conflict, "machine", "state"),
    "IncorrectState": Fault(Conflict, None, "state"),
    "VolumeInUse": Fault(Conflict, "volume", "in_use"),
    "InvalidIPAddress.InUse": Fault(Conflict, "address", "in_use"),
    "DependencyViolation": Fault(Conflict, None, "dependency"),
    "IdempotentParameterMismatch": Fault(Conflict, None, "idempotency"),
    # Malformed or inconsistent parameters.
    "InvalidKeyPair.Format": Fault(InvalidParameter, "key_pair", "format"),
    "InvalidAMIName.Malformed": Fault(InvalidParameter, "image", "name"),
    "InvalidVpc.Range": Fault(InvalidParameter, "network", "cidr"),
    "InvalidSubnet.Range": Fault(InvalidParameter, "subnet", "cidr"),
    "InvalidVolume.ZoneMismatch": Fault(InvalidParameter, "volume", "zone"),
    "InvalidPermission.Malformed": Fault(InvalidParameter, "rule"),
    "InvalidParameterCombination": Fault(InvalidParameter, None, "combination"),
    "MissingParameter": Fault(InvalidParameter, None, "missing"),
    "InvalidParameterValue": Fault(InvalidParameter),
    "InvalidParameter": Fault(InvalidParameter),
    "InvalidInput": Fault(InvalidParameter),
    "InvalidBlockDeviceMapping": Fault(InvalidParameter, "machine", "device"),
    "InvalidUserData.Malformed": Fault(InvalidParameter, "machine", "user_data"),
    # Limits.
    "InstanceLimitExceeded": Fault(QuotaExceeded, "machine"),
    "VcpuLimitExceeded": Fault(QuotaExceeded, "machine"),
    "AddressLimitExceeded": Fault(QuotaExceeded, "address"),
    "VolumeLimitExceeded": Fault(QuotaExceeded, "volume"),
    "MaxIOPSLimitExceeded": Fault(QuotaExceeded, "volume"),
    "SnapshotLimitExceeded": Fault(QuotaExceeded, "snapshot"),
    "VpcLimitExceeded": Fault(QuotaExceeded, "network"),
    "SubnetLimitExceeded": Fault(QuotaExceeded, "subnet"),
    "SecurityGroupLimitExceeded": Fault(QuotaExceeded, "security_group"),
    "RulesPerSecurityGroupLimitExceeded": Fault(QuotaExceeded, "rule"),
    "ResourceLimitExceeded": Fault(QuotaExceeded),
    "InsufficientInstanceCapacity": Fault(BackendUnavailable, "machine", "capacity"),
    "InsufficientAddressCapacity": Fault(BackendUnavailable, "address", "capacity"),
    # What the cloud cannot do, or the account may not.
    "UnsupportedOperation": Fault(Unsupported),
    "UnsupportedHibernationConfiguration": Fault(Unsupported, "machine", "hibernation"),
    "Unsupported": Fault(Unsupported),
    "InvalidAction": Fault(Unsupported),
    "UnauthorizedOperation": Fault(Forbidden),
    "OperationNotPermitted": Fault(Forbidden),
    # The account's credentials are refused: nothing works until an operator fixes the config.
    "AuthFailure": _CREDENTIALS,
    "InvalidClientTokenId": _CREDENTIALS,
    "SignatureDoesNotMatch": _CREDENTIALS,
    "IncompleteSignature": _CREDENTIALS,
    "MissingAuthenticationToken": _CREDENTIALS,
    "ExpiredToken": _CREDENTIALS,
    "OptInRequired": _CREDENTIALS,
    "PendingVerification": _CREDENTIALS,
    "Blocked": _CREDENTIALS,
    # Worth retrying: throttling and the service's own trouble.
    "RequestLimitExceeded": _TRANSIENT,
    "Throttling": _TRANSIENT,
    "ThrottlingException": _TRANSIENT,
    "RequestThrottled": _TRANSIENT,
    "EC2ThrottledException": _TRANSIENT,
    "PriorRequestNotComplete": _TRANSIENT,
    "RequestExpired": _TRANSIENT,
    "InternalError": _TRANSIENT,
    "InternalFailure": _TRANSIENT,
    "ServiceUnavailable": _TRANSIENT,
    "Unavailable": _TRANSIENT,
}
#: Codes not listed above, by their suffix (EC2 names faults ``Invalid<Thing>.<Problem>``).
ERROR_SUFFIXES: tuple[tuple[str, Fault], ...] = (
    (".NotFound", Fault(NotFound)),
    (".Malformed", Fault(InvalidParameter, None, "malformed")),
    (".Duplicate", Fault(Conflict, None, "duplicate")),
    (".InUse", Fault(Conflict, None, "in_use")),
    ("LimitExceeded", Fault(QuotaExceeded)),
)
#: Codes in neither table, by HTTP status: EC2 answers a request it will not take with a 4xx, whatever the code.
ERROR_STATUSES: tuple[tuple[Callable[[int], bool], Fault], ...] = (
    (lambda status: status >= 500 or status == 429, _TRANSIENT),
    (lambda status: status in (401, 403), _CREDENTIALS),
    (lambda status: 400 <= status < 500, Fault(InvalidParameter)),
    (lambda status: True, Fault(BackendError)),
)
#: botocore's own exceptions (no answer from EC2), first match wins.
EXCEPTIONS: tuple[tuple[type[Exception], Fault], ...] = (
    (BotoConnectionError, _TRANSIENT),  # refused, DNS, connect timeout, TLS, proxy
    (HTTPClientError, Fault(OutcomeUnknown)),  # read timeout, connection closed mid-answer: EC2 may have acted
    (ResponseParserError, _TRANSIENT),  # not an EC2 answer at all (a proxy's HTML error page)
    (NoCredentialsError, _CREDENTIALS),
    (PartialCredentialsError, _CREDENTIALS),
    (CredentialRetrievalError, _CREDENTIALS),
    (NoRegionError, Fault(BackendUnavailable, reason="config")),
    (ParamValidationError, Fault(InvalidParameter)),
    (BotoCoreError, Fault(BackendError)),
)


def fault_of(exc: Exception) -> tuple[Fault, str] | None:
    """The fault an exception from botocore stands for, and its message; None for anything else (a bug).

    A code found in ``ERRORS`` keeps EC2's message; any other is named in the message, for the operator.
    """
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or code)
        found = ERRORS.get(code)
        if found is not None and found.cls not in (BackendError, BackendUnavailable, TransientBackendError):
            return found, message
        found = found or next((f for suffix, f in ERROR_SUFFIXES if code.endswith(suffix)), None)
        if found is None:
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            found = next(f for test, f in ERROR_STATUSES if test(status))
        return found, f"{code}: {message}" if code and message != code else message
    for cls, found in EXCEPTIONS:
        if isinstance(exc, cls):
            return found, f"ec2: {exc}"
    return None


def canonical_error(exc: Exception, kind: str) -> CloudgateError | None:
    """The canonical error for a botocore exception raised by a call about ``kind``."""
    found = fault_of(exc)
    if found is None:
        return None
    fault, message = found
    return fault.cls(message, kind=fault.kind or kind, reason=fault.reason)


# ---------------------------------------------------------------------------------------------------
# Other resources' states, one table each.
# ---------------------------------------------------------------------------------------------------

IMAGE_STATES: Mapping[str, ImageState] = {
    "pending": ImageState.PENDING,
    "transient": ImageState.PENDING,
    "available": ImageState.AVAILABLE,
    "invalid": ImageState.FAILED,
    "failed": ImageState.FAILED,
    "error": ImageState.FAILED,
    "deregistered": ImageState.DEREGISTERED,
    "disabled": ImageState.DEREGISTERED,
}
VOLUME_STATES: Mapping[str, VolumeState] = {
    "creating": VolumeState.CREATING,
    "available": VolumeState.AVAILABLE,
    "in-use": VolumeState.IN_USE,
    "deleting": VolumeState.DELETING,
    "deleted": VolumeState.DELETED,
    "error": VolumeState.ERROR,
}
ATTACHMENT_STATES: Mapping[str, AttachmentState] = {
    "attaching": AttachmentState.ATTACHING,
    "attached": AttachmentState.ATTACHED,
    "busy": AttachmentState.ATTACHED,
    "detaching": AttachmentState.DETACHING,
    "detached": AttachmentState.DETACHED,
}
SNAPSHOT_STATES: Mapping[str, SnapshotState] = {
    "pending": SnapshotState.PENDING,
    "completed": SnapshotState.COMPLETED,
    "error": SnapshotState.ERROR,
    "recoverable": SnapshotState.ERROR,
    "recovering": SnapshotState.PENDING,
}
NETWORK_STATES: Mapping[str, NetworkState] = {
    "pending": NetworkState.PENDING,
    "available": NetworkState.AVAILABLE,
    "unavailable": NetworkState.ERROR,
    "failed": NetworkState.ERROR,
    "failed-insufficient-capacity": NetworkState.ERROR,
}

# ---------------------------------------------------------------------------------------------------
# Converters: one EC2 item -> one canonical record with native ids.
# ---------------------------------------------------------------------------------------------------

#: Reads an EC2 zone name, answers the gateway's name for it.
ZoneOf = Callable[[str], str]


def epoch(value: Any) -> float:
    """Seconds since the epoch from botocore's datetimes or the ISO strings some fields are (CreationDate)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return 0.0


def tags_of(item: Mapping[str, Any]) -> dict[str, str]:
    """EC2's own tags of a resource, ``Name`` included (the backend declares NATIVE_TAGS)."""
    return {t["Key"]: t.get("Value", "") for t in item.get("Tags") or () if "Key" in t}


def name_tag(item: Mapping[str, Any]) -> str:
    """EC2 has no names, only the ``Name`` tag that consoles show as one."""
    return next((t.get("Value", "") for t in item.get("Tags") or () if t.get("Key") == "Name"), "")


def machine_state(item: Mapping[str, Any]) -> MachineState:
    state = item.get("State") or {}
    name = str(state.get("Name") or "")
    reason = str((item.get("StateReason") or {}).get("Code") or "")
    found = STATE_MAP.get(f"{name}/{reason}") or STATE_MAP.get(name)
    if found is None:
        found = STATE_MAP.get(STATE_CODES.get(int(state.get("Code") or 0) & 0xFF, ""), MachineState.ERROR)
    return found


#: EC2 network interface attachment status -> canonical interface state (a "detached" one is not the instance's).
INTERFACE_STATES: Mapping[str, InterfaceState] = {
    "attaching": InterfaceState.ATTACHING,
    "attached": InterfaceState.ACTIVE,
    "detaching": InterfaceState.DETACHING,
}


def interface(eni: Mapping[str, Any]) -> NetworkInterface:
    """One ENI, from an instance's ``NetworkInterfaces`` or DescribeNetworkInterfaces."""
    attachment = eni.get("Attachment") or {}
    return NetworkInterface(
        native_id=eni["NetworkInterfaceId"],
        network_id=eni.get("VpcId") or None,
        subnet_id=eni.get("SubnetId") or None,
        private_ip=eni.get("PrivateIpAddress") or None,
        public_ip=(eni.get("Association") or {}).get("PublicIp") or None,
        mac=str(eni.get("MacAddress") or "").lower(),
        state=INTERFACE_STATES.get(str(attachment.get("Status") or "attached"), InterfaceState.ERROR),
        attached=epoch(attachment.get("AttachTime")),
    )


def interfaces(item: Mapping[str, Any]) -> list[NetworkInterface]:
    """An instance's ENIs by device index (the primary, 0, first); none once it is terminated, as on AWS."""
    if machine_state(item) in (MachineState.TERMINATED, MachineState.TERMINATING):
        return []
    attached = [
        e
        for e in item.get("NetworkInterfaces") or ()
        if e.get("NetworkInterfaceId") and (e.get("Attachment") or {}).get("Status") != "detached"
    ]
    attached.sort(key=lambda e: int((e.get("Attachment") or {}).get("DeviceIndex") or 0))
    return [interface(e) for e in attached]


def disks_of(item: Mapping[str, Any]) -> list[MachineDisk]:
    """An instance's EBS volumes as DescribeInstances shows them (detached ones left out, as volumes do)."""
    return [
        MachineDisk(
            volume_id=ebs["VolumeId"],
            device=m.get("DeviceName") or "",
            state=ATTACHMENT_STATES.get(str(ebs.get("Status") or ""), AttachmentState.ATTACHED),
            attached=epoch(ebs.get("AttachTime")),
            delete_on_termination=bool(ebs.get("DeleteOnTermination")),
        )
        for m in item.get("BlockDeviceMappings") or ()
        if (ebs := m.get("Ebs") or {}).get("VolumeId") and ebs.get("Status") != "detached"
    ]


def created_of(item: Mapping[str, Any]) -> float:
    """When an instance was made: its primary interface's attach time, which (unlike LaunchTime) a stop and
    start leave alone; LaunchTime where the cloud shows no interface."""
    primary = next(
        (n for n in item.get("NetworkInterfaces") or () if (n.get("Attachment") or {}).get("DeviceIndex") == 0), None
    )
    return epoch(((primary or {}).get("Attachment") or {}).get("AttachTime")) or epoch(item.get("LaunchTime"))


def machine(item: Mapping[str, Any], zone_of: ZoneOf, flavors: Mapping[str, Flavor]) -> Machine:
    instance_type = str(item.get("InstanceType") or "")
    known = flavors.get(instance_type)
    cpu = item.get("CpuOptions") or {}
    launched = epoch(item.get("LaunchTime"))
    groups = [g for g in item.get("SecurityGroups") or () if g.get("GroupId")]
    return Machine(
        native_id=item["InstanceId"],
        name=name_tag(item),
        tags=tags_of(item),
        created=created_of(item),
        updated=launched,
        state=machine_state(item),
        state_reason=str((item.get("StateReason") or {}).get("Message") or item.get("StateTransitionReason") or ""),
        image_id=item.get("ImageId") or None,
        flavor_id=instance_type or None,
        flavor_name=instance_type,
        vcpus=known.vcpus if known else int(cpu.get("CoreCount", 0)) * int(cpu.get("ThreadsPerCore", 1)),
        memory_mb=known.memory_mb if known else 0,
        zone=zone_of(str((item.get("Placement") or {}).get("AvailabilityZone") or "")),
        key_name=item.get("KeyName") or None,
        security_group_ids=[g["GroupId"] for g in groups],
        security_group_names=[str(g.get("GroupName") or "") for g in groups],
        network_id=item.get("VpcId") or None,
        subnet_id=item.get("SubnetId") or None,
        private_ip=item.get("PrivateIpAddress") or None,
        public_ip=item.get("PublicIpAddress") or None,
        volume_ids=[
            m["Ebs"]["VolumeId"] for m in item.get("BlockDeviceMappings") or () if (m.get("Ebs") or {}).get("VolumeId")
        ],
        disks=disks_of(item),
        interfaces=interfaces(item),
        root_device=item.get("RootDeviceName") or "",
        hibernation=bool((item.get("HibernationOptions") or {}).get("Configured")),
        architecture=item.get("Architecture") or "x86_64",
        platform="windows" if str(item.get("Platform") or "").lower() == "windows" else "linux",
        launched=launched,
        launch_key=str(item.get("ClientToken") or ""),
    )


#: DescribeAccountAttributes name -> the Limits field it fills.
LIMIT_ATTRIBUTES: Mapping[str, str] = {
    "max-instances": "max_machines",
    "vpc-max-elastic-ips": "max_addresses",
}


def limits(attributes: list[Mapping[str, Any]]) -> Limits:
    """Limits from DescribeAccountAttributes' answer (non-numeric or missing values: unknown)."""
    found: dict[str, int] = {}
    for attribute in attributes:
        field_name = LIMIT_ATTRIBUTES.get(str(attribute.get("AttributeName")))
        values = [str(v.get("AttributeValue")) for v in attribute.get("AttributeValues") or ()]
        if field_name and values and values[0].isdigit():
            found[field_name] = int(values[0])
    return Limits(**found)


def flavor(item: Mapping[str, Any]) -> Flavor:
    name = item["InstanceType"]
    storage = item.get("InstanceStorageInfo") or {}
    architectures = (item.get("ProcessorInfo") or {}).get("SupportedArchitectures") or ["x86_64"]
    return Flavor(
        native_id=name,
        name=name,
        vcpus=int((item.get("VCpuInfo") or {}).get("DefaultVCpus") or 0),
        memory_mb=int((item.get("MemoryInfo") or {}).get("SizeInMiB") or 0),
        disk_gb=int(storage.get("TotalSizeInGB") or 0),
        architecture=architectures[0],
    )


def image(item: Mapping[str, Any]) -> Image:
    root = item.get("RootDeviceName") or ""
    root_ebs = next(
        (m.get("Ebs") or {} for m in item.get("BlockDeviceMappings") or () if root and m.get("DeviceName") == root),
        {},
    )
    created = epoch(item.get("CreationDate"))
    return Image(
        native_id=item["ImageId"],
        name=item.get("Name") or "",
        tags=tags_of(item),
        created=created,
        updated=created,
        state=IMAGE_STATES.get(str(item.get("State") or ""), ImageState.FAILED),
        description=item.get("Description") or "",
        architecture=item.get("Architecture") or "x86_64",
        platform="windows" if str(item.get("Platform") or "").lower() == "windows" else "linux",
        os=str(item.get("PlatformDetails") or ""),
        owner=str(item.get("ImageOwnerAlias") or item.get("OwnerId") or ""),
        public=bool(item.get("Public")),
        min_disk_gb=int(root_ebs.get("VolumeSize") or 0),
        root_device=root,
    )


#: EC2's volume types -> the tier each is; ``settings.volume_types`` says which type a tier is made as.
VOLUME_TIERS: Mapping[str, VolumeTier] = {
    "standard": VolumeTier.STANDARD,
    "gp2": VolumeTier.SSD,
    "gp3": VolumeTier.SSD,
    "io1": VolumeTier.IO,
    "io2": VolumeTier.IO,
    "st1": VolumeTier.HDD,
    "sc1": VolumeTier.HDD,
}


def volume(item: Mapping[str, Any], zone_of: ZoneOf, tiers: TierMap) -> Volume:
    created = epoch(item.get("CreateTime"))
    return Volume(
        native_id=item["VolumeId"],
        name=name_tag(item),
        tags=tags_of(item),
        created=created,
        updated=created,
        size_gb=int(item.get("Size") or 0),
        state=VOLUME_STATES.get(str(item.get("State") or ""), VolumeState.ERROR),
        zone=zone_of(str(item.get("AvailabilityZone") or "")),
        tier=tiers.tier(item.get("VolumeType")),
        snapshot_id=item.get("SnapshotId") or None,
        attachments=[
            Attachment(
                machine_id=a["InstanceId"],
                device=a.get("Device") or "",
                state=ATTACHMENT_STATES.get(str(a.get("State") or ""), AttachmentState.ATTACHED),
                attached=epoch(a.get("AttachTime")),
                delete_on_termination=bool(a.get("DeleteOnTermination")),
            )
            for a in item.get("Attachments") or ()
            if a.get("InstanceId") and a.get("State") != "detached"
        ],
    )


def snapshot(item: Mapping[str, Any]) -> Snapshot:
    started = epoch(item.get("StartTime"))
    progress = str(item.get("Progress") or "").rstrip("%")
    state = SNAPSHOT_STATES.get(str(item.get("State") or ""), SnapshotState.ERROR)
    return Snapshot(
        native_id=item["SnapshotId"],
        name=name_tag(item),
        tags=tags_of(item),
        created=started,
        updated=started,
        volume_id=item.get("VolumeId") or None,
        size_gb=int(item.get("VolumeSize") or 0),
        state=state,
        progress=int(progress) if progress.isdigit() else (100 if state == SnapshotState.COMPLETED else 0),
        description=item.get("Description") or "",
    )


def network(item: Mapping[str, Any]) -> Network:
    return Network(
        native_id=item["VpcId"],
        name=name_tag(item),
        tags=tags_of(item),
        cidr=item.get("CidrBlock") or "",
        state=NETWORK_STATES.get(str(item.get("State") or ""), NetworkState.AVAILABLE),
        is_default=bool(item.get("IsDefault")),
    )


def subnet(item: Mapping[str, Any], zone_of: ZoneOf) -> Subnet:
    return Subnet(
        native_id=item["SubnetId"],
        name=name_tag(item),
        tags=tags_of(item),
        network_id=item.get("VpcId") or "",
        cidr=item.get("CidrBlock") or "",
        zone=zone_of(str(item.get("AvailabilityZone") or "")),
        state=NETWORK_STATES.get(str(item.get("State") or ""), NetworkState.AVAILABLE),
        is_default=bool(item.get("DefaultForAz")),
        available_ips=int(item.get("AvailableIpAddressCount") or 0),
    )


def address(item: Mapping[str, Any]) -> Address:
    """Native id: the allocation id (VPC addresses); an EC2-Classic address has only its public IP."""
    return Address(
        native_id=item.get("AllocationId") or item["PublicIp"],
        name=name_tag(item),
        tags=tags_of(item),
        public_ip=item["PublicIp"],
        machine_id=item.get("InstanceId") or None,
        private_ip=item.get("PrivateIpAddress") or None,
    )


#: OpenSSH public-key prefix -> EC2 key type (for clouds whose DescribeKeyPairs omits KeyType).
KEY_TYPES: Mapping[str, str] = {"ssh-rsa": "rsa", "ssh-ed25519": "ed25519"}


def key_type_of(public_key: str) -> str:
    return KEY_TYPES.get(public_key.split(" ", 1)[0], "rsa")


def key_pair(item: Mapping[str, Any]) -> KeyPair:
    """Native id: the key's name, which every EC2-compatible cloud takes (KeyPairId came in 2019)."""
    public = str(item.get("PublicKey") or "").strip()
    return KeyPair(
        native_id=item["KeyName"],
        name=item["KeyName"],
        tags=tags_of(item),
        created=epoch(item.get("CreateTime")),
        fingerprint=item.get("KeyFingerprint") or "",
        public_key=public,
        key_type=item.get("KeyType") or key_type_of(public),
    )


def rules(permissions: Iterable[Mapping[str, Any]], direction: str) -> list[Rule]:
    """One canonical rule per source of each EC2 permission (EC2 groups sources under one port range)."""
    out: list[Rule] = []
    for p in permissions:
        protocol = RULE_PROTOCOLS.get(str(p.get("IpProtocol", "-1")).lower(), str(p.get("IpProtocol")))
        ports = (None, None) if protocol == "-1" else (p.get("FromPort"), p.get("ToPort"))
        sources: list[tuple[str | None, str | None, str]] = [
            (r.get("CidrIp"), None, r.get("Description") or "") for r in p.get("IpRanges") or ()
        ]
        sources += [(r.get("CidrIpv6"), None, r.get("Description") or "") for r in p.get("Ipv6Ranges") or ()]
        sources += [(None, g.get("GroupId"), g.get("Description") or "") for g in p.get("UserIdGroupPairs") or ()]
        out += [
            Rule(
                direction=direction,
                protocol=protocol,
                from_port=ports[0],
                to_port=ports[1],
                cidr=cidr,
                group_id=group,
                description=description,
            )
            for cidr, group, description in sources
        ]
    return out


def security_group(item: Mapping[str, Any]) -> SecurityGroup:
    return SecurityGroup(
        native_id=item["GroupId"],
        name=item.get("GroupName") or "",
        tags=tags_of(item),
        description=item.get("Description") or "",
        network_id=item.get("VpcId") or None,
        rules=rules(item.get("IpPermissions") or (), "ingress")
        + rules(item.get("IpPermissionsEgress") or (), "egress"),
    )
