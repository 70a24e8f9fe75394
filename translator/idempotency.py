"""Idempotency keys: a create repeated with the same key makes nothing new and answers with the first result.

A repeat can come from two places, so there are two guards:

- the caller's token (EC2 ``ClientToken``, a CIMI/OCCI request id) is claimed in Redis: the first request does
  the work, a repeat waits for it and answers with the same resources, a repeat with other arguments is
  refused. The claim is a short lease renewed by a heartbeat while the work runs, so a worker killed
  mid-create lets it lapse within seconds and the next repeat takes the token over;
- the key the backend gets (derived from the token and the request, or fresh for a request that came without
  one) reaches the cloud, so the translator's own retries after a timeout, and a take-over after a dead
  worker, find what the first attempt made instead of making it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from typing import Any, Protocol, TypeVar

from translator.codec import dumps
from translator.errors import BackendUnavailable, Conflict
from translator.jobs import FINISHING, Write
from translator.store import Store

log = logging.getLogger("cloudgate.translator")


class Keyed(Protocol):
    """A create's spec: ``MachineSpec``, ``VolumeSpec``."""

    idempotency_key: str


S = TypeVar("S", bound=Keyed)
R = TypeVar("R")

HOST = socket.gethostname()
#: A cloud's field for the key takes at least this many characters (EC2 ``ClientToken``: 64).
KEY_LENGTH = 32


def fingerprint(account_key: str, spec: Any) -> str:
    """What a repeat must match: the account and every field of the request but its key."""
    values = {f.name: getattr(spec, f.name) for f in fields(spec) if f.name != "idempotency_key"}
    return hashlib.sha256(dumps([account_key, values])).hexdigest()


def backend_key(account_key: str, token: str, fp: str) -> str:
    """The key the cloud sees for a caller's token: the same for every repeat of one request, different across
    tenants, regions and arguments (so a token reused for other arguments never finds another request's work)."""
    return hashlib.sha256(f"{account_key}\x1f{token}\x1f{fp}".encode()).hexdigest()[:KEY_LENGTH]


class Heartbeats:
    """Renews the claims of the creates under way, each every third of its lease, from one thread of the worker.

    PERF: a create used to start and join a thread of its own; most end long before their first renewal. The
    thread is woken only for a beat due before it wakes by itself (at most ``IDLE`` seconds apart): waking it for
    every create cost each one a switch of threads.
    """

    #: seconds the thread sleeps at most, with nothing to renew or something due later
    IDLE = 1.0

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._beats: dict[int, tuple[Callable[[], bool], float, float]] = {}  # key -> (renew, every, next due)
        self._keys = itertools.count()
        self._thread: threading.Thread | None = None
        self._wakes_at = 0.0  # when the thread looks again by itself

    @contextlib.contextmanager
    def beating(self, renew: Callable[[], bool], every: float) -> Iterator[None]:
        """``renew`` is called every ``every`` seconds while the block runs (a False answer stops it)."""
        key = next(self._keys)
        due = time.monotonic() + every
        with self._cond:
            self._beats[key] = (renew, every, due)
            if self._thread is None or not self._thread.is_alive():  # none yet, or a forked child's copy
                self._wakes_at = 0.0
                self._thread = threading.Thread(target=self._run, name="cloudgate-idempotency-leases", daemon=True)
                self._thread.start()
            if due < self._wakes_at:
                self._cond.notify()
        try:
            yield
        finally:
            with self._cond:
                self._beats.pop(key, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [(key, renew) for key, (renew, _, at) in self._beats.items() if at <= now]
                for key, _ in due:
                    renew, every, _ = self._beats[key]
                    self._beats[key] = (renew, every, now + every)
                if not due:
                    soonest = min((at for _, _, at in self._beats.values()), default=now + self.IDLE)
                    wait = max(0.01, min(soonest - now, self.IDLE))
                    self._wakes_at = now + wait
                    self._cond.wait(wait)
                    self._wakes_at = 0.0  # awake: a beat registered now is seen before the next wait
                    continue
            for key, renew in due:  # outside the lock: a renewal is a Redis round trip
                try:
                    if not renew():
                        log.warning("idempotency claim lapsed while its work ran; another worker may take it over")
                        with self._cond:
                            self._beats.pop(key, None)
                except Exception as exc:  # a Redis blip: the next beat tries again, the lease covers the gap
                    log.warning("idempotency claim not renewed: %s", exc)


class Idempotency:
    """Claims a caller's token in Redis around a create, and hands the backend a key it can give the cloud."""

    def __init__(self, store: Store, ttl: int, lease: float = 5.0, wait: float = 20.0, poll: float = 0.05) -> None:
        self.store = store
        self.ttl = ttl
        self.lease = lease
        self.wait = wait
        self.poll = poll
        self._heartbeats = Heartbeats()

    def run(
        self,
        account_key: str,
        kind: str,
        spec: S,
        work: Callable[[S], list[R]],
        fetch: Callable[[list[str]], list[R]],
        *,
        ends_with_job: bool = False,
    ) -> list[R]:
        """``work(spec with the backend's key)`` once per token; a repeat gets ``fetch(ids of the first result)``,
        a repeat with other arguments ``Conflict(reason="idempotency")``, one still waiting for the first after
        ``wait`` seconds ``BackendUnavailable(reason="in_progress")`` (retry later, with the same token).

        ``ends_with_job``: the value of the first job ``work`` runs inline is its result, and nothing follows that
        job; the token is then completed in the round trip that records the job's end (translator/jobs.py).
        """
        token = spec.idempotency_key
        if not token:
            # No token from the caller: a key of this request alone still makes the translator's retries safe.
            return work(replace(spec, idempotency_key=uuid.uuid4().hex))
        fp = fingerprint(account_key, spec)
        keyed = replace(spec, idempotency_key=backend_key(account_key, token, fp))
        pending = dumps(
            {
                "fp": fp,
                "state": "pending",
                "worker": f"{HOST}/{os.getpid()}",
                "claim": uuid.uuid4().hex,
                "at": time.time(),
            }
        )
        deadline = time.monotonic() + self.wait
        # A token is the caller's in one account (EC2 scopes ClientToken per region): the account key names both.
        while (held := self.store.idempotency_claim(account_key, token, pending, self.lease)) is not None:
            if held.get("fp") != fp:
                raise Conflict(
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous "
                    f"request(s) with client token '{token}'.",
                    kind=kind,
                    reason="idempotency",
                )
            if held.get("state") == "done":
                return fetch(held["result"]["ids"])
            if time.monotonic() > deadline:
                raise BackendUnavailable(
                    f"A request with client token '{token}' is still in progress; retry it later.", reason="in_progress"
                )
            time.sleep(self.poll)

        def renew() -> bool:
            return self.store.idempotency_renew(account_key, token, pending, self.lease)

        completed: list[bool] = []

        def completion(value: Any) -> tuple[Write, ...]:
            completed.append(True)
            done = _done(fp, value)
            return (self.store.idempotency_complete_write(account_key, token, pending, done, self.ttl),)

        with self._heartbeats.beating(renew, self.lease / 3):
            try:
                hook = FINISHING.set(completion) if ends_with_job else None
                try:
                    created = work(keyed)
                finally:
                    if hook is not None:
                        FINISHING.reset(hook)
            except BaseException:
                # The work may have reached the cloud: a repeat carries the same key to it and finds that.
                try:
                    self.store.idempotency_release(account_key, token, pending)
                except Exception as exc:  # Redis away: the lease lapses by itself; the work's error is the answer
                    log.warning("idempotency claim not released: %s", exc)
                raise
        if not completed:
            self.store.idempotency_complete(account_key, token, pending, _done(fp, created), self.ttl)
        return created


def _done(fp: str, created: Any) -> bytes:
    """The record of a completed token: its fingerprint and the ids the first request made."""
    return dumps({"fp": fp, "state": "done", "result": {"ids": [r.id for r in created]}})
