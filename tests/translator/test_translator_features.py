"""The translator's side of interfaces, action methods, network states and updates, over a real Redis and the
simulator: gateway ids in and out, references checked per tenant, capabilities and invalid combinations
refused before any backend is called."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.app import Runtime, build_runtime, seed_identity
from gateway.config import parse
from translator.errors import CloudgateError, Forbidden, InvalidParameter, NotFound
from translator.ids import gateway_id
from translator.model import (
    ActionMethod,
    ImageSpec,
    ImageUpdate,
    InterfaceSpec,
    InterfaceState,
    MachineAction,
    MachineSpec,
    MachineState,
    NetworkAction,
    NetworkState,
    NetworkUpdate,
    Principal,
    SecurityGroupSpec,
    SecurityGroupUpdate,
    VolumeSpec,
    VolumeUpdate,
)

DEMO = Principal(user="u", tenant="demo", role="admin")
OTHER = Principal(user="o", tenant="other", role="admin")
READER = Principal(user="r", tenant="demo", role="reader")


@pytest.fixture
def runtime(redis_server: Any, redis_client: Any) -> Any:
    config = parse(
        {
            "gateway": {"redis_url": redis_server.url},
            "translator": {"cache_ttl": 60.0, "retry_initial_wait": 0.0},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0}},
            "tenants": {
                "demo": {"regions": {"r1": {"backend": "sim"}}},
                "other": {"regions": {"r1": {"backend": "sim"}}},
            },
        }
    )
    rt = build_runtime(config, redis_server.url)
    seed_identity(rt)
    yield rt
    rt.close()


def launch(rt: Runtime, principal: Principal = DEMO) -> Any:
    t = rt.translator
    image = t.list(principal, "image")[0]
    flavor = next(f for f in t.list(principal, "flavor") if f.name == "t3.micro")
    (machine,) = t.create_machines(principal, MachineSpec(image_id=image.id, flavor_id=flavor.id))
    return t.get(principal, "machine", machine.id)


def refused(cls: type[CloudgateError], call: Any, **attrs: str) -> None:
    with pytest.raises(cls) as info:
        call()
    for name, value in attrs.items():
        assert getattr(info.value, name) == value, repr(info.value)


def test_interfaces_carry_gateway_ids_and_references_are_the_callers(runtime: Runtime) -> None:
    t = runtime.translator
    vm = launch(runtime)
    t.list(DEMO, "network")  # ids are learned from listings of their own kind
    (primary,) = vm.interfaces
    assert primary.id == gateway_id("demo/r1", "network_interface", primary.native_id)
    assert (primary.network_id, primary.subnet_id) == (vm.network_id, vm.subnet_id)
    made = t.attach_interface(DEMO, vm.id, InterfaceSpec(network_id=vm.network_id))
    assert made.id == gateway_id("demo/r1", "network_interface", made.native_id) and made.network_id == vm.network_id
    assert [i.id for i in t.get(DEMO, "machine", vm.id).interfaces] == [primary.id, made.id]
    # Another tenant's network is not the caller's to name; a spec naming nothing is refused first.
    theirs = launch(runtime, OTHER)
    t.list(OTHER, "network")
    refused(NotFound, lambda: t.attach_interface(DEMO, vm.id, InterfaceSpec(network_id=theirs.network_id)))
    refused(InvalidParameter, lambda: t.attach_interface(DEMO, vm.id, InterfaceSpec()), kind="network_interface")
    refused(Forbidden, lambda: t.detach_interface(READER, vm.id, made.id))
    refused(NotFound, lambda: t.detach_interface(OTHER, vm.id, made.id), kind="machine")
    t.detach_interface(DEMO, vm.id, made.id)
    assert [i.id for i in t.get(DEMO, "machine", vm.id).interfaces] == [primary.id]
    (job, *_) = t.list_jobs(DEMO).items
    assert job.operation == "detach_interface" and job.target_ids == [vm.id]


def test_network_actions(runtime: Runtime) -> None:
    t = runtime.translator
    vm = launch(runtime)
    t.list(DEMO, "network")
    assert t.act_on_network(DEMO, vm.network_id, "down").state == NetworkState.DOWN
    assert t.get(DEMO, "network", vm.network_id).state == NetworkState.DOWN
    assert t.get(DEMO, "machine", vm.id).interfaces[0].state == InterfaceState.INACTIVE
    refused(InvalidParameter, lambda: t.act_on_network(DEMO, vm.network_id, "sideways"), reason="action")
    refused(NotFound, lambda: t.act_on_network(OTHER, vm.network_id, "up"), kind="network")
    assert t.act_on_network(DEMO, vm.network_id, NetworkAction.UP).state == NetworkState.AVAILABLE


def test_updates(runtime: Runtime) -> None:
    t = runtime.translator
    zone = t.zones(DEMO)[0].name
    vol = t.create_volume(DEMO, VolumeSpec(size_gb=2, zone=zone, name="data"))
    grown = t.update_volume(DEMO, vol.id, VolumeUpdate(size_gb=5, description="logs"))
    assert (grown.id, grown.size_gb, grown.description, grown.name) == (vol.id, 5, "logs", "data")
    assert t.get(DEMO, "volume", vol.id).size_gb == 5  # the listing is invalidated by the update
    refused(InvalidParameter, lambda: t.update_volume(DEMO, vol.id, VolumeUpdate(size_gb=0)), reason="size")
    refused(NotFound, lambda: t.update_volume(OTHER, vol.id, VolumeUpdate(name="theirs")), kind="volume")
    refused(Forbidden, lambda: t.update_volume(READER, vol.id, VolumeUpdate(name="read-only")))
    group = t.create_security_group(DEMO, SecurityGroupSpec(name="web", description="old"))
    assert t.update_security_group(DEMO, group.id, SecurityGroupUpdate(description="new")).description == "new"
    net = t.list(DEMO, "network")[0]
    assert t.update_network(DEMO, net.id, NetworkUpdate(name="main")).name == "main"
    assert t.get(DEMO, "network", net.id).name == "main"
    vm = launch(runtime)
    image = t.create_image(DEMO, ImageSpec(machine_id=vm.id, name="golden"))
    assert t.update_image(DEMO, image.id, ImageUpdate(description="gold")).description == "gold"
    operations = [j.operation for j in t.list_jobs(DEMO).items]
    assert {"update_volume", "update_security_group", "update_network", "update_image"} <= set(operations)


def test_action_methods(runtime: Runtime) -> None:
    t = runtime.translator
    vm = launch(runtime)
    refused(InvalidParameter, lambda: t.act_on_machine(DEMO, vm.id, MachineAction.START, "hard"), reason="method")
    refused(InvalidParameter, lambda: t.act_on_machine(DEMO, vm.id, "explode"), kind="machine")
    refused(InvalidParameter, lambda: t.act_on_machine(DEMO, vm.id, "stop", "gentle"), kind="machine")
    assert t.act_on_machine(DEMO, vm.id, MachineAction.PAUSE).state == MachineState.PAUSED
    assert t.act_on_machine(DEMO, vm.id, "unpause").state in (MachineState.PENDING, MachineState.RUNNING)
    assert t.get(DEMO, "machine", vm.id).state == MachineState.RUNNING
    assert t.act_on_machine(DEMO, vm.id, "stop", ActionMethod.HARD).state == MachineState.STOPPED
