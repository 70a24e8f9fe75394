"""The simulator: the shared contract plus what only a Redis-backed simulator promises."""

from __future__ import annotations

import base64
import hashlib
import importlib
import inspect
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from backend_contract import BackendContract, by_id, raises, settle
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_monitor import commands_during

from backends.simulator import SimulatorBackend
from backends.simulator.catalog import image_id
from backends.simulator.faults import OPERATIONS
from translator.backend import AccountConfig, BackendServices, Capability
from translator.errors import (
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    QuotaExceeded,
    TransientBackendError,
)
from translator.model import (
    ActionMethod,
    Address,
    BlockDevice,
    ImageSpec,
    ImageState,
    ImageUpdate,
    InterfaceSpec,
    InterfaceState,
    KeyPairMaterial,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkAction,
    NetworkSpec,
    Rule,
    SecurityGroupSpec,
    SecurityGroupUpdate,
    SnapshotState,
    SubnetSpec,
    Volume,
    VolumeSpec,
    VolumeState,
    VolumeTier,
    VolumeUpdate,
)

REPO = Path(__file__).resolve().parents[2]
ZONES = ("local-1a", "local-1b")


def make_backend(client: redis.Redis, key: str = "t1/local-1", **options: Any) -> SimulatorBackend:
    """A simulator account on ``client``; fast transitions unless the test says otherwise."""
    tenant, region = key.split("/")
    account = AccountConfig(
        key=key,
        tenant=tenant,
        region=region,
        backend="sim",
        driver="simulator",
        zones=ZONES,
        options={"boot_delay": 0.05} | options,
    )
    assert SimulatorBackend.validate_options(account.options) == []
    return SimulatorBackend(account, BackendServices(client))


@pytest.fixture
def backend(redis_client: redis.Redis) -> Iterator[SimulatorBackend]:
    b = make_backend(redis_client)
    yield b
    b.close()


class TestSimulatorContract(BackendContract):
    """Every contract test, run against the simulator."""


# ---------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------

UBUNTU = image_id("ubuntu-24.04")


def launch(b: SimulatorBackend, count: int = 1, wait: bool = True, **spec: Any) -> list[Machine]:
    made = b.create_machines(MachineSpec(**({"image_id": UBUNTU, "flavor_id": "t3.micro", "count": count} | spec)))
    if not wait:
        return made
    return [
        settle(lambda m=m: by_id(b.list_machines(), m.native_id), lambda x: x.state == MachineState.RUNNING)
        for m in made
    ]


def volume(b: SimulatorBackend, size: int = 1, zone: str = ZONES[0]) -> str:
    v = b.create_volume(VolumeSpec(size_gb=size, zone=zone))
    settle(lambda: by_id(b.list_volumes(), v.native_id), lambda x: x.state == VolumeState.AVAILABLE)
    return v.native_id


def run_threads(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run ``fn(i)`` in ``n`` threads started together; results or the exceptions raised."""
    barrier = threading.Barrier(n)

    def call(i: int) -> Any:
        barrier.wait()
        try:
            return fn(i)
        except Exception as exc:  # collected for the assertions
            return exc

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(call, range(n)))


# ---------------------------------------------------------------------------------------------------
# Declaration, catalogue, options
# ---------------------------------------------------------------------------------------------------


def test_declares_everything_but_native_tags() -> None:
    assert SimulatorBackend.driver == "simulator"
    assert SimulatorBackend.capabilities == frozenset(Capability) - {Capability.NATIVE_TAGS}
    # Every canonical state is one the simulated cloud really takes (error: a failed boot).
    assert set(SimulatorBackend.STATE_MAP.values()) == set(MachineState)


def test_entry_point_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["cloudgate.backends"]["simulator"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is SimulatorBackend


def test_default_flavors_are_ec2_figures(backend: SimulatorBackend) -> None:
    figures = {f.native_id: (f.vcpus, f.memory_mb) for f in backend.list_flavors()}
    assert figures == {
        "t3.micro": (2, 1024),
        "t3.small": (2, 2048),
        "t3.medium": (2, 4096),
        "m5.large": (2, 8192),
        "c5.xlarge": (4, 8192),
    }


def test_default_image_ids_are_stable(redis_client: redis.Redis) -> None:
    first = {i.name: i.native_id for i in make_backend(redis_client).list_images()}
    other = {i.name: i.native_id for i in make_backend(redis_client, "t9/elsewhere").list_images()}
    assert {"ubuntu-24.04", "debian-12"} <= set(first)
    assert first == other and all(v.startswith("img-") for v in first.values())


def test_custom_catalogue(redis_client: redis.Redis) -> None:
    b = make_backend(
        redis_client,
        images=[{"name": "alpine", "os": "alpine", "min_disk_gb": 2}],
        flavors=[{"name": "tiny", "vcpus": 1, "memory_mb": 512, "disk_gb": 5}],
    )
    assert [i.name for i in b.list_images()] == ["alpine"]
    vm = b.create_machines(MachineSpec(image_id=image_id("alpine"), flavor_id="tiny"))[0]
    assert (vm.vcpus, vm.memory_mb) == (1, 512)
    assert by_id(b.list_volumes(), vm.volume_ids[0]).size_gb == 5  # the flavor's disk beats the image's


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"boot_delay": -1}, "boot_delay: must be a number >= 0, got -1"),
        ({"boot_delay": "fast"}, "boot_delay: must be a number >= 0"),
        ({"boot_dely": 1}, "boot_dely: unknown option"),
        ({"max_machines": 2.5}, "max_machines: must be an integer >= 0"),
        ({"terminated_retention": True}, "terminated_retention: must be a number >= 0"),
        ({"images": []}, "images: must be a non-empty list of tables"),
        ({"images": [{"os": "x"}]}, "images[0].name: is required"),
        ({"images": [{"name": "a"}, {"name": "a"}]}, "images: duplicate name 'a'"),
        ({"images": [{"name": "a", "min_disk_gb": -3}]}, "images[0].min_disk_gb: must be an integer >= 0"),
        (
            {"flavors": [{"name": "f", "vcpus": 0, "memory_mb": 1}]},
            "flavors[0].vcpus: must be an integer > 0",
        ),
        ({"flavors": [{"name": "f", "vcpus": 1}]}, "flavors[0].memory_mb: is required"),
        ({"flavors": [{"name": "f", "vcpus": 1, "memory_mb": 1, "gpu": 1}]}, "flavors[0].gpu: unknown field"),
        ({"faults": {"fail_rate": 1.5}}, "faults.fail_rate: must be a number between 0 and 1"),
        ({"faults": {"fail_first": -1}}, "faults.fail_first: must be an integer >= 0"),
        ({"faults": {"down": "yes"}}, "faults.down: must be true or false"),
        ({"faults": 3}, "faults: must be a table"),
    ],
)
def test_option_validation(options: dict[str, Any], expected: str) -> None:
    problems = SimulatorBackend.validate_options(options)
    assert any(p.startswith(expected) for p in problems), problems


def test_valid_options_have_no_problems() -> None:
    options = {
        "boot_delay": 0,
        "max_machines": 10,
        "terminated_retention": 60.5,
        "images": [
            {
                "name": "x",
                "description": "",
                "os": "linux",
                "architecture": "arm64",
                "platform": "linux",
                "min_disk_gb": 4,
                "root_device": "/dev/xvda",
            }
        ],
        "flavors": [{"name": "f", "vcpus": 1, "memory_mb": 256, "disk_gb": 0}],
        "faults": {"fail_first": 0, "fail_rate": 0.0, "down": False},
    }
    assert SimulatorBackend.validate_options(options) == []
    assert SimulatorBackend.validate_options({}) == []


# ---------------------------------------------------------------------------------------------------
# Shared state, restarts, tenancy
# ---------------------------------------------------------------------------------------------------


def test_a_machine_read_by_id_is_the_machine_listed(backend: SimulatorBackend) -> None:
    """As EC2 describes an instance alike either way: its disks, group names and the primary interface's public
    address come with a read by id too (a DescribeInstances by id then needs no volume or group listing)."""
    (vm,) = launch(backend)
    data = volume(backend)
    backend.attach_volume(data, vm.native_id)
    address = backend.allocate_address()
    backend.associate_address(address.native_id, vm.native_id)
    listed = by_id(backend.list_machines(), vm.native_id)
    (read,) = backend.get_machines([vm.native_id])
    assert read == listed
    assert read.disks and {d.volume_id for d in read.disks} == set(read.volume_ids) and data in read.volume_ids
    assert read.security_group_names and all(read.security_group_names)
    assert read.interfaces[0].public_ip == address.public_ip == read.public_ip


def test_state_is_shared_between_workers(redis_client: redis.Redis) -> None:
    one, two = make_backend(redis_client), make_backend(redis_client)
    vm = launch(one)[0]
    assert by_id(two.list_machines(), vm.native_id).state == MachineState.RUNNING
    two.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: by_id(one.list_machines(), vm.native_id), lambda m: m.state == MachineState.STOPPED)
    assert [n.native_id for n in one.list_networks()] == [n.native_id for n in two.list_networks()]


def test_state_survives_reinstantiation(redis_client: redis.Redis) -> None:
    first = make_backend(redis_client)
    vm = launch(first)[0]
    key = first.create_key_pair("keep", "ed25519").key_pair
    first.close()
    again = make_backend(redis_client)
    assert by_id(again.list_machines(), vm.native_id) == by_id(first.list_machines(), vm.native_id)
    assert by_id(again.list_key_pairs(), key.native_id) == key
    assert len([n for n in again.list_networks() if n.is_default]) == 1


def test_accounts_are_isolated(redis_client: redis.Redis) -> None:
    mine, theirs = make_backend(redis_client, "t1/local-1"), make_backend(redis_client, "t2/local-1")
    vm = launch(mine)[0]
    assert theirs.list_machines() == []
    with raises(NotFound, kind="machine"):
        theirs.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    mine.create_key_pair("same", "ed25519")
    theirs.create_key_pair("same", "ed25519")  # names are unique per account only
    assert mine.allocate_address().public_ip == theirs.allocate_address().public_ip == "198.51.100.1"
    assert {n.native_id for n in mine.list_networks()}.isdisjoint(n.native_id for n in theirs.list_networks())


# ---------------------------------------------------------------------------------------------------
# Concurrency: every read-modify-write is atomic across workers
# ---------------------------------------------------------------------------------------------------


def test_concurrent_attach_of_one_volume_has_one_winner(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client)
    vm = launch(b)[0]
    vol = volume(b)
    workers = [make_backend(redis_client) for _ in range(20)]
    results = run_threads(20, lambda i: workers[i].attach_volume(vol, vm.native_id, f"/dev/sd{chr(ord('f') + i)}"))
    winners = [r for r in results if isinstance(r, Volume)]
    losers = [r for r in results if isinstance(r, Conflict)]
    assert len(winners) == 1 and len(losers) == 19, results
    assert all(e.kind == "volume" and e.reason == "in_use" for e in losers)
    assert by_id(b.list_machines(), vm.native_id).volume_ids.count(vol) == 1


def test_concurrent_attach_to_one_device_has_one_winner(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client)
    vm = launch(b)[0]
    vols = [b.create_volume(VolumeSpec(size_gb=1, zone=ZONES[0])).native_id for _ in range(20)]
    settle(b.list_volumes, lambda vs: all(v.state != VolumeState.CREATING for v in vs))
    results = run_threads(20, lambda i: make_backend(redis_client).attach_volume(vols[i], vm.native_id, "/dev/sdf"))
    assert sum(isinstance(r, Volume) for r in results) == 1, results
    assert all(r.kind == "attachment" for r in results if isinstance(r, Conflict))
    machine = by_id(b.list_machines(), vm.native_id)
    assert len(machine.volume_ids) == 2  # the root volume and the winner
    assert sum(v.state == VolumeState.IN_USE for v in b.list_volumes()) == 2


def test_concurrent_allocations_get_distinct_addresses(redis_client: redis.Redis) -> None:
    results = run_threads(20, lambda i: make_backend(redis_client).allocate_address())
    assert all(isinstance(r, Address) for r in results), results
    assert len({r.public_ip for r in results}) == 20


def test_concurrent_associations_leave_one_address_on_the_machine(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client)
    vm = launch(b)[0]
    addresses = [b.allocate_address() for _ in range(20)]
    run_threads(20, lambda i: make_backend(redis_client).associate_address(addresses[i].native_id, vm.native_id))
    associated = [a for a in b.list_addresses() if a.machine_id == vm.native_id]
    assert len(associated) == 1
    assert by_id(b.list_machines(), vm.native_id).public_ip == associated[0].public_ip


def test_concurrent_key_pairs_with_one_name(redis_client: redis.Redis) -> None:
    results = run_threads(10, lambda i: make_backend(redis_client).create_key_pair("race", "ed25519"))
    assert sum(isinstance(r, KeyPairMaterial) for r in results) == 1, results
    assert len(make_backend(redis_client).list_key_pairs()) == 1


# ---------------------------------------------------------------------------------------------------
# Fault injection
# ---------------------------------------------------------------------------------------------------


def test_fail_first_is_counted_across_workers(redis_client: redis.Redis) -> None:
    one = make_backend(redis_client, faults={"fail_first": 3})
    two = make_backend(redis_client, faults={"fail_first": 3})
    for b in (one, two, one):
        with pytest.raises(TransientBackendError):
            b.create_key_pair("k", "ed25519")
    assert two.list_key_pairs() == []  # failed calls changed nothing
    assert one.create_key_pair("k", "ed25519").key_pair.name == "k"
    assert len(two.list_key_pairs()) == 1


def test_a_machine_that_fails_to_boot_is_in_error(redis_client: redis.Redis) -> None:
    """The simulator's ``error`` state is real: a failed boot (faults.boot_failure_rate) ends there."""
    b = make_backend(redis_client, faults={"boot_failure_rate": 1.0})
    vm = launch(b, wait=False)[0]
    failed = settle(lambda: by_id(b.list_machines(), vm.native_id), lambda m: m.state == MachineState.ERROR)
    assert "failed to boot" in failed.state_reason
    b.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    settle(lambda: by_id(b.list_machines(), vm.native_id), lambda m: m.state == MachineState.TERMINATED)


def test_down_fails_every_operation_before_it_starts(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client, faults={"down": True})
    with pytest.raises(TransientBackendError):
        b.check()
    for name in OPERATIONS:
        method = getattr(b, name)
        args = [None] * (len(inspect.signature(method).parameters))
        with pytest.raises(TransientBackendError):
            method(*args)
    assert redis_client.keys("cg:sim:*") == []


def test_fail_rate(redis_client: redis.Redis) -> None:
    always = make_backend(redis_client, faults={"fail_rate": 1.0})
    with pytest.raises(TransientBackendError):
        always.list_flavors()
    assert make_backend(redis_client, faults={"fail_rate": 0.0}).list_flavors()


def test_unreachable_redis_is_transient() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    b = make_backend(client)
    with pytest.raises(TransientBackendError):
        b.check()
    with pytest.raises(TransientBackendError):
        b.list_machines()


# ---------------------------------------------------------------------------------------------------
# Key material
# ---------------------------------------------------------------------------------------------------


def ssh_blob(openssh: str) -> bytes:
    return base64.b64decode(openssh.split()[1])


def test_created_rsa_key(backend: SimulatorBackend) -> None:
    made = backend.create_key_pair("rsa", "rsa")
    assert made.private_key.startswith("-----BEGIN RSA PRIVATE KEY-----")
    private = serialization.load_pem_private_key(made.private_key.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    stored = by_id(backend.list_key_pairs(), made.key_pair.native_id)
    assert (
        serialization.load_ssh_public_key(stored.public_key.encode()).public_numbers()
        == private.public_key().public_numbers()
    )
    pkcs8 = private.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    assert stored.fingerprint == ":".join(f"{b:02x}" for b in hashlib.sha1(pkcs8).digest())
    assert made.private_key.splitlines()[1] not in redis_dump(backend)


def test_created_ed25519_key(backend: SimulatorBackend) -> None:
    made = backend.create_key_pair("ed", "ed25519")
    assert made.private_key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = serialization.load_ssh_private_key(made.private_key.encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    stored = by_id(backend.list_key_pairs(), made.key_pair.native_id)
    assert stored.key_type == "ed25519" and ssh_blob(stored.public_key) == ssh_blob(public.decode())
    digest = base64.b64encode(hashlib.sha256(ssh_blob(stored.public_key)).digest()).decode()
    assert stored.fingerprint == digest.rstrip("=") and "=" not in stored.fingerprint
    assert made.private_key.splitlines()[1] not in redis_dump(backend)


def test_imported_keys(backend: SimulatorBackend) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    openssh = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    imported = backend.import_key_pair("mine", openssh + " me@laptop")
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert imported.fingerprint == ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
    assert imported.key_type == "rsa" and imported.public_key == openssh
    ecdsa = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    assert backend.import_key_pair("ec", ecdsa).key_type == "ecdsa"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "ssh-rsa AAAA",
        "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----",
    ],
)
def test_import_rejects_other_formats(backend: SimulatorBackend, text: str) -> None:
    with raises(InvalidParameter, kind="key_pair", reason="format"):
        backend.import_key_pair("bad", text)


def test_key_pair_arguments(backend: SimulatorBackend) -> None:
    with raises(InvalidParameter, kind="key_pair", reason="key_type"):
        backend.create_key_pair("x", "dsa")
    with raises(InvalidParameter, kind="key_pair", reason="name"):
        backend.create_key_pair("", "rsa")


def redis_dump(b: SimulatorBackend) -> str:
    """Everything the account keeps in Redis, as text (to prove private keys are not there)."""
    client = b.services.redis
    return "".join(str(client.hgetall(k)) for k in client.keys("cg:sim:*") if client.type(k) == b"hash")


# ---------------------------------------------------------------------------------------------------
# Machines
# ---------------------------------------------------------------------------------------------------


def test_quota(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client, max_machines=3)
    first, _ = launch(b, count=2)
    with raises(QuotaExceeded, kind="machine"):
        b.create_machines(MachineSpec(image_id=UBUNTU, flavor_id="t3.micro", count=2))
    assert len(b.list_machines()) == 2 and len(b.list_volumes()) == 2  # nothing half-made
    b.act_on_machine(first.native_id, MachineAction.TERMINATE)
    settle(lambda: by_id(b.list_machines(), first.native_id), lambda m: m.state == MachineState.TERMINATED)
    assert len(b.create_machines(MachineSpec(image_id=UBUNTU, flavor_id="t3.micro", count=2))) == 2


def test_transitions_are_lazy_and_timed(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client, boot_delay=0.3)
    vm = launch(b, wait=False)[0]
    assert vm.state == MachineState.PENDING
    assert b.console_output(vm.native_id) == ""
    vol = b.create_volume(VolumeSpec(size_gb=1, zone=ZONES[0]))
    assert vol.state == VolumeState.CREATING
    with raises(Conflict, kind="volume", reason="state"):
        b.attach_volume(vol.native_id, vm.native_id, "/dev/sdf")
    with raises(Conflict, kind="machine", reason="state"):
        b.act_on_machine(vm.native_id, MachineAction.STOP)
    time.sleep(0.35)
    running = by_id(b.list_machines(), vm.native_id)
    assert running.state == MachineState.RUNNING and running.updated >= vm.launched + 0.3
    assert by_id(b.list_volumes(), vol.native_id).state == VolumeState.AVAILABLE


def test_launch_details(backend: SimulatorBackend) -> None:
    snap_source = volume(backend, size=4)
    snap = backend.create_snapshot(snap_source, "base")
    settle(lambda: by_id(backend.list_snapshots(), snap.native_id), lambda s: s.state == SnapshotState.COMPLETED)
    vms = launch(
        backend,
        count=2,
        key_name=None,
        user_data="#!/bin/sh",
        block_devices=(
            BlockDevice(boot=True, size_gb=12, tier=VolumeTier.SSD),
            BlockDevice(device="/dev/vdb", size_gb=10, tier=VolumeTier.IO, delete_on_termination=False),
            BlockDevice(device="/dev/vdc", snapshot_id=snap.native_id),
        ),
    )
    subnet = next(s for s in backend.list_subnets() if s.zone == ZONES[0] and s.is_default)
    group = next(g for g in backend.list_security_groups() if g.name == "default")
    assert sorted(m.private_ip for m in vms) == ["10.0.0.4", "10.0.0.5"]
    for vm in vms:
        assert vm.subnet_id == subnet.native_id and vm.zone == ZONES[0] and vm.security_group_ids == [group.native_id]
        assert vm.launched > 0 and vm.root_device == "/dev/sda1" and vm.user_data == "#!/bin/sh"
        disks = {
            by_id(backend.list_volumes(), v).attachments[0].device: by_id(backend.list_volumes(), v)
            for v in vm.volume_ids
        }
        assert {d: v.size_gb for d, v in disks.items()} == {"/dev/sda1": 12, "/dev/vdb": 10, "/dev/vdc": 4}
        assert disks["/dev/vdc"].snapshot_id == snap.native_id and disks["/dev/vdb"].tier == VolumeTier.IO
        assert disks["/dev/sda1"].tier == VolumeTier.SSD and disks["/dev/vdc"].tier == VolumeTier.STANDARD
    assert by_id(backend.list_subnets(), subnet.native_id).available_ips == 4091 - 2


def test_launch_placement_rules(backend: SimulatorBackend) -> None:
    with raises(NotFound, kind="zone"):
        launch(backend, zone="mars-1a")
    net = backend.create_network(NetworkSpec(cidr="10.20.0.0/16"))
    sub = backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.20.1.0/24", zone=ZONES[1]))
    with raises(InvalidParameter, kind="subnet", reason="zone"):
        launch(backend, subnet_id=sub.native_id, zone=ZONES[0])
    default_group = next(
        g for g in backend.list_security_groups() if g.name == "default" and g.network_id != net.native_id
    )
    with raises(InvalidParameter, kind="security_group"):
        launch(backend, subnet_id=sub.native_id, security_group_ids=(default_group.native_id,))
    vm = launch(backend, subnet_id=sub.native_id)[0]
    assert (vm.zone, vm.network_id, vm.private_ip) == (ZONES[1], net.native_id, "10.20.1.4")
    with raises(Conflict, kind="subnet", reason="dependency"):
        backend.delete_subnet(sub.native_id)
    with raises(InvalidParameter, kind="machine", reason="count"):
        launch(backend, count=0)


def test_actions_by_state(backend: SimulatorBackend) -> None:
    vm = launch(backend)[0]
    assert backend.act_on_machine(vm.native_id, MachineAction.RESUME).state == MachineState.RUNNING
    assert backend.act_on_machine(vm.native_id, MachineAction.SUSPEND).state == MachineState.SUSPENDED
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.REBOOT)
    stopping = backend.act_on_machine(vm.native_id, MachineAction.STOP)
    assert stopping.state == MachineState.STOPPING
    assert stopping.state_reason.startswith("Client.UserInitiatedShutdown")
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.START)
    with raises(InvalidParameter, kind="machine", reason="action"):
        backend.act_on_machine(vm.native_id, "explode")  # type: ignore[arg-type]


def test_capture_pause_and_hard_methods(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client, boot_delay=0.3)
    vm = launch(b)[0]
    b.create_image(ImageSpec(machine_id=vm.native_id, name="captured"))
    assert by_id(b.list_machines(), vm.native_id).state == MachineState.CAPTURING
    for action in (MachineAction.STOP, MachineAction.PAUSE, MachineAction.REBOOT):
        with raises(Conflict, kind="machine", reason="state"):
            b.act_on_machine(vm.native_id, action)
    settle(lambda: by_id(b.list_machines(), vm.native_id), lambda m: m.state == MachineState.RUNNING)
    # A hard stop cuts power at once, even while a graceful stop is under way.
    assert b.act_on_machine(vm.native_id, MachineAction.STOP).state == MachineState.STOPPING
    assert b.act_on_machine(vm.native_id, MachineAction.STOP, ActionMethod.HARD).state == MachineState.STOPPED
    b.act_on_machine(vm.native_id, MachineAction.START)
    settle(lambda: by_id(b.list_machines(), vm.native_id), lambda m: m.state == MachineState.RUNNING)
    assert b.act_on_machine(vm.native_id, MachineAction.REBOOT, ActionMethod.HARD).state == MachineState.REBOOTING
    settle(lambda: by_id(b.list_machines(), vm.native_id), lambda m: m.state == MachineState.RUNNING)
    # A paused machine stops, and the hard way has no start.
    assert b.act_on_machine(vm.native_id, MachineAction.PAUSE).state == MachineState.PAUSED
    assert b.act_on_machine(vm.native_id, MachineAction.STOP).state == MachineState.STOPPING
    with raises(InvalidParameter, kind="machine", reason="action"):
        b.act_on_machine(vm.native_id, MachineAction.START, ActionMethod.HARD)


def test_conflict_message_names_machine_and_state(backend: SimulatorBackend) -> None:
    vm = launch(backend)[0]
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    with pytest.raises(Conflict) as info:
        backend.act_on_machine(vm.native_id, MachineAction.START)
    assert vm.native_id in info.value.message and "shutting-down" in info.value.message


def test_termination_releases_resources(backend: SimulatorBackend) -> None:
    vm = launch(backend, block_devices=(BlockDevice(device="/dev/sdb", size_gb=2, delete_on_termination=False),))[0]
    extra = volume(backend)
    backend.attach_volume(extra, vm.native_id, "/dev/sdf")
    root, kept = vm.volume_ids
    address = backend.associate_address(backend.allocate_address().native_id, vm.native_id)
    done = backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    assert done.state == MachineState.TERMINATING and done.volume_ids == [] and done.public_ip is None
    vols = {v.native_id: v for v in backend.list_volumes()}
    assert root not in vols
    assert vols[kept].state == vols[extra].state == VolumeState.AVAILABLE and not vols[extra].attachments
    assert by_id(backend.list_addresses(), address.native_id).machine_id is None
    settle(lambda: by_id(backend.list_machines(), vm.native_id), lambda m: m.state == MachineState.TERMINATED)


def test_terminated_machines_disappear_after_retention(redis_client: redis.Redis) -> None:
    b = make_backend(redis_client, terminated_retention=0.1)
    vm = launch(b)[0]
    b.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    settle(lambda: by_id(b.list_machines(), vm.native_id), lambda m: m is None)
    with raises(NotFound, kind="machine"):
        b.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    assert redis_client.hlen(f"cg:sim:{{{b.account.key}}}:machine") == 0


def test_a_launch_clears_machines_past_their_retention(redis_client: redis.Redis) -> None:
    """Machines gone from view (past their retention) leave Redis at the next launch, not only when listed."""
    b = make_backend(redis_client, terminated_retention=0.0, boot_delay=0.0)
    gone = launch(b, wait=False, idempotency_key="first")[0]
    b.act_on_machine(gone.native_id, MachineAction.TERMINATE)
    kept = launch(b, wait=False)[0]
    machines = redis_client.hkeys(f"cg:sim:{{{b.account.key}}}:machine")
    assert machines == [kept.native_id.encode()]
    assert not redis_client.exists(f"cg:sim:{{{b.account.key}}}:keys:machine:first")


def test_a_launch_reads_no_other_machine(redis_client: redis.Redis) -> None:
    """The quota and the free addresses come from the account's indexes: a launch reads no machine but its own
    (it read all of them before, 51 ms a launch at 1,000 machines)."""
    b = make_backend(redis_client)
    others = {m.native_id for m in launch(b, count=30, wait=False)}
    machines = f"cg:sim:{{{b.account.key}}}:machine"
    commands = commands_during(redis_client, lambda: launch(b, wait=False))
    assert [c for c in commands if c[0] == "EXEC"], commands  # the launch was seen
    assert not [c for c in commands if c[0] == "HGETALL" and c[1] == machines], commands
    read = {arg for c in commands if c[0] in ("HGET", "HMGET") and c[1] == machines for arg in c[2:]}
    assert not read & others, read


def test_an_account_from_before_the_indexes_gets_them_on_its_next_launch(redis_client: redis.Redis) -> None:
    """Records written without the indexes (an older gateway's): the next launch builds them from every record,
    so the quota still counts those machines and their addresses are not given out again."""
    b = make_backend(redis_client, max_machines=4)
    first = launch(b, count=3, wait=False)
    prefix = f"cg:sim:{{{b.account.key}}}:"
    for index in redis_client.keys(f"{prefix}index:*"):
        redis_client.delete(index)
    redis_client.hdel(f"{prefix}meta", "machine_index")
    (fourth,) = launch(b, wait=False)
    assert fourth.private_ip not in {m.private_ip for m in first}
    with raises(QuotaExceeded, kind="machine"):
        launch(b, wait=False)
    assert redis_client.zcard(f"{prefix}index:live") == 4


def test_a_machine_being_terminated_holds_its_place_and_address_until_it_is_terminated(
    redis_client: redis.Redis,
) -> None:
    b = make_backend(redis_client, max_machines=2, boot_delay=0.5)
    a, _ = launch(b, count=2, wait=False)
    b.act_on_machine(a.native_id, MachineAction.TERMINATE)
    with raises(QuotaExceeded, kind="machine"):  # shutting down: still under the quota
        launch(b, wait=False)
    settle(lambda: by_id(b.list_machines(), a.native_id), lambda m: m.state == MachineState.TERMINATED)
    (after,) = launch(b, wait=False)
    assert after.private_ip == a.private_ip  # the subnet's first free address again: a's, once a is terminated


def test_subnets_groups_and_networks_are_checked_without_reading_every_machine(redis_client: redis.Redis) -> None:
    """Whether a subnet, security group or network is in use, the free addresses of each subnet, and the machines a
    network's state reaches come from the account's indexes (machine_index.py): no machine is read but those on the
    network acted on (a subnet listing decoded every machine, 190 ms at 4,000)."""
    b = make_backend(redis_client, boot_delay=0)
    lab = b.create_network(NetworkSpec(cidr="172.16.0.0/16"))
    sub = b.create_subnet(SubnetSpec(network_id=lab.native_id, cidr="172.16.1.0/24", zone=ZONES[0]))
    group = b.create_security_group(SecurityGroupSpec(name="lab", description="", network_id=lab.native_id))
    others = launch(b, count=20, wait=False, zone=ZONES[0])
    (on_lab,) = launch(b, wait=False, subnet_id=sub.native_id, security_group_ids=(group.native_id,))
    machines = f"cg:sim:{{{b.account.key}}}:machine"

    def machines_read(action: Callable[[], Any]) -> set[str]:
        commands = commands_during(redis_client, action)
        assert [c for c in commands if c[0] == "WATCH"], commands  # the action was seen
        assert not [c for c in commands if c[0] == "HGETALL" and c[1] == machines], commands
        return {arg for c in commands if c[0] in ("HGET", "HMGET") and c[1] == machines for arg in c[2:]}

    listed: dict[str, Any] = {}
    assert not machines_read(lambda: listed.update((s.native_id, s) for s in b.list_subnets()))
    assert listed[sub.native_id].available_ips == 251 - 1
    assert listed[others[0].subnet_id].available_ips == 4091 - 20
    assert {s.available_ips for k, s in listed.items() if k not in (sub.native_id, others[0].subnet_id)} == {4091}

    def refused(action: Callable[[], Any], kind: str, reason: str) -> str:
        with pytest.raises(Conflict) as info:
            assert not machines_read(action)
        assert (info.value.kind, info.value.reason) == (kind, reason), repr(info.value)
        return info.value.message

    message = refused(lambda: b.delete_security_group(group.native_id), "security_group", "in_use")
    assert on_lab.native_id in message
    refused(lambda: b.delete_subnet(sub.native_id), "subnet", "dependency")
    assert machines_read(lambda: b.act_on_network(lab.native_id, NetworkAction.DOWN)) == {on_lab.native_id}
    states = {m.native_id: [i.state for i in m.interfaces] for m in b.list_machines()}
    assert states.pop(on_lab.native_id) == [InterfaceState.INACTIVE]
    assert set(map(tuple, states.values())) == {(InterfaceState.ACTIVE,)}

    b.act_on_machine(on_lab.native_id, MachineAction.TERMINATE)
    settle(lambda: by_id(b.list_machines(), on_lab.native_id), lambda m: m.state == MachineState.TERMINATED)
    assert by_id(b.list_subnets(), sub.native_id).available_ips == 251
    b.delete_security_group(group.native_id)
    b.delete_subnet(sub.native_id)
    b.delete_network(lab.native_id)
    left = [k.decode() for k in redis_client.keys(f"cg:sim:{{{b.account.key}}}:index:*")]
    assert not [k for k in left if lab.native_id in k or sub.native_id in k or group.native_id in k], left


def test_an_interface_detached_frees_its_subnet_and_network(backend: SimulatorBackend) -> None:
    vm = launch(backend, zone=ZONES[0])[0]
    lab = backend.create_network(NetworkSpec(cidr="172.16.0.0/16"))
    sub = backend.create_subnet(SubnetSpec(network_id=lab.native_id, cidr="172.16.1.0/28", zone=ZONES[0]))
    nic = backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=sub.native_id))
    with raises(Conflict, kind="subnet", reason="dependency"):
        backend.delete_subnet(sub.native_id)
    backend.act_on_network(lab.native_id, NetworkAction.DOWN)  # reaches a machine by its second interface
    states = {i.native_id: i.state for i in by_id(backend.list_machines(), vm.native_id).interfaces}
    assert states == {vm.interfaces[0].native_id: InterfaceState.ACTIVE, nic.native_id: InterfaceState.INACTIVE}
    backend.detach_interface(vm.native_id, nic.native_id)
    assert by_id(backend.list_subnets(), sub.native_id).available_ips == 11
    backend.delete_subnet(sub.native_id)
    backend.delete_network(lab.native_id)


def test_an_account_indexed_before_groups_and_networks_gets_them_built(redis_client: redis.Redis) -> None:
    """An account whose indexes have the first layout (machines live, addresses by subnet: an older gateway's) gets
    the rest built from its records by its next transaction that reads them: a group in use stays undeletable."""
    b = make_backend(redis_client, boot_delay=0)
    group = b.create_security_group(SecurityGroupSpec(name="web", description=""))
    (vm,) = launch(b, wait=False, security_group_ids=(group.native_id,))
    prefix = f"cg:sim:{{{b.account.key}}}:"
    for index in redis_client.keys(f"{prefix}index:group:*") + redis_client.keys(f"{prefix}index:network:*"):
        redis_client.delete(index)
    redis_client.hset(f"{prefix}meta", "machine_index", "1")
    with raises(Conflict, kind="security_group", reason="in_use"):
        b.delete_security_group(group.native_id)
    with raises(Conflict, kind="network", reason="dependency"):
        b.delete_network(vm.network_id)
    launch(b, wait=False)  # a transaction that commits keeps what it built (a refusal writes nothing)
    assert redis_client.zrange(f"{prefix}index:group:{group.native_id}", 0, -1) == [vm.native_id.encode()]
    assert redis_client.hget(f"{prefix}meta", "machine_index") == b"2"


def test_a_record_a_transaction_read_gone_is_still_pruned(redis_client: redis.Redis) -> None:
    """A machine past its retention that a transaction read by id (and found gone) is deleted when it prunes it,
    with the index of its launch's key, as one it had not read."""
    b = make_backend(redis_client, terminated_retention=0.0, boot_delay=0.0)
    (gone,) = launch(b, wait=False, idempotency_key="first")
    b.act_on_machine(gone.native_id, MachineAction.TERMINATE)
    store = b.sim.store
    settle(lambda: store.transact(lambda tx: tx.get("machine", gone.native_id)), lambda rec: rec is None)
    assert redis_client.hexists(store.key("machine"), gone.native_id)  # gone from view, still in Redis
    store.transact(lambda tx: (tx.get("machine", gone.native_id), tx.prune("machine", [gone.native_id])))
    assert not redis_client.hexists(store.key("machine"), gone.native_id)
    assert not redis_client.exists(f"{store.prefix}keys:machine:first")


def test_update_machine(backend: SimulatorBackend) -> None:
    vm = launch(backend)[0]
    backend.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: by_id(backend.list_machines(), vm.native_id), lambda m: m.state == MachineState.STOPPED)
    with raises(NotFound, kind="flavor"):
        backend.update_machine(vm.native_id, MachineUpdate(flavor_id="x9.huge"))
    changed = backend.update_machine(vm.native_id, MachineUpdate(flavor_id="c5.xlarge", name="big", user_data="u"))
    assert (changed.flavor_name, changed.vcpus, changed.memory_mb, changed.name, changed.user_data) == (
        "c5.xlarge",
        4,
        8192,
        "big",
        "u",
    )


def test_console_output_names_machine_and_ip(backend: SimulatorBackend) -> None:
    vm = launch(backend)[0]
    text = backend.console_output(vm.native_id)
    assert vm.native_id in text and vm.private_ip in text and "login:" in text


def test_listing_a_thousand_machines(redis_client: redis.Redis) -> None:
    """One launch of a thousand, each its own address; how fast they list is bench/bench_simulator.py's."""
    b = make_backend(redis_client, max_machines=1000, boot_delay=0)
    b.create_machines(MachineSpec(image_id=UBUNTU, flavor_id="t3.micro", count=1000))
    listed = b.list_machines()
    assert len(listed) == 1000 and len({m.private_ip for m in listed}) == 1000
    assert all(m.state == MachineState.RUNNING for m in listed)


# ---------------------------------------------------------------------------------------------------
# Volumes, snapshots, images
# ---------------------------------------------------------------------------------------------------


def test_volume_rules(backend: SimulatorBackend) -> None:
    with raises(InvalidParameter, kind="volume", reason="missing"):
        backend.create_volume(VolumeSpec(size_gb=1))
    with raises(NotFound, kind="zone"):
        backend.create_volume(VolumeSpec(size_gb=1, zone="mars-1a"))
    with raises(InvalidParameter, kind="volume", reason="size"):
        backend.create_volume(VolumeSpec(size_gb=0, zone=ZONES[0]))
    with raises(InvalidParameter, kind="volume", reason="tier"):
        backend.create_volume(VolumeSpec(size_gb=1, zone=ZONES[0], tier="floppy"))  # type: ignore[arg-type]
    with raises(NotFound, kind="snapshot"):
        backend.create_volume(VolumeSpec(snapshot_id="snap-missing", zone=ZONES[0]))
    vm, other = launch(backend, count=2)
    far = volume(backend, zone=ZONES[1])
    with raises(InvalidParameter, kind="volume", reason="zone"):
        backend.attach_volume(far, vm.native_id, "/dev/sdf")
    near = volume(backend)
    with raises(InvalidParameter, kind="attachment", reason="device"):
        backend.attach_volume(near, vm.native_id, "sdf")
    backend.attach_volume(near, vm.native_id, "/dev/sdf")
    with raises(NotFound, kind="attachment"):
        backend.detach_volume(near, other.native_id)
    with raises(Conflict, kind="machine", reason="state"):
        backend.detach_volume(vm.volume_ids[0], vm.native_id)  # the root volume of a running machine
    assert backend.detach_volume(near, None).state == VolumeState.AVAILABLE


def test_picked_devices_follow_the_root_disk(backend: SimulatorBackend) -> None:
    vm = launch(backend, zone=ZONES[0])[0]
    first, second, third = volume(backend), volume(backend), volume(backend)
    backend.attach_volume(first, vm.native_id, "/dev/vdb")
    assert backend.attach_volume(second, vm.native_id).attachments[0].device == "/dev/vdc"
    backend.detach_volume(first, vm.native_id)
    assert backend.attach_volume(third, vm.native_id).attachments[0].device == "/dev/vdb"


def test_update_rules(backend: SimulatorBackend) -> None:
    vm = launch(backend, zone=ZONES[0])[0]
    vol = volume(backend, size=2)
    backend.attach_volume(vol, vm.native_id)
    assert backend.update_volume(vol, VolumeUpdate(size_gb=4)).size_gb == 4  # grown while attached
    with raises(InvalidParameter, kind="volume", reason="size"):
        backend.update_volume(vol, VolumeUpdate(size_gb=100_000))
    catalogue = backend.list_images()[0]
    with raises(Forbidden, kind="image"):
        backend.update_image(catalogue.native_id, ImageUpdate(description="mine now"))
    image = backend.create_image(ImageSpec(machine_id=vm.native_id, name="one"))
    with raises(Conflict, kind="image", reason="duplicate"):
        backend.update_image(image.native_id, ImageUpdate(name=catalogue.name))
    with raises(InvalidParameter, kind="security_group", reason="name"):
        backend.update_security_group(vm.security_group_ids[0], SecurityGroupUpdate(name="sg-looks-like-an-id"))


def test_snapshot_sizes(backend: SimulatorBackend) -> None:
    snap = backend.create_snapshot(volume(backend, size=5), "")
    assert snap.state == SnapshotState.PENDING and snap.progress == 0
    with raises(Conflict, kind="snapshot", reason="state"):
        backend.create_volume(VolumeSpec(snapshot_id=snap.native_id, zone=ZONES[0]))
    done = settle(lambda: by_id(backend.list_snapshots(), snap.native_id), lambda s: s.progress == 100)
    assert done.state == SnapshotState.COMPLETED
    with raises(InvalidParameter, kind="volume", reason="size"):
        backend.create_volume(VolumeSpec(snapshot_id=snap.native_id, size_gb=4, zone=ZONES[0]))
    assert backend.create_volume(VolumeSpec(snapshot_id=snap.native_id, size_gb=9, zone=ZONES[0])).size_gb == 9
    with raises(NotFound, kind="volume"):
        backend.create_snapshot("vol-missing", "")


def test_images(backend: SimulatorBackend) -> None:
    with raises(Forbidden, kind="image"):
        backend.delete_image(UBUNTU)
    with raises(NotFound, kind="image"):
        backend.delete_image("img-missing")
    vm = launch(backend)[0]
    image = backend.create_image(ImageSpec(machine_id=vm.native_id, name="mine"))
    assert image.state == ImageState.PENDING and image.source_machine_id == vm.native_id
    assert (image.os, image.min_disk_gb, image.owner, image.public) == ("ubuntu", 8, "t1", False)
    with raises(Conflict, kind="image", reason="state"):
        launch(backend, image_id=image.native_id)
    settle(lambda: by_id(backend.list_images(), image.native_id), lambda i: i.state == ImageState.AVAILABLE)
    child = launch(backend, image_id=image.native_id)[0]
    assert child.image_id == image.native_id
    backend.act_on_machine(child.native_id, MachineAction.TERMINATE)
    with raises(Conflict, kind="machine", reason="state"):
        backend.create_image(ImageSpec(machine_id=child.native_id, name="late"))


# ---------------------------------------------------------------------------------------------------
# Networks, addresses, security groups
# ---------------------------------------------------------------------------------------------------


def test_default_network_layout(backend: SimulatorBackend) -> None:
    (net,) = backend.list_networks()
    assert net.is_default and net.cidr == "10.0.0.0/16"
    subnets = sorted(backend.list_subnets(), key=lambda s: s.zone)
    assert [(s.zone, s.cidr, s.available_ips) for s in subnets] == [
        ("local-1a", "10.0.0.0/20", 4091),
        ("local-1b", "10.0.16.0/20", 4091),
    ]
    (group,) = backend.list_security_groups()
    assert group.name == "default" and group.network_id == net.native_id
    assert {r.key() for r in group.rules} == {
        ("ingress", "-1", None, None, None, group.native_id),
        ("egress", "-1", None, None, "0.0.0.0/0", None),
    }


def test_default_network_is_created_once_under_concurrency(redis_client: redis.Redis) -> None:
    run_threads(10, lambda i: make_backend(redis_client).list_networks())
    b = make_backend(redis_client)
    assert len(b.list_networks()) == 1 and len(b.list_subnets()) == 2 and len(b.list_security_groups()) == 1


def test_new_zone_gets_a_default_subnet(redis_client: redis.Redis) -> None:
    make_backend(redis_client).list_subnets()
    account = make_backend(redis_client).account
    grown = SimulatorBackend(
        AccountConfig(**{**{f: getattr(account, f) for f in account.__slots__}, "zones": (*ZONES, "local-1c")}),
        BackendServices(redis_client),
    )
    assert {s.zone: s.cidr for s in grown.list_subnets()}["local-1c"] == "10.0.32.0/20"


def test_network_rules(backend: SimulatorBackend) -> None:
    with raises(InvalidParameter, kind="network", reason="cidr"):
        backend.create_network(NetworkSpec(cidr="10.0.0.1/16"))
    with raises(InvalidParameter, kind="network", reason="cidr"):  # no room for a machine
        backend.create_network(NetworkSpec(cidr="10.0.0.0/30"))
    with raises(InvalidParameter, kind="network", reason="cidr"):  # IPv4 networks only
        backend.create_network(NetworkSpec(cidr="fd00::/64"))
    big = backend.create_network(NetworkSpec(cidr="10.0.0.0/8", name="big", description="a cloud takes any size"))
    assert (big.cidr, big.description) == ("10.0.0.0/8", "a cloud takes any size")
    with raises(InvalidParameter, kind="subnet", reason="cidr"):  # a subnet is inside its network
        backend.create_subnet(SubnetSpec(network_id=big.native_id, cidr="192.168.0.0/24"))
    backend.delete_network(big.native_id)
    net = backend.create_network(NetworkSpec(cidr="172.16.0.0/16"))
    assert any(g.name == "default" and g.network_id == net.native_id for g in backend.list_security_groups())
    group = backend.create_security_group(SecurityGroupSpec(name="x", description="", network_id=net.native_id))
    with raises(Conflict, kind="network", reason="dependency"):
        backend.delete_network(net.native_id)
    backend.delete_security_group(group.native_id)
    backend.delete_network(net.native_id)
    assert all(g.network_id != net.native_id for g in backend.list_security_groups())


def test_what_the_simulated_cloud_refuses(backend: SimulatorBackend) -> None:
    """Rules of the simulator's own (EC2's, which the contract leaves to each cloud)."""
    vm = launch(backend)[0]
    group = backend.create_security_group(SecurityGroupSpec(name="twice", description="one"))
    with raises(Conflict, kind="security_group", reason="duplicate"):
        backend.create_security_group(SecurityGroupSpec(name="twice", description="two"))
    image = backend.create_image(ImageSpec(machine_id=vm.native_id, name="named-once"))
    with raises(Conflict, kind="image", reason="duplicate"):
        backend.create_image(ImageSpec(machine_id=vm.native_id, name="named-once"))
    address = backend.associate_address(backend.allocate_address().native_id, vm.native_id)
    with raises(Conflict, kind="address", reason="in_use"):
        backend.release_address(address.native_id)
    net = backend.create_network(NetworkSpec(cidr="10.50.0.0/16"))
    sub = backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.50.1.0/24", zone=ZONES[0]))
    with raises(Conflict, kind="network", reason="dependency"):
        backend.delete_network(net.native_id)
    for undo in (
        lambda: backend.delete_subnet(sub.native_id),
        lambda: backend.delete_network(net.native_id),
        lambda: backend.disassociate_address(address.native_id),
        lambda: backend.release_address(address.native_id),
        lambda: backend.delete_image(image.native_id),
        lambda: backend.delete_security_group(group.native_id),
    ):
        undo()


def test_address_moves_between_machines(backend: SimulatorBackend) -> None:
    one, two = launch(backend, count=2)
    first, second = backend.allocate_address(), backend.allocate_address()
    assert (first.public_ip, second.public_ip) == ("198.51.100.1", "198.51.100.2")
    backend.associate_address(first.native_id, one.native_id)
    moved = backend.associate_address(first.native_id, two.native_id)
    assert moved.machine_id == two.native_id and moved.private_ip == two.private_ip
    machines = {m.native_id: m for m in backend.list_machines()}
    assert machines[one.native_id].public_ip is None and machines[two.native_id].public_ip == first.public_ip
    backend.associate_address(second.native_id, two.native_id)  # replaces the machine's address
    assert by_id(backend.list_addresses(), first.native_id).machine_id is None
    with raises(Conflict, kind="address", reason="state"):
        backend.disassociate_address(first.native_id)
    with raises(NotFound, kind="machine"):
        backend.associate_address(first.native_id, "vm-missing")


def test_interface_rules(backend: SimulatorBackend) -> None:
    vm = launch(backend, zone=ZONES[0])[0]
    (primary,) = vm.interfaces
    with raises(Conflict, kind="network_interface", reason="primary"):
        backend.detach_interface(vm.native_id, primary.native_id)
    elsewhere = next(s for s in backend.list_subnets() if s.zone == ZONES[1])
    with raises(InvalidParameter, kind="subnet", reason="zone"):
        backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=elsewhere.native_id))
    lab = backend.create_network(NetworkSpec(cidr="172.16.0.0/16"))
    with raises(InvalidParameter, kind="network", reason="zone"):  # no subnet of it in the machine's zone
        backend.attach_interface(vm.native_id, InterfaceSpec(network_id=lab.native_id))
    sub = backend.create_subnet(SubnetSpec(network_id=lab.native_id, cidr="172.16.1.0/28", zone=ZONES[0]))
    nic = backend.attach_interface(vm.native_id, InterfaceSpec(network_id=lab.native_id))
    assert (nic.subnet_id, nic.private_ip) == (sub.native_id, "172.16.1.4")
    assert by_id(backend.list_subnets(), sub.native_id).available_ips == 10
    with raises(Conflict, kind="subnet", reason="dependency"):
        backend.delete_subnet(sub.native_id)
    # Interfaces change on stopped machines too.
    backend.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: by_id(backend.list_machines(), vm.native_id), lambda m: m.state == MachineState.STOPPED)
    backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=sub.native_id))
    for _ in range(5):
        backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=sub.native_id))
    with raises(QuotaExceeded, kind="network_interface"):  # eight interfaces at most
        backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=sub.native_id))
    # Termination lets every interface and its address go.
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    assert by_id(backend.list_subnets(), sub.native_id).available_ips == 11
    backend.delete_subnet(sub.native_id)
    with raises(Conflict, kind="machine", reason="state"):
        backend.attach_interface(vm.native_id, InterfaceSpec(network_id=vm.network_id))


def test_a_machine_recorded_before_interfaces_shows_its_primary(
    backend: SimulatorBackend, redis_client: redis.Redis
) -> None:
    vm = launch(backend)[0]
    key = f"cg:sim:{{{backend.account.key}}}:machine"
    record = orjson.loads(redis_client.hget(key, vm.native_id))
    del record["interfaces"]
    redis_client.hset(key, vm.native_id, orjson.dumps(record))
    (old,) = by_id(backend.list_machines(), vm.native_id).interfaces
    assert (old.subnet_id, old.private_ip) == (vm.subnet_id, vm.private_ip)
    # its address stays taken: the next machine on that subnet gets another one
    assert launch(backend, zone=vm.zone)[0].private_ip != vm.private_ip


def test_a_network_down_takes_its_interfaces_down(backend: SimulatorBackend) -> None:
    vm = launch(backend)[0]
    backend.act_on_network(vm.network_id, NetworkAction.DOWN)
    assert [i.state for i in by_id(backend.list_machines(), vm.native_id).interfaces] == [InterfaceState.INACTIVE]
    # what is launched or attached there meanwhile is down too, until the network is up again
    other = launch(backend)[0]
    assert other.interfaces[0].state == InterfaceState.INACTIVE
    backend.act_on_network(vm.network_id, NetworkAction.UP)
    for m in (vm, other):
        assert [i.state for i in by_id(backend.list_machines(), m.native_id).interfaces] == [InterfaceState.ACTIVE]


def test_address_pool_exhaustion(backend: SimulatorBackend) -> None:
    for _ in range(254):
        backend.allocate_address()
    with raises(QuotaExceeded, kind="address"):
        backend.allocate_address()


def test_security_group_rule_validation(backend: SimulatorBackend) -> None:
    group = backend.create_security_group(SecurityGroupSpec(name="v", description=""))
    bad = [
        (Rule(direction="sideways", protocol="tcp", from_port=1, to_port=1, cidr="0.0.0.0/0"), "direction"),
        (Rule(direction="ingress", protocol="gre-ish", cidr="0.0.0.0/0"), "protocol"),
        (Rule(direction="ingress", protocol="tcp", from_port=90, to_port=80, cidr="0.0.0.0/0"), "port"),
        (Rule(direction="ingress", protocol="udp", cidr="0.0.0.0/0"), "port"),
        (Rule(direction="ingress", protocol="tcp", from_port=1, to_port=2, cidr="10.0.0.300/8"), "cidr"),
        (Rule(direction="ingress", protocol="tcp", from_port=1, to_port=2), "missing"),
    ]
    for rule, reason in bad:
        with raises(InvalidParameter, kind="rule", reason=reason):
            backend.authorize_rules(group.native_id, [rule])
    backend.authorize_rules(
        group.native_id,
        [Rule(direction="ingress", protocol="6", from_port=443, to_port=443, cidr="0.0.0.0/0")],
    )
    with raises(Conflict, kind="rule", reason="duplicate"):  # "6" and "tcp" are the same protocol
        backend.authorize_rules(
            group.native_id,
            [
                Rule(
                    direction="ingress",
                    protocol="tcp",
                    from_port=443,
                    to_port=443,
                    cidr="0.0.0.0/0",
                    description="again",
                )
            ],
        )
    icmp = Rule(direction="ingress", protocol="icmp", from_port=-1, to_port=-1, cidr="192.0.2.0/24")
    assert any(r.protocol == "icmp" for r in backend.authorize_rules(group.native_id, [icmp]).rules)
    with raises(NotFound, kind="security_group"):
        backend.authorize_rules(group.native_id, [Rule(direction="ingress", protocol="-1", group_id="sg-missing")])
    with raises(InvalidParameter, kind="security_group", reason="name"):
        backend.create_security_group(SecurityGroupSpec(name="sg-sneaky", description=""))


def test_security_group_deletion_rules(backend: SimulatorBackend) -> None:
    default = backend.list_security_groups()[0]
    with raises(Conflict, kind="security_group", reason="default"):
        backend.delete_security_group(default.native_id)
    used = backend.create_security_group(SecurityGroupSpec(name="used", description=""))
    referenced = backend.create_security_group(SecurityGroupSpec(name="referenced", description=""))
    backend.authorize_rules(
        used.native_id,
        [
            Rule(
                direction="ingress",
                protocol="tcp",
                from_port=5432,
                to_port=5432,
                group_id=referenced.native_id,
            )
        ],
    )
    vm = launch(backend, security_group_ids=(used.native_id,))[0]
    with raises(Conflict, kind="security_group", reason="in_use"):
        backend.delete_security_group(used.native_id)
    with raises(Conflict, kind="security_group", reason="in_use"):
        backend.delete_security_group(referenced.native_id)
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    with raises(Conflict, kind="security_group", reason="in_use"):  # until it is terminated, as on EC2
        backend.delete_security_group(used.native_id)
    settle(lambda: by_id(backend.list_machines(), vm.native_id), lambda m: m.state == MachineState.TERMINATED)
    backend.delete_security_group(used.native_id)
    backend.delete_security_group(referenced.native_id)


def test_machines_carry_the_key_of_their_launch(backend: SimulatorBackend) -> None:
    """What EC2's reservations are derived from: one key for the machines of one create."""
    pair = launch(backend, count=2, idempotency_key="launch-1")
    single = launch(backend, idempotency_key="launch-2")
    assert [m.launch_key for m in pair + single] == ["launch-1", "launch-1", "launch-2"]
    assert launch(backend)[0].launch_key == ""  # a create without a key


def test_a_padded_state_table_fails_the_contract() -> None:
    """A row for a state the cloud never takes (here a made-up one) is what the contract's check refuses."""

    class Padded(SimulatorBackend):
        STATE_MAP = {**SimulatorBackend.STATE_MAP, "hibernating": MachineState.SUSPENDED}

    TestSimulatorContract().test_state_map_is_real_and_total(SimulatorBackend.__new__(SimulatorBackend))
    with pytest.raises(AssertionError):
        TestSimulatorContract().test_state_map_is_real_and_total(Padded.__new__(Padded))
