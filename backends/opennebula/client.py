"""The connection to oned: pyone's XML-RPC client with a per-call timeout and pooled HTTP connections.

pyone applies its ``timeout`` with ``socket.setdefaulttimeout``, which would change every socket of the
worker (Redis included), and posts without a timeout through a new connection each call; so the client is made
without one and given a transport of ours that keeps both to this account.
"""

from __future__ import annotations

import xmlrpc.client
from typing import Any

import pyone
import requests
from pyone.server_xrpc import RequestsTransport

from backends.opennebula.faults import faults
from backends.opennebula.options import Options


class _Transport(RequestsTransport):
    """pyone's requests-based transport, with a session (connection reuse) and a timeout on every call."""

    def __init__(self, timeout: float, verify: bool | str) -> None:
        super().__init__()
        self.timeout = timeout
        self.https_verify = verify
        self.http = requests.Session()

    def request(self, host: str, handler: str, request_body: bytes, verbose: bool = False) -> Any:
        url = self._build_url(host, handler)
        response = self.http.post(
            url, data=request_body, headers=self.headers, verify=self.https_verify, timeout=self.timeout
        )
        if response.status_code != 200:
            raise xmlrpc.client.ProtocolError(url, response.status_code, response.reason, dict(response.headers))
        return self.parse_response(response)

    def close(self) -> None:
        self.http.close()


class One:
    """``one.<name>`` calls on the account's session, each raising canonical errors (``call(kind, what, ...)``)."""

    def __init__(self, opts: Options) -> None:
        self.server = pyone.OneServer(opts.endpoint, session=opts.session)
        self.transport = _Transport(opts.timeout, opts.verify)
        self.transport.set_https(opts.endpoint.startswith("https"))
        self.server._ServerProxy__transport = self.transport  # the ServerProxy keeps its transport there

    def call(self, method: str, *args: Any, kind: str | None = None, what: str = "") -> Any:
        """``one.<method>(session, *args)`` through pyone (bodies parsed into its bindings)."""
        target: Any = self.server
        for part in method.split("."):
            target = getattr(target, part)
        with faults(kind, what or method):
            return target(*args)

    def close(self) -> None:
        self.transport.close()
