"""Compute (machines): created from ``os_tpl`` + ``resource_tpl`` mixins, from cores and memory, or from
the kind alone (the tenant's default image and flavor); actions start, stop, restart, suspend, save."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import Any

from frontends.occi import categories as c
from frontends.occi.catalog import os_tpl, zone_term
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from frontends.occi.model import ActionInvocation, Entity, Link, Mixin
from frontends.occi.resources.base import (
    MIXIN_TAG,
    NAME_TAG,
    KindController,
    check_attributes,
    common_attributes,
    remember_members,
    user_mixins_of,
)
from frontends.occi.resources.links import interface_links, storage_links
from translator.backend import Capability
from translator.errors import Conflict, NotFound
from translator.model import (
    ActionMethod,
    Image,
    ImageSpec,
    ImageState,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    Resource,
)
from translator.translator import Goal, Step

#: canonical state -> (occi.compute.state, occi.compute.state.message); every state has a row
STATES: dict[MachineState, tuple[str, str]] = {
    MachineState.PENDING: ("inactive", "pending"),
    MachineState.RUNNING: ("active", ""),
    MachineState.STOPPING: ("active", "stopping"),  # inactive once it has stopped
    MachineState.STOPPED: ("inactive", ""),
    MachineState.SUSPENDED: ("suspended", ""),
    MachineState.PAUSED: ("suspended", "paused"),
    MachineState.REBOOTING: ("active", "restarting"),
    MachineState.CAPTURING: ("active", "saving"),
    MachineState.TERMINATING: ("inactive", "deleting"),
    MachineState.TERMINATED: ("inactive", "deleted"),
    MachineState.ERROR: ("error", ""),
}
#: canonical architecture -> occi.compute.architecture
ARCHITECTURES = {"x86_64": "x64", "i386": "x86"}
GONE = (MachineState.TERMINATING, MachineState.TERMINATED)


@dataclass(frozen=True, slots=True)
class ComputeOp:
    """An OCCI compute action: the canonical action per state it is allowed in, the capability it needs."""

    actions: dict[MachineState, MachineAction]
    needs: Capability | None = None


ACTIONS: dict[str, ComputeOp] = {
    c.START.id: ComputeOp(
        {
            MachineState.STOPPED: MachineAction.START,
            MachineState.SUSPENDED: MachineAction.RESUME,
            MachineState.PAUSED: MachineAction.UNPAUSE,
        }
    ),
    c.STOP.id: ComputeOp({MachineState.RUNNING: MachineAction.STOP}),
    c.RESTART.id: ComputeOp({MachineState.RUNNING: MachineAction.REBOOT}),
    c.SUSPEND.id: ComputeOp({MachineState.RUNNING: MachineAction.SUSPEND}, Capability.MACHINE_SUSPEND),
}
#: action method -> the canonical method (the others are graceful)
HARD_METHODS = {
    "poweroff": (Capability.STOP_HARD, ActionMethod.HARD),
    "cold": (Capability.REBOOT_HARD, ActionMethod.HARD),
}
SAVABLE = frozenset({MachineState.RUNNING, MachineState.STOPPED})


def allowed_actions(ctx: Ctx, m: Machine) -> list[str]:
    caps = ctx.capabilities(m)
    names = [
        action for action, op in ACTIONS.items() if m.state in op.actions and (op.needs is None or op.needs in caps)
    ]
    if m.state in SAVABLE and Capability.IMAGE_CREATE in caps:
        names.append(c.SAVE.id)
    return names


class Computes(KindController):
    kind = c.COMPUTE
    canonical = "machine"

    def entity(self, ctx: Ctx, resource: Resource) -> Entity:
        assert isinstance(resource, Machine)
        m = resource
        location = ctx.url(f"compute/{m.id}")
        attrs = common_attributes(m)
        if m.vcpus:
            attrs["occi.compute.cores"] = m.vcpus
        if m.memory_mb:
            attrs["occi.compute.memory"] = round(m.memory_mb / 1024, 3)
        if m.architecture in ARCHITECTURES:
            attrs["occi.compute.architecture"] = ARCHITECTURES[m.architecture]
        state, message = STATES[m.state]
        attrs["occi.compute.state"] = state
        message = m.state_reason or message
        if message:
            attrs["occi.compute.state.message"] = message
        mixins = []
        if m.image_id:
            mixins.append(c.OS_TPL_SCHEME + m.image_id)
        if m.flavor_id:
            mixins.append(c.RESOURCE_TPL_SCHEME + m.flavor_id)
        if m.zone:
            mixins.append(c.ZONE_SCHEME + zone_term(m.zone))
        mixins += user_mixins_of(m)
        actions = [(a, f"{location}?action={a.rsplit('#', 1)[1]}") for a in allowed_actions(ctx, m)]
        links = [*interface_links(ctx, m), *storage_links(ctx, m)]
        return Entity(c.COMPUTE.id, m.id, location, mixins, attrs, actions, links, attrs.get("occi.core.title", ""))

    def find(self, ctx: Ctx, rid: str) -> Resource:
        m = ctx.translator.get(ctx.principal, self.canonical, rid)
        if isinstance(m, Machine) and m.state in GONE:  # deleted for OCCI once its DELETE was taken
            raise OcciError(404, f"The compute '{rid}' has been deleted.")
        return m

    def listed(self, ctx: Ctx) -> list[Resource]:
        return [m for m in super().listed(ctx) if isinstance(m, Machine) and m.state not in GONE]

    def create(self, ctx: Ctx, request: Entity) -> Entity:
        check_attributes(ctx, request, self.kind, partial=False)
        catalog = ctx.catalog
        image = self._image(ctx, request)
        region = ctx.translator.region_of(ctx.principal, "image", image.id)
        flavor_id = self._flavor(ctx, request, region)
        zone = None
        for mixin_id in request.mixins:
            if mixin_id.startswith(c.ZONE_SCHEME):
                zone = catalog.zones.get(mixin_id[len(c.ZONE_SCHEME) :])
        attrs = request.attributes
        tags: dict[str, str] = {
            MIXIN_TAG + m: catalog.mixins[m].title or m for m in request.mixins if m in catalog.user
        }
        title = request.title or attrs.get("occi.core.title")
        if title:
            tags[NAME_TAG] = str(title)
        subnet_id, attach = self._links(ctx, request.links)
        spec = MachineSpec(
            image_id=image.id,
            flavor_id=flavor_id,
            name=str(title or ""),
            key_name=self._key(ctx, attrs.get("occi.credentials.ssh.publickey"), region),
            user_data=_user_data(attrs.get("occi.compute.userdata")),
            zone=zone,
            subnet_id=subnet_id,
            tags=tuple(tags.items()),
        )
        _, machines = ctx.translator.follow(
            ctx.principal,
            "add",
            Goal("machine", (Step(("running",), attach=attach),)),
            lambda: ctx.translator.create_machines(ctx.principal, spec, region),
        )
        remember_members(ctx, "machine", machines[0].id, request.mixins)
        return self.entity(ctx, machines[0])

    def _image(self, ctx: Ctx, request: Entity) -> Image:
        named = [m for m in request.mixins if m.startswith(c.OS_TPL_SCHEME)]
        if len(named) > 1:
            raise OcciError(400, "A compute has one os_tpl mixin.")
        if named:
            image = ctx.catalog.images.get(named[0][len(c.OS_TPL_SCHEME) :])
            if image is None:
                raise OcciError(400, f"There is no os_tpl '{named[0]}' here.")
            return image
        default = ctx.translator.tenant_of(ctx.principal).default_image
        images = sorted(ctx.catalog.images.values(), key=lambda i: (i.name, i.id))
        chosen = [i for i in images if i.name == default] if default else images
        if not chosen:
            raise OcciError(400, "Name an os_tpl mixin: this tenant has no default image.")
        return chosen[0]

    def _flavor(self, ctx: Ctx, request: Entity, region: str) -> str:
        named = [m for m in request.mixins if m.startswith(c.RESOURCE_TPL_SCHEME)]
        if len(named) > 1:
            raise OcciError(400, "A compute has one resource_tpl mixin.")
        if named:
            flavor = ctx.catalog.flavors.get(named[0][len(c.RESOURCE_TPL_SCHEME) :])
            if flavor is None:
                raise OcciError(400, f"There is no resource_tpl '{named[0]}' here.")
            return flavor.id
        cores, memory = request.attributes.get("occi.compute.cores"), request.attributes.get("occi.compute.memory")
        if cores is not None or memory is not None:
            vcpus = int(cores or 1)
            memory_mb = math.ceil(float(memory or 0) * 1024)
            if vcpus < 1 or memory_mb < 0:
                raise OcciError(400, "occi.compute.cores must be at least 1 and occi.compute.memory positive.")
            try:
                return ctx.translator.smallest_flavor(ctx.principal, vcpus, memory_mb, region).id
            except NotFound:
                raise OcciError(400, f"No resource_tpl has {vcpus} cores and {memory} GiB.") from None
        default = ctx.translator.tenant_of(ctx.principal).default_flavor
        account = ctx.translator.account(ctx.principal, region).key
        flavors = sorted(
            (f for f in ctx.catalog.flavors.values() if f.account == account),
            key=lambda f: (f.vcpus, f.memory_mb, f.name),
        )
        chosen = [f for f in flavors if f.name == default] if default else flavors
        if not chosen:
            raise OcciError(400, "Name a resource_tpl mixin: this tenant has no default flavor.")
        return chosen[0].id

    def _key(self, ctx: Ctx, public_key: Any, region: str) -> str | None:
        if public_key is None:
            return None
        text = str(public_key).strip()
        if not text:
            raise OcciError(400, "occi.credentials.ssh.publickey is empty.")
        name = f"occi-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
        with contextlib.suppress(Conflict):  # imported before: the same key gives the same name
            ctx.translator.import_key_pair(ctx.principal, name, text, region)
        return name

    def _links(self, ctx: Ctx, links: list[Link]) -> tuple[str | None, tuple[tuple[str, str], ...]]:
        """Inline links of a create: the network of the first networkinterface, storage to attach once it runs."""
        subnet_id: str | None = None
        attach: list[tuple[str, str]] = []
        for link in links:
            target = ctx.path_of(link.target)
            if link.kind == c.NETWORKINTERFACE.id and target.startswith("network/"):
                if subnet_id is not None:
                    raise OcciError(501, "A compute is created on one network here; link more afterwards.")
                nid = target.split("/", 1)[1]
                subnets = ctx.translator.page(ctx.principal, "subnet", match={"network_id": [nid]}, limit=1).items
                if not subnets:
                    raise OcciError(400, f"The network '{nid}' has nothing a compute can be placed on.")
                subnet_id = subnets[0].id
            elif link.kind == c.STORAGELINK.id and target.startswith("storage/"):
                vid = target.split("/", 1)[1]
                ctx.translator.get(ctx.principal, "volume", vid)
                attach.append((vid, str(link.attributes.get("occi.storagelink.deviceid") or "")))
            else:
                raise OcciError(400, f"A compute cannot be created with a link to '{link.target[:200]}'.")
        return subnet_id, tuple(attach)

    def delete(self, ctx: Ctx, resource: Resource) -> None:
        ctx.translator.act_on_machine(ctx.principal, resource.id, MachineAction.TERMINATE)

    def act(self, ctx: Ctx, resource: Resource, invocation: ActionInvocation) -> Entity | Mixin:
        assert isinstance(resource, Machine)
        m = resource
        if invocation.action == c.SAVE.id:
            return self._save(ctx, m, invocation)
        op = ACTIONS.get(invocation.action)
        if op is None or invocation.action not in ctx.catalog.actions:
            raise OcciError(400, f"A compute has no action '{invocation.action}' here.")
        if op.needs and op.needs not in ctx.capabilities(m):
            raise OcciError(501, "This compute's cloud cannot do that.")
        canonical = op.actions.get(m.state)
        if canonical is None:
            raise OcciError(409, f"A compute cannot {invocation.action.rsplit('#', 1)[1]} while it is {m.state}.")
        method = ActionMethod.GRACEFUL
        hard = HARD_METHODS.get(str(invocation.attributes.get("method", "")))
        if hard and hard[0] in ctx.capabilities(m):
            method = hard[1]
        ctx.translator.act_on_machine(ctx.principal, m.id, canonical, method)
        return self.entity(ctx, self.find(ctx, m.id))

    def _save(self, ctx: Ctx, m: Machine, invocation: ActionInvocation) -> Mixin:
        """``save``: a new image of the compute, answered as its new os_tpl mixin."""
        if Capability.IMAGE_CREATE not in ctx.capabilities(m):
            raise OcciError(501, "This compute's cloud cannot save images.")
        if m.state not in SAVABLE:
            raise OcciError(409, f"A compute cannot be saved while it is {m.state}.")
        name = str(invocation.attributes.get("name") or f"{m.tags.get(NAME_TAG) or m.name or m.id}-saved")
        image = ctx.translator.create_image(ctx.principal, ImageSpec(machine_id=m.id, name=name))
        if image.state is ImageState.FAILED:
            raise OcciError(502, "The cloud failed to save the compute.")
        return os_tpl(ctx, image)


def _user_data(value: Any) -> str | None:
    if value is None or value == "":
        return None
    try:
        base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise OcciError(400, "occi.compute.userdata must be base64 text.") from None
    return str(value)
