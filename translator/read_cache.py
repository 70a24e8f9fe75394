"""Answers to reads reused while what they were built from is unchanged: the read cache of one worker.

A frontend asks ``ReadCache.answer(key, build)`` for a read that only the listing index feeds (a describe,
a collection, a resource by id), with ``key`` naming everything the answer depends on besides the index
(caller, request, representation). The first time, ``build`` runs while a read set records the content
version of every index read (translator/listing_index.py) and whether each was fresh; the answer is kept
when every read was fresh and no backend was called. Later, one pipelined round trip reads the current
version of each index the answer came from: while all are unchanged and fresh the kept answer is the answer,
so a worker on any node reads its own and other nodes' writes (every change of rows, tags or generation
bumps a version). An expired or changed index makes the next request build afresh, which also schedules the
refresh an expired index needs. ``lookup`` and ``build`` do the same for a frontend that authenticates with a
user record: the record (a ``Guard``) is read in the same round trip, and an answer is reused only for the very
record it was built under. Checks are made on a tracked connection (translator/invalidation.py): one that held
stands, with no round trip, until Redis reports a change to what it read; ``guarded`` keeps user records so too.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from translator.invalidation import Invalidations, Mark

if TYPE_CHECKING:
    from translator.listing_index import ListingIndex

T = TypeVar("T")
#: user records a worker keeps at most (past it, it forgets them all and reads them again)
_MAX_GUARDS = 10_000


@dataclass(slots=True)
class ReadSet:
    """The index versions one answer was built from; ``reusable`` turns false for good on any read that was
    not fresh, any index read at two versions, or any call to a backend."""

    versions: dict[str, str] = field(default_factory=dict)
    reusable: bool = True

    def saw(self, meta_key: str, version: str, fresh: bool) -> None:
        if not fresh or self.versions.setdefault(meta_key, version) != version:
            self.reusable = False


_READS: ContextVar[ReadSet | None] = ContextVar("cloudgate_read_set", default=None)


def note_read(meta_key: str, version: str, fresh: bool) -> None:
    """An index read at ``version`` (listing_index calls this for every read)."""
    reads = _READS.get()
    if reads is not None:
        reads.saw(meta_key, version, fresh)


def note_unversioned() -> None:
    """Something was read outside the index (a backend, a gateway document, a job): the answer is not kept."""
    reads = _READS.get()
    if reads is not None:
        reads.reusable = False


@dataclass(frozen=True, slots=True)
class Guard:
    """A Redis hash field an answer also depends on, read in the same round trip as the versions: the caller's
    user record, so that authenticating a request answered from the cache costs no round trip of its own."""

    key: str
    field: str


@dataclass(frozen=True, slots=True)
class _Trust:
    """A check that held, made on the tracked connection: the answer stands, with no round trip, until Redis says
    that a key the check read changed or the soonest of its indexes stops being fresh (monotonic seconds)."""

    mark: Mark
    until: float
    keys: tuple[bytes, ...]
    guard: Guard | None


@dataclass(slots=True)
class _Kept:
    versions: tuple[tuple[str, str], ...]
    value: Any
    size: int
    guarded: bytes | None = None
    trust: _Trust | None = None


class ReadCache:
    """A worker's kept answers, least recently used first out past ``capacity`` bytes in all."""

    def __init__(self, index: ListingIndex, capacity: int = 64 << 20) -> None:
        self.index = index
        self.capacity = capacity
        self.tracking = Invalidations(index.redis)
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._guards: dict[Guard, tuple[Mark, bytes | None, tuple[bytes]]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def answer(self, key: Hashable, build: Callable[[], T], size: Callable[[T], int]) -> T:
        """The kept answer for ``key`` while its versions hold, else ``build()`` (kept when it may be)."""
        kept = self._kept.get(key) if self.capacity > 0 else None
        if kept is not None and (self._trusted(kept, None) or self._check(kept, None)[1]):
            self._touch(key)
            return kept.value  # type: ignore[no-any-return]
        return self.build(key, build, size)

    def lookup(self, key: Hashable, guard: Guard) -> tuple[bytes | None, Any | None]:
        """The guard's current value and, when the answer kept for ``key`` still holds (same versions, same guard
        value), that answer; at most one round trip, none while Redis has said of no change since the last."""
        kept = self._kept.get(key) if self.capacity > 0 else None
        if kept is None:
            return self.guarded(guard), None
        if self._trusted(kept, guard):
            self._touch(key)
            return kept.guarded, kept.value
        value, holds = self._check(kept, guard)
        if not holds:
            return value, None
        self._touch(key)
        return value, kept.value

    def build(self, key: Hashable, build: Callable[[], T], size: Callable[[T], int], guarded: bytes | None = None) -> T:
        """``build()``, kept for ``key`` (with the guard value the caller was authenticated by) when every read it
        made was a fresh index read."""
        reads = ReadSet()
        token = _READS.set(reads)
        try:
            value = build()
        finally:
            _READS.reset(token)
        if reads.reusable and reads.versions and self.capacity > 0:
            self._keep(key, _Kept(tuple(reads.versions.items()), value, size(value) + entry_bytes(key), guarded))
        return value

    def guarded(self, guard: Guard) -> bytes | None:
        """The guard's value (a caller's user record): read on the tracked connection, then from this worker's
        memory while Redis has said of no change to it (every request authenticates: no round trip for it)."""
        if self.capacity <= 0:
            return self.index.redis.hget(guard.key, guard.field)  # type: ignore[no-any-return]
        held = self._guards.get(guard)
        if held is not None:
            self.tracking.poll()
            if self.tracking.holds(held[0], held[2]):
                return held[1]
        tracked = self.tracking.read([("HGET", guard.key, guard.field)])
        if tracked is None:
            return self.index.redis.hget(guard.key, guard.field)  # type: ignore[no-any-return]
        mark, (value,) = tracked
        if isinstance(value, Exception):
            raise value
        if len(self._guards) >= _MAX_GUARDS:
            self._guards.clear()
        self._guards[guard] = (mark, value, (guard.key.encode(),))
        return value  # type: ignore[no-any-return]

    def close(self) -> None:
        self.tracking.close()

    def _trusted(self, kept: _Kept, guard: Guard | None) -> bool:
        trust = kept.trust
        if trust is None or trust.guard != guard or time.monotonic() >= trust.until:
            return False
        self.tracking.poll()
        return self.tracking.holds(trust.mark, trust.keys)

    def _check(self, kept: _Kept | None, guard: Guard | None) -> tuple[bytes | None, bool]:
        """The guard's value and whether every index ``kept`` was built from is still fresh at the same version
        (and the guard's value the one it was built under). A check that holds, made on the tracked connection,
        lets ``kept`` stand without another until Redis reports a change."""
        versions = kept.versions if kept is not None else ()
        commands = [("HGET", guard.key, guard.field)] if guard is not None else []
        commands += [self.index.version_command(meta_key) for meta_key, _ in versions]
        for _ in range(2):
            tracked = self.tracking.read(commands) if versions else None  # only a kept answer is worth tracking
            if tracked is None:
                pipe = self.index.redis.pipeline(transaction=False)
                for command in commands:
                    pipe.execute_command(*command)
                replies = pipe.execute(raise_on_error=False)
            else:
                replies = tracked[1]
            if not any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
                break
            self.index.load_version_script()  # first use, or Redis restarted: load (same source, same sha), ask again
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        value = replies.pop(0) if guard is not None else None
        holds = (
            kept is not None
            and (guard is None or value == kept.guarded)
            and all(v is not None and _s(v[0]) == want for v, (_, want) in zip(replies, versions, strict=True))
        )
        if holds and tracked is not None:
            assert kept is not None
            keys = [k.encode() for meta_key, _ in versions for k in self.index.version_keys(meta_key)]
            if guard is not None:
                keys.append(guard.key.encode())
            until = time.monotonic() + min(int(v[1]) for v in replies) / 1000
            kept.trust = _Trust(tracked[0], until, tuple(keys), guard)
        return value, holds

    def _touch(self, key: Hashable) -> None:
        with self._lock:
            if key in self._kept:
                self._kept.move_to_end(key)

    def _keep(self, key: Hashable, kept: _Kept) -> None:
        if kept.size > self.capacity // 4:  # one huge answer must not push out every other
            return
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= old.size
            self._kept[key] = kept
            self._bytes += kept.size
            while self._bytes > self.capacity and self._kept:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= dropped.size


#: what an entry holds besides its answer and its key's text: the dict slot, the record, its versions (tracemalloc:
#: about 650 bytes for a DescribeInstances of one id, on two listing indexes)
ENTRY_BYTES = 640


def entry_bytes(key: Hashable) -> int:
    """What keeping an answer under ``key`` costs besides the answer: ``ENTRY_BYTES`` and the key's text.

    Keys hold what the caller asked (an answer's parameters): many small answers to long questions would otherwise
    take several times ``capacity``.
    """
    if isinstance(key, str | bytes):
        return ENTRY_BYTES + len(key)
    stack, total = [key], ENTRY_BYTES
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, tuple | list | frozenset):
            total += 8 * len(item)
            stack.extend(item)
        else:
            total += 16
    return total


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
