"""Running the app under gunicorn: the master owns the embedded Redis, each worker builds its app."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.app import make_app
from gateway.config import Config

log = logging.getLogger("cloudgate")


def _child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live-gauge files so /metrics does not report ghosts."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


class GatewayApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's embedding API: our CLI options become its settings; no gunicorn.conf is read."""

    def __init__(self, config: Config, redis_url: str, options: dict[str, Any]) -> None:
        self.config = config
        self.redis_url = redis_url
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return make_app(self.config, self.redis_url)


def gunicorn_options(config: Config, bind: str, workers: int) -> dict[str, Any]:
    gw = config.gateway
    return {
        "bind": [bind],
        "workers": workers,
        "worker_class": gw.worker_class,
        "threads": gw.threads,
        "timeout": 120,
        "graceful_timeout": 10,
        "keepalive": 5,
        "loglevel": gw.log_level,
        "accesslog": None,
        "errorlog": "-",
        "proc_name": "cloudgate",
        "child_exit": _child_exit,
        "preload_app": False,
        # 0 = no limit: long GET queries (libcloud sends UserData in one) reach the frontends, which
        # refuse what exceeds max_body_bytes in their own error format instead of gunicorn's HTML 414.
        "limit_request_line": 0,
        "limit_request_fields": 100,
        "control_socket_disable": True,  # several gateways per machine must not share ~/.gunicorn
        "forwarded_allow_ips": ",".join(gw.trusted_proxies) or "127.0.0.1",
    }


def run(config: Config, redis_url: str, bind: str, workers: int) -> None:
    """Serve until gunicorn is told to stop (SIGTERM/SIGINT); returns via SystemExit."""
    GatewayApplication(config, redis_url, gunicorn_options(config, bind, workers)).run()
