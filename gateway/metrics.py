"""Request metrics and the /metrics endpoint (Prometheus multiprocess mode under gunicorn)."""

from __future__ import annotations

import os
import time
from typing import Any

import falcon
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("cloudgate_requests_total", "HTTP requests served.", ["frontend", "action", "status"])
LATENCY = Histogram(
    "cloudgate_request_seconds",
    "Request latency.",
    ["frontend"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


#: the action label of a request whose action is not one the gateway knows: labels stay a bounded set
OTHER = "other"


class MetricsMiddleware:
    """Counts every request by frontend, action (set by the frontend) and status.

    Only names in ``known_actions`` become labels (a client choosing arbitrary ``Action`` values must not
    grow the metrics without bound); any other is counted as ``other``.
    """

    def __init__(self, known_actions: frozenset[str]) -> None:
        self.known_actions = known_actions | {"-"}
        # PERF: a labelled child once per label set (``labels`` costs more than the count itself)
        self._counts: dict[tuple[str, str, str], Any] = {}
        self._latencies: dict[str, Any] = {}

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, req_succeeded: bool) -> None:
        frontend = req.context.get("frontend", "gateway")
        action = req.context.get("action", "-")
        if action not in self.known_actions:
            action = OTHER
        status = resp.status[:3] if isinstance(resp.status, str) else str(resp.status)
        labels = (frontend, action, status)
        count = self._counts.get(labels)
        if count is None:
            count = self._counts.setdefault(labels, REQUESTS.labels(*labels))
        count.inc()
        started = req.context.get("started")
        if started is not None:
            latency = self._latencies.get(frontend)
            if latency is None:
                latency = self._latencies.setdefault(frontend, LATENCY.labels(frontend))
            latency.observe(time.perf_counter() - started)


class MetricsResource:
    """GET /metrics: all workers' metrics when PROMETHEUS_MULTIPROC_DIR is set, else this process's."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.frontend = "gateway"
        req.context.action = "metrics"
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            resp.data = generate_latest(registry)
        else:
            resp.data = generate_latest()
        resp.content_type = CONTENT_TYPE_LATEST
