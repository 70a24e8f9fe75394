"""Signed CloudStack calls through libcloud's CloudStack connection, with paging, jobs and fault mapping.

libcloud's driver methods block on every asynchronous job and raise a bare ``Exception`` (its error code lost)
when one fails, and its ``Node`` keeps only a lossy state. So resources are read, and commands sent, as
CloudStack's own JSON through the driver's connection (``_sync_request``: libcloud signs, we name the
command), and jobs are followed here with ``queryAsyncJobResult``, keeping the failed job's error code.

An asynchronous command sent with a ``target`` is noted on the core job being run (``translator.checkpoints``,
as ``<command>:<target>``) the moment CloudStack answers it: were this worker to die while the job runs, the
runner that takes the job over finds the note and follows the same CloudStack job instead of sending the
command again (attaching a volume twice, deploying a second VM).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from libcloud.compute.providers import get_driver
from libcloud.compute.types import Provider

from backends.cloudstack import faults
from backends.cloudstack.options import Options
from translator.checkpoints import Checkpoints
from translator.errors import NotFound, OutcomeUnknown

PAGE_SIZE = 500  # CloudStack's default.page.size
JOB_PENDING, JOB_SUCCESS, JOB_FAILURE = 0, 1, 2


class Cloud:
    """One account's endpoint: a libcloud driver per thread (its connection is not thread-safe)."""

    def __init__(self, opts: Options, checkpoints: Checkpoints | None = None) -> None:
        self.opts = opts
        self.checkpoints = checkpoints
        parts = urlsplit(opts.url)
        self._where = {
            "host": parts.hostname,
            "port": parts.port or (443 if parts.scheme == "https" else 80),
            "path": parts.path or "/client/api",
            "secure": parts.scheme == "https",
        }
        self._local = threading.local()
        self._project_id: str | None = None
        self._lock = threading.Lock()

    @property
    def driver(self) -> Any:
        driver = getattr(self._local, "driver", None)
        if driver is None:
            cls = get_driver(Provider.CLOUDSTACK)
            driver = cls(self.opts.api_key, self.opts.secret_key, **self._where)
            # libcloud's CloudStack driver drops a ``timeout`` argument (its __init__ passes only the endpoint on)
            # and connects at once with its job-polling default of 600 s: reconnect with ours, bounding each call.
            driver.connection.timeout = self.opts.timeout
            driver.connection.connect()
            driver.connection.poll_interval = self.opts.poll_interval
            self._local.driver = driver
        return driver

    def close(self) -> None:
        driver = getattr(self._local, "driver", None)
        if driver is not None and driver.connection.connection is not None:
            driver.connection.connection.session.close()

    # -- calls -------------------------------------------------------------------------------------
    def raw(self, command: str, params: Mapping[str, Any] | None = None, *, kind: str | None, what: str) -> Any:
        """One signed call, its ``<command>response`` body; failures as canonical errors."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            return self.driver.connection._sync_request(command=command, params=clean, method="GET")
        except Exception as exc:  # every failure is mapped, in one table (faults.translate)
            raise faults.translate(exc, kind, what) from exc

    def call(self, command: str, params: Mapping[str, Any] | None = None, *, kind: str | None, what: str) -> Any:
        """A call on the account's resources: in its project when the account is a project."""
        return self.raw(command, {**self.scope(), **(params or {})}, kind=kind, what=what)

    def scope(self) -> dict[str, str]:
        """``projectid`` of the account's project (found by name once), or nothing for the account itself."""
        if not self.opts.project:
            return {}
        if self._project_id is None:
            found = self.raw("listProjects", {"name": self.opts.project, "listall": "true"}, kind=None, what="project")
            match = [p for p in found.get("project", []) if p.get("name") == self.opts.project]
            if not match:
                raise NotFound(f"The CloudStack project '{self.opts.project}' does not exist.", kind="project")
            with self._lock:
                self._project_id = match[0]["id"]
        return {"projectid": self._project_id}

    def listing(
        self,
        command: str,
        key: str,
        params: Mapping[str, Any] | None = None,
        *,
        kind: str | None,
        what: str,
        owned: bool = True,
    ) -> list[dict[str, Any]]:
        """Every item of a list command, page by page (``count`` says how many there are)."""
        send = self.call if owned else self.raw
        items: list[dict[str, Any]] = []
        for page in range(1, 10_000):
            body = send(command, {**(params or {}), "page": page, "pagesize": PAGE_SIZE}, kind=kind, what=what)
            got = body.get(key, []) if isinstance(body, dict) else []
            items.extend(got)
            if not got or len(items) >= int(body.get("count", 0)) or len(got) < PAGE_SIZE:
                break
        return items

    def noted(self, command: str, target: str) -> dict[str, Any] | None:
        """The answer (``jobid``, ``id``) an earlier attempt of the running core job got for ``command`` on
        ``target``, or None (a first attempt, outside a job, or a noted job that failed)."""
        if self.checkpoints is None:
            return None
        raw = self.checkpoints.get(f"{command}:{target}")
        return json.loads(raw) if raw else None

    def note(self, command: str, target: str, value: Mapping[str, Any]) -> None:
        """Note ``value`` under ``command`` on ``target`` for a later attempt of the running core job (``noted``);
        nothing outside a job."""
        if self.checkpoints is not None:
            self.checkpoints.put(f"{command}:{target}", json.dumps(value))

    def start(
        self, command: str, params: Mapping[str, Any], *, kind: str | None, what: str, target: str | None = None
    ) -> dict[str, Any]:
        """Send an asynchronous command; its answer (``jobid``, and ``id`` for a create), without waiting.

        With a ``target``, an answer an earlier attempt of the core job noted is returned instead of sending
        the command again, and a new answer is noted at once.
        """
        if target is not None:
            earlier = self.noted(command, target)
            if earlier is not None:
                return earlier
        answer = self.call(command, params, kind=kind, what=what)
        if target is not None:
            self.note(command, target, {k: answer[k] for k in ("jobid", "id") if k in answer})
        return answer

    def wait(
        self,
        jobid: str,
        *,
        kind: str | None,
        what: str,
        timeout: float | None = None,
        noted: str | None = None,
    ) -> dict[str, Any]:
        """Follow a job with queryAsyncJobResult until it ends; its ``jobresult``, or its failure mapped.

        ``noted`` names the checkpoint (``<command>:<target>``) the job is kept under: a failed job is
        forgotten there, so that the operation, retried, sends its command anew.
        """
        deadline = time.monotonic() + (timeout if timeout is not None else self.opts.job_timeout)
        while True:
            job = self.raw("queryAsyncJobResult", {"jobid": jobid}, kind=kind, what=what)
            status = int(job.get("jobstatus", JOB_PENDING))
            if status == JOB_SUCCESS:
                return job.get("jobresult") or {}
            if status == JOB_FAILURE:
                if noted is not None and self.checkpoints is not None:
                    self.checkpoints.put(noted, "")
                result = job.get("jobresult") or {}
                code = int(result.get("errorcode") or job.get("jobresultcode") or 530)
                raise faults.from_code(code, f"CloudStack ({what}): {result.get('errortext', 'job failed')}", kind)
            if time.monotonic() > deadline:
                raise OutcomeUnknown(f"CloudStack job {jobid} ({what}) did not end in time.", kind=kind)
            time.sleep(self.opts.poll_interval)

    def run(
        self, command: str, params: Mapping[str, Any], *, kind: str | None, what: str, target: str | None = None
    ) -> dict[str, Any]:
        """Send an asynchronous command (or find it noted, as ``start``) and wait for its job; the job's result."""
        answer = self.start(command, params, kind=kind, what=what, target=target)
        noted = f"{command}:{target}" if target is not None else None
        return self.wait(answer["jobid"], kind=kind, what=what, noted=noted)

    def run_answer(
        self, command: str, params: Mapping[str, Any], *, kind: str | None, what: str, target: str | None = None
    ) -> dict[str, Any]:
        """As ``run``, but the command's own answer (``id`` of what a create made) once its job succeeded."""
        answer = self.start(command, params, kind=kind, what=what, target=target)
        noted = f"{command}:{target}" if target is not None else None
        self.wait(answer["jobid"], kind=kind, what=what, noted=noted)
        return answer

    def resume(self, command: str, target: str, *, kind: str | None, what: str) -> dict[str, Any] | None:
        """Follow the job an earlier attempt noted for ``command`` on ``target`` to its end (its answer), or None
        when there is none: for operations that check state before sending, which the first attempt changed."""
        earlier = self.noted(command, target)
        if earlier is None:
            return None
        self.wait(earlier["jobid"], kind=kind, what=what, noted=f"{command}:{target}")
        return earlier
