"""Redis's word that a key changed (client-side caching's ``CLIENT TRACKING``), so a worker may go on trusting
what it read without asking again until Redis says otherwise.

A worker holds two connections of its own: a subscriber to ``__redis__:invalidate`` and a reader whose
tracking redirects there. Every key a read on the reader touches (commands inside scripts too) is remembered
by Redis, which sends its name to the subscriber when anyone changes it. The subscriber is polled without
waiting before each use of what was read. Redis writes an invalidation out in the same pass of its event loop
as the writer's reply (and before it answers the writer's next command), so by the time a client hears from
one node that its write is done, the other nodes' sockets hold the news.

``mark`` tells when a read was made; ``holds(mark, keys)`` whether nothing it read has changed since. Losing
either connection, a flush, or too many changed keys to remember ends every mark (a new ``epoch``): the
caller then reads again, as it would with no tracking at all.

Behind Sentinel both connections are made as the pool's are: each asks the sentinels for the current master.
A failover ends their epoch: a master that dies takes the connections along, and one demoted alive (a manual
``SENTINEL FAILOVER``, a partition that healed) has its clients killed by the sentinels as they make it a
replica (``CLIENT KILL TYPE normal`` and ``pubsub``, when they next look at it: seconds). Until then the worker's
pooled connections still talk to the old master too, so tracking trusts nothing the worker's plain reads would
not have read as well. The new connections start from nothing, on the new master.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from redis.sentinel import SentinelConnectionPool

from translator.redis_client import RedisClient

log = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"
_POOLS = (redis.ConnectionPool, redis.BlockingConnectionPool)
#: RESP2: the subscriber's messages are plain replies; no health-check PING on a connection that subscribes
_OWN = {"protocol": 2, "health_check_interval": 0}
#: seconds a worker reads untracked after its tracked connections failed
_RETRY_AFTER = 1.0


@dataclass(frozen=True, slots=True)
class Mark:
    """When a tracked read was made: the epoch and how many invalidations had been taken in before it."""

    epoch: int
    seq: int


class Invalidations:
    """One worker's tracked reads and the invalidations Redis sends for them."""

    def __init__(self, client: RedisClient, max_keys: int = 100_000) -> None:
        pool = getattr(client, "connection_pool", None)  # a cluster client has none: a pool per node
        # Only a pool of one server (a plain one, or Sentinel's master) reaches where both connections can share
        # (not Sentinel's replicas, not a cluster).
        self.available = type(pool) in _POOLS or (type(pool) is SentinelConnectionPool and pool.is_master)
        self._new = lambda: pool.connection_class(**{**pool.connection_kwargs, **_OWN})
        self._max_keys = max_keys
        self._sub_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._sub: Any = None
        self._reader: Any = None
        self._local = threading.local()
        self._pid = os.getpid()
        self._retry_at = 0.0
        self._changed: dict[bytes, int] = {}
        self.epoch = 0
        self.seq = 0

    def poll(self) -> None:
        """Take in every invalidation received so far; none is waited for.

        PERF: one ``poll(2)`` of the subscriber's socket when nothing came, with no lock; a drain under way in
        another thread is waited for, as what it took from the socket may not be counted yet.
        """
        if self._pid != os.getpid():  # a forked child: its parent's connections and marks are not its own
            with self._sub_lock:
                self._drop()
                self._pid = os.getpid()
            return
        sub = self._sub
        if sub is None or (not self._poller_of(sub).poll(0) and not self._sub_lock.locked()):
            return
        with self._sub_lock:
            sub = self._sub
            if sub is None:
                return
            try:
                while sub.can_read(timeout=0):
                    self._take(sub.read_response())
            except (redis.RedisError, OSError) as exc:
                log.info("invalidation subscriber lost (%s): reading afresh", exc)
                self._drop()

    def holds(self, mark: Mark, keys: Iterable[bytes]) -> bool:
        """Whether no key of ``keys`` changed since ``mark`` (call ``poll`` first)."""
        if mark.epoch != self.epoch:
            return False
        changed = self._changed
        return all(changed.get(k, 0) <= mark.seq for k in keys)

    def read(self, commands: Sequence[tuple[Any, ...]]) -> tuple[Mark, list[Any]] | None:
        """Run ``commands`` in one round trip on the tracked reader: their replies (an error reply as its exception)
        and the mark they were read at; None when tracking is not to be had (the caller reads untracked)."""
        if not self.available or time.monotonic() < self._retry_at:
            return None
        with self._read_lock:
            try:
                reader = self._reader if self._pid == os.getpid() else None
                if reader is None:
                    reader = self._connect()
                self.poll()
                mark = Mark(self.epoch, self.seq)
                reader.send_packed_command(reader.pack_commands(commands))
                replies = []
                for _ in commands:
                    try:
                        replies.append(reader.read_response())
                    except redis.ResponseError as exc:
                        replies.append(exc)
                return mark, replies
            except (redis.RedisError, OSError) as exc:
                log.info("tracked read failed (%s): reading untracked for a while", exc)
                with self._sub_lock:
                    self._drop()
                self._retry_at = time.monotonic() + _RETRY_AFTER  # a Redis that is down costs one wait, not two
                return None

    def close(self) -> None:
        with self._read_lock, self._sub_lock:
            self._drop()

    def _connect(self) -> Any:
        """Subscriber first (its id is where the reader's invalidations go), then the reader; a new epoch."""
        with self._sub_lock:
            self._drop()
            self._pid = os.getpid()
            sub = self._new()
            sub.connect()
            sub.send_command("CLIENT", "ID")
            sub_id = int(sub.read_response())
            sub.send_command("SUBSCRIBE", CHANNEL)
            sub.read_response()
            reader = self._new()
            try:
                reader.connect()
                reader.send_command("CLIENT", "TRACKING", "ON", "REDIRECT", sub_id)
                reader.read_response()
            except BaseException:
                sub.disconnect()
                reader.disconnect()
                raise
            self._sub, self._reader = sub, reader
            return reader

    def _take(self, message: Any) -> None:
        if not (isinstance(message, list) and len(message) == 3 and message[0] in (b"message", "message")):
            return  # a subscription's confirmation
        keys = message[2]
        if keys is None or len(self._changed) >= self._max_keys:  # a flush, or too much to remember: start over
            self._new_epoch()
            return
        self.seq += 1
        for key in keys:
            self._changed[key if isinstance(key, bytes) else key.encode()] = self.seq

    def _new_epoch(self) -> None:
        self.epoch += 1
        self._changed.clear()

    def _drop(self) -> None:
        """Both connections go (with the sub lock held): nothing read before is trusted any more."""
        self._new_epoch()
        mine = self._pid == os.getpid()  # a forked child leaves its parent's sockets alone
        for conn in (self._sub, self._reader):
            if conn is not None and mine:
                with contextlib.suppress(Exception):  # already gone is fine
                    conn.disconnect()
        self._sub = self._reader = None

    def _poller_of(self, sub: Any) -> Any:
        """This thread's poller of the subscriber's socket (a poll object is not to be shared between threads)."""
        local = self._local
        if getattr(local, "sub", None) is not sub:
            sock = sub._sock
            if sock is None or hasattr(sock, "pending"):  # TLS: decrypted bytes may wait where poll(2) misses them
                local.poller = _Always()
            else:
                local.poller = select.poll()
                local.poller.register(sock.fileno(), select.POLLIN)
            local.sub = sub
        return local.poller


class _Always:
    """A poller that always says there may be something to read (the locked drain then tells)."""

    def poll(self, timeout: int) -> bool:
        return True
