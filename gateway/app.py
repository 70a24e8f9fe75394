"""Assembling the falcon app: the only place where frontends, translator and backends meet."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import falcon
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gateway import redis_sentinel
from gateway.config import Config
from gateway.health import HealthResource, ReadyResource, served_by
from gateway.metrics import MetricsMiddleware, MetricsResource
from gateway.redis_cluster import connect_cluster, is_cluster_url
from translator import memory
from translator.backend import BackendServices
from translator.durability import Durability, DurabilitySettings
from translator.identity import Identity
from translator.keystone_auth import KeystoneTokens
from translator.ratelimit import RateLimiter
from translator.redis_client import RedisClient
from translator.store import Store
from translator.translator import Translator

log = logging.getLogger("cloudgate")

#: Failures of the gateway's own Redis (refused, timed out, loading, ...): every frontend answers them
#: with its protocol's 503, never a 500.
STORE_FAULTS: tuple[type[Exception], ...] = (redis.RedisError,)
#: seconds a 503 asks clients to wait (``Retry-After``): long enough for a Redis failover or restart. A 503 of
#: an open circuit breaker names its remaining cool-down instead (``BackendUnavailable.retry_after``).
RETRY_AFTER = 2


@dataclass(slots=True)
class Runtime:
    """Everything one worker holds: one Redis pool, the store, identity and translator over it."""

    config: Config
    redis: RedisClient
    store: Store
    identity: Identity
    translator: Translator
    #: request rates per access key and tenant; None when no rate is configured
    limiter: RateLimiter | None = None

    def close(self) -> None:
        self.translator.close()
        redis_sentinel.close(self.redis)


def connect_redis(
    url: str, connect_timeout: float = 1.0, socket_timeout: float = 2.0, wait: float | None = None
) -> RedisClient:
    """A pooled client with bounded waits; every worker makes its own after fork.

    The retry policy is spelled out (redis-py's defaults have changed between versions): a command is
    retried once, at once, on a connection error only (a pooled connection a restarted Redis dropped),
    never on a timeout, so a stalled Redis costs a request one ``socket_timeout`` and then a 503.
    A ``redis+sentinel://`` URL gets the same policy on its master (gateway/redis_sentinel.py), a
    ``redis-cluster://`` URL a cluster client that follows the slot map (gateway/redis_cluster.py), which reads
    that map as it is made: ``wait`` bounds how long it waits for a seed to answer (None: until one does).
    """
    if is_cluster_url(url):
        return connect_cluster(url, connect_timeout, socket_timeout, wait)
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        "retry_on_timeout": False,
        "health_check_interval": 30,
        "max_connections": 64,
    }
    if redis_sentinel.is_sentinel_url(url):
        return redis_sentinel.connect(url, **options)
    return redis.Redis.from_url(url, **options)


def build_runtime(config: Config, redis_url: str | None = None) -> Runtime:
    url = redis_url or config.gateway.redis_url
    if not url:
        raise ValueError("build_runtime needs a Redis URL (serve starts an embedded one)")
    gw = config.gateway
    client = connect_redis(url, gw.redis_connect_timeout, gw.redis_socket_timeout)
    store = Store(client, Durability(client, DurabilitySettings(gw.redis_wait_replicas, gw.redis_wait_timeout_ms)))
    keystone = None
    if config.keystone is not None:
        bound = {t.keystone_project_id: t.name for t in config.tenants.values() if t.keystone_project_id}
        keystone = KeystoneTokens(config.keystone, client, bound)
    identity = Identity(client, keystone)
    translator = Translator(config.translator, config.accounts, config.tenants, store, BackendServices(redis=client))
    limiter = RateLimiter(client, gw.rate_limits) if gw.rate_limits.on else None
    return Runtime(config, client, store, identity, translator, limiter)


def seed_identity(runtime: Runtime) -> None:
    """Publish configured tenants and users to Redis (idempotent; config wins for its users)."""
    runtime.identity.load_tenants(runtime.config.tenants.values())
    for user in runtime.config.users:
        runtime.identity.add_user(user, replace=True)


def publish_identity(runtime: Runtime) -> None:
    """Seed identity now or, if Redis is unreachable as this worker starts, as soon as it answers again.

    A worker must not fail to boot for a Redis outage: gunicorn then stops the whole gateway. Until the
    seed lands, callers get the 503s any Redis fault gets.
    """
    try:
        seed_identity(runtime)
        return
    except STORE_FAULTS as exc:
        log.warning(
            "Redis unreachable as a worker starts (%s): configured users will be published when it is back", exc
        )

    def retry() -> None:
        while True:
            time.sleep(1.0)
            try:
                seed_identity(runtime)
            except STORE_FAULTS:
                continue
            log.info("Redis is back: configured users published")
            return

    threading.Thread(target=retry, name="cg-seed", daemon=True).start()


def _store_unavailable(req: falcon.Request, resp: falcon.Response, exc: Exception, params: dict[str, Any]) -> None:
    """Routes whose frontend does not answer Redis faults itself: a plain 503 with ``Retry-After``."""
    log.warning("%s %s: Redis failed: %s", req.method, req.path, exc)
    resp.status = falcon.HTTP_503
    resp.set_header("Retry-After", str(RETRY_AFTER))
    resp.media = {"status": "unavailable", "message": "The service is temporarily unavailable; retry later."}


class ReleaseMemoryMiddleware:
    """Once a response is made, hand back to the system the heap a large listing read for it left free
    (translator/memory.py); an ordinary request pays one flag test."""

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        memory.release()


class DrainBodyMiddleware:
    """Reads and drops what a request left of its body once the app has answered (a body refused for its size or
    its credentials), up to ``limit`` bytes, before the answer goes out.

    gunicorn drains at most 64 KiB after answering and then closes a connection it has just answered as kept
    alive: a balancer that reuses it gets nothing (nginx: 502), and one still sending the body meets a broken
    pipe instead of the answer. ``limit`` is twice max_body_bytes, what the nginx example lets through."""

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        if not req.content_length:
            return
        stream, drained = req.bounded_stream, 0
        with contextlib.suppress(OSError):  # the client went away: nothing to keep alive
            while drained < self.limit and (chunk := stream.read(min(65_536, self.limit - drained))):
                drained += len(chunk)


class ServedByMiddleware:
    """Names the node and worker that answered: helps operators debug a load-balanced fleet."""

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        resp.set_header("X-Served-By", served_by())


def make_app(config: Config, redis_url: str | None = None, runtime: Runtime | None = None) -> falcon.App:
    """The WSGI app for one worker."""
    runtime = runtime or build_runtime(config, redis_url)
    publish_identity(runtime)
    runtime.translator.start_jobs()  # here, in each worker: gunicorn forks before it calls make_app
    middleware = [
        ServedByMiddleware(),
        MetricsMiddleware(_known_actions()),
        ReleaseMemoryMiddleware(),
        DrainBodyMiddleware(2 * config.gateway.max_body_bytes),
    ]
    app = falcon.App(middleware=middleware)
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = False
    app.resp_options.secure_cookies_by_default = False
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(runtime.redis, runtime.translator))
    app.add_route("/metrics", MetricsResource())
    for fault in STORE_FAULTS:
        app.add_error_handler(fault, _store_unavailable)
    _mount_frontends(app, runtime)
    return app


def _known_actions() -> frozenset[str]:
    """Every action name a metric may be labelled with; anything else is counted as ``other``."""
    from frontends.ec2.api import action_names

    return frozenset({"healthz", "readyz", "metrics", *action_names()})


def _mount_frontends(app: falcon.App, runtime: Runtime) -> None:
    from backends.ec2.settings import use_session
    from frontends.ec2 import service
    from frontends.ec2.api import EC2Frontend, EC2Options

    use_session(service.session())  # one botocore EC2 model per worker for the frontend and the EC2 backend

    gw = runtime.config.gateway
    ec2 = EC2Frontend(
        runtime.translator,
        runtime.identity,
        EC2Options(
            max_body_bytes=gw.max_body_bytes,
            public_endpoint=gw.public_endpoint,
            trusted_proxies=gw.trusted_proxies,
            store_faults=STORE_FAULTS,
            retry_after=RETRY_AFTER,
            limiter=runtime.limiter,
        ),
    )
    app.add_route("/", ec2)
    from frontends.cimi.api import PREFIX, CimiFrontend, CimiOptions

    cimi = CimiFrontend(
        runtime.translator,
        runtime.identity,
        CimiOptions(
            max_body_bytes=gw.max_body_bytes,
            public_endpoint=gw.public_endpoint,
            trusted_proxies=gw.trusted_proxies,
            store_faults=STORE_FAULTS,
            retry_after=RETRY_AFTER,
            limiter=runtime.limiter,
        ),
    )
    app.add_sink(cimi, PREFIX + r"(?:/|$)")
    from frontends.occi.api import WELL_KNOWN, OcciFrontend, OcciOptions

    occi = OcciFrontend(
        runtime.translator,
        runtime.identity,
        OcciOptions(
            max_body_bytes=gw.max_body_bytes,
            public_endpoint=gw.public_endpoint,
            trusted_proxies=gw.trusted_proxies,
            store_faults=STORE_FAULTS,
            retry_after=RETRY_AFTER,
            limiter=runtime.limiter,
            keystone_url=runtime.config.keystone.auth_url if runtime.config.keystone else "",
        ),
    )
    app.add_sink(occi, r"/occi(?:/|$)")
    app.add_sink(occi, WELL_KNOWN.rstrip("/"))
