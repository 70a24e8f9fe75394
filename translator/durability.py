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

On a Redis Cluster each master replicates its own writes, and ``WAIT`` counts those of the connection it is sent
on: a keyless ``WAIT`` would reach an arbitrary node. So the pipeline gets one ``WAIT`` per master its commands
go to, addressed to that master (redis-py's ``target_nodes``): the cluster pipeline sends each node's commands
on one connection, in order, so each ``WAIT`` follows that node's writes in the same round trip. Replicas are
counted per master (``ROLE`` on each, learnt as for one server). After a transaction (``settle``), and when
redis-py had to route a command again (a ``MOVED`` or a connection lost: a failover, a resharding; a ``WAIT`` may
then have gone elsewhere than the write), each master that now holds a written slot gets a small write of its
own in that slot (``PUBLISH``, which settles one server, is not replicated on a cluster) and a ``WAIT`` on the
same connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import RedisClusterException

from translator.metrics import REDIS_WAIT_SHORT
from translator.redis_client import RedisClient, is_cluster

#: one command's arguments, as ``execute_command`` takes them
Command = Sequence[Any]

log = logging.getLogger(__name__)

#: seconds between two warnings of writes no replica acknowledged
_WARN_EVERY = 10.0
#: a channel nobody listens to: a PUBLISH is a write every replica receives, for ``settle``
_SETTLE_CHANNEL = "cg:durability"
#: a cluster's ``settle`` writes a key of this prefix, with the written key's hash tag, and lets it expire
_SETTLE_KEY = "cg:wait:"
_SETTLE_KEY_MS = 10_000


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

    def __init__(self, client: RedisClient, settings: DurabilitySettings | None = None) -> None:
        self.redis = client
        self.settings = settings or DurabilitySettings()
        self._connected: int | None = None  # replicas the master has, as last learnt
        self._learnt = 0.0
        self._warned = 0.0
        self._cluster = _ClusterWaits(self) if is_cluster(client) else None

    def wanted(self) -> int:
        """Replicas the next write is to wait for (0: send no ``WAIT``); one server's."""
        if self.settings.replicas <= 0:
            return 0
        if self._connected is None:
            self._learn(self._role(lambda: self.redis.execute_command("ROLE")))
        return min(self.settings.replicas, self._connected or 0)

    def execute(self, commands: Sequence[Command], raise_on_error: bool = True) -> list[Any]:
        """``commands`` in one plain pipeline (not MULTI) with ``WAIT`` appended when a replica is to acknowledge
        their writes, and ``ROLE`` when it is time to look again; the replies of ``commands``."""
        if self._cluster is not None:
            replies = self._cluster.execute(commands)
        else:
            pipe = self.redis.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
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
        (reply,) = self.execute([("EVALSHA", script.sha, len(keys), *keys, *args)], raise_on_error=False)
        if isinstance(reply, redis.exceptions.NoScriptError):
            reply = script(keys=list(keys), args=list(args))
            self.settle(*keys[:1])
        elif isinstance(reply, Exception):
            raise reply
        return reply

    def settle(self, *keys: Any) -> None:
        """Wait for the replicas after writes that could not carry ``WAIT`` themselves (a MULTI/EXEC transaction, a
        script that had to be loaded first): a write of no consequence, then ``WAIT``, which covers everything the
        master had written before (one round trip, only when a replica is to acknowledge). ``keys``: one written
        key per slot the writes touched (a cluster settles the masters of those slots; one server ignores them)."""
        if self._cluster is not None:
            self._cluster.settle(keys)
            return
        if not self.wanted():
            return
        self.execute([("PUBLISH", _SETTLE_CHANNEL, "")])

    def _acknowledged(self, wanted: int, reply: Any, where: str = "") -> int:
        """Count a ``WAIT`` that answered fewer than ``wanted``; the replicas now known to be connected."""
        got = reply if isinstance(reply, int) else 0
        if got >= wanted:
            return got
        if not where:
            self._connected = got  # fewer than it thought: the next writes ask for no more than answered
        REDIS_WAIT_SHORT.inc()
        now = time.monotonic()
        if now - self._warned > _WARN_EVERY:
            self._warned = now
            why = f" ({reply})" if isinstance(reply, Exception) else ""
            log.warning(
                "a write was acknowledged by %d of %d Redis replicas%s within %d ms%s: a failover now may lose it",
                got,
                wanted,
                f" of {where}" if where else "",
                self.settings.timeout_ms,
                why,
            )
        return got

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


@dataclass(slots=True)
class _Master:
    """What one worker knows of one cluster master: its replicas connected, and when it last looked."""

    connected: int
    learnt: float


class _ClusterWaits:
    """``Durability`` on a Redis Cluster: each master's ``WAIT`` on the connection its writes went on."""

    def __init__(self, owner: Durability) -> None:
        self.owner = owner
        self.client = owner.redis
        self.settings = owner.settings
        self._masters: dict[str, _Master] = {}  # by node name ("host:port")
        self._stand_ins: dict[int, str] = {}  # slot -> a key of it that ``settle`` may write

    def execute(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        if self.settings.replicas <= 0:
            return pipe.execute(raise_on_error=False)
        routes, where = self._routes(commands)
        tail: list[tuple[str, Any, int]] = []  # what follows the commands: ("WAIT" | "ROLE", node, replicas wanted)
        now = time.monotonic()
        for node, _, _ in (routes or {}).values():
            master = self._master(node)
            wanted = min(self.settings.replicas, master.connected)
            if wanted:
                pipe.execute_command("WAIT", wanted, self.settings.timeout_ms, target_nodes=node)
                tail.append(("WAIT", node, wanted))
            if now - master.learnt > self.settings.recheck:
                pipe.execute_command("ROLE", target_nodes=node)
                tail.append(("ROLE", node, 0))
        slot_map, counter = self.client.nodes_manager.slots_cache, pipe.reinitialize_counter
        replies = pipe.execute(raise_on_error=False)
        answers = replies[len(replies) - len(tail) :]
        del replies[len(replies) - len(tail) :]
        now_routes, now_where = self._routes(commands)
        rerouted = (
            routes is None
            or pipe.reinitialize_counter != counter
            or self.client.nodes_manager.slots_cache is not slot_map
            or now_where != where
        )
        if rerouted:  # a WAIT may have gone elsewhere than the writes it was to follow: settle where they are now
            self._settle([(slot, key) for _, slot, key in (now_routes or {}).values()])
            return replies
        for (what, node, wanted), answer in zip(tail, answers, strict=True):
            if what == "WAIT":
                self._acknowledged(node, wanted, answer)
            elif not isinstance(answer, Exception) or isinstance(answer, redis.ResponseError):
                self._learn(node, self.owner._role(lambda answer=answer: answer))
        return replies

    def settle(self, keys: Iterable[Any]) -> None:
        """For each master holding one of ``keys``: a write in that key's slot and ``WAIT``, on one connection."""
        self._settle([(self.client.keyslot(key), key) for key in keys])

    def _settle(self, written: Iterable[tuple[int, Any]]) -> None:
        if self.settings.replicas <= 0:
            return
        nodes: dict[str, tuple[Any, int, Any]] = {}
        for slot, key in written:
            node = self._node(slot)
            if node is None:
                raise redis.ConnectionError(f"Redis Cluster: no master known for slot {slot}")
            nodes.setdefault(node.name, (node, slot, key))
        for node, slot, key in nodes.values():
            wanted = min(self.settings.replicas, self._master(node).connected)
            if not wanted:
                continue
            pipe = self.client.get_redis_connection(node).pipeline(transaction=False)
            pipe.execute_command("SET", self._stand_in(slot, key), "", "PX", _SETTLE_KEY_MS)
            pipe.execute_command("WAIT", wanted, self.settings.timeout_ms)
            self._acknowledged(node, wanted, pipe.execute(raise_on_error=False)[-1])

    def _routes(self, commands: Sequence[Command]) -> tuple[dict[str, tuple[Any, int, Any]] | None, list[str]]:
        """The masters ``commands`` go to by the slot map as it is now (redis-py's own routing), each with a slot
        and a key written there, and each command's master; None when a slot has no master known (the pipeline
        itself then fails, or redis-py reads the map again)."""
        routes: dict[str, tuple[Any, int, Any]] = {}
        where: list[str] = []
        for command in commands:
            try:
                slot = self.client.determine_slot(*command)
            except RedisClusterException:  # no key (or keys of several slots, which the pipeline reports)
                where.append("")
                continue
            node = self._node(slot)
            if node is None:
                return None, where
            routes.setdefault(node.name, (node, slot, _first_key(command)))
            where.append(node.name)
        return routes, where

    def _node(self, slot: int) -> Any:
        try:
            return self.client.nodes_manager.get_node_from_slot(slot)
        except RedisClusterException:  # the slot is not covered (a cluster that lost a master): no route
            return None

    def _master(self, node: Any) -> _Master:
        master = self._masters.get(node.name)
        if master is None:  # first seen (the cluster's masters, or a replica promoted): ask it once
            role = self.owner._role(lambda: self.client.get_redis_connection(node).execute_command("ROLE"))
            master = self._learn(node, role)
        return master

    def _learn(self, node: Any, connected: int | None) -> _Master:
        master = _Master(self.settings.replicas if connected is None else connected, time.monotonic())
        self._masters[node.name] = master
        return master

    def _acknowledged(self, node: Any, wanted: int, reply: Any) -> None:
        got = self.owner._acknowledged(wanted, reply, where=node.name)
        if got < wanted:
            self._masters[node.name] = _Master(got, self._masters[node.name].learnt)

    def _stand_in(self, slot: int, key: Any) -> str:
        """A key of ``slot`` for ``settle`` to write: ``key``'s hash tag under ``cg:wait:`` (a key without a
        tag is the tag), or, should that land elsewhere, the first ``cg:wait:{n}`` that is in the slot."""
        known = self._stand_ins.get(slot)
        if known is None:
            text = key.decode() if isinstance(key, bytes) else str(key)
            start = text.find("{")
            end = text.find("}", start + 1) if start >= 0 else -1
            tag = text[start + 1 : end] if start >= 0 and end > start + 1 else text
            known = f"{_SETTLE_KEY}{{{tag}}}"
            n = 0
            while self.client.keyslot(known) != slot:
                known, n = f"{_SETTLE_KEY}{{{n}}}", n + 1
            self._stand_ins[slot] = known
        return known


def _first_key(command: Command) -> Any:
    """A likely key of a command (a script's first key, else its first argument), whose hash tag ``settle``'s
    write borrows; only a hint (``_stand_in`` checks its slot)."""
    if str(command[0]).upper() in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) > 0 else ""
    return command[1] if len(command) > 1 else ""
