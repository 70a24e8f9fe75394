"""Jobs: one record per mutating operation, kept in Redis (CIMI exposes them as Job resources)."""

from __future__ import annotations

import time
import uuid

from translator.codec import dumps, from_dict, loads
from translator.model import Job, JobState, Principal
from translator.store import Store


class JobLog:
    """Writes a job when a mutation starts and again when it ends."""

    def __init__(self, store: Store, ttl: int) -> None:
        self.store = store
        self.ttl = ttl

    def start(self, principal: Principal, operation: str, target_kind: str, target_ids: list[str]) -> Job:
        now = time.time()
        job = Job(
            id=str(uuid.uuid4()),
            tenant=principal.tenant,
            operation=operation,
            target_kind=target_kind,
            target_ids=list(target_ids),
            state=JobState.RUNNING,
            created=now,
            updated=now,
        )
        self._save(job)
        return job

    def finish(self, job: Job, target_ids: list[str] | None = None, error: str | None = None) -> Job:
        job.updated = time.time()
        job.state = JobState.FAILED if error else JobState.SUCCESS
        job.progress = 100
        job.error = error
        if target_ids is not None:
            job.target_ids = list(target_ids)
        self._save(job)
        return job

    def _save(self, job: Job) -> None:
        self.store.put_job(job.tenant, job.id, job.created, dumps(job), self.ttl)

    def get(self, tenant: str, job_id: str) -> Job | None:
        raw = self.store.get_job(job_id)
        job = from_dict(Job, loads(raw)) if raw else None
        return job if job and job.tenant == tenant else None

    def list(self, tenant: str) -> list[Job]:
        ids = self.store.job_ids(tenant)
        return [from_dict(Job, loads(raw)) for raw in self.store.get_jobs(ids) if raw]
