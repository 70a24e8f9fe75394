"""The simulator's objects, their XML (element order and types of OpenNebula's ``share/doc/xsd/*.xsd``) and the
VM state machine (numbers as in oned's ``VirtualMachine.h``), advanced lazily from each VM's timed schedule.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from . import template as tpl

# VM STATE values (VirtualMachine::VmState).
INIT, PENDING, HOLD, ACTIVE, STOPPED, SUSPENDED, DONE, FAILED, POWEROFF, UNDEPLOYED = range(10)
STATE_NAMES = ["INIT", "PENDING", "HOLD", "ACTIVE", "STOPPED", "SUSPENDED", "DONE", "FAILED", "POWEROFF", "UNDEPLOYED"]

#: LCM_STATE values (VirtualMachine::LcmState) the simulator passes through.
LCM = {
    "LCM_INIT": 0,
    "PROLOG": 1,
    "BOOT": 2,
    "RUNNING": 3,
    "SAVE_STOP": 5,
    "SAVE_SUSPEND": 6,
    "PROLOG_RESUME": 9,
    "EPILOG_STOP": 10,
    "EPILOG": 11,
    "SHUTDOWN": 12,
    "HOTPLUG": 17,
    "SHUTDOWN_POWEROFF": 18,
    "BOOT_POWEROFF": 20,
    "BOOT_SUSPENDED": 21,
    "BOOT_STOPPED": 22,
    "HOTPLUG_NIC": 25,
    "HOTPLUG_SAVEAS": 26,
    "HOTPLUG_SAVEAS_POWEROFF": 27,
    "HOTPLUG_SAVEAS_SUSPENDED": 28,
    "HOTPLUG_PROLOG_POWEROFF": 33,
    "HOTPLUG_EPILOG_POWEROFF": 34,
    "DISK_SNAPSHOT_POWEROFF": 51,
    "DISK_SNAPSHOT_DELETE_POWEROFF": 53,
    "DISK_SNAPSHOT": 57,
    "DISK_SNAPSHOT_DELETE": 59,
    "HOTPLUG_NIC_POWEROFF": 65,
}

# Image STATE and TYPE values (Image::ImageState, Image::ImageType).
IMG_INIT, IMG_READY, IMG_USED, IMG_DISABLED, IMG_LOCKED, IMG_ERROR, IMG_CLONE, IMG_DELETE, IMG_USED_PERS = range(9)
IMAGE_TYPES = {"OS": 0, "CDROM": 1, "DATABLOCK": 2, "KERNEL": 3, "RAMDISK": 4, "CONTEXT": 5}

#: Attributes oned keeps in a VM's TEMPLATE (vm.xsd); any other attribute of an allocate goes to USER_TEMPLATE.
VM_TEMPLATE_ATTRS = frozenset(
    [
        "AUTOMATIC_DS_REQUIREMENTS",
        "AUTOMATIC_NIC_REQUIREMENTS",
        "AUTOMATIC_REQUIREMENTS",
        "CLONING_TEMPLATE_ID",
        "CONTEXT",
        "CPU",
        "CPU_COST",
        "DISK",
        "DISK_COST",
        "EMULATOR",
        "FEATURES",
        "HYPERV_OPTIONS",
        "GRAPHICS",
        "VIDEO",
        "INPUT",
        "MEMORY",
        "MEMORY_COST",
        "MEMORY_MAX",
        "MEMORY_SLOTS",
        "MEMORY_RESIZE_MODE",
        "NIC",
        "NIC_ALIAS",
        "NIC_DEFAULT",
        "NUMA_NODE",
        "OS",
        "PCI",
        "QEMU_GA_EXEC",
        "RAW",
        "SECURITY_GROUP_RULE",
        "SNAPSHOT",
        "SPICE_OPTIONS",
        "SUBMIT_ON_HOLD",
        "TEMPLATE_ID",
        "TM_MAD_SYSTEM",
        "TOPOLOGY",
        "TPM",
        "MEMORY_ENCRYPTION",
        "VCPU",
        "VCPU_MAX",
        "VMGROUP",
        "VMID",
        "VROUTER_ID",
    ]
)


@dataclass
class Timings:
    """Seconds each transient VM state lasts (oned's drivers take minutes; tests want fractions of a second)."""

    pending: float = 0.05
    prolog: float = 0.05
    boot: float = 0.05
    shutdown: float = 0.05
    epilog: float = 0.05
    save: float = 0.05
    hotplug: float = 0.05
    image: float = 0.05


@dataclass
class User:
    id: int
    name: str
    password: str
    gid: int
    gname: str
    template: tpl.Template = field(default_factory=dict)


@dataclass
class Owned:
    """What every pool object has: id, owner, group, name, 9 permission bits (OWNER_U..OTHER_A), template."""

    id: int
    uid: int
    gid: int
    uname: str
    gname: str
    name: str
    template: tpl.Template
    perms: list[int] = field(default_factory=lambda: [1, 1, 0, 0, 0, 0, 0, 0, 0])
    regtime: int = field(default_factory=lambda: int(time.time()))


@dataclass
class VmTemplate(Owned):
    pass


@dataclass
class SecurityGroup(Owned):
    pass


@dataclass
class Image(Owned):
    type: int = 2
    persistent: int = 1
    size: int = 0
    state: int = IMG_LOCKED
    ready_at: float = 0.0
    vms: list[int] = field(default_factory=list)
    clones: list[int] = field(default_factory=list)
    datastore_id: int = 1

    def advance(self, now: float) -> None:
        if self.state == IMG_LOCKED and now >= self.ready_at:
            self.state = IMG_READY


@dataclass
class AddressRange:
    ar_id: int
    ip: str
    size: int
    leases: dict[int, int] = field(default_factory=dict)  # index in the range -> VM id (-1 held)

    def address(self, index: int) -> tuple[str, str]:
        parts = [int(p) for p in self.ip.split(".")]
        value = (parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]) + index
        quad = [(value >> shift) & 255 for shift in (24, 16, 8, 0)]
        return ".".join(map(str, quad)), "02:00:" + ":".join(f"{b:02x}" for b in quad)


@dataclass
class VNet(Owned):
    bridge: str = "br0"
    vn_mad: str = "bridge"
    ars: list[AddressRange] = field(default_factory=list)

    def used(self) -> int:
        return sum(len(ar.leases) for ar in self.ars)


@dataclass
class Vm(Owned):
    state: int = PENDING
    lcm: int = 0
    prev_state: int = PENDING
    prev_lcm: int = 0
    stime: int = field(default_factory=lambda: int(time.time()))
    etime: int = 0
    user_template: tpl.Template = field(default_factory=dict)
    #: (deadline, STATE, LCM_STATE) steps still to come; the last one is where the VM settles.
    schedule: list[tuple[float, int, int]] = field(default_factory=list)
    deployed_at: int = 0
    snapshots: dict[int, dict[int, tuple[str, int]]] = field(default_factory=dict)  # disk -> id -> (name, date)

    def set(self, state: int, lcm: int) -> None:
        self.prev_state, self.prev_lcm = self.state, self.lcm
        self.state, self.lcm = state, lcm
        if state == ACTIVE and not self.deployed_at:
            self.deployed_at = int(time.time())
        if state == DONE:
            self.etime = int(time.time())

    def plan(self, now: float, steps: list[tuple[float, int, int]]) -> None:
        """Go through ``steps`` (duration, STATE, LCM_STATE): the first now, each next after the previous' duration."""
        self.schedule = []
        at = now
        for index, (duration, state, lcm) in enumerate(steps):
            if index == 0:
                self.set(state, lcm)
            else:
                self.schedule.append((at, state, lcm))
            at += duration

    def advance(self, now: float) -> list[tuple[int, int]]:
        """Apply the steps whose time has come; returns the states entered (for side effects such as DONE)."""
        entered = []
        while self.schedule and self.schedule[0][0] <= now:
            _, state, lcm = self.schedule.pop(0)
            self.set(state, lcm)
            entered.append((state, lcm))
        return entered


# ---------------------------------------------------------------------------------------------------- XML bodies


def _sub(parent: ET.Element, tag: str, value: object = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if value is not None:
        element.text = str(value)
    return element


def _ids(parent: ET.Element, tag: str, ids: list[int]) -> None:
    element = _sub(parent, tag)
    for value in ids:
        _sub(element, "ID", value)


def _head(root: ET.Element, obj: Owned, *, uid_first: bool = True) -> None:
    for tag, value in (("ID", obj.id), ("UID", obj.uid), ("GID", obj.gid)):
        _sub(root, tag, value)
    _sub(root, "UNAME", obj.uname)
    _sub(root, "GNAME", obj.gname)
    _sub(root, "NAME", obj.name)


def _permissions(root: ET.Element, obj: Owned) -> None:
    element = _sub(root, "PERMISSIONS")
    names = ["OWNER_U", "OWNER_M", "OWNER_A", "GROUP_U", "GROUP_M", "GROUP_A", "OTHER_U", "OTHER_M", "OTHER_A"]
    for name, bit in zip(names, obj.perms, strict=True):
        _sub(element, name, bit)


def vm_element(vm: Vm) -> ET.Element:
    root = ET.Element("VM")
    _head(root, vm)
    _permissions(root, vm)
    now = int(time.time())
    for tag, value in (
        ("LAST_POLL", now if vm.state == ACTIVE else 0),
        ("STATE", vm.state),
        ("LCM_STATE", vm.lcm),
        ("PREV_STATE", vm.prev_state),
        ("PREV_LCM_STATE", vm.prev_lcm),
        ("RESCHED", 0),
        ("STIME", vm.stime),
        ("ETIME", vm.etime),
        ("DEPLOY_ID", f"one-{vm.id}" if vm.deployed_at else ""),
    ):
        _sub(root, tag, value)
    monitoring = _sub(root, "MONITORING")
    if vm.state == ACTIVE:
        _sub(monitoring, "CPU", "1.0")
        _sub(monitoring, "MEMORY", tpl.single(vm.template, "MEMORY", "0"))
        _sub(monitoring, "TIMESTAMP", now)
    _sub(root, "SCHED_ACTIONS")
    root.append(tpl.to_element(vm.template))
    root.append(tpl.to_element(vm.user_template, "USER_TEMPLATE"))
    history = _sub(root, "HISTORY_RECORDS")
    if vm.deployed_at:
        record = _sub(history, "HISTORY")
        for tag, value in (
            ("OID", vm.id), ("SEQ", 0), ("HOSTNAME", "sim-host0"), ("HID", 0), ("CID", 0),
            ("STIME", vm.deployed_at), ("ETIME", vm.etime), ("VM_MAD", "kvm"), ("TM_MAD", "ssh"), ("DS_ID", 0),
            ("PLAN_ID", -1), ("ACTION_ID", -1), ("PSTIME", vm.deployed_at), ("PETIME", vm.deployed_at),
            ("RSTIME", vm.deployed_at), ("RETIME", vm.etime), ("ESTIME", 0), ("EETIME", 0), ("ACTION", 0),
            ("UID", -1), ("GID", -1), ("REQUEST_ID", "-1"),
        ):  # fmt: skip
            _sub(record, tag, value)
    for disk_id in sorted(vm.snapshots):
        snaps = vm.snapshots[disk_id]
        element = _sub(root, "SNAPSHOTS")
        _sub(element, "ALLOW_ORPHANS", "YES")
        _sub(element, "CURRENT_BASE", -1)
        _sub(element, "DISK_ID", disk_id)
        _sub(element, "NEXT_SNAPSHOT", max(snaps, default=-1) + 1)
        for snap_id in sorted(snaps):
            name, date = snaps[snap_id]
            snap = _sub(element, "SNAPSHOT")
            _sub(snap, "DATE", date)
            _sub(snap, "ID", snap_id)
            _sub(snap, "NAME", name)
            _sub(snap, "PARENT", -1)
            _sub(snap, "SIZE", 0)
    backups = _sub(root, "BACKUPS")
    _sub(backups, "BACKUP_CONFIG")
    _sub(backups, "BACKUP_IDS")
    return root


def vm_short_element(vm: Vm) -> ET.Element:
    """A VM as ``one.vmpool.info`` lists it (vm_pool.xsd): fewer elements, a TEMPLATE of CPU/MEMORY/VCPU/DISK/NIC."""
    root = ET.Element("VM")
    _head(root, vm)
    for tag, value in (
        ("LAST_POLL", int(time.time()) if vm.state == ACTIVE else 0), ("STATE", vm.state), ("LCM_STATE", vm.lcm),
        ("RESCHED", 0), ("STIME", vm.stime), ("ETIME", vm.etime),
        ("DEPLOY_ID", f"one-{vm.id}" if vm.deployed_at else ""),
    ):  # fmt: skip
        _sub(root, tag, value)
    short = {k: v for k, v in vm.template.items() if k in ("CPU", "MEMORY", "VCPU", "DISK", "NIC", "GRAPHICS")}
    template = tpl.to_element({})
    for name in ("CPU", "MEMORY", "VCPU", "DISK", "NIC", "GRAPHICS"):  # the schema's order, not sorted
        template.extend(list(tpl.to_element({name: short[name]})) if name in short else [])
    root.append(template)
    _sub(root, "MONITORING")
    root.append(tpl.to_element(vm.user_template, "USER_TEMPLATE"))
    history = _sub(root, "HISTORY_RECORDS")
    if vm.deployed_at:
        record = _sub(history, "HISTORY")
        for tag, value in (
            ("OID", vm.id), ("SEQ", 0), ("HOSTNAME", "sim-host0"), ("HID", 0), ("CID", 0), ("DS_ID", 0),
            ("VM_MAD", "kvm"), ("TM_MAD", "ssh"), ("ACTION", 0),
        ):  # fmt: skip
            _sub(record, tag, value)
    return root


def image_element(image: Image) -> ET.Element:
    root = ET.Element("IMAGE")
    _head(root, image)
    _permissions(root, image)
    for tag, value in (
        ("TYPE", image.type), ("DISK_TYPE", 0), ("PERSISTENT", image.persistent), ("REGTIME", image.regtime),
        ("MODTIME", image.regtime), ("SOURCE", f"/var/lib/one/datastores/1/{image.id:032x}"),
        ("PATH", tpl.single(image.template, "PATH")), ("FORMAT", "raw"), ("FS", ""), ("SIZE", image.size),
        ("STATE", image.state), ("PREV_STATE", IMG_INIT), ("RUNNING_VMS", len(image.vms)), ("CLONING_OPS", 0),
        ("CLONING_ID", -1), ("TARGET_SNAPSHOT", -1), ("DATASTORE_ID", image.datastore_id), ("DATASTORE", "default"),
    ):  # fmt: skip
        _sub(root, tag, value)
    _ids(root, "VMS", image.vms)
    _ids(root, "CLONES", image.clones)
    _ids(root, "APP_CLONES", [])
    root.append(tpl.to_element(image.template))
    snapshots = _sub(root, "SNAPSHOTS")
    _sub(snapshots, "ALLOW_ORPHANS", "NO")
    _sub(snapshots, "CURRENT_BASE", -1)
    _sub(snapshots, "NEXT_SNAPSHOT", "0")
    _sub(root, "BACKUP_INCREMENTS")
    return root


def vnet_element(vnet: VNet, *, leases: bool) -> ET.Element:
    root = ET.Element("VNET")
    _head(root, vnet)
    _permissions(root, vnet)
    _ids(root, "CLUSTERS", [0])
    for tag, value in (
        ("BRIDGE", vnet.bridge), ("BRIDGE_TYPE", "linux"), ("STATE", 1), ("PREV_STATE", 0),
        ("PARENT_NETWORK_ID", ""), ("TEMPLATE_ID", "-1"), ("VN_MAD", vnet.vn_mad), ("PHYDEV", ""),
        ("VLAN_ID", ""), ("OUTER_VLAN_ID", ""), ("VLAN_ID_AUTOMATIC", "0"), ("OUTER_VLAN_ID_AUTOMATIC", "0"),
        ("USED_LEASES", vnet.used()),
    ):  # fmt: skip
        _sub(root, tag, value)
    for tag in ("VROUTERS", "UPDATED_VMS", "OUTDATED_VMS", "UPDATING_VMS", "ERROR_VMS"):
        _sub(root, tag)
    root.append(tpl.to_element(vnet.template))
    pool = _sub(root, "AR_POOL")
    for ar in vnet.ars:
        element = _sub(pool, "AR")
        first_ip, first_mac = ar.address(0)
        last_ip, last_mac = ar.address(ar.size - 1)
        head = (("AR_ID", ar.ar_id), ("IP", first_ip), ("MAC", first_mac), ("NEXT_INDEX", len(ar.leases)),
                ("SIZE", ar.size), ("TYPE", "IP4"))  # fmt: skip
        # vnet_pool.xsd's AR stops at VN_MAD; vnet.xsd's goes on with the range's end, use and leases.
        tail = (("MAC_END", last_mac), ("IP_END", last_ip), ("USED_LEASES", len(ar.leases))) if leases else ()
        for tag, value in (*head, *tail):
            _sub(element, tag, value)
        if leases:
            element_leases = _sub(element, "LEASES")
            for index in sorted(ar.leases):
                lease = _sub(element_leases, "LEASE")
                ip, mac = ar.address(index)
                _sub(lease, "IP", ip)
                _sub(lease, "MAC", mac)
                _sub(lease, "VM", ar.leases[index])
    return root


def simple_element(tag: str, obj: Owned) -> ET.Element:
    """VMTEMPLATE and SECURITY_GROUP: head, permissions, then what each schema adds."""
    root = ET.Element(tag)
    _head(root, obj)
    _permissions(root, obj)
    if tag == "VMTEMPLATE":
        _sub(root, "REGTIME", obj.regtime)
    else:
        for ids in ("UPDATED_VMS", "OUTDATED_VMS", "UPDATING_VMS", "ERROR_VMS"):
            _sub(root, ids)
    root.append(tpl.to_element(obj.template))
    return root


def user_element(user: User) -> ET.Element:
    root = ET.Element("USER")
    _sub(root, "ID", user.id)
    _sub(root, "GID", user.gid)
    _ids(root, "GROUPS", [user.gid])
    _sub(root, "GNAME", user.gname)
    _sub(root, "NAME", user.name)
    _sub(root, "PASSWORD", "*")  # oned keeps a hash; never echo the secret
    _sub(root, "AUTH_DRIVER", "core")
    _sub(root, "ENABLED", 1)
    root.append(tpl.to_element(user.template))
    _sub(root, "DEFAULT_USER_QUOTAS")
    return root


def pool(tag: str, elements: list[ET.Element]) -> str:
    root = ET.Element(tag)
    root.extend(elements)
    return ET.tostring(root, encoding="unicode")


def body(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")
