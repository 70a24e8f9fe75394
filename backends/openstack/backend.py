"""OpenStackBackend: one tenant's Keystone project in one region, as a cloudgate backend account.

What the account can do is read from its service catalog: compute is required; images, volumes and
networks come from Glance, Cinder and Neutron when the catalog lists them, else from Nova's deprecated
proxy APIs where ``nova_proxies`` allows, else not at all (``CAPABILITIES`` below). Each method is a
hand-off to the module owning that resource kind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from backends.openstack import (
    images,
    interfaces,
    keys,
    machines,
    network,
    options,
    quotas,
    security_groups,
    volumes,
)
from backends.openstack.machines import NATIVE_STATES, STATE_MAP
from backends.openstack.session import Cloud
from translator.backend import AccountConfig, Backend, BackendServices, Capability
from translator.errors import CloudgateError
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

#: What Nova alone provides.
COMPUTE_CAPABILITIES = frozenset(
    {
        Capability.MACHINES,
        Capability.MACHINE_SUSPEND,
        Capability.MACHINE_RESIZE,
        Capability.CONSOLE_OUTPUT,
        Capability.KEY_PAIRS,
        Capability.KEY_PAIR_CREATE,
        Capability.MACHINE_INTERFACES,  # Nova's os-interface (Nova always has Neutron behind it)
        Capability.MACHINE_PAUSE,
        Capability.REBOOT_HARD,
    }
)
#: capability -> (catalog service providing it, Nova proxy standing in without it; None: no stand-in).
CAPABILITIES: Mapping[Capability, tuple[str, str | None]] = {
    Capability.IMAGES: ("image", "images"),
    Capability.IMAGE_CREATE: ("image", "images"),
    Capability.VOLUMES: ("volumev3", "volumes"),
    Capability.SNAPSHOTS: ("volumev3", "volumes"),
    Capability.NETWORKS: ("network", "networks"),
    Capability.NETWORK_CREATE: ("network", None),
    Capability.ADDRESSES: ("network", "floating_ips"),
    Capability.SECURITY_GROUPS: ("network", "security_groups"),
    Capability.EGRESS_RULES: ("network", None),
    Capability.NETWORK_UP_DOWN: ("network", None),
    Capability.NETWORK_UPDATE: ("network", None),
    Capability.SECURITY_GROUP_UPDATE: ("network", "security_groups"),
    Capability.VOLUME_UPDATE: ("volumev3", None),
    Capability.VOLUME_RESIZE: ("volumev3", None),
    Capability.IMAGE_UPDATE: ("image", None),
}
#: Everything this backend can ever do (tags live in the translator's Redis).
ALL_CAPABILITIES = COMPUTE_CAPABILITIES | frozenset(CAPABILITIES)
CATALOG_RETRY = 5.0  # seconds between attempts at reading the catalog for ``capabilities`` while it fails
FLAVOR_TTL = 60.0  # seconds a process keeps the flavor list (machines are mapped with it)


class OpenStackBackend(Backend):
    """Keystone v3 + Nova (through libcloud) + Glance/Cinder/Neutron or Nova's proxies for them."""

    driver: ClassVar[str] = "openstack"
    STATE_MAP: ClassVar[Mapping[str, MachineState]] = STATE_MAP
    NATIVE_STATES: ClassVar[frozenset[str]] = NATIVE_STATES

    def __init__(self, account: AccountConfig, services: BackendServices) -> None:
        super().__init__(account, services)
        self.opts = options.parse(account.options)
        self.cloud = Cloud(self.opts)
        self._flavors: tuple[float, dict[str, Flavor]] = (0.0, {})
        self._lock = threading.Lock()
        self._catalog_failed = -CATALOG_RETRY

    @classmethod
    def validate_options(cls, options_table: Mapping[str, Any]) -> list[str]:
        return options.validate_options(options_table)

    @property  # type: ignore[override]
    def capabilities(self) -> frozenset[Capability]:  # type: ignore[override]
        """Read from the catalog; while Keystone cannot be reached, everything the options allow."""
        present = set(options.SERVICES)
        if time.monotonic() - self._catalog_failed > CATALOG_RETRY:
            try:
                present = {s for s in options.SERVICES if self.cloud.has(s)}
            except CloudgateError:
                self._catalog_failed = time.monotonic()
        proxies = self.opts.nova_proxies
        return COMPUTE_CAPABILITIES | {
            cap for cap, (service, proxy) in CAPABILITIES.items() if service in present or proxy in proxies
        }

    def check(self) -> None:
        """Authenticate, read the catalog and make one cheap authenticated call to each service in it."""
        self.cloud.nova_json("GET", "/servers", params={"limit": 1}, what="check compute")
        probes = {"image": "/images", "volumev3": "/volumes", "network": "/networks"}
        for service, path in probes.items():
            if self.cloud.has(service):
                self.cloud.rest("GET", service, path, params={"limit": 1}, what=f"check {service}")

    def close(self) -> None:
        self.cloud.session.session.close()

    # -- lookups shared by the resource modules ---------------------------------------------------
    def flavor_index(self, refresh: bool = False) -> dict[str, Flavor]:
        """Flavors by id, cached for a minute per process (they change rarely; servers name them by id)."""
        fetched, index = self._flavors
        if refresh or not index or time.monotonic() - fetched > FLAVOR_TTL:
            index = {f.native_id: f for f in images.list_flavors(self)}
            with self._lock:
                self._flavors = (time.monotonic(), index)
        return index

    def find_image(self, native_id: str) -> Image | None:
        return images.find_image(self, native_id)

    def launch_networks(self, subnet_id: str | None) -> list[Any]:
        return network.launch_networks(self, subnet_id)

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

    def limits(self) -> Limits:
        return quotas.limits(self)

    # -- images and flavors ----------------------------------------------------------------------
    def list_images(self) -> list[Image]:
        return images.list_images(self)

    def create_image(self, spec: ImageSpec) -> Image:
        return images.create_image(self, spec)

    def delete_image(self, native_id: str) -> None:
        images.delete_image(self, native_id)

    def update_image(self, native_id: str, update: ImageUpdate) -> Image:
        return images.update_image(self, native_id, update)

    def list_flavors(self) -> list[Flavor]:
        return list(self.flavor_index(refresh=True).values())

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
        return volumes.detach_volume(self, native_id, machine_native_id, force)

    def list_snapshots(self) -> list[Snapshot]:
        return volumes.list_snapshots(self)

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

    def act_on_network(self, native_id: str, action: NetworkAction) -> Network:
        return network.act_on_network(self, native_id, action)

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

    def update_security_group(self, native_id: str, update: SecurityGroupUpdate) -> SecurityGroup:
        return security_groups.update_security_group(self, native_id, update)

    def authorize_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.authorize_rules(self, native_id, rules)

    def revoke_rules(self, native_id: str, rules: list[Rule]) -> SecurityGroup:
        return security_groups.revoke_rules(self, native_id, rules)
