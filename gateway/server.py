"""Running the app under gunicorn: the master owns the embedded Redis, each worker builds its app.

A graceful stop (SIGTERM) goes: /readyz answers 503 at once; after ``drain_seconds`` gunicorn closes the
listener and lets each worker finish its requests (``graceful_timeout``); each worker then stops its job
runner, which hands the jobs it still runs back to the queue so another node takes them at once.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn import http as gunicorn_http
from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from gunicorn.http import message as gunicorn_message
from gunicorn.http import wsgi as gunicorn_wsgi
from gunicorn.workers.gthread import ThreadWorker

from gateway.app import Runtime, build_runtime, make_app
from gateway.config import WORKER_TIMEOUT, Config
from gateway.health import STOPPING

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
#: seconds a worker has to finish its requests once told to stop, before the master kills it
GRACEFUL_TIMEOUT = 10
#: of which a worker's running jobs may take this long to end before they are handed back to the queue
JOB_GRACE = 3.0


#: seconds a client has to send a request's head (line and headers); a real client sends it in one packet
HEAD_TIMEOUT = 10.0
#: bytes of a head gathered at most: a longer one (a long query) goes to a thread to be read as gunicorn does, so
#: a thousand connections cannot make a worker hold megabytes each
HEAD_BUFFER = 65_536
#: bytes read at once for a head (most are well under 1 KB)
_FIRST_READ = 16_384


class OneWriteResponse(gunicorn_wsgi.Response):  # type: ignore[misc]
    """gunicorn's HTTP/1 response, whose head and body go out in one system call when the body's length is known.

    PERF: gunicorn writes the head, then each part of the body: a kept answer in three parts took four ``sendall``
    and woke the client as many times. The parts are held (the app holds them anyway) until Content-Length is
    reached, then sent with the head in one ``sendmsg``, without copying them into one buffer.
    """

    #: bytes held at most before they are sent (a long streamed body still goes out as it comes)
    HOLD = 1 << 20

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: list[memoryview] = []
        self.held_bytes = 0

    def write(self, arg: bytes) -> None:
        length = self.response_length
        if self.chunked or self._omits_body or length is None or not isinstance(arg, bytes):
            self._flush()
            super().write(arg)
            return
        if self.sent + self.held_bytes + len(arg) > length:  # gunicorn cuts what would overrun Content-Length
            self._flush()
            super().write(arg)
            return
        if arg:
            self.held.append(memoryview(arg))
            self.held_bytes += len(arg)
        if self.sent + self.held_bytes >= length or self.held_bytes >= self.HOLD:
            self._flush()

    def close(self) -> None:
        self._flush()
        super().close()

    def _flush(self) -> None:
        if not self.held and self.headers_sent:
            return
        parts = self.held
        if not self.headers_sent:
            tosend = self.default_headers()
            tosend.extend(f"{k}: {v}\r\n" for k, v in self.headers)
            parts = [memoryview(("".join(tosend) + "\r\n").encode("latin-1")), *parts]
            self.headers_sent = True
        self.sent += self.held_bytes
        self.held, self.held_bytes = [], 0
        _send_all(self.sock, parts)


def _send_all(sock: socket.socket, parts: list[memoryview]) -> None:
    """``sendall`` of several buffers with ``sendmsg`` (which may send part of them)."""
    while parts:
        sent = sock.sendmsg(parts)
        while sent:
            if sent >= len(parts[0]):
                sent -= len(parts.pop(0))
            else:
                parts[0], sent = parts[0][sent:], 0


def _whole(head: bytes | bytearray, start: int) -> bool:
    """Whether ``head`` holds a request's whole head (or as much as we gather), its end looked for from ``start``;
    a bare-LF end counts too (the parser then refuses it at once)."""
    return len(head) >= HEAD_BUFFER or head.find(b"\r\n\r\n", start) >= 0 or head.find(b"\n\n", start) >= 0


def _recv(sock: socket.socket, size: int) -> bytes | None:
    """What the socket holds, without waiting: None when nothing yet, b"" when the client has gone."""
    try:
        return sock.recv(size, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class HeadFirstWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's gthread worker, except that a request's head is read by the worker's event loop, not a thread.

    Stock gthread hands a connection to a pool thread as soon as its first byte arrives, and the thread then reads
    the head with a blocking socket: a slow-loris client (a header byte a second, never done) holds that thread
    for as long as it likes, and ``threads`` such connections per worker stop the worker answering anyone. Here
    the head is gathered without blocking alongside accepts and kept-alive connections, and a connection goes
    to the pool only with its whole head in hand (then parsed from the buffer); one that takes longer than
    ``HEAD_TIMEOUT`` is closed. A head longer than ``HEAD_BUFFER`` and a slow body still hold a thread (a load
    balancer that buffers requests, as the nginx and HAProxy examples do, spares the workers both).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heading: deque[Any] = deque()
        #: TLS and HTTP/2 prior knowledge keep gunicorn's own path (their first bytes are not an HTTP/1 head)
        self.stock = bool(self.cfg.is_ssl) or self.cfg.http2_cleartext in ("prior-knowledge", "both")

    def init_process(self) -> None:
        if not self.cfg.is_ssl:  # an SSL socket has no sendmsg
            # gunicorn's wsgi.create() makes its HTTP/1 responses of this module attribute; HTTP/2 passes its own
            gunicorn_wsgi.Response = OneWriteResponse
        super().init_process()

    def enqueue_req(self, conn: Any) -> None:
        if self.stock or conn.is_http2:
            super().enqueue_req(conn)
            return
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        if _whole(held, 0):  # pipelined: the next head is here already
            self._to_pool(conn, held)
            return
        # PERF: a kept-alive connection comes here readable, its head usually whole: read it at once, no poll
        chunk = _recv(conn.sock, _FIRST_READ)
        if chunk == b"":
            self._drop(conn)
            return
        head = held + chunk if chunk else held
        if _whole(head, max(0, len(held) - 3)):
            self._to_pool(conn, head)
            return
        conn.head = bytearray(head)
        conn.head_deadline = time.monotonic() + HEAD_TIMEOUT
        self.heading.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_head_readable, conn))

    def _on_head_readable(self, conn: Any, _sock: Any) -> None:
        chunk = _recv(conn.sock, HEAD_BUFFER - len(conn.head))
        if chunk is None:
            return
        start = max(0, len(conn.head) - 3)  # PERF: a head trickled a byte at a time is not searched again each time
        conn.head += chunk
        if chunk and not _whole(conn.head, start):
            return
        self.poller.unregister(conn.sock)
        self.heading.remove(conn)
        if chunk:
            self._to_pool(conn, bytes(conn.head))
        else:
            self._drop(conn)
        conn.head = None

    def _to_pool(self, conn: Any, head: bytes) -> None:
        if conn.parser is None:
            conn.parser = gunicorn_http.get_parser(self.cfg, conn.sock, conn.client)
        conn.parser.unreader.unread(head)
        conn.data_ready = True  # no wait for a first byte in the thread: the head is here
        super().enqueue_req(conn)

    def _drop(self, conn: Any) -> None:
        """The client went away (or broke the connection) before its head was whole."""
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Also close connections whose head is overdue (all of them once the worker is stopping)."""
        super().murder_pending()
        now = time.monotonic()
        while self.heading and (self.heading[0].head_deadline <= now or not self.alive):
            conn = self.heading.popleft()
            with contextlib.suppress(OSError, KeyError, ValueError):
                self.poller.unregister(conn.sock)
            self.nr_conns -= 1
            conn.close()


def _child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live-gauge files so /metrics does not report ghosts."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _worker_exit(server: Any, worker: Any) -> None:
    """In a worker that has served its last request: stop its job runner (handing running jobs back).

    gunicorn also calls this hook in the master for a worker already gone; the master has no runtime.
    """
    runtime: Runtime | None = getattr(worker.app, "runtime", None)
    if runtime is not None:
        runtime.translator.runner.stop(grace=JOB_GRACE)
        runtime.close()  # stops the runner again: nothing is left to hand back


class GatewayArbiter(Arbiter):  # type: ignore[misc]
    """gunicorn's master, with a drain before a graceful stop: the first SIGTERM turns /readyz to 503 and keeps
    serving ``drain_seconds``; then (or at a second SIGTERM) the usual graceful stop. SIGINT/SIGQUIT stay fast."""

    drain_until: float | None = None

    def handle_term(self) -> None:
        STOPPING.set()
        drain = self.app.config.gateway.drain_seconds
        if drain <= 0 or self.drain_until is not None:
            raise StopIteration  # gunicorn's graceful stop
        self.log.info("stopping: /readyz answers 503; serving %.0fs more before closing", drain)
        self.drain_until = time.monotonic() + drain

    def murder_workers(self) -> None:
        """Called by the master's loop at least once a second: where a drain ends."""
        super().murder_workers()
        if self.drain_until is not None and time.monotonic() >= self.drain_until:
            raise StopIteration


class GatewayApplication(BaseApplication):  # type: ignore[misc]
    """gunicorn's embedding API: our CLI options become its settings; no gunicorn.conf is read."""

    def __init__(self, config: Config, redis_url: str, options: dict[str, Any]) -> None:
        self.config = config
        self.redis_url = redis_url
        self.options = options
        self.runtime: Runtime | None = None  # a worker's, once load() ran in it
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
        self.runtime = build_runtime(self.config, self.redis_url)
        return make_app(self.config, self.redis_url, self.runtime)

    def run(self) -> None:
        try:
            GatewayArbiter(self).run()
        except RuntimeError as exc:  # as BaseApplication.run: gunicorn's own start-up failures
            raise SystemExit(f"\nError: {exc}\n") from None


def gunicorn_options(config: Config, bind: str, workers: int) -> dict[str, Any]:
    gw = config.gateway
    return {
        "bind": [bind],
        "workers": workers,
        # gthread as gunicorn has it, but slow request heads cannot take its threads (HeadFirstWorker)
        "worker_class": "gateway.server.HeadFirstWorker" if gw.worker_class == "gthread" else gw.worker_class,
        "threads": gw.threads,
        "timeout": WORKER_TIMEOUT,
        "graceful_timeout": GRACEFUL_TIMEOUT,
        "keepalive": 5,
        "loglevel": gw.log_level,
        "accesslog": None,
        "errorlog": "-",
        "logger_class": "gateway.logs.MaskingGunicornLogger",
        "proc_name": "cloudgate",
        "child_exit": _child_exit,
        "worker_exit": _worker_exit,
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
