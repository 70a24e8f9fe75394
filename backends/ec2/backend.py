"""EC2Backend: Amazon EC2, or any EC2-compatible endpoint (cloudgate's own EC2 frontend included), via botocore.

Every call goes through ``call``: botocore with the account's timeouts and no retries of its own, its faults
turned into canonical errors by ``mapping.canonical_error`` (transient ones are retried by the translator).
Where EC2 answers a broken rule with a generic code, or an EC2-compatible cloud does not check it at all, the
backend looks first, so every cloud gives the same canonical answer; each such look is commented.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from botocore.client import BaseClient

from backends.ec2 import mapping, to_ec2
from backends.ec2.settings import Settings, make_client, parse_settings, validate_options
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.errors import CloudgateError, Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import (
    Address,
    Flavor,
    Image,
    ImageSpec,
    KeyPair,
    KeyPairMaterial,
    Limits,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    Network,
    NetworkSpec,
    Rule,
    SecurityGroup,
    SecurityGroupSpec,
    Snapshot,
    Subnet,
    SubnetSpec,
    Volume,
    VolumeSpec,
    VolumeState,
    Zone,
)

log = logging.getLogger("cloudgate.backends.ec2")

#: Describe calls that page, and the largest page EC2 serves for each.
PAGE_SIZES: Mapping[str, int] = {
    "describe_instances": 1000,
    "describe_images": 1000,
    "describe_instance_types": 100,
    "describe_volumes": 500,
    "describe_snapshots": 1000,
    "describe_vpcs": 1000,
    "describe_subnets": 1000,
    "describe_security_groups": 1000,
}
#: Pages read per listing at most (a bounded loop, whatever a cloud's NextToken does).
MAX_PAGES = 100
#: RunInstances client tokens remembered per backend, so the translator's retry of a launch is not a second one.
TOKENS_KEPT = 64

_S = MachineState


@dataclass(frozen=True, slots=True)
class Act:
    """How a lifecycle action runs: the EC2 call, where its answer is, and the states that decide before it."""

    operation: str
    answer: str | None
    done: frozenset[MachineState]
    refused: frozenset[MachineState]
    params: tuple[tuple[str, Any], ...] = ()  # fixed arguments of the call


#: Canonical action -> its call. ``done``: already there, the machine is returned as it is (EC2's idempotence).
#: ``refused``: EC2's IncorrectInstanceState, answered before calling because not every cloud checks (moto
#: restarts a terminated instance and "reboots" a stopped one into running). Any other state: EC2 decides.
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
    ),
}
#: EC2 changes an instance's type or user data only while it is stopped.
UPDATABLE_STATES = frozenset({MachineState.STOPPED})


class EC2Backend(Backend):
    """An account on EC2 or an EC2-compatible cloud; thread-safe, one botocore client per process."""

    driver: ClassVar[str] = "ec2"
    #: Suspending is hibernating (for instances launched with hibernation). Tags are EC2's own (NATIVE_TAGS).
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    STATE_MAP: ClassVar[Mapping[str, MachineState]] = mapping.STATE_MAP

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        super().__init__(account, services)
        self.settings: Settings = parse_settings(account.options, account.region, account.zones)
        self._ec2_zones = dict(self.settings.zone_map)
        self._gateway_zones: dict[str, str] = {}
        for zone, ec2_zone in self._ec2_zones.items():
            self._gateway_zones.setdefault(ec2_zone, zone)
        self._lock = threading.Lock()
        self._client: tuple[int, BaseClient] | None = None
        self._catalogue: tuple[float, dict[str, Flavor]] | None = None
        self._tokens: OrderedDict[int, tuple[MachineSpec, str]] = OrderedDict()

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        return validate_options(options)

    # -- plumbing ----------------------------------------------------------------------------------
    def client(self) -> BaseClient:
        """This process's client (a client made before a fork would share its connections with the parent)."""
        pid = os.getpid()
        found = self._client
        if found is None or found[0] != pid:
            with self._lock:
                if self._client is None or self._client[0] != pid:
                    self._client = (pid, make_client(self.settings))
                found = self._client
        return found[1]

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._client[0] == os.getpid():
                self._client[1].close()
            self._client = None

    def call(self, operation: str, kind: str, **params: Any) -> dict[str, Any]:
        """One EC2 call about a resource of ``kind``; botocore's faults leave as canonical errors."""
        try:
            return getattr(self.client(), operation)(**params)
        except Exception as exc:
            error = mapping.canonical_error(exc, kind)
            if error is None:
                raise
            raise error from exc

    def pages(self, operation: str, key: str, kind: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged Describe call, following NextToken for at most MAX_PAGES pages."""
        items: list[dict[str, Any]] = []
        token = None
        for _ in range(MAX_PAGES):
            answer = self.call(
                operation, kind, MaxResults=PAGE_SIZES[operation], **params, **({"NextToken": token} if token else {})
            )
            items += answer.get(key) or []
            token = answer.get("NextToken")
            if not token:
                return items
        log.warning("ec2 %s: %s still had pages after %d; listing truncated", self.account.key, operation, MAX_PAGES)
        return items

    def _where(self) -> str:
        return f"EC2 {self.settings.aws_region} at {self.settings.endpoint_url or 'AWS'}"

    # -- placement ---------------------------------------------------------------------------------
    def ec2_zone(self, zone: str | None) -> str:
        """The EC2 zone behind a gateway zone; None is the account's first zone (launches stay in its zones)."""
        name = zone if zone is not None else self.account.zones[0]
        found = self._ec2_zones.get(name)
        if found is None:
            raise NotFound(f"The zone '{name}' is not offered in region {self.account.region}.", kind="zone")
        return found

    def gateway_zone(self, ec2_zone: str) -> str:
        """A zone's gateway name; an EC2 zone the account does not map keeps its EC2 name."""
        return self._gateway_zones.get(ec2_zone, ec2_zone)

    def list_zones(self) -> list[Zone]:
        answer = self.call("describe_availability_zones", "zone")
        states = {z.get("ZoneName"): z.get("State") == "available" for z in answer.get("AvailabilityZones") or ()}
        return [
            Zone(name=z, region=self.account.region, available=states.get(e, False)) for z, e in self._ec2_zones.items()
        ]

    def check(self) -> None:
        """Credentials, endpoint and zones, with one DescribeAvailabilityZones."""
        try:
            zones = self.list_zones()
        except CloudgateError as exc:
            exc.message = f"{self._where()}: {exc.message}"
            exc.args = (exc.message,)
            raise
        missing = [f"{z.name} (EC2 {self._ec2_zones[z.name]})" for z in zones if not z.available]
        if missing:
            raise InvalidParameter(f"{self._where()}: zone(s) not available: {', '.join(missing)}", kind="zone")

    # -- catalogue ---------------------------------------------------------------------------------
    def flavors(self) -> dict[str, Flavor]:
        """The instance types offered, kept ``catalog_ttl`` seconds per process (EC2's catalogue is static)."""
        now = time.monotonic()
        held = self._catalogue
        if held is not None and now - held[0] < self.settings.catalog_ttl:
            return held[1]
        types = self.settings.instance_types
        filters = [{"Name": "instance-type", "Values": list(types)}] if types else []
        items = self.pages("describe_instance_types", "InstanceTypes", "flavor", Filters=filters)
        found = {f.native_id: f for f in map(mapping.flavor, items)}
        self._catalogue = (now, found)
        return found

    def list_flavors(self) -> list[Flavor]:
        return sorted(self.flavors().values(), key=lambda f: f.native_id)

    def list_images(self) -> list[Image]:
        s = self.settings
        items: list[dict[str, Any]] = []
        if s.image_owners or s.image_filters:
            owners = {"Owners": list(s.image_owners)} if s.image_owners else {}
            filters = [{"Name": k, "Values": list(v)} for k, v in s.image_filters]
            items += self.pages("describe_images", "Images", "image", Filters=filters, **owners)
        if s.image_ids:
            # A filter, not ImageIds: a listed AMI that was since deregistered must not fail the whole listing.
            filters = [{"Name": "image-id", "Values": list(s.image_ids)}]
            items += self.pages("describe_images", "Images", "image", Filters=filters)
        unique = {item["ImageId"]: item for item in items}
        return [mapping.image(item) for item in unique.values()]

    def _image(self, native_id: str) -> Image:
        found = self.call("describe_images", "image", ImageIds=[native_id]).get("Images") or []
        if not found:
            raise NotFound(f"The image id '{native_id}' does not exist", kind="image")
        return mapping.image(found[0])

    def create_image(self, spec: ImageSpec) -> Image:
        # EC2 refuses a second AMI of one name in an account (InvalidAMIName.Duplicate); moto does not check.
        filters = [{"Name": "name", "Values": [spec.name.replace("*", "\\*").replace("?", "\\?")]}]
        mine = self.call("describe_images", "image", Owners=["self"], Filters=filters).get("Images") or []
        if any(i.get("Name") == spec.name for i in mine):
            raise Conflict(
                f"AMI name '{spec.name}' is already in use by an image you own.", kind="image", reason="duplicate"
            )
        extra = {"Description": spec.description} if spec.description else {}
        made = self.call("create_image", "image", InstanceId=spec.machine_id, Name=spec.name, **extra)
        image = self._image(made["ImageId"])
        image.source_machine_id = spec.machine_id
        return image

    def delete_image(self, native_id: str) -> None:
        self.call("deregister_image", "image", ImageId=native_id)

    # -- machines ----------------------------------------------------------------------------------
    def _machines(self, reservations: list[dict[str, Any]]) -> list[Machine]:
        flavors = self.flavors()
        return [
            mapping.machine(item, r.get("ReservationId") or "", self.gateway_zone, flavors)
            for r in reservations
            for item in r.get("Instances") or ()
        ]

    def list_machines(self) -> list[Machine]:
        return self._machines(self.pages("describe_instances", "Reservations", "machine"))

    def _instance(self, native_id: str) -> tuple[dict[str, Any], str]:
        """The raw EC2 item of one instance and its reservation id."""
        answer = self.call("describe_instances", "machine", InstanceIds=[native_id])
        for r in answer.get("Reservations") or ():
            for item in r.get("Instances") or ():
                if item.get("InstanceId") == native_id:
                    return item, r.get("ReservationId") or ""
        raise NotFound(f"The instance ID '{native_id}' does not exist", kind="machine")

    def _machine(self, native_id: str) -> Machine:
        item, reservation = self._instance(native_id)
        return mapping.machine(item, reservation, self.gateway_zone, self.flavors())

    def _client_token(self, spec: MachineSpec) -> str:
        """One token per launch request: the translator retries with the very same spec object."""
        with self._lock:
            held = self._tokens.get(id(spec))
            if held is not None and held[0] is spec:
                return held[1]
            token = uuid.uuid4().hex
            self._tokens[id(spec)] = (spec, token)
            while len(self._tokens) > TOKENS_KEPT:
                self._tokens.popitem(last=False)
            return token

    def create_machines(self, spec: MachineSpec) -> list[Machine]:
        flavors = self.flavors()
        # EC2 answers an unknown type with InvalidParameterValue (no kind); the catalogue answers precisely.
        if spec.flavor_id not in flavors:
            raise NotFound(f"The instance type '{spec.flavor_id}' is not offered.", kind="flavor")
        params: dict[str, Any] = {
            "ImageId": spec.image_id,
            "InstanceType": spec.flavor_id,
            "MinCount": spec.count,
            "MaxCount": spec.count,
            "ClientToken": self._client_token(spec),
            "TagSpecifications": to_ec2.name_tags("instance", spec.name, spec.tags),
        }
        if spec.subnet_id:
            params["SubnetId"] = spec.subnet_id
        if spec.zone is not None or not spec.subnet_id:
            params["Placement"] = {"AvailabilityZone": self.ec2_zone(spec.zone)}
        if spec.key_name is not None:
            params["KeyName"] = spec.key_name
        if spec.security_group_ids:
            params["SecurityGroupIds"] = list(spec.security_group_ids)
        if spec.user_data:
            params["UserData"] = spec.user_data
        if spec.hibernation:
            params["HibernationOptions"] = {"Configured": True}
        if spec.block_devices:
            params["BlockDeviceMappings"] = [
                {
                    "DeviceName": b.device,
                    "Ebs": {
                        "VolumeType": b.volume_type,
                        "DeleteOnTermination": b.delete_on_termination,
                        **({"VolumeSize": b.size_gb} if b.size_gb else {}),
                        **({"SnapshotId": b.snapshot_id} if b.snapshot_id else {}),
                    },
                }
                for b in spec.block_devices
            ]
        answer = self.call("run_instances", "machine", **params)
        reservation = answer.get("ReservationId") or ""
        return [mapping.machine(i, reservation, self.gateway_zone, flavors) for i in answer.get("Instances") or ()]

    def act_on_machine(self, native_id: str, action: MachineAction, force: bool = False) -> Machine:
        act = ACTIONS.get(action)
        if act is None:
            raise self._unsupported(f"machine action {action}")
        current = self._machine(native_id)
        if current.state in act.done:
            return current
        if current.state in act.refused:
            raise Conflict(
                f"The instance '{native_id}' is {current.state}: it cannot {action} now.",
                kind="machine",
                reason="state",
            )
        params: dict[str, Any] = {"InstanceIds": [native_id], **dict(act.params)}
        if force and action == MachineAction.STOP:
            params["Force"] = True
        answer = self.call(act.operation, "machine", **params)
        changes = (answer.get(act.answer) or []) if act.answer else []
        if changes:
            current.state = mapping.machine_state({"State": changes[0].get("CurrentState") or {}})
        elif action == MachineAction.REBOOT:
            current.state = mapping.STATE_MAP["rebooting"]
        current.updated = time.time()
        return current

    def update_machine(self, native_id: str, update: MachineUpdate) -> Machine:
        current = self._machine(native_id)
        changes: list[dict[str, Any]] = []
        if update.flavor_id is not None:
            if update.flavor_id not in self.flavors():
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
            self.call("modify_instance_attribute", "machine", InstanceId=native_id, **change)
        if update.name:
            self.call("create_tags", "machine", Resources=[native_id], Tags=[{"Key": "Name", "Value": update.name}])
        elif update.name == "":
            self.call("delete_tags", "machine", Resources=[native_id], Tags=[{"Key": "Name"}])
        return self._machine(native_id)

    def limits(self) -> Limits:
        names = list(mapping.LIMIT_ATTRIBUTES)
        answer = self.call("describe_account_attributes", "account", AttributeNames=names)
        return mapping.limits(answer.get("AccountAttributes") or [])

    def console_output(self, native_id: str) -> str:
        # botocore decodes EC2's base64 Output already (handlers.decode_console_output).
        return str(self.call("get_console_output", "machine", InstanceId=native_id).get("Output") or "")

    def machine_user_data(self, native_id: str) -> str | None:
        # DescribeInstances does not carry user data; this answer's value is already base64 text.
        found = self.call("describe_instance_attribute", "machine", InstanceId=native_id, Attribute="userData")
        return (found.get("UserData") or {}).get("Value") or None

    # -- volumes and snapshots ---------------------------------------------------------------------
    def list_volumes(self) -> list[Volume]:
        return [mapping.volume(v, self.gateway_zone) for v in self.pages("describe_volumes", "Volumes", "volume")]

    def _volume(self, native_id: str) -> Volume:
        found = self.call("describe_volumes", "volume", VolumeIds=[native_id]).get("Volumes") or []
        if not found:
            raise NotFound(f"The volume '{native_id}' does not exist.", kind="volume")
        return mapping.volume(found[0], self.gateway_zone)

    def create_volume(self, spec: VolumeSpec) -> Volume:
        params: dict[str, Any] = {
            "AvailabilityZone": self.ec2_zone(spec.zone),
            "VolumeType": spec.volume_type,
            "TagSpecifications": to_ec2.name_tags("volume", spec.name),
        }
        if spec.size_gb:
            params["Size"] = spec.size_gb
        if spec.snapshot_id:
            params["SnapshotId"] = spec.snapshot_id
        return mapping.volume(self.call("create_volume", "volume", **params), self.gateway_zone)

    def delete_volume(self, native_id: str) -> None:
        self.call("delete_volume", "volume", VolumeId=native_id)

    def attach_volume(self, native_id: str, machine_native_id: str, device: str) -> Volume:
        # Looked up first: EC2 answers both clashes below with codes that do not say which (and moto takes both).
        vol = self._volume(native_id)
        if vol.state != VolumeState.AVAILABLE:
            reason = "in_use" if vol.state == VolumeState.IN_USE else "state"
            raise Conflict(f"vol '{native_id}' is not 'available'. It is '{vol.state}'.", kind="volume", reason=reason)
        item, _ = self._instance(machine_native_id)
        if any(m.get("DeviceName") == device for m in item.get("BlockDeviceMappings") or ()):
            raise Conflict(f"Attachment point {device} is already in use", kind="attachment", reason="in_use")
        self.call("attach_volume", "volume", VolumeId=native_id, InstanceId=machine_native_id, Device=device)
        return self._volume(native_id)

    def detach_volume(self, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
        vol = self._volume(native_id)
        if not vol.attachments:
            raise Conflict(f"Volume '{native_id}' is in the '{vol.state}' state.", kind="volume", reason="state")
        attachment = vol.attachments[0]
        if machine_native_id is not None and attachment.machine_id != machine_native_id:
            raise NotFound(f"The volume '{native_id}' is not attached to '{machine_native_id}'.", kind="attachment")
        # The instance is always named: AWS takes DetachVolume with or without it, moto answers a 500 without.
        params: dict[str, Any] = {"VolumeId": native_id, "InstanceId": attachment.machine_id}
        if force:
            params["Force"] = True
        self.call("detach_volume", "volume", **params)
        return self._volume(native_id)

    def list_snapshots(self) -> list[Snapshot]:
        items = self.pages("describe_snapshots", "Snapshots", "snapshot", OwnerIds=["self"])
        return [mapping.snapshot(s) for s in items]

    def create_snapshot(self, volume_native_id: str, description: str) -> Snapshot:
        extra = {"Description": description} if description else {}
        return mapping.snapshot(self.call("create_snapshot", "volume", VolumeId=volume_native_id, **extra))

    def delete_snapshot(self, native_id: str) -> None:
        self.call("delete_snapshot", "snapshot", SnapshotId=native_id)

    # -- networks ----------------------------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        return [mapping.network(v) for v in self.pages("describe_vpcs", "Vpcs", "network")]

    def create_network(self, spec: NetworkSpec) -> Network:
        cidr = to_ec2.check_cidr(spec.cidr, "network")
        made = self.call("create_vpc", "network", CidrBlock=cidr, TagSpecifications=to_ec2.name_tags("vpc", spec.name))
        return mapping.network(made["Vpc"])

    def delete_network(self, native_id: str) -> None:
        self.call("delete_vpc", "network", VpcId=native_id)

    def list_subnets(self) -> list[Subnet]:
        """The subnets in the account's zones: the account sees the EC2 region through them."""
        filters = [{"Name": "availability-zone", "Values": sorted(set(self._ec2_zones.values()))}]
        items = self.pages("describe_subnets", "Subnets", "subnet", Filters=filters)
        return [mapping.subnet(s, self.gateway_zone) for s in items]

    def create_subnet(self, spec: SubnetSpec) -> Subnet:
        cidr = to_ec2.check_cidr(spec.cidr, "subnet")
        made = self.call(
            "create_subnet",
            "subnet",
            VpcId=spec.network_id,
            CidrBlock=cidr,
            AvailabilityZone=self.ec2_zone(spec.zone),
            TagSpecifications=to_ec2.name_tags("subnet", spec.name),
        )
        return mapping.subnet(made["Subnet"], self.gateway_zone)

    def delete_subnet(self, native_id: str) -> None:
        self.call("delete_subnet", "subnet", SubnetId=native_id)

    # -- addresses ---------------------------------------------------------------------------------
    @staticmethod
    def _address_ref(native_id: str) -> dict[str, str]:
        """How EC2 names an address: its allocation id, or its public IP for an EC2-Classic one."""
        return {"PublicIp": native_id} if to_ec2.is_ip(native_id) else {"AllocationId": native_id}

    def list_addresses(self) -> list[Address]:
        return [mapping.address(a) for a in self.call("describe_addresses", "address").get("Addresses") or ()]

    def _address(self, native_id: str) -> Address:
        ref = self._address_ref(native_id)
        query = {"PublicIps": [native_id]} if "PublicIp" in ref else {"AllocationIds": [native_id]}
        found = self.call("describe_addresses", "address", **query).get("Addresses") or []
        if not found:
            raise NotFound(f"The allocation ID '{native_id}' does not exist", kind="address")
        return mapping.address(found[0])

    def allocate_address(self) -> Address:
        return mapping.address(self.call("allocate_address", "address", Domain="vpc"))

    def associate_address(self, native_id: str, machine_native_id: str) -> Address:
        self.call("associate_address", "address", InstanceId=machine_native_id, **self._address_ref(native_id))
        return self._address(native_id)

    def disassociate_address(self, native_id: str) -> Address:
        address = self._address(native_id)
        if not (address.association_id or address.machine_id):
            raise Conflict(f"The address '{native_id}' is not associated.", kind="address", reason="state")
        ref = {"AssociationId": address.association_id} if address.association_id else {"PublicIp": address.public_ip}
        self.call("disassociate_address", "address", **ref)
        return self._address(native_id)

    def release_address(self, native_id: str) -> None:
        # AWS refuses to release an associated VPC address (InvalidIPAddress.InUse); moto releases it.
        address = self._address(native_id)
        if address.association_id or address.machine_id:
            raise Conflict(
                f"The address '{native_id}' is associated with '{address.machine_id}'; disassociate it first.",
                kind="address",
                reason="in_use",
            )
        self.call("release_address", "address", **self._address_ref(native_id))

    # -- key pairs ---------------------------------------------------------------------------------
    def list_key_pairs(self) -> list[KeyPair]:
        answer = self.call("describe_key_pairs", "key_pair", IncludePublicKey=True)
        return [mapping.key_pair(k) for k in answer.get("KeyPairs") or ()]

    def create_key_pair(self, name: str, key_type: str) -> KeyPairMaterial:
        # KeyType only when not EC2's default: EC2-compatible clouds older than ED25519 keys do not take it.
        typed = {"KeyType": key_type} if key_type != "rsa" else {}
        made = self.call("create_key_pair", "key_pair", KeyName=name, **typed)
        private = made.get("KeyMaterial") or ""
        made["PublicKey"] = to_ec2.public_half(private)
        made.setdefault("KeyType", key_type)
        return KeyPairMaterial(key_pair=mapping.key_pair(made), private_key=private)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        made = self.call("import_key_pair", "key_pair", KeyName=name, PublicKeyMaterial=public_key.encode())
        made["PublicKey"] = public_key
        return mapping.key_pair(made)

    def delete_key_pair(self, native_id: str) -> None:
        # EC2's DeleteKeyPair succeeds for a name that does not exist; the canonical answer is NotFound.
        self.call("describe_key_pairs", "key_pair", KeyNames=[native_id])
        self.call("delete_key_pair", "key_pair", KeyName=native_id)

    # -- security groups ---------------------------------------------------------------------------
    def list_security_groups(self) -> list[SecurityGroup]:
        items = self.pages("describe_security_groups", "SecurityGroups", "security_group")
        return [mapping.security_group(g) for g in items]

    def _group(self, native_id: str) -> SecurityGroup:
        found = self.call("describe_security_groups", "security_group", GroupIds=[native_id]).get("SecurityGroups")
        if not found:
            raise NotFound(f"The security group '{native_id}' does not exist", kind="security_group")
        return mapping.security_group(found[0])

    def create_security_group(self, spec: SecurityGroupSpec) -> SecurityGroup:
        extra = {"VpcId": spec.network_id} if spec.network_id else {}
        made = self.call(
            "create_security_group", "security_group", GroupName=spec.name, Description=spec.description, **extra
        )
        return self._group(made["GroupId"])

    def delete_security_group(self, native_id: str) -> None:
        self.call("delete_security_group", "security_group", GroupId=native_id)

    def _permissions(self, rules: list[Rule], *, with_description: bool) -> dict[str, list[dict[str, Any]]]:
        """Rules by direction as EC2 IpPermissions (checked here: moto takes port 70000)."""
        out: dict[str, list[dict[str, Any]]] = {}
        for rule in rules:
            if rule.direction not in ("ingress", "egress"):
                raise InvalidParameter(
                    f"The rule direction '{rule.direction}' is not ingress or egress.", kind="rule", reason="direction"
                )
            out.setdefault(rule.direction, []).append(to_ec2.permission(rule, with_description=with_description))
        return out

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        for direction, permissions in self._permissions(rules, with_description=True).items():
            operation = f"authorize_security_group_{direction}"
            self.call(operation, "rule", GroupId=native_id, IpPermissions=permissions)
        return self._group(native_id)

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        for direction, permissions in self._permissions(rules, with_description=False).items():
            answer = self.call(
                f"revoke_security_group_{direction}", "rule", GroupId=native_id, IpPermissions=permissions
            )
            # AWS answers rules that are not there with UnknownIpPermissions; older clouds and moto with an error.
            if answer.get("UnknownIpPermissions"):
                raise NotFound("The specified rule does not exist in this security group.", kind="rule")
        return self._group(native_id)

    # -- tags ------------------------------------------------------------------------------------
    def _taggable(self, kind: str, native_id: str) -> str:
        """The EC2 id CreateTags takes: key pairs are known here by name, EC2 tags them by KeyPairId."""
        if kind == "flavor":
            raise Unsupported("Instance types cannot be tagged.", kind="flavor", reason="native_tags")
        if kind != "key_pair":
            return native_id
        answer = self.call("describe_key_pairs", "key_pair", KeyNames=[native_id])
        (found,) = answer.get("KeyPairs") or [{}]
        if not found.get("KeyPairId"):
            raise Unsupported("This cloud does not tag key pairs.", kind="key_pair", reason="native_tags")
        return str(found["KeyPairId"])

    def set_tags(self, kind: str, native_id: str, tags: dict[str, str]) -> None:
        if tags:
            resource = self._taggable(kind, native_id)
            self.call("create_tags", kind, Resources=[resource], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def remove_tags(self, kind: str, native_id: str, keys: list[str]) -> None:
        if keys:
            resource = self._taggable(kind, native_id)
            self.call("delete_tags", kind, Resources=[resource], Tags=[{"Key": k} for k in keys])
