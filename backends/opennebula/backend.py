"""OpenNebulaBackend: one OpenNebula user (its ``session``) behind one oned endpoint, as a cloudgate account.

Each method hands off to the module owning that resource kind. Zones are the account's configured ones (oned's
clusters are the operator's placement, not the user's); flavors are templates the operator marks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from backends.opennebula import (
    addresses,
    catalog,
    groups,
    images,
    keys,
    machines,
    networks,
    options,
    tags,
    volumes,
)
from backends.opennebula.client import One
from backends.opennebula.machines import NATIVE_STATES, STATE_MAP
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.errors import CloudgateError, InvalidParameter, Unsupported
from translator.model import (
    ActionMethod,
    Address,
    Flavor,
    Image,
    ImageSpec,
    ImageUpdate,
    InterfaceSpec,
    KeyPair,
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
)

CAPABILITIES = frozenset(
    {
        Capability.MACHINES,
        Capability.MACHINE_SUSPEND,
        Capability.IMAGES,
        Capability.STOP_HARD,
        Capability.REBOOT_HARD,
        Capability.KEY_PAIRS,
        Capability.VOLUMES,
        Capability.SNAPSHOTS,
        Capability.NETWORKS,
        Capability.MACHINE_INTERFACES,
        Capability.ADDRESSES,
        Capability.SECURITY_GROUPS,
        Capability.EGRESS_RULES,
        Capability.NATIVE_TAGS,
        Capability.IMAGE_CREATE,
        Capability.IMAGE_UPDATE,
        Capability.MACHINE_RESIZE,
        Capability.VOLUME_UPDATE,  # no VOLUME_RESIZE: see volumes.update_volume
        Capability.NETWORK_CREATE,
        Capability.NETWORK_UPDATE,  # no NETWORK_UP_DOWN: oned's virtual networks have no administrative state
    }
)
#: The kinds whose objects are the account's own (the user's VMs and images, listed with the MINE filter). The
#: others are shared (OS images, virtual networks and security groups the operator offers every user: tags in
#: their templates would show to every tenant and need MANAGE on them) or no OpenNebula object at all (subnets,
#: addresses, key pairs, flavors): their tags stay in Redis, per tenant.
NATIVE_TAG_KINDS = frozenset({"machine", "volume", "snapshot"})
#: kind -> where its tags live (read NotFound of that kind, the template holding them, the update writing it).
TAG_TARGETS: Mapping[str, tags.Target] = {
    "machine": tags.Target(machines.read_vm, "USER_TEMPLATE", "vm.update"),
    "volume": tags.Target(volumes.volume_image, "TEMPLATE", "image.update"),
    "snapshot": tags.Target(volumes.snapshot_image, "TEMPLATE", "image.update"),
}
FLAVOR_TTL = 60.0  # seconds a process keeps flavor names (machines are listed with them)


class OpenNebulaBackend(Backend):
    """oned's XML-RPC API through pyone, on the account's session."""

    driver: ClassVar[str] = "opennebula"
    capabilities: ClassVar[frozenset[Capability]] = CAPABILITIES
    STATE_MAP: ClassVar[Mapping[str, MachineState]] = STATE_MAP
    NATIVE_STATES: ClassVar[frozenset[str]] = NATIVE_STATES
    NATIVE_TAG_KINDS: ClassVar[frozenset[str]] = NATIVE_TAG_KINDS

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        super().__init__(account, services)
        self.opts = options.parse(account.options)
        self.one = One(self.opts)
        self._flavors: tuple[float, dict[str, str]] = (0.0, {})
        self._public: tuple[float, str | None] = (-FLAVOR_TTL, None)
        self._parents: tuple[float, dict[str, str]] = (0.0, {})
        self._lock = threading.Lock()

    @classmethod
    def validate_options(cls, options_table: Mapping[str, Any]) -> list[str]:
        return options.validate_options(options_table)

    def check(self) -> None:
        """Authenticate (``one.user.info``), then find at least one flavor template the user may instantiate."""
        self.one.call("user.info", -1, False, what="check credentials")
        if not catalog.list_flavors(self):
            raise InvalidParameter(
                f"opennebula: no VM template visible to this user carries {self.opts.flavor_attribute} with CPU "
                "and MEMORY: there is no flavor to launch",
                kind="flavor",
                reason="flavor_attribute",
            )

    def close(self) -> None:
        self.one.close()

    def unsupported(self, what: str) -> Unsupported:
        return self._unsupported(what)

    # -- lookups shared by the resource modules ---------------------------------------------------
    def flavor_name(self, native_id: str | None) -> str:
        """A flavor's name by template id, from a per-process copy refreshed every minute."""
        if native_id is None:
            return ""
        fetched, names = self._flavors
        age = time.monotonic() - fetched
        if (native_id not in names and age > 1.0) or age > FLAVOR_TTL:  # an unknown id: refresh, once a second
            try:
                names = {f.native_id: f.name for f in catalog.list_flavors(self)}
            except CloudgateError:
                return names.get(native_id, "")
            with self._lock:
                self._flavors = (time.monotonic(), names)
        return names.get(native_id, "")

    def public_network(self) -> str | None:
        """The public network's id (machines show their NIC on it as their public address), kept a minute."""
        fetched, found = self._public
        if not self.opts.public_network:
            return None
        if time.monotonic() - fetched > FLAVOR_TTL:
            try:
                vn_id = addresses.public_network_id(self)
            except CloudgateError:
                return found
            found = None if vn_id is None else str(vn_id)
            with self._lock:
                self._public = (time.monotonic(), found)
        return found

    def network_of_vnet(self, vnet_id: str | None) -> str | None:
        """The network a NIC's virtual network belongs to: a subnet's virtual network belongs to the gateway
        network it was made in, any other is a network itself (a per-process copy, like flavor names)."""
        if vnet_id is None:
            return None
        fetched, parents = self._parents
        age = time.monotonic() - fetched
        if (vnet_id not in parents and age > 1.0) or age > FLAVOR_TTL:
            try:
                parents = {str(v.ID): networks.parent_of(v) or str(v.ID) for v in networks.pool(self)}
            except CloudgateError:
                return parents.get(vnet_id, vnet_id)
            with self._lock:
                self._parents = (time.monotonic(), parents)
        return parents.get(vnet_id, vnet_id)

    def find_key(self, name: str) -> str:
        return keys.find_key(self, name)

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

    # -- key pairs -------------------------------------------------------------------------------
    def list_key_pairs(self) -> list[KeyPair]:
        return keys.list_key_pairs(self)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        return keys.import_key_pair(self, name, public_key)

    def delete_key_pair(self, native_id: str) -> None:
        keys.delete_key_pair(self, native_id)

    # -- images and flavors ----------------------------------------------------------------------
    def list_images(self) -> list[Image]:
        return catalog.list_images(self)

    def create_image(self, spec: ImageSpec) -> Image:
        return images.create_image(self, spec)

    def delete_image(self, native_id: str) -> None:
        images.delete_image(self, native_id)

    def update_image(self, native_id: str, update: ImageUpdate) -> Image:
        return images.update_image(self, native_id, update)

    def list_flavors(self) -> list[Flavor]:
        return catalog.list_flavors(self)

    # -- volumes and snapshots -------------------------------------------------------------------
    def list_volumes(self) -> list[Volume]:
        return volumes.list_volumes(self)

    def create_volume(self, spec: VolumeSpec) -> Volume:
        return volumes.create_volume(self, spec)

    def delete_volume(self, native_id: str) -> None:
        volumes.delete_volume(self, native_id)

    def update_volume(self, native_id: str, update: VolumeUpdate) -> Volume:
        return volumes.update_volume(self, native_id, update)

    def attach_volume(self, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
        return volumes.attach_volume(self, native_id, machine_native_id, device)

    def detach_volume(self, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
        return volumes.detach_volume(self, native_id, machine_native_id)

    def list_snapshots(self) -> list[Snapshot]:
        return volumes.list_snapshots(self)

    def create_snapshot(self, volume_native_id: str, description: str) -> Snapshot:
        return volumes.create_snapshot(self, volume_native_id, description)

    def delete_snapshot(self, native_id: str) -> None:
        volumes.delete_snapshot(self, native_id)

    # -- networks --------------------------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        return networks.list_networks(self)

    def create_network(self, spec: NetworkSpec) -> Network:
        return networks.create_network(self, spec)

    def delete_network(self, native_id: str) -> None:
        networks.delete_network(self, native_id)

    def update_network(self, native_id: str, update: NetworkUpdate) -> Network:
        return networks.update_network(self, native_id, update)

    def list_subnets(self) -> list[Subnet]:
        return networks.list_subnets(self)

    def create_subnet(self, spec: SubnetSpec) -> Subnet:
        return networks.create_subnet(self, spec)

    def delete_subnet(self, native_id: str) -> None:
        networks.delete_subnet(self, native_id)

    def attach_interface(self, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
        return networks.attach_interface(self, native_id, spec)

    def detach_interface(self, native_id: str, interface_native_id: str) -> None:
        networks.detach_interface(self, native_id, interface_native_id)

    # -- addresses -------------------------------------------------------------------------------
    def list_addresses(self) -> list[Address]:
        return addresses.list_addresses(self)

    def allocate_address(self) -> Address:
        return addresses.allocate_address(self)

    def associate_address(self, native_id: str, machine_native_id: str) -> Address:
        return addresses.associate_address(self, native_id, machine_native_id)

    def disassociate_address(self, native_id: str) -> Address:
        return addresses.disassociate_address(self, native_id)

    def release_address(self, native_id: str) -> None:
        addresses.release_address(self, native_id)

    # -- security groups -------------------------------------------------------------------------
    def list_security_groups(self) -> list[SecurityGroup]:
        return groups.list_security_groups(self)

    def create_security_group(self, spec: SecurityGroupSpec) -> SecurityGroup:
        return groups.create_security_group(self, spec)

    def delete_security_group(self, native_id: str) -> None:
        groups.delete_security_group(self, native_id)

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return groups.authorize_rules(self, native_id, rules)

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return groups.revoke_rules(self, native_id, rules)

    # -- tags (NATIVE_TAG_KINDS) -------------------------------------------------------------------
    def _tag_target(self, kind: str) -> tags.Target:
        target = TAG_TARGETS.get(kind)
        if target is None:
            raise self._unsupported(f"native tags on a {kind}")
        return target

    def set_tags(self, kind: str, native_id: str, tags_: dict[str, str]) -> None:
        tags.set_tags(self, self._tag_target(kind), kind, native_id, tags_)

    def remove_tags(self, kind: str, native_id: str, keys: list[str]) -> None:
        tags.remove_tags(self, self._tag_target(kind), kind, native_id, keys)
