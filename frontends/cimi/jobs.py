"""Jobs (DSP0263 Job): every operation that does not finish at once answers ``202 Accepted`` with one.

A job is the translator's job record in CIMI's words; any worker on any node reads it from Redis, so a
client can poll it wherever the balancer sends it.
"""

from __future__ import annotations

from typing import Any

from frontends.cimi import states
from frontends.cimi.context import Ctx, Reply, iso
from frontends.cimi.controller import Controller, collection, windowed
from frontends.cimi.query import CollectionQuery
from translator.model import Job, JobState

#: canonical kind -> the CIMI collection its resources are in
COLLECTIONS: dict[str, str] = {
    "machine": "machines",
    "image": "machineImages",
    "flavor": "machineConfigs",
    "volume": "volumes",
    "snapshot": "volumeImages",
    "network": "networks",
    "address": "addresses",
    "key_pair": "credentials",
    "system": "systems",
}
#: the word a translator operation's job is shown with (``follow:<action>`` jobs carry theirs)
OPERATION_ACTIONS: dict[str, str] = {
    "act_on_machine": "edit",
    "update_machine": "edit",
    "update_volume": "edit",
    "attach_volume": "edit",
    "detach_volume": "edit",
    "attach_interface": "edit",
    "detach_interface": "edit",
    "associate_address": "edit",
    "disassociate_address": "edit",
    "set_tags": "edit",
    "remove_tags": "edit",
}
#: the most jobs one collection read returns
MAX_JOBS = 1000


def action_of(job: Job) -> str:
    if ":" in job.operation:
        return job.operation.split(":", 1)[1]
    if job.operation.startswith(("create_", "import_", "allocate_")):
        return "add"
    if job.operation.startswith(("delete_", "release_")):
        return "delete"
    return OPERATION_ACTIONS.get(job.operation, "edit")


def ref(ctx: Ctx, kind: str, gid: str) -> dict[str, str]:
    return {"href": ctx.href(COLLECTIONS.get(kind, kind), gid)}


def job_doc(ctx: Ctx, job: Job) -> dict[str, Any]:
    href = ctx.href("jobs", job.id)
    doc: dict[str, Any] = {"resourceURI": ctx.uri("Job"), "id": href, "name": job.operation.replace(":", " ")}
    doc["created"] = iso(job.created)
    doc["updated"] = iso(job.updated)
    doc["properties"] = {}
    doc["state"] = states.JOB[job.state]
    doc["action"] = ctx.action(action_of(job))
    if job.target_ids:
        doc["targetResource"] = ref(ctx, job.target_kind, job.target_ids[0])
    affected = job.affected_ids or []
    if affected:
        doc["affectedResources"] = [ref(ctx, job.target_kind, gid) for gid in affected]
    if job.parent_id:
        doc["parentJob"] = {"href": ctx.href("jobs", job.parent_id)}
    if job.child_ids:
        doc["nestedJobs"] = [{"href": ctx.href("jobs", c)} for c in job.child_ids]
    doc["timeOfStatusChange"] = iso(job.finished or job.started or job.created)
    if job.message or job.error:
        doc["statusMessage"] = job.error or job.message
    if job.done:
        doc["returnCode"] = 0 if job.state is JobState.SUCCESS else 1
    doc["progress"] = job.progress
    doc["isCancellable"] = False
    return doc


def accepted(
    ctx: Ctx, job: Job, doc: dict[str, Any] | None = None, type_name: str = "", location: str | None = None
) -> Reply:
    """``202 Accepted``: ``CIMI-Job-URI`` names the job, ``Location`` the target; the body is ``doc`` (the new
    resource, for a create) or else the job itself."""
    headers = {"CIMI-Job-URI": ctx.href("jobs", job.id)}
    if location:
        headers["Location"] = location
    if doc is None:
        return Reply(202, job_doc(ctx, job), "Job", headers)
    return Reply(202, doc, type_name, headers)


class Jobs(Controller):
    name = "jobs"
    type_name = "Job"

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        docs: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(docs) < MAX_JOBS:
            page = ctx.translator.list_jobs(ctx.principal, cursor, min(500, MAX_JOBS - len(docs)))
            docs += [job_doc(ctx, j) for j in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        return collection(ctx, self, windowed(docs, query), query)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return job_doc(ctx, ctx.translator.get_job(ctx.principal, rid))
