"""A job runner per worker process: runs queued jobs (and the request threads' own) under leases.

Threads:
- a dispatcher claims queued jobs while a pool thread is free (an enqueue wakes it; else it polls);
- a keeper renews this runner's leases every ``heartbeat`` seconds, fails jobs that outlive
  ``run_bound`` (they are not re-run: they would outlive it again), and reaps lapsed leases of every
  runner in the deployment, so a job whose worker died runs again elsewhere (``max_attempts`` at most).

A job runs at least once, not exactly once: a runner stalled past its lease (or killed after the cloud
acted) leaves the job to another. Handlers therefore must be safe to repeat; the translator's are
(idempotency keys travel to the cloud). Two runners never run a job at the same time unless one of them
stalled longer than a whole lease, and then only the one holding the lease can record the outcome.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import redis

from translator.checkpoints import CURRENT_JOB
from translator.errors import CloudgateError, Unsupported
from translator.jobs import FINISHING, Deferral, JobOutcome, JobSpec, JobStore, Write, parse_ref, ref_of
from translator.model import Job

log = logging.getLogger("cloudgate.jobs")

#: operation name -> the callable that does it; returns a JobOutcome or a JSON-ready result
Handler = Callable[[Job], Any]


@dataclass(slots=True)
class _Active:
    job: Job
    attempt: int
    ref: str
    deadline: float  # time.monotonic() after which the job is failed as overdue


class JobRunner:
    """Runs jobs through a handler registry; one per worker process (threads start on ``start()``)."""

    def __init__(self, jobs: JobStore, handlers: Mapping[str, Handler] | None = None) -> None:
        self.jobs = jobs
        self.settings = jobs.settings
        self.handlers: dict[str, Handler] = dict(handlers or {})
        self.owner = ""
        self._pid = 0
        self._lock = threading.Lock()
        self._active: dict[str, _Active] = {}
        self._busy = 0
        self._slot_free = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool: ThreadPoolExecutor | None = None

    def register(self, operation: str, handler: Handler) -> None:
        self.handlers[operation] = handler

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the threads (idempotent; a forked child starts its own under a new owner name)."""
        with self._lock:
            if self._pid == os.getpid() and not self._stop.is_set():
                return
            self._pid = os.getpid()
            self.owner = f"{socket.gethostname()}:{self._pid}:{secrets.token_hex(4)}"
            self._stop = threading.Event()
            self._active.clear()
            self._busy = 0
            self._pool = ThreadPoolExecutor(self.settings.threads, thread_name_prefix="cg-job")
            self._threads = [
                threading.Thread(target=self._dispatch, name="cg-job-dispatch", daemon=True),
                threading.Thread(target=self._keep, name="cg-job-keeper", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self, timeout: float = 5.0, grace: float = 0.0) -> None:
        """Stop claiming and renewing; give running jobs ``grace`` seconds to end, then hand the rest back.

        A job handed back is queued again at once, so another runner (on any node) takes it now rather than
        when its lease would have lapsed; if this process still finishes it first, the new run finds it ended.
        """
        self._stop.set()
        self._slot_free.set()
        if self._threads:
            with contextlib.suppress(redis.RedisError):  # Redis down: the dispatcher's wait times out instead
                self.jobs.wake(self.owner)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        grace_end = time.monotonic() + grace
        while self._active and time.monotonic() < grace_end:
            time.sleep(0.05)
        self._hand_back()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._threads = []

    def _hand_back(self) -> None:
        with self._lock:
            refs = list(self._active)
        if not refs:
            return
        try:
            requeued, exhausted = self.jobs.hand_back(self.owner, refs)
            self._fail_exhausted(exhausted)
        except redis.RedisError as exc:
            log.warning("jobs not handed back (%s); their leases lapse instead", exc)
            return
        for ref in requeued:
            log.info("job %s: handed back to the queue as this runner stops", ref)

    # -- running -----------------------------------------------------------------------------
    def run_inline(
        self, tenant: str, spec: JobSpec, work: Handler | None = None, parent_id: str | None = None
    ) -> tuple[Job, Any]:
        """Record a job and run it in the calling thread under this runner's lease (no queue hop).

        ``work`` does what the registered handler would, from the caller's own objects. Returns the ended
        job and the value; an error is recorded, then raised. If this process dies meanwhile, the lease
        lapses and another runner runs the job from its record, through the registered handler. The job's end
        also carries the writes ``FINISHING`` names (this job takes them: a job its work runs inline does not).
        """
        self.start()
        finishing = FINISHING.get()
        token = FINISHING.set(None)
        try:
            job = self.jobs.create_leased(tenant, spec, self.owner, parent_id or _current_id())
            return job, self._execute(self._track(job, 1), work, reraise=True, finishing=finishing)
        finally:
            FINISHING.reset(token)

    def _track(self, job: Job, attempt: int) -> _Active:
        active = _Active(job, attempt, ref_of(job), time.monotonic() + self.settings.run_bound)
        with self._lock:
            self._active[active.ref] = active
        return active

    def _execute(
        self,
        active: _Active,
        work: Handler | None,
        *,
        reraise: bool,
        finishing: Callable[[Any], tuple[Write, ...]] | None = None,
    ) -> Any:
        job = active.job
        # An operation ``name:detail`` runs through the handler of ``name`` (one handler, many labelled jobs).
        handler = work or self.handlers.get(job.operation) or self.handlers.get(job.operation.split(":", 1)[0])
        try:
            if handler is None:
                raise Unsupported(f"No worker can run the operation '{job.operation}'.", kind="job")
            token = CURRENT_JOB.set(job)
            try:
                value = handler(job)
            finally:
                CURRENT_JOB.reset(token)
        except BaseException as exc:
            if not isinstance(exc, CloudgateError):
                log.exception("job %s (%s) failed", job.id, job.operation)
            self._end(active, error=_message(exc))
            if reraise:
                raise
            return None
        if isinstance(value, Deferral) and not reraise:
            self._defer(active, value)
            return None
        outcome = value if isinstance(value, JobOutcome) else JobOutcome(result=value, value=value)
        if finishing is not None:
            outcome = replace(outcome, writes=outcome.writes + finishing(outcome.value))
        self._end(active, outcome=outcome)
        return outcome.value

    def _end(self, active: _Active, *, error: str | None = None, outcome: JobOutcome | None = None) -> None:
        with self._lock:
            overdue = self._active.get(active.ref) is not active  # failed by the keeper: the record says so
            if not overdue:
                del self._active[active.ref]
        if overdue:
            if outcome is not None and outcome.writes:
                self.jobs.write(outcome.writes)  # what the work made is still published
            return
        try:
            if not self.jobs.finish(active.job, active.attempt, error=error, outcome=outcome, release=self.owner):
                log.warning("job %s ended after another runner took it over; outcome dropped", active.job.id)
        except redis.RedisError as exc:  # the lease lapses and the job runs again: handlers are repeatable
            log.warning("job %s: could not record its end (%s)", active.job.id, exc)
            if outcome is not None and outcome.writes:
                raise  # what the work made is not recorded: its caller must not be told it is done

    def _defer(self, active: _Active, deferral: Deferral) -> None:
        """The handler waits (``Deferral``): its job goes back to the queue, due later, and this thread is free."""
        with self._lock:
            overdue = self._active.pop(active.ref, None) is not active  # failed by the keeper meanwhile
        if overdue:
            return
        try:
            if not self.jobs.defer(active.job, active.attempt, deferral, self.owner):
                log.warning("job %s was taken over while it waited; this runner leaves it", active.job.id)
        except redis.RedisError as exc:  # its lease lapses and it runs again from its last arguments
            log.warning("job %s: could not put it back to wait (%s)", active.job.id, exc)

    def _run_claimed(self, ref: str, attempt: int) -> None:
        try:
            tenant, job_id = parse_ref(ref)
            job = self.jobs.get(tenant, job_id)
            if job is None or self.jobs.start(job, attempt) != "ok":
                self.jobs.release(ref, self.owner)  # expired, already ended, or superseded
                return
            job.attempts = attempt  # handlers tell a first run from a takeover by it
            self._execute(self._track(job, attempt), None, reraise=False)
        except redis.RedisError as exc:
            log.warning("job %s: Redis failed while starting it (%s); it will run again", ref, exc)
        finally:
            with self._lock:
                self._busy -= 1
            self._slot_free.set()

    # -- threads -----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        stop, pool = self._stop, self._pool
        assert pool is not None
        while not stop.is_set():
            with self._lock:
                free = self.settings.threads - self._busy
                self._slot_free.clear()
            if free <= 0:
                self._slot_free.wait(self.settings.poll)
                continue
            try:
                claimed = self.jobs.claim(self.owner, free)
                if not claimed:
                    # a deferred job falls due without ringing the bell: wake for it, not a whole poll later
                    due = self.jobs.due_in(self.settings.poll)
                    if due > 0:  # (BRPOP reads a timeout under 1 ms as 0: wait for ever)
                        self.jobs.wait_for_work(max(due, 0.01), self.owner)
                    continue
            except redis.RedisError as exc:
                log.warning("job queue unreachable (%s)", exc)
                stop.wait(self.settings.poll)
                continue
            for ref, attempt in claimed:
                with self._lock:
                    self._busy += 1
                pool.submit(self._run_claimed, ref, attempt)

    def _keep(self) -> None:
        stop = self._stop
        while not stop.wait(self.settings.heartbeat):
            try:
                self.tick()
            except redis.RedisError as exc:
                log.warning("job leases not renewed (%s)", exc)

    def tick(self) -> None:
        """One keeper round: fail overdue jobs, renew leases, reap lapsed ones (the keeper's loop body)."""
        now = time.monotonic()
        with self._lock:
            overdue = [a for a in self._active.values() if a.deadline <= now]
            for active in overdue:
                del self._active[active.ref]
            refs = list(self._active)
        for active in overdue:
            message = f"The operation did not end within {self.settings.run_bound:g} seconds."
            self.jobs.finish(active.job, active.attempt, error=message, release=self.owner)
        for ref in self.jobs.renew(self.owner, refs):
            log.warning("job %s: lease lost to another runner", ref)
        requeued, exhausted = self.jobs.reap()
        for ref in requeued:
            log.info("job %s: its runner stopped; queued again", ref)
        self._fail_exhausted(exhausted)

    def _fail_exhausted(self, exhausted: list[str]) -> None:
        for ref in exhausted:
            job = self.jobs.get(*parse_ref(ref))
            if job is not None:
                message = f"The operation was interrupted {self.settings.max_attempts} times."
                self.jobs.finish(job, None, error=message)


def _current_id() -> str | None:
    job = CURRENT_JOB.get()
    return job.id if job is not None else None


def _message(exc: BaseException) -> str:
    """What a job record says about a failure: a canonical error's message, never a traceback."""
    if isinstance(exc, CloudgateError):
        return exc.message
    return f"Internal error ({type(exc).__name__})."
