"""A stateful OpenNebula (oned) XML-RPC simulator on loopback, written from OpenNebula's XML-RPC reference and
``share/doc/xsd`` schemas; proven faithful by ``tests/peers/test_opennebula_peer.py`` with pyone.

    from peers.opennebula import OpenNebulaSimulator

    sim = OpenNebulaSimulator()                    # a server thread on a free loopback port; sim.url ends in /RPC2
    sim.add_user("alice", "secret")                # group "users"; session "alice:secret"
    net = sim.add_vnet("private", "10.0.0.10", 16)  # shared with every user (OTHER_U), owned by oneadmin
    img = sim.add_image("debian", size_mb=2048)    # a READY OS image, shared
    tmpl = sim.add_template("small", 'CPU="1"\\nMEMORY="512"\\nDISK=[IMAGE_ID="0"]')  # shared
    sim.faults.set(fail=0.2, seed=1)               # 20 % of calls answer INTERNAL (0x2000)
    sim.stop()

Answers are ``[success, value, errcode]``, failures ``[False, message, errcode, object id, replication index]``
as oned's ``RequestXRPC::make_response``. VM states advance on their own after ``Timings`` (short defaults).
"""

from __future__ import annotations

import random
import socketserver
import threading
import time
import xmlrpc.client
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

from . import model as m
from . import template as tpl
from .cloud import INTERNAL, RPC_API, Cloud, OneError
from .model import Timings
from .resources import METHODS

__all__ = ["Faults", "OpenNebulaSimulator", "Timings"]


class I8(int):
    """An ``<i8>`` on the wire (oned answers its replication index as one)."""


def _dump_i8(marshaller: xmlrpc.client.Marshaller, value: int, write: Any) -> None:
    write(f"<value><i8>{int(value)}</i8></value>\n")


xmlrpc.client.Marshaller.dispatch.setdefault(I8, _dump_i8)


@dataclass
class Faults:
    """Fractions of calls to spoil: ``drop`` runs the call then closes the connection without an answer (the
    client cannot tell whether it happened), ``fail`` answers INTERNAL without running it, ``stall`` sleeps
    ``stall_seconds`` first. ``methods`` limits them to those names (all calls when empty)."""

    drop: float = 0.0
    fail: float = 0.0
    stall: float = 0.0
    stall_seconds: float = 2.0
    methods: frozenset[str] = frozenset()
    rng: random.Random = field(default_factory=random.Random)
    counts: dict[str, int] = field(default_factory=lambda: {"drop": 0, "fail": 0, "stall": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, drop: float = 0.0, fail: float = 0.0, stall: float = 0.0, stall_seconds: float = 2.0,
            methods: tuple[str, ...] = (), seed: int | None = None) -> None:  # fmt: skip
        with self.lock:
            self.drop, self.fail, self.stall, self.stall_seconds = drop, fail, stall, stall_seconds
            self.methods = frozenset(methods)
            if seed is not None:
                self.rng.seed(seed)

    def pick(self, method: str) -> str:
        """Which fault (``""`` for none) this call gets."""
        with self.lock:
            if self.methods and method not in self.methods:
                return ""
            for kind in ("drop", "fail", "stall"):
                if getattr(self, kind) and self.rng.random() < getattr(self, kind):
                    self.counts[kind] += 1
                    return kind
        return ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/RPC2", ""):
            self.send_error(404)
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            params, method = xmlrpc.client.loads(self.rfile.read(length))
        except Exception:
            self._answer(xmlrpc.client.dumps(xmlrpc.client.Fault(-32700, "parse error"), methodresponse=True))
            return
        sim = self.server.simulator
        fault = sim.faults.pick(method or "")
        if fault == "stall":
            time.sleep(sim.faults.stall_seconds)
        if fault == "fail":
            answer: Any = [False, f"[{method}] Internal error (injected fault).", INTERNAL, -1, I8(0)]
        else:
            answer = sim.call(method or "", params)
        if fault == "drop":
            self.close_connection = True
            return
        body = xmlrpc.client.dumps((answer,), methodresponse=True, allow_none=False)
        self._answer(body)

    def _answer(self, body: str) -> None:
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _Server(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    simulator: OpenNebulaSimulator


class OpenNebulaSimulator:
    """oned on ``127.0.0.1``: ``url`` for ``pyone.OneServer``, ``admin_session`` for oneadmin; ``stop()`` ends it."""

    def __init__(self, admin_password: str = "opennebula", timings: Timings | None = None) -> None:
        self.cloud = Cloud(admin_password, timings or Timings())
        self.faults = Faults()
        self.calls: list[str] = []
        self.admin_session = f"oneadmin:{admin_password}"
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.simulator = self
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/RPC2"
        self._thread = threading.Thread(target=self._server.serve_forever, name="oned-sim", daemon=True)
        self._thread.start()

    def call(self, method: str, params: tuple[Any, ...]) -> list[Any]:
        """Run one ``one.*`` call as oned would, returning its answer array."""
        self.calls.append(method)
        function = METHODS.get(method)
        if function is None:
            return [False, f"[{method}] Method not found.", RPC_API, -1, I8(0)]
        with self.cloud.lock:
            try:
                if not params:
                    raise OneError(RPC_API, f"[{method}] Missing session argument.")
                user = self.cloud.authenticate(params[0])
                value = function(self.cloud, user, *params[1:])
            except OneError as exc:
                message = exc.message if exc.message.startswith("[") else f"[{method}] {exc.message}"
                return [False, message, exc.code, exc.resp_id, I8(0)]
            except (TypeError, ValueError, KeyError) as exc:
                return [False, f"[{method}] Wrong parameters: {exc}", RPC_API, -1, I8(0)]
        return [True, value, 0]

    # ------------------------------------------------------------------------------------------ seeding

    def add_user(self, name: str, password: str, group: str = "users") -> int:
        """A user in ``group`` (``oneadmin`` or ``users``); returns its id."""
        gid = {v: k for k, v in self.cloud.groups.items()}[group]
        with self.cloud.lock:
            return self.call("one.user.allocate", (self.admin_session, name, password, "core", [gid]))[1]

    def _admin_call(self, method: str, *args: Any) -> Any:
        answer = self.call(method, (self.admin_session, *args))
        if not answer[0]:
            raise RuntimeError(answer[1])
        return answer[1]

    def _share(self, kind: str, oid: int) -> None:
        self._admin_call(f"one.{kind}.chmod", oid, -1, -1, -1, 1, -1, -1, 1, -1, -1)

    def add_template(self, name: str, body: str, *, shared: bool = True, **attrs: str) -> int:
        """A VM template from oned text; ``attrs`` become extra attributes (e.g. the flavor marker)."""
        extra = "".join(f'\n{key}="{value}"' for key, value in attrs.items())
        oid = self._admin_call("one.template.allocate", f'NAME="{name}"\n{body}{extra}')
        if shared:
            self._share("template", oid)
        return oid

    def add_image(self, name: str, size_mb: int = 1024, image_type: str = "OS", *, persistent: bool = False,
                  shared: bool = True) -> int:  # fmt: skip
        """An image, READY at once (its LOCKED phase is for images users allocate)."""
        oid = self._admin_call("one.image.allocate", tpl.to_text({
            "NAME": [name], "TYPE": [image_type], "SIZE": [str(size_mb)], "PERSISTENT": ["YES" if persistent else "NO"],
            "PATH": [f"/srv/images/{name}.qcow2"]}), 1)  # fmt: skip
        self.cloud.pools["image"][oid].state = m.IMG_READY
        if shared:
            self._share("image", oid)
        return oid

    def add_vnet(self, name: str, first_ip: str, size: int, *, shared: bool = True) -> int:
        """A bridged virtual network with one IP4 address range."""
        oid = self._admin_call(
            "one.vn.allocate",
            f'NAME="{name}"\nVN_MAD="bridge"\nBRIDGE="br0"\nAR=[TYPE="IP4",IP="{first_ip}",SIZE="{size}"]',
        )
        if shared:
            self._share("vn", oid)
        return oid

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)
