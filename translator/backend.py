"""The Backend protocol every cloud adapter implements, and how adapters are found.

What every method of a backend may rely on and must do (the contract suite, tests/backends/backend_contract.py,
checks it against each backend; a new backend is written against this text and that suite):

- **Native ids only.** A backend never sees gateway ids, tenants or protocols: references inside specs
  (``REFS``, nested ones too) arrive as the cloud's ids, and returned records carry the cloud's ids in
  ``native_id`` and in their references; the translator maps both ways.
- **Capabilities.** ``capabilities`` declares what the cloud can do; the translator raises ``Unsupported``
  before calling an operation whose capability is missing, so the defaults below (which raise it too)
  are never reached for them. Methods marked *Optional* need a capability beyond the kind's basic one.
- **Errors** are the canonical ones of ``translator.errors``, mapped from the cloud's faults in one table
  per backend: ``NotFound(kind=...)`` for a missing resource the call names, ``InvalidParameter`` for what
  the cloud refuses as malformed, ``Conflict(reason=...)`` (``duplicate``, ``state``, ``in_use``,
  ``dependency``) for what clashes with current state, ``QuotaExceeded``, ``Forbidden``;
  ``TransientBackendError`` for a failure worth retrying that certainly did not reach the cloud
  (connection refused, throttled), ``OutcomeUnknown`` for one that may have (a read timeout): the
  translator retries both, but resends a create (a key pair, an address...) that may have reached the
  cloud only when it carries an idempotency key. Anything else raised
  becomes ``BackendError`` (502), never a 500.
- **Idempotency keys.** ``MachineSpec``/``VolumeSpec`` carry ``idempotency_key``: a create repeated with
  the same key must return what the first made (kept in the cloud where it can keep it: EC2
  ``ClientToken``, server/volume metadata), never a second resource.
- **Returned records** are the resource after the call, possibly still in a transitional state; the
  translator caches listings and re-reads until states settle. Every method may be called from
  several threads at once (one backend instance per account and worker).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from typing import Any, ClassVar

from translator.checkpoints import Checkpoints
from translator.errors import InvalidParameter, NotFound, Unsupported
from translator.model import (
    RESOURCE_TYPES,
    ActionMethod,
    Address,
    Flavor,
    Image,
    ImageSpec,
    ImageUpdate,
    InterfaceSpec,
    KeyPair,
    KeyPairMaterial,
    Limits,
    Machine,
    MachineAction,
    MachineSpec,
    MachineUpdate,
    Network,
    NetworkAction,
    NetworkInterface,
    NetworkSpec,
    NetworkUpdate,
    Rule,
    SecurityGroup,
    SecurityGroupSpec,
    SecurityGroupUpdate,
    Snapshot,
    Subnet,
    SubnetSpec,
    Volume,
    VolumeSpec,
    VolumeUpdate,
    Zone,
)
from translator.redact import safe_repr
from translator.redis_client import RedisClient


class Capability(StrEnum):
    MACHINES = "machines"
    MACHINE_SUSPEND = "machine_suspend"
    MACHINE_RESIZE = "machine_resize"
    CONSOLE_OUTPUT = "console_output"
    IMAGES = "images"
    IMAGE_CREATE = "image_create"
    VOLUMES = "volumes"
    SNAPSHOTS = "snapshots"
    NETWORKS = "networks"
    NETWORK_CREATE = "network_create"
    ADDRESSES = "addresses"
    KEY_PAIRS = "key_pairs"
    KEY_PAIR_CREATE = "key_pair_create"
    SECURITY_GROUPS = "security_groups"
    EGRESS_RULES = "egress_rules"
    NATIVE_TAGS = "native_tags"
    #: attach_interface / detach_interface: interfaces added to and removed from a machine.
    MACHINE_INTERFACES = "machine_interfaces"
    #: MachineAction.PAUSE and UNPAUSE.
    MACHINE_PAUSE = "machine_pause"
    #: ActionMethod.HARD with STOP (power cut) and REBOOT (reset).
    STOP_HARD = "stop_hard"
    REBOOT_HARD = "reboot_hard"
    #: act_on_network: a network taken down (no traffic) and up again.
    NETWORK_UP_DOWN = "network_up_down"
    #: update_volume (its name, description), and with VOLUME_RESIZE its size too.
    VOLUME_UPDATE = "volume_update"
    VOLUME_RESIZE = "volume_resize"
    #: update_network, update_image, update_security_group: names and descriptions.
    NETWORK_UPDATE = "network_update"
    IMAGE_UPDATE = "image_update"
    SECURITY_GROUP_UPDATE = "security_group_update"


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One tenant's account on one backend: the unit a gateway id is scoped to.

    ``key`` is globally unique (``<tenant>/<region>``); ``region`` is the name frontends show
    (EC2 region, CIMI/OCCI location); ``options`` merges the backend's and the account's settings
    (endpoint, credentials, ...).
    """

    key: str
    tenant: str
    region: str
    backend: str
    driver: str
    zones: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return safe_repr(self)  # options hold the account's credentials


@dataclass(frozen=True, slots=True)
class BackendServices:
    """What the gateway lends a backend: the shared Redis (for backends that keep state there), and
    checkpoints on the job being run (a cloud's own job id, so a takeover polls it instead of acting again)."""

    redis: RedisClient
    checkpoints: Checkpoints = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoints", Checkpoints(self.redis))


class Backend:
    """Base class of the adapters; each method is one canonical operation on native ids."""

    driver: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: Every machine state the cloud reports (as STATE_MAP's keys spell them), from its API reference or its
    #: client library's own enum; the contract suite checks STATE_MAP has exactly these keys, so a row for a
    #: state the cloud never reports fails, and so does a state with no row.
    NATIVE_STATES: ClassVar[frozenset[str]] = frozenset()
    #: native machine state -> canonical state, one lossless table per backend: each row the canonical state
    #: the cloud's state is (not the nearest one a frontend happens to show). A canonical state the cloud
    #: never reaches simply has no row.
    STATE_MAP: ClassVar[Mapping[str, Any]] = {}
    #: With NATIVE_TAGS, the kinds the cloud itself tags; the tags of any other kind live in Redis, as on a
    #: backend without NATIVE_TAGS (a cloud that tags machines and volumes but not key pairs still has both).
    NATIVE_TAG_KINDS: ClassVar[frozenset[str]] = frozenset(RESOURCE_TYPES)

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        self.account = account
        self.services = services

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Problems with an account's options, as ``key: what is wrong`` lines; empty when fine."""
        return []

    def check(self) -> None:
        """Reach the cloud with the account's credentials; raise a canonical error if that fails."""

    def close(self) -> None:
        """Release pooled connections."""

    def _unsupported(self, what: str) -> Unsupported:
        return Unsupported(f"The {self.driver} backend does not support {what}.", reason=what)

    # -- placement -------------------------------------------------------------------------------
    def list_zones(self) -> list[Zone]:
        """The account's availability zones (default: the configured ones, all available)."""
        return [Zone(name=z, region=self.account.region) for z in self.account.zones]

    def limits(self) -> Limits:
        """The account's quotas (machines, addresses, ...), where the cloud reports them; None for the others."""
        return Limits()

    # -- machines --------------------------------------------------------------------------------
    def list_machines(self) -> list[Machine]:
        """Every machine of the account, recently terminated ones included while the cloud still shows them.

        ``root_device`` is the boot disk's device as the cloud names it (empty when it names none);
        ``created`` is when the machine was made, not when it last started.
        """
        raise self._unsupported("machines")

    def get_machines(self, native_ids: list[str]) -> list[Machine]:
        """The named machines that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_machines(), native_ids)

    def create_machines(self, spec: MachineSpec) -> list[Machine]:
        """Launch ``spec.count`` machines, all or none; they are returned pending or running.

        A ``BlockDevice`` with ``boot`` resizes or retypes the boot disk made from the image (its device is
        the cloud's); the others are new volumes at their device, blank or from a snapshot, of their tier.
        Missing references are ``NotFound`` of their kind, raised before anything is made.
        """
        raise self._unsupported("machines")

    def act_on_machine(
        self, native_id: str, action: MachineAction, method: ActionMethod = ActionMethod.GRACEFUL
    ) -> Machine:
        """Start, stop, reboot, suspend, resume, pause, unpause or terminate (``method``: graceful, or hard for STOP
        and REBOOT, given STOP_HARD/REBOOT_HARD); the machine after, with ``previous_state`` the state the action
        found. Already there: the machine as it is; Conflict(reason="state") where its state refuses the action;
        NotFound for the machine. A cloud that answers an action with the states alone (EC2's TerminateInstances)
        may return the machine with only its native id and states: the translator publishes its ids, frontends
        read its states, nothing reads more of it."""
        raise self._unsupported(f"machine action {action}")

    def update_machine(self, native_id: str, update: MachineUpdate) -> Machine:
        """Optional (MACHINE_RESIZE). Change a stopped machine's flavor, user data or name (None: left alone); the
        machine after. NotFound; Conflict(reason="state") unless stopped; Unsupported(reason=field) for what the cloud
        cannot change."""
        raise self._unsupported("machine updates")

    def console_output(self, native_id: str) -> str:
        """Optional (CONSOLE_OUTPUT). The machine's console log as text (may be empty). NotFound for the machine."""
        raise self._unsupported("console output")

    def attach_interface(self, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
        """Optional (MACHINE_INTERFACES). Add an interface on ``spec``'s subnet, or on its network (a subnet in the
        machine's zone); return it. NotFound for the machine, network or subnet; Conflict(reason="state") if the
        machine's state refuses it; InvalidParameter(reason="zone") for a subnet elsewhere."""
        raise self._unsupported("network interfaces")

    def detach_interface(self, native_id: str, interface_native_id: str) -> None:
        """Optional (MACHINE_INTERFACES). Remove one of the machine's interfaces (it may take a while to go).
        NotFound(kind="network_interface") if the machine has no such interface; Conflict where the cloud refuses
        (reason="primary" for a primary interface it cannot lose)."""
        raise self._unsupported("network interfaces")

    def machine_user_data(self, native_id: str) -> str | None:
        """The machine's user data (base64), for clouds whose listings carry it; others read it one by one."""
        found = next((m for m in self.list_machines() if m.native_id == native_id), None)
        if found is None:
            raise NotFound(f"The machine '{native_id}' does not exist.", kind="machine")
        return found.user_data

    # -- images and flavors ----------------------------------------------------------------------
    def list_images(self) -> list[Image]:
        """Every image the account may launch from (its own and public ones the backend's options offer)."""
        raise self._unsupported("images")

    def get_images(self, native_ids: list[str]) -> list[Image]:
        """The named images that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_images(), native_ids)

    def create_image(self, spec: ImageSpec) -> Image:
        """Capture a machine as an image (pending at first); names need be unique only where the cloud says."""
        raise self._unsupported("image creation")

    def delete_image(self, native_id: str) -> None:
        """Delete (deregister) one of the account's images. NotFound; Forbidden for one it does not own."""
        raise self._unsupported("image deletion")

    def update_image(self, native_id: str, update: ImageUpdate) -> Image:
        """Optional (IMAGE_UPDATE). Change the name and/or description of one of the account's images (None: left
        alone); the image after. NotFound; Forbidden for an image the account does not own."""
        raise self._unsupported("image updates")

    def list_flavors(self) -> list[Flavor]:
        """Every machine size the account may launch, with vCPUs, memory and disk as the cloud reports them."""
        raise self._unsupported("flavors")

    def get_flavors(self, native_ids: list[str]) -> list[Flavor]:
        """The named flavors that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_flavors(), native_ids)

    # -- volumes and snapshots -------------------------------------------------------------------
    def list_volumes(self) -> list[Volume]:
        """Every volume of the account with its tier, state and attachments (device as the cloud names it)."""
        raise self._unsupported("volumes")

    def get_volumes(self, native_ids: list[str]) -> list[Volume]:
        """The named volumes that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_volumes(), native_ids)

    def create_volume(self, spec: VolumeSpec) -> Volume:
        """A new volume of ``spec.tier``, made as the native type the account's ``volume_types`` maps it to
        (the cloud's default type for a tier it does not map); listings read native types back as tiers."""
        raise self._unsupported("volumes")

    def delete_volume(self, native_id: str) -> None:
        """Delete a volume; one still attached is ``Conflict(kind="volume", reason="in_use")``."""
        raise self._unsupported("volumes")

    def update_volume(self, native_id: str, update: VolumeUpdate) -> Volume:
        """Optional (VOLUME_UPDATE; a size needs VOLUME_RESIZE). Rename, describe, or grow a volume (None: left
        alone); the volume after (a resize may still be under way). NotFound; InvalidParameter(reason="size") for a
        smaller size; Conflict(reason="state") where the cloud resizes only some states; Unsupported(reason=field)
        for a field the cloud does not keep, before any change."""
        raise self._unsupported("volume updates")

    def attach_volume(self, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
        """Attach; ``device`` is a wish the cloud may not follow, and without one the backend or its cloud picks:
        the attachment reports the device it chose (possibly only once attached). A volume in use is
        ``Conflict(kind="volume", reason="in_use")``."""
        raise self._unsupported("volume attachment")

    def detach_volume(self, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
        """Detach from ``machine_native_id`` (None: from whatever machine holds it); ``force`` where the cloud has
        one. The volume after (``detaching`` or ``available``). NotFound; Conflict(reason="state") when not attached
        (there)."""
        raise self._unsupported("volume attachment")

    def list_snapshots(self) -> list[Snapshot]:
        """Every snapshot of the account's volumes, with its source volume (None once that is gone) and state."""
        raise self._unsupported("snapshots")

    def get_snapshots(self, native_ids: list[str]) -> list[Snapshot]:
        """The named snapshots that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_snapshots(), native_ids)

    def create_snapshot(self, volume_native_id: str, description: str) -> Snapshot:
        """Snapshot a volume (pending at first); the snapshot. NotFound for the volume; Conflict(reason="state")
        where the cloud snapshots only some volume states."""
        raise self._unsupported("snapshots")

    def delete_snapshot(self, native_id: str) -> None:
        """Delete a snapshot. NotFound; Conflict(reason="in_use") where the cloud keeps one that volumes or
        images still depend on."""
        raise self._unsupported("snapshots")

    # -- networks --------------------------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        """Every network the account sees, with its address range (empty when the cloud gives none) and state."""
        raise self._unsupported("networks")

    def get_networks(self, native_ids: list[str]) -> list[Network]:
        """The named networks that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_networks(), native_ids)

    def create_network(self, spec: NetworkSpec) -> Network:
        """A network of the address range ``spec.cidr`` (any valid range the cloud takes: protocol limits are
        the frontends'), keeping the name and description given."""
        raise self._unsupported("network creation")

    def delete_network(self, native_id: str) -> None:
        """Delete a network as the cloud does: some take its subnets along, some refuse (``Conflict``)."""
        raise self._unsupported("network deletion")

    def update_network(self, native_id: str, update: NetworkUpdate) -> Network:
        """Optional (NETWORK_UPDATE). Rename or describe a network (None: left alone); the network after. NotFound;
        Unsupported(reason=field) for a field the cloud does not keep, before any change."""
        raise self._unsupported("network updates")

    def act_on_network(self, native_id: str, action: NetworkAction) -> Network:
        """Optional (NETWORK_UP_DOWN). Take a network down (state DOWN: its interfaces carry no traffic) or up
        again; the network after (already there: as it is). NotFound for the network."""
        raise self._unsupported("network up and down")

    def list_subnets(self) -> list[Subnet]:
        """Every subnet the account sees (a cloud with flat networks reports one per network and zone)."""
        raise self._unsupported("networks")

    def get_subnets(self, native_ids: list[str]) -> list[Subnet]:
        """The named subnets that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_subnets(), native_ids)

    def create_subnet(self, spec: SubnetSpec) -> Subnet:
        """A subnet of ``spec.cidr`` on ``spec.network_id`` (in ``spec.zone`` where the cloud has zones). NotFound
        for the network; InvalidParameter(reason="cidr") for a range the cloud refuses; Conflict for an overlap."""
        raise self._unsupported("network creation")

    def delete_subnet(self, native_id: str) -> None:
        """Delete a subnet. NotFound; Conflict(reason="in_use") while machines or ports use it."""
        raise self._unsupported("network deletion")

    # -- addresses -------------------------------------------------------------------------------
    def list_addresses(self) -> list[Address]:
        """Every public (floating) address of the account, with the machine and private address it is bound to."""
        raise self._unsupported("addresses")

    def get_addresses(self, native_ids: list[str]) -> list[Address]:
        """The named addresses that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_addresses(), native_ids)

    def allocate_address(self) -> Address:
        """Take a new public address into the account; the address. QuotaExceeded when the cloud has none left."""
        raise self._unsupported("addresses")

    def associate_address(self, native_id: str, machine_native_id: str) -> Address:
        """Bind the address to a machine (moving it from another if bound); the address after. NotFound for
        either; Conflict(reason="state") for a machine that cannot take one (no interface on a routed network)."""
        raise self._unsupported("addresses")

    def disassociate_address(self, native_id: str) -> Address:
        """Unbind the address (already unbound: as it is); the address after. NotFound."""
        raise self._unsupported("addresses")

    def release_address(self, native_id: str) -> None:
        """Give the address back; whether an associated one may go is the cloud's rule (``Conflict`` if not)."""
        raise self._unsupported("addresses")

    # -- key pairs -------------------------------------------------------------------------------
    def list_key_pairs(self) -> list[KeyPair]:
        """Every SSH key pair of the account: name, fingerprint, public key."""
        raise self._unsupported("key pairs")

    def get_key_pairs(self, native_ids: list[str]) -> list[KeyPair]:
        """The named key pairs that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_key_pairs(), native_ids)

    def create_key_pair(self, name: str, key_type: str) -> KeyPairMaterial:
        """Optional (KEY_PAIR_CREATE). Generate a key pair of ``key_type`` (``rsa``, ``ed25519``); the private key is
        returned once and never kept. Conflict(reason="duplicate") for a name in use."""
        raise self._unsupported("key pair generation")

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        """Register a public key under ``name``; the key pair. Conflict(reason="duplicate") for a name in use;
        InvalidParameter for a key the cloud cannot read."""
        raise self._unsupported("key pairs")

    def delete_key_pair(self, native_id: str) -> None:
        """Delete a key pair (machines launched with it keep it). NotFound."""
        raise self._unsupported("key pairs")

    # -- security groups -------------------------------------------------------------------------
    def list_security_groups(self) -> list[SecurityGroup]:
        """Every security group of the account with its rules (each rule with a CIDR or a source group)."""
        raise self._unsupported("security groups")

    def get_security_groups(self, native_ids: list[str]) -> list[SecurityGroup]:
        """The named security groups that exist, in any order; missing ones are left out, never an error. Optional:
        this default filters the listing; override it where the cloud reads by id."""
        return _named(self.list_security_groups(), native_ids)

    def create_security_group(self, spec: SecurityGroupSpec) -> SecurityGroup:
        """A group named ``spec.name`` on ``spec.network_id`` (where the cloud scopes groups by network), with the
        cloud's default rules. Conflict(reason="duplicate") for a name taken there."""
        raise self._unsupported("security groups")

    def delete_security_group(self, native_id: str) -> None:
        """Delete a group. NotFound; Conflict(reason="in_use") while machines or other groups' rules use it."""
        raise self._unsupported("security groups")

    def update_security_group(self, native_id: str, update: SecurityGroupUpdate) -> SecurityGroup:
        """Optional (SECURITY_GROUP_UPDATE). Change a group's description and, where the cloud allows, its name
        (None: left alone); the group after. NotFound; Conflict(reason="duplicate") for a name taken in its network,
        Conflict(reason="default") for renaming a network's default group."""
        raise self._unsupported("security group updates")

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        """Add rules (egress ones need EGRESS_RULES); the group after. Conflict(reason="duplicate") for a rule the
        group has; NotFound for the group or a source group."""
        raise self._unsupported("security groups")

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        """Remove rules; the group after. NotFound(kind="rule") for a rule the group does not have."""
        raise self._unsupported("security groups")

    # -- tags (only with NATIVE_TAGS, for NATIVE_TAG_KINDS, whose create_machines also applies MachineSpec.tags
    # when machines are among them; otherwise the translator keeps tags in Redis) ------------------------
    def set_tags(self, kind: str, native_id: str, tags: dict[str, str]) -> None:
        """Optional (NATIVE_TAGS). Add or overwrite tags on a resource of ``kind`` in the cloud itself. NotFound."""
        raise self._unsupported("native tags")

    def remove_tags(self, kind: str, native_id: str, keys: list[str]) -> None:
        """Optional (NATIVE_TAGS). Remove the tags of these keys (absent ones ignored). NotFound."""
        raise self._unsupported("native tags")


def _named(resources: list[Any], native_ids: list[str]) -> list[Any]:
    wanted = set(native_ids)
    return [r for r in resources if r.native_id in wanted]


ENTRY_POINT_GROUP = "cloudgate.backends"


def available_drivers() -> dict[str, Any]:
    """Backend drivers by name, from the ``cloudgate.backends`` entry points (loaded lazily)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_driver(name: str) -> type[Backend]:
    """The Backend class registered under ``name``; ``InvalidParameter`` names the known ones."""
    eps = available_drivers()
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none"
        raise InvalidParameter(f"unknown backend driver {name!r} (known: {known})", reason="driver")
    cls = eps[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise InvalidParameter(f"entry point {name!r} is not a cloudgate Backend", reason="driver")
    return cls
