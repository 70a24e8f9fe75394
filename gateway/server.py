"""Running the app under gunicorn: the master owns the embedded Redis, each worker builds its app."""

from __future__ import annotations

import logging
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.http import message as gunicorn_message
from gunicorn.http import wsgi as gunicorn_wsgi

from gateway.app import make_app
from gateway.config import WORKER_TIMEOUT, Config

log = logging.getLogger("cloudgate")

#: the request line may be this many times max_body_bytes: a query up to max_body_bytes is served, one
#: somewhat over it still reaches the frontend and gets EC2's own error; only past this, gunicorn's 414
REQUEST_LINE_FACTOR = 2
#: headers a request may carry, and bytes each (SigV4's Authorization header is ~300)
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
#: The Server header of every answer. gunicorn writes its own and drops an application's; OCCI's HTTP
#: protocol asks for one naming OCCI/1.2, so ours replaces gunicorn's name.
SERVER_HEADER = "cloudgate OCCI/1.2"


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
        # gunicorn caps limit_request_line at MAX_REQUEST_LINE (8190) whatever is configured, which would cut
        # EC2's long GET queries (UserData, presigned URLs) far below max_body_bytes; raise its cap to our
        # bound, set before the workers fork. A line past it gets gunicorn's 414, one just past
        # max_body_bytes the frontend's own error.
        gunicorn_message.MAX_REQUEST_LINE = max(gunicorn_message.MAX_REQUEST_LINE, self.cfg.limit_request_line)
        gunicorn_wsgi.SERVER = SERVER_HEADER

    def load(self) -> Any:
        return make_app(self.config, self.redis_url)


def gunicorn_options(config: Config, bind: str, workers: int) -> dict[str, Any]:
    gw = config.gateway
    return {
        "bind": [bind],
        "workers": workers,
        "worker_class": gw.worker_class,
        "threads": gw.threads,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": 10,
        "keepalive": 5,
        "loglevel": gw.log_level,
        "accesslog": None,
        "errorlog": "-",
        "logger_class": "gateway.logs.MaskingGunicornLogger",
        "proc_name": "cloudgate",
        "child_exit": _child_exit,
        "preload_app": False,
        # Long GET queries (libcloud sends UserData in one) up to max_body_bytes reach the frontends, which
        # refuse what exceeds it in their own error format; gunicorn answers 414 only far past it.
        "limit_request_line": gw.max_body_bytes * REQUEST_LINE_FACTOR,
        "limit_request_fields": MAX_HEADER_FIELDS,
        "limit_request_field_size": MAX_HEADER_FIELD_BYTES,
        "control_socket_disable": True,  # several gateways per machine must not share ~/.gunicorn
        "forwarded_allow_ips": ",".join(gw.trusted_proxies) or "127.0.0.1",
    }


def run(config: Config, redis_url: str, bind: str, workers: int) -> None:
    """Serve until gunicorn is told to stop (SIGTERM/SIGINT); returns via SystemExit."""
    GatewayApplication(config, redis_url, gunicorn_options(config, bind, workers)).run()
