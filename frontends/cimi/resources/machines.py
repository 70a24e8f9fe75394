"""Machines (DSP0263 Machine): create from a template (by value or reference), edit, delete, actions,
and the sub-collections ``disks``, ``volumes`` and ``networkInterfaces`` (with their ``addresses``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frontends.cimi import states
from frontends.cimi.context import NAME_TAG, Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, resource_listing
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery
from frontends.cimi.resources import machine_parts
from frontends.cimi.resources.images import image_doc
from frontends.cimi.resources.templates import machine_spec
from translator.backend import Capability
from translator.model import (
    ActionMethod,
    ImageSpec,
    Machine,
    MachineAction,
    MachineState,
    Resource,
)
from translator.translator import Goal, Step

KIND = "machine"


@dataclass(frozen=True, slots=True)
class MachineOp:
    """A CIMI machine action: the canonical action it is in each state it is allowed in, what it waits for."""

    actions: dict[MachineState, MachineAction]
    goal: str
    needs: Capability | None = None


#: CIMI action -> how it is done. ``start`` resumes a paused or suspended machine, as CIMI means it.
ACTIONS: dict[str, MachineOp] = {
    "start": MachineOp(
        {
            MachineState.STOPPED: MachineAction.START,
            MachineState.PAUSED: MachineAction.UNPAUSE,
            MachineState.SUSPENDED: MachineAction.RESUME,
        },
        "running",
    ),
    "stop": MachineOp({MachineState.RUNNING: MachineAction.STOP}, "stopped"),
    "restart": MachineOp({MachineState.RUNNING: MachineAction.REBOOT}, "running"),
    "pause": MachineOp({MachineState.RUNNING: MachineAction.PAUSE}, "paused", Capability.MACHINE_PAUSE),
    "suspend": MachineOp({MachineState.RUNNING: MachineAction.SUSPEND}, "suspended", Capability.MACHINE_SUSPEND),
}
#: states a machine can be captured in
CAPTURABLE = frozenset({MachineState.RUNNING, MachineState.STOPPED})
#: capabilities besides the action's own that a resume from these states needs
RESUME_NEEDS: dict[MachineState, Capability] = {
    MachineState.PAUSED: Capability.MACHINE_PAUSE,
    MachineState.SUSPENDED: Capability.MACHINE_SUSPEND,
}
GONE = (MachineState.TERMINATING, MachineState.TERMINATED)


def machine_doc(ctx: Ctx, m: Resource) -> dict[str, Any]:
    assert isinstance(m, Machine)
    href = ctx.href("machines", m.id)
    doc = common(ctx, "Machine", href, m)
    doc["state"] = states.MACHINE[m.state]
    if m.vcpus:
        doc["cpu"] = m.vcpus
    if m.memory_mb:
        doc["memory"] = m.memory_mb * 1024  # CIMI counts memory in kibibytes
    doc["cpuArch"] = m.architecture
    doc["disks"] = {"href": f"{href}/disks"}
    doc["volumes"] = {"href": f"{href}/volumes"}
    doc["networkInterfaces"] = {"href": f"{href}/networkInterfaces"}
    if m.flavor_id:
        doc["machineConfig"] = {"href": ctx.href("machineConfigs", m.flavor_id)}
    if m.image_id:
        doc["machineImage"] = {"href": ctx.href("machineImages", m.image_id)}
    doc["operations"] = operations(ctx, href, allowed_operations(ctx, m))
    return doc


def allowed_operations(ctx: Ctx, m: Machine) -> list[str]:
    """What a client may do to this machine now, on its backend."""
    if m.state in GONE:
        return []
    caps = ctx.capabilities(m)
    names = ["edit", "delete"]
    for name, op in ACTIONS.items():
        action = op.actions.get(m.state)
        if action is None or (op.needs and op.needs not in caps):
            continue
        if name == "start" and m.state in RESUME_NEEDS and RESUME_NEEDS[m.state] not in caps:
            continue
        names.append(name)
    if m.state in CAPTURABLE and Capability.IMAGE_CREATE in caps:
        names.append("capture")
    return names


class Machines(Controller):
    name = "machines"
    type_name = "Machine"
    create_type = "MachineCreate"
    kind = KIND

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, machine_doc, keep=lambda r: r.state not in GONE)

    def machine(self, ctx: Ctx, rid: str) -> Machine:
        m = ctx.translator.get(ctx.principal, KIND, rid)
        assert isinstance(m, Machine)
        if m.state is MachineState.TERMINATED:
            raise CimiError(404, f"The machine '{rid}' has been deleted.")
        return m

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return machine_doc(ctx, self.machine(ctx, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        spec, region, initial, attach = machine_spec(ctx, body)
        steps = [Step(("running",), attach=attach)]
        if initial == "STOPPED":
            steps.append(Step(("stopped",), act=MachineAction.STOP.value))
        job, machines = ctx.translator.follow(
            ctx.principal,
            "add",
            Goal(KIND, tuple(steps)),
            lambda: ctx.translator.create_machines(ctx.principal, spec, region),
        )
        m = machines[0]
        return accepted(ctx, job, machine_doc(ctx, m), "Machine", location=ctx.href("machines", m.id))

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        m = self.machine(ctx, rid)
        name = body.get("name")
        if "properties" in body:
            replace_properties(ctx, KIND, m, body["properties"])
        if name is not None and name != (m.tags.get(NAME_TAG) or m.name):
            # A machine's CIMI name is its Name tag (EC2's name): renaming sets the tag on any cloud, running
            # or not; the cloud's own name stays what it was made with.
            ctx.translator.update_tags(ctx.principal, KIND, [rid], {NAME_TAG: str(name)})
        return Reply(200, self.get(ctx, rid), "Machine")

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        self.machine(ctx, rid)
        job, _ = ctx.translator.follow(
            ctx.principal,
            "delete",
            Goal(KIND, (Step(("terminated",), gone=True),)),
            lambda: ctx.translator.act_on_machine(ctx.principal, rid, MachineAction.TERMINATE),
            targets=[rid],
        )
        return accepted(ctx, job)

    def act(self, ctx: Ctx, rid: str, action: str, body: dict[str, Any]) -> Reply:
        m = self.machine(ctx, rid)
        if action == "capture":
            return self.capture(ctx, m, body.get("image") or body.get("machineImage") or {})
        if action in ("insert", "remove"):  # CIMI 2.0's volume actions on the machine: attach, detach
            return machine_parts.volume_action(ctx, m, action, body)
        op = ACTIONS.get(action)
        if op is None:
            raise CimiError(400, f"A Machine has no action '{action}'.")
        if action not in allowed_operations(ctx, m):
            if op.needs and op.needs not in ctx.capabilities(m):
                raise CimiError(501, f"This machine's cloud cannot {action} it.")
            raise CimiError(409, f"A machine cannot {action} while it is {states.MACHINE[m.state]}.")
        canonical = op.actions[m.state]
        method = ActionMethod.HARD if _truthy(body.get("force")) and action in ("stop", "restart") else None
        if method is ActionMethod.HARD:
            hard = Capability.STOP_HARD if action == "stop" else Capability.REBOOT_HARD
            method = ActionMethod.HARD if hard in ctx.capabilities(m) else ActionMethod.GRACEFUL
        job, _ = ctx.translator.follow(
            ctx.principal,
            action,
            Goal(KIND, (Step((op.goal,)),)),
            lambda: ctx.translator.act_on_machine(ctx.principal, rid, canonical, method or ActionMethod.GRACEFUL),
            targets=[rid],
        )
        return accepted(ctx, job, location=ctx.href("machines", rid))

    def capture(self, ctx: Ctx, m: Machine, image: dict[str, Any]) -> Reply:
        """Make a MachineImage of a machine (its ``capture`` action, or a MachineImage posted with the
        machine's URL as ``imageLocation``)."""
        if m.state not in CAPTURABLE:
            raise CimiError(409, f"A machine cannot be captured while it is {states.MACHINE[m.state]}.")
        if Capability.IMAGE_CREATE not in ctx.capabilities(m):
            raise CimiError(501, "This machine's cloud cannot capture images.")
        name = str(image.get("name") or f"{m.name or m.id}-capture")
        spec = ImageSpec(machine_id=m.id, name=name, description=str(image.get("description") or ""))
        job, made = ctx.translator.follow(
            ctx.principal,
            "capture",
            Goal("image", (Step(("available",)),)),
            lambda: ctx.translator.create_image(ctx.principal, spec),
        )
        properties = image.get("properties")
        if isinstance(properties, dict) and properties:
            ctx.translator.update_tags(
                ctx.principal, "image", [made.id], {str(k): str(v) for k, v in properties.items()}
            )
        href = ctx.href("machineImages", made.id)
        return accepted(ctx, job, image_doc(ctx, made), "MachineImage", location=href)

    def sub(self, ctx: Ctx, rid: str, path: list[str], method: str, query: Any) -> Reply:
        return machine_parts.dispatch(ctx, self.machine(ctx, rid), path, method, query)


def replace_properties(ctx: Ctx, kind: str, resource: Resource, properties: Any) -> None:
    """An edit's ``properties`` replace the resource's tags: new and changed ones set, missing ones removed."""
    if not isinstance(properties, dict):
        raise CimiError(400, "'properties' must be a map of strings.")
    wanted = {str(k): str(v) for k, v in properties.items()}
    shown_name = resource.tags.get(NAME_TAG) or resource.name
    if resource.tags.get(NAME_TAG) == shown_name and NAME_TAG not in wanted:
        wanted[NAME_TAG] = shown_name  # the name's tag is not a property: an edit of properties keeps it
    put = {k: v for k, v in wanted.items() if resource.tags.get(k) != v}
    remove: dict[str, str | None] = {k: None for k in resource.tags if k not in wanted}
    if put or remove:
        ctx.translator.update_tags(ctx.principal, kind, [resource.id], put, remove)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
