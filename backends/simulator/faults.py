"""The one gate every public operation of the simulator passes: fault injection, Redis errors, defaults.

Most faults fire before the operation touches anything, so a failed call never leaves a partial change: the
translator may retry it blindly, which is what the injected ``TransientBackendError`` asks for. Two model a
slow or lossy cloud after a create has been carried out: ``create_delay`` holds the answer back, and
``timeout_after_create`` loses it (``OutcomeUnknown``: only a create with an idempotency key may be resent).
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from backends.simulator.catalog import FaultSettings
from translator.backend import Backend
from translator.errors import OutcomeUnknown, TransientBackendError
from translator.redis_client import RedisClient

B = TypeVar("B", bound=type[Backend])

#: Backend methods that are not calls to the cloud.
NOT_OPERATIONS = frozenset({"validate_options", "close"})
#: Every public operation of the Backend protocol, read from the base class so none can be forgotten.
OPERATIONS: tuple[str, ...] = tuple(
    name
    for name, value in vars(Backend).items()
    if not name.startswith("_") and name not in NOT_OPERATIONS and callable(value)
)
#: Operations that make a resource: the ones ``create_delay`` and ``timeout_after_create`` apply to.
CREATES = frozenset(name for name in OPERATIONS if name.startswith(("create_", "import_", "allocate_")))


class FaultInjector:
    """Decides whether a call fails, per the account's ``faults`` option."""

    def __init__(self, settings: FaultSettings, client: RedisClient, counter_key: str) -> None:
        self.settings = settings
        self.redis = client
        self.counter_key = counter_key
        self.lost_key = counter_key + ":lost"
        #: PERF: once the shared counter is past ``fail_first`` it can only grow; stop counting.
        self._past_first = settings.fail_first == 0
        self._past_lost = settings.timeout_after_create == 0

    def before_call(self, operation: str) -> None:
        """Raise ``TransientBackendError`` if this call is to fail."""
        s = self.settings
        if s.down:
            raise TransientBackendError(f"simulator: backend is down (faults.down), {operation} refused")
        if not self._past_first:
            if self.redis.incr(self.counter_key) <= s.fail_first:
                raise TransientBackendError(f"simulator: injected failure of {operation} (faults.fail_first)")
            self._past_first = True
        if s.fail_rate and random.random() < s.fail_rate:
            raise TransientBackendError(f"simulator: injected failure of {operation} (faults.fail_rate)")

    def after_create(self, operation: str) -> None:
        """Once a create is carried out: hold its answer back ``create_delay`` seconds, and lose the first
        ``timeout_after_create`` answers (counted across workers)."""
        s = self.settings
        if s.create_delay:
            time.sleep(s.create_delay)
        if not self._past_lost:
            if self.redis.incr(self.lost_key) <= s.timeout_after_create:
                raise OutcomeUnknown(f"simulator: {operation} done, its answer lost (faults.timeout_after_create)")
            self._past_lost = True


def _gate(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def gated(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            self.faults.before_call(name)
            self.prepare()
            result = method(self, *args, **kwargs)
            if name in CREATES:
                self.faults.after_create(name)
            return result
        except redis.ConnectionError as exc:
            raise TransientBackendError(f"simulator: Redis is unreachable ({exc})") from exc
        except redis.TimeoutError as exc:  # a write may have landed before the answer timed out
            raise OutcomeUnknown(f"simulator: Redis did not answer in time ({exc})") from exc

    gated.__wrapped_operation__ = True  # type: ignore[attr-defined]
    return gated


def gate_operations(cls: B) -> B:
    """Class decorator: route every Backend operation of ``cls`` through the gate."""
    for name in OPERATIONS:
        setattr(cls, name, _gate(name, getattr(cls, name)))
    return cls
