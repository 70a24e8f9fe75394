"""All shared state in Redis: id maps, tags, listing caches, idempotency tokens, jobs.

Keys are namespaced ``cg:<kind>:...``. Listing caches are versioned by a per-(account, kind)
generation counter that every mutation bumps, so a listing fetched before a mutation and written
after it lands under a stale generation and is never read (no lock, no race).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import redis

from translator.codec import dumps, loads
from translator.ids import short_form

SEP = "\x1f"

# PERF: one round trip for "current generation, then the cache entry of that generation".
#: generation, the listing cached for it (or nil) and the kind's tags, in one round trip.
_CACHE_GET = """
local gen = redis.call('GET', KEYS[1]) or '0'
return {gen, redis.call('GET', KEYS[2] .. gen), redis.call('HGETALL', KEYS[3])}
"""

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


def _idem_key(tenant: str, token: str) -> str:
    return f"cg:idem:{tenant}:{token}"


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Store:
    """Typed access to the ``cg:`` keyspace; one instance (and one connection pool) per worker."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._cache_get = client.register_script(_CACHE_GET)
        self._idem_claim = client.register_script(_IDEM_CLAIM)
        self._idem_if_held = client.register_script(_IDEM_IF_HELD)

    # -- id map ------------------------------------------------------------------------------
    def remember(self, entries: Iterable[tuple[str, str, str, str]]) -> None:
        """Record ``(gateway id, account key, kind, native id)`` rows for reverse lookups."""
        ids: dict[str, str] = {}
        shorts: dict[str, str] = {}
        for gid, account, kind, native in entries:
            ids[gid] = f"{account}{SEP}{kind}{SEP}{native}"
            shorts[short_form(gid)] = gid
        if ids:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hset("cg:ids", mapping=ids)
            pipe.hset("cg:short", mapping=shorts)
            pipe.execute()

    def resolve(self, gids: list[str]) -> list[tuple[str, str, str] | None]:
        """``(account key, kind, native id)`` for each gateway id, None where unknown."""
        if not gids:
            return []
        rows = self.redis.hmget("cg:ids", gids)
        return [tuple(_s(r).split(SEP, 2)) if r else None for r in rows]  # type: ignore[misc]

    def resolve_short(self, shorts: list[str]) -> list[str | None]:
        if not shorts:
            return []
        return [_s(r) if r else None for r in self.redis.hmget("cg:short", shorts)]

    # -- tags --------------------------------------------------------------------------------
    def update_tags(
        self, account: str, kind: str, gid: str, put: dict[str, str], remove: dict[str, str | None]
    ) -> None:
        """Add/overwrite ``put`` and drop ``remove`` keys (only where the value matches, if given)."""
        key = f"cg:tags:{account}:{kind}"

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

        self.redis.transaction(apply, key)

    def drop_tags(self, account: str, kind: str, gids: list[str]) -> None:
        if gids:
            self.redis.hdel(f"cg:tags:{account}:{kind}", *gids)

    # -- listing cache -----------------------------------------------------------------------
    def cache_read(self, account: str, kind: str) -> tuple[int, bytes | None, dict[str, dict[str, str]]]:
        """(generation, cached listing or None, tags by gateway id) of one kind in one account."""
        # PERF: one script call instead of three commands: listings are on every request's path.
        gen, payload, flat = self._cache_get(
            keys=[f"cg:gen:{account}:{kind}", f"cg:cache:{account}:{kind}:", f"cg:tags:{account}:{kind}"]
        )
        tags = {_s(flat[i]): loads(flat[i + 1]) for i in range(0, len(flat), 2)}
        return int(gen), payload, tags

    def cache_write(self, account: str, kind: str, generation: int, payload: bytes, ttl: float) -> None:
        self.redis.set(f"cg:cache:{account}:{kind}:{generation}", payload, px=max(1, int(ttl * 1000)))

    def invalidate(self, account: str, kinds: Iterable[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for kind in kinds:
            pipe.incr(f"cg:gen:{account}:{kind}")
        pipe.execute()

    # -- idempotency -------------------------------------------------------------------------
    def idempotency_claim(self, tenant: str, token: str, pending: bytes, lease: float) -> dict[str, Any] | None:
        """Claim a client token with a ``pending`` record that lapses after ``lease`` seconds unless renewed;
        None when claimed now, else the record that holds it."""
        held = self._idem_claim(keys=[_idem_key(tenant, token)], args=[pending, _ms(lease)])
        return None if held is None else loads(held)

    def idempotency_renew(self, tenant: str, token: str, pending: bytes, lease: float) -> bool:
        """Extend a claim by ``lease`` seconds from now; False once the token is no longer held by ``pending``."""
        return bool(self._idem_if_held(keys=[_idem_key(tenant, token)], args=[pending, "renew", _ms(lease)]))

    def idempotency_complete(self, tenant: str, token: str, pending: bytes, done: bytes, ttl: int) -> None:
        """Replace the claim by the ``done`` record, kept ``ttl`` seconds (unless another claim holds the token)."""
        self._idem_if_held(keys=[_idem_key(tenant, token)], args=[pending, "complete", ttl * 1000, done])

    def idempotency_release(self, tenant: str, token: str, pending: bytes) -> None:
        """Give a claim up (the work failed): the next request with the token starts afresh."""
        self._idem_if_held(keys=[_idem_key(tenant, token)], args=[pending, "release"])

    # -- jobs --------------------------------------------------------------------------------
    def put_job(self, tenant: str, job_id: str, created: float, payload: bytes, ttl: int) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(f"cg:job:{job_id}", payload, ex=ttl)
        pipe.zadd(f"cg:jobs:{tenant}", {job_id: created})
        pipe.zremrangebyscore(f"cg:jobs:{tenant}", "-inf", created - ttl)
        pipe.execute()

    def get_job(self, job_id: str) -> bytes | None:
        return self.redis.get(f"cg:job:{job_id}")

    def job_ids(self, tenant: str, limit: int = 1000) -> list[str]:
        return [_s(j) for j in self.redis.zrevrange(f"cg:jobs:{tenant}", 0, limit - 1)]

    def get_jobs(self, job_ids: list[str]) -> list[bytes | None]:
        return self.redis.mget([f"cg:job:{j}" for j in job_ids]) if job_ids else []
