"""The CloudStack backend against the CloudStack simulator (tests/peers/cloudstack), which the peer tests prove
faithful with two independent clients: the whole contract suite for the declared capabilities, the state
table, options, faults mapped in one table, and an account standing for a tenant as a CloudStack project."""

from __future__ import annotations

import base64
import importlib
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cs
import pytest
import redis
import requests
from backend_contract import BackendContract, by_id, raises, settle
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from gateway_process import GatewayProcess
from peers.cloudstack import CloudStackSimulator
from peers.cloudstack.server import TRANSITIONS

from backends.cloudstack import NATIVE_STATES, STATE_MAP, CloudStackBackend, catalog
from backends.cloudstack.faults import from_code
from backends.cloudstack.options import CHECKS
from backends.cloudstack.tags import IDEMPOTENCY_TAG, marks
from backends.cloudstack.volumes import (
    SNAPSHOT_STATES,
    VOLUME_STATES,
    device_id,
    device_name,
    disk_offering,
    get_volume,
    key_name,
)
from gateway.config import load as load_config
from translator.backend import AccountConfig, BackendServices
from translator.checkpoints import CURRENT_JOB
from translator.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    QuotaExceeded,
    TransientBackendError,
    Unsupported,
)
from translator.jobs import JobSettings, JobSpec, JobStore
from translator.model import (
    ActionMethod,
    ImageSpec,
    ImageUpdate,
    InterfaceSpec,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkSpec,
    Rule,
    SecurityGroup,
    SecurityGroupSpec,
    SnapshotState,
    SubnetSpec,
    VolumeSpec,
    VolumeState,
    VolumeTier,
    VolumeUpdate,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG: dict[str, Any] = {
    "accounts": [
        {"name": "alice", "apikey": "ak", "secretkey": "sk", "projects": ["tenant-a"]},
        {"name": "bob", "apikey": "bk", "secretkey": "bs", "limits": {"user_vm": 1}},
    ],
    "zones": [{"name": "zone1", "networktype": "Advanced", "securitygroupsenabled": True}],
    "templates": [{"name": "Ubuntu 22.04", "ostypename": "Ubuntu 22.04 LTS", "size_gb": 8, "zone": "zone1"}],
    "serviceofferings": [
        {"name": "Small Instance", "cpunumber": 1, "cpuspeed": 1000, "memory": 1024},
        {"name": "Medium Instance", "cpunumber": 2, "cpuspeed": 1000, "memory": 4096},
    ],
    "diskofferings": [
        {"name": "Small", "disksize": 5},
        {"name": "Custom", "disksize": 0, "iscustomized": True},
        {"name": "SSD 10 GB", "disksize": 10},
        {"name": "SSD Custom", "disksize": 0, "iscustomized": True},
        {"name": "IOPS Custom", "disksize": 0, "iscustomized": True},
    ],
}


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudStackSimulator]:
    server = CloudStackSimulator(tmp_path_factory.mktemp("cloudstack"), CONFIG)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def services(redis_server: Any) -> Iterator[redis.Redis]:
    client = redis_server.client()
    yield client
    client.close()


def make_backend(
    sim: CloudStackSimulator, client: redis.Redis, account: str = "alice", **extra: Any
) -> CloudStackBackend:
    key, secret = sim.keys(account)
    opts = {"url": sim.endpoint, "api_key": key, "secret_key": secret, "poll_interval": 0.05, **extra}
    assert CloudStackBackend.validate_options(opts) == []
    config = AccountConfig(
        key=f"{account}-{uuid.uuid4().hex[:6]}/cs-1",
        tenant=account,
        region="cs-1",
        backend="cs",
        driver="cloudstack",
        zones=("zone1",),
        options=opts,
    )
    return CloudStackBackend(config, BackendServices(client))


@pytest.fixture
def backend(sim: CloudStackSimulator, services: redis.Redis) -> Iterator[CloudStackBackend]:
    """A tenant's account as alice's CloudStack project, destroying with expunge (so retention is exercised), its
    networks made persistent (so a subnet can narrow a network at once)."""
    b = make_backend(sim, services, project="tenant-a", expunge=True, network_offering="IsolatedPersistent")
    yield b
    b.close()


class TestCloudStackContract(BackendContract):
    """Every contract test of the declared capabilities, against the simulator."""


# -- declaration, states, options, faults -----------------------------------------------------------------


def test_entry_point_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["cloudgate.backends"]["cloudstack"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is CloudStackBackend


def test_state_table_covers_what_the_simulator_reports() -> None:
    """Every state the simulator moves a VM through has its row, and each row is a canonical state."""
    reported = {"Starting", "Running", "Stopped", "Error", "Destroyed", "Expunging"}
    reported |= {s for t in TRANSITIONS.values() for s in (*t.allowed, t.during, t.after) if s}
    assert reported <= NATIVE_STATES == set(STATE_MAP)
    assert STATE_MAP["Error"] is MachineState.ERROR  # not libcloud's terminated
    assert STATE_MAP["Stopping"] is MachineState.STOPPING and STATE_MAP["Starting"] is MachineState.PENDING


def test_example_config_loads() -> None:
    config = load_config(REPO / "conf" / "examples" / "cloudstack.toml")
    account = next(a for a in config.accounts.values() if a.driver == "cloudstack")
    assert CloudStackBackend.validate_options(account.options) == []
    assert set(account.options) == set(CHECKS), "the example documents every option"


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"api_key": "k", "secret_key": "s"}, "url"),
        ({"url": "ftp://x", "api_key": "k", "secret_key": "s"}, "url"),
        ({"url": "http://x/client/api", "secret_key": "s"}, "api_key"),
        ({"url": "http://x/client/api", "api_key": "k", "secret_key": "s", "expunge": "yes"}, "expunge"),
        ({"url": "http://x/client/api", "api_key": "k", "secret_key": "s", "poll_interval": 0}, "poll_interval"),
        ({"url": "http://x/client/api", "api_key": "k", "secret_key": "s", "zone_map": {}}, "zone_map"),
    ],
)
def test_option_mistakes_name_the_key(options: dict[str, Any], key: str) -> None:
    problems = CloudStackBackend.validate_options(options)
    assert problems and problems[0].startswith(f"{key}:")
    assert all(p.split(": ", 1)[1] != "s" for p in problems), "secrets are never echoed"


@pytest.mark.parametrize(
    ("code", "text", "kind", "cls"),
    [
        (
            431,
            "Invalid parameter id value=x due to incorrect long value format, or entity does not exist",
            "machine",
            NotFound,
        ),
        (431, "Unable to execute API command due to missing parameter zoneid", "machine", InvalidParameter),
        (401, "unable to verify user credentials", None, BackendUnavailable),
        (530, "Internal error", "machine", OutcomeUnknown),
        (534, "Maximum number of resources of type 'user_vm' exceeded", "machine", QuotaExceeded),
        (535, "resource unavailable", "machine", TransientBackendError),
        (536, "in use", "volume", Conflict),
    ],
)
def test_error_codes_map_in_one_table(code: int, text: str, kind: str | None, cls: type) -> None:
    error = from_code(code, text, kind)
    assert type(error) is cls and error.kind == kind


def test_bad_keys_and_quota_are_canonical(sim: CloudStackSimulator, services: redis.Redis) -> None:
    with raises(BackendUnavailable, reason="credentials"):
        make_backend(sim, services, secret_key="wrong").list_machines()
    bob = make_backend(sim, services, "bob")
    image, flavor = bob.list_images()[0].native_id, bob.list_flavors()[0].native_id
    bob.create_machines(MachineSpec(image_id=image, flavor_id=flavor))
    with raises(QuotaExceeded, kind="machine"):
        bob.create_machines(MachineSpec(image_id=image, flavor_id=flavor))


def test_projects_are_separate_accounts(sim: CloudStackSimulator, services: redis.Redis) -> None:
    """A tenant's project and the account's own VMs do not see each other; a missing project is NotFound."""
    project = make_backend(sim, services, project="tenant-a")
    own = make_backend(sim, services)
    image, flavor = own.list_images()[0].native_id, own.list_flavors()[0].native_id
    (vm,) = own.create_machines(MachineSpec(image_id=image, flavor_id=flavor, name="own"))
    assert by_id(own.list_machines(), vm.native_id) is not None
    assert by_id(project.list_machines(), vm.native_id) is None
    assert project.get_machines([vm.native_id]) == []
    with raises(NotFound, kind="project"):
        make_backend(sim, services, project="nobody").list_machines()
    own.act_on_machine(vm.native_id, MachineAction.TERMINATE)


def test_simulator_down_is_transient(sim: CloudStackSimulator, services: redis.Redis) -> None:
    from netutil import free_port

    b = make_backend(sim, services, url=f"http://127.0.0.1:{free_port()}/client/api", timeout=2)
    with raises(TransientBackendError, reason="unreachable"):
        b.list_machines()


# -- volumes, snapshots, key pairs, addresses: what the contract does not pin down --------------------------------


def test_volume_and_snapshot_tables_cover_the_simulator() -> None:
    """Every volume and snapshot state the simulator reports has its row (unknown ones would read as errors)."""
    assert {"Allocated", "Ready"} <= set(VOLUME_STATES)
    assert {"Creating", "BackedUp"} <= set(SNAPSHOT_STATES)
    assert SNAPSHOT_STATES["BackedUp"] is SnapshotState.COMPLETED
    assert VOLUME_STATES["Allocated"] is VolumeState.AVAILABLE  # a data disk not yet on primary storage


@pytest.mark.parametrize(("device", "number"), [("/dev/vda", 0), ("/dev/vdb", 1), ("/dev/sdc", 2), ("xvdd", 3)])
def test_device_names_and_ids_round_trip(device: str, number: int) -> None:
    assert device_id(device) == number and device_name(number) == "/dev/vd" + device[-1]
    with raises(InvalidParameter, reason="device"):
        device_id("/dev/vd1")


def test_volume_sizes_pick_fixed_or_custom_offerings(backend: CloudStackBackend) -> None:
    """5 GB takes the fixed 5 GB offering, 7 GB the customised one; both report their size."""
    fixed = backend.create_volume(VolumeSpec(size_gb=5, zone="zone1", name="fixed"))
    custom = backend.create_volume(VolumeSpec(size_gb=7, zone="zone1", name="custom"))
    assert (fixed.size_gb, custom.size_gb) == (5, 7)
    backend.update_volume(fixed.native_id, VolumeUpdate(size_gb=6))  # through a customised offering
    grown = settle(lambda: by_id(backend.list_volumes(), fixed.native_id), lambda v: v.size_gb == 6)
    assert grown.state is VolumeState.AVAILABLE
    with raises(NotFound, kind="snapshot"):
        backend.create_volume(VolumeSpec(snapshot_id="snap-missing", zone="zone1"))
    with raises(NotFound, kind="volume"):
        backend.create_snapshot("vol-missing", "x")
    for vol in (fixed, custom):
        backend.delete_volume(vol.native_id)


def test_key_types_and_address_moves(backend: CloudStackBackend) -> None:
    """An imported key keeps its type in listings; CloudStack makes RSA keys only; an address moves between VMs."""
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    key = backend.import_key_pair("typed", public)
    assert by_id(backend.list_key_pairs(), "typed").key_type == "ed25519"
    with raises(Unsupported, reason="key_type"):
        backend.create_key_pair("other", "ed25519")
    backend.delete_key_pair(key.native_id)

    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    first, second = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor, count=2))
    address = backend.allocate_address()
    assert backend.associate_address(address.native_id, first.native_id).machine_id == first.native_id
    assert backend.associate_address(address.native_id, second.native_id).machine_id == second.native_id
    assert by_id(backend.list_machines(), first.native_id).public_ip is None
    backend.release_address(address.native_id)
    for vm in (first, second):
        backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


def test_group_rules_round_trip_and_groups_in_use(backend: CloudStackBackend) -> None:
    """A rule naming another group, an ICMP one and an all-protocol one read back as sent; the default group and
    a group a VM uses stay."""
    web = backend.create_security_group(SecurityGroupSpec(name="rt-web", description="web"))
    admin = backend.create_security_group(SecurityGroupSpec(name="rt-admin", description="admin"))
    rules = [
        Rule(direction="ingress", protocol="tcp", from_port=22, to_port=22, group_id=admin.native_id),
        Rule(direction="ingress", protocol="icmp", from_port=8, to_port=0, cidr="0.0.0.0/0"),
        Rule(direction="egress", protocol="-1", cidr="10.0.0.0/8"),
    ]
    group = backend.authorize_rules(web.native_id, rules)
    assert sorted(r.key() for r in group.rules) == sorted(r.key() for r in rules)
    with raises(Conflict, kind="security_group", reason="duplicate"):
        backend.create_security_group(SecurityGroupSpec(name="rt-web", description="again"))
    default = next(g for g in backend.list_security_groups() if g.name == "default")
    with raises(Conflict, kind="security_group", reason="default"):
        backend.delete_security_group(default.native_id)
    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor, security_group_ids=[admin.native_id]))
    assert vm.security_group_ids == [admin.native_id]
    with raises(Conflict, kind="security_group", reason="in_use"):
        backend.delete_security_group(admin.native_id)
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    backend.delete_security_group(web.native_id)


# -- networks, interfaces, images: how CloudStack's shapes map -------------------------------------------------


def test_a_network_is_its_one_subnet(sim: CloudStackSimulator, services: redis.Redis) -> None:
    """A network of a non-persistent offering takes a narrower subnet only once a machine implemented it; the
    machine sits on the subnet it was given; a network with machines stays; ``default_network`` names the default."""
    b = make_backend(sim, services, project="tenant-a", expunge=True)  # CloudStack's default offering
    net = b.create_network(NetworkSpec(cidr="10.70.0.0/16", name="plain"))
    [whole] = b.get_subnets([net.native_id])
    assert (whole.network_id, whole.cidr, whole.zone, whole.is_default) == (
        net.native_id,
        "10.70.0.0/16",
        "zone1",
        False,
    )
    spec = SubnetSpec(network_id=net.native_id, cidr="10.70.1.0/24")
    with raises(Conflict, kind="subnet", reason="state"):
        b.create_subnet(spec)
    image, flavor = b.list_images()[0].native_id, b.list_flavors()[0].native_id
    (vm,) = b.create_machines(MachineSpec(image_id=image, flavor_id=flavor, subnet_id=net.native_id))
    assert (vm.network_id, vm.subnet_id, vm.interfaces[0].subnet_id) == (net.native_id,) * 3
    assert vm.private_ip.startswith("10.70.0.")
    with raises(Conflict, kind="subnet", reason="in_use"):
        b.create_subnet(spec)  # the machine's address is outside it
    with raises(Conflict, kind="network", reason="in_use"):
        b.delete_network(net.native_id)
    with raises(NotFound, kind="subnet"):
        b.create_machines(MachineSpec(image_id=image, flavor_id=flavor, subnet_id="subnet-missing"))
    chosen = make_backend(sim, services, project="tenant-a", default_network="plain")
    assert [n.native_id for n in chosen.list_networks() if n.is_default] == [net.native_id]
    (other,) = chosen.create_machines(MachineSpec(image_id=image, flavor_id=flavor))
    assert other.network_id == net.native_id
    for made in (vm, other):
        b.act_on_machine(made.native_id, MachineAction.TERMINATE)

    def freed() -> bool:
        """The subnet deleted once its machines are expunged (the whole range: nothing to undo)."""
        try:
            b.delete_subnet(whole.native_id)
        except Conflict as exc:
            assert exc.reason == "in_use"
            return False
        return True

    settle(freed, bool)
    b.delete_network(net.native_id)
    assert b.get_networks([net.native_id]) == []


def test_interfaces_and_captured_images_keep_their_owners(backend: CloudStackBackend) -> None:
    """The primary interface stays; a captured image is the account's own (a public one is not) and its snapshot
    is gone once the template is made."""
    image, flavor = backend.list_images()[0], backend.list_flavors()[0].native_id
    (vm,) = backend.create_machines(MachineSpec(image_id=image.native_id, flavor_id=flavor))
    with raises(Conflict, kind="network_interface", reason="primary"):
        backend.detach_interface(vm.native_id, vm.interfaces[0].native_id)
    with raises(NotFound, kind="network"):
        backend.attach_interface(vm.native_id, InterfaceSpec(network_id="net-missing"))
    snapshots = {s.native_id for s in backend.list_snapshots()}
    made = backend.create_image(ImageSpec(machine_id=vm.native_id, name="captured"))
    assert made.owner and not made.public and made.os == image.os
    settle(backend.list_snapshots, lambda now: {s.native_id for s in now} <= snapshots)
    for call in (
        lambda: backend.delete_image(image.native_id),
        lambda: backend.update_image(image.native_id, ImageUpdate(name="mine")),
    ):
        with raises(Forbidden, kind="image"):
            call()
    backend.delete_image(made.native_id)
    with raises(NotFound, kind="image"):
        backend.delete_image(made.native_id)
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


# -- native tags ------------------------------------------------------------------------------------------------


def test_native_tags_on_every_kind_and_the_gateways_own(backend: CloudStackBackend) -> None:
    """Snapshots, addresses and groups keep their tags in CloudStack too; an empty value survives CloudStack's refusal
    of one; the create's idempotency mark is neither shown nor settable; key pairs keep theirs in Redis."""
    assert "key_pair" not in CloudStackBackend.NATIVE_TAG_KINDS
    spec = VolumeSpec(size_gb=5, zone="zone1", idempotency_key="tags-test")
    vol = backend.create_volume(spec)
    assert vol.tags == {}
    with raises(InvalidParameter, reason="tag"):
        backend.set_tags("volume", vol.native_id, {IDEMPOTENCY_TAG: "another"})
    backend.remove_tags("volume", vol.native_id, [IDEMPOTENCY_TAG])  # not the user's: ignored
    backend.set_tags("volume", vol.native_id, {"blank": ""})
    assert by_id(backend.list_volumes(), vol.native_id).tags == {"blank": ""}
    assert backend.create_volume(spec).native_id == vol.native_id  # the mark still finds the first create
    snap = backend.create_snapshot(vol.native_id, "tagged")
    address = backend.allocate_address()
    group = backend.create_security_group(SecurityGroupSpec(name="tagged", description="tags"))
    listings = {
        "snapshot": (snap.native_id, backend.list_snapshots),
        "address": (address.native_id, backend.list_addresses),
        "security_group": (group.native_id, backend.list_security_groups),
    }
    for kind, (native_id, listing) in listings.items():
        backend.set_tags(kind, native_id, {"Env": "a"})
        backend.set_tags(kind, native_id, {"Env": "b", "x": "y"})
        backend.remove_tags(kind, native_id, ["x", "absent"])
        assert by_id(listing(), native_id).tags == {"Env": "b"}, kind
    with raises(NotFound, kind="volume"):
        backend.set_tags("volume", "missing-0000", {"k": "v"})
    with raises(Forbidden):  # the administrator's public template is not the account's to tag
        backend.set_tags("image", backend.list_images()[0].native_id, {"k": "v"})
    settle(lambda: by_id(backend.list_snapshots(), snap.native_id), lambda s: s.state is SnapshotState.COMPLETED)
    backend.delete_snapshot(snap.native_id)
    backend.release_address(address.native_id)
    backend.delete_security_group(group.native_id)
    backend.delete_volume(vol.native_id)


def test_a_twin_volume_from_a_stalled_call_is_never_the_volume(backend: CloudStackBackend) -> None:
    """CloudStack has no idempotent create and no unique names: a createVolume stalled past the timeout may reach it
    after the retry with the same key looked. Twins landing before the create settles: one (the earliest) is
    marked, named as the user asked, the others deleted; a twin landing after it settled is unmarked under the
    key's name, never listed, and deleted."""
    params = {"zoneid": catalog.zone_id(backend, "zone1"), "diskofferingid": disk_offering(backend, 5)["id"]}

    def stalled_call(key: str) -> str:
        """What a create call of an earlier attempt does when it finally reaches CloudStack."""
        answer = backend.cloud.call("createVolume", {**params, "name": key_name(key)}, kind="volume", what="twin")
        return str(answer["id"])

    def gone(native_id: str) -> bool:
        return get_volume(backend, native_id) is None

    early = uuid.uuid4().hex
    spec = VolumeSpec(size_gb=5, zone="zone1", name="data", idempotency_key=early)
    landed = [stalled_call(early), stalled_call(early)]  # both attempts' calls, before the client's retry
    kept = backend.create_volume(spec)
    assert kept.native_id in landed and kept.name == "data"
    (twin,) = set(landed) - {kept.native_id}
    assert gone(twin)
    raw = get_volume(backend, kept.native_id)
    assert raw is not None and marks(raw) == {IDEMPOTENCY_TAG: early} and raw["name"] == "data"
    assert backend.create_volume(spec).native_id == kept.native_id

    late = uuid.uuid4().hex
    spec = VolumeSpec(size_gb=5, zone="zone1", name="data", idempotency_key=late)
    made = backend.create_volume(spec)
    assert made.name == "data"
    twin = stalled_call(late)  # landed after the create settled
    listed = {v.native_id: v.name for v in backend.list_volumes()}
    assert twin not in listed and listed[made.native_id] == "data" and listed[kept.native_id] == "data"
    assert gone(twin)  # the listing deleted it
    unnamed = backend.create_volume(VolumeSpec(size_gb=5, zone="zone1", idempotency_key=late + "-unnamed"))
    twin = stalled_call(late + "-unnamed")
    assert backend.create_volume(spec).native_id == made.native_id
    again = backend.create_volume(VolumeSpec(size_gb=5, zone="zone1", idempotency_key=late + "-unnamed"))
    assert again.native_id == unnamed.native_id and gone(twin)  # the retry deleted it
    for vol in (kept, made, unnamed):
        backend.delete_volume(vol.native_id)


# -- a core job taken over by another worker follows CloudStack's job -------------------------------------------


def sent(sim: CloudStackSimulator, command: str) -> int:
    """How many calls of ``command`` the simulator ran (its own count)."""
    return int(requests.get(f"{sim.url}/_simulator/calls", timeout=5).json().get(command.lower(), 0))


class TakenOver:
    """A core job whose first runner gives up while polling CloudStack's job (as one that dies would), and the
    backend of the runner that takes it over; CloudStack's jobs take a second meanwhile."""

    def __init__(self, sim: CloudStackSimulator, services: redis.Redis, operation: str, kind: str) -> None:
        self.sim, self.services = sim, services
        self.job = JobStore(services, JobSettings()).submit("alice", JobSpec(operation, kind))
        self.dying = make_backend(sim, services, project="tenant-a", job_timeout=0.2)
        self.heir = make_backend(sim, services, project="tenant-a")

    def __enter__(self) -> TakenOver:
        self.sim.set_timings(job=1.0)
        self.token = CURRENT_JOB.set(self.job)  # as the job runner does while a handler runs
        return self

    def __exit__(self, *exc: object) -> None:
        CURRENT_JOB.reset(self.token)
        self.sim.set_timings(job=0.1)

    def noted(self, name: str) -> bool:
        return any(f.startswith(f"cp:{name}:".encode()) for f in self.services.hkeys(f"cg:job:{{alice}}:{self.job.id}"))


def test_a_job_taken_over_follows_the_cloudstack_job_instead_of_sending_again(
    sim: CloudStackSimulator, services: redis.Redis, backend: CloudStackBackend
) -> None:
    """A runner that gives up while polling attachVolume (as one that dies would) leaves the CloudStack job id on
    the core job's record; the runner that takes the job over polls that job and sends no second attachVolume."""
    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor))
    vol = backend.create_volume(VolumeSpec(size_gb=5, zone="zone1", name="taken-over"))
    settle(lambda: backend.get_machines([vm.native_id])[0], lambda m: m.state is MachineState.RUNNING)
    with TakenOver(sim, services, "attach_volume", "volume") as job:
        before = sent(sim, "attachVolume")
        with raises(OutcomeUnknown):
            job.dying.attach_volume(vol.native_id, vm.native_id)
        count = sent(sim, "attachVolume")
        assert count == before + 1
        attached = job.heir.attach_volume(vol.native_id, vm.native_id)
        assert [a.machine_id for a in attached.attachments] == [vm.native_id]
        assert sent(sim, "attachVolume") == count, "the command was sent again"
        assert job.noted("attachVolume")
    backend.detach_volume(vol.native_id, vm.native_id)  # outside a job: sent, and nothing noted
    assert sent(sim, "detachVolume") >= 1 and not job.noted("detachVolume")
    backend.delete_volume(vol.native_id)
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


def test_a_nic_add_taken_over_follows_the_cloudstack_job_and_reports_that_nic(
    sim: CloudStackSimulator, services: redis.Redis, backend: CloudStackBackend
) -> None:
    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor))
    vm = settle(lambda: backend.get_machines([vm.native_id])[0], lambda m: m.state is MachineState.RUNNING)
    with TakenOver(sim, services, "attach_interface", "machine") as job:
        before = sent(sim, "addNicToVirtualMachine")
        with raises(OutcomeUnknown):
            job.dying.attach_interface(vm.native_id, InterfaceSpec(network_id=vm.network_id))
        assert sent(sim, "addNicToVirtualMachine") == before + 1
        made = job.heir.attach_interface(vm.native_id, InterfaceSpec(network_id=vm.network_id))
        assert sent(sim, "addNicToVirtualMachine") == before + 1, "the command was sent again"
        assert job.noted("addNicToVirtualMachine") and job.noted("nicsBefore")
    ids = [i.native_id for i in backend.get_machines([vm.native_id])[0].interfaces]
    assert len(ids) == 2 and made.native_id == ids[1] and made.network_id == vm.network_id
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


#: the commands a rule change sends, ingress and egress
RULE_COMMANDS = {
    "authorize_rules": ("authorizeSecurityGroupIngress", "authorizeSecurityGroupEgress"),
    "revoke_rules": ("revokeSecurityGroupIngress", "revokeSecurityGroupEgress"),
}


def test_rule_changes_taken_over_follow_the_cloudstack_jobs_instead_of_failing_as_duplicates(
    sim: CloudStackSimulator, services: redis.Redis, backend: CloudStackBackend
) -> None:
    """Without the noted jobs, the heir would find the rule there already (a Conflict) or gone (a NotFound)."""
    group = backend.create_security_group(SecurityGroupSpec(name=f"taken-{uuid.uuid4().hex[:6]}", description=""))
    ssh = Rule(direction="ingress", protocol="tcp", from_port=22, to_port=22, cidr="203.0.113.0/24")
    web = Rule(direction="egress", protocol="tcp", from_port=443, to_port=443, cidr="0.0.0.0/0")
    done: dict[str, SecurityGroup] = {}
    for method, direction_commands in RULE_COMMANDS.items():
        with TakenOver(sim, services, method, "security_group") as job:
            before = [sent(sim, command) for command in direction_commands]
            with raises(OutcomeUnknown):
                getattr(job.dying, method)(group.native_id, [ssh, web])
            done[method] = getattr(job.heir, method)(group.native_id, [ssh, web])
            assert [sent(sim, command) for command in direction_commands] == [n + 1 for n in before], "sent twice"
        if method == "authorize_rules":
            with raises(Conflict, kind="rule"):  # outside that job, a duplicate is one
                backend.authorize_rules(group.native_id, [ssh])
    assert {ssh.key(), web.key()} <= {r.key() for r in done["authorize_rules"].rules}
    assert not {ssh.key(), web.key()} & {r.key() for r in done["revoke_rules"].rules}
    backend.delete_security_group(group.native_id)


def test_a_hard_reboot_reads_as_rebooting_until_running_again(backend: CloudStackBackend) -> None:
    """CloudStack's forced reboot stops and starts the VM; the machine never reads as stopping, stopped or pending."""
    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor))
    settle(lambda: backend.get_machines([vm.native_id])[0], lambda m: m.state is MachineState.RUNNING)
    seen = [backend.act_on_machine(vm.native_id, MachineAction.REBOOT, ActionMethod.HARD).state]

    def read() -> MachineState:
        seen.append(backend.get_machines([vm.native_id])[0].state)
        return seen[-1]

    settle(read, lambda state: state is MachineState.RUNNING)
    assert MachineState.REBOOTING in seen and set(seen) <= {MachineState.REBOOTING, MachineState.RUNNING}
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


def test_a_stopped_machine_is_renamed_and_gets_new_user_data(backend: CloudStackBackend) -> None:
    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    (vm,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor, name="before"))
    settle(lambda: backend.get_machines([vm.native_id])[0], lambda m: m.state is MachineState.RUNNING)
    with raises(Conflict, kind="machine", reason="state"):
        backend.update_machine(vm.native_id, MachineUpdate(name="while-running"))
    backend.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: backend.get_machines([vm.native_id])[0], lambda m: m.state is MachineState.STOPPED)
    data = base64.b64encode(b"#!/bin/sh\necho updated\n").decode()
    updated = backend.update_machine(vm.native_id, MachineUpdate(name="after", user_data=data))
    assert (updated.name, backend.machine_user_data(vm.native_id)) == ("after", data)
    assert backend.update_machine(vm.native_id, MachineUpdate(flavor_id=flavor)).flavor_id == flavor  # as it was
    with raises(NotFound, kind="flavor"):
        backend.update_machine(vm.native_id, MachineUpdate(flavor_id="missing-0000"))
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


# -- storage tiers --------------------------------------------------------------------------------------------------

TIERED = {"ssd": ["SSD 10 GB", "SSD Custom"], "io": ["IOPS Custom"]}


def test_volume_tiers_are_disk_offerings(sim: CloudStackSimulator, services: redis.Redis) -> None:
    """A tier's volumes come from its offerings (a fixed size, else its customised one) and read back as that tier;
    a tier not listed takes the offerings no tier names; a resize keeps the tier; a missing offering fails check."""
    b = make_backend(sim, services, project="tenant-a", disk_offerings=TIERED)
    made = {
        (tier, size): b.create_volume(VolumeSpec(size_gb=size, zone="zone1", tier=VolumeTier(tier)))
        for tier, size in [("ssd", 10), ("ssd", 3), ("io", 4), ("standard", 5), ("hdd", 6)]
    }
    raw = {
        v["id"]: v.get("diskofferingname") for v in b.cloud.listing("listVolumes", "volume", kind="volume", what="t")
    }
    assert {key: raw[v.native_id] for key, v in made.items()} == {
        ("ssd", 10): "SSD 10 GB",
        ("ssd", 3): "SSD Custom",
        ("io", 4): "IOPS Custom",
        ("standard", 5): "Small",
        ("hdd", 6): "Custom",
    }
    listed = {v.native_id: v.tier for v in b.list_volumes()}
    assert {key: listed[v.native_id] for key, v in made.items()} == {
        key: VolumeTier(key[0]) if key[0] in TIERED else VolumeTier.STANDARD for key in made
    }
    fixed = made[("ssd", 10)].native_id
    b.update_volume(fixed, VolumeUpdate(size_gb=12))  # off its fixed offering, onto its tier's customised one
    grown = settle(lambda: by_id(b.list_volumes(), fixed), lambda v: v.size_gb == 12)
    assert grown.tier is VolumeTier.SSD
    for vol in made.values():
        b.delete_volume(vol.native_id)
    with raises(InvalidParameter, reason="disk_offering"):
        make_backend(sim, services, disk_offerings={"ssd": ["Nowhere"]}).check()


def test_disk_offering_option_mistakes_name_the_tier() -> None:
    base = {"url": "http://x/client/api", "api_key": "k", "secret_key": "s"}
    for wrong, where in [
        ({"fast": ["x"]}, "disk_offerings.fast"),
        ({"ssd": "SSD"}, "disk_offerings.ssd"),
        ({"ssd": ["A"], "io": ["A"]}, "disk_offerings.io"),
    ]:
        problems = CloudStackBackend.validate_options({**base, "disk_offerings": wrong})
        assert problems and problems[0].startswith(where), problems


# -- through the gateway ------------------------------------------------------------------------------------------

GATEWAY = """
[translator]
cache_ttl = 1.0
transitional_cache_ttl = 0.2

[backends.cs]
driver = "cloudstack"
url = "{url}"
timeout = 5
poll_interval = 0.05
expunge = true
disk_offerings = {{ ssd = ["SSD 10 GB", "SSD Custom"] }}

[tenants.acme]
account_id = "555555555555"
default_image = "Ubuntu 22.04"
[tenants.acme.regions.cs-1]
backend = "cs"
zones = ["zone1"]
api_key = "ak"
secret_key = "sk"

[[users]]
access_key = "acme"
secret = "acme-secret"
tenant = "acme"
role = "admin"
"""


def test_ec2_tags_live_in_cloudstack_and_volume_types_are_offerings(sim: CloudStackSimulator, tmp_path: Path) -> None:
    """EC2 tags on an instance (launched with, created, deleted) are CloudStack's own tags, the launch's
    idempotency mark never among them; a key pair's stay in the gateway; gp3 is the ssd tier's offering."""
    config = tmp_path / "gw.toml"
    config.write_text(GATEWAY.format(url=sim.endpoint))
    gw = GatewayProcess(config, data_dir=tmp_path / "data", workers=1)
    api = cs.CloudStack(endpoint=sim.endpoint, key="ak", secret="sk")
    try:
        ec2 = gw.client("acme", "acme-secret", "cs-1")
        image = next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"] == "Ubuntu 22.04")
        launch = {"ResourceType": "instance", "Tags": [{"Key": "env", "Value": "test"}]}
        ran = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, TagSpecifications=[launch])
        instance = ran["Instances"][0]["InstanceId"]
        [vm] = api.listVirtualMachines(tags=[{"key": "env", "value": "test"}])["virtualmachine"]  # launched tagged
        ec2.create_tags(Resources=[instance], Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": ""}])
        ec2.delete_tags(Resources=[instance], Tags=[{"Key": "team"}])
        native = {t["key"]: t["value"] for t in api.listTags(resourceid=vm["id"])["tag"]}
        assert native.pop(IDEMPOTENCY_TAG) and native == {"env": "prod"}
        described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
        assert described["Tags"] == [{"Key": "env", "Value": "prod"}]
        ec2.create_key_pair(
            KeyName="gw-key", TagSpecifications=[{"ResourceType": "key-pair", "Tags": [launch["Tags"][0]]}]
        )
        assert ec2.describe_key_pairs(KeyNames=["gw-key"])["KeyPairs"][0]["Tags"] == [{"Key": "env", "Value": "test"}]
        volume = ec2.create_volume(Size=3, AvailabilityZone="zone1", VolumeType="gp3")
        assert volume["VolumeType"] in ("gp2", "gp3")  # the ssd tier, as EC2 names it
        [made] = [v for v in api.listVolumes(type="DATADISK")["volume"] if v["size"] == 3 << 30]
        assert made["diskofferingname"] == "SSD Custom"
        ec2.delete_volume(VolumeId=volume["VolumeId"])
        ec2.delete_key_pair(KeyName="gw-key")
        ec2.terminate_instances(InstanceIds=[instance])
    finally:
        gw.stop()
