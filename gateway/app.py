"""Assembling the falcon app: the only place where frontends, translator and backends meet."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import falcon
import redis

from gateway.config import Config
from gateway.health import HealthResource, ReadyResource, served_by
from gateway.metrics import MetricsMiddleware, MetricsResource
from translator.backend import BackendServices
from translator.identity import Identity
from translator.keystone_auth import KeystoneTokens
from translator.store import Store
from translator.translator import Translator

log = logging.getLogger("cloudgate")


@dataclass(slots=True)
class Runtime:
    """Everything one worker holds: one Redis pool, the store, identity and translator over it."""

    config: Config
    redis: redis.Redis
    store: Store
    identity: Identity
    translator: Translator

    def close(self) -> None:
        self.translator.close()
        self.redis.close()


def connect_redis(url: str) -> redis.Redis:
    """A pooled client; every worker makes its own after fork."""
    return redis.Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30, max_connections=64
    )


def build_runtime(config: Config, redis_url: str | None = None) -> Runtime:
    url = redis_url or config.gateway.redis_url
    if not url:
        raise ValueError("build_runtime needs a Redis URL (serve starts an embedded one)")
    client = connect_redis(url)
    store = Store(client)
    keystone = None
    if config.keystone is not None:
        bound = {t.keystone_project_id: t.name for t in config.tenants.values() if t.keystone_project_id}
        keystone = KeystoneTokens(config.keystone, client, bound)
    identity = Identity(client, keystone)
    translator = Translator(config.translator, config.accounts, config.tenants, store, BackendServices(redis=client))
    return Runtime(config, client, store, identity, translator)


def seed_identity(runtime: Runtime) -> None:
    """Publish configured tenants and users to Redis (idempotent; config wins for its users)."""
    runtime.identity.load_tenants(runtime.config.tenants.values())
    for user in runtime.config.users:
        runtime.identity.add_user(user, replace=True)


class ServedByMiddleware:
    """Names the node and worker that answered: helps operators debug a load-balanced fleet."""

    def process_response(self, req: falcon.Request, resp: falcon.Response, resource: Any, ok: bool) -> None:
        resp.set_header("X-Served-By", served_by())


def make_app(config: Config, redis_url: str | None = None, runtime: Runtime | None = None) -> falcon.App:
    """The WSGI app for one worker."""
    runtime = runtime or build_runtime(config, redis_url)
    seed_identity(runtime)
    runtime.translator.start_jobs()  # here, in each worker: gunicorn forks before it calls make_app
    app = falcon.App(middleware=[ServedByMiddleware(), MetricsMiddleware()])
    app.req_options.auto_parse_form_urlencoded = False
    app.req_options.strip_url_path_trailing_slash = False
    app.resp_options.secure_cookies_by_default = False
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(runtime.redis, runtime.translator))
    app.add_route("/metrics", MetricsResource())
    _mount_frontends(app, runtime)
    return app


def _mount_frontends(app: falcon.App, runtime: Runtime) -> None:
    from frontends.ec2.api import EC2Frontend, EC2Options

    gw = runtime.config.gateway
    ec2 = EC2Frontend(
        runtime.translator,
        runtime.identity,
        EC2Options(
            max_body_bytes=gw.max_body_bytes,
            public_endpoint=gw.public_endpoint,
            trusted_proxies=gw.trusted_proxies,
        ),
    )
    app.add_route("/", ec2)
