"""Liveness (/healthz) and readiness (/readyz: Redis and every backend account reachable)."""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import falcon
import redis

from translator.errors import CloudgateError
from translator.translator import Translator

HOST = socket.gethostname()


def served_by() -> str:
    """``host/pid`` of this worker (computed per call: modules are imported before gunicorn forks)."""
    return f"{HOST}/{os.getpid()}"


class HealthResource:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.action = "healthz"
        resp.media = {"status": "ok", "worker": served_by()}


class ReadyResource:
    """Checks are cached for a second so a busy load balancer's probes cost almost nothing."""

    def __init__(self, client: redis.Redis, translator: Translator) -> None:
        self.redis = client
        self.translator = translator
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cg-ready")
        self._cached: tuple[float, int, dict[str, object]] | None = None

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.action = "readyz"
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] > 1.0:
            self._cached = (now, *self._check())
        _, status, body = self._cached
        resp.status = status
        resp.media = body

    def _check(self) -> tuple[int, dict[str, object]]:
        checks: dict[str, str] = {}
        try:
            self.redis.ping()
            checks["redis"] = "ok"
        except redis.RedisError as exc:
            checks["redis"] = f"unreachable: {type(exc).__name__}"
        accounts = list(self.translator.accounts.values())

        def probe(account: object) -> str:
            try:
                backend = self.translator.backend(account)  # type: ignore[arg-type]
                self.translator.caller.call(account.driver, "check", backend.check)  # type: ignore[attr-defined]
                return "ok"
            except CloudgateError as exc:
                return f"unavailable: {exc.message}"

        for account, result in zip(accounts, self._pool.map(probe, accounts), strict=True):
            checks[f"backend:{account.key}"] = result
        ready = all(v == "ok" for v in checks.values())
        return (200 if ready else 503), {"status": "ready" if ready else "unavailable", "checks": checks}
