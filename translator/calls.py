"""Calling a backend: retries with backoff for transient faults, metrics, and fault containment.

Whatever a backend raises leaves here as a canonical error: transient faults still failing after the
retries become ``BackendUnavailable``; anything that is not a canonical error (a bug, an unexpected
client-library exception) becomes ``BackendError``, never a bare exception that would be a 500. A fault
of the gateway's own Redis passes through untouched: the frontends answer it as their 503.

A cloud's error message reaches API clients, so it is cut down to the message itself (no traceback, no
HTML page, one line) and capped at ``MESSAGE_LIMIT`` characters.

Every call passes its account's circuit breaker (translator/breaker.py): each attempt that meets an outage (a
transient fault, an unusable account) counts against it, and once it is open the calls (retries included) fail at
once with ``CircuitOpen``. The half-open probe is the account's ``check`` (the call /readyz makes), run before the
call that found the cool-down over: that call may be answered from a backend's memory (the EC2 backend keeps its
instance types), which says nothing of the cloud and must not close the breaker of a cloud that is still down.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from translator import read_cache
from translator.backend import AccountConfig
from translator.breaker import Breaker, Breakers, BreakerSettings, Clock, State, is_outage, of_our_store, shared_key
from translator.errors import BackendError, BackendUnavailable, CloudgateError, OutcomeUnknown, TransientBackendError
from translator.metrics import BACKEND_ERRORS, BACKEND_LATENCY
from translator.redis_client import RedisClient

log = logging.getLogger("cloudgate.translator")
T = TypeVar("T")

#: An account's probe of its cloud (its backend's ``check``), or None where there is none (a bare driver name)
Checks = Callable[[AccountConfig | str], Callable[[], object] | None]

#: characters of a backend's error message a client may see
MESSAGE_LIMIT = 512
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|\n\s+File \"")
_PAGE = re.compile(r"<(?:!doctype|html|head|body|\?xml)\b", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z!?][^<>]{0,2000}>")
_SPACE = re.compile(r"\s+")


def client_message(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """A backend's error message as a client may see it: no traceback or markup, one line, at most ``limit``."""
    found = _TRACEBACK.search(text)
    if found:
        text = text[: found.start()]
    if _PAGE.search(text):  # an error page, not words: keep its text only
        text = _TAG.sub(" ", text)
    text = _SPACE.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 3].rstrip() + "..."
    return text or "The backend failed to process the request."


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    initial_wait: float = 0.05
    max_wait: float = 1.0
    breaker: BreakerSettings = field(default_factory=BreakerSettings)


class BackendCaller:
    """Runs one backend operation under the retry policy and its account's circuit breaker.

    ``shared``: the gateway's Redis, through which workers tell each other that a breaker opened (written when
    one opens, read after a fault of a closed one: never on a call that succeeds). ``checks``: each account's
    probe of its cloud, the half-open breaker's probe.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        shared: RedisClient | None = None,
        clock: Clock = time.monotonic,
        checks: Checks | None = None,
    ) -> None:
        self.policy = policy
        self.shared = shared
        self.checks = checks
        self.breakers = Breakers(policy.breaker, clock)
        # PERF: stop/wait/retry strategies depend only on the policy; build them once, not per call.
        self._stop = stop_after_attempt(policy.attempts)
        self._wait = wait_exponential(multiplier=policy.initial_wait, max=policy.max_wait) + wait_random(
            0, policy.initial_wait
        )
        self._retry = retry_if_exception_type(TransientBackendError)
        #: For a call that must not be sent twice: only faults that never reached the cloud are retried.
        self._retry_unsent = retry_if_exception(
            lambda exc: isinstance(exc, TransientBackendError) and not isinstance(exc, OutcomeUnknown)
        )

    def call(
        self, account: AccountConfig | str, operation: str, fn: Callable[..., T], *args: Any, resend: bool = True
    ) -> T:
        """``fn(*args)`` for ``account`` (or a bare driver name, its own breaker), retried on transient faults;
        ``resend=False`` for a create the cloud could not recognise as a repeat: a fault after it may have
        arrived (``OutcomeUnknown``) is then not retried."""
        read_cache.note_unversioned()
        if isinstance(account, AccountConfig):
            driver, key = account.driver, account.key
        else:
            driver = key = account
        if self.breakers.enabled:
            fn = self._guarded(self.breakers.get(key), fn, None if operation == "check" else account)
        started = time.perf_counter()
        retrying = Retrying(
            stop=self._stop,
            wait=self._wait,
            retry=self._retry if resend else self._retry_unsent,
            before_sleep=lambda state: BACKEND_ERRORS.labels(driver, operation, "transient").inc(),
            reraise=True,
        )
        try:
            return retrying(fn, *args)
        except TransientBackendError as exc:
            BACKEND_ERRORS.labels(driver, operation, "unavailable").inc()
            log.warning(
                "backend %s: %s failed after %d attempt(s)%s: %s",
                driver,
                operation,
                retrying.statistics.get("attempt_number", 1),
                "" if resend or not isinstance(exc, OutcomeUnknown) else " (not resent: it may have reached the cloud)",
                client_message(exc.message),
            )
            raise BackendUnavailable(
                "The backend is temporarily unavailable; retry later.", reason="unavailable"
            ) from exc
        except CloudgateError as exc:
            BACKEND_ERRORS.labels(driver, operation, type(exc).__name__).inc()
            exc.message = client_message(exc.message)
            exc.args = (exc.message,)
            raise
        except redis.RedisError:
            BACKEND_ERRORS.labels(driver, operation, "store").inc()
            raise
        except Exception as exc:
            BACKEND_ERRORS.labels(driver, operation, "internal").inc()
            log.exception("backend %s: %s failed unexpectedly", driver, operation)
            raise BackendError("The backend failed to process the request.") from exc
        finally:
            BACKEND_LATENCY.labels(driver, operation).observe(time.perf_counter() - started)

    def _guarded(
        self, breaker: Breaker, fn: Callable[..., T], account: AccountConfig | str | None = None
    ) -> Callable[..., T]:
        """``fn`` behind ``breaker``: each attempt asks it first and tells it how the cloud answered."""

        def attempt(*args: Any) -> T:
            if breaker.admit():
                self._probe(breaker, account)
            return self._told(breaker, fn, *args)

        return attempt

    def _probe(self, breaker: Breaker, account: AccountConfig | str | None) -> None:
        """The half-open probe: the account's check, when it has one (then the call runs as one of the breaker the
        check closed); without one, the call itself is the probe."""
        check = None if account is None or self.checks is None else self.checks(account)
        if check is None:
            return
        try:
            self._told(breaker, check)
        except CloudgateError as exc:
            if of_our_store(exc) or is_outage(exc):
                raise
            # the cloud answered the probe (a complaint is an answer): the call goes on

    def _told(self, breaker: Breaker, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)``, its outcome told to ``breaker``."""
        try:
            result = fn(*args)
        except CloudgateError as exc:
            if of_our_store(exc):
                breaker.neutral()  # Redis, not the cloud: the store's 503 answers it (breaker.is_outage)
            elif is_outage(exc):
                self._fault(breaker)
            else:
                breaker.success()  # the cloud answered: a client error is not an outage
            raise
        except BaseException:
            breaker.neutral()
            raise
        breaker.success()
        return result

    def _fault(self, breaker: Breaker) -> None:
        """Count a transient fault; share an opening with the other workers, or learn of theirs."""
        opened = breaker.failure()
        if self.shared is None:
            return
        key = shared_key(breaker.account)
        try:
            if opened:
                self.shared.set(key, "1", px=max(int(breaker.settings.cooldown * 1000), 1))
            elif breaker.state is State.CLOSED:
                left = self.shared.pttl(key)
                if isinstance(left, int) and left > 0:
                    breaker.open_for(left / 1000)
        except redis.RedisError as exc:  # sharing is an optimisation: each worker's own count still holds
            log.debug("breaker %s: Redis unavailable for sharing: %s", breaker.account, exc)
