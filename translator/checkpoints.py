"""Checkpoints: what a backend noted on the job it is running, so a runner that takes the job over resumes.

A cloud with asynchronous commands (CloudStack's ``jobid``) answers a mutation with its own job, then is
polled. Were the gateway worker to die while polling, the core job's lease lapses and another runner, maybe
on another node, runs the operation again: re-issuing the command could act twice (attach a volume that is
already attaching). So the backend notes the cloud's job id on the core job's record (a ``cp:<name>`` field
of ``cg:job:{tenant}:<id>``, which expires with the record) and, on the next attempt, polls that job instead
of issuing the command again. Outside a job (the contract suite, ``cloudgate check``) checkpoints are no-ops.
"""

from __future__ import annotations

import contextvars

from translator.model import Job
from translator.redis_client import RedisClient

#: The job whose work this thread is doing: jobs run inline meanwhile become its children (nested jobs), and
#: a backend's checkpoints go on its record.
CURRENT_JOB: contextvars.ContextVar[Job | None] = contextvars.ContextVar("cg_current_job", default=None)

#: KEYS record; ARGV field, value: written only while the record exists (an expired job stays expired)
_PUT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class Checkpoints:
    """Named notes on the current job's record; each name is the backend's, stable across attempts."""

    def __init__(self, client: RedisClient) -> None:
        self.redis = client
        self._put = client.register_script(_PUT)

    def get(self, name: str) -> str | None:
        """What an earlier attempt of the current job noted under ``name`` (None on a first attempt)."""
        job = CURRENT_JOB.get()
        if job is None:
            return None
        raw = self.redis.hget(_record_key(job), f"cp:{name}")
        return raw.decode() if isinstance(raw, bytes) else raw

    def put(self, name: str, value: str) -> None:
        """Note ``value`` under ``name`` on the current job, if there is one."""
        job = CURRENT_JOB.get()
        if job is not None:
            self._put(keys=[_record_key(job)], args=[f"cp:{name}", value])


def _record_key(job: Job) -> str:
    return f"cg:job:{{{job.tenant}}}:{job.id}"  # translator/jobs.py's record key
