"""Shared state in Redis: id maps, tags, listing caches, idempotency tokens (jobs: translator/jobs.py).

Keys are namespaced ``cg:<kind>:...``. Listings live in the listing index (translator/listing_index.py),
versioned by a per-(account, kind) generation that every mutation bumps, so a listing fetched before a
mutation and written after it is never stored (no lock, no race).

Nothing here grows forever: every published gateway id is also in ``cg:known:{<account>|<kind>}`` (a
sorted set scored by when it was last seen, in the slot of the kind's listing index), so a full listing can
tell which published resources are gone and ``reconcile`` drops their id-map rows and tags; a successful
delete drops them at once (``forget``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from typing import Any, Generic, TypeVar

import redis

from translator.codec import dumps, loads
from translator.durability import Durability
from translator.ids import short_form
from translator.jobs import Write
from translator.listing_index import ListingIndex, tags_key
from translator.redis_client import RedisClient, is_cluster

SEP = "\x1f"

#: Claim a client token: the pending record for ARGV[2] ms if it is free, else what holds it.
_IDEM_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
return redis.call('GET', KEYS[1])
"""
#: Renew, complete or release a claim, only while the record is still the claimer's own pending one (a
#: claimer that stalled past its lease must not undo the worker that took the token over).
_IDEM_IF_HELD = """
local held = redis.call('GET', KEYS[1])
if ARGV[2] == 'complete' then
  if held and held ~= ARGV[1] then return 0 end
  redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[3])
  return 1
end
if held ~= ARGV[1] then return 0 end
if ARGV[2] == 'renew' then return redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return redis.call('DEL', KEYS[1])
"""


def _idem_key(scope: str, token: str) -> str:
    """A client token's record: ``scope`` is the account (``<tenant>/<region>``) the token belongs to."""
    return f"cg:idem:{scope}:{token}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _row(row: str) -> tuple[str, str, str]:
    """An id-map row: (account key, kind, native id)."""
    account, kind, native = row.split(SEP, 2)
    return account, kind, native


def _known(account: str, kind: str) -> str:
    """The sorted set of the gateway ids published for one kind in one account, scored by when last seen (in the
    slot of the kind's listing index, whose generation ``reconcile`` watches while it reads this)."""
    return f"cg:known:{{{account}|{kind}}}"


#: ids a worker remembers the mapping of (each ~0.3 KB)
MEMO_SIZE = 20_000
#: id-map rows a write teaches its worker at most: what a mutation made or a read published, not a listing's
#: thousands (the worker would hold and index what nobody has asked it to resolve)
LEARN_AT_MOST = 100
V = TypeVar("V")


class Memo(Generic[V]):
    """Values found for keys that never change once set, least recently used out past ``size``; misses are read
    (in one call for all) and not remembered, as a key unknown now may be known later."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._found: OrderedDict[str, V] = OrderedDict()
        self._lock = threading.Lock()

    def read(self, keys: list[str], fetch: Callable[[list[str]], list[V | None]]) -> list[V | None]:
        if not keys:
            return []
        with self._lock:
            out: list[V | None] = [self._found.get(k) for k in keys]
        missing = [k for k, v in zip(keys, out, strict=True) if v is None]
        if missing:
            fetched = dict(zip(missing, fetch(missing), strict=True))
            out = [v if v is not None else fetched[k] for k, v in zip(keys, out, strict=True)]
            self.note({k: v for k, v in fetched.items() if v is not None})
        return out

    def note(self, found: dict[str, V]) -> None:
        """Values found: read, just written, or read along with another key."""
        with self._lock:
            self._found.update(found)
            while len(self._found) > self.size:
                self._found.popitem(last=False)

    def forget(self, keys: Iterable[str]) -> None:
        with self._lock:
            for k in keys:
                self._found.pop(k, None)


class Store:
    """Typed access to the ``cg:`` keyspace; one instance (and one connection pool) per worker."""

    def __init__(self, client: RedisClient, durability: Durability | None = None) -> None:
        self.redis = client
        #: WAIT for a replica after the writes a promise rests on (translator/durability.py)
        self.durability = durability or Durability(client)
        self.index = ListingIndex(client)
        # PERF: a gateway id names one (account, kind, native id) forever (uuid5 of them), and a short form one
        # gateway id: what was found once, or written, is remembered by the worker (a deleted resource's id then
        # reaches the backend, which answers that it is gone, as for an id read just before the delete). A short
        # form's entry holds its gateway id's row too, so an EC2 id resolves in one read, not two in a row.
        self._ids: Memo[tuple[str, str, str]] = Memo(MEMO_SIZE)
        self._shorts: Memo[str] = Memo(MEMO_SIZE)
        self._idem_claim = client.register_script(_IDEM_CLAIM)
        self._idem_if_held = client.register_script(_IDEM_IF_HELD)

    # -- id map ------------------------------------------------------------------------------
    def remember(
        self,
        entries: Iterable[tuple[str, str, str, str]],
        count: tuple[str, str] | None = None,
        invalidate: tuple[str, tuple[str, ...]] = ("", ()),
    ) -> int:
        """Record ``(gateway id, account key, kind, native id)`` rows for reverse lookups, seen now; with ``count``
        (account, kind), how many ids of that kind are known now (for ``reconcile``); ``invalidate`` (account,
        kinds) first, as ``invalidate`` does. One round trip for all."""
        reads = [("ZCARD", _known(*count))] if count is not None else []
        replies = self.remember_reading(entries, reads, invalidate)
        return int(replies[0]) if count is not None else 0

    def remember_reading(
        self,
        entries: Iterable[tuple[str, str, str, str]],
        reads: Sequence[tuple[Any, ...]],
        invalidate: tuple[str, tuple[str, ...]] = ("", ()),
    ) -> list[Any]:
        """``remember``, with ``reads`` (commands) sent in the same round trip after its writes: their replies."""
        commands, rows = self._remember_commands(entries, invalidate)
        if not commands and not reads:
            return []
        replies = self.durability.execute([*commands, *reads])
        self._learn(rows)
        return replies[len(commands) :]

    def remember_writes(
        self, entries: Iterable[tuple[str, str, str, str]], invalidate: tuple[str, tuple[str, ...]]
    ) -> tuple[Write, ...]:
        """What ``remember`` writes, for a job's end to carry (translator/jobs.py ``Write``)."""
        commands, rows = self._remember_commands(entries, invalidate)
        writes = [Write(command=c) for c in commands]
        if writes and rows:
            writes[-1] = replace(writes[-1], then=partial(self._learn, rows))
        return tuple(writes)

    def _remember_commands(
        self, entries: Iterable[tuple[str, str, str, str]], invalidate: tuple[str, tuple[str, ...]]
    ) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
        """The commands, and the id-map rows they write (gateway id -> row)."""
        ids: dict[str, str] = {}
        shorts: dict[str, str] = {}
        known: dict[str, dict[str, float]] = {}
        now = time.time()
        for gid, account, kind, native in entries:
            row = ids[gid] = f"{account}{SEP}{kind}{SEP}{native}"
            shorts[short_form(gid)] = f"{gid}{SEP}{row}"
            known.setdefault(_known(account, kind), {})[gid] = now
        commands = self.index.invalidate_commands(*invalidate) if invalidate[1] else []
        if ids:
            commands.append(("HSET", "cg:ids", *itertools.chain.from_iterable(ids.items())))
            commands.append(("HSET", "cg:short", *itertools.chain.from_iterable(shorts.items())))
            for key, seen in known.items():
                commands.append(("ZADD", key, *itertools.chain.from_iterable((s, g) for g, s in seen.items())))
        return commands, ids

    def _learn(self, rows: dict[str, str]) -> None:
        """Remember id-map rows just written: this worker then resolves them with no round trip."""
        if 0 < len(rows) <= LEARN_AT_MOST:
            self._ids.note({gid: _row(row) for gid, row in rows.items()})
            self._shorts.note({short_form(gid): gid for gid in rows})

    def resolve(self, gids: list[str]) -> list[tuple[str, str, str] | None]:
        """``(account key, kind, native id)`` for each gateway id, None where unknown."""

        def read(some: list[str]) -> list[tuple[str, str, str] | None]:
            return [_row(_s(r)) if r else None for r in self.redis.hmget("cg:ids", some)]

        return self._ids.read(gids, read)

    def resolve_short(self, shorts: list[str]) -> list[str | None]:
        """Gateway ids of short forms; the rows their entries hold are remembered for ``resolve`` (an entry written
        before they held one has the gateway id alone)."""

        def read(some: list[str]) -> list[str | None]:
            gids: list[str | None] = []
            rows: dict[str, tuple[str, str, str]] = {}
            for raw in self.redis.hmget("cg:short", some):
                gid, _, row = _s(raw).partition(SEP) if raw else ("", "", "")
                gids.append(gid or None)
                if row:
                    rows[gid] = _row(row)
            self._ids.note(rows)
            return gids

        return self._shorts.read(shorts, read)

    def forget(self, account: str, kind: str, gids: list[str]) -> None:
        """Drop everything kept for deleted resources: id-map rows, short forms, tags."""
        if not gids:
            return
        pipe = self.redis.pipeline(transaction=False)
        self._drop(pipe, account, kind, gids)
        pipe.execute()

    def reconcile(
        self, account: str, kind: str, generation: int, present: Iterable[str], grace: float, known: int | None = None
    ) -> list[str]:
        """After a full listing read at ``generation``: forget the published resources it no longer holds.

        Only ids last seen more than ``grace`` seconds ago go (a cloud's listings may lag its creates), and
        only while no mutation has bumped the generation since the listing was read (a resource created
        meanwhile may be missing from it). ``known``: how many ids are known, if just counted (``remember``).
        Returns the ids forgotten.
        """
        known_key, meta_key = _known(account, kind), self.index.meta_key(account, kind)
        present = set(present)
        if (self.redis.zcard(known_key) if known is None else known) <= len(present):
            return []  # PERF: one round trip when every known id was just seen (published before this): none gone
        # On a cluster the id maps (one hash each, for every account) are in other slots than the transaction's:
        # their rows go just after it (a worker dying in between leaves two rows of a gone resource behind).
        apart = is_cluster(self.redis)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(meta_key)
                if int(pipe.hget(meta_key, "gen") or 0) != generation:
                    return []
                stale = [_s(g) for g in pipe.zrangebyscore(known_key, "-inf", f"({time.time() - grace}")]
                gone = [g for g in stale if g not in present]
                if not gone:
                    return []
                pipe.multi()
                self._drop(pipe, account, kind, gone, id_maps=not apart)
                pipe.execute()
            except redis.WatchError:  # a mutation landed: the next listing reconciles
                return []
        if apart:
            with self.redis.pipeline(transaction=False) as pipe:
                self._drop_id_maps(pipe, gone)
                pipe.execute()
        return gone

    def _drop(self, pipe: Any, account: str, kind: str, gids: list[str], id_maps: bool = True) -> None:
        if id_maps:
            self._drop_id_maps(pipe, gids)
        pipe.hdel(tags_key(account, kind), *gids)
        self.index.bump_version(pipe, account, kind)
        pipe.zrem(_known(account, kind), *gids)

    def _drop_id_maps(self, pipe: Any, gids: list[str]) -> None:
        self._ids.forget(gids)  # other workers may still map them: the backend then says the resource is gone
        self._shorts.forget(short_form(g) for g in gids)
        pipe.hdel("cg:ids", *gids)
        pipe.hdel("cg:short", *[short_form(g) for g in gids])

    # -- tags --------------------------------------------------------------------------------
    def update_tags(
        self, account: str, kind: str, gid: str, put: dict[str, str], remove: dict[str, str | None]
    ) -> None:
        """Add/overwrite ``put`` and drop ``remove`` keys (only where the value matches, if given)."""
        key = tags_key(account, kind)

        def apply(pipe: Any) -> None:
            raw = pipe.hget(key, gid)
            tags = loads(raw) if raw else {}
            tags.update(put)
            for k, v in remove.items():
                if k in tags and (v is None or tags[k] == v):
                    del tags[k]
            pipe.multi()
            if tags:
                pipe.hset(key, gid, dumps(tags))
            else:
                pipe.hdel(key, gid)
            self.index.bump_version(pipe, account, kind)  # answers reused while it held are not any more

        self.redis.transaction(apply, key)
        self.durability.settle(key)  # WAIT has no effect inside MULTI: it follows, in a round trip of its own

    def tags_of(self, wanted: Mapping[tuple[str, str], list[str]]) -> dict[str, dict[str, str]]:
        """Tags of just these resources (``(account, kind) -> gateway ids``) in one round trip; untagged: absent."""
        groups = [(key, gids) for key, gids in wanted.items() if gids]
        if not groups:
            return {}
        pipe = self.redis.pipeline(transaction=False)
        for (account, kind), gids in groups:
            pipe.hmget(tags_key(account, kind), gids)
        out: dict[str, dict[str, str]] = {}
        for (_, gids), rows in zip(groups, pipe.execute(), strict=True):
            out.update((gid, loads(raw)) for gid, raw in zip(gids, rows, strict=True) if raw)
        return out

    # -- listing index (translator/listing_index.py) -------------------------------------------
    def invalidate(self, account: str, kinds: Iterable[str]) -> None:
        """After a mutation: the account's listings of ``kinds`` are refreshed before they are read again."""
        kinds = list(kinds)
        if kinds:
            self.index.invalidate(account, kinds)

    # -- idempotency -------------------------------------------------------------------------
    def idempotency_claim(self, scope: str, token: str, pending: bytes, lease: float) -> dict[str, Any] | None:
        """Claim a client token with a ``pending`` record that lapses after ``lease`` seconds unless renewed;
        None when claimed now, else the record that holds it."""
        held = self._idem_claim(keys=[_idem_key(scope, token)], args=[pending, _ms(lease)])
        return None if held is None else loads(held)

    def idempotency_renew(self, scope: str, token: str, pending: bytes, lease: float) -> bool:
        """Extend a claim by ``lease`` seconds from now; False once the token is no longer held by ``pending``."""
        return bool(self._idem_if_held(keys=[_idem_key(scope, token)], args=[pending, "renew", _ms(lease)]))

    def idempotency_complete(self, scope: str, token: str, pending: bytes, done: bytes, ttl: int) -> None:
        """Replace the claim by the ``done`` record, kept ``ttl`` seconds (unless another claim holds the token)."""
        self.durability.call(self._idem_if_held, [_idem_key(scope, token)], [pending, "complete", ttl * 1000, done])

    def idempotency_complete_write(self, scope: str, token: str, pending: bytes, done: bytes, ttl: int) -> Write:
        """``idempotency_complete`` as a write for a job's end to carry."""
        return Write(
            script=self._idem_if_held, keys=(_idem_key(scope, token),), args=(pending, "complete", ttl * 1000, done)
        )

    def idempotency_release(self, scope: str, token: str, pending: bytes) -> None:
        """Give a claim up (the work failed): the next request with the token starts afresh."""
        self._idem_if_held(keys=[_idem_key(scope, token)], args=[pending, "release"])
