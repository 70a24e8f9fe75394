"""EC2Backend: Amazon EC2, or any EC2-compatible endpoint (cloudgate's own EC2 frontend included), via botocore.

Every call goes through ``call``: botocore with the account's timeouts and no retries of its own, its faults
turned into canonical errors by ``mapping.canonical_error`` (transient ones are retried by the translator).
Where EC2 answers a broken rule with a generic code, or an EC2-compatible cloud does not check it at all, the
backend looks first, so every cloud gives the same canonical answer; each such look is commented in the module
owning that resource kind. Each method here is a hand-off to that module.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, ClassVar

from botocore.client import BaseClient

from backends.ec2 import images, interfaces, keys, machines, mapping, native_tags, network, security_groups, volumes
from backends.ec2.lean_call import LEAN, LeanCaller
from backends.ec2.settings import Settings, credentials_of, make_client, parse_settings, validate_options
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.errors import CloudgateError, InvalidParameter, NotFound
from translator.model import (
    ActionMethod,
    Address,
    Flavor,
    Image,
    ImageSpec,
    InterfaceSpec,
    KeyPair,
    KeyPairMaterial,
    Limits,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    Network,
    NetworkInterface,
    NetworkSpec,
    NetworkUpdate,
    Rule,
    SecurityGroup,
    SecurityGroupSpec,
    Snapshot,
    Subnet,
    SubnetSpec,
    Volume,
    VolumeSpec,
    VolumeUpdate,
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
#: Values one EC2 filter takes (AWS's documented limit).
FILTER_VALUES = 200
#: RunInstances client tokens remembered per backend, so the translator's retry of a launch is not a second one.
TOKENS_KEPT = 64


#: What EC2 cannot do, or what moto (the cloud it is tested against) does not keep.
UNSUPPORTED = frozenset(
    {
        Capability.MACHINE_PAUSE,
        Capability.REBOOT_HARD,
        Capability.NETWORK_UP_DOWN,
        Capability.SECURITY_GROUP_UPDATE,  # EC2 changes neither a group's name nor its description
        Capability.IMAGE_UPDATE,  # AMI names are fixed; ModifyImageAttribute's Description is not kept by moto
    }
)


class EC2Backend(Backend):
    """An account on EC2 or an EC2-compatible cloud; thread-safe, one botocore client per process."""

    driver: ClassVar[str] = "ec2"
    #: Suspending is hibernating (for instances launched with hibernation). Tags are EC2's own (NATIVE_TAGS).
    #: EC2 has no paused state, no hard reboot (a hard stop is StopInstances' Force), no VPC that is down.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - UNSUPPORTED
    STATE_MAP: ClassVar[Mapping[str, MachineState]] = mapping.STATE_MAP
    NATIVE_STATES: ClassVar[frozenset[str]] = mapping.NATIVE_STATES

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        super().__init__(account, services)
        self.settings: Settings = parse_settings(account.options, account.region, account.zones)
        #: gateway zone -> EC2 zone, and back.
        self.ec2_zones = dict(self.settings.zone_map)
        self._gateway_zones: dict[str, str] = {}
        for zone, ec2_zone in self.ec2_zones.items():
            self._gateway_zones.setdefault(ec2_zone, zone)
        self._lock = threading.Lock()
        self._client: tuple[int, BaseClient, LeanCaller | None] | None = None
        self._catalogue: tuple[float, dict[str, Flavor]] | None = None
        self._tokens: OrderedDict[int, tuple[MachineSpec, str]] = OrderedDict()

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        return validate_options(options)

    # -- plumbing the resource modules share ------------------------------------------------------
    def client(self) -> BaseClient:
        """This process's client (a client made before a fork would share its connections with the parent)."""
        return self._parts()[1]

    def lean(self) -> LeanCaller | None:
        """This process's lean calls through that client (lean_call.py); None where they cannot be made."""
        return self._parts()[2]

    def _parts(self) -> tuple[int, BaseClient, LeanCaller | None]:
        pid = os.getpid()
        found = self._client
        if found is None or found[0] != pid:
            with self._lock:
                if self._client is None or self._client[0] != pid:
                    client = make_client(self.settings)
                    self._client = (pid, client, LeanCaller.of(client, credentials_of(self.settings)))
                found = self._client
        return found

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._client[0] == os.getpid():
                self._client[1].close()
            self._client = None

    def call(self, operation: str, kind: str, **params: Any) -> dict[str, Any]:
        """One EC2 call about a resource of ``kind``; botocore's faults leave as canonical errors."""
        _, client, lean = self._parts()
        try:
            if lean is not None and operation in LEAN:
                return lean.call(operation, params)
            return getattr(client, operation)(**params)
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

    def named(self, operation: str, key: str, kind: str, id_filter: str, native_ids: list[str]) -> list[dict[str, Any]]:
        """The items of a Describe call with these ids. An id filter, not ``<Kind>Ids``: EC2 fails a whole
        call naming one missing id, and a read by id must leave the missing out."""
        items: list[dict[str, Any]] = []
        for start in range(0, len(native_ids), FILTER_VALUES):
            chunk = native_ids[start : start + FILTER_VALUES]
            items += self.pages(operation, key, kind, Filters=[{"Name": id_filter, "Values": chunk}])
        return items

    def client_token(self, spec: MachineSpec) -> str:
        """One RunInstances token per launch request: the translator retries with the very same spec object."""
        with self._lock:
            held = self._tokens.get(id(spec))
            if held is not None and held[0] is spec:
                return held[1]
            token = uuid.uuid4().hex
            self._tokens[id(spec)] = (spec, token)
            while len(self._tokens) > TOKENS_KEPT:
                self._tokens.popitem(last=False)
            return token

    def flavors(self) -> dict[str, Flavor]:
        """The instance types offered, kept ``catalog_ttl`` seconds per process (EC2's catalogue is static)."""
        now = time.monotonic()
        held = self._catalogue
        if held is not None and now - held[0] < self.settings.catalog_ttl:
            return held[1]
        found = images.fetch_flavors(self)
        self._catalogue = (now, found)
        return found

    def _where(self) -> str:
        return f"EC2 {self.settings.aws_region} at {self.settings.endpoint_url or 'AWS'}"

    # -- placement ---------------------------------------------------------------------------------
    def ec2_zone(self, zone: str | None) -> str:
        """The EC2 zone behind a gateway zone; None is the account's first zone (launches stay in its zones)."""
        name = zone if zone is not None else self.account.zones[0]
        found = self.ec2_zones.get(name)
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
            Zone(name=z, region=self.account.region, available=states.get(e, False)) for z, e in self.ec2_zones.items()
        ]

    def check(self) -> None:
        """Credentials, endpoint and zones, with one DescribeAvailabilityZones."""
        try:
            zones = self.list_zones()
        except CloudgateError as exc:
            exc.message = f"{self._where()}: {exc.message}"
            exc.args = (exc.message,)
            raise
        missing = [f"{z.name} (EC2 {self.ec2_zones[z.name]})" for z in zones if not z.available]
        if missing:
            raise InvalidParameter(f"{self._where()}: zone(s) not available: {', '.join(missing)}", kind="zone")

    def limits(self) -> Limits:
        return machines.limits(self)

    # -- machines --------------------------------------------------------------------------------
    def list_machines(self) -> list[Machine]:
        return machines.list_machines(self)

    def get_machines(self, native_ids: list[str]) -> list[Machine]:
        return machines.get_machines(self, native_ids)

    def create_machines(self, spec: MachineSpec) -> list[Machine]:
        return machines.create_machines(self, spec)

    def act_on_machine(
        self, native_id: str, action: MachineAction, method: ActionMethod = ActionMethod.GRACEFUL
    ) -> Machine:
        return machines.act_on_machine(self, native_id, action, method)

    def update_machine(self, native_id: str, update: MachineUpdate) -> Machine:
        return machines.update_machine(self, native_id, update)

    def console_output(self, native_id: str) -> str:
        return machines.console_output(self, native_id)

    def attach_interface(self, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
        return interfaces.attach_interface(self, native_id, spec)

    def detach_interface(self, native_id: str, interface_native_id: str) -> None:
        interfaces.detach_interface(self, native_id, interface_native_id)

    def machine_user_data(self, native_id: str) -> str | None:
        return machines.user_data(self, native_id)

    # -- images and flavors ----------------------------------------------------------------------
    def list_images(self) -> list[Image]:
        return images.list_images(self)

    def get_images(self, native_ids: list[str]) -> list[Image]:
        return images.get_images(self, native_ids)

    def create_image(self, spec: ImageSpec) -> Image:
        return images.create_image(self, spec)

    def delete_image(self, native_id: str) -> None:
        images.delete_image(self, native_id)

    def list_flavors(self) -> list[Flavor]:
        return sorted(self.flavors().values(), key=lambda f: f.native_id)

    # -- volumes and snapshots -------------------------------------------------------------------
    def list_volumes(self) -> list[Volume]:
        return volumes.list_volumes(self)

    def get_volumes(self, native_ids: list[str]) -> list[Volume]:
        return volumes.get_volumes(self, native_ids)

    def create_volume(self, spec: VolumeSpec) -> Volume:
        return volumes.create_volume(self, spec)

    def delete_volume(self, native_id: str) -> None:
        volumes.delete_volume(self, native_id)

    def update_volume(self, native_id: str, update: VolumeUpdate) -> Volume:
        return volumes.update_volume(self, native_id, update)

    def attach_volume(self, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
        return volumes.attach_volume(self, native_id, machine_native_id, device)

    def detach_volume(self, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
        return volumes.detach_volume(self, native_id, machine_native_id, force)

    def list_snapshots(self) -> list[Snapshot]:
        return volumes.list_snapshots(self)

    def get_snapshots(self, native_ids: list[str]) -> list[Snapshot]:
        return volumes.get_snapshots(self, native_ids)

    def create_snapshot(self, volume_native_id: str, description: str) -> Snapshot:
        return volumes.create_snapshot(self, volume_native_id, description)

    def delete_snapshot(self, native_id: str) -> None:
        volumes.delete_snapshot(self, native_id)

    # -- networks --------------------------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        return network.list_networks(self)

    def create_network(self, spec: NetworkSpec) -> Network:
        return network.create_network(self, spec)

    def delete_network(self, native_id: str) -> None:
        network.delete_network(self, native_id)

    def update_network(self, native_id: str, update: NetworkUpdate) -> Network:
        return network.update_network(self, native_id, update)

    def list_subnets(self) -> list[Subnet]:
        return network.list_subnets(self)

    def create_subnet(self, spec: SubnetSpec) -> Subnet:
        return network.create_subnet(self, spec)

    def delete_subnet(self, native_id: str) -> None:
        network.delete_subnet(self, native_id)

    # -- addresses -------------------------------------------------------------------------------
    def list_addresses(self) -> list[Address]:
        return network.list_addresses(self)

    def allocate_address(self) -> Address:
        return network.allocate_address(self)

    def associate_address(self, native_id: str, machine_native_id: str) -> Address:
        return network.associate_address(self, native_id, machine_native_id)

    def disassociate_address(self, native_id: str) -> Address:
        return network.disassociate_address(self, native_id)

    def release_address(self, native_id: str) -> None:
        network.release_address(self, native_id)

    # -- key pairs -------------------------------------------------------------------------------
    def list_key_pairs(self) -> list[KeyPair]:
        return keys.list_key_pairs(self)

    def create_key_pair(self, name: str, key_type: str) -> KeyPairMaterial:
        return keys.create_key_pair(self, name, key_type)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        return keys.import_key_pair(self, name, public_key)

    def delete_key_pair(self, native_id: str) -> None:
        keys.delete_key_pair(self, native_id)

    # -- security groups -------------------------------------------------------------------------
    def list_security_groups(self) -> list[SecurityGroup]:
        return security_groups.list_security_groups(self)

    def create_security_group(self, spec: SecurityGroupSpec) -> SecurityGroup:
        return security_groups.create_security_group(self, spec)

    def delete_security_group(self, native_id: str) -> None:
        security_groups.delete_security_group(self, native_id)

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.authorize_rules(self, native_id, rules)

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.revoke_rules(self, native_id, rules)

    # -- tags ------------------------------------------------------------------------------------
    def set_tags(self, kind: str, native_id: str, tags: dict[str, str]) -> None:
        native_tags.set_tags(self, kind, native_id, tags)

    def remove_tags(self, kind: str, native_id: str, keys: list[str]) -> None:
        native_tags.remove_tags(self, kind, native_id, keys)
