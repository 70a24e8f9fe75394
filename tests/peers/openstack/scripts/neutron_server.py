"""The real Neutron API on loopback, run by the neutron virtualenv's python (not by the test process).

Neutron ships its API as a WSGI application (``neutron.wsgi.api``) and expects uWSGI and separate RPC
and periodic workers around it. For the tests one process is enough: this script creates the schema,
builds the same application Neutron's own WSGI entry point builds, registers an Open vSwitch agent per
compute host the way an agent's ``report_state`` would, and serves HTTP (a thread per connection, one
request inside Neutron at a time: see ``one_at_a_time``) until told to stop: SIGTERM, SIGINT or end of
standard input (so a dead parent never leaves this process behind).

Why the schema comes from the models: Neutron's alembic migrations alter constraints, which SQLite
cannot do, so ``neutron-db-manage upgrade heads`` fails on it. Neutron's own unit-test fixtures create
the tables from the models at head instead (``metadata.create_all``), and so do we.

Usage: python neutron_server.py CONFIG.json — the JSON names ``config_file`` (neutron.conf), ``port``
(0: any), ``workdir`` (``ready.json`` with the bound port once serving), ``database`` (the SQLAlchemy
URL of the sqlite file) and ``compute_hosts`` with ``agent`` (the configuration each host's agent reports).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socketserver
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref import simple_server

# Importing neutron picks oslo.service's threading backend: it comes before anything else of neutron's.
import neutron  # noqa: F401  isort: skip
import sqlalchemy
from neutron import server
from neutron.db.migration.models import head
from neutron.server import api
from neutron_lib import constants
from neutron_lib import context as n_context
from neutron_lib.plugins import directory

LOG = logging.getLogger("neutron.peer")
WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def create_schema(url: str) -> None:
    """Every table of Neutron's models at head, in a fresh sqlite file."""
    engine = sqlalchemy.create_engine(url)
    try:
        head.get_metadata().create_all(engine)
    finally:
        engine.dispose()


def register_agents(hosts: list[str], configurations: dict[str, Any]) -> None:
    """Record an alive Open vSwitch agent on each host, as its first state report would.

    The openvswitch mechanism driver binds a port only to a host with an alive agent whose reported
    tunnel types and bridge mappings fit the network's segment; nothing else of the agent is needed
    for the API to hand out bindings (its ports stay DOWN: no agent ever reports them up).
    """
    plugin = directory.get_plugin()
    context = n_context.get_admin_context()
    for host in hosts:
        state = {
            "agent_type": constants.AGENT_TYPE_OVS,
            "binary": "neutron-openvswitch-agent",
            "host": host,
            "topic": constants.L2_AGENT_TOPIC,
            "configurations": configurations,
            "start_flag": True,
        }
        plugin.create_or_update_agent(context, state)
        LOG.info("registered an Open vSwitch agent on host %s", host)


def one_at_a_time(app: WSGIApp) -> WSGIApp:
    """The app behind a lock, its response read while holding it: one request reaches Neutron at a time.

    SQLite lets one connection write at a time, and a transaction that read before it writes fails at
    once ("database is locked") instead of waiting when another one writes; Neutron's transactions do
    just that. Serving requests one by one keeps concurrent clients from seeing those 500s.
    """
    lock = threading.Lock()

    def call(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        with lock:
            result = app(environ, start_response)
            try:
                return list(result)
            finally:
                if hasattr(result, "close"):
                    result.close()

    return call


class ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """wsgiref's server with a thread per connection: a slow client holds up no other."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # clients that connect while a request runs wait in the backlog


class QuietHandler(simple_server.WSGIRequestHandler):
    """Access lines go to the log file, not to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s %s", self.address_string(), format % args)


def serve(config: dict[str, Any]) -> None:
    """Build the app, register the agents, serve until a signal or the end of standard input."""
    create_schema(config["database"])
    # boot_server reads the command line of neutron-server; the WSGI entry point would do the same.
    sys.argv = [sys.argv[0], "--config-file", config["config_file"]]
    app = server.boot_server(api.api_server, prog="neutron-server")
    if app is None:
        raise RuntimeError("neutron did not build its API application")
    register_agents(config["compute_hosts"], config["agent"])

    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin() -> None:
        while os.read(0, 4096):
            pass
        stopping.set()

    threading.Thread(target=watch_stdin, name="watch-parent", daemon=True).start()
    httpd = simple_server.make_server(
        "127.0.0.1",
        int(config.get("port", 0)),
        one_at_a_time(app),
        server_class=ThreadingServer,
        handler_class=QuietHandler,
    )
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True).start()
    ready = Path(config["workdir"]) / "ready.json"
    ready.with_suffix(".tmp").write_text(json.dumps({"port": httpd.server_address[1], "pid": os.getpid()}))
    ready.with_suffix(".tmp").rename(ready)
    LOG.info("serving the Neutron API on 127.0.0.1:%s", httpd.server_address[1])
    while not stopping.wait(0.5):
        pass
    LOG.info("stopping")
    httpd.shutdown()
    httpd.server_close()


def main() -> None:
    """Serve, then leave at once: Neutron's own non-daemon threads would otherwise hold the exit up."""
    try:
        serve(json.loads(Path(sys.argv[1]).read_text()))
        code = 0
    except BaseException:
        traceback.print_exc()
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
