"""Request rate limits per access key and per tenant: token buckets in Redis, shared by every worker of every node.

Each bucket (one per access key, one per tenant) is a Redis hash refilled at ``rate`` tokens a second up to
``burst``; one Lua script refills both of a caller's buckets by Redis's own clock and takes tokens from both at
once. Both keys carry the tenant's hash tag (an access key belongs to one tenant), so the script touches one slot
on Redis Cluster, and each expires once it would be full again, so an idle caller leaves nothing behind.

PERF: a Redis round trip per request would cost more than a request answered from the read cache
(translator/read_cache.py). So a worker takes a *batch* of tokens at once and spends them locally; it goes back
to Redis when the batch is spent or older than ``batch_seconds``, giving back what is left in the same round
trip. A batch is sized by the caller's traffic on this worker: one token at first, twice the last batch when
that was spent, what was used of it when it aged out; never more than ``batch`` or an eighth of the smaller
burst. A refusal is remembered locally until the bucket holds a batch again (the wait it was told), so an
abusive client costs no round trip either, and one held at its rate one per batch. Measured: ~1 µs a request
admitted from a batch or refused locally; steady traffic one round trip per ``batch`` requests.

Slack: every admitted request spent a token already taken out of the shared bucket, so a fleet of W workers is
never admitted more than ``burst + rate * t`` over any time ``t`` (Redis losing the buckets, e.g. a failover
without replication, starts them full: one more burst). The slack goes the other way: tokens taken but unspent
sit in workers' batches, per caller and worker at most twice what it used in its last batch and never more than
the batch size (at most W * batch per caller; in practice about one ``batch_seconds`` of its traffic), until that
caller's next request there gives them back or they would have refilled anyway: a client right at its rate can
be refused early by that much.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from translator.errors import Throttled
from translator.redis_client import RedisClient

#: Refill and take from a caller's two buckets. KEYS: the access key's bucket, the tenant's. ARGV: key rate, key
#: burst, tenant rate, tenant burst (rate 0 = that bucket is off), tokens given back, tokens wanted.
#: Returns {tokens granted, and when none was: seconds until as many as wanted are there}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local back, want = tonumber(ARGV[5]), tonumber(ARGV[6])
local levels, grant = {}, want
for i = 1, 2 do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if rate > 0 then
    local held = redis.call('HMGET', KEYS[i], 'v', 't')
    local level, at = tonumber(held[1]) or burst, tonumber(held[2]) or now
    level = math.min(burst, level + math.max(0, now - at) * rate + back)
    levels[i] = level
    grant = math.min(grant, math.floor(level))
  end
end
if grant < 0 then grant = 0 end
local wait = 0
for i = 1, 2 do
  local rate, burst = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  if rate > 0 then
    local level = levels[i] - grant
    redis.call('HSET', KEYS[i], 'v', string.format('%.6f', level), 't', string.format('%.6f', now))
    redis.call('PEXPIRE', KEYS[i], math.ceil((burst - level) / rate * 1000) + 1000)
    if grant == 0 then wait = math.max(wait, (math.min(want, burst) - level) / rate) end
  end
end
return {grant, string.format('%.6f', wait)}
"""

#: callers a worker keeps batches for at most (past it, it forgets them all: their tokens are lost, not extra)
_MAX_CALLERS = 10_000


@dataclass(frozen=True, slots=True)
class Bucket:
    """``rate`` requests a second on average, ``burst`` at once; rate 0 = no limit."""

    rate: float = 0.0
    burst: int = 0

    @property
    def on(self) -> bool:
        return self.rate > 0

    @property
    def size(self) -> int:
        """The burst, or one second's worth of the rate when none is set."""
        return self.burst or max(1, math.ceil(self.rate))


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """``[gateway.rate_limits]``: off unless a rate is set."""

    per_key: Bucket = field(default_factory=Bucket)
    per_tenant: Bucket = field(default_factory=Bucket)
    #: tokens a worker takes from Redis at once, at most
    batch: int = 20
    #: seconds a worker keeps a batch before giving its rest back
    batch_seconds: float = 0.25

    @property
    def on(self) -> bool:
        return self.per_key.on or self.per_tenant.on

    def take(self) -> int:
        """The most tokens a worker asks for at once: small against the burst (other workers' share)."""
        smallest = min(b.size for b in (self.per_key, self.per_tenant) if b.on)
        return max(1, min(self.batch, smallest // 8))


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


@dataclass(slots=True)
class _Batch:
    """One caller's tokens in this worker."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: int = 0
    #: tokens the last batch was granted, and how many the next one asks for
    granted: int = 0
    want: int = 1
    #: monotonic time past which the batch's rest goes back to Redis
    until: float = 0.0
    #: monotonic time before which the caller is refused without asking Redis
    refused_until: float = 0.0


class RateLimiter:
    """One per worker: ``admit`` says whether a caller's request may go on."""

    def __init__(self, client: RedisClient, settings: RateLimitSettings) -> None:
        self.settings = settings
        self._take: Any = client.register_script(_TAKE)
        self._want = settings.take() if settings.on else 0
        self._args = (
            settings.per_key.rate,
            settings.per_key.size,
            settings.per_tenant.rate,
            settings.per_tenant.size,
        )
        self._lock = threading.Lock()
        self._batches: dict[tuple[str, str], _Batch] = {}

    def admit(self, access_key: str, tenant: str) -> float | None:
        """None when the request may go on, else the seconds to wait. Raises Redis's errors (a 503, as any)."""
        if not self._want:
            return None
        batch = self._batch(access_key, tenant)
        with batch.lock:
            now = time.monotonic()
            if batch.tokens > 0 and now < batch.until:
                batch.tokens -= 1
                return None
            if now < batch.refused_until:
                return batch.refused_until - now
            back, batch.tokens = batch.tokens, 0  # lost if Redis fails: fewer admitted, never more
            # A batch spent doubles the next (up to the most a worker takes); one that aged out asks for what was
            # used of it: a sparse caller parks no tokens, a busy one soon goes to Redis once per full batch.
            if batch.granted and not back:
                batch.want = min(self._want, 2 * batch.want)
            elif batch.granted:
                batch.want = max(1, batch.granted - back)
            got, wait = self._take(keys=bucket_keys(access_key, tenant), args=(*self._args, back, batch.want))
            granted = batch.granted = int(got)
            if granted > 0:
                batch.tokens, batch.until = granted - 1, now + self.settings.batch_seconds
                return None
            batch.refused_until = now + float(wait)
            return float(wait)

    def check(self, access_key: str, tenant: str) -> None:
        """``admit`` for a frontend: ``Throttled`` (with the wait) when the request may not go on."""
        wait = self.admit(access_key, tenant)
        if wait is not None:
            raise Throttled("Request limit exceeded: slow down.", retry_after=wait)

    def _batch(self, access_key: str, tenant: str) -> _Batch:
        caller = (access_key, tenant)
        found = self._batches.get(caller)
        if found is not None:
            return found
        with self._lock:
            if len(self._batches) >= _MAX_CALLERS:
                self._batches.clear()
            return self._batches.setdefault(caller, _Batch())


def bucket_keys(access_key: str, tenant: str) -> tuple[str, str]:
    """The access key's bucket and the tenant's, in the tenant's hash slot."""
    return f"cg:rl:{{{tenant}}}:key:{access_key}", f"cg:rl:{{{tenant}}}:tenant"
