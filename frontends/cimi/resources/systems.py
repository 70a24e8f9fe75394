"""Systems (DSP0263 System and SystemTemplate): machines, volumes, networks and addresses made, acted on and
deleted as one unit on one backend account — what multi-cloud managers call an appliance.

A SystemTemplate is a stored document whose ``componentDescriptors`` each name a ``type`` (Machine, Volume,
Network, Address: a resource URI of either CIMI version, or the bare type name), a template of that type in the
attribute named after it (``machineTemplate``... by value or by reference), a ``quantity`` (1 to 20) and
``properties`` (tags of what it makes). Creating a System checks every component at once (400 for a bad one),
stores the system with its components resolved, and answers 202: the work is one job (``system_jobs``), run
by any worker, its every backend call a nested job. The system's ``state`` is CREATING, DELETING or ERROR while
its phase says so, and otherwise its machines' common state (MIXED when they differ; STARTED with none).
"""

from __future__ import annotations

import contextlib
from typing import Any

from frontends.cimi import states
from frontends.cimi.context import SCHEMAS, Ctx, Reply, iso, operations
from frontends.cimi.controller import windowed
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery, apply_select
from frontends.cimi.resources.machines import ACTIONS
from frontends.cimi.resources.system_jobs import (
    COMPONENTS,
    KIND,
    OPERATION,
    ComponentType,
    Phase,
    SystemWork,
    members,
    phase_of,
    update,
    volume_spec,
)
from frontends.cimi.resources.templates import OWN, DocumentCollection, machine_spec, resolve
from translator.documents import Document
from translator.errors import Conflict
from translator.identity import authorize
from translator.ids import sortable_id
from translator.jobs import JobSpec
from translator.listings import MissingIds
from translator.model import Machine, MachineState

#: bounds of a template: descriptors, members of one component, members of a whole system
MAX_DESCRIPTORS = 20
MAX_QUANTITY = 20
MAX_MEMBERS = 100
#: the machine actions a System offers (on every machine of it they apply to)
SYSTEM_ACTIONS = ("start", "stop", "restart")
#: the template attribute of every component type, to refuse one given to a component of another type
TEMPLATE_ATTRS = frozenset({c.template_attr for c in COMPONENTS.values()} | {"credentialTemplate", "systemTemplate"})


# -- templates ----------------------------------------------------------------------------------------
def component_type(value: Any, where: str) -> ComponentType:
    """A descriptor's ``type``: a resource URI of CIMI 1 or 2 (``.../cimi/2/Machine``) or a bare type name."""
    if not isinstance(value, str) or not value.strip():
        raise CimiError(400, f"{where} needs a 'type' (the resource URI of a Machine, Volume, Network or Address).")
    text = value.strip().rstrip("/")
    name = text.rsplit("/", 1)[-1]
    if "/" in text and text[: -len(name) - 1] not in SCHEMAS.values():
        raise CimiError(400, f"{where}: '{text[:200]}' is not a CIMI resource URI.")
    ctype = COMPONENTS.get(name)
    if ctype is None:
        raise CimiError(400, f"{where}: a system here is made of {', '.join(COMPONENTS)}, not '{name[:64]}'.")
    return ctype


def descriptors(ctx: Ctx, template: dict[str, Any]) -> list[tuple[ComponentType, dict[str, Any], str]]:
    """A system template's component descriptors, checked: (type, descriptor, name) each, names unique."""
    items = template.get("componentDescriptors")
    if not isinstance(items, list) or not items:
        raise CimiError(400, "A system template needs a non-empty list of 'componentDescriptors'.")
    if len(items) > MAX_DESCRIPTORS:
        raise CimiError(400, f"A system template has at most {MAX_DESCRIPTORS} component descriptors.")
    found: list[tuple[ComponentType, dict[str, Any], str]] = []
    total = 0
    for index, item in enumerate(items):
        where = f"componentDescriptors[{index}]"
        if not isinstance(item, dict):
            raise CimiError(400, f"{where} must be a component descriptor.")
        ctype = component_type(item.get("type"), where)
        quantity = item.get("quantity", 1)
        if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            raise CimiError(400, f"{where}: 'quantity' must be a whole number from 1 to {MAX_QUANTITY}.")
        total += quantity
        for attr in sorted(TEMPLATE_ATTRS - {ctype.template_attr}):
            if item.get(attr) is not None:
                raise CimiError(
                    400, f"{where}: a {ctype.type_name} component takes a '{ctype.template_attr}', not '{attr}'."
                )
        inner = item.get(ctype.template_attr)
        if inner is None and ctype.needs_template:
            raise CimiError(400, f"{where}: a {ctype.type_name} component needs a '{ctype.template_attr}'.")
        if inner is not None:
            resolve(ctx, inner, ctype.templates, ctype.doc_kind, ctype.template_attr)  # 400 unless it names one
        name = item.get("name") or f"{ctype.kind}{index + 1}"
        if not isinstance(name, str) or len(name) > 128:
            raise CimiError(400, f"{where}: 'name' must be a string of at most 128 characters.")
        if any(name == other for _, _, other in found):
            raise CimiError(400, f"{where}: another component is already named '{name}'.")
        found.append((ctype, item, name))
    if total > MAX_MEMBERS:
        raise CimiError(400, f"A system has at most {MAX_MEMBERS} members; this template makes {total}.")
    return found


def plan(ctx: Ctx, template: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """Every component resolved to a template by value and checked as its own create would check it, and the
    one region they are all made in: that of the first machine's image, or the tenant's default."""
    components: list[dict[str, Any]] = []
    region: str | None = None
    for ctype, item, name in descriptors(ctx, template):
        inner = item.get(ctype.template_attr)
        body = resolve(ctx, inner, ctype.templates, ctype.doc_kind, ctype.template_attr) if inner else {}
        body = {k: v for k, v in body.items() if k not in OWN}
        if ctype.kind == "machine":
            _, where, _, _ = machine_spec(ctx, {"machineTemplate": body})
            if region is not None and where != region:
                raise CimiError(400, f"Component '{name}': its image is in {where}, the system's first in {region}.")
            region = where
        components.append(
            {
                "name": name,
                "kind": ctype.kind,
                "template": body,
                "quantity": int(item.get("quantity", 1)),
                "properties": dict(item.get("properties") or {}),
            }
        )
    region = region or ctx.translator.account(ctx.principal).region
    for component in components:
        if component["kind"] == "volume":
            volume_spec(ctx, component["template"], component["name"], "", region)
    return components, region


class SystemTemplates(DocumentCollection):
    name = "systemTemplates"
    type_name = "SystemTemplate"
    create_type = "SystemTemplate"
    doc_kind = "cimi_system_template"

    def check(self, ctx: Ctx, body: dict[str, Any]) -> None:
        descriptors(ctx, body)


# -- systems ------------------------------------------------------------------------------------------
def machine_state(machines: list[Machine]) -> str:
    """The state of a settled system: its machines' common CIMI state, MIXED when they differ."""
    seen = {states.MACHINE[m.state] for m in machines if m.state is not MachineState.TERMINATED}
    if not seen:
        return "STARTED"
    return seen.pop() if len(seen) == 1 else "MIXED"


class Systems(DocumentCollection):
    name = "systems"
    type_name = "System"
    create_type = "SystemCreate"
    doc_kind = KIND

    def register(self, translator: Any) -> None:
        translator.runner.register(OPERATION, SystemWork(translator).run)

    def machines(self, ctx: Ctx, sid: str) -> list[Machine]:
        ids = members(ctx.translator, ctx.principal.tenant, sid)["machine"]
        while ids:
            try:
                return [m for m in ctx.translator.get_many(ctx.principal, "machine", ids) if isinstance(m, Machine)]
            except MissingIds as exc:
                ids = [g for g in ids if g not in set(exc.ids)]
        return []

    def render(self, ctx: Ctx, document: Document) -> dict[str, Any]:
        body = document.body
        href = ctx.href(self.name, document.id)
        doc: dict[str, Any] = {"resourceURI": ctx.uri("System"), "id": href}
        for key in ("name", "description"):
            if body.get(key):
                doc[key] = body[key]
        doc["created"], doc["updated"] = iso(document.created), iso(document.updated)
        doc["properties"] = dict(body.get("properties") or {})
        phase = phase_of(ctx.translator, ctx.principal.tenant, body)
        names: list[str] = []
        if phase == Phase.READY:
            machines = self.machines(ctx, document.id)
            doc["state"] = machine_state(machines)
            names = ["edit", "delete"]
            names += [a for a in SYSTEM_ACTIONS if any(m.state in ACTIONS[a].actions for m in machines)]
        else:
            doc["state"] = phase
            names = {Phase.ERROR: ["edit", "delete"], Phase.CREATING: ["edit"]}.get(phase, [])
        for ctype in COMPONENTS.values():
            doc[ctype.collection] = {"href": f"{href}/{ctype.collection}"}
        doc["operations"] = operations(ctx, href, names)
        return doc

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        if "systemTemplate" not in body:
            raise CimiError(400, "A SystemCreate needs a 'systemTemplate'.")
        source = body["systemTemplate"]
        template = resolve(ctx, source, "systemTemplates", "cimi_system_template", "systemTemplate")
        components, region = plan(ctx, template)
        tenant, sid = ctx.principal.tenant, sortable_id()
        job = ctx.translator.jobs.create(tenant, JobSpec(f"{OPERATION}:add", "system", (sid,), _arguments(ctx)))
        stored: dict[str, Any] = {k: body[k] for k in ("name", "description", "properties") if body.get(k)}
        stored.update(phase=Phase.CREATING, region=region, components=components, job=job.id)
        if isinstance(source, dict) and "href" in source:
            stored["template"] = source["href"]
        try:
            document = ctx.documents.create(tenant, KIND, stored, doc_id=sid)
        except Exception:
            with contextlib.suppress(Exception):
                ctx.translator.jobs.finish(job, None, error="The system could not be recorded.")
            raise
        ctx.translator.jobs.enqueue([job])
        href = ctx.href(self.name, sid)
        return accepted(ctx, job, self.render(ctx, document), "System", location=href)

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        document = self.stored(ctx, rid)
        if phase_of(ctx.translator, ctx.principal.tenant, document.body) == Phase.DELETING:
            raise CimiError(409, "The system is being deleted.")
        properties = body.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise CimiError(400, "'properties' must be a map of strings.")

        def change(stored: dict[str, Any]) -> None:
            for key in ("name", "description"):
                if key in body:
                    stored[key] = str(body[key] or "")
            if properties is not None:
                stored["properties"] = {str(k): str(v) for k, v in properties.items()}

        update(ctx.translator, ctx.principal.tenant, rid, change)
        return Reply(200, self.get(ctx, rid), "System")

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        authorize(ctx.principal, "write")
        tenant = ctx.principal.tenant
        document = self.stored(ctx, rid)
        _check_settled(ctx, document.body, "deleted")
        if not any(members(ctx.translator, tenant, rid).values()):
            ctx.documents.delete(tenant, KIND, rid)  # nothing to delete but the record: at once
            return Reply(204)
        job = ctx.translator.jobs.create(tenant, JobSpec(f"{OPERATION}:delete", "system", (rid,), _arguments(ctx)))

        def change(stored: dict[str, Any]) -> None:
            _check_settled(ctx, stored, "deleted")
            stored.update(phase=Phase.DELETING, job=job.id)

        try:
            update(ctx.translator, tenant, rid, change)
        except Exception as exc:
            with contextlib.suppress(Exception):
                ctx.translator.jobs.finish(job, None, error=getattr(exc, "message", "The system could not be deleted."))
            raise
        ctx.translator.jobs.enqueue([job])
        return accepted(ctx, job)

    def act(self, ctx: Ctx, rid: str, action: str, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        document = self.stored(ctx, rid)
        if action not in SYSTEM_ACTIONS:
            raise CimiError(400, f"A System has no action '{action[:64]}' ({', '.join(SYSTEM_ACTIONS)}).")
        phase = phase_of(ctx.translator, ctx.principal.tenant, document.body)
        if phase != Phase.READY:
            raise CimiError(409, f"A system cannot {action} while it is {phase}.")
        if not any(m.state in ACTIONS[action].actions for m in self.machines(ctx, rid)):
            raise CimiError(409, f"No machine of the system can {action} in its present state.")
        spec = JobSpec(f"{OPERATION}:{action}", "system", (rid,), _arguments(ctx))
        job = ctx.translator.jobs.submit(ctx.principal.tenant, spec)
        return accepted(ctx, job, location=ctx.href(self.name, rid))

    def sub(self, ctx: Ctx, rid: str, path: list[str], method: str, query: Any) -> Reply:
        """``/systems/<id>/{machines,volumes,networks,addresses}[/<member id>]``: the members, read-only."""
        self.stored(ctx, rid)
        ctype = next((c for c in COMPONENTS.values() if c.collection == path[0]), None)
        if ctype is None or len(path) > 2:
            raise CimiError(404, f"A system has no '{path[0][:64]}'.")
        if method != "GET":
            raise CimiError(405, "A system's members are read-only here.", headers={"Allow": "GET"})
        href = f"{ctx.href(self.name, rid)}/{ctype.collection}"
        entry = f"System{ctype.type_name}"
        docs = [
            {
                "resourceURI": ctx.uri(entry),
                "id": f"{href}/{gid}",
                ctype.kind: {"href": ctx.href(ctype.collection, gid)},
                "operations": [],
            }
            for gid in members(ctx.translator, ctx.principal.tenant, rid)[ctype.kind]
        ]
        if len(path) == 2:
            found = next((d for d in docs if d["id"] == f"{href}/{path[1]}"), None)
            if found is None:
                raise CimiError(404, f"The system has no such {ctype.type_name.lower()}.")
            return Reply(200, found, entry)
        if isinstance(query, CollectionQuery):
            docs = windowed(docs, query)
            if query.select:
                docs = [apply_select(d, query.select) for d in docs]
        collection = {"resourceURI": ctx.uri(f"{entry}Collection"), "id": href, "count": len(docs)}
        collection[ctype.collection] = docs
        return Reply(200, collection, f"{entry}Collection")


def _check_settled(ctx: Ctx, body: dict[str, Any], what: str) -> None:
    phase = phase_of(ctx.translator, ctx.principal.tenant, body)
    if phase in (Phase.CREATING, Phase.DELETING):
        raise Conflict(f"The system cannot be {what} while it is {phase}.", kind="system", reason="state")


def _arguments(ctx: Ctx) -> dict[str, Any]:
    p = ctx.principal
    return {"principal": {"user": p.user, "tenant": p.tenant, "role": p.role}}
