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


MAX_PAGES = 100_000  # bounds one listing's calls, whatever the pool does meanwhile


class One:
    """``one.<name>`` calls on the account's session, each raising canonical errors (``call(kind, what, ...)``)."""

    def __init__(self, opts: Options) -> None:
        self.page_size = opts.page_size
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

    def pool(self, method: str, flag: int, *tail: Any, element: str, kind: str | None = None, what: str = "") -> list:
        """Every ``element`` of a ``one.<kind>pool.info``-like listing (``flag``, then the range, then ``tail``).

        With a page size, pages by offset (oned's ``start`` offset and ``-end`` page size), each page overlapping the
        previous by one object: when that object is not where it was, objects before the cursor went away
        meanwhile (shifting the rest back) and the previous page is read again, so none is missed. PERF: a page
        bounds the size of one answer (oned renders a whole pool in one document otherwise)."""
        size = self.page_size
        if not size:
            return list(getattr(self.call(method, flag, -1, -1, *tail, kind=kind, what=what), element))
        found: dict[int, Any] = {}
        offset, last = 0, None
        for _ in range(MAX_PAGES):
            page = list(getattr(self.call(method, flag, offset, -size, *tail, kind=kind, what=what), element))
            if last is not None and (not page or last != page[0].ID):
                offset, last = max(offset - size, 0), None
                continue
            found.update((item.ID, item) for item in page)
            if len(page) < size:
                break
            last, offset = page[-1].ID, offset + size - 1
        return [found[oid] for oid in sorted(found)]

    def close(self) -> None:
        self.transport.close()
