"""The ``one.*`` methods, each with oned's argument list after the session (XML-RPC reference), as one table."""

from __future__ import annotations

import time
from typing import Any

from . import model as m
from . import template as tpl
from .cloud import (
    ACTION,
    ALLOCATE,
    AUTHORIZATION,
    NO_EXISTS,
    VERSION,
    Cloud,
    OneError,
    parse_template,
    ssh_key_substitution,
)

#: vm.action name -> (STATE, LCM_STATE name) it is allowed from (None: any LCM) -> steps (timing, STATE, LCM).
Steps = list[tuple[str, int, str]]
_TO_RUNNING: Steps = [("prolog", m.ACTIVE, "PROLOG"), ("boot", m.ACTIVE, "BOOT"), ("", m.ACTIVE, "RUNNING")]
_PENDING: Steps = [("pending", m.PENDING, "LCM_INIT"), *_TO_RUNNING]
_TERMINATE_ACTIVE: Steps = [
    ("shutdown", m.ACTIVE, "SHUTDOWN"),
    ("epilog", m.ACTIVE, "EPILOG"),
    ("", m.DONE, "LCM_INIT"),
]
_TERMINATE_STOPPED: Steps = [("epilog", m.ACTIVE, "EPILOG"), ("", m.DONE, "LCM_INIT")]
_DONE: Steps = [("", m.DONE, "LCM_INIT")]
_RUNNING = (m.ACTIVE, 3)
ACTIONS: dict[str, dict[tuple[int, int | None], Steps]] = {
    "terminate": {_RUNNING: _TERMINATE_ACTIVE, (m.POWEROFF, None): _TERMINATE_STOPPED,
                  (m.SUSPENDED, None): _TERMINATE_STOPPED, (m.STOPPED, None): _DONE, (m.UNDEPLOYED, None): _DONE,
                  (m.PENDING, None): _DONE, (m.HOLD, None): _DONE},
    "terminate-hard": {_RUNNING: _TERMINATE_ACTIVE, (m.POWEROFF, None): _TERMINATE_STOPPED,
                       (m.SUSPENDED, None): _TERMINATE_STOPPED, (m.STOPPED, None): _DONE,
                       (m.UNDEPLOYED, None): _DONE, (m.PENDING, None): _DONE, (m.HOLD, None): _DONE},
    "poweroff": {_RUNNING: [("shutdown", m.ACTIVE, "SHUTDOWN_POWEROFF"), ("", m.POWEROFF, "LCM_INIT")]},
    "poweroff-hard": {_RUNNING: [("shutdown", m.ACTIVE, "SHUTDOWN_POWEROFF"), ("", m.POWEROFF, "LCM_INIT")]},
    "resume": {(m.POWEROFF, None): [("boot", m.ACTIVE, "BOOT_POWEROFF"), ("", m.ACTIVE, "RUNNING")],
               (m.SUSPENDED, None): [("boot", m.ACTIVE, "BOOT_SUSPENDED"), ("", m.ACTIVE, "RUNNING")],
               (m.STOPPED, None): [("pending", m.PENDING, "LCM_INIT"), ("prolog", m.ACTIVE, "PROLOG_RESUME"),
                                   ("boot", m.ACTIVE, "BOOT_STOPPED"), ("", m.ACTIVE, "RUNNING")],
               (m.UNDEPLOYED, None): _PENDING},
    "reboot": {_RUNNING: [("", m.ACTIVE, "RUNNING")]},
    "reboot-hard": {_RUNNING: [("", m.ACTIVE, "RUNNING")]},
    "suspend": {_RUNNING: [("save", m.ACTIVE, "SAVE_SUSPEND"), ("", m.SUSPENDED, "LCM_INIT")]},
    "stop": {_RUNNING: [("save", m.ACTIVE, "SAVE_STOP"), ("epilog", m.ACTIVE, "EPILOG_STOP"),
                        ("", m.STOPPED, "LCM_INIT")],
             (m.SUSPENDED, None): [("epilog", m.ACTIVE, "EPILOG_STOP"), ("", m.STOPPED, "LCM_INIT")]},
    "hold": {(m.PENDING, None): [("", m.HOLD, "LCM_INIT")]},
    "release": {(m.HOLD, None): _PENDING},
}  # fmt: skip


def _allowed(vm: m.Vm, action: str) -> Steps | None:
    table = ACTIONS[action]
    return table.get((vm.state, vm.lcm)) or table.get((vm.state, None))


def _pool_xml(cloud: Cloud, kind: str, tag: str, render: Any, user: m.User, flag: int, start: int, end: int) -> str:
    return m.pool(tag, [render(obj) for obj in cloud.visible(kind, user, flag, start, end)])


# ---------------------------------------------------------------------------------------------- system, user


def system_version(cloud: Cloud, user: m.User) -> str:
    return VERSION


def user_info(cloud: Cloud, user: m.User, uid: int = -1, decrypt: bool = False) -> str:
    target = user if uid == -1 else cloud.users.get(uid)
    if target is None:
        raise OneError(NO_EXISTS, f"[one.user.info] Error getting user [{uid}].", uid)
    if target.id != user.id and not cloud.admin(user):
        raise OneError(AUTHORIZATION, f"[one.user.info] User [{user.id}] : Not authorized to perform USE USER [{uid}].")
    return m.body(m.user_element(target))


def user_update(cloud: Cloud, user: m.User, uid: int, text: str, kind: int = 0) -> int:
    target = cloud.users.get(uid)
    if target is None:
        raise OneError(NO_EXISTS, f"[one.user.update] Error getting user [{uid}].", uid)
    if target.id != user.id and not cloud.admin(user):
        raise OneError(AUTHORIZATION, f"[one.user.update] User [{user.id}] : Not authorized to perform MANAGE USER.")
    new = parse_template(text, "one.user.update")
    target.template = tpl.merge(target.template, new) if kind == 1 else new
    return uid


def user_allocate(cloud: Cloud, user: m.User, name: str, password: str, driver: str = "", groups: Any = ()) -> int:
    if not cloud.admin(user):
        raise OneError(AUTHORIZATION, f"[one.user.allocate] User [{user.id}] : Not authorized to perform CREATE USER.")
    if any(existing.name == name for existing in cloud.users.values()):
        raise OneError(ALLOCATE, "[one.user.allocate] Error allocating a new user. NAME is already taken by USER.")
    gid = next(iter(groups)) if groups else 1
    uid = cloud.next_ids["user"]
    cloud.next_ids["user"] += 1
    cloud.users[uid] = m.User(uid, name, password, gid, cloud.groups.get(gid, "users"))
    return uid


# ---------------------------------------------------------------------------------------------- VMs


def vmpool_info(cloud: Cloud, user: m.User, flag: int = -2, start: int = -1, end: int = -1, state: int = -1,
                query: str = "") -> str:  # fmt: skip
    """The pool's short VM bodies (vm_pool.xsd); ``infoextended`` gives whole ones."""
    return m.pool("VM_POOL", [m.vm_short_element(vm) for vm in _vms(cloud, user, flag, start, end, state)])


def vmpool_infoextended(cloud: Cloud, user: m.User, flag: int = -2, start: int = -1, end: int = -1,
                        state: int = -1, query: str = "") -> str:  # fmt: skip
    return m.pool("VM_POOL", [m.vm_element(vm) for vm in _vms(cloud, user, flag, start, end, state)])


def _vms(cloud: Cloud, user: m.User, flag: int, start: int, end: int, state: int) -> list[m.Vm]:
    """``state`` -2 any, -1 any but DONE, else that STATE."""
    if state == -1:
        return cloud.visible("vm", user, flag, start, end, lambda vm: vm.state != m.DONE)
    return cloud.visible("vm", user, flag, start, end, lambda vm: state == -2 or vm.state == state)


def vm_info(cloud: Cloud, user: m.User, oid: int, decrypt: bool = False) -> str:
    return m.body(m.vm_element(cloud.get("vm", user, oid, 0, "one.vm.info")))


def _disk(cloud: Cloud, user: m.User, vm: m.Vm, spec: dict[str, str], disk_id: int, method: str) -> dict[str, str]:
    if "IMAGE_ID" in spec:
        image = cloud.get("image", user, int(spec["IMAGE_ID"]), 0, method)
    elif "IMAGE" in spec:
        named = [img for img in cloud.visible("image", user, -2) if img.name == spec["IMAGE"]]
        if not named:
            raise OneError(ACTION, f'[{method}] Error getting image, IMAGE = "{spec["IMAGE"]}" does not exist.')
        image = named[0]
    else:
        size = spec.get("SIZE", "1024")
        return {"DISK_ID": str(disk_id), "SIZE": size, "TYPE": spec.get("TYPE", "fs"), "FORMAT": "raw",
                "TARGET": f"vd{chr(ord('a') + disk_id)}"}  # fmt: skip
    if image.state != m.IMG_READY and not (image.state == m.IMG_USED and not image.persistent):
        raise OneError(ACTION, f"[{method}] Cannot use image [{image.id}] in state {image.state}.")
    image.vms.append(vm.id)
    image.state = m.IMG_USED_PERS if image.persistent else m.IMG_USED
    return {
        "CLONE": "NO" if image.persistent else "YES", "DATASTORE": "default", "DATASTORE_ID": "1",
        "DEV_PREFIX": "vd", "DISK_ID": str(disk_id), "DISK_TYPE": "FILE", "IMAGE": image.name,
        "IMAGE_ID": str(image.id), "IMAGE_STATE": str(image.state), "IMAGE_UNAME": image.uname,
        "ORIGINAL_SIZE": str(image.size), "PERSISTENT": "YES" if image.persistent else "NO",
        "SIZE": str(image.size), "TARGET": spec.get("TARGET", f"vd{chr(ord('a') + disk_id)}"), "TYPE": "FILE",
    }  # fmt: skip


def _nic(cloud: Cloud, user: m.User, vm: m.Vm, spec: dict[str, str], nic_id: int, method: str) -> dict[str, str]:
    if "NETWORK_ID" in spec:
        vnet = cloud.get("vn", user, int(spec["NETWORK_ID"]), 0, method)
    else:
        named = [vn for vn in cloud.visible("vn", user, -2) if vn.name == spec.get("NETWORK")]
        if not named:
            raise OneError(ACTION, f"[{method}] Error getting virtual network [{spec.get('NETWORK', '')}].")
        vnet = named[0]
    for ar in vnet.ars:
        wanted = spec.get("IP")
        for index in range(ar.size):
            ip, mac = ar.address(index)
            if index in ar.leases or (wanted and ip != wanted):
                continue
            ar.leases[index] = vm.id
            return {
                "AR_ID": str(ar.ar_id), "BRIDGE": vnet.bridge, "IP": ip, "MAC": mac, "NETWORK": vnet.name,
                "NETWORK_ID": str(vnet.id), "NETWORK_UNAME": vnet.uname, "NIC_ID": str(nic_id),
                "SECURITY_GROUPS": spec.get("SECURITY_GROUPS", "0"), "TARGET": f"one-{vm.id}-{nic_id}",
                "VN_MAD": vnet.vn_mad,
            }  # fmt: skip
    raise OneError(ACTION, f"[{method}] Cannot get IP/MAC lease from virtual network [{vnet.id}].")


def _create_vm(cloud: Cloud, user: m.User, template: tpl.Template, hold: bool, method: str) -> int:
    for attr in ("CPU", "MEMORY"):
        try:
            ok = float(tpl.single(template, attr, "0")) > 0
        except ValueError:
            ok = False
        if not ok:
            raise OneError(ALLOCATE, f"[{method}] Error allocating a new virtual machine template. "
                                     f"{attr} attribute must be a positive float or integer value.")  # fmt: skip
    name = tpl.single(template, "NAME")
    core = {k: v for k, v in template.items() if k in m.VM_TEMPLATE_ATTRS}
    extra = {k: v for k, v in template.items() if k not in m.VM_TEMPLATE_ATTRS and k != "NAME"}
    vm = cloud.new(m.Vm, "vm", user, name, core, user_template=extra)
    vm.name = name or f"one-{vm.id}"
    try:
        disks = [_disk(cloud, user, vm, spec, i, method) for i, spec in enumerate(tpl.vectors(core, "DISK"))]
        nics = [_nic(cloud, user, vm, spec, i, method) for i, spec in enumerate(tpl.vectors(core, "NIC"))]
    except OneError:
        cloud.release_vm(vm)
        del cloud.pools["vm"][vm.id]
        raise
    ssh_key_substitution(core, user)
    vm.template = {**core, "DISK": list(disks), "NIC": list(nics), "VMID": [str(vm.id)], "TM_MAD_SYSTEM": ["ssh"],
                   "AUTOMATIC_REQUIREMENTS": ["!(PUBLIC_CLOUD = YES)"]}  # fmt: skip
    for attr in ("DISK", "NIC"):
        if not vm.template[attr]:
            del vm.template[attr]
    if tpl.vectors(core, "CONTEXT"):
        vm.template["CONTEXT"] = [{**tpl.vectors(core, "CONTEXT")[0], "DISK_ID": str(len(disks)), "TARGET": "hda"}]
    cloud.plan(vm, [("", m.HOLD, "LCM_INIT")] if hold else _PENDING)
    return vm.id


def vm_allocate(cloud: Cloud, user: m.User, text: str, hold: bool = False) -> int:
    return _create_vm(cloud, user, parse_template(text, "one.vm.allocate"), hold, "one.vm.allocate")


def vm_action(cloud: Cloud, user: m.User, action: str, oid: int) -> int:
    method = "one.vm.action"
    vm = cloud.get("vm", user, oid, 1, method)
    if action not in ACTIONS:
        raise OneError(ACTION, f'[{method}] Virtual machine action "{action}" is not supported.', oid)
    steps = _allowed(vm, action)
    if steps is None:
        raise OneError(ACTION, f'[{method}] Error performing action "{action}": This action is not available '
                               f"for state {m.STATE_NAMES[vm.state]}", oid)  # fmt: skip
    cloud.plan(vm, steps)
    if vm.state == m.DONE:
        cloud.release_vm(vm)
    return oid


def vm_update(cloud: Cloud, user: m.User, oid: int, text: str, kind: int = 0) -> int:
    vm = cloud.get("vm", user, oid, 1, "one.vm.update")
    new = parse_template(text, "one.vm.update")
    vm.user_template = tpl.merge(vm.user_template, new) if kind == 1 else new
    return oid


def _hotplug(cloud: Cloud, vm: m.Vm, method: str, running_lcm: str, poweroff_lcm: str) -> None:
    """Hot-plug is allowed RUNNING (then LCM passes ``running_lcm``) or POWEROFF (``poweroff_lcm``)."""
    if (vm.state, vm.lcm) == _RUNNING:
        cloud.plan(vm, [("hotplug", m.ACTIVE, running_lcm), ("", m.ACTIVE, "RUNNING")])
    elif vm.state == m.POWEROFF:
        cloud.plan(vm, [("hotplug", m.ACTIVE, poweroff_lcm), ("", m.POWEROFF, "LCM_INIT")])
    else:
        raise OneError(ACTION, f"[{method}] Could not perform the action: wrong state "
                               f"{m.STATE_NAMES[vm.state]}", vm.id)  # fmt: skip


def _next_id(items: list[dict[str, str]], key: str) -> int:
    return max((int(item.get(key, "-1")) for item in items), default=-1) + 1


def vm_attach(cloud: Cloud, user: m.User, oid: int, text: str) -> int:
    method = "one.vm.attach"
    vm = cloud.get("vm", user, oid, 1, method)
    specs = tpl.vectors(parse_template(text, method), "DISK")
    if len(specs) != 1:
        raise OneError(ACTION, f"[{method}] Wrong number of DISK attributes.", oid)
    _hotplug(cloud, vm, method, "HOTPLUG", "HOTPLUG_PROLOG_POWEROFF")
    disks = tpl.vectors(vm.template, "DISK")
    vm.template["DISK"] = [
        *disks,
        _disk(cloud, user, vm, specs[0], _next_id(disks + tpl.vectors(vm.template, "CONTEXT"), "DISK_ID"), method),
    ]
    return oid


def vm_detach(cloud: Cloud, user: m.User, oid: int, disk_id: int) -> int:
    method = "one.vm.detach"
    vm = cloud.get("vm", user, oid, 1, method)
    disks = tpl.vectors(vm.template, "DISK")
    found = [d for d in disks if d.get("DISK_ID") == str(disk_id)]
    if not found:
        raise OneError(ACTION, f"[{method}] VM {oid}: DISK {disk_id} does not exist.", oid)
    _hotplug(cloud, vm, method, "HOTPLUG", "HOTPLUG_EPILOG_POWEROFF")
    vm.template["DISK"] = [d for d in disks if d is not found[0]]
    image = cloud.pools["image"].get(int(found[0].get("IMAGE_ID", "-1")))
    if image is not None and vm.id in image.vms:
        image.vms.remove(vm.id)
        if not image.vms:
            image.state = m.IMG_READY
    vm.snapshots.pop(disk_id, None)
    return oid


def vm_attachnic(cloud: Cloud, user: m.User, oid: int, text: str) -> int:
    method = "one.vm.attachnic"
    vm = cloud.get("vm", user, oid, 1, method)
    specs = tpl.vectors(parse_template(text, method), "NIC")
    if len(specs) != 1:
        raise OneError(ACTION, f"[{method}] Wrong number of NIC attributes.", oid)
    _hotplug(cloud, vm, method, "HOTPLUG_NIC", "HOTPLUG_NIC_POWEROFF")
    nics = tpl.vectors(vm.template, "NIC")
    vm.template["NIC"] = [*nics, _nic(cloud, user, vm, specs[0], _next_id(nics, "NIC_ID"), method)]
    return oid


def vm_detachnic(cloud: Cloud, user: m.User, oid: int, nic_id: int) -> int:
    method = "one.vm.detachnic"
    vm = cloud.get("vm", user, oid, 1, method)
    nics = tpl.vectors(vm.template, "NIC")
    found = [n for n in nics if n.get("NIC_ID") == str(nic_id)]
    if not found:
        raise OneError(ACTION, f"[{method}] VM {oid}: NIC {nic_id} does not exist.", oid)
    _hotplug(cloud, vm, method, "HOTPLUG_NIC", "HOTPLUG_NIC_POWEROFF")
    vm.template["NIC"] = [n for n in nics if n is not found[0]]
    cloud.free_lease(found[0], vm.id)
    return oid


def vm_disksnapshotcreate(cloud: Cloud, user: m.User, oid: int, disk_id: int, name: str) -> int:
    method = "one.vm.disksnapshotcreate"
    vm = cloud.get("vm", user, oid, 1, method)
    if not any(d.get("DISK_ID") == str(disk_id) for d in tpl.vectors(vm.template, "DISK")):
        raise OneError(ACTION, f"[{method}] VM {oid}: DISK {disk_id} does not exist.", oid)
    _hotplug(cloud, vm, method, "DISK_SNAPSHOT", "DISK_SNAPSHOT_POWEROFF")
    snaps = vm.snapshots.setdefault(disk_id, {})
    snap_id = max(snaps, default=-1) + 1
    snaps[snap_id] = (name, int(time.time()))
    return snap_id


def vm_disksnapshotdelete(cloud: Cloud, user: m.User, oid: int, disk_id: int, snap_id: int) -> int:
    method = "one.vm.disksnapshotdelete"
    vm = cloud.get("vm", user, oid, 1, method)
    if snap_id not in vm.snapshots.get(disk_id, {}):
        raise OneError(ACTION, f"[{method}] Snapshot {snap_id} does not exist for disk {disk_id}.", oid)
    _hotplug(cloud, vm, method, "DISK_SNAPSHOT_DELETE", "DISK_SNAPSHOT_DELETE_POWEROFF")
    del vm.snapshots[disk_id][snap_id]
    if not vm.snapshots[disk_id]:
        del vm.snapshots[disk_id]
    return snap_id


DEFAULT_IMAGE_TYPE = "OS"  # oned.conf's DEFAULT_IMAGE_TYPE as shipped: a save-as without a type makes one of it

#: (STATE, LCM_STATE or None) a disk save-as is allowed from -> the LCM state while saving, and where it returns.
SAVEAS: dict[tuple[int, int | None], tuple[str, int, str]] = {
    _RUNNING: ("HOTPLUG_SAVEAS", m.ACTIVE, "RUNNING"),
    (m.POWEROFF, None): ("HOTPLUG_SAVEAS_POWEROFF", m.POWEROFF, "LCM_INIT"),
    (m.SUSPENDED, None): ("HOTPLUG_SAVEAS_SUSPENDED", m.SUSPENDED, "LCM_INIT"),
}


def vm_disksaveas(cloud: Cloud, user: m.User, oid: int, disk_id: int, name: str, image_type: str = "",
                  snap_id: int = -1) -> int:  # fmt: skip
    """A new image (LOCKED while the copy runs, then READY) of a VM disk made from an image; the VM passes through
    HOTPLUG_SAVEAS(_POWEROFF/_SUSPENDED) meanwhile. The image keeps where it came from (SAVED_* attributes)."""
    method = "one.vm.disksaveas"
    vm = cloud.get("vm", user, oid, 1, method)
    disk = next((d for d in tpl.vectors(vm.template, "DISK") if d.get("DISK_ID") == str(disk_id)), None)
    if disk is None:
        raise OneError(ACTION, f"[{method}] VM {oid}: DISK {disk_id} does not exist.", oid)
    source = cloud.pools["image"].get(int(disk.get("IMAGE_ID", "-1")))
    if source is None:
        raise OneError(ACTION, f"[{method}] Cannot save_as a volatile disk.", oid)
    if snap_id != -1 and snap_id not in vm.snapshots.get(disk_id, {}):
        raise OneError(ACTION, f"[{method}] Snapshot {snap_id} does not exist for disk {disk_id}.", oid)
    row = SAVEAS.get((vm.state, vm.lcm)) or SAVEAS.get((vm.state, None))
    if row is None:
        raise OneError(ACTION, f"[{method}] Could not perform the action: wrong state "
                               f"{m.STATE_NAMES[vm.state]}", oid)  # fmt: skip
    kind = (image_type or DEFAULT_IMAGE_TYPE).upper()
    if kind not in m.IMAGE_TYPES:
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new image. Wrong image type {image_type}.")
    if not name or any(img.name == name and img.uid == user.id for img in cloud.pools["image"].values()):
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new image. NAME is already taken by IMAGE.")
    saving, state, lcm = row
    cloud.plan(vm, [("hotplug", m.ACTIVE, saving), ("", state, lcm)])
    template: tpl.Template = {"SAVED_DISK_ID": [str(disk_id)], "SAVED_IMAGE_ID": [str(source.id)],
                              "SAVED_VM_ID": [str(oid)]}  # fmt: skip
    if "DEV_PREFIX" in source.template:
        template["DEV_PREFIX"] = list(source.template["DEV_PREFIX"])
    image = cloud.new(m.Image, "image", user, name, template, type=m.IMAGE_TYPES[kind], persistent=0,
                      size=int(disk.get("SIZE", source.size)), datastore_id=source.datastore_id,
                      ready_at=time.monotonic() + cloud.timings.hotplug)  # fmt: skip
    return image.id


#: STATE -> whether one.vm.resize may change the capacity then (oned resizes a RUNNING VM only by CPU/memory
#: hot-plug, which this simulator's hosts do not offer: it refuses ACTIVE like the other states not listed).
RESIZABLE = frozenset({m.INIT, m.PENDING, m.HOLD, m.POWEROFF, m.UNDEPLOYED})


def vm_resize(cloud: Cloud, user: m.User, oid: int, text: str, enforce: bool = True) -> int:
    """New CPU, VCPU and MEMORY (an absent or zero one is left as it is) for a VM that is not running."""
    method = "one.vm.resize"
    vm = cloud.get("vm", user, oid, 1, method)
    if vm.state not in RESIZABLE:
        raise OneError(ACTION, f"[{method}] Resize action is not available for state {m.STATE_NAMES[vm.state]}", oid)
    new = parse_template(text, method)
    changes = {}
    for attr in ("CPU", "VCPU", "MEMORY"):
        value = tpl.single(new, attr, "0") or "0"
        try:
            number = float(value)
        except ValueError:
            raise OneError(ACTION, f"[{method}] {attr} must be a positive float or integer value.", oid) from None
        if number < 0 or (attr != "CPU" and not number.is_integer()):
            raise OneError(ACTION, f"[{method}] {attr} must be a positive float or integer value.", oid)
        if number:
            changes[attr] = [value]
    vm.template = {**vm.template, **changes}
    return oid


def vm_rename(cloud: Cloud, user: m.User, oid: int, name: str) -> int:
    vm = cloud.get("vm", user, oid, 1, "one.vm.rename")
    if not name.strip():
        raise OneError(ACTION, "[one.vm.rename] Invalid name, it cannot be empty.", oid)
    vm.name = name
    return oid


#: What one.vm.updateconf changes (the rest of its template is ignored), and the states it is allowed in.
UPDATECONF_ATTRS = frozenset({"OS", "CPU_MODEL", "FEATURES", "INPUT", "GRAPHICS", "VIDEO", "RAW", "CONTEXT",
                              "BACKUP_CONFIG"})  # fmt: skip
UPDATECONF_STATES = frozenset({m.INIT, m.PENDING, m.HOLD, m.POWEROFF, m.UNDEPLOYED})


def vm_updateconf(cloud: Cloud, user: m.User, oid: int, text: str, kind: int = 0) -> int:
    """The VM's configuration attributes: replaced (0: those not given go) or merged (1: each given one replaces its
    namesake). CONTEXT keeps the disk oned made of it (DISK_ID, TARGET); its ETH* values are oned's, not the user's."""
    method = "one.vm.updateconf"
    vm = cloud.get("vm", user, oid, 1, method)
    if vm.state not in UPDATECONF_STATES:
        raise OneError(ACTION, f"[{method}] Could not perform the action: wrong state "
                               f"{m.STATE_NAMES[vm.state]}", oid)  # fmt: skip
    new = {k: v for k, v in parse_template(text, method).items() if k in UPDATECONF_ATTRS}
    for context in tpl.vectors(new, "CONTEXT"):
        if any(key.startswith("ETH") for key in context):
            raise OneError(ACTION, f"[{method}] CONTEXT/ETH* attributes cannot be updated.", oid)
        old = (tpl.vectors(vm.template, "CONTEXT") or [{}])[0]
        context.update({k: old[k] for k in ("DISK_ID", "TARGET") if k in old})
    ssh_key_substitution(new, user)
    kept = vm.template if kind == 1 else {k: v for k, v in vm.template.items() if k not in UPDATECONF_ATTRS}
    vm.template = {**kept, **new}
    return oid
