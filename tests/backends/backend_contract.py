"""The backend contract: the canonical lifecycle every backend must get right, whatever its cloud.

It asserts what clouds do, not what one protocol wants: EC2's rules that not every cloud has (unique image
and group names, no release of an associated address, no VPC deleted with its subnets, device names) are
the EC2 frontend's to enforce, and tested there; a backend whose cloud has one tests it on its own.

Subclass ``BackendContract`` in a backend's test module and give it a ``backend`` fixture. Tests needing a
capability the backend lacks are skipped, naming the capability. Nothing here knows a particular cloud:
images, flavors and zones are discovered, and transitions are awaited with ``settle``.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from translator.backend import Backend, Capability
from translator.errors import CloudgateError, Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import (
    RESOURCE_TYPES,
    ActionMethod,
    ImageSpec,
    ImageState,
    ImageUpdate,
    InterfaceSpec,
    InterfaceState,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkAction,
    NetworkSpec,
    NetworkState,
    NetworkUpdate,
    Rule,
    SecurityGroupSpec,
    SecurityGroupUpdate,
    SnapshotState,
    SubnetSpec,
    VolumeSpec,
    VolumeState,
    VolumeUpdate,
)

T = TypeVar("T")

MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")

SETTLE_TIMEOUT = 10.0
SETTLE_PAUSE = 0.03


def settle(fn: Callable[[], T], predicate: Callable[[T], bool], timeout: float = SETTLE_TIMEOUT) -> T:
    """Call ``fn`` until ``predicate`` holds on its result (bounded: ~10 s), and return that result."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"did not settle within {timeout} s; last value: {value!r}")
        time.sleep(SETTLE_PAUSE)


@contextlib.contextmanager
def raises(cls: type[CloudgateError], kind: str | None = None, reason: str | None = None) -> Iterator[None]:
    """pytest.raises for canonical errors, also checking ``kind`` and ``reason`` when given."""
    with pytest.raises(cls) as info:
        yield
    if kind is not None:
        assert info.value.kind == kind, repr(info.value)
    if reason is not None:
        assert info.value.reason == reason, repr(info.value)


def need(backend: Backend, *capabilities: Capability) -> None:
    """Skip unless the backend declares every capability (the reason names the missing one)."""
    for capability in capabilities:
        if capability not in backend.capabilities:
            pytest.skip(str(capability))


def by_id(items: list[Any], native_id: str) -> Any:
    """The item with this native id, or None."""
    return next((i for i in items if i.native_id == native_id), None)


class BackendContract:
    """Backend-agnostic tests; a subclass provides the ``backend`` fixture."""

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def machine(backend: Backend, native_id: str) -> Machine:
        found = by_id(backend.list_machines(), native_id)
        assert found is not None, f"machine {native_id} not listed"
        return found

    def wait_machine(self, backend: Backend, native_id: str, state: MachineState) -> Machine:
        return settle(lambda: self.machine(backend, native_id), lambda m: m.state == state)

    @staticmethod
    def image_id(backend: Backend) -> str:
        return next(i.native_id for i in backend.list_images() if i.state == ImageState.AVAILABLE)

    @staticmethod
    def flavors(backend: Backend) -> list[str]:
        """Flavor ids, smallest first."""
        return [f.native_id for f in sorted(backend.list_flavors(), key=lambda f: (f.memory_mb, f.vcpus))]

    def launch(self, backend: Backend, count: int = 1, **spec: Any) -> list[Machine]:
        """Launch and wait until every machine runs."""
        fields = {"image_id": self.image_id(backend), "flavor_id": self.flavors(backend)[0], "count": count}
        made = backend.create_machines(MachineSpec(**(fields | spec)))
        return [self.wait_machine(backend, m.native_id, MachineState.RUNNING) for m in made]

    @staticmethod
    def zone(backend: Backend) -> str:
        return backend.list_zones()[0].name

    def new_volume(self, backend: Backend, size: int = 2, zone: str | None = None) -> str:
        vol = backend.create_volume(VolumeSpec(size_gb=size, zone=zone or self.zone(backend), name="data"))
        settle(lambda: by_id(backend.list_volumes(), vol.native_id), lambda v: v.state == VolumeState.AVAILABLE)
        return vol.native_id

    # -- placement, catalogue --------------------------------------------------------------------
    def test_zones(self, backend: Backend) -> None:
        zones = backend.list_zones()
        assert zones and all(z.name and z.region == backend.account.region for z in zones)
        assert len({z.name for z in zones}) == len(zones)

    def test_flavors(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES)
        flavors = backend.list_flavors()
        assert flavors and len({f.native_id for f in flavors}) == len(flavors)
        assert all(f.vcpus > 0 and f.memory_mb > 0 and f.name for f in flavors)

    def test_images(self, backend: Backend) -> None:
        need(backend, Capability.IMAGES)
        images = backend.list_images()
        assert any(i.state == ImageState.AVAILABLE for i in images)
        assert len({i.native_id for i in images}) == len(images)

    def test_state_map_is_real_and_total(self, backend: Backend) -> None:
        """One row for each state the cloud reports, and none for a state it does not (padding): what
        ``NATIVE_STATES`` declares, itself checked against the cloud's own list by each backend's tests."""
        assert backend.NATIVE_STATES, "the backend declares its cloud's machine states"
        assert set(backend.STATE_MAP) == set(backend.NATIVE_STATES)
        assert all(isinstance(state, MachineState) for state in backend.STATE_MAP.values())

    # -- key pairs -------------------------------------------------------------------------------
    def test_key_pair_create_and_duplicate(self, backend: Backend) -> None:
        need(backend, Capability.KEY_PAIRS, Capability.KEY_PAIR_CREATE)
        made = backend.create_key_pair("contract-rsa", "rsa")
        assert "PRIVATE KEY" in made.private_key
        assert made.key_pair.fingerprint and made.key_pair.name == "contract-rsa"
        listed = by_id(backend.list_key_pairs(), made.key_pair.native_id)
        assert listed is not None and listed.fingerprint == made.key_pair.fingerprint
        with raises(Conflict, kind="key_pair", reason="duplicate"):
            backend.create_key_pair("contract-rsa", "rsa")

    def test_key_pair_import_and_delete(self, backend: Backend) -> None:
        need(backend, Capability.KEY_PAIRS)
        public = (
            ed25519.Ed25519PrivateKey.generate()
            .public_key()
            .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
            .decode()
        )
        key = backend.import_key_pair("contract-ed", public + " me@example")
        assert key.key_type == "ed25519" and key.fingerprint
        with raises(Conflict, kind="key_pair", reason="duplicate"):
            backend.import_key_pair("contract-ed", public)
        with raises(InvalidParameter, kind="key_pair", reason="format"):
            backend.import_key_pair("contract-bad", "ssh-rsa not-base64!")
        backend.delete_key_pair(key.native_id)
        assert by_id(backend.list_key_pairs(), key.native_id) is None
        with raises(NotFound, kind="key_pair"):
            backend.delete_key_pair(key.native_id)

    # -- security groups -------------------------------------------------------------------------
    def test_security_group_rules(self, backend: Backend) -> None:
        need(backend, Capability.SECURITY_GROUPS)
        group = backend.create_security_group(SecurityGroupSpec(name="web", description="web servers"))
        ssh = Rule(direction="ingress", protocol="tcp", from_port=22, to_port=22, cidr="203.0.113.0/24")
        group = backend.authorize_rules(group.native_id, [ssh])
        assert any(r.key() == ssh.key() for r in group.rules)
        with raises(Conflict, kind="rule", reason="duplicate"):
            backend.authorize_rules(group.native_id, [ssh])
        with raises(InvalidParameter, kind="rule"):
            backend.authorize_rules(
                group.native_id,
                [Rule(direction="ingress", protocol="tcp", from_port=80, to_port=70000, cidr="0.0.0.0/0")],
            )
        group = backend.revoke_rules(group.native_id, [ssh])
        assert all(r.key() != ssh.key() for r in group.rules)
        with raises(NotFound, kind="rule"):
            backend.revoke_rules(group.native_id, [ssh])
        backend.delete_security_group(group.native_id)
        assert by_id(backend.list_security_groups(), group.native_id) is None
        with raises(NotFound, kind="security_group"):
            backend.delete_security_group(group.native_id)

    def test_security_group_update(self, backend: Backend) -> None:
        need(backend, Capability.SECURITY_GROUPS, Capability.SECURITY_GROUP_UPDATE)
        group = backend.create_security_group(SecurityGroupSpec(name="before", description="old words"))
        backend.update_security_group(group.native_id, SecurityGroupUpdate(description="new words"))
        backend.update_security_group(group.native_id, SecurityGroupUpdate(name="after"))
        listed = by_id(backend.list_security_groups(), group.native_id)
        assert (listed.name, listed.description) == ("after", "new words")
        other = backend.create_security_group(SecurityGroupSpec(name="other", description=""))
        with raises(Conflict, kind="security_group", reason="duplicate"):
            backend.update_security_group(other.native_id, SecurityGroupUpdate(name="after"))
        default = next(g for g in backend.list_security_groups() if g.name == "default")
        with raises(Conflict, kind="security_group", reason="default"):
            backend.update_security_group(default.native_id, SecurityGroupUpdate(name="renamed-default"))
        for made in (group, other):
            backend.delete_security_group(made.native_id)
        with raises(NotFound, kind="security_group"):
            backend.update_security_group(group.native_id, SecurityGroupUpdate(description="gone"))

    def test_egress_rules(self, backend: Backend) -> None:
        need(backend, Capability.SECURITY_GROUPS, Capability.EGRESS_RULES)
        group = backend.create_security_group(SecurityGroupSpec(name="out", description="egress"))
        rule = Rule(direction="egress", protocol="udp", from_port=53, to_port=53, cidr="192.0.2.0/24")
        group = backend.authorize_rules(group.native_id, [rule])
        assert any(r.key() == rule.key() for r in group.rules)
        group = backend.revoke_rules(group.native_id, [rule])
        assert all(r.key() != rule.key() for r in group.rules)

    # -- machines --------------------------------------------------------------------------------
    def test_machine_lifecycle(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES)
        made = backend.create_machines(
            MachineSpec(image_id=self.image_id(backend), flavor_id=self.flavors(backend)[0], count=3, name="trio")
        )
        assert len(made) == 3 and len({m.native_id for m in made}) == 3
        assert all(m.state in (MachineState.PENDING, MachineState.RUNNING) for m in made)
        vm = self.wait_machine(backend, made[0].native_id, MachineState.RUNNING)
        assert vm.private_ip and vm.vcpus > 0 and vm.memory_mb > 0 and vm.zone

        stopping = backend.act_on_machine(vm.native_id, MachineAction.STOP)
        assert stopping.state in (MachineState.STOPPING, MachineState.STOPPED)
        assert stopping.previous_state == MachineState.RUNNING  # what EC2's PreviousState reports
        self.wait_machine(backend, vm.native_id, MachineState.STOPPED)
        again = backend.act_on_machine(vm.native_id, MachineAction.STOP)
        assert again.state == again.previous_state == MachineState.STOPPED
        with raises(Conflict, kind="machine", reason="state"):
            backend.act_on_machine(vm.native_id, MachineAction.REBOOT)

        backend.act_on_machine(vm.native_id, MachineAction.START)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)
        assert backend.act_on_machine(vm.native_id, MachineAction.START).state == MachineState.RUNNING
        backend.act_on_machine(vm.native_id, MachineAction.REBOOT)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)

        for m in made:
            ending = backend.act_on_machine(m.native_id, MachineAction.TERMINATE)
            assert ending.native_id == m.native_id
            assert ending.previous_state == MachineState.RUNNING if m is made[0] else ending.previous_state is not None
        for m in made:
            self.wait_machine(backend, m.native_id, MachineState.TERMINATED)
        ended = backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
        assert ended.state == ended.previous_state == MachineState.TERMINATED
        with raises(Conflict, kind="machine", reason="state"):
            backend.act_on_machine(vm.native_id, MachineAction.START)

    def test_reads_by_id(self, backend: Backend) -> None:
        """``get_<kinds>`` return the named resources that exist and leave the missing out, without an error."""
        need(backend, Capability.MACHINES)
        first, second = self.launch(backend, count=2)
        got = backend.get_machines([second.native_id, "missing-0000", first.native_id])
        assert sorted(m.native_id for m in got) == sorted([first.native_id, second.native_id])
        assert all(m.state == MachineState.RUNNING and m.private_ip for m in got)
        assert backend.get_machines(["missing-0000"]) == [] and backend.get_machines([]) == []
        image = self.image_id(backend)
        assert [i.native_id for i in backend.get_images([image, "missing-0000"])] == [image]
        if Capability.VOLUMES in backend.capabilities:
            volume = self.new_volume(backend)
            assert [v.native_id for v in backend.get_volumes(["missing-0000", volume])] == [volume]
            backend.delete_volume(volume)
        for m in (first, second):
            backend.act_on_machine(m.native_id, MachineAction.TERMINATE)

    def test_update_machine_while_stopped(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.MACHINE_RESIZE)
        vm = self.launch(backend)[0]
        bigger = self.flavors(backend)[-1]
        with raises(Conflict, kind="machine", reason="state"):
            backend.update_machine(vm.native_id, MachineUpdate(flavor_id=bigger))
        backend.act_on_machine(vm.native_id, MachineAction.STOP)
        self.wait_machine(backend, vm.native_id, MachineState.STOPPED)
        updated = backend.update_machine(vm.native_id, MachineUpdate(flavor_id=bigger))
        assert updated.flavor_id == bigger
        flavor = by_id(backend.list_flavors(), bigger)
        listed = self.machine(backend, vm.native_id)
        assert (listed.vcpus, listed.memory_mb) == (flavor.vcpus, flavor.memory_mb)

    def test_suspend_resume(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.MACHINE_SUSPEND)
        vm = self.launch(backend)[0]
        backend.act_on_machine(vm.native_id, MachineAction.SUSPEND)
        self.wait_machine(backend, vm.native_id, MachineState.SUSPENDED)
        backend.act_on_machine(vm.native_id, MachineAction.RESUME)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)

    def test_pause_unpause(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.MACHINE_PAUSE)
        vm = self.launch(backend)[0]
        assert backend.act_on_machine(vm.native_id, MachineAction.UNPAUSE).state == MachineState.RUNNING
        backend.act_on_machine(vm.native_id, MachineAction.PAUSE)
        self.wait_machine(backend, vm.native_id, MachineState.PAUSED)
        assert backend.act_on_machine(vm.native_id, MachineAction.PAUSE).state == MachineState.PAUSED
        with raises(Conflict, kind="machine", reason="state"):
            backend.act_on_machine(vm.native_id, MachineAction.RESUME)  # resume is for suspended machines
        backend.act_on_machine(vm.native_id, MachineAction.UNPAUSE)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)

    def test_hard_stop(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.STOP_HARD)
        vm = self.launch(backend)[0]
        cut = backend.act_on_machine(vm.native_id, MachineAction.STOP, ActionMethod.HARD)
        assert cut.state in (MachineState.STOPPING, MachineState.STOPPED)
        self.wait_machine(backend, vm.native_id, MachineState.STOPPED)
        backend.act_on_machine(vm.native_id, MachineAction.START)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)

    def test_hard_reboot(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.REBOOT_HARD)
        vm = self.launch(backend)[0]
        reset = backend.act_on_machine(vm.native_id, MachineAction.REBOOT, ActionMethod.HARD)
        assert reset.state in (MachineState.REBOOTING, MachineState.RUNNING)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)
        backend.act_on_machine(vm.native_id, MachineAction.STOP)
        self.wait_machine(backend, vm.native_id, MachineState.STOPPED)
        with raises(Conflict, kind="machine", reason="state"):  # a stopped machine is started, not reset
            backend.act_on_machine(vm.native_id, MachineAction.REBOOT, ActionMethod.HARD)

    def test_console_output(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.CONSOLE_OUTPUT)
        vm = self.launch(backend)[0]
        output = settle(lambda: backend.console_output(vm.native_id), bool)
        assert isinstance(output, str)
        with raises(NotFound, kind="machine"):
            backend.console_output("vm-does-not-exist")

    def test_machine_references_must_exist(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES)
        good = {"image_id": self.image_id(backend), "flavor_id": self.flavors(backend)[0]}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"image_id": "img-missing"}, "image"),
            ({"flavor_id": "no.such-flavor"}, "flavor"),
            ({"key_name": "no-such-key"}, "key_pair"),
        ]
        if Capability.SECURITY_GROUPS in backend.capabilities:
            cases.append(({"security_group_ids": ("sg-missing",)}, "security_group"))
        before = len(backend.list_machines())
        for change, kind in cases:
            with raises(NotFound, kind=kind):
                backend.create_machines(MachineSpec(**(good | change)))
        assert len(backend.list_machines()) == before
        with raises(NotFound, kind="machine"):
            backend.act_on_machine("vm-missing", MachineAction.STOP)

    # -- network interfaces ----------------------------------------------------------------------
    @staticmethod
    def interface_ids(machine: Machine) -> list[str]:
        return [i.native_id for i in machine.interfaces]

    def test_machine_lists_its_interfaces(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES)
        vm = self.launch(backend)[0]
        primary = vm.interfaces[0]
        assert len(set(self.interface_ids(vm))) == len(vm.interfaces)
        assert primary.native_id and primary.private_ip == vm.private_ip and MAC.match(primary.mac)
        assert primary.state in set(InterfaceState) and primary.network_id == vm.network_id
        backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
        gone = self.wait_machine(backend, vm.native_id, MachineState.TERMINATED)
        assert gone.interfaces == []

    def test_interface_attach_detach(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.NETWORKS, Capability.MACHINE_INTERFACES)
        vm = self.launch(backend)[0]
        primary = vm.interfaces[0]
        subnet = next(s for s in backend.list_subnets() if s.network_id == vm.network_id and s.zone == vm.zone)
        made = backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=subnet.native_id))
        assert made.native_id not in self.interface_ids(vm) and made.subnet_id == subnet.native_id
        listed = settle(lambda: self.machine(backend, vm.native_id), lambda m: made.native_id in self.interface_ids(m))
        assert listed.interfaces[0].native_id == primary.native_id
        second = by_id(listed.interfaces, made.native_id)
        assert second.network_id == vm.network_id and second.private_ip not in (None, primary.private_ip)
        assert MAC.match(second.mac) and second.mac != primary.mac

        backend.detach_interface(vm.native_id, made.native_id)
        settle(lambda: self.machine(backend, vm.native_id), lambda m: made.native_id not in self.interface_ids(m))
        assert self.interface_ids(self.machine(backend, vm.native_id)) == [primary.native_id]
        with raises(NotFound, kind="network_interface"):
            backend.detach_interface(vm.native_id, made.native_id)
        with raises(NotFound, kind="machine"):
            backend.attach_interface("vm-missing", InterfaceSpec(subnet_id=subnet.native_id))
        with raises(NotFound, kind="subnet"):
            backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id="subnet-missing"))

    def test_interface_on_a_network(self, backend: Backend) -> None:
        """Given a network only, the cloud picks a subnet of it that the machine can use."""
        need(backend, Capability.MACHINES, Capability.NETWORKS, Capability.MACHINE_INTERFACES)
        vm = self.launch(backend)[0]
        made = backend.attach_interface(vm.native_id, InterfaceSpec(network_id=vm.network_id))
        assert made.network_id == vm.network_id
        subnet = by_id(backend.list_subnets(), made.subnet_id)
        assert subnet is not None and subnet.zone == vm.zone
        settle(lambda: self.machine(backend, vm.native_id), lambda m: made.native_id in self.interface_ids(m))
        backend.detach_interface(vm.native_id, made.native_id)
        settle(lambda: self.machine(backend, vm.native_id), lambda m: made.native_id not in self.interface_ids(m))

    def test_a_create_repeated_with_its_idempotency_key_finds_the_first(self, backend: Backend) -> None:
        """The translator resends a create whose answer was lost with the same key: the cloud (or the backend's
        lookup) answers with what the first call made; another key makes new resources."""
        need(backend, Capability.MACHINES)
        fields = {"image_id": self.image_id(backend), "flavor_id": self.flavors(backend)[0], "count": 2}
        key = uuid.uuid4().hex
        first = backend.create_machines(MachineSpec(**fields, idempotency_key=key))
        again = backend.create_machines(MachineSpec(**fields, idempotency_key=key))
        assert sorted(m.native_id for m in again) == sorted(m.native_id for m in first)
        # Machines made together carry the create's key where the cloud keeps it (a stacked gateway does not).
        launch_keys = {m.native_id: m.launch_key for m in backend.list_machines()}
        assert {launch_keys[m.native_id] for m in first} in ({key}, {""})
        other = backend.create_machines(MachineSpec(**fields, idempotency_key=uuid.uuid4().hex))
        assert {m.native_id for m in other}.isdisjoint(m.native_id for m in first)
        if Capability.VOLUMES in backend.capabilities:
            spec = VolumeSpec(size_gb=1, zone=self.zone(backend), idempotency_key=uuid.uuid4().hex)
            assert backend.create_volume(spec).native_id == backend.create_volume(spec).native_id

    # -- volumes and snapshots -------------------------------------------------------------------
    def test_volume_attach_detach(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.VOLUMES)
        vm = self.launch(backend, zone=self.zone(backend))[0]
        first = self.new_volume(backend)
        backend.attach_volume(first, vm.native_id, "/dev/vdb")  # a hint: the cloud may pick its own device
        attached = settle(
            lambda: by_id(backend.list_volumes(), first),
            lambda v: v.state == VolumeState.IN_USE and bool(v.attachments) and bool(v.attachments[0].device),
        )
        assert attached.attachments[0].machine_id == vm.native_id
        assert attached.attachments[0].device.startswith("/dev/")
        assert first in self.machine(backend, vm.native_id).volume_ids
        with raises(Conflict, kind="volume", reason="in_use"):
            backend.attach_volume(first, vm.native_id, "/dev/vdc")
        with raises(Conflict, kind="volume", reason="in_use"):
            backend.delete_volume(first)

        backend.detach_volume(first, vm.native_id)
        settle(lambda: by_id(backend.list_volumes(), first), lambda v: v.state == VolumeState.AVAILABLE)
        assert first not in self.machine(backend, vm.native_id).volume_ids
        with raises(Conflict, kind="volume", reason="state"):
            backend.detach_volume(first, vm.native_id)
        backend.delete_volume(first)
        assert by_id(backend.list_volumes(), first) is None
        with raises(NotFound, kind="volume"):
            backend.delete_volume(first)
        with raises(NotFound, kind="volume"):
            backend.attach_volume("vol-missing", vm.native_id, "/dev/vdd")

    def test_what_a_machine_says_of_its_disks_and_groups_agrees_with_their_listings(self, backend: Backend) -> None:
        """A backend that lists a machine's disks or group names with it (``Machine.disks``,
        ``security_group_names``) says what the volume and group listings say; None leaves them to those."""
        need(backend, Capability.MACHINES, Capability.VOLUMES)
        vm = self.launch(backend, zone=self.zone(backend))[0]
        extra = self.new_volume(backend)
        backend.attach_volume(extra, vm.native_id, "/dev/vdb")
        settle(lambda: by_id(backend.list_volumes(), extra), lambda v: v.state == VolumeState.IN_USE)
        for m in (self.machine(backend, vm.native_id), *backend.get_machines([vm.native_id])):
            if m.disks is not None:
                volumes = backend.list_volumes()
                shown = {(a.machine_id, v.native_id, a.device) for v in volumes for a in v.attachments}
                said = {(m.native_id, d.volume_id, d.device) for d in m.disks}
                assert said == {s for s in shown if s[0] == m.native_id} and extra in {d.volume_id for d in m.disks}
                assert {d.volume_id for d in m.disks} <= set(m.volume_ids)
            if m.security_group_names is not None and Capability.SECURITY_GROUPS in backend.capabilities:
                names = {g.native_id: g.name for g in backend.list_security_groups()}
                assert m.security_group_names == [names.get(g, "") for g in m.security_group_ids]
        backend.detach_volume(extra, vm.native_id)
        settle(lambda: by_id(backend.list_volumes(), extra), lambda v: v.state == VolumeState.AVAILABLE)
        m = self.machine(backend, vm.native_id)
        assert m.disks is None or extra not in {d.volume_id for d in m.disks}
        backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)

    def test_volume_attach_picks_a_device(self, backend: Backend) -> None:
        """Without a device the backend or its cloud picks a free one, and the attachment says which."""
        need(backend, Capability.MACHINES, Capability.VOLUMES)
        vm = self.launch(backend, zone=self.zone(backend))[0]
        first, second = self.new_volume(backend), self.new_volume(backend)

        def named(v: Any) -> bool:
            return v.state == VolumeState.IN_USE and bool(v.attachments) and bool(v.attachments[0].device)

        devices = []
        for vol in (first, second):
            backend.attach_volume(vol, vm.native_id)
            attached = settle(lambda vol=vol: by_id(backend.list_volumes(), vol), named)
            assert attached.attachments[0].machine_id == vm.native_id
            devices.append(attached.attachments[0].device)
        # distinct from each other and from every other disk of the machine (its root volume, where it has one)
        on_vm = [a.device for v in backend.list_volumes() for a in v.attachments if a.machine_id == vm.native_id]
        assert len(set(devices)) == 2 and all(d.startswith("/dev/") for d in devices)
        assert len(set(on_vm)) == len(on_vm) and set(devices) <= set(on_vm)
        for vol in (first, second):
            backend.detach_volume(vol, vm.native_id)
        for vol in (first, second):
            settle(lambda vol=vol: by_id(backend.list_volumes(), vol), lambda v: v.state == VolumeState.AVAILABLE)

    def test_snapshots(self, backend: Backend) -> None:
        need(backend, Capability.VOLUMES, Capability.SNAPSHOTS)
        vol = self.new_volume(backend, size=3)
        snap = backend.create_snapshot(vol, "nightly")
        snap = settle(
            lambda: by_id(backend.list_snapshots(), snap.native_id),
            lambda s: s.state == SnapshotState.COMPLETED,
        )
        assert snap.size_gb == 3 and snap.volume_id == vol
        copy = backend.create_volume(VolumeSpec(snapshot_id=snap.native_id, zone=self.zone(backend)))
        assert copy.size_gb == 3 and copy.snapshot_id == snap.native_id
        backend.delete_snapshot(snap.native_id)
        assert by_id(backend.list_snapshots(), snap.native_id) is None
        with raises(NotFound, kind="snapshot"):
            backend.delete_snapshot(snap.native_id)
        # A volume made from a snapshot outlives it, as on EC2.
        settle(lambda: by_id(backend.list_volumes(), copy.native_id), lambda v: v.state == VolumeState.AVAILABLE)

    @staticmethod
    def described(update: Callable[[], Any]) -> bool:
        """Make an update of a description: True if the cloud keeps it, False if it refuses as it must for a
        field it has not (Unsupported, reason "description")."""
        try:
            update()
        except Unsupported as exc:
            assert exc.reason == "description", repr(exc)
            return False
        return True

    def test_volume_update(self, backend: Backend) -> None:
        need(backend, Capability.VOLUMES, Capability.VOLUME_UPDATE)
        vol = self.new_volume(backend, size=2)
        backend.update_volume(vol, VolumeUpdate(name="renamed"))
        assert by_id(backend.list_volumes(), vol).name == "renamed"
        described = self.described(lambda: backend.update_volume(vol, VolumeUpdate(description="logs")))
        assert by_id(backend.list_volumes(), vol).description == ("logs" if described else "")
        if Capability.VOLUME_RESIZE in backend.capabilities:
            backend.update_volume(vol, VolumeUpdate(size_gb=3))
            settled = lambda v: v.size_gb == 3 and v.state == VolumeState.AVAILABLE  # noqa: E731
            grown = settle(lambda: by_id(backend.list_volumes(), vol), settled)
            assert grown.name == "renamed"
            with raises(InvalidParameter, kind="volume", reason="size"):
                backend.update_volume(vol, VolumeUpdate(size_gb=1))
        with raises(NotFound, kind="volume"):
            backend.update_volume("vol-missing", VolumeUpdate(name="x"))
        backend.delete_volume(vol)

    # -- addresses -------------------------------------------------------------------------------
    def test_addresses(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.ADDRESSES)
        vm = self.launch(backend)[0]
        address = backend.allocate_address()
        assert address.public_ip and address.machine_id is None
        address = backend.associate_address(address.native_id, vm.native_id)
        assert address.machine_id == vm.native_id
        assert self.machine(backend, vm.native_id).public_ip == address.public_ip
        address = backend.disassociate_address(address.native_id)
        assert address.machine_id is None
        assert self.machine(backend, vm.native_id).public_ip != address.public_ip
        backend.release_address(address.native_id)
        assert by_id(backend.list_addresses(), address.native_id) is None
        with raises(NotFound, kind="address"):
            backend.release_address(address.native_id)

    # -- networks --------------------------------------------------------------------------------
    def test_default_network(self, backend: Backend) -> None:
        need(backend, Capability.NETWORKS)
        defaults = [n for n in backend.list_networks() if n.is_default]
        assert len(defaults) == 1
        zones = {s.zone for s in backend.list_subnets() if s.network_id == defaults[0].native_id}
        assert zones == {z.name for z in backend.list_zones()}

    def test_networks_and_subnets(self, backend: Backend) -> None:
        need(backend, Capability.NETWORKS, Capability.NETWORK_CREATE)
        net = backend.create_network(NetworkSpec(cidr="10.20.0.0/16", name="lab"))
        assert by_id(backend.list_networks(), net.native_id).cidr == "10.20.0.0/16"
        sub = backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.20.1.0/24", zone=self.zone(backend)))
        assert sub.network_id == net.native_id and sub.zone == self.zone(backend)
        with raises(InvalidParameter, reason="cidr"):
            backend.create_network(NetworkSpec(cidr="10.40.0.0/33"))
        with raises(Conflict, kind="subnet"):
            backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.20.1.128/25"))
        backend.delete_subnet(sub.native_id)
        backend.delete_network(net.native_id)
        assert by_id(backend.list_networks(), net.native_id) is None
        with raises(NotFound, kind="network"):
            backend.delete_network(net.native_id)
        with raises(NotFound, kind="network"):
            backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.20.2.0/24"))

    def test_network_down_and_up(self, backend: Backend) -> None:
        need(backend, Capability.NETWORKS, Capability.NETWORK_CREATE, Capability.NETWORK_UP_DOWN)
        net = backend.create_network(NetworkSpec(cidr="10.50.0.0/16", name="switched"))
        state = lambda: by_id(backend.list_networks(), net.native_id).state  # noqa: E731
        backend.act_on_network(net.native_id, NetworkAction.DOWN)
        settle(state, lambda s: s == NetworkState.DOWN)
        assert backend.act_on_network(net.native_id, NetworkAction.DOWN).state == NetworkState.DOWN
        backend.act_on_network(net.native_id, NetworkAction.UP)
        settle(state, lambda s: s == NetworkState.AVAILABLE)
        backend.delete_network(net.native_id)
        with raises(NotFound, kind="network"):
            backend.act_on_network(net.native_id, NetworkAction.UP)

    def test_network_update(self, backend: Backend) -> None:
        need(backend, Capability.NETWORKS, Capability.NETWORK_CREATE, Capability.NETWORK_UPDATE)
        net = backend.create_network(NetworkSpec(cidr="10.60.0.0/16", name="before"))
        backend.update_network(net.native_id, NetworkUpdate(name="after"))
        assert by_id(backend.list_networks(), net.native_id).name == "after"
        described = self.described(lambda: backend.update_network(net.native_id, NetworkUpdate(description="lab")))
        assert by_id(backend.list_networks(), net.native_id).description == ("lab" if described else "")
        backend.delete_network(net.native_id)
        with raises(NotFound, kind="network"):
            backend.update_network(net.native_id, NetworkUpdate(name="gone"))

    # -- images ----------------------------------------------------------------------------------
    def test_create_image_from_machine(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.IMAGE_CREATE)
        vm = self.launch(backend)[0]
        image = backend.create_image(ImageSpec(machine_id=vm.native_id, name="golden", description="snap"))
        # Meanwhile the machine may show it is being captured (where the cloud says so); then it is back as it was.
        assert self.machine(backend, vm.native_id).state in (MachineState.CAPTURING, MachineState.RUNNING)
        image = settle(lambda: by_id(backend.list_images(), image.native_id), lambda i: i.state == ImageState.AVAILABLE)
        self.wait_machine(backend, vm.native_id, MachineState.RUNNING)
        assert image.name == "golden"
        with raises(NotFound, kind="machine"):
            backend.create_image(ImageSpec(machine_id="vm-missing", name="other"))
        backend.delete_image(image.native_id)
        assert by_id(backend.list_images(), image.native_id) is None

    def test_image_update(self, backend: Backend) -> None:
        need(backend, Capability.MACHINES, Capability.IMAGE_CREATE, Capability.IMAGE_UPDATE)
        vm = self.launch(backend)[0]
        image = backend.create_image(ImageSpec(machine_id=vm.native_id, name="first-name"))
        settle(lambda: by_id(backend.list_images(), image.native_id), lambda i: i.state == ImageState.AVAILABLE)
        backend.update_image(image.native_id, ImageUpdate(name="second-name", description="patched"))
        listed = by_id(backend.list_images(), image.native_id)
        assert (listed.name, listed.description) == ("second-name", "patched")
        backend.delete_image(image.native_id)
        with raises(NotFound, kind="image"):
            backend.update_image(image.native_id, ImageUpdate(name="gone"))

    # -- tags ------------------------------------------------------------------------------------
    def test_native_tags(self, backend: Backend) -> None:
        """Tags the cloud keeps itself: launched with, set, overwritten and removed, read back by listing."""
        need(backend, Capability.NATIVE_TAGS, Capability.MACHINES)
        assert set(RESOURCE_TYPES) >= backend.NATIVE_TAG_KINDS and "machine" in backend.NATIVE_TAG_KINDS
        vm = self.launch(backend, tags={"env": "test"})[0]
        assert vm.tags.get("env") == "test"
        resources: list[tuple[str, str, Callable[[], list[Any]]]] = [("machine", vm.native_id, backend.list_machines)]
        if Capability.VOLUMES in backend.capabilities and "volume" in backend.NATIVE_TAG_KINDS:
            resources.append(("volume", self.new_volume(backend), backend.list_volumes))
        for kind, native_id, listing in resources:
            backend.set_tags(kind, native_id, {"env": "prod", "team": "a b=c", "empty": ""})
            tags = by_id(listing(), native_id).tags
            assert (tags.get("env"), tags.get("team"), tags.get("empty")) == ("prod", "a b=c", ""), kind
            backend.remove_tags(kind, native_id, ["env", "absent"])
            tags = by_id(listing(), native_id).tags
            assert "env" not in tags and tags.get("team") == "a b=c", kind
        backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
        if len(resources) > 1:
            backend.delete_volume(resources[1][1])
