"""Every fault of oned (through pyone) and of the HTTP under it -> a canonical error, in one place.

oned answers ``[False, message, errcode]``; pyone raises one exception class per error code (authentication
0x0100, authorization 0x0200, no-exists 0x0400, action 0x0800, API 0x1000, internal 0x2000) and a plain
``OneException`` for the others (allocate 0x4000). One code means several things (an ACTION failure is a wrong
state, a name taken, an image in use), so a phrase of oned's message refines it where it must. A failure of the
connection that shows the request never left is ``TransientBackendError``; one after it may have reached oned (a
read timeout, a connection closed before the answer) is ``OutcomeUnknown``, resent only for creates oned can
recognise by their idempotency key.
"""

from __future__ import annotations

import re
import socket
import ssl
import xmlrpc.client
from collections.abc import Iterator
from contextlib import contextmanager
from xml.parsers.expat import ExpatError

import pyone
import requests
import urllib3

from translator.errors import (
    BackendError,
    BackendUnavailable,
    CloudgateError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    QuotaExceeded,
    TransientBackendError,
)

ErrorRow = tuple[type[CloudgateError], str | None]

#: (pyone exception class, phrase in oned's message) -> canonical class and reason; checked first, in order.
MESSAGE_FAULTS: tuple[tuple[type[pyone.OneException], re.Pattern[str], ErrorRow], ...] = tuple(
    (cls, re.compile(phrase, re.IGNORECASE), row)
    for cls, phrase, row in (
        (pyone.OneException, r"quota", (QuotaExceeded, "quota")),
        (pyone.OneException, r"already taken|already exists", (Conflict, "duplicate")),
        (pyone.OneActionException, r"used by VMs|leases in use|in use", (Conflict, "in_use")),
        (pyone.OneActionException, r"Cannot get IP/MAC lease", (QuotaExceeded, "addresses")),
        (pyone.OneActionException, r"Parse error|Wrong (number|lease)", (InvalidParameter, None)),
    )
)

#: pyone exception class (its error code) -> canonical class and reason, when no message row matched.
CODE_FAULTS: tuple[tuple[type[pyone.OneException], ErrorRow], ...] = (
    (pyone.OneAuthenticationException, (BackendUnavailable, "credentials")),
    (pyone.OneAuthorizationException, (Forbidden, "policy")),
    (pyone.OneNoExistsException, (NotFound, None)),
    (pyone.OneActionException, (Conflict, "state")),
    (pyone.OneApiException, (InvalidParameter, None)),
    (pyone.OneInternalException, (TransientBackendError, "internal")),
    (pyone.OneException, (InvalidParameter, None)),  # ALLOCATE (0x4000): a template oned refuses
)

#: Failures with no answer from oned: exception classes -> canonical class and reason (first match).
EXCEPTION_FAULTS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorRow], ...] = (
    ((requests.exceptions.SSLError, ssl.SSLError), (BackendUnavailable, "tls")),
    (
        (requests.ConnectionError, requests.Timeout, ConnectionError, socket.timeout, TimeoutError),
        (TransientBackendError, "unreachable"),
    ),
    ((ExpatError, xmlrpc.client.ResponseError), (BackendError, "response")),
)

#: An HTTP status from whatever is in front of oned (a proxy): -> canonical class and reason.
HTTP_FAULTS: dict[int, ErrorRow] = {
    401: (BackendUnavailable, "credentials"),
    403: (BackendUnavailable, "credentials"),
    404: (BackendUnavailable, "endpoint"),
    429: (TransientBackendError, "throttled"),
}

#: Failures of the connection itself: the request cannot have reached oned (safe to send again).
UNSENT: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectTimeout,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
    socket.gaierror,
)


def never_sent(exc: BaseException) -> bool:
    """True when a failure shows the request never left (refused, DNS, connect timeout), along its causes."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: a chain is a few links long
        if seen is None:
            return False
        reason = getattr(seen.args[0], "reason", None) if seen.args else None  # urllib3's MaxRetryError
        if isinstance(seen, UNSENT) or isinstance(reason, UNSENT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _row(exc: BaseException, message: str) -> ErrorRow | None:
    if isinstance(exc, pyone.OneException):
        found = next((r for cls, phrase, r in MESSAGE_FAULTS if isinstance(exc, cls) and phrase.search(message)), None)
        return found or next(r for cls, r in CODE_FAULTS if isinstance(exc, cls))
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return HTTP_FAULTS.get(exc.errcode) or (
            (TransientBackendError, "server_error") if exc.errcode >= 500 else (BackendError, None)
        )
    return next((r for classes, r in EXCEPTION_FAULTS if isinstance(exc, classes)), None)


def translate(exc: BaseException, kind: str | None = None, what: str = "") -> CloudgateError | None:
    """The canonical error for what a call to oned raised (``kind``: the resource it was about); None for an
    exception neither pyone nor the HTTP stack raises (a bug of ours, let through with its traceback)."""
    if isinstance(exc, CloudgateError):
        return exc
    message = " ".join(str(exc).split())[:500] or type(exc).__name__
    row = _row(exc, message)
    if row is None:
        return None
    cls, reason = row
    answered = isinstance(exc, pyone.OneException | xmlrpc.client.ProtocolError)
    if cls is TransientBackendError and not answered and not never_sent(exc):
        cls = OutcomeUnknown  # sent, then no answer: oned may have acted on it
    prefix = f"opennebula: {what}: " if what else "opennebula: "
    return cls(prefix + message, kind=kind, reason=reason)


@contextmanager
def faults(kind: str | None = None, what: str = "") -> Iterator[None]:
    """Run a block of calls to oned, raising whatever fails as a canonical error."""
    try:
        yield
    except CloudgateError:
        raise
    except Exception as exc:
        error = translate(exc, kind, what)
        if error is None:
            raise
        raise error from exc
