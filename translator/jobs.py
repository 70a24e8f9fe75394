"""Jobs in Redis: one record per mutating operation, and the queue any worker on any node runs them from.

A job's record says what happened (state ``queued → running → success | failed``, progress, status
message, times, affected resources, parent and children) and holds the work itself as data: an
operation name and JSON arguments, so a worker that never saw the request can run it
(translator/job_runner.py). Records live in the tenant's slot, the queue in the deployment's:

    cg:job:{tenant}:<id>          hash: the job's fields (lists and arguments as JSON)
    cg:jobs:{tenant}              zset (all scores 0) of ids; ids are UUIDv7, so lexicographic = newest last
    cg:jobq:{queue}:ready         zset: "<id>:<tenant>" refs waiting for a worker, by when they are due (their
                                  enqueue time; later for a job that waits, ``Deferral``)
    cg:jobq:{queue}:leases        zset: refs being run, by lease expiry (Redis server time, ms)
    cg:jobq:{queue}:owners        hash: ref -> the runner holding its lease
    cg:jobq:{queue}:attempts      hash: ref -> how many times a runner took it
    cg:jobq:{queue}:bell          list: one token per enqueue, so idle runners wake at once
    cg:jobq:{queue}:wake:<owner>  list: wakes one runner that is stopping

A record changes only through the scripts below, each on one slot. Record writes are conditional on the
attempt number a runner got when it claimed the job, so a runner that lost its lease (stalled past it)
can no longer overwrite what the runner that took over records. Every record expires ``ttl`` seconds
after its last change (a queued job nobody runs too); index entries of expired records are dropped by
listings and, two at a time, by every new job.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis
from redis.commands.core import Script

from translator import read_cache
from translator.codec import dumps, loads
from translator.documents import Page
from translator.durability import Durability
from translator.errors import InvalidParameter
from translator.ids import is_gateway_id, sortable_id
from translator.model import Job, JobState
from translator.redis_client import RedisClient

MAX_PAGE = 1000
DONE = (JobState.SUCCESS, JobState.FAILED)

# -- scripts on a tenant's slot ----------------------------------------------------------------------
#: KEYS record, index, parent (= record when none); ARGV id, ttl, field/value pairs -> 0 if the parent is gone
_CREATE = """
local child = KEYS[3] ~= KEYS[1]
if child and redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if child then
  local kids = redis.call('HGET', KEYS[3], 'child_ids')
  redis.call('HSET', KEYS[3], 'child_ids', (kids and kids ~= '') and (kids .. ' ' .. ARGV[1]) or ARGV[1])
  redis.call('HINCRBY', KEYS[3], 'open', 1)
  redis.call('HINCRBY', KEYS[3], 'total', 1)
end
-- The two oldest index entries whose records expired go (their keys share this slot's hash tag).
local prefix = string.sub(KEYS[1], 1, #KEYS[1] - #ARGV[1])
for _, old in ipairs(redis.call('ZRANGE', KEYS[2], 0, 1)) do
  if redis.call('EXISTS', prefix .. old) == 0 then redis.call('ZREM', KEYS[2], old) end
end
return 1
"""

#: KEYS record, parent; ARGV attempt, now, ttl -> ok | done | stale | gone (``started`` stays the first start's)
_START = """
local st = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if not st[1] then return 'gone' end
if st[1] == 'success' or st[1] == 'failed' then return 'done' end
if tonumber(st[2] or '0') >= tonumber(ARGV[1]) then return 'stale' end
redis.call('HSET', KEYS[1], 'state', 'running', 'attempts', ARGV[1], 'updated', ARGV[2])
redis.call('HSETNX', KEYS[1], 'started', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
if KEYS[2] ~= KEYS[1] and redis.call('HGET', KEYS[2], 'state') == 'queued' then
  redis.call('HSET', KEYS[2], 'state', 'running', 'started', ARGV[2], 'updated', ARGV[2])
end
return 'ok'
"""

#: KEYS record, parent; ARGV attempt ('' = whichever), state, now, ttl, field/value pairs -> ok | done | stale | gone
#: The arguments go (done work needs no replay, and they may hold user data). A group parent (no work of
#: its own) ends when its last child does: failed if any child failed.
_FINISH = """
local st = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if not st[1] then return 'gone' end
if st[1] == 'success' or st[1] == 'failed' then return 'done' end
if ARGV[1] ~= '' and st[2] ~= ARGV[1] then return 'stale' end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', ARGV[3], 'finished', ARGV[3], 'progress', 100)
redis.call('HDEL', KEYS[1], 'arguments')
if #ARGV > 4 then redis.call('HSET', KEYS[1], unpack(ARGV, 5)) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[2]) == 1 then
  local open = redis.call('HINCRBY', KEYS[2], 'open', -1)
  if ARGV[2] == 'failed' then redis.call('HINCRBY', KEYS[2], 'failures', 1) end
  local p = redis.call('HMGET', KEYS[2], 'group', 'state', 'total', 'failures')
  if p[1] == '1' and p[2] ~= 'success' and p[2] ~= 'failed' then
    local total, failures = tonumber(p[3]), tonumber(p[4] or '0')
    if open <= 0 then
      local state, msg = 'success', ''
      if failures > 0 then
        state, msg = 'failed', failures .. ' of ' .. total .. ' failed'
        redis.call('HSET', KEYS[2], 'error', msg)
      end
      redis.call('HSET', KEYS[2], 'state', state, 'message', msg, 'progress', 100,
                 'updated', ARGV[3], 'finished', ARGV[3])
      redis.call('EXPIRE', KEYS[2], ARGV[4])
    else
      redis.call('HSET', KEYS[2], 'progress', math.floor(100 * (total - open) / total), 'updated', ARGV[3])
    end
  end
end
return 'ok'
"""

#: KEYS record; ARGV attempt, progress, message, now -> 1 if the job is still this attempt's
_REPORT = """
local st = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if st[1] ~= 'running' or st[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[2], 'message', ARGV[3], 'updated', ARGV[4])
return 1
"""

#: KEYS record; ARGV attempt, arguments, now, ttl -> 1 if the job was still this attempt's: its arguments (where the
#: work stands) saved and its attempt given back, so the run that resumes it starts as this one did
_SUSPEND = """
local st = redis.call('HMGET', KEYS[1], 'state', 'attempts')
if st[1] ~= 'running' or st[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'arguments', ARGV[2], 'attempts', tonumber(ARGV[1]) - 1, 'updated', ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
"""

# -- scripts on the queue's slot (lease times are Redis's clock, the same for every node) ------------------
_NOW = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"

#: KEYS ready, bell; ARGV refs
_ENQUEUE = (
    _NOW
    + """
for i = 1, #ARGV do
  redis.call('ZADD', KEYS[1], 'NX', now, ARGV[i])
  redis.call('LPUSH', KEYS[2], 1)
end
redis.call('LTRIM', KEYS[2], 0, 63)
return #ARGV
"""
)

#: KEYS ready, leases, owners, attempts; ARGV owner, lease ms, how many -> {ref, attempt, ref, attempt, ...}: the
#: entries due (a deferred job's is due later than it was queued), first due first
_CLAIM = (
    _NOW
    + """
local out = {}
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  redis.call('ZREM', KEYS[1], ref)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ref)
  redis.call('HSET', KEYS[3], ref, ARGV[1])
  out[#out + 1] = ref
  out[#out + 1] = redis.call('HINCRBY', KEYS[4], ref, 1)
end
return out
"""
)

#: KEYS leases, owners, attempts; ARGV ref, owner, lease ms: lease a job that was never queued (run inline)
_ADOPT = (
    _NOW
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[1], 1)
return 1
"""
)

#: KEYS leases, owners; ARGV owner, lease ms, refs -> the refs this owner no longer holds
_RENEW = (
    _NOW
    + """
local lost = {}
for i = 3, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)

#: KEYS leases, owners, attempts; ARGV ref, owner -> 1 if released, 0 if another runner holds it
_RELEASE = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""

#: KEYS ready, leases, owners, attempts; ARGV ref, owner, delay ms -> 1 if ``owner`` held it: its lease ends, the
#: attempt it was on is not counted, and it is due again in ``delay`` ms (a job that waits holds no runner)
_DEFER = (
    _NOW
    + """
if redis.call('HGET', KEYS[3], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HINCRBY', KEYS[4], ARGV[1], -1)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

#: KEYS ready; ARGV limit ms -> ms until the soonest entry is due (0 when one is), ``limit`` when none is sooner
_DUE_IN = (
    _NOW
    + """
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #first == 0 then return tonumber(ARGV[1]) end
return math.max(0, math.min(tonumber(ARGV[1]), tonumber(first[2]) - now))
"""
)

#: KEYS leases, owners; ARGV owner, refs: end now the leases ``owner`` holds on refs (the next reap requeues them)
_LAPSE = """
for i = 2, #ARGV do
  if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[1] then redis.call('ZADD', KEYS[1], 'XX', 0, ARGV[i]) end
end
return 1
"""

#: KEYS ready, leases, owners, attempts, bell; ARGV max attempts, limit -> {requeued refs, exhausted refs}
_REAP = (
    _NOW
    + """
local requeued, exhausted = {}, {}
for _, ref in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))) do
  redis.call('ZREM', KEYS[2], ref)
  redis.call('HDEL', KEYS[3], ref)
  if tonumber(redis.call('HGET', KEYS[4], ref) or '0') >= tonumber(ARGV[1]) then
    redis.call('HDEL', KEYS[4], ref)
    exhausted[#exhausted + 1] = ref
  else
    redis.call('ZADD', KEYS[1], now, ref)
    redis.call('LPUSH', KEYS[5], 1)
    requeued[#requeued + 1] = ref
  end
end
redis.call('LTRIM', KEYS[5], 0, 63)
return {requeued, exhausted}
"""
)


@dataclass(frozen=True, slots=True)
class JobSettings:
    """How long jobs live, how leases work and how long anything may wait or run."""

    ttl: int = 86400
    #: a running job whose runner has not renewed it for this long is taken over by another runner
    lease: float = 15.0
    #: how often a runner renews its leases and looks for lapsed ones (well under ``lease``)
    heartbeat: float = 5.0
    #: a job whose runners died this many times fails instead of running again
    max_attempts: int = 3
    #: a job running longer is failed (and never re-run); below gunicorn's worker timeout
    run_bound: float = 100.0
    #: the longest any caller waits for a job
    wait_bound: float = 25.0
    #: runner threads per worker process
    threads: int = 4
    #: an idle runner looks at the queue at least this often (an enqueue wakes it sooner)
    poll: float = 1.0
    queue: str = "default"

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat * 2 <= self.lease:
            raise ValueError("the job heartbeat must be positive and at most half the lease")
        if min(self.ttl, self.max_attempts, self.run_bound, self.wait_bound, self.threads, self.poll) <= 0:
            raise ValueError("job settings must be positive")


@dataclass(frozen=True, slots=True)
class JobSpec:
    """The work of a job, as data: an operation a handler is registered for, and its JSON arguments."""

    operation: str
    target_kind: str
    target_ids: tuple[str, ...] = ()
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Write:
    """A Redis write a job's end carries in the round trip that records it: a plain ``command``, or a registered
    ``script`` called with ``keys`` and ``args``; ``then`` runs once it is made.

    PERF: a mutation publishes what it made, and completes its idempotency token, with no round trip of its own.
    """

    command: tuple[Any, ...] = ()
    script: Script | None = None
    keys: tuple[str, ...] = ()
    args: tuple[Any, ...] = ()
    then: Callable[[], None] | None = None


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What a handler returns: ``value`` goes back to an inline caller and is never stored; ``writes`` are made
    in the round trip that records the job's end."""

    affected_ids: tuple[str, ...] = ()
    result: Any = None
    message: str = ""
    value: Any = None
    writes: tuple[Write, ...] = ()


@dataclass(frozen=True, slots=True)
class Deferral:
    """What a handler returns to be run again in ``after`` seconds, with ``arguments`` (where its work stands) in
    place of the job's: meanwhile it holds no runner thread, and the attempt it was on is not counted."""

    after: float
    arguments: dict[str, Any]


#: Writes the end of the next job run inline in this context also carries, made from the job's value (an
#: idempotency token's completion, set by the caller of ``JobRunner.run_inline``).
FINISHING: ContextVar[Callable[[Any], tuple[Write, ...]] | None] = ContextVar("cloudgate_finishing", default=None)


def ref_of(job: Job) -> str:
    return f"{job.id}:{job.tenant}"


def parse_ref(ref: bytes | str) -> tuple[str, str]:
    """(tenant, job id) of a queue entry."""
    job_id, tenant = _s(ref).split(":", 1)
    return tenant, job_id


class JobStore:
    """Job records and the shared queue; one per worker process, over the worker's connection pool."""

    def __init__(self, client: RedisClient, settings: JobSettings, durability: Durability | None = None) -> None:
        self.redis = client
        self.settings = settings
        #: a job's record as it is made and as it ends waits for a replica (translator/durability.py)
        self.durability = durability or Durability(client)
        self._create = client.register_script(_CREATE)
        self._start = client.register_script(_START)
        self._finish = client.register_script(_FINISH)
        self._report = client.register_script(_REPORT)
        self._enqueue = client.register_script(_ENQUEUE)
        self._claim = client.register_script(_CLAIM)
        self._adopt = client.register_script(_ADOPT)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._lapse = client.register_script(_LAPSE)
        self._reap = client.register_script(_REAP)
        self._suspend = client.register_script(_SUSPEND)
        self._defer = client.register_script(_DEFER)
        self._due_in = client.register_script(_DUE_IN)
        queue = f"cg:jobq:{{{settings.queue}}}"
        self.ready, self.leases, self.owners = f"{queue}:ready", f"{queue}:leases", f"{queue}:owners"
        self.attempts, self.bell = f"{queue}:attempts", f"{queue}:bell"

    # -- records -----------------------------------------------------------------------------
    def create(
        self,
        tenant: str,
        spec: JobSpec,
        *,
        state: JobState = JobState.QUEUED,
        parent_id: str | None = None,
        group: bool = False,
        job_id: str | None = None,
        pipe: Any = None,
    ) -> Job:
        """Write a new job record (not queued: see ``submit``); a ``running`` one counts as attempt 1.

        ``pipe``: a redis-py transaction to write it in, or a list of ``Write`` for ``_pipelined``.
        """
        now = time.time()
        running = state == JobState.RUNNING
        job = Job(
            id=job_id or sortable_id(),
            tenant=tenant,
            operation=spec.operation,
            target_kind=spec.target_kind,
            target_ids=list(spec.target_ids),
            state=state,
            created=now,
            updated=now,
            started=now if running else None,
            parent_id=parent_id,
            arguments=dict(spec.arguments),
            attempts=1 if running else 0,
        )
        flat = _encode(job)
        if group:
            flat += ["group", "1", "open", "0", "total", "0"]
        key = _record_key(tenant, job.id)
        keys = [key, _index_key(tenant), _record_key(tenant, parent_id) if parent_id else key]
        args = [job.id, self.settings.ttl, *flat]
        if isinstance(pipe, list):
            pipe.append(Write(script=self._create, keys=tuple(keys), args=tuple(args)))
            return job
        if pipe is not None:  # a transaction (``submit_group``, which loads the script if Redis lacks it)
            pipe.execute_command("EVALSHA", self._create.sha, len(keys), *keys, *args)
            return job
        made = self._create(keys=keys, args=args)
        if not made:
            raise InvalidParameter(f"The parent job '{parent_id}' does not exist.", kind="job")
        return job

    def create_leased(self, tenant: str, spec: JobSpec, owner: str, parent_id: str | None = None) -> Job:
        """A running job (attempt 1) leased to ``owner``, for work done in the caller's thread.

        PERF: lease and record go in one round trip (two slots, so a plain pipeline, not a transaction); the
        lease is written first, so a record that never gets written leaves a lease that lapses on nothing. No
        ``WAIT``: nobody is told of the job before its end is recorded, which waits for everything before it.
        """
        job_id = sortable_id()
        calls: list[Write] = []
        self.adopt(f"{job_id}:{tenant}", owner, pipe=calls)
        job = self.create(tenant, spec, state=JobState.RUNNING, parent_id=parent_id, job_id=job_id, pipe=calls)
        if not self._pipelined(calls, durable=False)[-1]:
            raise InvalidParameter(f"The parent job '{parent_id}' does not exist.", kind="job")
        return job

    def write(self, writes: Iterable[Write]) -> None:
        """Make ``writes`` in one round trip (a job's writes, when its end is recorded already)."""
        writes = list(writes)
        self._pipelined(writes)
        for w in writes:
            if w.then is not None:
                w.then()

    def _pipelined(self, writes: Sequence[Write], durable: bool = True) -> list[Any]:
        """Script calls (and plain commands) in one round trip (a plain pipeline: they may be on several slots).

        PERF: EVALSHA directly; redis-py would ask SCRIPT EXISTS first, a second round trip per pipeline (and a
        cluster's pipeline has no ``evalsha`` method: the command itself is routed by its keys).
        A script Redis no longer has (restart, SCRIPT FLUSH, a new master) is loaded and only its call made again.
        ``durable``: the round trip ends with the replicas' ``WAIT`` (translator/durability.py).
        """
        commands = [
            w.command if w.script is None else ("EVALSHA", w.script.sha, len(w.keys), *w.keys, *w.args) for w in writes
        ]
        if durable:
            results = self.durability.execute(commands, raise_on_error=False)
        else:
            pipe = self.redis.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            results = pipe.execute(raise_on_error=False)
        reloaded = []
        for i, (result, w) in enumerate(zip(results, writes, strict=True)):
            if isinstance(result, redis.exceptions.NoScriptError) and w.script is not None:
                results[i] = w.script(keys=list(w.keys), args=list(w.args))
                reloaded.extend(w.keys[:1])
            elif isinstance(result, Exception):
                raise result
        if reloaded and durable:
            self.durability.settle(*reloaded)
        return results

    def submit(self, tenant: str, spec: JobSpec, parent_id: str | None = None) -> Job:
        """Record a job and queue it for whichever runner is free first.

        Record and queue entry go in one round trip (two slots: a plain pipeline), record first: a caller that
        dies after sending leaves both or neither, never a queued record no runner will ever claim. A queue
        entry whose record was refused (a parent that does not exist) is dropped by the runner that claims it.
        """
        calls: list[Write] = []
        job = self.create(tenant, spec, parent_id=parent_id, pipe=calls)
        calls.append(Write(script=self._enqueue, keys=(self.ready, self.bell), args=(ref_of(job),)))
        if not self._pipelined(calls)[0]:
            raise InvalidParameter(f"The parent job '{parent_id}' does not exist.", kind="job")
        return job

    def submit_group(self, tenant: str, spec: JobSpec, children: Iterable[JobSpec]) -> tuple[Job, list[Job]]:
        """A parent with no work of its own, and its children; it ends when they all have (failed if any did).

        Parent and children are written in one transaction, so no child can end before its siblings exist.
        """
        children = list(children)

        def write() -> tuple[Job, list[Job]]:
            pipe = self.redis.pipeline(transaction=True)
            parent = self.create(tenant, spec, group=True, pipe=pipe)
            kids = [self.create(tenant, child, parent_id=parent.id, pipe=pipe) for child in children]
            pipe.execute()
            return parent, kids

        try:
            parent, kids = write()
        except redis.exceptions.NoScriptError:  # first use, or Redis restarted: every call failed alike, none wrote
            self._create.sha = self.redis.script_load(_CREATE)
            parent, kids = write()
        parent.child_ids = [k.id for k in kids]
        self.enqueue(kids)
        self.durability.settle(_record_key(tenant, parent.id), self.ready)  # WAIT has no effect inside MULTI
        return parent, kids

    def get(self, tenant: str, job_id: str) -> Job | None:
        """The tenant's job, or None (unknown, expired, or another tenant's)."""
        read_cache.note_unversioned()
        if not is_gateway_id(job_id):
            return None
        return _decode(self.redis.hgetall(_record_key(tenant, job_id)))

    def list(self, tenant: str, cursor: str | None = None, limit: int = 100) -> Page[Job]:
        """The tenant's jobs, newest first, after ``cursor``; drops index entries of expired jobs it meets."""
        read_cache.note_unversioned()
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidParameter(f"The page size must be between 1 and {MAX_PAGE}.", reason="limit")
        if cursor is not None and not is_gateway_id(cursor):
            raise InvalidParameter("The job listing cursor is not valid.", reason="cursor")
        index = _index_key(tenant)
        items: list[Job] = []
        position = cursor
        for _ in range(8):  # bounded: a page full of expired entries ends early with a cursor to go on
            want = limit - len(items) + 1
            ids = [_s(i) for i in self.redis.zrevrangebylex(index, f"({position}" if position else "+", "-", 0, want)]
            pipe = self.redis.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(_record_key(tenant, job_id))
            dead = []
            for job_id, raw in zip(ids, pipe.execute(), strict=True):
                job = _decode(raw)
                if job is None:
                    dead.append(job_id)
                elif len(items) == limit:
                    self._forget(index, dead)
                    return Page(items, items[-1].id)
                else:
                    items.append(job)
            self._forget(index, dead)
            if len(ids) < want:
                return Page(items, None)
            position = ids[-1]
        return Page(items, position)

    def _forget(self, index: str, dead: list[str]) -> None:
        if dead:
            self.redis.zrem(index, *dead)

    def wait(self, tenant: str, job_id: str, timeout: float) -> Job | None:
        """The job once it has ended, or as it is when ``timeout`` (capped by ``wait_bound``) runs out."""
        deadline = time.monotonic() + max(0.0, min(timeout, self.settings.wait_bound))
        key = _record_key(tenant, job_id)
        pause = 0.01
        while True:
            state = self.redis.hget(key, "state")
            if state is None or _s(state) in DONE or time.monotonic() >= deadline:
                return self.get(tenant, job_id)
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, 0.2)

    def start(self, job: Job, attempt: int) -> str:
        """Mark a claimed job running for this attempt: ``ok``, or ``done``/``stale``/``gone`` (do not run it)."""
        now = time.time()
        outcome = _s(self._start(keys=self._pair(job), args=[attempt, repr(now), self.settings.ttl]))
        if outcome == "ok":
            job.state, job.attempts, job.updated = JobState.RUNNING, attempt, now
            job.started = job.started or now  # a resumed job keeps its first start
        return outcome

    def finish(
        self,
        job: Job,
        attempt: int | None,
        *,
        error: str | None = None,
        outcome: JobOutcome | None = None,
        release: str | None = None,
    ) -> bool:
        """Record the end of a job (failed when ``error``); False when this attempt no longer owns it.

        With ``release`` (the runner's owner name), its lease goes in the same round trip.
        """
        now = time.time()
        state = JobState.FAILED if error else JobState.SUCCESS
        outcome = outcome or JobOutcome()
        fields: list[Any] = ["message", error or outcome.message]
        if error:
            fields += ["error", error]
        if outcome.affected_ids:
            fields += ["affected_ids", dumps(list(outcome.affected_ids))]
            if not job.target_ids:  # a create's targets are what it made
                fields += ["target_ids", dumps(list(outcome.affected_ids))]
        if outcome.result is not None:
            with contextlib.suppress(InvalidParameter):  # a result that is not JSON stays with the caller
                fields += ["result", _json(outcome.result)]
        args = ["" if attempt is None else attempt, state.value, repr(now), self.settings.ttl, *fields]
        writes = outcome.writes
        calls = [*writes, Write(script=self._finish, keys=tuple(self._pair(job)), args=tuple(args))]
        if release is not None:
            calls.append(
                Write(script=self._release, keys=(self.leases, self.owners, self.attempts), args=(ref_of(job), release))
            )
        ended = self._pipelined(calls)[len(writes)]
        for write in writes:
            if write.then is not None:
                write.then()
        if _s(ended) != "ok":
            return False
        job.state, job.updated, job.finished, job.progress = state, now, now, 100
        job.error, job.message, job.arguments = error, error or outcome.message, {}
        if outcome.affected_ids:
            job.affected_ids = list(outcome.affected_ids)
            job.target_ids = job.target_ids or list(outcome.affected_ids)
        job.result = outcome.result
        return True

    def report(self, job: Job, progress: int, message: str = "") -> bool:
        """Progress of a running job, from its handler; False when this attempt no longer owns it."""
        progress = max(0, min(99, int(progress)))
        done = self._report(
            keys=[_record_key(job.tenant, job.id)], args=[job.attempts, progress, message, repr(time.time())]
        )
        return bool(done)

    def defer(self, job: Job, attempt: int, deferral: Deferral, owner: str) -> bool:
        """Put a running job back in the queue, due in ``deferral.after`` seconds, with its new arguments; False
        when this attempt no longer owns it. Record first, then the queue entry, in one round trip (which also
        wakes ``owner``'s dispatcher, so that it waits for the job's due time rather than a whole poll)."""
        arguments = _json(deferral.arguments)
        calls = [
            Write(
                script=self._suspend,
                keys=(_record_key(job.tenant, job.id),),
                args=(attempt, arguments, repr(time.time()), self.settings.ttl),
            ),
            Write(
                script=self._defer,
                keys=(self.ready, self.leases, self.owners, self.attempts),
                args=(ref_of(job), owner, max(0, int(deferral.after * 1000))),
            ),
            # the owner's dispatcher may be waiting a whole poll: it wakes to wait for this job's due time instead
            Write(command=("LPUSH", self._wake_key(owner), 1)),
            Write(command=("EXPIRE", self._wake_key(owner), 10)),
        ]
        suspended, requeued, *_ = self._pipelined(calls)
        if suspended and requeued:
            job.arguments, job.attempts = dict(deferral.arguments), attempt - 1
        return bool(suspended and requeued)

    def due_in(self, limit: float) -> float:
        """Seconds until the soonest queued job is due (0 when one is), at most ``limit``."""
        return float(self._due_in(keys=[self.ready], args=[int(limit * 1000)])) / 1000

    def _pair(self, job: Job) -> list[str]:
        key = _record_key(job.tenant, job.id)
        return [key, _record_key(job.tenant, job.parent_id) if job.parent_id else key]

    def queue_with(self, job: Job, target_ids: Iterable[str], arguments: dict[str, Any]) -> None:
        """Queue a job recorded (queued) earlier, now that its targets and work are known.

        Record first, then the queue entry, in one round trip (two slots: a plain pipeline).
        """
        job.target_ids, job.arguments = list(target_ids), dict(arguments)
        record = _record_key(job.tenant, job.id)
        results = self.durability.execute(
            [
                ("HSET", record, "target_ids", _json(job.target_ids), "arguments", _json(job.arguments)),
                ("EVALSHA", self._enqueue.sha, 2, self.ready, self.bell, ref_of(job)),
            ],
            raise_on_error=False,
        )
        if isinstance(results[1], redis.exceptions.NoScriptError):
            self.enqueue([job])
            self.durability.settle(self.ready)
        elif isinstance(results[1], Exception):
            raise results[1]
        if isinstance(results[0], Exception):
            raise results[0]

    # -- queue -------------------------------------------------------------------------------
    def enqueue(self, jobs: Iterable[Job]) -> None:
        refs = [ref_of(j) for j in jobs]
        if refs:
            self._enqueue(keys=[self.ready, self.bell], args=refs)

    def claim(self, owner: str, count: int) -> list[tuple[str, int]]:
        """Up to ``count`` queued refs, leased to ``owner``, with the attempt number each is on."""
        flat = self._claim(
            keys=[self.ready, self.leases, self.owners, self.attempts],
            args=[owner, int(self.settings.lease * 1000), count],
        )
        return [(_s(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    def adopt(self, ref: str, owner: str, pipe: list[Write] | None = None) -> None:
        """Lease a job that runs in the caller's thread (never queued) as attempt 1."""
        call = Write(
            script=self._adopt,
            keys=(self.leases, self.owners, self.attempts),
            args=(ref, owner, int(self.settings.lease * 1000)),
        )
        if pipe is None:
            self._pipelined([call], durable=False)
        else:
            pipe.append(call)

    def renew(self, owner: str, refs: list[str]) -> list[str]:
        """Extend ``owner``'s leases; the refs it no longer holds."""
        if not refs:
            return []
        lost = self._renew(keys=[self.leases, self.owners], args=[owner, int(self.settings.lease * 1000), *refs])
        return [_s(r) for r in lost]

    def release(self, ref: str, owner: str) -> bool:
        return bool(self._release(keys=[self.leases, self.owners, self.attempts], args=[ref, owner]))

    def hand_back(self, owner: str, refs: list[str]) -> tuple[list[str], list[str]]:
        """A stopping runner's jobs, queued again at once (as if its leases had lapsed): (requeued, exhausted)."""
        if refs:
            self._lapse(keys=[self.leases, self.owners], args=[owner, *refs])
        return self.reap()

    def reap(self, limit: int = 100) -> tuple[list[str], list[str]]:
        """Jobs whose lease lapsed: (requeued, exhausted: out of attempts, for the caller to fail)."""
        requeued, exhausted = self._reap(
            keys=[self.ready, self.leases, self.owners, self.attempts, self.bell],
            args=[self.settings.max_attempts, limit],
        )
        return [_s(r) for r in requeued], [_s(r) for r in exhausted]

    def wait_for_work(self, timeout: float, owner: str) -> None:
        """Block until an enqueue rings the bell, ``wake(owner)`` is called or ``timeout`` passes."""
        self.redis.brpop([self.bell, self._wake_key(owner)], timeout=timeout)

    def wake(self, owner: str) -> None:
        """Interrupt ``owner``'s wait at once (a stopping runner); the token expires if nobody waits."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self._wake_key(owner), 1)
        pipe.expire(self._wake_key(owner), 10)
        pipe.execute()

    def _wake_key(self, owner: str) -> str:
        return f"{self.ready.rsplit(':', 1)[0]}:wake:{owner}"


# -- encoding -----------------------------------------------------------------------------------------
_JSON_FIELDS = ("target_ids", "affected_ids", "arguments", "result")
_FLOAT_FIELDS = ("created", "updated", "started", "finished")
_INT_FIELDS = ("progress", "attempts")
_TEXT_FIELDS = ("id", "tenant", "operation", "target_kind", "state", "error", "message", "parent_id")


def _encode(job: Job) -> list[Any]:
    flat: list[Any] = []
    for name in _TEXT_FIELDS + _INT_FIELDS:
        value = getattr(job, name)
        if value is not None:
            flat += [name, str(value)]
    for name in _FLOAT_FIELDS:
        value = getattr(job, name)
        if value is not None:
            flat += [name, repr(value)]
    for name in _JSON_FIELDS:
        flat += [name, _json(getattr(job, name))]
    flat += ["child_ids", " ".join(job.child_ids)]
    return flat


def _decode(raw: dict[bytes, bytes]) -> Job | None:
    if not raw or b"state" not in raw:
        return None
    get = {k.decode(): v for k, v in raw.items()}
    values: dict[str, Any] = {name: get[name].decode() for name in _TEXT_FIELDS if name in get}
    values.update({name: int(get[name]) for name in _INT_FIELDS if name in get})
    values.update({name: float(get[name]) for name in _FLOAT_FIELDS if name in get})
    values.update({name: loads(get[name]) for name in _JSON_FIELDS if name in get})
    values["child_ids"] = get.get("child_ids", b"").decode().split()
    values["state"] = JobState(values["state"])
    values["error"] = values.get("error") or None
    return Job(**values)


def _json(value: Any) -> bytes:
    try:
        return dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        raise InvalidParameter("A job's arguments and result must be plain JSON.", reason="job") from None


def _record_key(tenant: str, job_id: str) -> str:
    return f"cg:job:{{{tenant}}}:{job_id}"


def _index_key(tenant: str) -> str:
    return f"cg:jobs:{{{tenant}}}"


def _s(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
