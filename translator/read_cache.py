"""Answers to reads reused while what they were built from is unchanged: the read cache of one worker.

A frontend asks ``ReadCache.answer(key, build)`` for a read that only the listing index feeds (a describe,
a collection, a resource by id), with ``key`` naming everything the answer depends on besides the index
(caller, request, representation). The first time, ``build`` runs while a read set records the content
version of every index read (translator/listing_index.py) and whether each was fresh; the answer is kept
when every read was fresh and nothing else was read (but see revalidated answers below). Later, one pipelined
round trip reads the current version of each index the answer came from: while all are unchanged and fresh the
kept answer is the answer, so a worker on any node reads its own and other nodes' writes (every change of rows,
tags or generation bumps a version). An expired or changed index makes the next request build afresh, which also
schedules the refresh an expired index needs. ``lookup`` and ``build`` do the same for a frontend that authenticates
with a user record: the record (a ``Guard``) is read in the same round trip, and an answer is reused only for the
very record it was built under. Checks are made on a tracked connection (translator/invalidation.py): one that held
stands, with no round trip, until Redis reports a change to what it read; ``guarded`` keeps user records so too.

An answer whose listings came from a backend (listings not cached, or a read by id the index did not hold) is
kept too, *revalidated*: with each backend read it made (``backend_read``) and a fingerprint of what that read
returned. Its next request checks the Redis versions as above, then makes the same backend reads again: while each
returns what it did (same fingerprint) the kept answer is the answer, as an HTTP cache revalidates with an ETag,
and the cloud is still asked every time; otherwise the build runs on the records just read (``_STAGED``), so no
backend is asked twice. PERF: publishing, remembering, mapping and rendering are what it saves.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import redis

from translator import memory
from translator.invalidation import Invalidations, Mark
from translator.metrics import REVALIDATIONS

if TYPE_CHECKING:
    from translator.listing_index import ListingIndex

T = TypeVar("T")
#: user records a worker keeps at most (past it, it forgets them all and reads them again)
_MAX_GUARDS = 10_000
#: Seconds a check of a revalidated answer's versions stands on the tracked connection (no index of it is fresh:
#: nothing lapses with time, Redis reports every change; this only bounds how long a lost report could matter)
_UNCACHED_TRUST = 60.0


class Seen(StrEnum):
    """What an index read found (translator/listing_index.py ``Freshness``, as the read cache needs it)."""

    FRESH = "fresh"  # rows to answer from, fresh: reusable while the version holds
    EXPIRED = "expired"  # rows answered from but due for a refresh: never reused (the next read schedules it)
    UNUSABLE = "unusable"  # no rows (absent, stale): what the answer holds came from the backend


@dataclass(frozen=True, slots=True)
class BackendRead:
    """One read of a backend an answer was built from: enough to make it again (``account`` is the translator's
    ``AccountConfig``), and a fingerprint of what it returned."""

    account: Any
    method: str
    args: tuple[Any, ...]
    fingerprint: bytes

    @property
    def key(self) -> tuple[str, str, tuple[Any, ...]]:
        return (self.account.key, self.method, self.args)


@dataclass(slots=True)
class ReadSet:
    """The index versions one answer was built from (and whether each read found the index fresh), and the backend
    reads it made; ``reusable`` turns false for good on any expired read, any index read at two versions, any read
    of something else (a document, a job, a backend other than by ``backend_read``)."""

    versions: dict[str, tuple[str, bool]] = field(default_factory=dict)
    calls: list[BackendRead] = field(default_factory=list)
    reusable: bool = True

    def saw(self, meta_key: str, version: str, seen: Seen) -> None:
        fresh = seen is Seen.FRESH
        before = self.versions.setdefault(meta_key, (version, fresh))
        if seen is Seen.EXPIRED or before[0] != version:
            self.reusable = False
        elif before[1] != fresh:
            self.versions[meta_key] = (version, False)

    @property
    def keepable(self) -> bool:
        """Whether the answer may be kept: reusable, with every index read fresh unless backend reads revalidate it."""
        if not self.reusable or not (self.versions or self.calls):
            return False
        return bool(self.calls) or all(fresh for _, fresh in self.versions.values())


_READS: ContextVar[ReadSet | None] = ContextVar("cloudgate_read_set", default=None)


@dataclass(frozen=True, slots=True)
class _Failed:
    """A backend read that raised while revalidating: what its build gets instead of a result."""

    error: Exception


#: Backend reads made while revalidating, by ``BackendRead.key``: (what each returned, its fingerprint).
Staged = dict[tuple[str, str, tuple[Any, ...]], tuple[Any, bytes | None]]
#: A request's backend reads made while revalidating, for its build to take instead of reading again.
_STAGED: ContextVar[Staged | None] = ContextVar("cloudgate_staged_reads", default=None)


def note_read(meta_key: str, version: str, seen: Seen) -> None:
    """An index read at ``version`` (listing_index calls this for every read)."""
    reads = _READS.get()
    if reads is not None:
        reads.saw(meta_key, version, seen)


class Fingerprinted(list):  # type: ignore[type-arg]
    """A backend's records with their fingerprint already told (a backend that keeps what it mapped has it at hand:
    backends/ec2/machine_memo.py): ``fingerprint`` takes it instead of pickling them."""

    def __init__(self, records: Iterable[Any], fingerprint: bytes) -> None:
        super().__init__(records)
        self.fingerprint = fingerprint


def fingerprint(value: Any) -> bytes | None:
    """What identifies a backend read's result (records are dataclasses: pickled, hashed); None when it cannot be
    told (the answer is then not kept) or is not worth telling: a listing of ``memory.LARGE_LISTING`` records or
    more, whose pickle (about 1 KB and 14 µs a record) would cost the memory a large listing is careful with."""
    if isinstance(value, Fingerprinted):
        return value.fingerprint
    if isinstance(value, list) and len(value) >= memory.LARGE_LISTING:
        return None
    try:
        return hashlib.blake2b(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), digest_size=16).digest()
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError):
        return None


def backend_read(account: Any, method: str, args: tuple[Any, ...], read: Callable[[], T]) -> T:
    """``read()`` (a backend read of ``method`` with ``args`` in ``account``), recorded in the request's read set with
    a fingerprint of what it returned; the result a revalidation of this request already read, when it did."""
    reads = _READS.get()
    staged = _STAGED.get()
    held = staged.pop((account.key, method, args), None) if staged else None
    if held is not None:
        result, mark = held
        if isinstance(result, _Failed):
            raise result.error  # as it failed in the revalidation: the build meets it where it asks (not twice)
    else:
        token = _READS.set(None)  # the caller's own note_unversioned is not for this read
        try:
            result = read()
        finally:
            _READS.reset(token)
        mark = fingerprint(result) if reads is not None and reads.reusable else None
    if reads is not None:
        if mark is None:
            reads.reusable = False
        else:
            reads.calls.append(BackendRead(account, method, args, mark))
    return result


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
    #: (index meta key, version, read fresh)
    versions: tuple[tuple[str, str, bool], ...]
    value: Any
    size: int
    guarded: bytes | None = None
    trust: _Trust | None = None
    #: backend reads to make again before the answer is reused (revalidated answers)
    calls: tuple[BackendRead, ...] = ()


#: The revalidated answer whose versions ``lookup`` found holding, for the same request's ``build`` to revalidate
#: (after the frontend has authenticated the caller: no backend is asked for an unauthenticated request).
_CANDIDATE: ContextVar[tuple[Hashable, _Kept] | None] = ContextVar("cloudgate_read_candidate", default=None)


class ReadCache:
    """A worker's kept answers, least recently used first out past ``capacity`` bytes in all.

    ``refetch`` makes a recorded backend read again (the translator's caller: retries, breaker, its errors).
    """

    def __init__(
        self, index: ListingIndex, capacity: int = 64 << 20, refetch: Callable[[BackendRead], Any] | None = None
    ) -> None:
        self.index = index
        self.capacity = capacity
        self.refetch = refetch
        self.tracking = Invalidations(index.redis)
        self._kept: OrderedDict[Hashable, _Kept] = OrderedDict()
        self._guards: dict[Guard, tuple[Mark, bytes | None, tuple[bytes]]] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def answer(self, key: Hashable, build: Callable[[], T], size: Callable[[T], int]) -> T:
        """The kept answer for ``key`` while its versions hold (and its backend reads, if any, return the same),
        else ``build()`` (kept when it may be)."""
        _CANDIDATE.set(None)
        kept = self._kept.get(key) if self.capacity > 0 else None
        if kept is not None and (self._trusted(kept, None) or self._check(kept, None)[1]):
            if kept.calls:
                _CANDIDATE.set((key, kept))
                return self.build(key, build, size)
            self._touch(key)
            return kept.value  # type: ignore[no-any-return]
        return self.build(key, build, size)

    def lookup(self, key: Hashable, guard: Guard) -> tuple[bytes | None, Any | None]:
        """The guard's current value and, when the answer kept for ``key`` still holds (same versions, same guard
        value), that answer; at most one round trip, none while Redis has said of no change since the last.

        A revalidated answer is not returned here but left to the request's ``build``: the caller is not yet
        authenticated, and its backend reads are made only for one who is."""
        _CANDIDATE.set(None)
        kept = self._kept.get(key) if self.capacity > 0 else None
        if kept is None:
            return self.guarded(guard), None
        if self._trusted(kept, guard):
            value, holds = kept.guarded, True
        else:
            value, holds = self._check(kept, guard)
        if not holds:
            return value, None
        if kept.calls:
            _CANDIDATE.set((key, kept))
            return value, None
        self._touch(key)
        return value, kept.value

    def build(
        self,
        key: Hashable,
        build: Callable[[], T],
        size: Callable[[T], int],
        guarded: bytes | None = None,
        accept: Callable[[T], bool] | None = None,
    ) -> T:
        """``build()``, kept for ``key`` (with the guard value the caller was authenticated by) when every read it
        made was a fresh index read or a recorded backend read. A revalidated answer that ``lookup`` found holding
        is the answer instead when its backend reads return the same (and ``accept`` takes it)."""
        candidate, staged = _CANDIDATE.get(), Staged()
        _CANDIDATE.set(None)
        if candidate is not None and candidate[0] == key and candidate[1].guarded == guarded:
            kept = candidate[1]
            if self._revalidated(kept, staged) and (accept is None or accept(kept.value)):
                self._touch(key)
                return kept.value  # type: ignore[no-any-return]
        reads = ReadSet()
        token, staging = _READS.set(reads), _STAGED.set(staged)
        try:
            value = build()
        finally:
            _STAGED.reset(staging)
            _READS.reset(token)
        if reads.keepable and self.capacity > 0:
            versions = tuple((k, v, fresh) for k, (v, fresh) in reads.versions.items())
            size_of = size(value) + entry_bytes(key)
            if reads.calls:  # what they name (ids read by id) besides
                size_of += entry_bytes(tuple(c.args for c in reads.calls)) - ENTRY_BYTES
            self._keep(key, _Kept(versions, value, size_of, guarded, calls=tuple(reads.calls)))
        return value

    def _revalidated(self, kept: _Kept, staged: Staged) -> bool:
        """Whether each backend read ``kept`` was built from returns what it did; what they read is left in ``staged``
        for a build (the first read that differs ends the revalidation: the build makes the others)."""
        if self.refetch is None:
            return False
        for call in kept.calls:
            try:
                result = self.refetch(call)
            except Exception as exc:  # the build meets it, and answers as it would (a region left out, a 503)
                staged[call.key] = (_Failed(exc), None)
                REVALIDATIONS.labels("changed").inc()
                return False
            mark = fingerprint(result)
            staged[call.key] = (result, mark)
            if mark is None or mark != call.fingerprint:
                REVALIDATIONS.labels("changed").inc()
                return False
        REVALIDATIONS.labels("same").inc()
        return True

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
        """The guard's value and whether every index ``kept`` was built from is at the same version, still fresh
        where it was read fresh and still without rows where it had none (and the guard's value the one it was
        built under). A check that holds, made on the tracked connection, lets ``kept`` stand without another
        until Redis reports a change."""
        versions = kept.versions if kept is not None else ()
        commands = [("HGET", guard.key, guard.field)] if guard is not None else []
        commands += [self.index.version_command(meta_key) for meta_key, _, _ in versions]
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
            and all(_holds(v, want, fresh) for v, (_, want, fresh) in zip(replies, versions, strict=True))
        )
        if holds and tracked is not None:
            assert kept is not None
            keys = [k.encode() for meta_key, _, _ in versions for k in self.index.version_keys(meta_key)]
            if guard is not None:
                keys.append(guard.key.encode())
            lasts = [int(v[1]) / 1000 for v, (_, _, fresh) in zip(replies, versions, strict=True) if fresh]
            until = time.monotonic() + min(lasts, default=_UNCACHED_TRUST)
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


def _holds(reply: Any, version: str, fresh: bool) -> bool:
    """Whether an index's version reply (``ListingIndex.version_command``) is ``version``, fresh if it was read
    fresh, without rows if it was read without (an index filled since holds what a new build should answer from)."""
    state = _s(reply[2])
    return _s(reply[0]) == version and (state == "fresh" if fresh else state in ("absent", "stale"))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
