"""Operations answered with a job that follows their effect (CIMI's ``202 Accepted``).

The call itself runs at once, in the request thread, as every mutation does: a refusal is an immediate
answer, and what the call made is known (CIMI's ``Location``). A job recorded just before the call becomes
the parent of the call's own job; once queued it follows the resources, on whichever worker claims it,
until they reach the state the operation aims at (a machine started, a volume attached, an image
available), fail, or the job outlives ``job_run_bound``. Each run looks once and, while the targets are on
their way, puts the job back in the queue to look again shortly (``Deferral``): a wait holds no runner thread.
Following only reads, so a runner that takes the job over from a dead one simply reads again.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from translator.checkpoints import CURRENT_JOB
from translator.errors import BackendError, CloudgateError
from translator.identity import authorize
from translator.jobs import Deferral, JobOutcome, JobSpec, JobStore
from translator.listings import MissingIds
from translator.model import Job, Principal, Resource

if TYPE_CHECKING:
    from translator.translator import Translator

T = TypeVar("T")

#: the handler every followed operation runs through; jobs are named ``follow:<action>``
OPERATION = "follow"
#: states a resource never leaves: a step that does not aim at one of them can no longer be reached (a machine
#: deleted while its launch is followed), so its job fails at once instead of holding a runner until its bound
ENDED = frozenset({"terminating", "terminated", "deleting", "deleted", "deregistered"})


@dataclass(frozen=True, slots=True)
class Step:
    """One stage of a goal: every target in one of ``states`` (none: reached at once), or gone with ``gone``.

    ``act`` is a machine action the step starts with, for targets not yet in ``states`` (a machine created to
    be stopped is started first, then stopped). ``attach`` names volumes (id, device or "") to attach to the
    (single) target machine once the step is reached: a machine made with existing volumes.
    """

    states: tuple[str, ...] = ()
    gone: bool = False
    act: str = ""
    attach: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Goal:
    """What a followed operation waits for, in canonical states of ``kind``."""

    kind: str
    steps: tuple[Step, ...] = ()
    #: states that end the job as failed
    failed: tuple[str, ...] = ("error", "failed")

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "steps": [asdict(s) for s in self.steps], "failed": list(self.failed)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Goal:
        steps = tuple(
            Step(
                tuple(s.get("states", ())),
                bool(s.get("gone")),
                str(s.get("act", "")),
                tuple((str(v), str(d)) for v, d in s.get("attach", ())),
            )
            for s in data["steps"]
        )
        return cls(str(data["kind"]), steps, tuple(data.get("failed", ())))


class Follower:
    """Records followed operations and runs their jobs (the ``follow`` handler)."""

    def __init__(self, translator: Translator, jobs: JobStore, poll: float = 0.25) -> None:
        self.translator = translator
        self.jobs = jobs
        self.poll = poll

    def follow(
        self,
        principal: Principal,
        action: str,
        goal: Goal,
        call: Callable[[], T],
        targets: Sequence[str] = (),
    ) -> tuple[Job, T]:
        """Run ``call`` under a new job ``follow:<action>`` and queue that job to follow ``goal``.

        The targets are ``targets`` or, for a create, the resources ``call`` returned. A failing call ends the
        job as failed and raises.
        """
        authorize(principal, "write")
        job = self.jobs.create(principal.tenant, JobSpec(f"{OPERATION}:{action}", goal.kind, tuple(targets)))
        token = CURRENT_JOB.set(job)
        try:
            result = call()
        except BaseException as exc:
            with contextlib.suppress(redis.RedisError):
                self.jobs.finish(job, None, error=exc.message if isinstance(exc, CloudgateError) else "Internal error.")
            raise
        finally:
            CURRENT_JOB.reset(token)
        ids = list(targets) or [r.id for r in _resources(result)]
        arguments = {"principal": {"user": principal.user, "tenant": principal.tenant, "role": principal.role}}
        arguments["goal"] = goal.to_json()
        self.jobs.queue_with(job, ids, arguments)
        return job, result

    def run(self, job: Job) -> JobOutcome | Deferral:
        """Follow a job's targets through its goal's steps (the runner's handler for ``follow:*``).

        One look per run: while targets are still on their way the job is deferred (``Deferral``), its place in
        the goal (step, whether the step's action was taken, the targets left, the deadline) saved in its
        arguments, so a wait holds no runner thread and whichever runner takes it next goes on from there.
        """
        principal = Principal(**job.arguments["principal"])
        goal = Goal.from_json(job.arguments["goal"])
        at = Place.from_json(job.arguments.get("place"), job, self.jobs.settings.run_bound)
        for number in range(at.step, len(goal.steps)):
            step = goal.steps[number]
            acted = (at.acted and number == at.step) or not step.act
            ids, waiting, acted = self._look(principal, job, goal, step, at.ids, acted, (number, len(goal.steps)))
            if waiting:
                if time.time() > at.deadline:
                    raise BackendError(f"The {goal.kind} did not reach {' or '.join(step.states)} in time.")
                place = Place(number, acted, tuple(ids), at.deadline)
                return Deferral(self.poll, {**job.arguments, "place": place.to_json()})
            at = Place(number, acted, tuple(ids), at.deadline)
            for volume_id, device in step.attach:
                attached = self.translator.get(principal, "volume", volume_id)
                if not any(a.machine_id in ids for a in getattr(attached, "attachments", ())):
                    self.translator.attach_volume(principal, volume_id, ids[0], device or None)
        return JobOutcome(affected_ids=at.ids)

    def _look(
        self,
        principal: Principal,
        job: Job,
        goal: Goal,
        step: Step,
        ids: Sequence[str],
        acted: bool,
        stage: tuple[int, int],
    ) -> tuple[list[str], list[str], bool]:
        """One look at the targets: (the targets left, those not yet where ``step`` aims, whether its action was
        taken). Raises when one failed, was deleted before it got there, or the job is no longer this run's."""
        ids = list(ids)
        while True:
            try:
                resources = self.translator.get_many(principal, goal.kind, ids) if ids else []
                break
            except MissingIds as exc:
                if not step.gone:
                    raise
                ids = [i for i in ids if i not in set(exc.ids)]
        states = [str(getattr(r, "state", "")) for r in resources]
        for resource, state in zip(resources, states, strict=True):
            if state in goal.failed and state not in step.states:
                reason = getattr(resource, "state_reason", "") or "no reason given"
                raise BackendError(f"The {goal.kind} '{resource.id}' went into state {state}: {reason}.")
            if state in ENDED and not step.gone and state not in step.states:
                aim = " or ".join(step.states) or "ready"
                raise BackendError(f"The {goal.kind} '{resource.id}' was deleted ({state}) before it was {aim}.")
        waiting = [r.id for r, s in zip(resources, states, strict=True) if step.states and s not in step.states]
        if not waiting:
            return ids, [], acted
        if not acted:
            for gid in waiting:
                self.translator.act_on_machine(principal, gid, step.act)
            acted = True
        done = len(ids) - len(waiting)
        progress = int(100 * (stage[0] * len(ids) + done) / (stage[1] * max(1, len(ids))))
        if not self.jobs.report(job, progress, f"{done} of {len(ids)} done"):
            raise BackendError("Another worker took this job over.")  # its record is no longer ours
        return ids, waiting, acted


@dataclass(frozen=True, slots=True)
class Place:
    """Where a followed job stands, kept in its arguments between runs: the step it is on, whether that step's
    action was taken, the targets left, and when it gives up (epoch seconds, from its first run)."""

    step: int
    acted: bool
    ids: tuple[str, ...]
    deadline: float

    def to_json(self) -> dict[str, Any]:
        return {"step": self.step, "acted": self.acted, "ids": list(self.ids), "deadline": self.deadline}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, job: Job, run_bound: float) -> Place:
        """The saved place, or the start: the first step, the job's targets, ``run_bound`` from now."""
        if not data:
            return cls(0, False, tuple(job.target_ids), time.time() + run_bound)
        return cls(int(data["step"]), bool(data["acted"]), tuple(map(str, data["ids"])), float(data["deadline"]))


def _resources(result: Any) -> list[Resource]:
    if isinstance(result, Resource):
        return [result]
    if isinstance(result, list | tuple):
        return [r for r in result if isinstance(r, Resource)]
    key_pair = getattr(result, "key_pair", None)
    return [key_pair] if isinstance(key_pair, Resource) else []
