"""VM templates, images, virtual networks (address ranges, leases) and security groups; and the method table."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from . import methods as vm
from . import model as m
from . import template as tpl
from .cloud import ACTION, ALLOCATE, NO_EXISTS, RPC_API, Cloud, Method, OneError, parse_template

# ---------------------------------------------------------------------------------------------- VM templates


def _template_xml(obj: m.Owned) -> Any:
    return m.simple_element("VMTEMPLATE", obj)


def templatepool_info(cloud: Cloud, user: m.User, flag: int = -2, start: int = -1, end: int = -1) -> str:
    return m.pool("VMTEMPLATE_POOL", [_template_xml(o) for o in cloud.visible("template", user, flag, start, end)])


def template_info(cloud: Cloud, user: m.User, oid: int, extended: bool = False, decrypt: bool = False) -> str:
    return m.body(_template_xml(cloud.get("template", user, oid, 0, "one.template.info")))


def template_allocate(cloud: Cloud, user: m.User, text: str) -> int:
    template = parse_template(text, "one.template.allocate")
    name = tpl.single(template, "NAME")
    if not name:
        raise OneError(ALLOCATE, "[one.template.allocate] Error allocating a new VM template. No NAME in template.")
    template.pop("NAME")
    return cloud.new(m.VmTemplate, "template", user, name, template).id


def template_instantiate(cloud: Cloud, user: m.User, oid: int, name: str = "", hold: bool = False,
                         extra: str = "", persistent: bool = False) -> int:  # fmt: skip
    method = "one.template.instantiate"
    source = cloud.get("template", user, oid, 0, method)
    merged = tpl.merge(source.template, parse_template(extra, method) if extra else {})
    merged["TEMPLATE_ID"] = [str(oid)]
    merged.pop("NAME", None)
    vm_id = vm._create_vm(cloud, user, merged, hold, method)
    cloud.pools["vm"][vm_id].name = name or f"{source.name}-{vm_id}"
    return vm_id


def template_delete(cloud: Cloud, user: m.User, oid: int, recursive: bool = False) -> int:
    cloud.get("template", user, oid, 1, "one.template.delete")
    del cloud.pools["template"][oid]
    return oid


# ---------------------------------------------------------------------------------------------- images


def imagepool_info(cloud: Cloud, user: m.User, flag: int = -2, start: int = -1, end: int = -1) -> str:
    return m.pool("IMAGE_POOL", [m.image_element(i) for i in cloud.visible("image", user, flag, start, end)])


def image_info(cloud: Cloud, user: m.User, oid: int, decrypt: bool = False) -> str:
    return m.body(m.image_element(cloud.get("image", user, oid, 0, "one.image.info")))


def image_allocate(cloud: Cloud, user: m.User, text: str, ds_id: int, no_check: bool = False) -> int:
    method = "one.image.allocate"
    if ds_id != 1:
        raise OneError(NO_EXISTS, f"[{method}] Error getting datastore [{ds_id}].", ds_id)
    template = parse_template(text, method)
    name = tpl.single(template, "NAME")
    kind = tpl.single(template, "TYPE", "OS").upper()
    size = tpl.single(template, "SIZE", "0")
    if not name or kind not in m.IMAGE_TYPES or not size.isdigit():
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new image. NAME, TYPE and SIZE must be valid.")
    if kind == "DATABLOCK" and int(size) <= 0 and not tpl.single(template, "PATH"):
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new image. SIZE is mandatory for DATABLOCK.")
    if any(img.name == name and img.uid == user.id for img in cloud.pools["image"].values()):
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new image. NAME is already taken by IMAGE.")
    persistent = int(tpl.single(template, "PERSISTENT", "NO").upper() in ("YES", "1"))
    for attr in ("NAME", "TYPE", "SIZE", "PERSISTENT"):
        template.pop(attr, None)
    image = cloud.new(m.Image, "image", user, name, template, type=m.IMAGE_TYPES[kind], persistent=persistent,
                      size=int(size), ready_at=time.monotonic() + cloud.timings.image)  # fmt: skip
    return image.id


def image_clone(cloud: Cloud, user: m.User, oid: int, name: str, ds_id: int = -1) -> int:
    method = "one.image.clone"
    source = cloud.get("image", user, oid, 0, method)
    if source.state not in (m.IMG_READY, m.IMG_USED, m.IMG_USED_PERS):
        raise OneError(ACTION, f"[{method}] Cannot clone image in state {source.state}.", oid)
    if any(img.name == name and img.uid == user.id for img in cloud.pools["image"].values()):
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new image. NAME is already taken by IMAGE.")
    clone = cloud.new(m.Image, "image", user, name, dict(source.template), type=source.type, persistent=0,
                      size=source.size, ready_at=time.monotonic() + cloud.timings.image)  # fmt: skip
    source.clones.append(clone.id)
    return clone.id


def image_delete(cloud: Cloud, user: m.User, oid: int, force: bool = False) -> int:
    method = "one.image.delete"
    image = cloud.get("image", user, oid, 1, method)
    if image.vms:
        raise OneError(ACTION, f"[{method}] Cannot delete image [{oid}]: it is used by VMs {image.vms}.", oid)
    del cloud.pools["image"][oid]
    return oid


def image_update(cloud: Cloud, user: m.User, oid: int, text: str, kind: int = 0) -> int:
    """``one.image.update``: replace the template (0) or merge into it (1), as ``one.vm.update``."""
    method = "one.image.update"
    image = cloud.get("image", user, oid, 1, method)
    new = parse_template(text, method)
    image.template = tpl.merge(image.template, new) if kind == 1 else new
    return oid


def rename(kind: str, unique: bool) -> Method:
    """``one.<kind>.rename(id, name)``: an empty name, or (``unique``: per owner, as images and networks) one the
    owner already uses for another object, is refused with ACTION."""

    def call(cloud: Cloud, user: m.User, oid: int, name: str) -> int:
        method = f"one.{kind}.rename"
        obj = cloud.get(kind, user, oid, 1, method)
        if not isinstance(name, str) or not name.strip():
            raise OneError(ACTION, f"[{method}] Invalid NAME, it cannot be empty.", oid)
        if unique and any(o.name == name and o.uid == obj.uid and o.id != oid for o in cloud.pools[kind].values()):
            raise OneError(ACTION, f"[{method}] Could not rename: NAME is already taken by {kind.upper()}.", oid)
        obj.name = name
        return oid

    return call


def image_persistent(cloud: Cloud, user: m.User, oid: int, persistent: bool) -> int:
    image = cloud.get("image", user, oid, 1, "one.image.persistent")
    image.persistent = int(bool(persistent))
    return oid


# ---------------------------------------------------------------------------------------------- networks


def vnpool_info(cloud: Cloud, user: m.User, flag: int = -2, start: int = -1, end: int = -1) -> str:
    vnets = cloud.visible("vn", user, flag, start, end)
    return m.pool("VNET_POOL", [m.vnet_element(vn, leases=False) for vn in vnets])


def vn_info(cloud: Cloud, user: m.User, oid: int, decrypt: bool = False) -> str:
    return m.body(m.vnet_element(cloud.get("vn", user, oid, 0, "one.vn.info"), leases=True))


def vn_allocate(cloud: Cloud, user: m.User, text: str, cluster_id: int = -1) -> int:
    method = "one.vn.allocate"
    template = parse_template(text, method)
    name = tpl.single(template, "NAME")
    if not name or not (tpl.single(template, "VN_MAD") or tpl.single(template, "BRIDGE")):
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new virtual network. No NAME or VN_MAD in template.")
    ars = [_range(spec, ar_id, ALLOCATE, method) for ar_id, spec in enumerate(tpl.vectors(template, "AR"))]
    if any(vn.name == name and vn.uid == user.id for vn in cloud.pools["vn"].values()):
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new virtual network. NAME is already taken by NET.")
    rest = {k: v for k, v in template.items() if k not in ("NAME", "AR")}
    vnet = cloud.new(m.VNet, "vn", user, name, rest, bridge=tpl.single(template, "BRIDGE", "br0"),
                     vn_mad=tpl.single(template, "VN_MAD", "bridge"), ars=ars)  # fmt: skip
    return vnet.id


def _range(spec: dict[str, str], ar_id: int, code: int, method: str) -> m.AddressRange:
    """An AR vector as an address range (this simulator's ranges are IP4 only)."""
    if spec.get("TYPE", "").upper() != "IP4" or not spec.get("SIZE", "").isdigit() or "IP" not in spec:
        raise OneError(code, f"[{method}] Wrong address range: only IP4 ranges with IP and SIZE here.")
    try:
        first = ipaddress.IPv4Address(spec["IP"])
    except ValueError:
        raise OneError(code, f"[{method}] Wrong IP address {spec['IP']}.") from None
    if int(spec["SIZE"]) < 1 or int(first) + int(spec["SIZE"]) > 2**32:
        raise OneError(code, f"[{method}] Wrong SIZE for the address range.")
    return m.AddressRange(ar_id, str(first), int(spec["SIZE"]))


def vn_update(cloud: Cloud, user: m.User, oid: int, text: str, kind: int = 0) -> int:
    """``one.vn.update``: the template (address ranges are not in it: ``one.vn.update_ar`` changes those)."""
    method = "one.vn.update"
    vnet = cloud.get("vn", user, oid, 1, method)
    new = {k: v for k, v in parse_template(text, method).items() if k not in ("NAME", "AR")}
    vnet.template = tpl.merge(vnet.template, new) if kind == 1 else new
    return oid


def vn_delete(cloud: Cloud, user: m.User, oid: int) -> int:
    method = "one.vn.delete"
    vnet = cloud.get("vn", user, oid, 1, method)
    if any(owner >= 0 for ar in vnet.ars for owner in ar.leases.values()):
        raise OneError(ACTION, f"[{method}] Cannot delete virtual network [{oid}]: it has leases in use.", oid)
    del cloud.pools["vn"][oid]
    return oid


def _lease_ip(text: str, method: str) -> str:
    leases = tpl.vectors(parse_template(text, method), "LEASES")
    if len(leases) != 1 or "IP" not in leases[0]:
        raise OneError(ACTION, f'[{method}] Wrong lease template, expected LEASES=[IP="..."].')
    return leases[0]["IP"]


def vn_hold(cloud: Cloud, user: m.User, oid: int, text: str) -> int:
    method = "one.vn.hold"
    vnet = cloud.get("vn", user, oid, 1, method)
    ip = _lease_ip(text, method)
    for ar in vnet.ars:
        for index in range(ar.size):
            if ar.address(index)[0] == ip:
                if index in ar.leases:
                    raise OneError(ACTION, f"[{method}] Address {ip} is already leased.", oid)
                ar.leases[index] = -1
                return oid
    raise OneError(ACTION, f"[{method}] Address {ip} is not in any address range.", oid)


def vn_release(cloud: Cloud, user: m.User, oid: int, text: str) -> int:
    method = "one.vn.release"
    vnet = cloud.get("vn", user, oid, 1, method)
    ip = _lease_ip(text, method)
    for ar in vnet.ars:
        for index, owner in list(ar.leases.items()):
            if ar.address(index)[0] == ip and owner == -1:
                del ar.leases[index]
                return oid
    raise OneError(ACTION, f"[{method}] Address {ip} is not on hold.", oid)


# ---------------------------------------------------------------------------------------------- security groups


def _secgroup_xml(obj: m.Owned) -> Any:
    return m.simple_element("SECURITY_GROUP", obj)


def secgrouppool_info(cloud: Cloud, user: m.User, flag: int = -2, start: int = -1, end: int = -1) -> str:
    groups = cloud.visible("secgroup", user, flag, start, end)
    return m.pool("SECURITY_GROUP_POOL", [_secgroup_xml(g) for g in groups])


def secgroup_info(cloud: Cloud, user: m.User, oid: int, decrypt: bool = False) -> str:
    return m.body(_secgroup_xml(cloud.get("secgroup", user, oid, 0, "one.secgroup.info")))


def _check_rules(template: tpl.Template, method: str) -> None:
    for rule in tpl.vectors(template, "RULE"):
        if rule.get("PROTOCOL", "").upper() not in ("TCP", "UDP", "ICMP", "ICMPV6", "IPSEC", "ALL"):
            raise OneError(ACTION, f"[{method}] Invalid PROTOCOL in security group RULE.")
        if rule.get("RULE_TYPE", "").lower() not in ("inbound", "outbound"):
            raise OneError(ACTION, f"[{method}] Invalid RULE_TYPE in security group RULE.")


def secgroup_allocate(cloud: Cloud, user: m.User, text: str) -> int:
    method = "one.secgroup.allocate"
    template = parse_template(text, method)
    name = tpl.single(template, "NAME")
    if not name:
        raise OneError(ALLOCATE, f"[{method}] Error allocating a new security group. No NAME in template.")
    _check_rules(template, method)
    template.pop("NAME")
    return cloud.new(m.SecurityGroup, "secgroup", user, name, template).id


def secgroup_update(cloud: Cloud, user: m.User, oid: int, text: str, kind: int = 0) -> int:
    method = "one.secgroup.update"
    group = cloud.get("secgroup", user, oid, 1, method)
    new = parse_template(text, method)
    _check_rules(new, method)
    group.template = tpl.merge(group.template, new) if kind == 1 else new
    return oid


def secgroup_delete(cloud: Cloud, user: m.User, oid: int) -> int:
    method = "one.secgroup.delete"
    cloud.get("secgroup", user, oid, 1, method)
    if oid == 0:
        raise OneError(ACTION, f"[{method}] The default security group (ID 0) cannot be deleted.", oid)
    del cloud.pools["secgroup"][oid]
    return oid


def chmod(kind: str) -> Method:
    """``one.<kind>.chmod(id, 9 bits)``: -1 keeps a bit, as oned's."""

    def call(cloud: Cloud, user: m.User, oid: int, *bits: int) -> int:
        if len(bits) != 9:
            raise OneError(RPC_API, f"[one.{kind}.chmod] Expected 9 permission bits.")
        obj = cloud.get(kind, user, oid, 1, f"one.{kind}.chmod")
        obj.perms = [old if new == -1 else int(bool(new)) for old, new in zip(obj.perms, bits, strict=True)]
        return oid

    return call


METHODS: dict[str, Method] = {
    "one.system.version": vm.system_version,
    "one.user.info": vm.user_info,
    "one.user.update": vm.user_update,
    "one.user.allocate": vm.user_allocate,
    "one.vmpool.info": vm.vmpool_info,
    "one.vmpool.infoextended": vm.vmpool_infoextended,
    "one.vm.info": vm.vm_info,
    "one.vm.allocate": vm.vm_allocate,
    "one.vm.action": vm.vm_action,
    "one.vm.update": vm.vm_update,
    "one.vm.attach": vm.vm_attach,
    "one.vm.detach": vm.vm_detach,
    "one.vm.attachnic": vm.vm_attachnic,
    "one.vm.detachnic": vm.vm_detachnic,
    "one.vm.disksnapshotcreate": vm.vm_disksnapshotcreate,
    "one.vm.disksnapshotdelete": vm.vm_disksnapshotdelete,
    "one.vm.disksaveas": vm.vm_disksaveas,
    "one.vm.resize": vm.vm_resize,
    "one.vm.rename": vm.vm_rename,
    "one.vm.updateconf": vm.vm_updateconf,
    "one.vm.chmod": chmod("vm"),
    "one.templatepool.info": templatepool_info,
    "one.template.info": template_info,
    "one.template.allocate": template_allocate,
    "one.template.instantiate": template_instantiate,
    "one.template.delete": template_delete,
    "one.template.chmod": chmod("template"),
    "one.imagepool.info": imagepool_info,
    "one.image.info": image_info,
    "one.image.allocate": image_allocate,
    "one.image.clone": image_clone,
    "one.image.delete": image_delete,
    "one.image.persistent": image_persistent,
    "one.image.update": image_update,
    "one.image.rename": rename("image", unique=True),
    "one.image.chmod": chmod("image"),
    "one.vnpool.info": vnpool_info,
    "one.vn.info": vn_info,
    "one.vn.allocate": vn_allocate,
    "one.vn.delete": vn_delete,
    "one.vn.hold": vn_hold,
    "one.vn.release": vn_release,
    "one.vn.update": vn_update,
    "one.vn.rename": rename("vn", unique=True),
    "one.vn.chmod": chmod("vn"),
    "one.secgrouppool.info": secgrouppool_info,
    "one.secgroup.info": secgroup_info,
    "one.secgroup.allocate": secgroup_allocate,
    "one.secgroup.update": secgroup_update,
    "one.secgroup.delete": secgroup_delete,
    "one.secgroup.chmod": chmod("secgroup"),
}
