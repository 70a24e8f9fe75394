"""Liveness (/healthz) and readiness (/readyz).

/readyz is 503 only when this gateway cannot serve anybody: its Redis is down, or every backend account
is. One account down is reported (``unavailable`` against its key) but leaves the gateway ready, since
the other accounts' tenants are still served. The answer is public, so it says only ``ok`` or
``unavailable``: why (an endpoint, a backend's message) goes to the log, once per change. A node told to
stop answers 503 ``stopping`` from then on (``STOPPING``), so a balancer sends it nothing new.

Probes go through the accounts' circuit breakers (translator/breaker.py): an open one answers at once, so a
balancer's probes never call a cloud that is down, and the probe after a cool-down may be the one that closes
it. ``breakers`` names the accounts whose breaker is not closed, in this worker or (``open``, read from Redis)
in another.
"""

from __future__ import annotations

import logging
import mmap
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all

import falcon
import redis

from translator.backend import AccountConfig
from translator.breaker import State, shared_key
from translator.errors import CloudgateError
from translator.redis_client import RedisClient
from translator.translator import Translator

HOST = socket.gethostname()
OK, UNAVAILABLE = "ok", "unavailable"
#: seconds a probe may take before its account counts as unavailable (bounds /readyz itself)
PROBE_TIMEOUT = 5.0
#: seconds a result is reused: a busy load balancer's probes then cost almost nothing
CACHE_SECONDS = 0.5

log = logging.getLogger("cloudgate.health")


class StopFlag:
    """One byte of memory shared by the gunicorn master and every worker it forks (an anonymous shared map,
    made at import, before the fork): the master sets it on SIGTERM, each worker's /readyz reads it."""

    def __init__(self) -> None:
        self._byte = mmap.mmap(-1, 1)

    def set(self) -> None:
        self._byte[0] = 1

    def is_set(self) -> bool:
        return self._byte[0] == 1


#: set once this node is stopping
STOPPING = StopFlag()


def served_by() -> str:
    """``host/pid`` of this worker (computed per call: modules are imported before gunicorn forks)."""
    return f"{HOST}/{os.getpid()}"


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.action = "healthz"
        resp.media = {"status": "ok", "worker": served_by()}


class ReadyResource:
    """Probes Redis and every backend account (concurrently, each bounded by ``PROBE_TIMEOUT``).

    A probe still running from an earlier call (a cloud that takes its full timeout to fail) is not started
    twice nor waited on again: it counts as unavailable at once, so probes of a hanging backend cannot pile
    up, and a caller waits at most one ``PROBE_TIMEOUT`` (those queued behind it get its fresh answer).
    """

    def __init__(self, client: RedisClient, translator: Translator) -> None:
        self.redis = client
        self.translator = translator
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="cg-ready")
        self._running: dict[str, Future[object]] = {}
        self._lock = threading.Lock()
        self._cached: tuple[float, int, dict[str, object]] | None = None
        self._reported: dict[str, str] = {}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.action = "readyz"
        if STOPPING.is_set():
            resp.status = 503
            resp.media = {"status": "stopping", "checks": {}}
            return
        with self._lock:  # one probe at a time; concurrent callers share its answer
            if self._cached is None or time.monotonic() - self._cached[0] > CACHE_SECONDS:
                status, body = self._check()
                self._cached = (time.monotonic(), status, body)  # fresh from when it was known, not asked
            _, status, body = self._cached
        resp.status = status
        resp.media = body

    def _check(self) -> tuple[int, dict[str, object]]:
        probes: dict[str, Callable[[], object]] = {"redis": self.redis.ping}
        for account in self.translator.accounts.values():
            probes[f"backend:{account.key}"] = self._account_probe(account)
        started = []
        for name, probe in probes.items():
            if name not in self._running or self._running[name].done():
                self._running[name] = started_now = self._pool.submit(probe)
                started.append(started_now)
        futures = {name: self._running[name] for name in probes}
        wait_all(started, timeout=PROBE_TIMEOUT)
        checks: dict[str, str] = {}
        for name, future in futures.items():
            why = f"no answer within {PROBE_TIMEOUT:.0f}s" if not future.done() else _failure(future.exception())
            checks[name] = OK if why is None else UNAVAILABLE
            self._report(name, why)
        accounts = [v for k, v in checks.items() if k.startswith("backend:")]
        ready = checks["redis"] == OK and (not accounts or OK in accounts)
        status = "ready" if ready and UNAVAILABLE not in accounts else "degraded" if ready else "unavailable"
        breakers = self._breakers(checks["redis"] == OK)
        return (200 if ready else 503), {"status": status, "checks": checks, "breakers": breakers}

    def _breakers(self, shared: bool) -> dict[str, str]:
        """Accounts whose breaker is not closed: this worker's, then (when Redis answers) any other worker's."""
        found = {key: state.value for key, state in self.translator.caller.breakers.states().items()}
        keys = [key for key in self.translator.accounts if found.get(key, State.CLOSED) == State.CLOSED]
        if shared and keys:
            try:
                with self.redis.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.exists(shared_key(key))
                    opened = pipe.execute()
            except redis.RedisError:
                opened = [0] * len(keys)
            found.update({key: State.OPEN.value for key, hit in zip(keys, opened, strict=True) if hit})
        return {key: state for key, state in sorted(found.items()) if state != State.CLOSED}

    def _account_probe(self, account: AccountConfig) -> Callable[[], object]:
        def probe() -> object:
            backend = self.translator.backend(account)
            return self.translator.caller.call(account, "check", backend.check)

        return probe

    def _report(self, name: str, why: str | None) -> None:
        """Log a check's changes (with the reason, for the operator); callers only ever see ok/unavailable."""
        state = OK if why is None else UNAVAILABLE
        if self._reported.get(name, OK) != state:
            if why is None:
                log.info("readyz: %s is back", name)
            else:
                log.warning("readyz: %s is unavailable: %s", name, why)
        self._reported[name] = state


def _failure(exc: BaseException | None) -> str | None:
    """Why a probe failed, for the log; None when it did not."""
    if exc is None:
        return None
    cause = exc.__cause__
    if isinstance(exc, CloudgateError):
        return exc.message + (f" ({cause.message})" if isinstance(cause, CloudgateError) else "")
    return f"{type(exc).__name__}: {exc}"
