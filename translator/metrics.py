"""Prometheus metrics the translator records; the gateway serves them at /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BACKEND_LATENCY = Histogram(
    "cloudgate_backend_call_seconds",
    "Latency of calls into backends, retries included.",
    ["driver", "operation"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BACKEND_ERRORS = Counter(
    "cloudgate_backend_errors_total", "Failed backend call attempts.", ["driver", "operation", "error"]
)
CACHE_LOOKUPS = Counter("cloudgate_cache_lookups_total", "Listing cache lookups.", ["kind", "result"])
#: kept answers built from backend reads, revalidated against the backend: "same" reused, "changed" built again
REVALIDATIONS = Counter(
    "cloudgate_answer_revalidations_total",
    "Kept answers checked against the backend reads they were built from.",
    ["outcome"],
)
#: per account and state, the number of workers whose breaker is in that state (``livesum`` across processes)
CIRCUIT_STATE = Gauge(
    "cloudgate_backend_circuit_state",
    "Workers whose circuit breaker for a backend account is in each state.",
    ["account", "state"],
    multiprocess_mode="livesum",
)
CIRCUIT_OPENED = Counter("cloudgate_backend_circuit_opened_total", "Circuit breakers that opened.", ["account"])
CIRCUIT_REJECTED = Counter(
    "cloudgate_backend_circuit_rejected_total", "Backend calls answered at once by an open breaker.", ["account"]
)
REDIS_WAIT_SHORT = Counter(
    "cloudgate_redis_wait_short_total",
    "Writes fewer Redis replicas acknowledged than WAIT asked for in time (a failover may lose them).",
)
