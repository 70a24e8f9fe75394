"""The work of a System, done as one job on whichever worker claims it: create every component, act on every
machine, delete every member.

A system lives in the document store (kind ``cimi_system``): its body holds what the client sees (name,
description, properties) and what only the gateway needs (``phase``, ``region``, the resolved ``components``
and the ``job`` now working on it); its member set names what it is made of, ``"<kind>:<gateway id>"``.

Creating runs components in a fixed order — networks, volumes, addresses, machines — all in the system's one
backend account; components are independent (a machine is not placed on the system's own network nor given its
volumes: a template that wants that names existing resources). Each member is added to the member set as soon
as it exists. Machines and volumes carry an idempotency key derived from the job id, the component's name and
the member's index, so a runner that takes the job over from a dead one finds them instead of making them again;
networks and addresses have no key in the canonical model, so a takeover skips as many of each as the member set
already lists (one dying between the cloud's answer and the member write can still leave one behind).

A component that fails rolls the system back: every member already made is deleted (machines first, then
volumes, addresses, networks), and the system stays, empty, in state ERROR, its job FAILED saying why. A
member the rollback cannot delete stays listed, so deleting the system later deletes it: nothing is orphaned.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from frontends.cimi.context import Ctx
from frontends.cimi.resources.networks import create_with_subnet, delete_with_subnets, network_spec
from translator.errors import BackendError, CloudgateError, Conflict, NotFound, PreconditionFailed
from translator.jobs import JobOutcome
from translator.listings import MissingIds
from translator.model import Job, JobState, MachineAction, MachineState, Principal, VolumeState
from translator.translator import Translator

#: the document kind of a System
KIND = "cimi_system"
#: the runner operation of every system job; its detail after ``:`` is the CIMI action (``add``, ``start``...)
OPERATION = "cimi_system"
#: how often a job reads the states it waits for
POLL = 0.25


class Phase:
    """Where a system is in its life; READY shows its machines' aggregate state."""

    CREATING = "CREATING"
    READY = "READY"
    DELETING = "DELETING"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class ComponentType:
    """A kind of component: its canonical kind, CIMI type, template attribute and where its templates live."""

    kind: str
    type_name: str
    template_attr: str
    templates: str
    doc_kind: str
    collection: str
    #: whether a descriptor must give a template (a network or address can be made from nothing)
    needs_template: bool


#: CIMI type -> component type, in creation order (deletion goes the other way round, machines first)
COMPONENTS: dict[str, ComponentType] = {
    "Network": ComponentType(
        "network", "Network", "networkTemplate", "networkTemplates", "cimi_network_template", "networks", False
    ),
    "Volume": ComponentType(
        "volume", "Volume", "volumeTemplate", "volumeTemplates", "cimi_volume_template", "volumes", True
    ),
    "Address": ComponentType(
        "address", "Address", "addressTemplate", "addressTemplates", "cimi_address_template", "addresses", False
    ),
    "Machine": ComponentType(
        "machine", "Machine", "machineTemplate", "machineTemplates", "cimi_machine_template", "machines", True
    ),
}
BY_KIND: dict[str, ComponentType] = {c.kind: c for c in COMPONENTS.values()}


def member_id(kind: str, gid: str) -> str:
    return f"{kind}:{gid}"


def members(translator: Translator, tenant: str, sid: str) -> dict[str, list[str]]:
    """A system's members by canonical kind (in id order)."""
    found: dict[str, list[str]] = {kind: [] for kind in BY_KIND}
    cursor: str | None = None
    while True:
        page = translator.documents.members(tenant, KIND, sid, cursor, 1000)
        for item in page.items:
            kind, _, gid = item.partition(":")
            if kind in found and gid:
                found[kind].append(gid)
        cursor = page.next_cursor
        if cursor is None:
            return found


def update(translator: Translator, tenant: str, sid: str, change: Callable[[dict[str, Any]], None]) -> None:
    """Change a system's body read-modify-write, again if another writer got in between (an edit, a job)."""
    for _ in range(10):
        doc = translator.documents.get(tenant, KIND, sid)
        body = dict(doc.body)
        change(body)
        try:
            translator.documents.replace(tenant, KIND, sid, body, if_match=doc.etag)
            return
        except PreconditionFailed:
            continue
    raise Conflict(f"The system '{sid}' keeps changing; try again.", kind="system", reason="state")


def phase_of(translator: Translator, tenant: str, body: dict[str, Any]) -> str:
    """A system's phase; one whose job ended without saying (its runners all died) is in ERROR."""
    phase = str(body.get("phase") or Phase.READY)
    if phase in (Phase.CREATING, Phase.DELETING):
        job = translator.jobs.get(tenant, str(body.get("job") or ""))
        if job is None or job.state is JobState.FAILED:
            return Phase.ERROR
    return phase


def worker_ctx(translator: Translator, principal: Principal, key: str = "") -> Ctx:
    """A context for the template readers, in a job (no request: URLs are never made from it)."""
    return Ctx(principal, "2", "", translator, translator.documents, idempotency_key=key)


def component_key(job_id: str, name: str, index: int) -> str:
    """The idempotency key of one member of a create: the same on every runner that runs this job."""
    return hashlib.sha256(f"cimi-system\x1f{job_id}\x1f{name}\x1f{index}".encode()).hexdigest()[:32]


def member_name(component: dict[str, Any], index: int) -> str:
    name = str(component["name"])
    return name if int(component["quantity"]) == 1 else f"{name}-{index + 1}"


class LostJob(BackendError):
    """This runner no longer holds the job (it stalled past its lease): it stops and undoes nothing."""


class SystemWork:
    """The runner's handler of ``cimi_system:*`` jobs (one per worker; stateless between jobs)."""

    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    def run(self, job: Job) -> JobOutcome:
        action = job.operation.partition(":")[2]
        principal = Principal(**job.arguments["principal"])
        sid = job.target_ids[0]
        if action == "add":
            self.create(job, principal, sid)
        elif action == "delete":
            self.delete(job, principal, sid)
        else:
            self.act(job, principal, sid, action)
        return JobOutcome(affected_ids=(sid,))

    # -- create -------------------------------------------------------------------------------
    def create(self, job: Job, principal: Principal, sid: str) -> None:
        tenant = principal.tenant
        body = self.translator.documents.get(tenant, KIND, sid).body
        region = str(body["region"])
        components: list[dict[str, Any]] = body["components"]
        before = members(self.translator, tenant, sid)  # non-empty only when this job is taken over
        made: dict[str, list[str]] = {kind: list(ids) for kind, ids in before.items()}
        stopped: list[str] = []  # machines to stop once running (initialState STOPPED)
        total = sum(int(c["quantity"]) for c in components) or 1
        done = 0
        current = ""
        try:
            for ctype in COMPONENTS.values():
                slot = 0
                for component in (c for c in components if c["kind"] == ctype.kind):
                    current = str(component["name"])
                    for index in range(int(component["quantity"])):
                        slot += 1
                        done += 1
                        if ctype.kind in ("network", "address") and slot <= len(before[ctype.kind]):
                            continue  # made before the takeover: they have no idempotency key to find them by
                        key = component_key(job.id, current, index)
                        gid, initial = self._make(principal, ctype.kind, component, index, key, region)
                        if gid not in made[ctype.kind]:
                            made[ctype.kind].append(gid)
                        self.translator.documents.add_members(tenant, KIND, sid, [member_id(ctype.kind, gid)])
                        self._tag(principal, ctype.kind, gid, component)
                        if initial == "STOPPED":
                            stopped.append(gid)
                        self._report(job, 80 * done // total, f"{done} of {total} components made")
            current = ""
            self._settle(job, principal, made, stopped)
        except LostJob:
            raise  # the runner that took the job over carries on with it: nothing of its work is undone
        except Exception as exc:
            self._roll_back(job, principal, sid, made, current, exc)
        update(self.translator, tenant, sid, lambda b: b.update(phase=Phase.READY))

    def _make(
        self, principal: Principal, kind: str, component: dict[str, Any], index: int, key: str, region: str
    ) -> tuple[str, str]:
        """Make one member; its gateway id and the state a machine is to end in."""
        from frontends.cimi.resources.templates import machine_spec

        t = self.translator
        template: dict[str, Any] = component["template"]
        name = member_name(component, index)
        properties = {str(k): str(v) for k, v in (component.get("properties") or {}).items()}
        if kind == "machine":
            ctx = worker_ctx(t, principal, key)
            spec, _, initial, _ = machine_spec(
                ctx, {"machineTemplate": template, "name": name, "properties": properties}
            )
            return t.create_machines(principal, spec, region)[0].id, initial
        if kind == "volume":
            spec = volume_spec(worker_ctx(t, principal), template, name, key, region)
            return t.create_volume(principal, spec, region).id, ""
        if kind == "network":
            ctx = worker_ctx(t, principal)
            network = network_spec(ctx, template, name, str(template.get("description") or ""), region)
            return create_with_subnet(ctx, network, region).id, ""
        return t.allocate_address(principal, region).id, ""

    def _tag(self, principal: Principal, kind: str, gid: str, component: dict[str, Any]) -> None:
        """A component's properties become its members' tags (a machine is launched with them)."""
        properties = {str(k): str(v) for k, v in (component.get("properties") or {}).items()}
        if properties and kind != "machine":
            self.translator.update_tags(principal, kind, [gid], properties)

    def _settle(self, job: Job, principal: Principal, made: dict[str, list[str]], stopped: list[str]) -> None:
        """Wait for the machines to run (and stop those to be created stopped) and the volumes to be available."""
        deadline = time.monotonic() + self.translator.jobs.settings.run_bound
        self._wait(job, principal, "machine", made["machine"], ("running", "stopped"), deadline)
        to_stop = [m.id for m in self._live(principal, "machine", stopped) if m.state is MachineState.RUNNING]
        for gid in to_stop:
            self.translator.act_on_machine(principal, gid, MachineAction.STOP)
        self._wait(job, principal, "machine", stopped, ("stopped",), deadline)
        self._wait(job, principal, "volume", made["volume"], ("available", "in-use"), deadline)

    def _roll_back(
        self, job: Job, principal: Principal, sid: str, made: dict[str, list[str]], component: str, exc: Exception
    ) -> None:
        """Delete every member made, mark the system ERROR and fail the job saying why (raises)."""
        reason = _reason(exc)
        what = f"The component '{component}' failed" if component else "The system did not come up"
        try:
            listed = members(self.translator, principal.tenant, sid)
        except NotFound:
            listed = {kind: [] for kind in BY_KIND}
        everything = {kind: list(dict.fromkeys(made[kind] + listed[kind])) for kind in BY_KIND}
        left = self.tear_down(job, principal, sid, everything)
        with contextlib.suppress(NotFound):
            update(self.translator, principal.tenant, sid, lambda b: b.update(phase=Phase.ERROR))
        if left:
            raise BackendError(
                f"{what}: {reason} Rolling back, {len(left)} member(s) could not be deleted; they stay listed in "
                f"the system (state ERROR) and go when it is deleted: {'; '.join(left)[:300]}"
            ) from exc
        raise BackendError(f"{what}: {reason} Every member made was deleted; the system is in state ERROR.") from exc

    # -- delete -------------------------------------------------------------------------------
    def delete(self, job: Job, principal: Principal, sid: str) -> None:
        tenant = principal.tenant
        left = self.tear_down(job, principal, sid, members(self.translator, tenant, sid))
        if left:
            update(self.translator, tenant, sid, lambda b: b.update(phase=Phase.ERROR))
            raise BackendError(
                f"{len(left)} member(s) of the system could not be deleted; the system stays in state ERROR with "
                f"them listed: {'; '.join(left)[:300]}"
            )
        with contextlib.suppress(NotFound):
            self.translator.documents.delete(tenant, KIND, sid)

    def tear_down(self, job: Job, principal: Principal, sid: str, listed: dict[str, list[str]]) -> list[str]:
        """Delete members (machines, then volumes once free, addresses, networks last), dropping each from the
        member set once gone; what could not be deleted, as messages."""
        t = self.translator
        deadline = time.monotonic() + t.jobs.settings.run_bound / 2
        left: list[str] = []

        def forget(kind: str, gids: list[str]) -> None:
            if gids:
                with contextlib.suppress(NotFound):
                    t.documents.remove_members(principal.tenant, KIND, sid, [member_id(kind, g) for g in gids])

        machines = self._live(principal, "machine", listed["machine"])
        for m in machines:
            if m.state not in (MachineState.TERMINATING, MachineState.TERMINATED):
                self._attempt(left, deadline, lambda g=m.id: t.act_on_machine(principal, g, MachineAction.TERMINATE))
        gone = self._wait(job, principal, "machine", listed["machine"], ("terminated",), deadline, left)
        forget("machine", gone)
        steps: list[tuple[str, Callable[[str], Any]]] = [
            ("volume", lambda g: self._delete_volume(principal, g)),
            ("address", lambda g: self._release(principal, g)),
            ("network", lambda g: delete_with_subnets(worker_ctx(t, principal), g)),
        ]
        for kind, remove in steps:
            for gid in listed[kind]:
                if self._attempt(left, deadline, lambda g=gid, r=remove: r(g)):
                    forget(kind, [gid])
        return left

    def _delete_volume(self, principal: Principal, gid: str) -> None:
        volume = self.translator.get(principal, "volume", gid)
        if volume.state is VolumeState.IN_USE:  # attached by hand to a machine that is not the system's
            self.translator.detach_volume(principal, gid, None, force=True)
            raise Conflict("detaching", kind="volume", reason="state")  # tried again once it is free
        self.translator.delete_volume(principal, gid)

    def _release(self, principal: Principal, gid: str) -> None:
        address = self.translator.get(principal, "address", gid)
        if getattr(address, "machine_id", None):
            self.translator.disassociate_address(principal, gid)
        self.translator.release_address(principal, gid)

    def _attempt(self, left: list[str], deadline: float, call: Callable[[], Any]) -> bool:
        """Run a deletion; gone already counts as done, a state conflict is tried again until ``deadline``."""
        while True:
            try:
                call()
                return True
            except NotFound:
                return True
            except Conflict as exc:
                if time.monotonic() > deadline:
                    left.append(exc.message)
                    return False
            except CloudgateError as exc:
                left.append(exc.message)
                return False
            time.sleep(POLL)

    # -- actions ------------------------------------------------------------------------------
    def act(self, job: Job, principal: Principal, sid: str, action: str) -> None:
        """Start, stop or restart every machine of the system the action applies to, and wait for them."""
        from frontends.cimi.resources.machines import ACTIONS

        op = ACTIONS[action]
        machines = self._live(principal, "machine", members(self.translator, principal.tenant, sid)["machine"])
        failures: list[str] = []
        acted = [
            m.id
            for m in machines
            if m.state in op.actions
            and self._attempt(
                failures, 0.0, lambda m=m: self.translator.act_on_machine(principal, m.id, op.actions[m.state])
            )
        ]
        deadline = time.monotonic() + self.translator.jobs.settings.run_bound
        self._wait(job, principal, "machine", acted, (op.goal,), deadline)
        if failures:
            raise BackendError(f"{len(failures)} machine(s) could not {action}: {'; '.join(failures)[:300]}")

    # -- reading and waiting ------------------------------------------------------------------
    def _live(self, principal: Principal, kind: str, gids: list[str]) -> list[Any]:
        """The named resources that still exist (one deleted behind the gateway's back is left out)."""
        ids = list(gids)
        while ids:
            try:
                return self.translator.get_many(principal, kind, ids)
            except MissingIds as exc:
                ids = [g for g in ids if g not in set(exc.ids)]
        return []

    def _wait(
        self,
        job: Job,
        principal: Principal,
        kind: str,
        gids: list[str],
        states: tuple[str, ...],
        deadline: float,
        left: list[str] | None = None,
    ) -> list[str]:
        """Wait for every one of ``gids`` to be in one of ``states`` (or gone, which counts as reached for a
        deletion); a failed state raises unless waiting for a deletion. The ids that got there."""
        deleting = left is not None
        while True:
            found = {r.id: r for r in self._live(principal, kind, gids)}
            reached = [g for g in gids if g not in found or str(found[g].state) in states]
            if not deleting:
                for r in found.values():
                    if str(r.state) == "error" and "error" not in states:
                        why = getattr(r, "state_reason", "") or "no reason given"
                        raise BackendError(f"The {kind} '{r.id}' went into state error: {why}.")
                missing = [g for g in gids if g not in found]
                if missing:
                    raise BackendError(f"The {kind} '{missing[0]}' disappeared.")
            if len(reached) == len(gids):
                return reached
            if time.monotonic() > deadline:
                message = f"{len(gids) - len(reached)} {kind}(s) did not reach {' or '.join(states)} in time."
                if deleting:
                    left.append(message)
                    return reached
                raise BackendError(message)
            self._report(job, 80 + 19 * len(reached) // max(1, len(gids)), f"waiting for {kind}s")
            time.sleep(POLL)

    def _report(self, job: Job, progress: int, message: str) -> None:
        if not self.translator.jobs.report(job, progress, message):
            raise LostJob("Another worker took this job over.")


def _reason(exc: Exception) -> str:
    """What a job record says about a failure: our errors' words, never a traceback."""
    message = getattr(exc, "message", None)
    if isinstance(message, str) and message:
        return message if message.endswith(".") else message + "."
    return f"Internal error ({type(exc).__name__})."


def volume_spec(ctx: Ctx, template: dict[str, Any], name: str, key: str, region: str) -> Any:
    """A volume component's template as a canonical create in the first zone of the system's account."""
    from frontends.cimi.errors import CimiError
    from frontends.cimi.resources.templates import volume_config
    from translator.model import VolumeSpec

    size_gb, tier = volume_config(ctx, template.get("volumeConfig"))
    snapshot_id = None
    if template.get("volumeImage") is not None:
        snapshot_id = ctx.ref_id(template["volumeImage"], "volumeImages", "volumeImage")
    if size_gb is None and snapshot_id is None:
        raise CimiError(400, "A volume component needs a capacity or a volumeImage.")
    account = ctx.translator.account(ctx.principal, region)
    return VolumeSpec(
        size_gb=size_gb,
        zone=account.zones[0] if account.zones else None,
        tier=tier,
        snapshot_id=snapshot_id,
        name=name,
        description=str(template.get("description") or ""),
        idempotency_key=key,
    )
