"""The OpenNebula backend against the OpenNebula simulator (``peers.opennebula``, oned's XML-RPC on loopback),
driven through pyone as it drives a real oned: the shared contract, the state table, options, faults, and what
OpenNebula itself keeps for the gateway (flavor templates, the idempotency key on the VM).
"""

from __future__ import annotations

import threading
import uuid
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyone
import pytest
import redis
import requests
from backend_contract import BackendContract, raises, settle
from peers.opennebula import OpenNebulaSimulator, Timings
from peers.opennebula import model as sim_model

from backends.opennebula import NATIVE_STATES, STATE_MAP, OpenNebulaBackend
from backends.opennebula.faults import translate
from backends.opennebula.machines import INDEX_ATTRIBUTE, KEY_ATTRIBUTE, ZONE_ATTRIBUTE, machine_state, native_state
from backends.opennebula.options import CHECKS
from backends.opennebula.tags import attribute as tag_attribute
from backends.opennebula.volumes import NAME_ATTRIBUTE as VOLUME_NAME_ATTRIBUTE
from backends.opennebula.volumes import VOLUME_PREFIX
from gateway.config import load as load_config
from translator.backend import AccountConfig, BackendServices, Capability
from translator.errors import (
    BackendUnavailable,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    TransientBackendError,
    Unsupported,
)
from translator.model import (
    ActionMethod,
    ImageSpec,
    ImageState,
    ImageUpdate,
    InterfaceSpec,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkSpec,
    NetworkUpdate,
    Rule,
    SecurityGroupSpec,
    SubnetSpec,
    VolumeSpec,
    VolumeState,
    VolumeUpdate,
)

REPO = Path(__file__).resolve().parents[2]
ZONES = ("one-a", "one-b")


@pytest.fixture(scope="module")
def sim() -> Iterator[OpenNebulaSimulator]:
    """One oned per module: two users, a shared network, two OS images, a data block, three flavor templates
    and one plain template (not a flavor)."""
    simulator = OpenNebulaSimulator(admin_password="one-admin", timings=Timings())
    simulator.add_user("alice", "alice-pw")
    simulator.add_user("bob", "bob-pw")
    simulator.add_vnet("private", "10.0.0.10", 200)
    public = simulator.add_vnet("public", "198.51.100.2", 8)
    # holding a lease takes MANAGE on the network: the operator grants it to users on the public one
    pyone.OneServer(simulator.url, session=simulator.admin_session).vn.chmod(public, -1, -1, -1, -1, -1, -1, -1, 1, -1)
    simulator.add_image("debian-12", size_mb=2048)
    simulator.add_image("ubuntu-24.04", size_mb=3072)
    simulator.add_image("scratch", size_mb=100, image_type="DATABLOCK")
    nic = 'NIC=[NETWORK="private"]\nDISK=[IMAGE="debian-12"]\nCONTEXT=[NETWORK="YES"]'
    simulator.add_template("gw-small", f'CPU="0.5"\nVCPU="1"\nMEMORY="512"\n{nic}', GW_FLAVOR="small")
    simulator.add_template("gw-medium", f'CPU="1"\nVCPU="2"\nMEMORY="2048"\n{nic}', GW_FLAVOR="medium")
    simulator.add_template("gw-large", f'CPU="4"\nMEMORY="8192"\n{nic}', GW_FLAVOR="large")
    simulator.add_template("plain", f'CPU="1"\nMEMORY="1024"\n{nic}')
    yield simulator
    simulator.stop()


def options(sim: OpenNebulaSimulator, user: str = "alice", **extra: Any) -> dict[str, Any]:
    return {"endpoint": sim.url, "session": f"{user}:{user}-pw", "timeout": 10, "public_network": "public"} | extra


def make_backend(sim: OpenNebulaSimulator, client: Any, user: str = "alice", **extra: Any) -> OpenNebulaBackend:
    opts = options(sim, user, **extra)
    assert OpenNebulaBackend.validate_options(opts) == []
    account = AccountConfig(
        key=f"t-{user}/one-1", tenant=f"t-{user}", region="one-1", backend="one", driver="opennebula",
        zones=ZONES, options=opts,
    )  # fmt: skip
    return OpenNebulaBackend(account, BackendServices(client))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """Backends here keep nothing in Redis; the services handle is a client that is never connected."""
    unused = redis.Redis(unix_socket_path="/nonexistent/cloudgate-unused.sock")
    yield unused
    unused.close()


@pytest.fixture
def backend(sim: OpenNebulaSimulator, client: Any) -> Iterator[OpenNebulaBackend]:
    made = make_backend(sim, client)
    yield made
    for machine in made.list_machines():  # leave the network's leases and the images free for the next test
        if machine.state != MachineState.TERMINATED:
            made.act_on_machine(machine.native_id, MachineAction.TERMINATE)
    made.close()


class TestOpenNebulaContract(BackendContract):
    """The shared contract, for what this backend declares."""


# -- the state table -----------------------------------------------------------------------------------------------


def test_state_names_are_onedes_numbers() -> None:
    """pyone's enums (which NATIVE_STATES is built from) number states as oned and the simulator do."""
    assert [s.name for s in pyone.VM_STATE][: len(sim_model.STATE_NAMES)] == sim_model.STATE_NAMES
    for name, number in sim_model.LCM.items():
        assert pyone.LCM_STATE[name].value == number, name
    assert len(NATIVE_STATES) == len(pyone.VM_STATE) - 1 + len(pyone.LCM_STATE) - 1


def test_every_state_the_simulator_reaches_has_its_row() -> None:
    """Each STATE/LCM pair the simulator's VMs pass through maps without falling back to error."""
    for state in range(len(sim_model.STATE_NAMES)):
        if state != sim_model.ACTIVE:
            assert native_state(state, 0) in STATE_MAP
    for lcm in sim_model.LCM.values():
        if lcm:
            assert native_state(sim_model.ACTIVE, lcm) in STATE_MAP
    expected = {
        (sim_model.ACTIVE, sim_model.LCM["RUNNING"]): MachineState.RUNNING,
        (sim_model.ACTIVE, sim_model.LCM["SHUTDOWN_POWEROFF"]): MachineState.STOPPING,
        (sim_model.POWEROFF, 0): MachineState.STOPPED,
        (sim_model.SUSPENDED, 0): MachineState.SUSPENDED,
        (sim_model.ACTIVE, sim_model.LCM["SHUTDOWN"]): MachineState.TERMINATING,
        (sim_model.DONE, 0): MachineState.TERMINATED,
        (sim_model.ACTIVE, sim_model.LCM["BOOT_POWEROFF"]): MachineState.PENDING,
        (sim_model.ACTIVE, sim_model.LCM["HOTPLUG_PROLOG_POWEROFF"]): MachineState.STOPPED,
    }
    assert {pair: machine_state(*pair) for pair in expected} == expected
    assert native_state(99, 0) == "99" and machine_state(99, 0) == MachineState.ERROR


# -- options, the example config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"endpoint": "one.example.com:2633"}, "endpoint"),
        ({"session": "no-colon"}, "session"),
        ({"session": ":pw"}, "session"),
        ({"timeout": 0}, "timeout"),
        ({"flavor_attribute": "GW FLAVOR"}, "flavor_attribute"),
        ({"terminated_retention": -1}, "terminated_retention"),
        ({"verify": ""}, "verify"),
        ({"page_size": 1}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"network_driver": "a b"}, "network_driver"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_option_mistakes_name_the_key(change: dict[str, Any], key: str) -> None:
    good = {"endpoint": "https://one.example.com:2633/RPC2", "session": "u:p"}
    assert OpenNebulaBackend.validate_options(good) == []
    problems = OpenNebulaBackend.validate_options(good | change)
    assert len(problems) == 1 and problems[0].startswith(f"{key}:"), problems
    assert "p" not in problems[0].split(":", 1)[1].split() or key != "session"


def test_required_options_and_no_secret_echoed() -> None:
    problems = OpenNebulaBackend.validate_options({})
    assert sorted(p.split(":")[0] for p in problems) == ["endpoint", "session"]
    assert all("s3cret" not in p for p in OpenNebulaBackend.validate_options({"session": "s3cret"}))


def test_example_config_loads_and_documents_every_option() -> None:
    path = REPO / "conf" / "examples" / "opennebula.toml"
    config = load_config(path)
    account = config.accounts["acme/one-1"]
    assert account.driver == "opennebula" and account.zones == ("default",)
    assert set(CHECKS) <= set(account.options), "the example sets (and so documents) every option"
    assert "change-me" not in repr(account), "the session is a secret"


# -- what OpenNebula keeps for the gateway -------------------------------------------------------------------------


def test_flavors_are_the_marked_templates(backend: OpenNebulaBackend, sim: OpenNebulaSimulator) -> None:
    flavors = {f.name: f for f in backend.list_flavors()}
    assert set(flavors) == {"small", "medium", "large"}  # "plain" carries no GW_FLAVOR
    assert (flavors["small"].vcpus, flavors["small"].memory_mb) == (1, 512)
    assert (flavors["large"].vcpus, flavors["large"].memory_mb) == (4, 8192)  # no VCPU: CPU rounded up
    images = {i.name for i in backend.list_images()}
    assert images == {"debian-12", "ubuntu-24.04"}  # the data block is not an OS image
    plain = next(t.ID for t in pyone.OneServer(sim.url, session=sim.admin_session).templatepool.info(-2, -1, -1)
                 .VMTEMPLATE if t.NAME == "plain")  # fmt: skip
    image = backend.list_images()[0].native_id
    with raises(NotFound, kind="flavor"):
        backend.create_machines(MachineSpec(image_id=image, flavor_id=str(plain)))
    with raises(InvalidParameter, reason="zone"):
        backend.create_machines(MachineSpec(image_id=image, flavor_id=flavors["small"].native_id, zone="elsewhere"))


def test_the_machine_is_the_flavor_instantiated_with_the_image(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    ubuntu = next(i.native_id for i in backend.list_images() if i.name == "ubuntu-24.04")
    medium = next(f.native_id for f in backend.list_flavors() if f.name == "medium")
    key = uuid.uuid4().hex
    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=ubuntu, flavor_id=medium, name="web", zone="one-b", user_data="aGVsbG8=", idempotency_key=key
        )
    )
    assert (vm.image_id, vm.flavor_id, vm.flavor_name, vm.vcpus, vm.memory_mb) == (ubuntu, medium, "medium", 2, 2048)
    assert (vm.name, vm.zone, vm.launch_key, vm.root_device) == ("web", "one-b", key, "/dev/vda")
    body = pyone.OneServer(sim.url, session="alice:alice-pw").vm.info(int(vm.native_id))
    assert body.USER_TEMPLATE[KEY_ATTRIBUTE] == key
    assert body.TEMPLATE["CONTEXT"]["USER_DATA"] == "aGVsbG8=" and body.TEMPLATE["CONTEXT"]["NETWORK"] == "YES"
    assert body.TEMPLATE["NIC"]["NETWORK"] == "private"  # the template's NIC is kept


def test_a_twin_launch_from_a_stalled_call_is_never_the_machine(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """oned has no idempotent create: an instantiate stalled past the timeout may reach it after the retry with the
    same key looked. Keyed launches are made on hold and only the lowest id of a key and index is released: a twin
    arriving before the retry settles is the one kept (the retry's own is dropped), one arriving later stays on
    hold, out of every listing, and is terminated."""
    image, flavor = backend.list_images()[0].native_id, backend.list_flavors()[0].native_id
    one = pyone.OneServer(sim.url, session="alice:alice-pw")

    def stalled_call(key: str) -> int:
        """What a create call of an earlier attempt does when it finally reaches oned."""
        extra = f'{KEY_ATTRIBUTE}="{key}"\n{INDEX_ATTRIBUTE}="0"'
        return int(one.template.instantiate(int(flavor), "", True, extra, False))

    early = uuid.uuid4().hex
    first = stalled_call(early)  # landed before the retry: its id is lower
    (kept,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor, idempotency_key=early))
    assert kept.native_id == str(first)
    settle(lambda: backend.get_machines([kept.native_id])[0], lambda m: m.state == MachineState.RUNNING)  # released
    listed = {m.native_id for m in backend.list_machines() if m.launch_key == early}
    assert listed == {str(first)}

    late = uuid.uuid4().hex
    (made,) = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor, idempotency_key=late))
    twin = stalled_call(late)  # landed after the create settled
    assert str(twin) not in {m.native_id for m in backend.list_machines()}
    body = one.vm.info(twin)
    assert native_state(body.STATE, body.LCM_STATE) == "DONE"
    again = backend.create_machines(MachineSpec(image_id=image, flavor_id=flavor, idempotency_key=late))
    assert [m.native_id for m in again] == [made.native_id]


def test_tenants_do_not_see_each_others_machines(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator, client: Any
) -> None:
    (vm,) = backend.create_machines(
        MachineSpec(image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id)
    )
    bob = make_backend(sim, client, "bob")
    try:
        assert vm.native_id not in {m.native_id for m in bob.list_machines()}
        assert bob.get_machines([vm.native_id]) == []
        with raises(Forbidden):
            bob.act_on_machine(vm.native_id, MachineAction.STOP)
    finally:
        bob.close()


def test_a_retry_after_a_lost_answer_finds_the_vm(backend: OpenNebulaBackend, sim: OpenNebulaSimulator) -> None:
    """oned made the VM but the answer never came: OutcomeUnknown, and the retry with the key finds that VM."""
    spec = MachineSpec(
        image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id,
        idempotency_key=uuid.uuid4().hex,
    )  # fmt: skip
    before = len(backend.list_machines())
    sim.faults.set(drop=1.0, methods=("one.template.instantiate",))
    try:
        with raises(OutcomeUnknown):
            backend.create_machines(spec)
    finally:
        sim.faults.set()
    (again,) = backend.create_machines(spec)
    assert len(backend.list_machines()) == before + 1 and again.launch_key == spec.idempotency_key


# -- faults --------------------------------------------------------------------------------------------------------


def test_faults_map_to_canonical_errors(sim: OpenNebulaSimulator, client: Any) -> None:
    wrong = make_backend(sim, client, "alice", session="alice:wrong")
    with raises(BackendUnavailable, reason="credentials"):
        wrong.list_machines()
    wrong.close()
    backend = make_backend(sim, client)
    sim.faults.set(fail=1.0, methods=("one.vmpool.infoextended",))
    try:
        with raises(TransientBackendError, reason="internal"):
            backend.list_machines()
    finally:
        sim.faults.set()
    with raises(NotFound, kind="machine"):
        backend.act_on_machine("12345", MachineAction.STOP)
    backend.close()
    refused = make_backend(sim, client, endpoint="http://127.0.0.1:1/RPC2")
    with pytest.raises(TransientBackendError) as info:
        refused.list_images()
    assert not isinstance(info.value, OutcomeUnknown), "a refused connection never reached oned"
    refused.close()
    rows = [
        (pyone.OneActionException("[one.image.allocate] NAME is already taken by IMAGE."), Conflict, "duplicate"),
        (pyone.OneActionException("[one.vm.action] This action is not available for state DONE"), Conflict, "state"),
        (
            pyone.OneException("[one.vm.allocate] Error allocating a new virtual machine template."),
            InvalidParameter,
            None,
        ),
        (xmlrpc.client.ProtocolError("u", 503, "busy", {}), TransientBackendError, "server_error"),
        (requests.ReadTimeout("slow"), OutcomeUnknown, "unreachable"),
    ]
    for exc, cls, reason in rows:
        error = translate(exc, kind="machine")
        assert type(error) is cls and error.reason == reason, (exc, error)
    assert translate(KeyError("ours")) is None


def test_a_key_pair_is_the_users_ssh_key_and_reaches_the_context(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKt3t2Y0Xq2cC7Ue7s2k2T3p6bqvW0F0yqv8c0n3m1sW"
    key = backend.import_key_pair("laptop", public + " me@laptop")
    assert key.public_key == public and key.key_type == "ed25519"
    alice = pyone.OneServer(sim.url, session="alice:alice-pw")
    assert alice.user.info(-1).TEMPLATE["SSH_PUBLIC_KEY"] == public  # what $USER[SSH_PUBLIC_KEY] contexts read
    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id,
            key_name="laptop",
        )
    )  # fmt: skip
    assert vm.key_name == "laptop"
    assert alice.vm.info(int(vm.native_id)).TEMPLATE["CONTEXT"]["SSH_PUBLIC_KEY"] == public
    backend.delete_key_pair("laptop")
    assert "SSH_PUBLIC_KEY" not in (alice.user.info(-1).TEMPLATE or {})


def test_volumes_are_persistent_data_blocks_and_snapshots_their_clones(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """Two volumes of one gateway name live as two images (oned's names are unique per user); a snapshot is a
    clone that names its volume, and outlives it; oned refuses a second hot-plug while one is under way, so the
    backend waits for the first instead of failing."""
    zone = ZONES[0]
    first = backend.create_volume(VolumeSpec(size_gb=2, zone=zone, name="data"))
    second = backend.create_volume(VolumeSpec(size_gb=1, zone=ZONES[1], name="data", description="logs"))
    alice = pyone.OneServer(sim.url, session="alice:alice-pw")
    body = alice.image.info(int(first.native_id))
    assert (body.TYPE, body.PERSISTENT, body.SIZE) == (pyone.IMAGE_TYPES.DATABLOCK, 1, 2048)
    assert (first.name, second.name, second.description, second.zone) == ("data", "data", "logs", ZONES[1])
    snap = backend.create_snapshot(first.native_id, "before upgrade")
    assert alice.image.info(int(snap.native_id)).PERSISTENT == 0 and snap.volume_id == first.native_id
    assert snap.native_id not in {v.native_id for v in backend.list_volumes()}
    (vm,) = backend.create_machines(
        MachineSpec(image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id)
    )
    running = lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING  # noqa: E731
    settle(running, bool)
    for volume in (first, second):  # back to back: the second waits for the first hot-plug to end
        backend.attach_volume(volume.native_id, vm.native_id)
    listed = {v.native_id: v for v in backend.list_volumes()}
    devices = {listed[v.native_id].attachments[0].device for v in (first, second)}
    assert len(devices) == 2 and set(backend.get_machines([vm.native_id])[0].volume_ids) == {
        first.native_id,
        second.native_id,
    }
    backend.detach_volume(first.native_id, None)
    backend.delete_volume(first.native_id)
    kept = next(s for s in backend.list_snapshots() if s.native_id == snap.native_id)
    assert kept.volume_id is None and kept.size_gb == 2
    copy = backend.create_volume(VolumeSpec(snapshot_id=snap.native_id, zone=zone, name="restored"))
    assert (copy.size_gb, copy.snapshot_id, copy.name) == (2, snap.native_id, "restored")
    assert snap.native_id in {s.native_id for s in backend.list_snapshots()}
    with raises(Unsupported, reason="size"):
        backend.create_volume(VolumeSpec(snapshot_id=snap.native_id, size_gb=5, zone=zone))
    with raises(NotFound, kind="snapshot"):
        backend.create_volume(VolumeSpec(snapshot_id=first.native_id, zone=zone))


def test_networks_are_the_virtual_networks_with_a_subnet_per_zone(backend: OpenNebulaBackend) -> None:
    """The shared network 10.0.0.10 + 200 addresses is 10.0.0.0/24 with one subnet per zone; a machine launched
    on a subnet gets a NIC on its network, in its zone; an interface added leases another address."""
    net, public = backend.list_networks()
    assert (public.cidr, public.is_default) == ("198.51.100.0/28", False)
    assert (net.cidr, net.is_default, net.name) == ("10.0.0.0/24", True, "private")
    subnets = [s for s in backend.list_subnets() if s.network_id == net.native_id]
    assert sorted(s.zone for s in subnets) == sorted(ZONES) and all(s.cidr == net.cidr for s in subnets)
    other = next(s for s in subnets if s.zone == ZONES[1])
    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id,
            subnet_id=other.native_id,
        )
    )  # fmt: skip
    assert (vm.zone, vm.subnet_id, vm.network_id) == (ZONES[1], other.native_id, net.native_id)
    with raises(NotFound, kind="subnet"):
        backend.create_machines(MachineSpec(image_id=vm.image_id, flavor_id=vm.flavor_id, subnet_id="0:elsewhere"))
    with raises(InvalidParameter, reason="zone"):
        backend.attach_interface(vm.native_id, InterfaceSpec(subnet_id=f"{net.native_id}:{ZONES[0]}"))
    free = next(s for s in backend.list_subnets() if s.native_id == other.native_id).available_ips
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING, bool)
    made = backend.attach_interface(vm.native_id, InterfaceSpec(network_id=net.native_id))
    assert made.private_ip != vm.private_ip and made.subnet_id == other.native_id
    assert next(s for s in backend.list_subnets() if s.native_id == other.native_id).available_ips == free - 1


def test_addresses_are_held_leases_of_the_public_network(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator, client: Any
) -> None:
    """An address is a held lease that only its account lists; associated, it is a NIC on the machine shown as
    its public address (not an interface), and it cannot be released until disassociated."""
    address = backend.allocate_address()
    public = next(n for n in backend.list_networks() if n.name == "public")
    alice = pyone.OneServer(sim.url, session="alice:alice-pw")
    leases = alice.vn.info(int(public.native_id)).AR_POOL.AR[0].LEASES.LEASE
    assert [(lease.IP, lease.VM) for lease in leases] == [(address.public_ip, -1)]
    bob = make_backend(sim, client, "bob")
    try:
        assert bob.list_addresses() == []
        with raises(NotFound, kind="address"):
            bob.release_address(address.native_id)
    finally:
        bob.close()
    (vm,) = backend.create_machines(
        MachineSpec(image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id)
    )
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING, bool)
    backend.associate_address(address.native_id, vm.native_id)
    (listed,) = backend.get_machines([vm.native_id])
    assert listed.public_ip == listed.interfaces[0].public_ip == address.public_ip
    assert [i.network_id for i in listed.interfaces] == [listed.network_id] != [public.native_id]
    with raises(Conflict, kind="address", reason="in_use"):
        backend.release_address(address.native_id)
    backend.disassociate_address(address.native_id)
    backend.release_address(address.native_id)
    assert alice.vn.info(int(public.native_id)).AR_POOL.AR[0].LEASES.LEASE == []


def test_security_groups_are_opennebulas_with_rules_as_ranges(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """A CIDR is oned's IP + SIZE, a port range its RANGE; a machine joins groups through its NICs."""
    group = backend.create_security_group(SecurityGroupSpec(name="db", description="databases"))
    rule = Rule(direction="ingress", protocol="tcp", from_port=5432, to_port=5433, cidr="192.0.2.0/28")
    backend.authorize_rules(group.native_id, [rule])
    alice = pyone.OneServer(sim.url, session="alice:alice-pw")
    written = alice.secgroup.info(int(group.native_id)).TEMPLATE["RULE"]
    assert (written["IP"], written["SIZE"], written["RANGE"], written["RULE_TYPE"]) == (
        "192.0.2.0", "16", "5432:5433", "inbound",
    )  # fmt: skip
    with raises(Conflict, kind="security_group", reason="duplicate"):
        backend.create_security_group(SecurityGroupSpec(name="db", description=""))
    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id,
            security_group_ids=(group.native_id,),
        )
    )  # fmt: skip
    assert vm.security_group_ids == [group.native_id]
    assert alice.vm.info(int(vm.native_id)).TEMPLATE["NIC"]["NETWORK"] == "private"  # the template's NIC, kept


# -- tags ----------------------------------------------------------------------------------------------------------


def test_tags_are_vectors_in_opennebula_lossless_and_apart_from_the_gateways_attributes(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """Any key survives (case, spaces, '=', ':', unicode, empty values) as a KEY/VALUE vector an operator reads;
    a tag named like the gateway's attributes does not touch them; an operator's plain attribute is no tag, a
    tag vector written by hand is one (and a set of its key replaces it)."""
    assert {"machine", "volume", "snapshot"} == OpenNebulaBackend.NATIVE_TAG_KINDS
    wanted = {"Env": "prod", "env": "test", "a b=c:d": "é ☃ x=y", "empty": "", KEY_ATTRIBUTE: "mine"}
    key = uuid.uuid4().hex
    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id,
            idempotency_key=key, tags=tuple(wanted.items()),
        )
    )  # fmt: skip
    assert (vm.tags, vm.launch_key) == (wanted, key)
    admin = pyone.OneServer(sim.url, session=sim.admin_session)
    body = admin.vm.info(int(vm.native_id)).USER_TEMPLATE
    assert body[tag_attribute("Env")] == {"KEY": "Env", "VALUE": "prod"} and body[KEY_ATTRIBUTE] == key
    admin.vm.update(int(vm.native_id), 'OWNER="ops"\nCLOUDGATE_TAG_BYHAND=[KEY="owner",VALUE="ops"]', 1)
    assert backend.get_machines([vm.native_id])[0].tags == wanted | {"owner": "ops"}
    backend.set_tags("machine", vm.native_id, {"owner": "dev", "Env": "staging"})
    backend.remove_tags("machine", vm.native_id, ["env", "absent"])
    (listed,) = backend.get_machines([vm.native_id])
    assert listed.tags == {"Env": "staging", "a b=c:d": "é ☃ x=y", "empty": "", KEY_ATTRIBUTE: "mine", "owner": "dev"}
    body = admin.vm.info(int(vm.native_id)).USER_TEMPLATE
    assert (body["OWNER"], body[KEY_ATTRIBUTE], listed.launch_key) == ("ops", key, key)
    assert "CLOUDGATE_TAG_BYHAND" not in body
    for kind in ("machine", "volume", "snapshot"):
        with raises(NotFound, kind=kind):
            backend.set_tags(kind, "424242", {"x": "y"})
    with raises(Unsupported):
        backend.set_tags("network", "0", {"x": "y"})

    volume = backend.create_volume(VolumeSpec(size_gb=1, zone=ZONES[0], name="tagged"))
    backend.set_tags("volume", volume.native_id, {"tier": "gold"})  # while oned still writes it (LOCKED)
    settle(lambda: backend.get_volumes([volume.native_id])[0].state, lambda s: s == VolumeState.AVAILABLE)
    snap = backend.create_snapshot(volume.native_id, "copy")
    assert snap.tags == {}  # a snapshot does not inherit its volume's tags (EC2 neither)
    backend.set_tags("snapshot", snap.native_id, {"when": "nightly"})
    assert next(s for s in backend.list_snapshots() if s.native_id == snap.native_id).tags == {"when": "nightly"}
    assert next(v for v in backend.list_volumes() if v.native_id == volume.native_id).tags == {"tier": "gold"}
    backend.remove_tags("volume", volume.native_id, ["tier"])
    assert next(v for v in backend.list_volumes() if v.native_id == volume.native_id).tags == {}
    assert next(v for v in backend.list_volumes() if v.native_id == volume.native_id).name == "tagged"


# -- images --------------------------------------------------------------------------------------------------------


def test_a_capture_saves_the_boot_disk_as_an_image_only_its_user_sees(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator, client: Any
) -> None:
    """create_image is one.vm.disksaveas of the boot disk (the machine capturing meanwhile); names are unique per
    user as oned wants; another tenant neither sees the image nor may delete a shared one."""
    assert machine_state(sim_model.ACTIVE, sim_model.LCM["HOTPLUG_SAVEAS"]) == MachineState.CAPTURING
    assert machine_state(sim_model.ACTIVE, sim_model.LCM["HOTPLUG_SAVEAS_POWEROFF"]) == MachineState.CAPTURING
    (vm,) = backend.create_machines(
        MachineSpec(image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id)
    )
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING, bool)
    image = backend.create_image(ImageSpec(machine_id=vm.native_id, name="web-golden", description="v1"))
    assert (image.name, image.description, image.owner, image.public) == ("web-golden", "v1", "alice", False)
    body = pyone.OneServer(sim.url, session=sim.admin_session).image.info(int(image.native_id))
    assert body.TEMPLATE["SAVED_VM_ID"] == vm.native_id and body.TEMPLATE["SAVED_DISK_ID"] == "0"
    with raises(Conflict, kind="image", reason="duplicate"):
        backend.create_image(ImageSpec(machine_id=vm.native_id, name="web-golden"))
    settle(
        lambda: next(i for i in backend.list_images() if i.native_id == image.native_id).state,
        lambda s: s == ImageState.AVAILABLE,
    )
    renamed = backend.update_image(image.native_id, ImageUpdate(name="web-golden-2"))
    assert (renamed.name, renamed.description) == ("web-golden-2", "v1")
    shared = next(i for i in backend.list_images() if i.name == "debian-12")
    bob = make_backend(sim, client, "bob")
    try:
        assert image.native_id not in {i.native_id for i in bob.list_images()}
        with raises(Forbidden):
            bob.delete_image(shared.native_id)
        with raises(Forbidden):
            bob.update_image(image.native_id, ImageUpdate(description="theirs"))
    finally:
        bob.close()
    scratch = next(i.ID for i in pyone.OneServer(sim.url, session=sim.admin_session).imagepool.info(-2, -1, -1).IMAGE
                   if i.NAME == "scratch")  # fmt: skip
    for missing in ("999", str(scratch)):  # a data block is no OS image
        with raises(NotFound, kind="image"):
            backend.delete_image(missing)
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING, bool)
    backend.delete_image(image.native_id)


def test_a_volume_update_renames_in_its_template_and_never_resizes(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """The gateway's name and description live in the image's template (its oned NAME stays the unique one); a
    size is Unsupported before anything changes: oned resizes a disk only through a VM (one.vm.diskresize)."""
    assert Capability.VOLUME_RESIZE not in backend.capabilities
    volume = backend.create_volume(VolumeSpec(size_gb=1, zone=ZONES[0], name="before"))
    with raises(Unsupported, reason="size"):
        backend.update_volume(volume.native_id, VolumeUpdate(name="never", size_gb=2))
    updated = backend.update_volume(volume.native_id, VolumeUpdate(name="after", description="logs"))
    assert (updated.name, updated.description, updated.size_gb) == ("after", "logs", 1)
    body = pyone.OneServer(sim.url, session="alice:alice-pw").image.info(int(volume.native_id))
    assert body.NAME.startswith("cloudgate-volume-") and body.TEMPLATE["DESCRIPTION"] == "logs"
    assert backend.update_volume(volume.native_id, VolumeUpdate(description="")).description == ""
    with raises(NotFound, kind="volume"):
        backend.update_volume(backend.list_images()[0].native_id, VolumeUpdate(name="an OS image"))
    backend.delete_volume(volume.native_id)


def test_a_volume_create_call_reaching_oned_late_never_makes_a_second_volume(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """A keyed volume's image is named after its key and oned keeps image names unique per user: an allocate
    stalled past the timeout that lands before the retry is the volume the retry finds, one landing after is
    refused. A snapshot's clone that landed but whose attempt never made it a volume is no snapshot meanwhile,
    and the retry makes it the volume."""
    alice = pyone.OneServer(sim.url, session="alice:alice-pw")
    key = uuid.uuid4().hex
    spec = VolumeSpec(size_gb=1, zone=ZONES[0], name="data", idempotency_key=key)
    template = (
        f'NAME="{VOLUME_PREFIX}{key}"\nTYPE="DATABLOCK"\nSIZE="1024"\nPERSISTENT="YES"\n'
        f'{VOLUME_NAME_ATTRIBUTE}="data"\n{ZONE_ATTRIBUTE}="{ZONES[0]}"\n{KEY_ATTRIBUTE}="{key}"'
    )
    landed = alice.image.allocate(template, 1)  # what a stalled call of the first attempt does, before the retry
    kept = backend.create_volume(spec)
    assert (kept.native_id, kept.name) == (str(landed), "data")
    with pytest.raises(pyone.OneException, match="already taken"):
        alice.image.allocate(template, 1)  # ... and after it
    assert [v.native_id for v in backend.list_volumes()].count(kept.native_id) == 1

    settle(lambda: backend.get_volumes([kept.native_id])[0].state, lambda s: s == VolumeState.AVAILABLE)
    snap = backend.create_snapshot(kept.native_id, "copy")
    settle(lambda: alice.image.info(int(snap.native_id)).STATE, lambda s: s == pyone.IMAGE_STATES.READY)
    key = uuid.uuid4().hex
    clone = alice.image.clone(int(snap.native_id), f"{VOLUME_PREFIX}{key}", 1)  # landed; never made a volume
    listed = {s.native_id for s in backend.list_snapshots()} | {v.native_id for v in backend.list_volumes()}
    assert str(clone) not in listed
    spec = VolumeSpec(snapshot_id=snap.native_id, zone=ZONES[0], name="copy", idempotency_key=key)
    copy = backend.create_volume(spec)
    assert (copy.native_id, copy.name, copy.snapshot_id) == (str(clone), "copy", snap.native_id)
    assert str(clone) not in {s.native_id for s in backend.list_snapshots()}
    for volume in (copy, kept):
        settle(lambda v=volume: backend.get_volumes([v.native_id])[0].state, lambda s: s == VolumeState.AVAILABLE)
        backend.delete_volume(volume.native_id)
    backend.delete_snapshot(snap.native_id)


def test_a_resize_gives_the_stopped_vm_the_flavors_capacity_and_keeps_the_flavor_on_it(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator
) -> None:
    """one.vm.resize to the flavor template's CPU, VCPU and MEMORY; TEMPLATE_ID stays the launch's, the flavor now
    read from the VM's USER_TEMPLATE; user data through one.vm.updateconf of the CONTEXT (the template's context
    kept); a running machine is a state conflict and nothing changes."""
    flavors = {f.name: f for f in backend.list_flavors()}
    (vm,) = backend.create_machines(
        MachineSpec(image_id=backend.list_images()[0].native_id, flavor_id=flavors["small"].native_id, name="r")
    )
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING, bool)
    with raises(Conflict, kind="machine", reason="state"):
        backend.update_machine(vm.native_id, MachineUpdate(flavor_id=flavors["large"].native_id, name="x"))
    backend.act_on_machine(vm.native_id, MachineAction.STOP)
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.STOPPED, bool)
    changed = backend.update_machine(vm.native_id, MachineUpdate(user_data="aGk="))  # one.vm.updateconf CONTEXT
    context = pyone.OneServer(sim.url, session="alice:alice-pw").vm.info(int(vm.native_id)).TEMPLATE["CONTEXT"]
    assert (context["USER_DATA"], context["NETWORK"], changed.user_data) == ("aGk=", "YES", "aGk=")
    assert backend.machine_user_data(vm.native_id) == "aGk="
    assert backend.update_machine(vm.native_id, MachineUpdate(user_data="")).user_data is None
    with raises(NotFound, kind="flavor"):
        backend.update_machine(vm.native_id, MachineUpdate(flavor_id="999", name="never"))
    updated = backend.update_machine(vm.native_id, MachineUpdate(flavor_id=flavors["medium"].native_id, name="big"))
    assert (updated.flavor_id, updated.flavor_name, updated.vcpus, updated.memory_mb, updated.name) == (
        flavors["medium"].native_id, "medium", 2, 2048, "big",
    )  # fmt: skip
    body = pyone.OneServer(sim.url, session="alice:alice-pw").vm.info(int(vm.native_id)).TEMPLATE
    assert (body["TEMPLATE_ID"], body["CPU"], body["VCPU"]) == (flavors["small"].native_id, "1", "2")
    with raises(NotFound, kind="machine"):
        backend.update_machine("424242", MachineUpdate(name="gone"))


# -- networks made through the gateway -----------------------------------------------------------------------------


def test_a_network_is_a_vnet_naming_its_cidr_and_each_subnet_a_vnet_of_its_own(
    backend: OpenNebulaBackend, sim: OpenNebulaSimulator, client: Any
) -> None:
    """What a user with NET:CREATE may do (no address ranges added: that takes NET:ADMIN): the network a vnet
    without ranges, each subnet a vnet with one range of its usable addresses, marked with its network and zone;
    machines on a subnet read back in its network; operator networks keep their flat per-zone subnets."""
    net = backend.create_network(NetworkSpec(cidr="10.30.0.0/16", name="lab", description="tests"))
    alice = pyone.OneServer(sim.url, session="alice:alice-pw")
    body = alice.vn.info(int(net.native_id))
    assert (body.NAME, body.VN_MAD, body.AR_POOL.AR, body.TEMPLATE["NETWORK_MASK"]) == (
        "lab",
        "bridge",
        [],
        "255.255.0.0",
    )
    assert (net.cidr, net.description, net.is_default) == ("10.30.0.0/16", "tests", False)
    assert not [s for s in backend.list_subnets() if s.network_id == net.native_id]
    with raises(Conflict, kind="network", reason="duplicate"):
        backend.create_network(NetworkSpec(cidr="10.31.0.0/16", name="lab"))
    with raises(InvalidParameter, kind="subnet", reason="cidr"):
        backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.99.0.0/24"))
    first = backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.30.1.0/24", zone=ZONES[1]))
    # named as its network (CIMI names both after the component): oned's vnet names are unique, the subnet's is its own
    second = backend.create_subnet(SubnetSpec(network_id=net.native_id, cidr="10.30.2.0/28", zone=ZONES[1], name="lab"))
    assert second.name == "lab"
    assert (first.zone, first.cidr, first.available_ips, second.available_ips) == (ZONES[1], "10.30.1.0/24", 254, 14)
    ar = alice.vn.info(int(first.native_id.partition(":")[0])).AR_POOL.AR[0]
    assert (ar.IP, ar.SIZE) == ("10.30.1.1", 254)
    listed = {s.native_id: s for s in backend.list_subnets() if s.network_id == net.native_id}
    assert set(listed) == {first.native_id, second.native_id}  # each in its one zone only
    assert net.native_id in {n.native_id for n in backend.list_networks()}
    assert not {first.native_id.partition(":")[0]} & {n.native_id for n in backend.list_networks()}

    (vm,) = backend.create_machines(
        MachineSpec(
            image_id=backend.list_images()[0].native_id, flavor_id=backend.list_flavors()[0].native_id,
            subnet_id=first.native_id,
        )
    )  # fmt: skip
    assert (vm.network_id, vm.subnet_id, vm.zone, vm.private_ip) == (
        net.native_id,
        first.native_id,
        ZONES[1],
        "10.30.1.1",
    )
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.RUNNING, bool)
    extra = backend.attach_interface(vm.native_id, InterfaceSpec(network_id=net.native_id))
    assert extra.network_id == net.native_id and extra.subnet_id in (first.native_id, second.native_id)
    with raises(Conflict, kind="subnet", reason="in_use"):
        backend.delete_subnet(first.native_id)
    with raises(Conflict, kind="network", reason="dependency"):
        backend.delete_network(net.native_id)
    shared = next(n for n in backend.list_networks() if n.name == "private")
    with raises(Conflict, kind="subnet", reason="dependency"):
        backend.delete_subnet(f"{shared.native_id}:{ZONES[0]}")
    with raises(Forbidden):
        backend.update_network(shared.native_id, NetworkUpdate(name="mine"))
    with raises(NotFound, kind="network"):
        backend.update_network(first.native_id.partition(":")[0], NetworkUpdate(name="a subnet is no network"))
    bob = make_backend(sim, client, "bob")
    try:
        assert net.native_id not in {n.native_id for n in bob.list_networks()}
    finally:
        bob.close()
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE, ActionMethod.HARD)
    settle(lambda: backend.get_machines([vm.native_id])[0].state == MachineState.TERMINATED, bool)
    for subnet in (first, second):
        backend.delete_subnet(subnet.native_id)
    backend.delete_network(net.native_id)


def test_pools_are_read_in_pages_that_overlap(sim: OpenNebulaSimulator, client: Any) -> None:
    """With a small page size, every listing reads its pool in offset pages (oned's start/-end) and finds what one
    whole-pool call finds, each object once."""
    sim.add_user("dave", "dave-pw")  # a user of his own: his pools hold his VMs and the shared objects only
    whole = make_backend(sim, client, "dave", page_size=0)
    paged = make_backend(sim, client, "dave", page_size=2)
    try:
        image, flavor = whole.list_images()[0].native_id, whole.list_flavors()[0].native_id
        made = whole.create_machines(MachineSpec(image_id=image, flavor_id=flavor, count=5))
        before = len(sim.calls)
        machines = paged.list_machines()
        pages = [c for c in sim.calls[before:] if c == "one.vmpool.infoextended"]
        assert len(machines) == 5 == len(pages)  # pages of 2 overlapping by 1: one call per machine
        for listing in ("list_machines", "list_images", "list_flavors", "list_networks", "list_security_groups"):
            mine = [r.native_id for r in getattr(whole, listing)()]
            assert [r.native_id for r in getattr(paged, listing)()] == mine and len(set(mine)) == len(mine), listing
        for machine in made:
            whole.act_on_machine(machine.native_id, MachineAction.TERMINATE, ActionMethod.HARD)
    finally:
        whole.close()
        paged.close()


def test_a_page_read_after_objects_before_it_went_away_is_read_again(sim: OpenNebulaSimulator, client: Any) -> None:
    """Two volumes deleted between the first and second page shift the pool back by two: the second page no longer
    starts with the first page's last volume, so the backend reads again from further back and misses none."""
    sim.add_user("carol", "carol-pw")  # a user of her own: her pool holds these volumes only
    carol = make_backend(sim, client, "carol", page_size=3)
    volumes = [carol.create_volume(VolumeSpec(size_gb=1, zone=ZONES[0], name=f"p{i}")).native_id for i in range(7)]
    admin = pyone.OneServer(sim.url, session=sim.admin_session)
    seen = len([c for c in sim.calls if c == "one.imagepool.info"])

    def delete_during_the_second_page() -> None:
        settle(lambda: len([c for c in sim.calls if c == "one.imagepool.info"]), lambda n: n > seen)
        for native_id in volumes[:2]:  # while the second page's call stalls before it runs
            admin.image.delete(int(native_id))

    sim.faults.set(stall=1.0, stall_seconds=0.3, methods=("one.imagepool.info",))
    deleter = threading.Thread(target=delete_during_the_second_page)
    deleter.start()
    try:
        listed = {v.native_id for v in carol.list_volumes()}
    finally:
        deleter.join(10)
        sim.faults.set()
    try:
        assert set(volumes[2:]) <= listed  # without reading again, the 4th volume would be skipped
        assert len([c for c in sim.calls if c == "one.imagepool.info"]) - seen == 5  # 3 pages, one of them twice
    finally:
        for native_id in volumes[2:]:
            carol.delete_volume(native_id)
        carol.close()
