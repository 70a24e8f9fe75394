"""SimulatorBackend: the zero-configuration default cloud, its state entirely in the shared Redis.

Each method is a one-line hand-off to the module owning that resource kind; ``faults.gate_operations``
wraps them all (fault injection, Redis errors, lazy default network) so no method repeats it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from backends.simulator import (
    catalog,
    images,
    interfaces,
    keys,
    machine_index,
    machines,
    network,
    security_groups,
    volumes,
)
from backends.simulator.faults import FaultInjector, gate_operations
from backends.simulator.storage import Sim, Store
from translator.backend import AccountConfig, Backend, BackendServices, Capability
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
    Limits,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
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
)


@gate_operations
class SimulatorBackend(Backend):
    """A small, faithful IaaS shared by every worker on every node through Redis."""

    driver: ClassVar[str] = "simulator"
    #: Everything but native tags: the translator keeps tags for the simulator.
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.NATIVE_TAGS}
    STATE_MAP: ClassVar[Mapping[str, MachineState]] = machines.STATE_MAP
    NATIVE_STATES: ClassVar[frozenset[str]] = machines.NATIVE_STATES

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        super().__init__(account, services)
        settings = catalog.parse_settings(account.options)
        store = Store(services.redis, account.key, settings.terminated_retention, derive=machine_index.derive)
        self.sim = Sim(store=store, settings=settings, account=account)
        self.faults = FaultInjector(settings.faults, services.redis, store.key("faults:calls"))

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> list[str]:
        return catalog.validate_options(options)

    def prepare(self) -> None:
        """Make sure the default network exists (once per instance; idempotent across workers)."""
        network.ensure_defaults(self.sim)

    def check(self) -> None:
        self.services.redis.ping()

    # -- machines --------------------------------------------------------------------------------
    def limits(self) -> Limits:
        return Limits(max_machines=self.sim.settings.max_machines)

    def list_machines(self) -> list[Machine]:
        return machines.list_machines(self.sim)

    def get_machines(self, native_ids: list[str]) -> list[Machine]:
        return machines.get_machines(self.sim, native_ids)

    def create_machines(self, spec: MachineSpec) -> list[Machine]:
        return machines.with_relations(self.sim, machines.create_machines(self.sim, spec))

    def act_on_machine(
        self, native_id: str, action: MachineAction, method: ActionMethod = ActionMethod.GRACEFUL
    ) -> Machine:
        return machines.act_on_machine(self.sim, native_id, action, method)

    def update_machine(self, native_id: str, update: MachineUpdate) -> Machine:
        return machines.update_machine(self.sim, native_id, update)

    def console_output(self, native_id: str) -> str:
        return machines.console_output(self.sim, native_id)

    def attach_interface(self, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
        return interfaces.attach_interface(self.sim, native_id, spec)

    def detach_interface(self, native_id: str, interface_native_id: str) -> None:
        interfaces.detach_interface(self.sim, native_id, interface_native_id)

    # -- images and flavors ----------------------------------------------------------------------
    def list_images(self) -> list[Image]:
        return images.list_images(self.sim)

    def get_images(self, native_ids: list[str]) -> list[Image]:
        catalog = [i for i in self.sim.settings.images if i.native_id in native_ids]
        return [*catalog, *(r.obj for r in self.sim.store.some("image", native_ids))]

    def create_image(self, spec: ImageSpec) -> Image:
        return images.create_image(self.sim, spec)

    def delete_image(self, native_id: str) -> None:
        images.delete_image(self.sim, native_id)

    def update_image(self, native_id: str, update: ImageUpdate) -> Image:
        return images.update_image(self.sim, native_id, update)

    def list_flavors(self) -> list[Flavor]:
        return images.list_flavors(self.sim)

    # -- volumes and snapshots -------------------------------------------------------------------
    def list_volumes(self) -> list[Volume]:
        return volumes.list_volumes(self.sim)

    def get_volumes(self, native_ids: list[str]) -> list[Volume]:
        return [r.obj for r in self.sim.store.some("volume", native_ids)]

    def create_volume(self, spec: VolumeSpec) -> Volume:
        return volumes.create_volume(self.sim, spec)

    def delete_volume(self, native_id: str) -> None:
        volumes.delete_volume(self.sim, native_id)

    def update_volume(self, native_id: str, update: VolumeUpdate) -> Volume:
        return volumes.update_volume(self.sim, native_id, update)

    def attach_volume(self, native_id: str, machine_native_id: str, device: str | None = None) -> Volume:
        return volumes.attach_volume(self.sim, native_id, machine_native_id, device)

    def detach_volume(self, native_id: str, machine_native_id: str | None, force: bool = False) -> Volume:
        return volumes.detach_volume(self.sim, native_id, machine_native_id, force)

    def list_snapshots(self) -> list[Snapshot]:
        return volumes.list_snapshots(self.sim)

    def get_snapshots(self, native_ids: list[str]) -> list[Snapshot]:
        return [r.obj for r in self.sim.store.some("snapshot", native_ids)]

    def create_snapshot(self, volume_native_id: str, description: str) -> Snapshot:
        return volumes.create_snapshot(self.sim, volume_native_id, description)

    def delete_snapshot(self, native_id: str) -> None:
        volumes.delete_snapshot(self.sim, native_id)

    # -- networks --------------------------------------------------------------------------------
    def list_networks(self) -> list[Network]:
        return network.list_networks(self.sim)

    def get_networks(self, native_ids: list[str]) -> list[Network]:
        return [r.obj for r in self.sim.store.some("network", native_ids)]

    def create_network(self, spec: NetworkSpec) -> Network:
        return network.create_network(self.sim, spec)

    def delete_network(self, native_id: str) -> None:
        network.delete_network(self.sim, native_id)

    def update_network(self, native_id: str, update: NetworkUpdate) -> Network:
        return network.update_network(self.sim, native_id, update)

    def act_on_network(self, native_id: str, action: NetworkAction) -> Network:
        return network.act_on_network(self.sim, native_id, action)

    def list_subnets(self) -> list[Subnet]:
        return network.list_subnets(self.sim)

    def create_subnet(self, spec: SubnetSpec) -> Subnet:
        return network.create_subnet(self.sim, spec)

    def delete_subnet(self, native_id: str) -> None:
        network.delete_subnet(self.sim, native_id)

    # -- addresses -------------------------------------------------------------------------------
    def list_addresses(self) -> list[Address]:
        return network.list_addresses(self.sim)

    def get_addresses(self, native_ids: list[str]) -> list[Address]:
        return [r.obj for r in self.sim.store.some("address", native_ids)]

    def allocate_address(self) -> Address:
        return network.allocate_address(self.sim)

    def associate_address(self, native_id: str, machine_native_id: str) -> Address:
        return network.associate_address(self.sim, native_id, machine_native_id)

    def disassociate_address(self, native_id: str) -> Address:
        return network.disassociate_address(self.sim, native_id)

    def release_address(self, native_id: str) -> None:
        network.release_address(self.sim, native_id)

    # -- key pairs -------------------------------------------------------------------------------
    def list_key_pairs(self) -> list[KeyPair]:
        return keys.list_key_pairs(self.sim)

    def get_key_pairs(self, native_ids: list[str]) -> list[KeyPair]:
        return [r.obj for r in self.sim.store.some("key_pair", native_ids)]

    def create_key_pair(self, name: str, key_type: str) -> KeyPairMaterial:
        return keys.create_key_pair(self.sim, name, key_type)

    def import_key_pair(self, name: str, public_key: str) -> KeyPair:
        return keys.import_key_pair(self.sim, name, public_key)

    def delete_key_pair(self, native_id: str) -> None:
        keys.delete_key_pair(self.sim, native_id)

    # -- security groups -------------------------------------------------------------------------
    def list_security_groups(self) -> list[SecurityGroup]:
        return security_groups.list_security_groups(self.sim)

    def get_security_groups(self, native_ids: list[str]) -> list[SecurityGroup]:
        return [r.obj for r in self.sim.store.some("security_group", native_ids)]

    def create_security_group(self, spec: SecurityGroupSpec) -> SecurityGroup:
        return security_groups.create_security_group(self.sim, spec, network.default_network_id(self.sim))

    def delete_security_group(self, native_id: str) -> None:
        security_groups.delete_security_group(self.sim, native_id)

    def update_security_group(self, native_id: str, update: SecurityGroupUpdate) -> SecurityGroup:
        return security_groups.update_security_group(self.sim, native_id, update)

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.authorize_rules(self.sim, native_id, rules)

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.revoke_rules(self.sim, native_id, rules)
