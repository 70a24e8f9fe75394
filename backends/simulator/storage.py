"""Simulator records in Redis: one hash per resource kind, atomic read-modify-write, lazy transitions.

Layout, per account: ``cg:sim:{<account key>}:<kind>`` is a hash native id -> JSON record. A record is
a canonical dataclass (``translator.codec``) plus the simulator's own fields, whose names start with
``_`` (so ``from_dict`` drops them): ``_native`` (a machine's native state), ``_next`` (a pending
transition ``{"due": epoch seconds, "set": {field: value}}``), ``_booted``, ... Beside the records,
``cg:sim:{<account key>}:keys:<kind>:<idempotency key>`` lists what a create with that key made, in order
(expiring after ``KEY_INDEX_TTL``), so a repeated create finds it without reading every record.
``cg:sim:{<account key>}:index:...`` are indexes derived from the records by each commit (``Store.derive``;
machine_index.py).

Transitions are settled lazily when a record is read, so no background thread is needed and every
worker on every node sees the same state at the same wall-clock time.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import redis

from backends.simulator.catalog import Settings
from translator.backend import AccountConfig
from translator.codec import dumps, from_dict, loads, to_dict
from translator.errors import NotFound, TransientBackendError
from translator.model import RESOURCE_TYPES, MachineState, Resource
from translator.redis_client import RedisClient

R = TypeVar("R", bound=Resource)
T = TypeVar("T")

#: Optimistic transactions retried this often before giving up (as a retryable failure).
MAX_ATTEMPTS = 200
#: Kinds that are not resources: small JSON values (bootstrap flags, ...) kept in their own hash.
META = "meta"


def new_id(prefix: str) -> str:
    """A fresh native id: ``<prefix>-`` + 32 random hex digits."""
    return f"{prefix}-{uuid.uuid4().hex}"


def stable_id(prefix: str, *parts: str) -> str:
    """A native id derived from names, identical on every worker and after a restart."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, 'cloudgate-simulator/' + '/'.join(parts)).hex}"


@dataclass(slots=True)
class Rec(Generic[R]):
    """A decoded record: the canonical object plus the simulator's private ``_`` fields."""

    obj: R
    sim: dict[str, Any] = field(default_factory=dict)

    def schedule(self, now: float, delay: float, **changes: Any) -> None:
        """Arrange for ``changes`` (fields or ``_`` fields) to take effect ``delay`` seconds from now."""
        due = now + delay
        self.sim["_next"] = {"due": due, "set": {**changes, "updated": due}}

    def encode(self) -> bytes:
        return dumps(to_dict(self.obj) | self.sim)


def settle(data: dict[str, Any], now: float) -> dict[str, Any]:
    """Apply a due pending transition to a raw record (in place) and return it."""
    pending = data.get("_next")
    if pending is not None and pending["due"] <= now:
        data.update(pending["set"])
        del data["_next"]
    return data


def decode(kind: str, raw: bytes, now: float) -> Rec[Any]:
    """Raw JSON from Redis -> settled record."""
    data = settle(loads(raw), now)
    sim = {k: v for k, v in data.items() if k[0] == "_"}
    return Rec(from_dict(RESOURCE_TYPES[kind], data), sim)


#: Seconds an idempotency key's index is kept: longer than any client retries a create with it.
KEY_INDEX_TTL = 7 * 86400


def made_with(tx: Tx, kind: str, key: str) -> list[Any]:
    """What an earlier create with this idempotency key made, in order; [] when there is none (or no key).

    PERF: one small index per key (``keys:<kind>:<key>``), not a scan of every record the account holds.
    """
    if not key:
        return []
    ids = tx.get_aside(key_index(kind, key)) or []
    return [rec.obj for rec in (tx.get(kind, nid) for nid in ids) if rec is not None]


def keep_key(tx: Tx, kind: str, rec: Rec[Any], key: str) -> None:
    """Remember the create's idempotency key for what it made, in launch order, so a repeat finds it."""
    if key:
        rec.sim["_key"] = key  # the index goes with the records (``key_index``)
        name = key_index(kind, key)
        tx.set_aside(name, [*(tx.get_aside(name) or []), rec.obj.native_id], KEY_INDEX_TTL)


def key_index(kind: str, key: str) -> str:
    return f"keys:{kind}:{key}"


@dataclass(slots=True)
class Sim:
    """Everything an operation needs: the account's store, its parsed options and its config."""

    store: Store
    settings: Settings
    account: AccountConfig
    #: The default network exists (checked once per instance, see ``network.ensure_defaults``).
    ready: bool = False


#: Writes a transaction derives from what it changed, made at commit (``Store.derive``): indexes beside the records.
Derive = Callable[["Tx"], None]


class Store:
    """The Redis side of one simulator account."""

    def __init__(
        self, client: RedisClient, account_key: str, terminated_retention: float, derive: Derive | None = None
    ) -> None:
        self.redis = client
        self.prefix = f"cg:sim:{{{account_key}}}:"  # one slot per account: transactions span its kinds
        self.retention = terminated_retention
        #: called by every commit before it writes: what indexes follow from the records it changed
        self.derive = derive

    def visible(self, kind: str, rec: Rec[Any], now: float) -> bool:
        """False for a machine terminated longer ago than the retention: it is gone, as on EC2."""
        return not (
            kind == "machine" and rec.obj.state is MachineState.TERMINATED and rec.obj.updated + self.retention <= now
        )

    def key(self, kind: str) -> str:
        return self.prefix + kind

    def get(self, kind: str, native_id: str) -> Rec[Any] | None:
        """One settled record, outside any transaction."""
        raw = self.redis.hget(self.key(kind), native_id)
        if raw is None:
            return None
        now = time.time()
        rec = decode(kind, raw, now)
        return rec if self.visible(kind, rec, now) else None

    def some(self, kind: str, native_ids: list[str]) -> list[Rec[Any]]:
        """The visible records among ``native_ids`` (missing ones left out). PERF: one HMGET."""
        if not native_ids:
            return []
        return self._visible(kind, self.redis.hmget(self.key(kind), native_ids))

    def several(self, wanted: dict[str, list[str]]) -> dict[str, list[Rec[Any]]]:
        """``some`` of several kinds. PERF: one round trip (an HMGET each, pipelined: one slot per account)."""
        kinds = [kind for kind, ids in wanted.items() if ids]
        if not kinds:
            return {kind: [] for kind in wanted}
        pipe = self.redis.pipeline(transaction=False)
        for kind in kinds:
            pipe.hmget(self.key(kind), wanted[kind])
        found: dict[str, list[Rec[Any]]] = {kind: [] for kind in wanted}
        for kind, raws in zip(kinds, pipe.execute(), strict=True):
            found[kind] = self._visible(kind, raws)
        return found

    def _visible(self, kind: str, raws: list[Any]) -> list[Rec[Any]]:
        """The visible records among HMGET's replies (None for a missing id)."""
        now = time.time()
        recs = [decode(kind, raw, now) for raw in raws if raw is not None]
        return [r for r in recs if self.visible(kind, r, now)]

    def all(self, kind: str) -> list[Rec[Any]]:
        """Every visible record of a kind. PERF: a single HGETALL, then orjson per record."""
        now = time.time()
        recs = [decode(kind, raw, now) for raw in self.redis.hgetall(self.key(kind)).values()]
        gone = [r for r in recs if not self.visible(kind, r, now)]
        if gone:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hdel(self.key(kind), *(r.obj.native_id for r in gone))
            indexes = {self.prefix + key_index(kind, r.sim["_key"]) for r in gone if r.sim.get("_key")}
            if indexes:  # a create whose machines are gone is one a repeat cannot find any more
                pipe.delete(*indexes)
            pipe.execute()
            recs = [r for r in recs if self.visible(kind, r, now)]
        return recs

    def transact(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` as one atomic read-modify-write across processes (WATCH/MULTI, retried).

        ``fn`` may run several times; it must only read and write through its ``Tx``. A canonical
        error raised by ``fn`` aborts without writing anything.
        """
        for attempt in range(MAX_ATTEMPTS):
            with self.redis.pipeline(transaction=True) as pipe:
                tx = Tx(self, pipe)
                try:
                    result = fn(tx)
                    tx.commit()
                    return result
                except redis.WatchError:
                    pass
            time.sleep(random.uniform(0, min(0.05, 0.001 * (attempt + 1))))
        raise TransientBackendError("simulator: too much contention on one account, try again")


class Tx:
    """Reads (each key WATCHed before its first read) and buffered writes of one transaction."""

    def __init__(self, store: Store, pipe: redis.client.Pipeline) -> None:
        self.store = store
        self.now = time.time()
        self._pipe = pipe
        self._watched: set[str] = set()
        self._recs: dict[str, dict[str, Rec[Any] | None]] = {}
        #: what each record read from Redis held then (its raw JSON): ``original`` decodes it again
        self._raw: dict[tuple[str, str], bytes] = {}
        #: records read that are gone from view (past their retention): ``get`` answers None, ``delete`` removes them
        self._gone: dict[tuple[str, str], Rec[Any]] = {}
        self._complete: set[str] = set()
        self._dirty: dict[tuple[str, str], None] = {}
        self._meta: dict[str, Any] = {}
        #: key -> (value, ttl to write it with; None while only read, 0 to delete it)
        self._aside: dict[str, tuple[Any, int | None]] = {}
        #: writes of other shapes (index entries), made in order after the records' at commit
        self._later: list[Callable[[redis.client.Pipeline], Any]] = []
        #: what helpers of one transaction remember between their calls (machine_index: an index built by it)
        self.notes: dict[str, Any] = {}

    def _watch(self, kind: str) -> dict[str, Rec[Any] | None]:
        if kind not in self._watched:
            self._pipe.watch(self.store.key(kind))
            self._watched.add(kind)
        return self._recs.setdefault(kind, {})

    def get(self, kind: str, native_id: str) -> Rec[Any] | None:
        recs = self._watch(kind)
        if native_id not in recs and kind not in self._complete:
            raw = self._pipe.hget(self.store.key(kind), native_id)
            self._keep(kind, native_id, raw)
        return recs.get(native_id)

    def get_some(self, kind: str, native_ids: Iterable[str]) -> list[Rec[Any]]:
        """The visible records among ``native_ids``, in their order. PERF: one HMGET of those not read yet."""
        recs = self._watch(kind)
        native_ids = list(dict.fromkeys(native_ids))
        unread = [nid for nid in native_ids if nid not in recs] if kind not in self._complete else []
        if unread:
            for nid, raw in zip(unread, self._pipe.hmget(self.store.key(kind), unread), strict=True):
                self._keep(kind, nid, raw)
        return [rec for nid in native_ids if (rec := recs.get(nid)) is not None]

    def _keep(self, kind: str, native_id: str, raw: bytes | None) -> None:
        """A record just read (``raw``: None when there is none); one gone from view reads as None."""
        rec = None if raw is None else self._decoded(kind, native_id, raw)
        if rec is not None and not self.store.visible(kind, rec, self.now):
            self._gone[(kind, native_id)] = rec
            rec = None
        self._recs[kind][native_id] = rec

    def require(self, kind: str, native_id: str | None) -> Rec[Any]:
        """The record, or ``NotFound(kind=kind)`` naming it."""
        rec = None if native_id is None else self.get(kind, native_id)
        if rec is None:
            raise NotFound(f"The {kind.replace('_', ' ')} '{native_id}' does not exist.", kind=kind)
        return rec

    def all(self, kind: str) -> list[Rec[Any]]:
        """Every visible record of a kind; those past their retention are deleted at commit.

        PERF: launches read every machine, so a machine gone from view must also leave the hash here, not only
        when something lists them: else each launch decodes every machine the account ever terminated.
        """
        recs = self._watch(kind)
        if kind not in self._complete:
            for key, raw in self._pipe.hgetall(self.store.key(kind)).items():
                nid = key.decode()
                if nid not in recs:
                    self._keep(kind, nid, raw)
                if (kind, nid) in self._gone:
                    self.delete(kind, nid)
            self._complete.add(kind)
        return [rec for rec in recs.values() if rec is not None]

    def prune(self, kind: str, native_ids: list[str]) -> None:
        """Delete those of ``native_ids`` gone from view (past their retention), as ``all`` does with every record.

        PERF: one HMGET of those records, not the kind's every record."""
        self.get_some(kind, native_ids)
        for nid in native_ids:
            if (kind, nid) in self._gone:
                self.delete(kind, nid)

    def _decoded(self, kind: str, native_id: str, raw: bytes) -> Rec[Any]:
        """A record read from Redis, its raw JSON kept for ``original``."""
        self._raw[(kind, native_id)] = raw
        return decode(kind, raw, self.now)

    def put(self, kind: str, rec: Rec[Any]) -> None:
        self._watch(kind)[rec.obj.native_id] = rec
        self._dirty[(kind, rec.obj.native_id)] = None

    def delete(self, kind: str, native_id: str) -> None:
        old = self._watch(kind).get(native_id) or self._gone.pop((kind, native_id), None)
        if old is not None and old.sim.get("_key"):
            self._aside[self.store.prefix + key_index(kind, old.sim["_key"])] = (None, 0)  # 0: deleted at commit
        self._watch(kind)[native_id] = None
        self._dirty[(kind, native_id)] = None

    def get_aside(self, name: str) -> Any:
        """A small JSON value under its own key beside the records (watched, so only its writers contend)."""
        key = self.store.prefix + name
        if key not in self._aside:
            self._pipe.watch(key)
            raw = self._pipe.get(key)
            self._aside[key] = (None if raw is None else loads(raw), None)
        return self._aside[key][0]

    def set_aside(self, name: str, value: Any, ttl: int) -> None:
        """Write such a value at commit, expiring ``ttl`` (> 0) seconds later: nothing kept beside grows forever."""
        key = self.store.prefix + name
        self.get_aside(name)
        self._aside[key] = (value, ttl)

    def original(self, kind: str, native_id: str) -> Rec[Any] | None:
        """The record as this transaction first read it (None when it read none: a new one), decoded afresh."""
        raw = self._raw.get((kind, native_id))
        return None if raw is None else decode(kind, raw, self.now)

    def changed(self, kind: str) -> list[tuple[str, Rec[Any] | None]]:
        """The records of a kind this transaction writes (None: deleted), by native id."""
        return [(nid, self._recs[kind][nid]) for k, nid in self._dirty if k == kind]

    def read(self, name: str, fn: Callable[[redis.client.Pipeline, str], T]) -> T:
        """``fn(pipe, key)`` on a key of another shape beside the records (an index), watched like them."""
        key = self.store.prefix + name
        if key not in self._watched:
            self._pipe.watch(key)
            self._watched.add(key)
        return fn(self._pipe, key)

    def later(self, fn: Callable[[redis.client.Pipeline], Any]) -> None:
        """A write of another shape (``fn(pipe)`` queues it), made at commit after the records'."""
        self._later.append(fn)

    def get_meta(self, name: str) -> Any:
        """A small JSON value of the account (bootstrap flags), watched like records."""
        self._watch(META)
        if name not in self._meta:
            raw = self._pipe.hget(self.store.key(META), name)
            self._meta[name] = None if raw is None else loads(raw)
        return self._meta[name]

    def set_meta(self, name: str, value: Any) -> None:
        self._watch(META)
        self._meta[name] = value
        self._dirty[(META, name)] = None

    def commit(self) -> None:
        """MULTI, the buffered writes, EXEC: raises WatchError when anything read has changed."""
        if self.store.derive is not None and self._dirty:
            self.store.derive(self)
        written = {key: entry for key, entry in self._aside.items() if entry[1] is not None}
        if not self._dirty and not written and not self._later:
            return
        self._pipe.multi()
        for key, (value, ttl) in written.items():
            if ttl:
                self._pipe.set(key, dumps(value), ex=ttl)
            else:
                self._pipe.delete(key)
        for kind, nid in self._dirty:
            key = self.store.key(kind)
            if kind == META:
                self._pipe.hset(key, nid, dumps(self._meta[nid]))
                continue
            rec = self._recs[kind][nid]
            if rec is None:
                self._pipe.hdel(key, nid)
            else:
                self._pipe.hset(key, nid, rec.encode())
        for write in self._later:
            write(self._pipe)
        self._pipe.execute()
