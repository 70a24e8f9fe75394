"""The canonical model every frontend parses into and every backend speaks.

Resources are slotted dataclasses. A backend fills ``native_id`` and the native ids of what a resource
refers to (its ``REFS``); the translator stamps gateway ids, tenant and account on the way up and
turns references into gateway ids, so frontends only ever see gateway ids.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar


class MachineState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    PAUSED = "paused"  # frozen in memory, not saved to disk (Nova pause); resumed by UNPAUSE
    REBOOTING = "rebooting"
    CAPTURING = "capturing"  # an image is being made of it (Nova image_snapshot task)
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    ERROR = "error"


class VolumeState(StrEnum):
    CREATING = "creating"
    AVAILABLE = "available"
    IN_USE = "in-use"
    DELETING = "deleting"
    DELETED = "deleted"
    ERROR = "error"


class AttachmentState(StrEnum):
    ATTACHING = "attaching"
    ATTACHED = "attached"
    DETACHING = "detaching"
    DETACHED = "detached"


class SnapshotState(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    ERROR = "error"


class ImageState(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    FAILED = "failed"
    DEREGISTERED = "deregistered"


class VolumeTier(StrEnum):
    """What kind of storage a volume is, named the same on every cloud; each backend maps tiers to its own
    volume types (``[backends.NAME.volume_types]``), each frontend names them in its protocol's words."""

    STANDARD = "standard"  # the cloud's default storage: what a volume gets when nobody asks for more
    SSD = "ssd"  # general-purpose solid state
    HDD = "hdd"  # magnetic: throughput-oriented or cold
    IO = "io"  # solid state with provisioned IOPS, for databases


class NetworkState(StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"
    DOWN = "down"  # administratively down (``act_on_network(DOWN)``, Neutron admin_state_up false)
    ERROR = "error"


class InterfaceState(StrEnum):
    """A machine's network interface: OCCI networkinterface active/inactive, Neutron port status."""

    ATTACHING = "attaching"
    ACTIVE = "active"
    INACTIVE = "inactive"  # attached, no traffic (its network is down, Neutron port DOWN)
    DETACHING = "detaching"
    ERROR = "error"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"


class MachineAction(StrEnum):
    START = "start"
    STOP = "stop"
    REBOOT = "reboot"
    SUSPEND = "suspend"
    RESUME = "resume"
    PAUSE = "pause"
    UNPAUSE = "unpause"
    TERMINATE = "terminate"


class ActionMethod(StrEnum):
    """How a stop or restart is done: asking the guest (ACPI, reboot command) or cutting power."""

    GRACEFUL = "graceful"
    HARD = "hard"


class NetworkAction(StrEnum):
    UP = "up"
    DOWN = "down"


# ---------------------------------------------------------------------------------------------------
# Resources
# ---------------------------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class Resource:
    """Fields every resource carries. ``id`` is the gateway id (uuid5, see translator.ids)."""

    KIND: ClassVar[str] = ""
    #: field name -> kind of the resource it names; lists of ids allowed.
    REFS: ClassVar[dict[str, str]] = {}
    #: field name -> dataclass of its items (lists) or value, for decoding.
    NESTED: ClassVar[dict[str, type]] = {}
    #: field -> enum, for decoding.
    ENUMS: ClassVar[dict[str, type]] = {}

    native_id: str
    id: str = ""
    tenant: str = ""
    account: str = ""
    name: str = ""
    description: str = ""
    created: float = 0.0
    updated: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, kw_only=True)
class Zone:
    name: str
    region: str
    available: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """An account's quotas as its cloud reports them; None where the cloud has no such limit or says nothing."""

    max_machines: int | None = None
    max_addresses: int | None = None


@dataclass(slots=True, kw_only=True)
class Flavor(Resource):
    """A machine size: EC2 instance type, CIMI MachineConfiguration, OCCI resource_tpl."""

    KIND: ClassVar[str] = "flavor"
    vcpus: int
    memory_mb: int
    disk_gb: int = 0
    architecture: str = "x86_64"


@dataclass(slots=True, kw_only=True)
class Image(Resource):
    KIND: ClassVar[str] = "image"
    REFS: ClassVar[dict[str, str]] = {"source_machine_id": "machine"}
    ENUMS: ClassVar[dict[str, type]] = {"state": ImageState}
    state: ImageState = ImageState.AVAILABLE
    architecture: str = "x86_64"
    platform: str = "linux"
    os: str = ""
    owner: str = ""
    public: bool = True
    min_disk_gb: int = 0
    #: The device name the cloud gives a machine's boot disk from this image; empty when it names none.
    root_device: str = ""
    source_machine_id: str | None = None


@dataclass(slots=True, kw_only=True)
class BlockDevice:
    """A disk a machine is launched with (EC2 BlockDeviceMapping, CIMI disks).

    ``boot``: this is the boot disk, made from the image; its size and tier replace the image's defaults and
    its device is the cloud's. Otherwise a new volume, blank or from a snapshot, at ``device``.
    """

    device: str = ""
    boot: bool = False
    size_gb: int | None = None
    tier: VolumeTier = VolumeTier.STANDARD
    snapshot_id: str | None = None
    delete_on_termination: bool = True


@dataclass(slots=True, kw_only=True)
class NetworkInterface:
    """One of a machine's network interfaces (CIMI MachineNetworkInterface, OCCI networkinterface, EC2 ENI,
    Neutron port). ``id`` is stamped by the translator like a resource's (kind ``network_interface``)."""

    KIND: ClassVar[str] = "network_interface"
    REFS: ClassVar[dict[str, str]] = {"network_id": "network", "subnet_id": "subnet"}
    ENUMS: ClassVar[dict[str, type]] = {"state": InterfaceState}
    native_id: str
    id: str = ""
    network_id: str | None = None
    subnet_id: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    mac: str = ""
    state: InterfaceState = InterfaceState.ACTIVE
    attached: float = 0.0


@dataclass(slots=True, kw_only=True)
class MachineDisk:
    """A volume attached to a machine, as the machine shows it (see ``Machine.disks``)."""

    volume_id: str
    device: str
    state: AttachmentState = AttachmentState.ATTACHED
    attached: float = 0.0
    delete_on_termination: bool = False


@dataclass(slots=True, kw_only=True)
class Machine(Resource):
    """A virtual machine. ``interfaces`` lists its network interfaces, the primary first; ``network_id``,
    ``subnet_id``, ``private_ip`` and ``public_ip`` repeat the primary's."""

    KIND: ClassVar[str] = "machine"
    REFS: ClassVar[dict[str, str]] = {
        "image_id": "image",
        "flavor_id": "flavor",
        "network_id": "network",
        "subnet_id": "subnet",
        "security_group_ids": "security_group",
        "volume_ids": "volume",
        "disks.volume_id": "volume",
        "interfaces.network_id": "network",
        "interfaces.subnet_id": "subnet",
    }
    NESTED: ClassVar[dict[str, type]] = {"interfaces": NetworkInterface, "disks": MachineDisk}
    ENUMS: ClassVar[dict[str, type]] = {"state": MachineState, "previous_state": MachineState}
    state: MachineState
    #: Set only on the machine a lifecycle action returns: the state the action found it in (EC2 answers with both,
    #: so a frontend need not read the machine first). None everywhere else.
    previous_state: MachineState | None = None
    image_id: str | None = None
    flavor_id: str | None = None
    flavor_name: str = ""
    vcpus: int = 0
    memory_mb: int = 0
    zone: str = ""
    key_name: str | None = None
    security_group_ids: list[str] = field(default_factory=list)
    network_id: str | None = None
    subnet_id: str | None = None
    private_ip: str | None = None
    public_ip: str | None = None
    volume_ids: list[str] = field(default_factory=list)
    interfaces: list[NetworkInterface] = field(default_factory=list)
    #: The device name of the boot disk as the cloud reports it; empty when it names none.
    root_device: str = ""
    user_data: str | None = None
    hibernation: bool = False  # launched able to hibernate (EC2 HibernationOptions; SUSPEND is hibernation there)
    architecture: str = "x86_64"
    platform: str = "linux"
    launched: float = 0.0
    state_reason: str = ""
    #: The idempotency key of the create that made the machine, where the cloud keeps it: machines launched
    #: together share it (EC2's reservation is derived from it). Empty for machines made outside the gateway.
    launch_key: str = ""
    #: The caller's own idempotency token of that create (EC2 ``ClientToken``, as the caller gave it; ``launch_key``
    #: is derived from it), where the backend keeps it beside the key. Empty otherwise.
    client_token: str = ""
    #: What the cloud says of the machine's volumes and security groups when it lists the machine (EC2's
    #: BlockDeviceMappings and group names): a describe then reads no volume or group listing. None: not said,
    #: and a frontend reads them from those listings. ``security_group_names`` follows ``security_group_ids``.
    disks: list[MachineDisk] | None = None
    security_group_names: list[str] | None = None


@dataclass(slots=True, kw_only=True)
class Attachment:
    machine_id: str
    device: str
    state: AttachmentState = AttachmentState.ATTACHED
    attached: float = 0.0
    delete_on_termination: bool = False

    def disk(self, volume_id: str) -> MachineDisk:
        """This attachment of ``volume_id`` as its machine shows it."""
        return MachineDisk(
            volume_id=volume_id,
            device=self.device,
            state=self.state,
            attached=self.attached,
            delete_on_termination=self.delete_on_termination,
        )


@dataclass(slots=True, kw_only=True)
class Volume(Resource):
    KIND: ClassVar[str] = "volume"
    REFS: ClassVar[dict[str, str]] = {"snapshot_id": "snapshot", "attachments.machine_id": "machine"}
    NESTED: ClassVar[dict[str, type]] = {"attachments": Attachment}
    ENUMS: ClassVar[dict[str, type]] = {"state": VolumeState, "tier": VolumeTier}
    size_gb: int
    state: VolumeState = VolumeState.AVAILABLE
    zone: str = ""
    tier: VolumeTier = VolumeTier.STANDARD
    snapshot_id: str | None = None
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Snapshot(Resource):
    KIND: ClassVar[str] = "snapshot"
    REFS: ClassVar[dict[str, str]] = {"volume_id": "volume"}
    ENUMS: ClassVar[dict[str, type]] = {"state": SnapshotState}
    volume_id: str | None
    size_gb: int
    state: SnapshotState = SnapshotState.COMPLETED
    progress: int = 100


@dataclass(slots=True, kw_only=True)
class Network(Resource):
    """A private network (EC2 VPC, CIMI Network, OCCI network)."""

    KIND: ClassVar[str] = "network"
    ENUMS: ClassVar[dict[str, type]] = {"state": NetworkState}
    cidr: str
    state: NetworkState = NetworkState.AVAILABLE
    is_default: bool = False


@dataclass(slots=True, kw_only=True)
class Subnet(Resource):
    """A zone-bound range of a network (EC2 subnet); backends with flat networks expose one per zone."""

    KIND: ClassVar[str] = "subnet"
    REFS: ClassVar[dict[str, str]] = {"network_id": "network"}
    ENUMS: ClassVar[dict[str, type]] = {"state": NetworkState}
    network_id: str
    cidr: str
    zone: str
    state: NetworkState = NetworkState.AVAILABLE
    is_default: bool = False
    available_ips: int = 0


@dataclass(slots=True, kw_only=True)
class Address(Resource):
    """A floating/elastic public address, possibly associated with a machine."""

    KIND: ClassVar[str] = "address"
    REFS: ClassVar[dict[str, str]] = {"machine_id": "machine"}
    public_ip: str
    machine_id: str | None = None
    private_ip: str | None = None


@dataclass(slots=True, kw_only=True)
class KeyPair(Resource):
    KIND: ClassVar[str] = "key_pair"
    fingerprint: str
    public_key: str
    key_type: str = "rsa"


#: Protocol names and IANA numbers clients use -> the canonical spelling of ``Rule.protocol``.
RULE_PROTOCOLS: dict[str, str] = {
    "tcp": "tcp",
    "6": "tcp",
    "udp": "udp",
    "17": "udp",
    "icmp": "icmp",
    "1": "icmp",
    "-1": "-1",
    "all": "-1",
}


@dataclass(slots=True, kw_only=True)
class Rule:
    """One security-group rule; ``protocol`` is ``tcp``, ``udp``, ``icmp`` or ``-1`` (all)."""

    REFS: ClassVar[dict[str, str]] = {"group_id": "security_group"}
    direction: str  # "ingress" | "egress"
    protocol: str
    from_port: int | None = None
    to_port: int | None = None
    cidr: str | None = None
    group_id: str | None = None
    description: str = ""

    def key(self) -> tuple[Any, ...]:
        """Identity of a rule, ignoring its description (EC2 treats such rules as duplicates)."""
        return (self.direction, self.protocol, self.from_port, self.to_port, self.cidr, self.group_id)


@dataclass(slots=True, kw_only=True)
class SecurityGroup(Resource):
    KIND: ClassVar[str] = "security_group"
    REFS: ClassVar[dict[str, str]] = {"network_id": "network", "rules.group_id": "security_group"}
    NESTED: ClassVar[dict[str, type]] = {"rules": Rule}
    network_id: str | None = None
    rules: list[Rule] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class Job:
    """A mutating operation (CIMI Job), kept in Redis until ``job_ttl`` after it ends.

    ``operation`` and ``arguments`` are the work itself, as data: any worker on any node can (re)run it
    through the handler registered for ``operation``. ``arguments`` (dropped when the job ends) and
    ``result`` are for the job engine and the translator, not for rendering.
    """

    ENUMS: ClassVar[dict[str, type]] = {"state": JobState}
    id: str
    tenant: str
    operation: str
    target_kind: str
    target_ids: list[str]
    state: JobState
    created: float
    updated: float
    #: the failure, for a failed job (the status message then says the same)
    error: str | None = None
    progress: int = 0
    message: str = ""
    #: gateway ids of the resources the operation made or changed (known once it ends)
    affected_ids: list[str] = field(default_factory=list)
    started: float | None = None
    finished: float | None = None
    parent_id: str | None = None
    child_ids: list[str] = field(default_factory=list)
    arguments: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    #: how many times a worker took the job (more than one when a worker died holding it)
    attempts: int = 0

    @property
    def done(self) -> bool:
        return self.state in (JobState.SUCCESS, JobState.FAILED)


#: kind -> states in which a resource is on its way to another; listings holding one are cached briefly.
TRANSITIONAL_STATES: dict[str, frozenset[Any]] = {
    "machine": frozenset(
        {
            MachineState.PENDING,
            MachineState.STOPPING,
            MachineState.REBOOTING,
            MachineState.CAPTURING,
            MachineState.TERMINATING,
        }
    ),
    "volume": frozenset({VolumeState.CREATING, VolumeState.DELETING}),
    "snapshot": frozenset({SnapshotState.PENDING}),
    "image": frozenset({ImageState.PENDING}),
    "network": frozenset({NetworkState.PENDING}),
    "subnet": frozenset({NetworkState.PENDING}),
}
_MOVING_ATTACHMENTS = frozenset({AttachmentState.ATTACHING, AttachmentState.DETACHING})
_MOVING_INTERFACES = frozenset({InterfaceState.ATTACHING, InterfaceState.DETACHING})


def in_transition(resource: Resource) -> bool:
    """Whether a resource (or one of its volume attachments or interfaces) is between two states."""
    if getattr(resource, "state", None) in TRANSITIONAL_STATES.get(resource.KIND, ()):
        return True
    if any(str(a.state) in _MOVING_ATTACHMENTS for a in getattr(resource, "attachments", ())):
        return True
    return any(i.state in _MOVING_INTERFACES for i in getattr(resource, "interfaces", ()))


RESOURCE_TYPES: dict[str, type[Resource]] = {
    cls.KIND: cls
    for cls in (Flavor, Image, Machine, Volume, Snapshot, Network, Subnet, Address, KeyPair, SecurityGroup)
}

# ---------------------------------------------------------------------------------------------------
# Requests. Gateway ids on the way in from a frontend; the translator swaps in native ids.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineSpec:
    """What to launch. ``count`` machines share everything but their ids."""

    REFS: ClassVar[dict[str, str]] = {
        "image_id": "image",
        "flavor_id": "flavor",
        "subnet_id": "subnet",
        "security_group_ids": "security_group",
        "block_devices.snapshot_id": "snapshot",
    }
    image_id: str
    flavor_id: str
    count: int = 1
    name: str = ""
    key_name: str | None = None
    security_group_ids: tuple[str, ...] = ()
    user_data: str | None = None
    zone: str | None = None
    subnet_id: str | None = None
    block_devices: tuple[BlockDevice, ...] = ()
    hibernation: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    #: Names this create so that a repeat finds the first: the caller's token in, the translator's derived key
    #: out to the backend, which hands it to the cloud (never part of what the request is compared on).
    idempotency_key: str = ""
    #: Set by the translator, for the backend: the caller's token as it came in, which a backend that can may keep
    #: and report as ``Machine.client_token``. Never what a repeat is found by (that is ``idempotency_key``).
    client_token: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MachineUpdate:
    """Changes to a stopped machine (EC2 ModifyInstanceAttribute, CIMI edit)."""

    REFS: ClassVar[dict[str, str]] = {"flavor_id": "flavor"}
    flavor_id: str | None = None
    user_data: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSpec:
    REFS: ClassVar[dict[str, str]] = {"snapshot_id": "snapshot"}
    size_gb: int | None = None
    zone: str | None = None
    tier: VolumeTier = VolumeTier.STANDARD
    snapshot_id: str | None = None
    name: str = ""
    description: str = ""
    #: As ``MachineSpec.idempotency_key``.
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageSpec:
    REFS: ClassVar[dict[str, str]] = {"machine_id": "machine"}
    machine_id: str
    name: str
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSpec:
    cidr: str
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubnetSpec:
    REFS: ClassVar[dict[str, str]] = {"network_id": "network"}
    network_id: str
    cidr: str
    zone: str | None = None
    name: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupSpec:
    REFS: ClassVar[dict[str, str]] = {"network_id": "network"}
    name: str
    description: str
    network_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InterfaceSpec:
    """An interface to add to a machine: on a subnet, or on a network (the cloud picks the subnet)."""

    REFS: ClassVar[dict[str, str]] = {"network_id": "network", "subnet_id": "subnet"}
    network_id: str | None = None
    subnet_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeUpdate:
    """Changes to a volume; None leaves a field alone. A larger ``size_gb`` is a resize (never a shrink)."""

    name: str | None = None
    description: str | None = None
    size_gb: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkUpdate:
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageUpdate:
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityGroupUpdate:
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who is calling: resolved by the identity layer, carried by every translator call."""

    user: str
    tenant: str
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPairMaterial:
    """A newly generated key pair: the private half is returned exactly once and never stored."""

    key_pair: KeyPair
    private_key: str


def replace(obj: Any, **changes: Any) -> Any:
    """dataclasses.replace, re-exported so callers need not import dataclasses for it."""
    return dataclasses.replace(obj, **changes)
