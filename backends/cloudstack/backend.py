"""CloudStackBackend: one tenant's CloudStack account (or one of its projects) in one region.

Each method hands off to the module owning that resource kind; CloudStack is reached through libcloud's
CloudStack connection (``session``), its failures mapped in one table (``faults``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from backends.cloudstack import access, catalog, images, machines, networks, options, security_groups, volumes
from backends.cloudstack import tags as native_tags
from backends.cloudstack.machines import NATIVE_STATES, STATE_MAP
from backends.cloudstack.session import Cloud
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.errors import InvalidParameter
from translator.model import (
    ActionMethod,
    Address,
    Flavor,
    Image,
    ImageSpec,
    ImageUpdate,
    InterfaceSpec,
    KeyPair,
    KeyPairMaterial,
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

CAPABILITIES = frozenset(
    {
        Capability.MACHINES,
        Capability.IMAGES,
        Capability.IMAGE_CREATE,
        Capability.IMAGE_UPDATE,
        Capability.NETWORKS,
        Capability.NETWORK_CREATE,
        Capability.NETWORK_UPDATE,
        Capability.MACHINE_INTERFACES,
        Capability.STOP_HARD,
        Capability.REBOOT_HARD,
        Capability.MACHINE_RESIZE,
        Capability.VOLUMES,
        Capability.VOLUME_UPDATE,
        Capability.VOLUME_RESIZE,
        Capability.SNAPSHOTS,
        Capability.KEY_PAIRS,
        Capability.KEY_PAIR_CREATE,
        Capability.ADDRESSES,
        Capability.SECURITY_GROUPS,
        Capability.EGRESS_RULES,
        Capability.NATIVE_TAGS,
    }
)


class CloudStackBackend(Backend):
    """A CloudStack account's catalogue, VMs, storage, key pairs, addresses and groups, through libcloud."""

    driver: ClassVar[str] = "cloudstack"
    capabilities: ClassVar[frozenset[Capability]] = CAPABILITIES
    STATE_MAP: ClassVar[Mapping[str, MachineState]] = STATE_MAP
    NATIVE_STATES: ClassVar[frozenset[str]] = NATIVE_STATES
    #: what createTags takes a resourcetype for (key pairs are not among them: their tags stay in Redis)
    NATIVE_TAG_KINDS: ClassVar[frozenset[str]] = native_tags.KINDS

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        super().__init__(account, services)
        self.opts = options.parse(account.options)
        self.cloud = Cloud(self.opts, services.checkpoints)
        self._zones: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})

    @classmethod
    def validate_options(cls, options_table: Mapping[str, Any]) -> list[str]:
        return options.validate_options(options_table)

    def check(self) -> None:
        """Reach CloudStack with the account's keys (and project), and find every configured zone and disk
        offering there."""
        self.cloud.scope()
        known = catalog.zone_index(self, refresh=True)
        missing = [z for z in self.account.zones if z not in known]
        if missing:
            raise InvalidParameter(f"CloudStack has no zone named {', '.join(missing)}.", kind="zone", reason="zone")
        self.cloud.call("listVirtualMachines", {"page": 1, "pagesize": 1}, kind="machine", what="check")
        volumes.check_disk_offerings(self)

    def close(self) -> None:
        self.cloud.close()

    # -- placement and catalogue -----------------------------------------------------------------
    def list_zones(self) -> list[Zone]:
        return catalog.list_zones(self)

    def list_flavors(self) -> list[Flavor]:
        return catalog.list_flavors(self)

    def list_images(self) -> list[Image]:
        return catalog.list_images(self)

    def get_images(self, native_ids: list[str]) -> list[Image]:
        return catalog.get_images(self, native_ids)

    def create_image(self, spec: ImageSpec) -> Image:
        return images.create_image(self, spec)

    def delete_image(self, native_id: str) -> None:
        images.delete_image(self, native_id)

    def update_image(self, native_id: str, update: ImageUpdate) -> Image:
        return images.update_image(self, native_id, update)

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

    def attach_interface(self, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
        return networks.attach_interface(self, native_id, spec)

    def detach_interface(self, native_id: str, interface_native_id: str) -> None:
        networks.detach_interface(self, native_id, interface_native_id)

    def update_machine(self, native_id: str, update: MachineUpdate) -> Machine:
        return machines.update_machine(self, native_id, update)

    def machine_user_data(self, native_id: str) -> str | None:
        return machines.to_machine(machines.need_vm(self, native_id)).user_data

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
        return volumes.detach_volume(self, native_id, machine_native_id)

    def list_snapshots(self) -> list[Snapshot]:
        return volumes.list_snapshots(self)

    def get_snapshots(self, native_ids: list[str]) -> list[Snapshot]:
        return volumes.get_snapshots(self, native_ids)

    def create_snapshot(self, volume_native_id: str, description: str) -> Snapshot:
        return volumes.create_snapshot(self, volume_native_id, description)

    def delete_snapshot(self, native_id: str) -> None:
        volumes.delete_snapshot(self, native_id)

    # -- networks: each guest network with its one subnet ------------------------------------------
    def list_networks(self) -> list[Network]:
        return networks.list_networks(self)

    def get_networks(self, native_ids: list[str]) -> list[Network]:
        return networks.get_networks(self, native_ids)

    def create_network(self, spec: NetworkSpec) -> Network:
        return networks.create_network(self, spec)

    def delete_network(self, native_id: str) -> None:
        networks.delete_network(self, native_id)

    def update_network(self, native_id: str, update: NetworkUpdate) -> Network:
        return networks.update_network(self, native_id, update)

    def list_subnets(self) -> list[Subnet]:
        return networks.list_subnets(self)

    def get_subnets(self, native_ids: list[str]) -> list[Subnet]:
        return networks.get_subnets(self, native_ids)

    def create_subnet(self, spec: SubnetSpec) -> Subnet:
        return networks.create_subnet(self, spec)

    def delete_subnet(self, native_id: str) -> None:
        networks.delete_subnet(self, native_id)

    # -- key pairs and addresses -----------------------------------------------------------------
    def list_key_pairs(self) -> list[KeyPair]:
        return access.list_key_pairs(self)

    def get_key_pairs(self, native_ids: list[str]) -> list[KeyPair]:
        return access.get_key_pairs(self, native_ids)

    def create_key_pair(self, name: str, key_type: str) -> KeyPairMaterial:
        return access.create_key_pair(self, name, key_type)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        return access.import_key_pair(self, name, public_key)

    def delete_key_pair(self, native_id: str) -> None:
        access.delete_key_pair(self, native_id)

    def list_addresses(self) -> list[Address]:
        return access.list_addresses(self)

    def get_addresses(self, native_ids: list[str]) -> list[Address]:
        return access.get_addresses(self, native_ids)

    def allocate_address(self) -> Address:
        return access.allocate_address(self)

    def associate_address(self, native_id: str, machine_native_id: str) -> Address:
        return access.associate_address(self, native_id, machine_native_id)

    def disassociate_address(self, native_id: str) -> Address:
        return access.disassociate_address(self, native_id)

    def release_address(self, native_id: str) -> None:
        access.release_address(self, native_id)

    # -- security groups -------------------------------------------------------------------------
    def list_security_groups(self) -> list[SecurityGroup]:
        return security_groups.list_security_groups(self)

    def get_security_groups(self, native_ids: list[str]) -> list[SecurityGroup]:
        return security_groups.get_security_groups(self, native_ids)

    def create_security_group(self, spec: SecurityGroupSpec) -> SecurityGroup:
        return security_groups.create_security_group(self, spec)

    def delete_security_group(self, native_id: str) -> None:
        security_groups.delete_security_group(self, native_id)

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.authorize_rules(self, native_id, rules)

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.revoke_rules(self, native_id, rules)

    # -- tags --------------------------------------------------------------------------------------
    def set_tags(self, kind: str, native_id: str, tags: dict[str, str]) -> None:
        native_tags.set_tags(self, kind, native_id, tags)

    def remove_tags(self, kind: str, native_id: str, keys: list[str]) -> None:
        native_tags.remove_tags(self, kind, native_id, keys)
