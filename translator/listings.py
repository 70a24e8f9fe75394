"""Reads: pages of one kind in a stable order, fanned out over a tenant's accounts, and reads by id.

Every read walks resources in one order that never changes for a resource: creation time, then gateway
id (``sort_key``). A page is the next ``limit`` resources after a cursor (the sort key of the last one
returned) that pass ``match`` (canonical fields) and ``where`` (a frontend's own filters), evaluated as
the walk goes, so a page stops at ``limit`` matches and decodes, tags and filters only what it walks.

``Listings._ordered`` is the one place that knows where that order comes from: the listing index
(translator/listing_index.py), an account's rows in Redis under one ordered index, read a chunk at a time
as the walk goes, refreshed from the backend before a read when a mutation made it stale and in the
background when it merely expired.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import contextvars
import heapq
import logging
import os
import socket
from bisect import bisect_right
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any, TypeVar

import orjson
import redis

from translator import memory, read_cache
from translator.accounts import Accounts
from translator.backend import AccountConfig, Capability
from translator.calls import BackendCaller
from translator.codec import from_dict, loads, to_dict
from translator.documents import Page
from translator.errors import AuthFailure, BackendError, BackendUnavailable, Forbidden, InvalidParameter, NotFound
from translator.ids import computed_id, gateway_id
from translator.jobs import Write
from translator.listing_index import Chunk, Freshness, member, tags_key
from translator.metrics import CACHE_LOOKUPS
from translator.model import RESOURCE_TYPES, Flavor, Principal, Resource, in_transition
from translator.publish import publish
from translator.store import Store

log = logging.getLogger("cloudgate.translator")

R = TypeVar("R", bound=Resource)
#: Where a resource sits in every listing: (creation time, gateway id).
SortKey = tuple[float, str]
#: A frontend's filter, asked of each resource the walk reaches (with its tags).
Where = Callable[[Resource], bool]
#: Canonical filters: field name -> the values accepted (compared as strings; a list field matches on any member).
Match = Mapping[str, Collection[str]]


@dataclass(frozen=True, slots=True)
class Listing:
    """How the backend lists a kind, reads some of it by id, and what capability that needs."""

    method: str
    fetch: str
    capability: Capability


#: Kind -> its backend methods. One table, no if-chain.
LISTINGS: dict[str, Listing] = {
    "machine": Listing("list_machines", "get_machines", Capability.MACHINES),
    "image": Listing("list_images", "get_images", Capability.IMAGES),
    "flavor": Listing("list_flavors", "get_flavors", Capability.MACHINES),
    "volume": Listing("list_volumes", "get_volumes", Capability.VOLUMES),
    "snapshot": Listing("list_snapshots", "get_snapshots", Capability.SNAPSHOTS),
    "network": Listing("list_networks", "get_networks", Capability.NETWORKS),
    "subnet": Listing("list_subnets", "get_subnets", Capability.NETWORKS),
    "address": Listing("list_addresses", "get_addresses", Capability.ADDRESSES),
    "key_pair": Listing("list_key_pairs", "get_key_pairs", Capability.KEY_PAIRS),
    "security_group": Listing("list_security_groups", "get_security_groups", Capability.SECURITY_GROUPS),
}

#: Resources walked per round of tag reads and filtering: a page costs a few rounds, not the account.
WALK_CHUNK = 256
MIN_CHUNK = 16

# One pool per process for fanning a listing out over a tenant's accounts.
_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cg-fanout")
#: Background refreshes of expired indexes: few at once per process (each reads a whole listing).
_REFRESHERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="cg-refresh")
#: Seconds a worker holds the right to refresh an index in the background (a dead one's lapses).
REFRESH_LEASE = 30.0


@dataclass(frozen=True, slots=True)
class CacheTimes:
    ttl: float
    transitional_ttl: float
    #: A published resource missing from listings is forgotten once unseen this long (listings may lag creates).
    prune_grace: float = 60.0


@dataclass(frozen=True, slots=True)
class ResourcePage(Page[R]):
    """A page of resources; ``unavailable_regions`` names the accounts whose backends were down: the page holds
    the others' resources only (a partial result)."""

    unavailable_regions: tuple[str, ...] = ()

    @property
    def partial(self) -> bool:
        return bool(self.unavailable_regions)


class MissingIds(NotFound):
    """Some named resources do not exist for the caller; ``ids`` lists every one of them (gateway ids)."""

    def __init__(self, kind: str, ids: list[str]) -> None:
        super().__init__(f"The {kind.replace('_', ' ')} ID '{', '.join(ids)}' does not exist", kind=kind)
        self.ids = ids


def sort_key(resource: Resource) -> SortKey:
    return (resource.created, resource.id)


def _chunk(limit: int | None) -> int:
    """Resources a walk reads at once for a page of ``limit``: the page and one more, within bounds."""
    return WALK_CHUNK if limit is None else max(MIN_CHUNK, min(limit + 1, WALK_CHUNK))


def encode_cursor(key: SortKey) -> str:
    """An opaque, URL-safe cursor: the sort key of the last resource of a page."""
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str) -> SortKey:
    """The sort key in a cursor; ``InvalidParameter(reason="cursor")`` for anything else."""
    try:
        created, gid = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(created, int | float) and not isinstance(created, bool) and isinstance(gid, str):
            return (float(created), gid)
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        pass
    raise InvalidParameter("The pagination cursor is not valid.", reason="cursor")


def matches(resource: Resource, match: Match | None) -> bool:
    """Whether every canonical filter of ``match`` accepts the resource."""
    if not match:
        return True
    for name, accepted in match.items():
        value = getattr(resource, name, None)
        values = value if isinstance(value, list) else [value]
        if not any(("" if v is None else str(v)) in accepted for v in values):
            return False
    return True


class Listings:
    """Every read of resources: pages, whole listings, reads by id, all served from Redis while fresh."""

    def __init__(self, accounts: Accounts, store: Store, caller: BackendCaller, times: CacheTimes) -> None:
        self.accounts = accounts
        self.store = store
        self.caller = caller
        self.times = times

    # -- pages ---------------------------------------------------------------------------------------
    def page(
        self,
        principal: Principal,
        kind: str,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        ids: Iterable[str] | None = None,
        where: Where | None = None,
        match: Match | None = None,
        region: str | None = None,
    ) -> ResourcePage[Resource]:
        """The next ``limit`` resources (all when None) after ``cursor`` that pass ``match`` and ``where``.

        ``ids`` narrows the walk to those gateway ids (``MissingIds`` names the ones the caller cannot see in
        ``region``). Without ``region`` the caller's accounts are read concurrently; one whose backend is
        down is left out and named in ``unavailable_regions``, and only all of them down is an error.
        """
        if limit is not None and limit < 1:
            raise InvalidParameter(f"The page size must be at least 1, not {limit}.", reason="limit")
        after = decode_cursor(cursor) if cursor else None
        down: list[str] = []
        tagged: set[str] = set()  # accounts whose resources of this kind may have tags in Redis
        if ids is not None:
            named = sorted(self._named(principal, kind, list(ids), region), key=sort_key)
            stream: Iterator[Resource] = iter(named)
        else:
            accounts = [self.accounts.account(principal, region)] if region else self.accounts.regions(principal)
            streams, down, tagged = self._fan_out(accounts, kind, after, _chunk(limit))
            stream = heapq.merge(*streams, key=sort_key) if len(streams) > 1 else iter(streams[0] if streams else ())
        items, more = self._walk(kind, stream, after, match, where, limit, tagged)
        return ResourcePage(items, encode_cursor(sort_key(items[-1])) if more else None, tuple(down))

    def list(self, principal: Principal, kind: str, region: str | None = None) -> list[Resource]:
        """Every resource of ``kind`` the caller sees, in one region or across all of them (in sort-key order)."""
        return self.page(principal, kind, region=region).items

    def get_many(self, principal: Principal, kind: str, gids: Iterable[str]) -> list[Resource]:
        """The named resources in order; ``MissingIds`` names those that do not exist for the caller."""
        gids = list(gids)
        by_id = {r.id: r for r in self._named(principal, kind, gids, None)}
        return [by_id[g] for g in gids]

    def smallest_flavor(self, principal: Principal, vcpus: int, memory_mb: int, region: str | None = None) -> Flavor:
        """The smallest flavor with at least ``vcpus`` and ``memory_mb``: fewest vCPUs, then least memory, then name."""
        account = self.accounts.account(principal, region)
        flavors: list[Any] = self.page(principal, "flavor", region=account.region).items
        fits = [f for f in flavors if f.vcpus >= vcpus and f.memory_mb >= memory_mb]
        if not fits:
            raise NotFound(
                f"No flavor in region {account.region} has {vcpus} vCPUs and {memory_mb} MiB of memory or more.",
                kind="flavor",
                reason="no_fit",
            )
        return min(fits, key=lambda f: (f.vcpus, f.memory_mb, f.name))

    # -- the walk ------------------------------------------------------------------------------------
    def _walk(
        self,
        kind: str,
        stream: Iterator[Resource],
        after: SortKey | None,
        match: Match | None,
        where: Where | None,
        limit: int | None,
        tagged: set[str],
    ) -> tuple[list[Resource], bool]:
        """Up to ``limit`` passing resources (with the Redis tags of ``tagged`` accounts merged), and whether
        another one follows them."""
        out: list[Resource] = []
        size = _chunk(limit)
        while chunk := list(islice(stream, size)):
            chunk = [r for r in chunk if (after is None or sort_key(r) > after) and matches(r, match)]
            if tagged:
                self._merge_tags(kind, chunk, tagged)
            for r in chunk:
                if where is not None and not where(r):
                    continue
                if limit is not None and len(out) == limit:
                    return out, True
                out.append(r)
        return out, False

    def _fan_out(
        self, accounts: list[AccountConfig], kind: str, after: SortKey | None, chunk: int
    ) -> tuple[list[Iterator[Resource]], list[str], set[str]]:
        """Each account's ordered stream, read concurrently; the regions whose backend is down are left out.
        Also the accounts whose resources may have tags in Redis."""
        if len(accounts) == 1:
            stream, has_tags = self._ordered(accounts[0], kind, after, chunk)
            return [stream], [], {accounts[0].key} if has_tags else set()
        # each in a copy of this context: what the threads read is recorded in the request's read set (read_cache)
        futures = [
            (acc, _POOL.submit(contextvars.copy_context().run, self._ordered, acc, kind, after, chunk))
            for acc in accounts
        ]
        streams, down, tagged, failure = [], [], set(), None
        for acc, future in futures:
            try:
                stream, has_tags = future.result()
            except (BackendUnavailable, BackendError, AuthFailure, Forbidden) as exc:
                # One account's cloud down, failing or refusing its credentials: the others still answer.
                log.warning("listing %s: region %s failed (%s); answering without it", kind, acc.region, exc.message)
                down.append(acc.region)
                failure = failure or exc
                continue
            streams.append(stream)
            if has_tags:
                tagged.add(acc.key)
        if failure is not None and not streams:
            raise failure
        return streams, down, tagged

    def _ordered(
        self, account: AccountConfig, kind: str, after: SortKey | None, chunk: int
    ) -> tuple[Iterator[Resource], bool]:
        """The account's resources of ``kind`` after ``after``, in sort-key order, without Redis tags, and
        whether any of them has tags there.

        Reads the index's first chunk now (refreshing it from the backend first when it is absent or stale,
        so a backend failure raises here); the rest is read chunk by chunk as the walk asks.
        """
        if LISTINGS[kind].capability not in self.accounts.backend(account).capabilities:
            return iter(()), False
        cls = RESOURCE_TYPES[kind]
        start = member(*after) if after is not None else None
        first = self.store.index.page(account.key, kind, start, chunk)
        if not first.state.usable:
            CACHE_LOOKUPS.labels(kind, "miss").inc()
            return self._refreshed(account, kind, first.generation, after), first.tagged
        CACHE_LOOKUPS.labels(kind, "hit").inc()
        if first.state is Freshness.EXPIRED:
            self._refresh_later(account, kind, first.generation)
        return self._stream(account, kind, cls, first, chunk), first.tagged

    def _stream(
        self, account: AccountConfig, kind: str, cls: type[Resource], chunk: Chunk, size: int
    ) -> Iterator[Resource]:
        """The index's rows from ``chunk`` on, a chunk of ``size`` read whenever the walk has used the last one."""
        while True:
            last = None
            for raw in chunk.rows:
                last = from_dict(cls, loads(raw))
                yield last
            if last is None or len(chunk.rows) < size:
                return
            chunk = self.store.index.page(account.key, kind, member(last.created, last.id), size)
            if not chunk.state.usable:  # a mutation landed mid-walk: the rest comes from a fresh listing
                yield from self._refreshed(account, kind, chunk.generation, sort_key(last))
                return

    def _refreshed(
        self, account: AccountConfig, kind: str, generation: int, after: SortKey | None
    ) -> Iterator[Resource]:
        """The account's resources after ``after`` from a listing read from the backend now (see ``_refresh``)."""
        records = self._refresh(account, kind, generation)
        at = bisect_right(records, after, key=sort_key) if after is not None else 0
        return iter(records[at:])

    def _refresh(self, account: AccountConfig, kind: str, generation: int) -> list[Any]:
        """Read the account's listing of ``kind`` from its backend into the index; the resources, in sort-key
        order, as the index holds them (creation times to the microsecond). PERF: the walk takes the records
        themselves, never decoded again from the rows written."""
        listing = LISTINGS[kind]
        ticket = self.store.index.ticket(account.key, kind) if self.times.ttl > 0 else 0
        records = self._read(account, listing.method)
        memory.note_listing(len(records))
        known = self.publish_all(account, records, count=kind)
        ttl = self.times.ttl
        if any(in_transition(r) for r in records):
            ttl = min(ttl, self.times.transitional_ttl)
        for r in records:
            r.created = round(r.created, 6)
        records = sorted(records, key=sort_key)
        if ttl > 0:
            self.store.index.write(account.key, kind, generation, (to_dict(r) for r in records), ttl, ticket)
        elif self.times.ttl > 0:  # PERF: not cached (a TTL of 0): no rows written that nothing would read
            self.store.index.spoil(account.key, kind)  # a transitional TTL of 0: the next read refreshes
        present = (r.id for r in records)
        gone = self.store.reconcile(account.key, kind, generation, present, self.times.prune_grace, known)
        if gone:
            log.debug("listing %s of %s: forgot %d resources no longer there", kind, account.key, len(gone))
        return records

    def _refresh_later(self, account: AccountConfig, kind: str, generation: int) -> None:
        """Refresh an expired index in the background, on one worker of the deployment at a time."""
        owner = f"{socket.gethostname()}:{os.getpid()}"  # the worker's, not the master's it was forked from
        if not self.store.index.claim_refresh(account.key, kind, owner, REFRESH_LEASE):
            return

        def refresh() -> None:
            try:
                self._refresh(account, kind, generation)
            except Exception as exc:  # the next reader refreshes first, and meets the failure if it lasts
                log.warning("background refresh of %s in %s failed (%s)", kind, account.key, exc)
                with contextlib.suppress(redis.RedisError):
                    self.store.index.spoil(account.key, kind)
            finally:
                with contextlib.suppress(redis.RedisError):
                    self.store.index.release_refresh(account.key, kind)
                memory.release()  # the listing's objects are garbage now

        _REFRESHERS.submit(refresh)

    def _merge_tags(self, kind: str, resources: list[Resource], tagged: set[str]) -> None:
        """Merge the Redis tags of just these resources, for those of ``tagged`` accounts."""
        wanted: dict[tuple[str, str], list[str]] = {}
        for r in resources:
            if r.account in tagged:
                wanted.setdefault((r.account, kind), []).append(r.id)
        tags = self.store.tags_of(wanted)
        for r in resources:
            extra = tags.get(r.id)
            if extra:
                r.tags = {**r.tags, **extra}

    # -- reads by id ---------------------------------------------------------------------------------
    def _named(self, principal: Principal, kind: str, gids: list[str], region: str | None) -> list[Resource]:
        """The named resources (each once, with tags), read from fresh caches or by id from the backends."""
        wanted = list(dict.fromkeys(gids))
        # Account -> its ids, and their native ids where already looked up (None: look up on a cache miss).
        groups: dict[str, tuple[AccountConfig, list[str], list[str] | None]] = {}
        if region is not None:  # PERF: one account; its cached listing alone tells which ids it holds
            account = self.accounts.account(principal, region)
            groups[account.key] = (account, wanted, None)
        else:
            for gid, where in zip(wanted, self.accounts.find(principal, kind, wanted), strict=True):
                if where is not None:
                    account, native = where
                    entry = groups.setdefault(account.key, (account, [], []))
                    entry[1].append(gid)
                    entry[2].append(native)  # type: ignore[union-attr]
        found: dict[str, Resource] = {}
        tagged: set[str] = set()
        for account, account_gids, natives in groups.values():
            some, has_tags = self._fetch(principal, account, kind, account_gids, natives)
            found.update(some)
            if has_tags:
                tagged.add(account.key)
        missing = [g for g in wanted if g not in found]
        if missing:
            raise MissingIds(kind, missing)
        named = [found[g] for g in wanted]
        if tagged:
            self._merge_tags(kind, named, tagged)
        return named

    def _fetch(
        self, principal: Principal, account: AccountConfig, kind: str, gids: list[str], natives: list[str] | None
    ) -> tuple[dict[str, Resource], bool]:
        """Those of ``gids`` in ``account`` (from its index when usable, else asked of the backend by native id),
        and whether Redis holds tags of that kind in that account."""
        listing = LISTINGS[kind]
        backend = self.accounts.backend(account)
        if listing.capability not in backend.capabilities:
            return {}, False
        if self.times.ttl <= 0:
            return self._fetch_uncached(principal, account, kind, gids, natives), False
        wanted = set(gids)
        index = self.store.index.get(account.key, kind, gids)
        tagged = index.tagged
        found: dict[str, Resource] = {}
        if index.state.usable:
            CACHE_LOOKUPS.labels(kind, "hit").inc()
            if index.state is Freshness.EXPIRED:
                self._refresh_later(account, kind, index.generation)
            cls = RESOURCE_TYPES[kind]
            found = {r.id: r for r in (from_dict(cls, loads(raw)) for raw in index.rows)}
            if len(found) == len(wanted):
                return found, tagged
            # An index may predate a resource (clouds list new ones late): ask for the others by id.
            natives = None
            gids = [g for g in gids if g not in found]
        else:
            CACHE_LOOKUPS.labels(kind, "miss").inc()
        if natives is None:
            natives = self._natives(principal, account, kind, gids)
        if natives:
            records = self._read(account, listing.fetch, natives)
            self.publish_all(account, records)
            found.update((r.id, r) for r in records if r.id in wanted)
        return found, tagged

    def _natives(self, principal: Principal, account: AccountConfig, kind: str, gids: list[str]) -> list[str]:
        """The native ids of those of ``gids`` that ``account`` holds."""
        located = self.accounts.find(principal, kind, gids)
        return [where[1] for where in located if where is not None and where[0].key == account.key]

    def _fetch_uncached(
        self,
        principal: Principal,
        account: AccountConfig,
        kind: str,
        gids: list[str],
        natives: list[str] | None,
    ) -> dict[str, Resource]:
        """``_fetch`` when nothing is cached: asked of the backend by id without reading the index first, and
        their Redis tags merged from the round trip that remembers their ids (PERF: one round trip where three were)."""
        CACHE_LOOKUPS.labels(kind, "miss").inc()
        if natives is None:
            natives = self._natives(principal, account, kind, gids)
        if not natives:
            return {}
        records = self._read(account, LISTINGS[kind].fetch, natives)
        entries = self._published(account, records)
        wanted = set(gids)
        found = {r.id: r for r in records if r.id in wanted}
        ids = list(found)
        # the tags' version too, which an answer built from them is kept at (translator/read_cache.py)
        reads: list[tuple[Any, ...]] = [self.store.index.meta_command(account.key, kind)]
        if ids:
            reads.append(("HMGET", tags_key(account.key, kind), *ids))
        replies = self.store.remember_reading(entries, reads)
        self.store.index.note_meta(account.key, kind, replies[0])
        for gid, raw in zip(ids, replies[1] if ids else (), strict=True):
            if raw:
                found[gid].tags = {**found[gid].tags, **loads(raw)}
        return found

    def _read(self, account: AccountConfig, method: str, *args: list[str]) -> list[Any]:
        """The backend's ``method`` (a listing, or a read by native ids) through the caller, recorded as a read an
        answer may be revalidated by (translator/read_cache.py)."""
        key = tuple(tuple(a) for a in args)
        return read_cache.backend_read(account, method, key, lambda: self._call(account, method, *args))

    def reread(self, read: read_cache.BackendRead) -> Any:
        """A backend read made again, as ``_read`` made it (a kept answer's revalidation)."""
        return self._call(read.account, read.method, *(list(a) for a in read.args))

    def _call(self, account: AccountConfig, method: str, *args: list[str]) -> Any:
        """The account's backend ``method`` through the caller (retries, breaker, errors as canonical ones)."""
        return self.caller.call(account, method, getattr(self.accounts.backend(account), method), *args)

    def publish_all(
        self, account: AccountConfig, records: Iterable[Any], count: str | None = None, invalidate: Iterable[str] = ()
    ) -> int:
        """Stamp gateway ids on backend records and remember the reverse mapping; with ``count`` (a kind), how
        many ids of that kind the account has published; ``invalidate``: kinds a mutation changed, invalidated
        first in the same round trip (``Store.remember``)."""
        entries = self._published(account, records)
        return self.store.remember(entries, (account.key, count) if count else None, (account.key, tuple(invalidate)))

    def publish_writes(
        self, account: AccountConfig, records: Iterable[Any], invalidate: Iterable[str]
    ) -> tuple[Write, ...]:
        """``publish_all``'s ids stamped now, its writes left for a job's end to carry (translator/jobs.py)."""
        return self.store.remember_writes(self._published(account, records), (account.key, tuple(invalidate)))

    def _published(self, account: AccountConfig, records: Iterable[Any]) -> list[tuple[str, str, str, str]]:
        """The id-map entries of ``records`` (gateway ids stamped on them)."""
        entries: list[tuple[str, str, str, str]] = []
        records = records if isinstance(records, list) else list(records)
        ids = computed_id if len(records) >= memory.LARGE_LISTING else gateway_id
        for record in records:
            publish(account, record, entries, ids)
        return entries
