"""Documents: what exists only in the gateway (CIMI templates and systems, OCCI user mixins), per tenant.

A document is a JSON object with an id, a version and an ETag (a fresh random token on every write, so a
document deleted and made again never matches an old ``If-Match``). Each (tenant, kind) has a
lexicographic sorted-set index of ids, so a listing pages by id with no SCAN; default ids are UUIDv7,
so that order is creation order. A document may own a member set (a system's machines, the entities
tagged with a mixin), deleted with it.

Keys (one hash tag per tenant, so every multi-key write below is one Lua script on one Cluster slot)::

    cg:doc:{tenant}:<kind>:<id>    hash: body, etag, version, created, updated
    cg:docs:{tenant}:<kind>        zset (all scores 0): ids
    cg:docm:{tenant}:<kind>:<id>   zset (all scores 0): member ids
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from translator import read_cache
from translator.codec import dumps, loads
from translator.errors import Conflict, InvalidParameter, NotFound, PreconditionFailed
from translator.ids import sortable_id
from translator.redis_client import RedisClient

T = TypeVar("T")

MAX_PAGE = 1000
#: the largest body (JSON bytes) one document may hold
MAX_BODY = 1_048_576
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: ids and members: printable, no whitespace (OCCI mixin ids are URLs with a fragment)
_ID = re.compile(r"^[!-~]{1,512}$")
#: arguments per ZADD/ZREM call inside a script (Lua's unpack has a stack limit)
_CHUNK = 500

_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'etag', ARGV[3], 'version', 1, 'created', ARGV[4], 'updated', ARGV[4])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
return 1
"""

#: -> {0} missing, {-1, etag} stale If-Match, {1, created, version} replaced
_REPLACE = """
local cur = redis.call('HMGET', KEYS[1], 'etag', 'version', 'created')
if not cur[1] then return {0} end
if ARGV[4] ~= '' and ARGV[4] ~= cur[1] then return {-1, cur[1]} end
local version = tonumber(cur[2]) + 1
redis.call('HSET', KEYS[1], 'body', ARGV[1], 'etag', ARGV[2], 'version', version, 'updated', ARGV[3])
return {1, cur[3], version}
"""

#: -> 0 missing, -1 stale If-Match, 1 deleted (with its members and index entry)
_DELETE = """
local etag = redis.call('HGET', KEYS[1], 'etag')
if not etag then return 0 end
if ARGV[2] ~= '' and ARGV[2] ~= etag then return -1 end
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

#: ARGV[1] 'add' or 'remove', then members -> -1 when the document is missing, else how many changed
_MEMBERS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local changed = 0
for i = 2, #ARGV, CHUNK do
  local args = {}
  for j = i, math.min(i + CHUNK - 1, #ARGV) do
    if ARGV[1] == 'add' then args[#args + 1] = 0 end
    args[#args + 1] = ARGV[j]
  end
  if ARGV[1] == 'add' then
    changed = changed + redis.call('ZADD', KEYS[2], unpack(args))
  else
    changed = changed + redis.call('ZREM', KEYS[2], unpack(args))
  end
end
return changed
""".replace("CHUNK", str(_CHUNK))


@dataclass(frozen=True, slots=True)
class Document:
    """One stored document; ``etag`` is what a conditional replace or delete must name."""

    tenant: str
    kind: str
    id: str
    body: dict[str, Any]
    etag: str
    version: int
    created: float
    updated: float


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_cursor`` is None on the last page."""

    items: list[T]
    next_cursor: str | None


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class DocumentStore:
    """Tenant-scoped documents in Redis; one per worker, sharing the worker's connection pool."""

    def __init__(self, client: RedisClient) -> None:
        self.redis = client
        self._create = client.register_script(_CREATE)
        self._replace = client.register_script(_REPLACE)
        self._delete = client.register_script(_DELETE)
        self._members = client.register_script(_MEMBERS)

    # -- documents ---------------------------------------------------------------------------
    def create(self, tenant: str, kind: str, body: dict[str, Any], doc_id: str | None = None) -> Document:
        """Store a new document (a UUIDv7 id unless one is given); Conflict if the id is taken."""
        doc_id = doc_id if doc_id is not None else sortable_id()
        key = _doc_key(tenant, kind, doc_id)
        payload = _body(body)
        etag, now = secrets.token_hex(8), time.time()
        if not self._create(keys=[key, _index_key(tenant, kind)], args=[doc_id, payload, etag, repr(now)]):
            raise Conflict(f"The {_label(kind)} '{doc_id}' already exists.", kind=kind, reason="duplicate")
        return Document(tenant, kind, doc_id, loads(payload), etag, 1, now, now)

    def get(self, tenant: str, kind: str, doc_id: str) -> Document:
        """One document; NotFound if it does not exist (in this tenant)."""
        found = self.get_many(tenant, kind, [doc_id])[0]
        if found is None:
            raise _not_found(kind, doc_id)
        return found

    def get_many(self, tenant: str, kind: str, doc_ids: list[str]) -> list[Document | None]:
        """Documents in the order asked, None where missing; one round trip."""
        read_cache.note_unversioned()
        keys = [_doc_key(tenant, kind, i) for i in doc_ids]
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.hgetall(key)
        return [_document(tenant, kind, i, raw) for i, raw in zip(doc_ids, pipe.execute(), strict=True)]

    def list(self, tenant: str, kind: str, cursor: str | None = None, limit: int = 100) -> Page[Document]:
        """Documents in id order after ``cursor`` (the previous page's ``next_cursor``)."""
        ids, next_cursor = self._page(_index_key(tenant, kind), cursor, limit)
        docs = [d for d in self.get_many(tenant, kind, ids) if d is not None]
        return Page(docs, next_cursor)

    def count(self, tenant: str, kind: str) -> int:
        read_cache.note_unversioned()
        _check_kind(kind)
        return int(self.redis.zcard(_index_key(tenant, kind)))

    def replace(
        self, tenant: str, kind: str, doc_id: str, body: dict[str, Any], if_match: str | None = None
    ) -> Document:
        """Overwrite a document's body; with ``if_match``, only while its ETag is still that one."""
        key = _doc_key(tenant, kind, doc_id)
        payload = _body(body)
        etag, now = secrets.token_hex(8), time.time()
        row = self._replace(keys=[key], args=[payload, etag, repr(now), if_match or ""])
        if row[0] == 0:
            raise _not_found(kind, doc_id)
        if row[0] == -1:
            raise _stale(kind, doc_id)
        return Document(tenant, kind, doc_id, loads(payload), etag, int(row[2]), float(row[1]), now)

    def delete(self, tenant: str, kind: str, doc_id: str, if_match: str | None = None) -> None:
        """Delete a document and its members; NotFound if absent, PreconditionFailed on a stale ETag."""
        keys = [_doc_key(tenant, kind, doc_id), _index_key(tenant, kind), _members_key(tenant, kind, doc_id)]
        done = self._delete(keys=keys, args=[doc_id, if_match or ""])
        if done == 0:
            raise _not_found(kind, doc_id)
        if done == -1:
            raise _stale(kind, doc_id)

    # -- members -----------------------------------------------------------------------------
    def add_members(self, tenant: str, kind: str, doc_id: str, members: Iterable[str]) -> int:
        """Add ids to a document's member set; how many were new. NotFound if the document is gone."""
        return self._change_members("add", tenant, kind, doc_id, members)

    def remove_members(self, tenant: str, kind: str, doc_id: str, members: Iterable[str]) -> int:
        """Drop ids from a document's member set; how many were there."""
        return self._change_members("remove", tenant, kind, doc_id, members)

    def members(self, tenant: str, kind: str, doc_id: str, cursor: str | None = None, limit: int = 100) -> Page[str]:
        """A document's members in id order after ``cursor``; NotFound if the document does not exist."""
        ids, next_cursor = self._page(_members_key(tenant, kind, doc_id), cursor, limit)
        if not ids and not self.redis.exists(_doc_key(tenant, kind, doc_id)):
            raise _not_found(kind, doc_id)
        return Page(ids, next_cursor)

    def is_member(self, tenant: str, kind: str, doc_id: str, member: str) -> bool:
        read_cache.note_unversioned()
        return self.redis.zscore(_members_key(tenant, kind, doc_id), member) is not None

    def _change_members(self, op: str, tenant: str, kind: str, doc_id: str, members: Iterable[str]) -> int:
        members = list(dict.fromkeys(members))
        for member in members:
            _check_id(member, "member")
        keys = [_doc_key(tenant, kind, doc_id), _members_key(tenant, kind, doc_id)]
        changed = int(self._members(keys=keys, args=[op, *members]))
        if changed == -1:
            raise _not_found(kind, doc_id)
        return changed

    def _page(self, key: str, cursor: str | None, limit: int) -> tuple[list[str], str | None]:
        read_cache.note_unversioned()
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidParameter(f"The page size must be between 1 and {MAX_PAGE}.", reason="limit")
        if cursor is not None:
            _check_id(cursor, "cursor")
        start = f"({cursor}" if cursor else "-"
        # One more than the page, to know whether another page follows without a second call.
        ids = [_s(m) for m in self.redis.zrangebylex(key, start, "+", 0, limit + 1)]
        return (ids[:limit], ids[limit - 1]) if len(ids) > limit else (ids, None)


def _doc_key(tenant: str, kind: str, doc_id: str) -> str:
    _check_kind(kind)
    _check_id(doc_id, "id")
    return f"cg:doc:{{{tenant}}}:{kind}:{doc_id}"


def _index_key(tenant: str, kind: str) -> str:
    _check_kind(kind)
    return f"cg:docs:{{{tenant}}}:{kind}"


def _members_key(tenant: str, kind: str, doc_id: str) -> str:
    _check_kind(kind)
    _check_id(doc_id, "id")
    return f"cg:docm:{{{tenant}}}:{kind}:{doc_id}"


def _check_kind(kind: str) -> None:
    if not _KIND.match(kind):
        raise InvalidParameter(f"'{kind[:64]}' is not a document kind.", reason="kind")


def _check_id(value: str, what: str) -> None:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidParameter(f"The {what} must be 1 to 512 printable characters without spaces.", reason=what)


def _body(body: dict[str, Any]) -> bytes:
    if not isinstance(body, dict):
        raise InvalidParameter("A document body must be an object.", reason="body")
    try:
        payload = dumps(body)
    except (TypeError, orjson.JSONEncodeError):
        raise InvalidParameter("A document body must be plain JSON.", reason="body") from None
    if len(payload) > MAX_BODY:
        raise InvalidParameter(f"A document body must not exceed {MAX_BODY} bytes.", reason="body")
    return payload


def _document(tenant: str, kind: str, doc_id: str, raw: dict[bytes, bytes]) -> Document | None:
    if not raw:
        return None
    return Document(
        tenant=tenant,
        kind=kind,
        id=doc_id,
        body=loads(raw[b"body"]),
        etag=_s(raw[b"etag"]),
        version=int(raw[b"version"]),
        created=float(raw[b"created"]),
        updated=float(raw[b"updated"]),
    )


def _label(kind: str) -> str:
    return kind.replace("_", " ")


def _not_found(kind: str, doc_id: str) -> NotFound:
    return NotFound(f"The {_label(kind)} '{doc_id}' does not exist.", kind=kind)


def _stale(kind: str, doc_id: str) -> PreconditionFailed:
    return PreconditionFailed(
        f"The {_label(kind)} '{doc_id}' has changed since the version named by If-Match.", kind=kind, reason="etag"
    )
