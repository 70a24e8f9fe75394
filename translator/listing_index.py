"""The listing index: an account's resources of one kind in Redis as rows under one ordered index, so a page
reads only its members, a read by id only its rows, and a refresh writes only what changed.

Keys, under one hash tag per account and kind (every script touches one slot):

    cg:ix:{<account>|<kind>}:meta    hash: ``gen`` the generation (bumped by every mutation of the kind),
                                     ``filled`` the generation the rows were read at, ``until`` (ms) when
                                     they stop being fresh, ``ver`` bumped by every write that changes
                                     a row or a Redis tag (with ``gen``: the index's content version)
    cg:ix:{<account>|<kind>}:rows    hash: gateway id -> the resource's row (JSON; Redis tags not merged)
    cg:ix:{<account>|<kind>}:sums    hash: gateway id -> "<digest of its row> <its order member>"
    cg:ix:{<account>|<kind>}:order   zset, every score 0, of "<created, 20 characters>|<gateway id>": the
                                     lexicographic order is the listings' (creation time, then id), and a
                                     page after a cursor is one ZRANGEBYLEX
    cg:ix:{<account>|<kind>}:lock    the worker refreshing an expired index in the background
    cg:ix:{<account>|<kind>}:tags    hash: gateway id -> its tags kept in Redis (backends without native
                                     tags of the kind; translator/store.py), counted by every read

A read finds the index in one of four states (``Freshness``):
- ``absent``: never filled; ``stale``: filled before a mutation bumped the generation. The reader refreshes
  it from the backend before answering, so a caller always reads its own writes;
- ``expired``: filled at the current generation, past its TTL. The reader answers from it and one worker
  (``claim_refresh``) refreshes it in the background, so no reader waits for a backend when a TTL lapses;
  a refresh that fails makes the index absent (``spoil``): a cloud that is down is a 503, not ever older data;
- ``fresh``.
A refresh compares each row's digest with the one stored and writes only rows that changed, appeared or
went, and only while the generation is still the one it read at (a mutation meanwhile wins).

Every read reports the version it read at to the request's read set (translator/read_cache.py), so an
answer built only from fresh index reads can be reused while those versions hold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from translator import read_cache
from translator.codec import dumps
from translator.redis_client import RedisClient

#: Members per page read at most (a script's reply, and Lua's unpack, stay small).
MAX_CHUNK = 1000
#: How long an index nobody reads or refreshes is kept (seconds): an idle account's index goes.
IDLE_TTL = 86_400
_WIDTH = 20  # characters of a member's creation time: "%020.6f" holds any time until the year 5138


class Freshness(StrEnum):
    ABSENT = "absent"
    STALE = "stale"
    EXPIRED = "expired"
    FRESH = "fresh"

    @property
    def usable(self) -> bool:
        """Whether a reader may answer from the index (an expired one is refreshed meanwhile)."""
        return self in (Freshness.FRESH, Freshness.EXPIRED)

    @property
    def seen(self) -> read_cache.Seen:
        if self is Freshness.FRESH:
            return read_cache.Seen.FRESH
        return read_cache.Seen.EXPIRED if self is Freshness.EXPIRED else read_cache.Seen.UNUSABLE


#: KEYS meta, tags -> {state, generation, how many resources have Redis tags, content version}
_STATE_OF = """
local function state()
  local meta = redis.call('HMGET', KEYS[1], 'gen', 'filled', 'until', 'ver')
  local gen = meta[1] or '0'
  local tagged = redis.call('HLEN', KEYS[2])
  local ver = gen .. '.' .. (meta[4] or '0')
  if not meta[2] then return {'absent', gen, tagged, ver} end
  if meta[2] ~= gen then return {'stale', gen, tagged, ver} end
  local t = redis.call('TIME')
  if tonumber(meta[3]) > t[1] * 1000 + math.floor(t[2] / 1000) then return {'fresh', gen, tagged, ver} end
  return {'expired', gen, tagged, ver}
end
"""
#: the prelude of the page and get scripts: their state, and no rows unless usable
_STATE = (
    _STATE_OF
    + """local s = state()
if s[1] ~= 'fresh' and s[1] ~= 'expired' then return s end
"""
)
#: KEYS meta, tags -> {content version, ms it stays fresh (0 unless fresh), state} (what the read cache checks)
_VERSION = (
    _STATE_OF
    + """local s = state()
local left = 0
if s[1] == 'fresh' then
  local t = redis.call('TIME')
  left = tonumber(redis.call('HGET', KEYS[1], 'until')) - (t[1] * 1000 + math.floor(t[2] / 1000))
end
return {s[4], left, s[1]}
"""
)
#: KEYS meta, tags, order, rows; ARGV min (a ZRANGEBYLEX bound), count -> {state, gen, tagged, ver, row...}
_PAGE = (
    _STATE
    + """local members = redis.call('ZRANGEBYLEX', KEYS[3], ARGV[1], '+', 'LIMIT', 0, tonumber(ARGV[2]))
local ids = {}
for i, m in ipairs(members) do ids[i] = string.sub(m, 22) end
if #ids == 0 then return s end
local rows = redis.call('HMGET', KEYS[4], unpack(ids))
for i = 1, #rows do s[i + 4] = rows[i] end
return s
"""
)
#: KEYS meta, tags, rows; ARGV gateway ids -> {state, gen, tagged, ver, row or false...}
_GET = (
    _STATE
    + """local rows = redis.call('HMGET', KEYS[3], unpack(ARGV))
for i = 1, #rows do s[i + 4] = rows[i] end
return s
"""
)
#: KEYS meta, order, rows, sums; ARGV generation, ttl ms, idle ttl s, ticket, count of puts, then per put
#: (id, member, row, sum), then per removal (id, member) -> 1, 0 when a mutation bumped the generation, 2 when
#: a refresh that started later has written already (its rows are newer: these are dropped)
_WRITE = """
local meta = redis.call('HMGET', KEYS[1], 'gen', 'wrote')
local gen = meta[1] or '0'
if gen ~= ARGV[1] then return 0 end
if tonumber(meta[2] or '0') > tonumber(ARGV[4]) then return 2 end
redis.call('HSET', KEYS[1], 'wrote', ARGV[4])
local puts = tonumber(ARGV[5])
local i = 6
for _ = 1, puts do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 3] .. ' ' .. ARGV[i + 1])
  redis.call('ZADD', KEYS[2], 0, ARGV[i + 1])
  i = i + 4
end
while i < #ARGV do
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('HDEL', KEYS[4], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i + 1])
  i = i + 2
end
if i > 6 then redis.call('HINCRBY', KEYS[1], 'ver', 1) end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], 'gen', gen, 'filled', gen, 'until', now + tonumber(ARGV[2]))
else  -- listings are not cached: every read refreshes first
  redis.call('HDEL', KEYS[1], 'filled')
end
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], ARGV[3]) end
return 1
"""


def member(created: float, gid: str) -> str:
    """A resource's place in the order: its creation time, fixed width, then its id."""
    return f"{created:0{_WIDTH}.6f}|{gid}"


def _keys(account: str, kind: str) -> tuple[str, str, str, str, str]:
    base = f"cg:ix:{{{account}|{kind}}}"
    return f"{base}:meta", f"{base}:order", f"{base}:rows", f"{base}:sums", f"{base}:lock"


def tags_key(account: str, kind: str) -> str:
    """The hash of an account's Redis-kept tags of one kind, in the slot of its index."""
    return f"cg:ix:{{{account}|{kind}}}:tags"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one read of the index found: its state, the generation it was at, whether any resource of the kind
    has tags in Redis, and rows (JSON) in order."""

    state: Freshness
    generation: int
    tagged: bool
    rows: list[bytes]


class ListingIndex:
    """Reads and writes of the listing index; one per worker, sharing the worker's Redis pool."""

    def __init__(self, client: RedisClient) -> None:
        self.redis = client
        self._page = client.register_script(_PAGE)
        self._get = client.register_script(_GET)
        self._write = client.register_script(_WRITE)
        self._version = client.register_script(_VERSION)

    def page(self, account: str, kind: str, after: str | None, count: int) -> Chunk:
        """Up to ``count`` rows after the member ``after`` (from the start when None), in order."""
        meta, order, rows, _, _ = _keys(account, kind)
        bound = f"({after}" if after is not None else "-"
        keys = [meta, tags_key(account, kind), order, rows]
        reply = self._page(keys=keys, args=[bound, max(1, min(count, MAX_CHUNK))])
        state = Freshness(_s(reply[0]))
        read_cache.note_read(meta, _s(reply[3]), state.seen)
        return Chunk(state, int(reply[1]), int(reply[2]) > 0, [r for r in reply[4:] if r])

    def get(self, account: str, kind: str, gids: Sequence[str]) -> Chunk:
        """The rows of these ids the index holds (none unless usable), in the order asked, missing ones left out."""
        meta, _, rows, _, _ = _keys(account, kind)
        keys = [meta, tags_key(account, kind), rows]
        found: list[bytes] = []
        reply: list[Any] = []
        for start in range(0, max(1, len(gids)), MAX_CHUNK):
            some = list(gids[start : start + MAX_CHUNK]) or [""]  # no ids: the state alone
            reply = self._get(keys=keys, args=some)
            state = Freshness(_s(reply[0]))
            read_cache.note_read(meta, _s(reply[3]), state.seen)
            if not state.usable:
                break
            found += [row for row in reply[4:] if row]
        return Chunk(Freshness(_s(reply[0])), int(reply[1]), int(reply[2]) > 0, found)

    def meta_command(self, account: str, kind: str) -> tuple[Any, ...]:
        """A command reading what ``note_meta`` needs of the index's meta (for a caller's own round trip)."""
        return ("HMGET", _keys(account, kind)[0], "gen", "ver", "filled")

    def note_meta(self, account: str, kind: str, reply: Sequence[Any]) -> None:
        """Report to the request's read set the version ``meta_command`` read, for a read that did not use the
        index's rows (a read by id when nothing is cached): an index with rows counts as expired (never reused)."""
        gen, ver, filled = (_s(v) if v is not None else None for v in reply)
        seen = read_cache.Seen.EXPIRED if filled is not None else read_cache.Seen.UNUSABLE
        read_cache.note_read(_keys(account, kind)[0], f"{gen or '0'}.{ver or '0'}", seen)

    def ticket(self, account: str, kind: str) -> int:
        """Taken by a refresh before it reads the backend: of two refreshes at one generation (a reader's and a
        background one), the rows of the one that read later win, whichever writes last."""
        return int(self.redis.hincrby(_keys(account, kind)[0], "ticket", 1))

    def write(
        self, account: str, kind: str, generation: int, rows: Iterable[dict[str, Any]], ttl: float, ticket: int = 0
    ) -> bool:
        """Make the index hold exactly ``rows`` (a full listing read at ``generation``, after taking ``ticket``),
        fresh for ``ttl`` seconds (none: not cached, the next read refreshes again); only what changed is
        written. False when a mutation has bumped the generation meanwhile."""
        meta, order, rows_key, sums, _ = _keys(account, kind)
        old = {_s(k): _s(v) for k, v in self.redis.hgetall(sums).items()}
        puts: list[Any] = []
        removals: list[str] = []
        for row in rows:
            gid = row["id"]
            body = dumps(row)
            digest = hashlib.blake2b(body, digest_size=8).hexdigest()
            place = member(row["created"], gid)
            before = old.pop(gid, None)
            if before is not None:
                old_digest, _, old_place = before.partition(" ")
                if old_digest == digest and old_place == place:
                    continue
                if old_place != place:
                    removals += ["", old_place]  # the row is put again below; only the old member goes
            puts += [gid, place, body, digest]
        for gid, before in old.items():
            removals += [gid, before.partition(" ")[2]]
        done = self._write(
            keys=[meta, order, rows_key, sums],
            args=[generation, max(0, int(ttl * 1000)), IDLE_TTL, ticket, len(puts) // 4, *puts, *removals],
        )
        return bool(done)

    def spoil(self, account: str, kind: str) -> None:
        """A background refresh failed: the next reader refreshes before answering (and meets the failure,
        a 503 of its protocol), rather than every reader being answered from an index ever older."""
        self.redis.hdel(_keys(account, kind)[0], "filled")

    def invalidate(self, account: str, kinds: Iterable[str], pipe: Any = None) -> None:
        """After a mutation: bump each kind's generation, so its index is refreshed before it is read again
        (queued on ``pipe`` when given, for its caller to execute)."""
        own = pipe is None
        pipe = self.redis.pipeline(transaction=False) if own else pipe
        for command in self.invalidate_commands(account, kinds):
            pipe.execute_command(*command)
        if own:
            pipe.execute()

    @staticmethod
    def invalidate_commands(account: str, kinds: Iterable[str]) -> list[tuple[Any, ...]]:
        """The commands of ``invalidate``, for a caller that sends them with others."""
        return [("HINCRBY", _keys(account, kind)[0], "gen", 1) for kind in kinds]

    def generation(self, account: str, kind: str) -> int:
        return int(self.redis.hget(_keys(account, kind)[0], "gen") or 0)

    def version_command(self, meta_key: str) -> tuple[Any, ...]:
        """The command reading the content version of the index whose meta key this is, how many ms it stays
        fresh, and its state (the version every read reports). PERF: EVALSHA itself: a pipeline
        holding a Script first asks SCRIPT EXISTS, a round trip; ``load_version_script`` after a NOSCRIPT reply."""
        return ("EVALSHA", self._version.sha, 2, *self.version_keys(meta_key))

    @staticmethod
    def version_keys(meta_key: str) -> tuple[str, str]:
        """The keys an index's content version is read from: its meta and its tags."""
        return meta_key, meta_key.removesuffix(":meta") + ":tags"

    def load_version_script(self) -> None:
        self._version.sha = self.redis.script_load(_VERSION)

    def bump_version(self, pipe: Any, account: str, kind: str) -> None:
        """Queue on ``pipe`` the content-version bump of a write outside this class (Redis tags)."""
        pipe.hincrby(_keys(account, kind)[0], "ver", 1)

    def meta_key(self, account: str, kind: str) -> str:
        """The key a generation lives in (to WATCH while acting on a listing read at one)."""
        return _keys(account, kind)[0]

    def claim_refresh(self, account: str, kind: str, owner: str, lease: float) -> bool:
        """Whether this worker is the one to refresh the expired index now (for ``lease`` seconds at most)."""
        return bool(self.redis.set(_keys(account, kind)[4], owner, nx=True, px=max(1, int(lease * 1000))))

    def release_refresh(self, account: str, kind: str) -> None:
        self.redis.delete(_keys(account, kind)[4])
