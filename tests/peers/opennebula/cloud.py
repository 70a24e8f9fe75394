"""The simulated oned: users and pools behind one lock, permission checks, and the ``one.*`` method table.

Each method takes the authenticated ``User`` then OpenNebula's arguments after the session string, and returns
the answer's value (``str`` or ``int``); failures raise ``OneError`` with oned's error code and message.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from . import model as m
from . import template as tpl

# Error codes (Request::ErrorCode).
AUTHENTICATION, AUTHORIZATION, NO_EXISTS, ACTION, RPC_API, INTERNAL, ALLOCATE = (
    0x0100, 0x0200, 0x0400, 0x0800, 0x1000, 0x2000, 0x4000,
)  # fmt: skip
VERSION = "6.10.0"
OBJECT_NAMES = {"vm": "virtual machine", "image": "image", "vn": "virtual network", "template": "VM template",
                "secgroup": "security group", "user": "user", "datastore": "datastore"}  # fmt: skip


class OneError(Exception):
    def __init__(self, code: int, message: str, resp_id: int = -1) -> None:
        super().__init__(message)
        self.code, self.message, self.resp_id = code, message, resp_id


class Cloud:
    """Everything oned would keep in its database; ``lock`` serialises every call, as oned's pool locks do."""

    def __init__(self, admin_password: str, timings: m.Timings) -> None:
        self.lock = threading.RLock()
        self.timings = timings
        self.groups = {0: "oneadmin", 1: "users"}
        self.users: dict[int, m.User] = {0: m.User(0, "oneadmin", admin_password, 0, "oneadmin")}
        self.pools: dict[str, dict[int, Any]] = {"vm": {}, "image": {}, "vn": {}, "template": {}, "secgroup": {}}
        self.next_ids = {"vm": 0, "image": 0, "vn": 0, "template": 0, "secgroup": 0, "user": 1}
        admin = self.users[0]
        default = self.new(m.SecurityGroup, "secgroup", admin, "default", {"DESCRIPTION": ["default"]})
        default.perms[6] = 1  # OTHER_U: every user may put a NIC in it, as oned's default group

    # ------------------------------------------------------------------------------------------ auth and ACLs

    def authenticate(self, session: object) -> m.User:
        if isinstance(session, str) and ":" in session:
            name, _, password = session.partition(":")
            for user in self.users.values():
                if user.name == name and user.password == password:
                    return user
        raise OneError(AUTHENTICATION, "User couldn't be authenticated, aborting call.")

    @staticmethod
    def admin(user: m.User) -> bool:
        return user.gid == 0

    def may(self, user: m.User, obj: m.Owned, right: int) -> bool:
        """``right`` 0 use, 1 manage, 2 admin: owner bits, then group bits, then other bits (oned's PERMISSIONS)."""
        if self.admin(user):
            return True
        if obj.uid == user.id and obj.perms[right]:
            return True
        if obj.gid == user.gid and obj.perms[3 + right]:
            return True
        return bool(obj.perms[6 + right])

    def get(self, kind: str, user: m.User, oid: object, right: int = 0, method: str = "") -> Any:
        if not isinstance(oid, int) or isinstance(oid, bool):
            raise OneError(RPC_API, f"[{method}] Wrong parameter type for the object ID.")
        obj = self.pools[kind].get(oid)
        if obj is None:
            raise OneError(NO_EXISTS, f"[{method}] Error getting {OBJECT_NAMES[kind]} [{oid}].", oid)
        self.advance(kind, obj)
        if not self.may(user, obj, right):
            op = ("USE", "MANAGE", "ADMIN")[right]
            raise OneError(
                AUTHORIZATION,
                f"[{method}] User [{user.id}] : Not authorized to perform {op} {kind.upper()} [{oid}].",
                oid,
            )
        return obj

    def visible(
        self, kind: str, user: m.User, flag: int, start: int = -1, end: int = -1, keep: Callable[[Any], bool] = bool
    ) -> list[Any]:
        """A pool filtered as oned's ``info`` calls do: -2 all, -3 mine, -1 mine and my group's, -4 group, >=0 uid;
        ``keep`` is a call's own filter (a VM state). ``end`` >= -1 makes (start, end) a range of ids (-1: open);
        ``end`` < -1 makes ``start`` an offset and ``-end`` a page size into what the filters keep, by id."""
        if end < -1 and start < 0:
            raise OneError(RPC_API, f"Wrong pagination offset {start}: an offset is 0 or more.")
        ranged = end >= -1
        out = []
        for oid in sorted(self.pools[kind]):
            obj = self.pools[kind][oid]
            if ranged and ((start >= 0 and oid < start) or (end >= 0 and oid > end)):
                continue
            self.advance(kind, obj)
            if not self.may(user, obj, 0):
                continue
            if (flag == -3 and obj.uid != user.id) or (flag == -4 and obj.gid != user.gid):
                continue
            if flag == -1 and obj.uid != user.id and obj.gid != user.gid and not self.admin(user):
                continue
            if flag >= 0 and obj.uid != flag:
                continue
            if keep(obj):
                out.append(obj)
        return out if ranged else out[start : start - end]

    def new(self, cls: type, kind: str, user: m.User, name: str, template: tpl.Template, **extra: Any) -> Any:
        oid = self.next_ids[kind]
        self.next_ids[kind] += 1
        obj = cls(oid, user.id, user.gid, user.name, user.gname, name, template, **extra)
        self.pools[kind][oid] = obj
        return obj

    # ------------------------------------------------------------------------------------------ time

    def advance(self, kind: str, obj: Any) -> None:
        now = time.monotonic()
        if kind == "image":
            obj.advance(now)
        elif kind == "vm":
            for state, _ in obj.advance(now):
                if state == m.DONE:
                    self.release_vm(obj)

    def release_vm(self, vm: m.Vm) -> None:
        """A DONE VM gives back its leases and its images, as oned's epilog does."""
        for nic in tpl.vectors(vm.template, "NIC"):
            self.free_lease(nic, vm.id)
        for disk in tpl.vectors(vm.template, "DISK"):
            image = self.pools["image"].get(int(disk.get("IMAGE_ID", "-1")))
            if image is not None and vm.id in image.vms:
                image.vms.remove(vm.id)
                image.state = m.IMG_READY if not image.vms else image.state

    def free_lease(self, nic: dict[str, str], vm_id: int) -> None:
        vnet = self.pools["vn"].get(int(nic.get("NETWORK_ID", "-1")))
        for ar in vnet.ars if vnet else []:
            for index, owner in list(ar.leases.items()):
                if owner == vm_id and ar.address(index)[0] == nic.get("IP"):
                    del ar.leases[index]

    def plan(self, vm: m.Vm, steps: list[tuple[str, int, str]]) -> None:
        """Steps as (timing name, STATE, LCM_STATE name), mapped to seconds and numbers."""
        t = self.timings
        vm.plan(time.monotonic(), [(getattr(t, timing, 0.0), state, m.LCM[lcm]) for timing, state, lcm in steps])


def parse_template(text: object, method: str) -> tpl.Template:
    if not isinstance(text, str):
        raise OneError(RPC_API, f"[{method}] The template must be a string.")
    try:
        return tpl.parse(text)
    except tpl.TemplateError as exc:
        raise OneError(ALLOCATE if method.endswith("allocate") else ACTION, f"[{method}] Parse error: {exc}") from None


def ssh_key_substitution(template: tpl.Template, user: m.User) -> None:
    """``$USER[NAME]`` in CONTEXT values takes the owner's user-template value, as oned does on allocate."""
    for context in tpl.vectors(template, "CONTEXT"):
        for key, value in context.items():
            context[key] = re.sub(r"\$USER\[(\w+)\]", lambda found: tpl.single(user.template, found[1]), value)


Method = Callable[..., Any]
