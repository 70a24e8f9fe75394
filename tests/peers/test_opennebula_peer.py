"""The OpenNebula simulator is faithful: pyone (OpenNebula's own Python client) drives it, every XML body parses
into pyone's generated bindings with typed fields, and a structural walk checks each element against the binding
class generated from OpenNebula's XSD (member order and types; pyone itself tolerates missing or extra elements).
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import time
import xml.etree.ElementTree as ET
import xmlrpc.client
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import pyone
import pytest
import requests
from peers.opennebula import OpenNebulaSimulator
from pyone.bindings import parseString, supbind

VM_STATE, LCM = pyone.VM_STATE, pyone.LCM_STATE


@pytest.fixture
def sim() -> Iterator[OpenNebulaSimulator]:
    simulator = OpenNebulaSimulator()
    simulator.add_user("alice", "alice-pw")
    simulator.add_user("bob", "bob-pw")
    simulator.add_user("root2", "root-pw", group="oneadmin")
    yield simulator
    simulator.stop()


def one(sim: OpenNebulaSimulator, who: str = "alice") -> Any:
    sessions = {"alice": "alice:alice-pw", "bob": "bob:bob-pw", "admin": sim.admin_session, "root2": "root2:root-pw"}
    return pyone.OneServer(sim.url, session=sessions[who])


def raw(sim: OpenNebulaSimulator, method: str, *args: Any, session: str = "alice:alice-pw") -> list[Any]:
    """The answer array as it is on the wire (plain xmlrpc.client, no pyone)."""
    proxy = xmlrpc.client.ServerProxy(sim.url)
    return getattr(proxy, method)(session, *args)


def wait_for(read: Callable[[], Any], check: Callable[[Any], bool], what: str, tries: int = 100) -> Any:
    """Poll ``read`` until ``check`` holds (bounded; the simulator's timings are fractions of a second)."""
    for _ in range(tries):
        value = read()
        if check(value):
            return value
        time.sleep(0.02)
    raise AssertionError(f"never reached: {what}")


def wait_state(client: Any, vm_id: int, state: int, lcm: int = 0) -> Any:
    return wait_for(
        lambda: client.vm.info(vm_id),
        lambda vm: (state, lcm) == (vm.STATE, vm.LCM_STATE),
        f"VM {vm_id} in {VM_STATE(state).name}/{LCM(lcm).name}",
    )


# ------------------------------------------------------------------------------------------ structural check


@functools.cache
def members(cls: type) -> tuple[tuple[str, str], ...]:
    """(element, kind) in the order generateDS wrote ``_buildChildren`` from the XSD sequence; kind is ``int``,
    ``float``, ``bool``, ``str`` or the binding class name of a complex child."""
    source = textwrap.dedent(inspect.getsource(cls._buildChildren))
    chain = next((node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.If)), None)
    out = []  # no if-chain: the schema's content is xs:any
    while isinstance(chain, ast.If):
        test = chain.test.values[0] if isinstance(chain.test, ast.BoolOp) else chain.test
        name = test.comparators[0].value  # type: ignore[attr-defined]
        calls = {
            (c.func.value.id if isinstance(c.func.value, ast.Name) else "", c.func.attr)
            for c in ast.walk(ast.Module(body=chain.body, type_ignores=[]))
            if isinstance(c, ast.Call) and isinstance(c.func, ast.Attribute)
        }
        attrs = {attr for _, attr in calls}
        factory = [owner for owner, attr in calls if attr == "factory"]
        if factory:
            kind = factory[0]
        elif "gds_parse_integer" in attrs:
            kind = "int"
        elif "gds_parse_decimal" in attrs or "gds_parse_float" in attrs:
            kind = "float"
        elif "gds_parse_boolean" in attrs:
            kind = "bool"
        else:
            kind = "str"
        out.append((name, kind))
        chain = chain.orelse[0] if chain.orelse else None  # type: ignore[assignment]
    return tuple(out)


#: anyType in the XSD (pyone reads them as dicts): their content is free, only their place is checked.
FREE = {"TEMPLATE", "USER_TEMPLATE"}


def check_structure(element: ET.Element, cls: type, path: str = "") -> None:
    path = f"{path}/{element.tag}"
    spec = members(cls)
    if not spec:
        return
    names = [name for name, _ in spec]
    kinds = dict(spec)
    last = -1
    for child in element:
        assert child.tag in kinds, f"{path}/{child.tag} is not in {cls.__name__} ({names})"
        index = names.index(child.tag)
        assert index >= last, f"{path}/{child.tag} out of the schema's order {names}"
        last = index
        kind = kinds[child.tag]
        if child.tag in FREE:
            continue
        if kind == "int":
            int(child.text or "")
        elif kind == "float":
            float(child.text or "")
        elif kind not in ("str", "bool"):
            check_structure(child, getattr(supbind, kind), path)


def checked(sim: OpenNebulaSimulator, method: str, *args: Any, session: str = "alice:alice-pw") -> Any:
    """A body from the wire: structure walked against its binding, then parsed by pyone's ``parseString``."""
    answer = raw(sim, method, *args, session=session)
    assert answer[0] is True and answer[2] == 0 and len(answer) == 3, answer
    root = ET.fromstring(answer[1])
    check_structure(root, getattr(supbind, root.tag))
    parsed = parseString(answer[1].encode())
    assert isinstance(parsed, getattr(supbind, root.tag))
    return parsed


# ------------------------------------------------------------------------------------------ tests


def seed(sim: OpenNebulaSimulator) -> tuple[int, int, int]:
    net = sim.add_vnet("private", "10.0.0.10", 8)
    img = sim.add_image("debian", size_mb=2048)
    tmpl = sim.add_template("small", f'CPU="1"\nVCPU="2"\nMEMORY="512"\nDISK=[IMAGE_ID="{img}"]', GW_FLAVOR="small")
    return net, img, tmpl


def test_every_body_parses_into_the_bindings_in_schema_order(sim: OpenNebulaSimulator) -> None:
    net, img, tmpl = seed(sim)
    alice = one(sim)
    vm_id = alice.template.instantiate(tmpl, "web", False, f'NIC=[NETWORK_ID="{net}"]\nGW_KEY="k-1"')
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    disk = alice.vm.disksnapshotcreate(vm_id, 0, "before")
    sg = alice.secgroup.allocate('NAME="web"\nRULE=[PROTOCOL="TCP",RULE_TYPE="inbound",RANGE="22"]')
    vol = alice.image.allocate('NAME="data"\nTYPE="DATABLOCK"\nSIZE="100"\nPERSISTENT="YES"', 1)
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)

    vm = checked(sim, "one.vm.info", vm_id)
    assert (vm_id, "web", "alice", 3, 3) == (vm.ID, vm.NAME, vm.UNAME, vm.STATE, vm.LCM_STATE)
    assert isinstance(vm.STIME, int) and vm.PERMISSIONS.OWNER_U == 1
    assert vm.TEMPLATE["CPU"] == "1" and vm.TEMPLATE["TEMPLATE_ID"] == str(tmpl)
    assert vm.TEMPLATE["DISK"]["IMAGE_ID"] == str(img) and vm.TEMPLATE["NIC"]["IP"] == "10.0.0.10"
    assert vm.USER_TEMPLATE["GW_KEY"] == "k-1"
    assert vm.HISTORY_RECORDS.HISTORY[0].HOSTNAME == "sim-host0"
    assert vm.SNAPSHOTS[0].DISK_ID == 0 and disk == vm.SNAPSHOTS[0].SNAPSHOT[0].ID
    short = checked(sim, "one.vmpool.info", -2, -1, -1, -1).VM[0]  # vm_pool.xsd: the pool's short VM body
    assert (short.ID, short.STATE, short.TEMPLATE["MEMORY"], short.HISTORY_RECORDS.HISTORY[0].HID) == (
        vm_id,
        3,
        "512",
        0,
    )
    extended = raw(sim, "one.vmpool.infoextended", -2, -1, -1, -1)[1]  # vm_pool_extended.xsd: whole VM bodies
    for element in ET.fromstring(extended):
        check_structure(element, supbind.VM)
    assert [v.ID for v in parseString(extended.encode()).VM] == [vm_id]
    template = checked(sim, "one.template.info", tmpl)
    assert (template.ID, template.NAME, template.TEMPLATE["GW_FLAVOR"]) == (tmpl, "small", "small")
    assert [t.ID for t in checked(sim, "one.templatepool.info", -2, -1, -1).VMTEMPLATE] == [tmpl]
    image = checked(sim, "one.image.info", img)
    assert (image.TYPE, image.PERSISTENT, image.SIZE, image.RUNNING_VMS) == (0, 0, 2048, 1)
    assert image.STATE == pyone.IMAGE_STATES.USED and [vm_id] == image.VMS.ID
    assert {i.ID for i in checked(sim, "one.imagepool.info", -2, -1, -1).IMAGE} == {img, vol}
    vnet = checked(sim, "one.vn.info", net)
    ar = vnet.AR_POOL.AR[0]
    assert (1, 8, "10.0.0.10", vm_id) == (vnet.USED_LEASES, ar.SIZE, ar.IP, ar.LEASES.LEASE[0].VM)
    assert checked(sim, "one.vnpool.info", -2, -1, -1).VNET[0].AR_POOL.AR[0].SIZE == 8  # no LEASES in pools
    group = checked(sim, "one.secgroup.info", sg)
    assert group.TEMPLATE["RULE"]["PROTOCOL"] == "TCP"
    assert [g.ID for g in checked(sim, "one.secgrouppool.info", -2, -1, -1).SECURITY_GROUP] == [0, sg]
    user = checked(sim, "one.user.info", -1)
    assert (user.NAME, user.GNAME, user.GROUPS.ID) == ("alice", "users", [1])


def test_vm_lifecycle_states(sim: OpenNebulaSimulator) -> None:
    net, img, _ = seed(sim)
    alice = one(sim)
    vm_id = alice.vm.allocate('NAME="a"\nCPU="0.5"\nMEMORY="256"\nDISK=[IMAGE="debian"]\nNIC=[NETWORK="private"]')
    assert alice.vm.info(vm_id).STATE == VM_STATE.PENDING
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    steps = [
        ("poweroff", (VM_STATE.ACTIVE, LCM.SHUTDOWN_POWEROFF), (VM_STATE.POWEROFF, LCM.LCM_INIT)),
        ("resume", (VM_STATE.ACTIVE, LCM.BOOT_POWEROFF), (VM_STATE.ACTIVE, LCM.RUNNING)),
        ("reboot", (VM_STATE.ACTIVE, LCM.RUNNING), (VM_STATE.ACTIVE, LCM.RUNNING)),
        ("reboot-hard", (VM_STATE.ACTIVE, LCM.RUNNING), (VM_STATE.ACTIVE, LCM.RUNNING)),
        ("suspend", (VM_STATE.ACTIVE, LCM.SAVE_SUSPEND), (VM_STATE.SUSPENDED, LCM.LCM_INIT)),
        ("resume", (VM_STATE.ACTIVE, LCM.BOOT_SUSPENDED), (VM_STATE.ACTIVE, LCM.RUNNING)),
        ("stop", (VM_STATE.ACTIVE, LCM.SAVE_STOP), (VM_STATE.STOPPED, LCM.LCM_INIT)),
        ("resume", (VM_STATE.PENDING, LCM.LCM_INIT), (VM_STATE.ACTIVE, LCM.RUNNING)),
        ("poweroff-hard", (VM_STATE.ACTIVE, LCM.SHUTDOWN_POWEROFF), (VM_STATE.POWEROFF, LCM.LCM_INIT)),
        ("resume", (VM_STATE.ACTIVE, LCM.BOOT_POWEROFF), (VM_STATE.ACTIVE, LCM.RUNNING)),
        ("terminate", (VM_STATE.ACTIVE, LCM.SHUTDOWN), (VM_STATE.DONE, LCM.LCM_INIT)),
    ]
    for action, first, settled in steps:
        assert alice.vm.action(action, vm_id) == vm_id
        vm = alice.vm.info(vm_id)
        assert first == (vm.STATE, vm.LCM_STATE), action
        wait_state(alice, vm_id, *settled)
    done = alice.vm.info(vm_id)
    assert done.ETIME >= done.STIME > 0
    assert [v.ID for v in alice.vmpool.info(-3, -1, -1, -1).VM] == []  # -1: any state but DONE
    assert [v.ID for v in alice.vmpool.info(-3, -1, -1, -2).VM] == [vm_id]
    assert one(sim).vn.info(net).USED_LEASES == 0 and one(sim).image.info(img).RUNNING_VMS == 0
    with pytest.raises(pyone.OneActionException, match="not available for state DONE"):
        alice.vm.action("resume", vm_id)

    held = alice.vm.allocate('CPU="1"\nMEMORY="128"', True)
    assert alice.vm.info(held).STATE == VM_STATE.HOLD
    alice.vm.action("release", held)
    wait_state(alice, held, VM_STATE.ACTIVE, LCM.RUNNING)
    alice.vm.action("terminate-hard", held)
    wait_state(alice, held, VM_STATE.DONE, LCM.LCM_INIT)


def test_disks_nics_snapshots_and_images(sim: OpenNebulaSimulator) -> None:
    net, _, tmpl = seed(sim)
    alice = one(sim)
    vm_id = alice.template.instantiate(tmpl, "", False, "")
    assert f"small-{vm_id}" == alice.vm.info(vm_id).NAME
    vol = alice.image.allocate({"NAME": "vol", "TYPE": "DATABLOCK", "SIZE": "512", "PERSISTENT": "YES"}, 1)
    assert alice.image.info(vol).STATE == pyone.IMAGE_STATES.LOCKED
    wait_for(lambda: alice.image.info(vol).STATE, lambda s: s == pyone.IMAGE_STATES.READY, "image READY")
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)

    alice.vm.attach(vm_id, f'DISK=[IMAGE_ID="{vol}"]')
    assert alice.vm.info(vm_id).LCM_STATE == LCM.HOTPLUG
    vm = wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    disks = vm.TEMPLATE["DISK"]
    assert [d["DISK_ID"] for d in disks] == ["0", "1"] and disks[1]["PERSISTENT"] == "YES"
    assert alice.image.info(vol).STATE == pyone.IMAGE_STATES.USED_PERS
    with pytest.raises(pyone.OneActionException):
        alice.image.delete(vol)
    snap = alice.vm.disksnapshotcreate(vm_id, 1, "s1")
    assert alice.vm.info(vm_id).LCM_STATE == LCM.DISK_SNAPSHOT
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    alice.vm.disksnapshotdelete(vm_id, 1, snap)
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    alice.vm.detach(vm_id, 1)
    vm = wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    assert vm.TEMPLATE["DISK"]["DISK_ID"] == "0" and vm.SNAPSHOTS == []
    assert alice.image.info(vol).STATE == pyone.IMAGE_STATES.READY

    clone = alice.image.clone(vol, "vol-copy")
    assert alice.image.info(clone).PERSISTENT == 0 and [clone] == alice.image.info(vol).CLONES.ID
    alice.image.delete(clone)
    with pytest.raises(pyone.OneNoExistsException):
        alice.image.info(clone)

    alice.vm.attachnic(vm_id, {"TEMPLATE": {"NIC": {"NETWORK_ID": net}}})  # XML: the root holds the attributes
    assert alice.vm.info(vm_id).LCM_STATE == LCM.HOTPLUG_NIC
    vm = wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    nic = vm.TEMPLATE["NIC"]
    assert (nic["NIC_ID"], nic["IP"], nic["MAC"]) == ("0", "10.0.0.10", "02:00:0a:00:00:0a")
    alice.vm.action("poweroff", vm_id)
    wait_state(alice, vm_id, VM_STATE.POWEROFF)
    alice.vm.detachnic(vm_id, 0)
    assert alice.vm.info(vm_id).LCM_STATE == LCM.HOTPLUG_NIC_POWEROFF
    vm = wait_state(alice, vm_id, VM_STATE.POWEROFF)
    assert "NIC" not in vm.TEMPLATE and one(sim, "admin").vn.info(net).USED_LEASES == 0

    admin = one(sim, "admin")
    admin.vn.hold(net, 'LEASES=[IP="10.0.0.10"]')
    alice.vm.attachnic(vm_id, f'NIC=[NETWORK_ID="{net}"]')
    assert wait_state(alice, vm_id, VM_STATE.POWEROFF).TEMPLATE["NIC"]["IP"] == "10.0.0.11"
    admin.vn.release(net, 'LEASES=[IP="10.0.0.10"]')
    assert [lease.IP for lease in admin.vn.info(net).AR_POOL.AR[0].LEASES.LEASE] == ["10.0.0.11"]


def test_users_see_only_their_own_unless_oneadmin(sim: OpenNebulaSimulator) -> None:
    _, _, tmpl = seed(sim)
    alice, bob = one(sim), one(sim, "bob")
    mine = alice.template.instantiate(tmpl, "alice-vm", False, "")
    theirs = bob.template.instantiate(tmpl, "bob-vm", False, "")
    for method, args in (("info", (mine,)), ("action", ("terminate", mine)), ("update", (mine, 'X="1"', 1))):
        with pytest.raises(pyone.OneAuthorizationException):
            getattr(bob.vm, method)(*args)
        answer = raw(sim, f"one.vm.{method}", *args, session="bob:bob-pw")
        assert answer[:1] == [False] and answer[2] == 0x0200 and answer[3] == mine
    assert [vm.ID for vm in bob.vmpool.info(-2, -1, -1, -1).VM] == [theirs]
    assert [vm.ID for vm in alice.vmpool.info(-1, -1, -1, -1).VM] == [mine]
    for admin in (one(sim, "admin"), one(sim, "root2")):
        assert [vm.ID for vm in admin.vmpool.info(-2, -1, -1, -1).VM] == [mine, theirs]
        assert [vm.ID for vm in admin.vmpool.info(sim.cloud.users[2].id, -1, -1, -1).VM] == [theirs]
        assert admin.vm.info(mine).UNAME == "alice"
    vol = alice.image.allocate('NAME="private"\nTYPE="DATABLOCK"\nSIZE="10"', 1)
    assert vol not in [i.ID for i in bob.imagepool.info(-2, -1, -1).IMAGE]
    with pytest.raises(pyone.OneAuthorizationException):
        bob.user.info(sim.cloud.users[1].id)
    assert [t.ID for t in bob.templatepool.info(-2, -1, -1).VMTEMPLATE] == [tmpl]  # shared (OTHER_U) by oneadmin
    with pytest.raises(pyone.OneAuthorizationException):
        bob.template.delete(tmpl)


def test_error_answers_have_oneds_shape(sim: OpenNebulaSimulator) -> None:
    bad = raw(sim, "one.vm.info", 0, session="alice:wrong")
    assert bad == [False, "[one.vm.info] User couldn't be authenticated, aborting call.", 0x0100, -1, 0]
    with pytest.raises(pyone.OneAuthenticationException):
        pyone.OneServer(sim.url, session="nobody:x").vmpool.info(-2, -1, -1, -1)
    missing = raw(sim, "one.vm.info", 42)
    assert missing == [False, "[one.vm.info] Error getting virtual machine [42].", 0x0400, 42, 0]
    alice = one(sim)
    for call in (lambda: alice.image.info(7), lambda: alice.vn.info(7), lambda: alice.template.info(7)):
        with pytest.raises(pyone.OneNoExistsException):
            call()
    with pytest.raises(pyone.OneNoExistsException, match="datastore"):
        alice.image.allocate('NAME="x"\nTYPE="DATABLOCK"\nSIZE="1"', 99)
    with pytest.raises(pyone.OneException, match="MEMORY"):
        alice.vm.allocate('CPU="1"')
    vm_id = alice.vm.allocate('CPU="1"\nMEMORY="64"', True)
    with pytest.raises(pyone.OneActionException, match="poweroff"):
        alice.vm.action("poweroff", vm_id)
    with pytest.raises(pyone.OneActionException):
        alice.vm.action("explode", vm_id)
    assert raw(sim, "one.vm.nosuch", 1)[2] == 0x1000
    assert raw(sim, "one.vm.info", "zero")[2] == 0x1000
    with pytest.raises(pyone.OneActionException):
        alice.secgroup.allocate('NAME="x"\nRULE=[PROTOCOL="FTP",RULE_TYPE="inbound"]')


def test_keys_tags_networks_and_security_groups(sim: OpenNebulaSimulator) -> None:
    alice = one(sim)
    me = alice.user.info(-1).ID
    alice.user.update(me, 'SSH_PUBLIC_KEY="ssh-ed25519 AAAA alice"', 1)
    assert alice.user.info(-1).TEMPLATE["SSH_PUBLIC_KEY"] == "ssh-ed25519 AAAA alice"
    vm_id = alice.vm.allocate('CPU="1"\nMEMORY="64"\nCONTEXT=[SSH_PUBLIC_KEY="$USER[SSH_PUBLIC_KEY]",NETWORK="YES"]')
    assert alice.vm.info(vm_id).TEMPLATE["CONTEXT"]["SSH_PUBLIC_KEY"] == "ssh-ed25519 AAAA alice"
    alice.vm.update(vm_id, 'ENV="prod"\nTEAM="a"', 1)
    alice.vm.update(vm_id, 'TEAM="b"', 1)
    assert dict(alice.vm.info(vm_id).USER_TEMPLATE) == {"ENV": "prod", "TEAM": "b"}
    alice.vm.update(vm_id, 'ONLY="this"', 0)
    assert dict(alice.vm.info(vm_id).USER_TEMPLATE) == {"ONLY": "this"}

    net = alice.vn.allocate('NAME="mine"\nVN_MAD="bridge"\nAR=[TYPE="IP4",IP="192.168.5.1",SIZE="2"]', -1)
    assert alice.vn.info(net).AR_POOL.AR[0].IP_END == "192.168.5.2"
    alice.vn.delete(net)
    sg = alice.secgroup.allocate('NAME="ssh"\nDESCRIPTION="ssh in"')
    alice.secgroup.update(sg, 'RULE=[PROTOCOL="TCP",RULE_TYPE="inbound",RANGE="22"]', 1)
    alice.secgroup.update(sg, 'RULE=[PROTOCOL="ALL",RULE_TYPE="outbound"]', 1)
    group = alice.secgroup.info(sg)
    assert group.TEMPLATE["DESCRIPTION"] == "ssh in" and group.TEMPLATE["RULE"]["RULE_TYPE"] == "outbound"
    alice.secgroup.delete(sg)
    with pytest.raises(pyone.OneAuthorizationException):
        alice.secgroup.delete(0)


def test_fault_knob_drops_fails_and_stalls(sim: OpenNebulaSimulator) -> None:
    alice = one(sim)
    sim.faults.set(fail=1.0, methods=("one.vm.allocate",))
    with pytest.raises(pyone.OneInternalException):
        alice.vm.allocate('CPU="1"\nMEMORY="64"')
    assert alice.vmpool.info(-2, -1, -1, -1).VM == []  # failed before running; other methods untouched
    sim.faults.set(drop=1.0, methods=("one.vm.allocate",))
    with pytest.raises(requests.ConnectionError):
        alice.vm.allocate('CPU="1"\nMEMORY="64"\nGW_KEY="once"')
    sim.faults.set()
    assert [vm.USER_TEMPLATE["GW_KEY"] for vm in alice.vmpool.info(-2, -1, -1, -1).VM] == ["once"]  # it ran
    sim.faults.set(stall=1.0, stall_seconds=0.05)
    assert alice.system.version() == "6.10.0"
    sim.faults.set(fail=0.5, seed=7)
    outcomes = []
    for _ in range(40):
        try:
            alice.system.version()
            outcomes.append(True)
        except pyone.OneInternalException:
            outcomes.append(False)
    assert 5 < outcomes.count(False) < 35 and sim.faults.counts == {"drop": 1, "fail": outcomes.count(False) + 1,
                                                                    "stall": 1}  # fmt: skip


def test_template_updates_keep_vectors_and_any_text(sim: OpenNebulaSimulator) -> None:
    """``one.vm.update`` / ``one.image.update`` take XML whose vector values hold any text (what tags need): merge
    (1) replaces the attributes it names and keeps the others, replace (0) keeps only what it is given."""
    alice = one(sim)
    vm_id = alice.vm.allocate('CPU="1"\nMEMORY="64"\nKEEP="me"')
    text = 'é ☃ a b=c: <x> & "q"'
    body = f"<TEMPLATE><T_A><KEY>Env</KEY><VALUE>{xml_escape(text)}</VALUE></T_A><T_B><KEY>e</KEY></T_B></TEMPLATE>"
    assert raw(sim, "one.vm.update", vm_id, body, 1) == [True, vm_id, 0]
    user = checked(sim, "one.vm.info", vm_id).USER_TEMPLATE
    assert (user["KEEP"], user["T_A"], user["T_B"]) == ("me", {"KEY": "Env", "VALUE": text}, {"KEY": "e"})
    alice.vm.update(vm_id, "<TEMPLATE><KEEP>me</KEEP></TEMPLATE>", 0)
    assert dict(alice.vm.info(vm_id).USER_TEMPLATE) == {"KEEP": "me"}
    img = alice.image.allocate('NAME="d"\nTYPE="DATABLOCK"\nSIZE="10"\nDESCRIPTION="x"', 1)
    alice.image.update(img, body, 1)
    image = checked(sim, "one.image.info", img)
    assert image.TEMPLATE["DESCRIPTION"] == "x" and image.TEMPLATE["T_A"]["VALUE"] == text
    with pytest.raises(pyone.OneAuthorizationException):
        one(sim, "bob").image.update(img, body, 1)


def test_disk_saveas_makes_a_locked_image_while_the_vm_saves(sim: OpenNebulaSimulator) -> None:
    """``one.vm.disksaveas(vm, disk, name, type, snapshot)``: the VM passes HOTPLUG_SAVEAS (from POWEROFF,
    HOTPLUG_SAVEAS_POWEROFF) and comes back; the new image is the user's, LOCKED then READY, and names its source."""
    _, img, tmpl = seed(sim)
    alice = one(sim)
    vm_id = alice.template.instantiate(tmpl, "src", False, "")
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    saved = alice.vm.disksaveas(vm_id, 0, "golden", "", -1)
    assert alice.vm.info(vm_id).LCM_STATE == LCM.HOTPLUG_SAVEAS
    image = checked(sim, "one.image.info", saved)
    assert (image.NAME, image.UNAME, image.TYPE, image.PERSISTENT) == ("golden", "alice", pyone.IMAGE_TYPES.OS, 0)
    assert image.STATE == pyone.IMAGE_STATES.LOCKED and image.SIZE == 2048
    assert (image.TEMPLATE["SAVED_VM_ID"], image.TEMPLATE["SAVED_IMAGE_ID"]) == (str(vm_id), str(img))
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    wait_for(lambda: alice.image.info(saved).STATE, lambda s: s == pyone.IMAGE_STATES.READY, "image READY")
    with pytest.raises(pyone.OneException, match="already taken"):
        alice.vm.disksaveas(vm_id, 0, "golden", "", -1)
    for disk, snap in ((7, -1), (0, 3)):
        with pytest.raises(pyone.OneActionException):
            alice.vm.disksaveas(vm_id, disk, "other", "", snap)
    with pytest.raises(pyone.OneAuthorizationException):
        one(sim, "bob").vm.disksaveas(vm_id, 0, "theirs", "", -1)
    alice.vm.action("poweroff", vm_id)
    wait_state(alice, vm_id, VM_STATE.POWEROFF)
    cold = alice.vm.disksaveas(vm_id, 0, "cold", "OS", -1)
    assert alice.vm.info(vm_id).LCM_STATE == LCM.HOTPLUG_SAVEAS_POWEROFF
    wait_state(alice, vm_id, VM_STATE.POWEROFF)

    assert raw(sim, "one.image.rename", cold, "warm") == [True, cold, 0]
    assert alice.image.info(cold).NAME == "warm"
    for name in ("golden", ""):
        answer = raw(sim, "one.image.rename", cold, name)
        assert answer[:1] == [False] and answer[2] == 0x0800 and answer[3] == cold
    with pytest.raises(pyone.OneAuthorizationException):
        one(sim, "bob").image.rename(cold, "mine")
    alice.vm.action("terminate-hard", vm_id)
    wait_state(alice, vm_id, VM_STATE.DONE)
    with pytest.raises(pyone.OneActionException, match="wrong state"):
        alice.vm.disksaveas(vm_id, 0, "late", "", -1)


def test_resize_and_rename(sim: OpenNebulaSimulator) -> None:
    """``one.vm.resize(vm, template, enforce)`` changes CPU/VCPU/MEMORY of a VM that is off (an absent or zero
    value stays), refusing a running one with ACTION; ``one.vm.rename`` and ``one.vn.rename`` / ``one.vn.update``."""
    net, _, tmpl = seed(sim)
    alice = one(sim)
    vm_id = alice.template.instantiate(tmpl, "small", False, "")
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    running = raw(sim, "one.vm.resize", vm_id, 'CPU="2"\nMEMORY="1024"', True)
    assert running[:1] == [False] and running[2:4] == [0x0800, vm_id] and "state ACTIVE" in running[1]
    alice.vm.action("poweroff", vm_id)
    wait_state(alice, vm_id, VM_STATE.POWEROFF)
    assert raw(sim, "one.vm.resize", vm_id, "<TEMPLATE><MEMORY>1024</MEMORY><VCPU>0</VCPU></TEMPLATE>", True)[0]
    body = checked(sim, "one.vm.info", vm_id).TEMPLATE
    assert (body["CPU"], body["VCPU"], body["MEMORY"]) == ("1", "2", "1024")
    alice.vm.resize(vm_id, 'CPU="2.5"\nVCPU="4"', False)
    body = alice.vm.info(vm_id).TEMPLATE
    assert (body["CPU"], body["VCPU"], body["MEMORY"]) == ("2.5", "4", "1024")
    with pytest.raises(pyone.OneActionException):
        alice.vm.resize(vm_id, 'MEMORY="lots"', True)
    with pytest.raises(pyone.OneAuthorizationException):
        one(sim, "bob").vm.resize(vm_id, 'MEMORY="64"', True)
    assert raw(sim, "one.vm.rename", vm_id, "big") == [True, vm_id, 0] and alice.vm.info(vm_id).NAME == "big"
    assert raw(sim, "one.vm.rename", vm_id, " ")[2] == 0x0800

    admin = one(sim, "admin")
    other = admin.vn.allocate(
        'NAME="other"\nVN_MAD="bridge"\nDESCRIPTION="old"\nAR=[TYPE="IP4",IP="10.9.0.1",SIZE="4"]'
    )
    admin.vn.rename(net, "renamed")
    admin.vn.update(net, 'DESCRIPTION="lab"\nAR=[TYPE="IP4",IP="1.1.1.1",SIZE="1"]', 1)
    vnet = checked(sim, "one.vn.info", net, session=sim.admin_session)
    assert (vnet.NAME, vnet.TEMPLATE["DESCRIPTION"], len(vnet.AR_POOL.AR)) == ("renamed", "lab", 1)
    assert raw(sim, "one.vn.rename", net, "other", session=sim.admin_session)[2] == 0x0800  # taken by its owner
    for template in (
        'NAME="other"\nVN_MAD="bridge"',
        'NAME="x"\nVN_MAD="bridge"\nAR=[TYPE="IP4",IP="10.0.0.300",SIZE="2"]',
    ):
        answer = raw(sim, "one.vn.allocate", template, -1, session=sim.admin_session)  # name taken; no such IP
        assert answer[:1] == [False] and answer[2] == 0x4000, answer
    admin.vn.update(other, 'BRIDGE="br9"', 0)
    assert "DESCRIPTION" not in admin.vn.info(other).TEMPLATE
    with pytest.raises(pyone.OneAuthorizationException):
        alice.vn.rename(net, "mine")


def test_pool_info_takes_id_ranges_and_pages(sim: OpenNebulaSimulator) -> None:
    """Pool ``info`` (start, end): end >= -1 is a range of ids (-1 open), end < -1 makes start an offset and -end a
    page size, counted in what the filters (owner flag, VM state) keep, in id order."""
    alice = one(sim)
    vms = [alice.vm.allocate(f'NAME="p{i}"\nCPU="1"\nMEMORY="64"') for i in range(5)]
    one(sim, "bob").vm.allocate('CPU="1"\nMEMORY="64"')  # another user's: filtered out before paging
    alice.vm.action("terminate-hard", vms[1])
    wait_state(alice, vms[1], VM_STATE.DONE)

    def ids(method: str, *args: int) -> list[int]:
        if method == "one.vmpool.infoextended":  # whole VM bodies: vm_pool_extended.xsd, checked per VM
            pool = parseString(raw(sim, method, *args)[1].encode())
        else:
            pool = checked(sim, method, *args)
        return [item.ID for item in getattr(pool, {"one.imagepool.info": "IMAGE"}.get(method, "VM"))]

    assert ids("one.vmpool.info", -3, vms[1], vms[3], -2) == vms[1:4]
    assert ids("one.vmpool.info", -3, vms[3], -1, -2) == vms[3:]
    assert ids("one.vmpool.info", -2, 0, -2, -2) == vms[:2] and ids("one.vmpool.info", -2, 4, -2, -2) == [vms[4]]
    assert ids("one.vmpool.info", -3, 0, -2, -1) == [vms[0], vms[2]]  # DONE left out before paging
    assert ids("one.vmpool.infoextended", -3, 2, -2, -1) == [vms[3], vms[4]]
    assert ids("one.vmpool.info", -3, 9, -3, -2) == []
    images = [alice.image.allocate(f'NAME="i{i}"\nTYPE="DATABLOCK"\nSIZE="1"', 1) for i in range(3)]
    assert ids("one.imagepool.info", -3, 1, -1) == images[1:] and ids("one.imagepool.info", -3, 1, -2) == images[1:]
    answer = raw(sim, "one.vmpool.info", -3, -1, -2, -2)
    assert answer[:1] == [False] and answer[2] == 0x1000


def test_updateconf_changes_the_configuration_of_a_vm_that_is_off(sim: OpenNebulaSimulator) -> None:
    """``one.vm.updateconf(vm, template, type)``: only configuration attributes (OS, CONTEXT, ...) change; merge (1)
    replaces the ones given, replace (0) drops the others; CONTEXT keeps its disk; ETH* values are refused."""
    alice = one(sim)
    alice.user.update(alice.user.info(-1).ID, 'SSH_PUBLIC_KEY="ssh-ed25519 AAAA k"', 1)
    vm_id = alice.vm.allocate('CPU="1"\nMEMORY="64"\nOS=[ARCH="x86_64"]\nCONTEXT=[NETWORK="YES",USER_DATA="a"]')
    wait_state(alice, vm_id, VM_STATE.ACTIVE, LCM.RUNNING)
    context = '<TEMPLATE><CONTEXT><USER_DATA>b</USER_DATA><SSH_PUBLIC_KEY>$USER[SSH_PUBLIC_KEY]</SSH_PUBLIC_KEY>' \
        "</CONTEXT><MEMORY>9999</MEMORY></TEMPLATE>"  # fmt: skip
    answer = raw(sim, "one.vm.updateconf", vm_id, context, 1)
    assert answer[:1] == [False] and answer[2:4] == [0x0800, vm_id]  # running
    alice.vm.action("poweroff", vm_id)
    wait_state(alice, vm_id, VM_STATE.POWEROFF)
    assert raw(sim, "one.vm.updateconf", vm_id, context, 1) == [True, vm_id, 0]
    body = checked(sim, "one.vm.info", vm_id).TEMPLATE
    assert body["CONTEXT"] == {
        "DISK_ID": "0",
        "SSH_PUBLIC_KEY": "ssh-ed25519 AAAA k",
        "TARGET": "hda",
        "USER_DATA": "b",
    }
    assert (body["MEMORY"], body["OS"]) == ("64", {"ARCH": "x86_64"})  # not a configuration attribute; kept
    alice.vm.updateconf(vm_id, 'CONTEXT=[USER_DATA="c"]', 0)
    body = alice.vm.info(vm_id).TEMPLATE
    assert "OS" not in body and body["CONTEXT"]["USER_DATA"] == "c"
    with pytest.raises(pyone.OneActionException, match="ETH"):
        alice.vm.updateconf(vm_id, 'CONTEXT=[ETH0_IP="1.2.3.4"]', 1)
    with pytest.raises(pyone.OneAuthorizationException):
        one(sim, "bob").vm.updateconf(vm_id, 'CONTEXT=[USER_DATA="x"]', 1)
