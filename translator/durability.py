"""Writes a replica has acknowledged: ``WAIT`` after the writes whose loss would break a promise.

Redis replicates asynchronously: a master that dies right after answering a write may take it along, and the
replica promoted in its place never had it. ``WAIT n timeout`` answers once ``n`` replicas hold everything the
connection that sends it had written (in fact everything the master had written by that connection's last
command: Redis counts a global replication offset), so it goes last in the pipeline that made the write, on
the same connection, in the same round trip. The writes that get it: id maps (``Store.remember``), tags,
completed idempotency records, job records as they are created and as they end (with the writes a job's end
carries); each is answered to a client only after its ``WAIT``.

The replicas waited for are ``min(replicas, replicas connected now)``: with none connected (a single server,
the embedded default) no ``WAIT`` is sent at all. How many are connected is learnt from ``ROLE`` (once as a
worker first writes, then every ``recheck`` seconds by a ``ROLE`` riding in a write's own pipeline) and from
each ``WAIT``'s answer (a master that lost its replica, or a new master after a failover, is known at once to
have fewer). So the single-server path costs no round trip, and one command in a pipeline every few seconds.

A ``WAIT`` that answers fewer replicas than asked for (a replica lagging past ``timeout_ms``, or gone) does not
fail the request: the write is made and cannot be taken back, and failing would only make the client repeat
what is already done. It is counted (``cloudgate_redis_wait_short_total``) and logged; that write, and every
write made while no replica is connected, is what a failover can still lose.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script

from translator.metrics import REDIS_WAIT_SHORT
from translator.redis_client import is_cluster

log = logging.getLogger(__name__)

#: seconds between two warnings of writes no replica acknowledged
_WARN_EVERY = 10.0
#: a channel nobody listens to: a PUBLISH is a write every replica receives, for ``settle``
_SETTLE_CHANNEL = "cg:durability"


@dataclass(frozen=True, slots=True)
class DurabilitySettings:
    """``[gateway] redis_wait_replicas``, ``redis_wait_timeout_ms``."""

    #: replicas to wait for, at most (and at most as many as are connected); 0: never wait
    replicas: int = 1
    #: milliseconds a write waits for them before it goes on without
    timeout_ms: int = 100
    #: seconds between looks at how many replicas the master has
    recheck: float = 5.0


class Durability:
    """One worker's ``WAIT`` policy over its Redis client (threads share it; its state is a hint)."""

    def __init__(self, client: Any, settings: DurabilitySettings | None = None) -> None:
        self.redis = client
        self.settings = settings or DurabilitySettings()
        if is_cluster(client):  # a keyless WAIT would reach an arbitrary node, not the one that took the write
            self.settings = DurabilitySettings(0, self.settings.timeout_ms, self.settings.recheck)
        self._connected: int | None = None  # replicas the master has, as last learnt
        self._learnt = 0.0
        self._warned = 0.0

    def wanted(self) -> int:
        """Replicas the next write is to wait for (0: send no ``WAIT``)."""
        if self.settings.replicas <= 0:
            return 0
        if self._connected is None:
            self._learn(self._role(lambda: self.redis.execute_command("ROLE")))
        return min(self.settings.replicas, self._connected or 0)

    def execute(self, pipe: Any, raise_on_error: bool = True) -> list[Any]:
        """``pipe.execute()`` (a plain pipeline, not MULTI) with ``WAIT`` appended when a replica is to acknowledge
        its writes, and ``ROLE`` when it is time to look again; the replies of ``pipe``'s own commands."""
        wanted = self.wanted()
        if wanted:
            pipe.execute_command("WAIT", wanted, self.settings.timeout_ms)
        recheck = self.settings.replicas > 0 and time.monotonic() - self._learnt > self.settings.recheck
        if recheck:
            pipe.execute_command("ROLE")
        replies = pipe.execute(raise_on_error=False)
        if recheck:
            self._learn(self._role(replies.pop))
        if wanted:
            self._acknowledged(wanted, replies.pop())
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies

    def call(self, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """A script's write, acknowledged: EVALSHA and ``WAIT`` in one round trip (a script Redis lacks is loaded)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)  # a cluster pipeline blocks .evalsha
        (reply,) = self.execute(pipe, raise_on_error=False)
        if isinstance(reply, redis.exceptions.NoScriptError):
            reply = script(keys=list(keys), args=list(args))
            self.settle()
        elif isinstance(reply, Exception):
            raise reply
        return reply

    def settle(self) -> None:
        """Wait for the replicas after writes that could not carry ``WAIT`` themselves (a MULTI/EXEC transaction, a
        script that had to be loaded first): a write of no consequence on any connection, then ``WAIT``, which
        covers everything the master had written before (one round trip, only when a replica is to acknowledge)."""
        if not self.wanted():
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.execute_command("PUBLISH", _SETTLE_CHANNEL, "")
        self.execute(pipe)

    def _acknowledged(self, wanted: int, reply: Any) -> None:
        got = reply if isinstance(reply, int) else 0
        if got >= wanted:
            return
        self._connected = got  # fewer than it thought: the next writes ask for no more than answered
        REDIS_WAIT_SHORT.inc()
        now = time.monotonic()
        if now - self._warned > _WARN_EVERY:
            self._warned = now
            why = f" ({reply})" if isinstance(reply, Exception) else ""
            log.warning(
                "a write was acknowledged by %d of %d Redis replicas within %d ms%s: a failover now may lose it",
                got,
                wanted,
                self.settings.timeout_ms,
                why,
            )

    def _role(self, read: Any) -> int | None:
        """Replicas the master lists as online in its ``ROLE`` answer; None when it is refused (by an ACL)."""
        try:
            answer = read()
        except redis.ResponseError as exc:
            answer = exc
        if isinstance(answer, Exception):
            if not isinstance(answer, redis.ResponseError):
                raise answer
            log.info("ROLE refused (%s): waiting for replicas as configured, learning from WAIT", answer)
            return None
        role = answer[0].decode() if isinstance(answer[0], bytes) else str(answer[0])
        return len(answer[2]) if role == "master" else 0

    def _learn(self, connected: int | None) -> None:
        self._connected = self.settings.replicas if connected is None else connected
        self._learnt = time.monotonic()
