"""Circuit breakers: one per backend account, so a cloud that is down is not called on every request.

``failures`` transient faults in a row (no answer between them) within ``window`` seconds open an account's
breaker: a cloud that answers most calls is flaky, not down, and retries serve it better. Its calls then fail at
once with ``CircuitOpen`` (a ``BackendUnavailable``: the protocol's 503 with ``Retry-After``) and the cloud is
not called. After ``cooldown`` seconds one call is let through as a probe (half-open): its success closes the
breaker, its failure opens it for another cool-down. Only transient faults count (refused, timeout, 5xx); a
cloud that answers "not found" or "invalid" is up.

The decision is per worker process and costs no Redis round trip. Workers share only what changes rarely:
the worker that opens a breaker writes ``cg:breaker:{<account>}`` (expiring with its cool-down), and a worker
whose breaker is still closed reads it after a failure of its own (a failing call is already slow), so the
other workers open after one failure instead of ``failures``. ``/readyz`` reads those keys too.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import redis

from translator.errors import BackendUnavailable, TransientBackendError
from translator.metrics import CIRCUIT_OPENED, CIRCUIT_REJECTED, CIRCUIT_STATE

Clock = Callable[[], float]


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    #: transient faults in a row within ``window`` that open a breaker (0: breakers off)
    failures: int = 5
    #: seconds over which faults are counted
    window: float = 10.0
    #: seconds an open breaker answers at once before one probe call is let through
    cooldown: float = 5.0


#: ``BackendUnavailable`` reasons that answer one request (EC2's ``InsufficientInstanceCapacity``), not an outage
NOT_OUTAGES = frozenset({"capacity"})


def of_our_store(exc: BaseException) -> bool:
    """Whether a backend's failure is the gateway's own Redis failing under it (the simulator's store)."""
    return isinstance(exc.__cause__, redis.RedisError)


def is_outage(exc: BaseException) -> bool:
    """Whether a backend's failure counts against its breaker: a transient fault, or an unavailable account
    (credentials refused, no endpoint, TLS failing...), never a client error nor one request's lack of capacity.

    Nor a fault of the gateway's own Redis (the simulator keeps its cloud there): every request meets it as a
    503 already, and counting it would keep the account shut for a cool-down after Redis is back."""
    if of_our_store(exc):
        return False
    if isinstance(exc, TransientBackendError):
        return True
    return isinstance(exc, BackendUnavailable) and exc.reason not in NOT_OUTAGES


class CircuitOpen(BackendUnavailable):
    """The account's breaker is open: the cloud was not called. ``retry_after``: seconds until it may be."""

    def __init__(self, account: str, retry_after: float) -> None:
        super().__init__(
            "The backend is temporarily unavailable (recent calls failed); retry later.",
            retry_after=retry_after,
            reason="circuit_open",
        )
        self.account = account


class Breaker:
    """One account's state machine; thread-safe. The closed path (every call while the cloud is up) takes no
    lock: it reads one attribute."""

    def __init__(self, account: str, settings: BreakerSettings, clock: Clock = time.monotonic) -> None:
        self.account = account
        self.settings = settings
        self.clock = clock
        self.state = State.CLOSED
        #: monotonic times of recent faults (closed state only)
        self._faults: deque[float] = deque()
        #: monotonic time the open state ends
        self.open_until = 0.0
        #: a probe call is under way (half-open state only)
        self._probing = False
        self._lock = threading.Lock()
        self._gauges = {state: CIRCUIT_STATE.labels(account, state.value) for state in State}
        self._show()

    def admit(self) -> bool:
        """Let a call through, or raise ``CircuitOpen``; True when the call is the half-open probe."""
        if self.state is State.CLOSED:
            return False
        with self._lock:
            now = self.clock()
            if self.state is State.OPEN and now >= self.open_until:
                self._move(State.HALF_OPEN)
            if self.state is State.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            if self.state is State.CLOSED:
                return False
            wait = max(self.open_until - now, 0.0) if self.state is State.OPEN else self.settings.cooldown
            CIRCUIT_REJECTED.labels(self.account).inc()
            raise CircuitOpen(self.account, wait)

    def success(self) -> None:
        """The cloud answered (a client error included): the faults counted so far were not an outage."""
        if self.state is State.CLOSED and not self._faults:
            return
        with self._lock:
            if self.state is State.CLOSED:
                self._faults.clear()
            elif self.state is State.HALF_OPEN:
                self._probing = False
                self._faults.clear()
                self._move(State.CLOSED)

    def failure(self) -> bool:
        """A transient fault; True when it opened the breaker (the caller then shares that)."""
        with self._lock:
            now = self.clock()
            if self.state is State.HALF_OPEN:
                self._open(now, self.settings.cooldown)
                return True
            if self.state is State.OPEN:
                return False
            self._faults.append(now)
            while self._faults and self._faults[0] <= now - self.settings.window:
                self._faults.popleft()
            if len(self._faults) >= self.settings.failures:
                self._open(now, self.settings.cooldown)
                return True
            return False

    def neutral(self) -> None:
        """The call ended without telling whether the cloud is up (the gateway's own Redis failed): a probe
        under way is released so that the next call probes."""
        if self.state is State.HALF_OPEN:
            with self._lock:
                self._probing = False

    def open_for(self, seconds: float) -> None:
        """Open now for ``seconds`` (another worker's breaker opened); no effect unless closed."""
        with self._lock:
            if self.state is State.CLOSED and seconds > 0:
                self._open(self.clock(), seconds)

    def _open(self, now: float, seconds: float) -> None:
        self._faults.clear()
        self._probing = False
        self.open_until = now + seconds
        if self.state is not State.OPEN:
            CIRCUIT_OPENED.labels(self.account).inc()
        self._move(State.OPEN)

    def _move(self, state: State) -> None:
        self.state = state
        self._show()

    def _show(self) -> None:
        for state, gauge in self._gauges.items():
            gauge.set(1 if state is self.state else 0)


class Breakers:
    """The breakers of one worker, by account key, made on first use."""

    def __init__(self, settings: BreakerSettings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._breakers: dict[str, Breaker] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.settings.failures > 0

    def get(self, account: str) -> Breaker:
        found = self._breakers.get(account)
        if found is None:
            with self._lock:
                found = self._breakers.setdefault(account, Breaker(account, self.settings, self.clock))
        return found

    def states(self) -> dict[str, State]:
        """Each known account's state as of now (an open breaker past its cool-down shows half-open)."""
        now = self.clock()
        return {
            key: State.HALF_OPEN if b.state is State.OPEN and now >= b.open_until else b.state
            for key, b in list(self._breakers.items())
        }


def shared_key(account: str) -> str:
    """The Redis key that tells every worker an account's breaker opened (hash tag: one slot per account)."""
    return f"cg:breaker:{{{account}}}"
