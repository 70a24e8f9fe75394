"""Every fault of Keystone, Nova, Glance, Cinder and Neutron -> a canonical error, in one place.

Both client libraries end here: keystoneauth1 (REST calls and authentication) and libcloud (compute).
An HTTP fault is classified by its status, refined by a phrase of the service's message where one status
means several things (Nova answers 403 for a quota and for a policy, 409 for a state and a duplicate).
Transient faults (refused or timed-out connections, 5xx, 429) become ``TransientBackendError``, which the
translator retries; one after the request may have reached the service (a read timeout, a connection lost
mid-answer) is ``OutcomeUnknown``, resent only for a create the service can recognise by its idempotency key.
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
import urllib3
from keystoneauth1 import exceptions as ka
from libcloud.common.exceptions import BaseHTTPError
from libcloud.common.types import InvalidCredsError, LibcloudError, MalformedResponseError
from libcloud.compute.types import KeyPairDoesNotExistError

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
    Unsupported,
)

ErrorRow = tuple[type[CloudgateError], str | None]

#: (HTTP status, phrase in the service's message) -> canonical class and reason; checked first, in order.
MESSAGE_FAULTS: tuple[tuple[int, re.Pattern[str], ErrorRow], ...] = tuple(
    (status, re.compile(phrase, re.IGNORECASE), row)
    for status, phrase, row in (
        (403, r"quota|limit exceeded", (QuotaExceeded, "quota")),
        (413, r"quota|limit", (QuotaExceeded, "quota")),
        (409, r"already exists|duplicate|is in use by another", (Conflict, "duplicate")),
        (400, r"already exists|duplicate", (Conflict, "duplicate")),
        (409, r"in use|in-use|attached|has dependen|still has", (Conflict, "in_use")),
        (400, r"in use|in-use|must be available|is attached|status must be", (Conflict, "state")),
        (409, r"state|task_state|while it is in", (Conflict, "state")),
    )
)

#: HTTP status -> canonical class and reason, when no message row matched.
STATUS_FAULTS: dict[int, ErrorRow] = {
    400: (InvalidParameter, None),
    401: (BackendUnavailable, "credentials"),  # still refused after keystoneauth's re-authentication
    403: (Forbidden, "policy"),
    404: (NotFound, None),
    405: (Unsupported, "method"),
    406: (BackendUnavailable, "microversion"),  # compute_microversion beyond what this Nova speaks
    408: (TransientBackendError, "timeout"),
    409: (Conflict, None),
    413: (QuotaExceeded, "quota"),
    422: (InvalidParameter, None),
    429: (TransientBackendError, "throttled"),
    501: (Unsupported, "not_implemented"),
}
#: Any other 5xx is worth retrying (a service restarting, a proxy without upstream, an overloaded API).
SERVER_ERROR = (TransientBackendError, "server_error")

#: Failures with no HTTP status: client-library exception classes -> canonical class and reason (first match).
EXCEPTION_FAULTS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], ErrorRow], ...] = (
    ((ka.SSLError, ssl.SSLError, requests.exceptions.SSLError), (BackendUnavailable, "tls")),
    (
        (
            ka.ConnectionError,
            requests.ConnectionError,
            requests.Timeout,
            ConnectionError,
            socket.timeout,
            TimeoutError,
        ),
        (TransientBackendError, "unreachable"),
    ),
    (ka.EndpointNotFound, (BackendUnavailable, "catalog")),
    (ka.DiscoveryFailure, (BackendUnavailable, "discovery")),
    (ka.AuthorizationFailure, (BackendUnavailable, "credentials")),
    (InvalidCredsError, (BackendUnavailable, "credentials")),
    (KeyPairDoesNotExistError, (NotFound, None)),
    ((MalformedResponseError, ka.InvalidResponse), (BackendError, "response")),
)


#: Failures of the connection itself: the request cannot have reached the service (safe to send again).
UNSENT: tuple[type[BaseException], ...] = (
    requests.exceptions.ConnectTimeout,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    ConnectionRefusedError,
    socket.gaierror,
)


def never_sent(exc: BaseException) -> bool:
    """True when a failure shows the request never left (refused, DNS, connect timeout). keystoneauth re-raises
    requests' errors as its own, all timeouts as ``ConnectTimeout``, so the chain of causes is what tells."""
    seen: BaseException | None = exc
    for _ in range(8):  # bounded: a chain is a few links long
        if seen is None:
            return False
        reason = getattr(seen.args[0], "reason", None) if seen.args else None  # urllib3's MaxRetryError
        if isinstance(seen, UNSENT) or isinstance(reason, UNSENT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def status_of(exc: BaseException) -> int | None:
    """The HTTP status a client-library exception carries, if any."""
    if isinstance(exc, ka.HttpError):
        return exc.http_status
    if isinstance(exc, BaseHTTPError):
        return int(exc.code)
    return None


def message_of(exc: BaseException) -> str:
    """The service's own words: the ``message`` of an OpenStack JSON fault body where there is one."""
    if isinstance(exc, ka.HttpError):
        response = getattr(exc, "response", None)
        text = exc.details or exc.message or ""
        if response is not None:
            text = _fault_message(response.text) or text
        return text or str(exc)
    if isinstance(exc, BaseHTTPError):
        return str(exc.message)
    return str(exc) or type(exc).__name__


def _fault_message(body: str) -> str:
    """``{"itemNotFound": {"message": ...}}`` (Nova, Cinder), ``{"NeutronError": {...}}``, or the body."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(data, dict):
        for value in data.values():
            if isinstance(value, dict) and "message" in value:
                return str(value["message"])
        if "message" in data:
            return str(data["message"])
    return body.strip()[:500]


def translate(exc: BaseException, kind: str | None = None, what: str = "") -> CloudgateError | None:
    """The canonical error for what a call to OpenStack raised (``kind``: the resource it was about).

    None for an exception no client library raises: a bug of ours, which the caller lets through so the
    translator logs it with its traceback.
    """
    if isinstance(exc, CloudgateError):
        return exc
    status = status_of(exc)
    message = message_of(exc)
    row: ErrorRow | None = None
    if status is not None:
        row = next((r for s, phrase, r in MESSAGE_FAULTS if s == status and phrase.search(message)), None)
        row = row or STATUS_FAULTS.get(status) or (SERVER_ERROR if status >= 500 else (BackendError, None))
    else:
        row = next((r for classes, r in EXCEPTION_FAULTS if isinstance(exc, classes)), None)
    if row is None:
        row = (BackendError, None) if isinstance(exc, LibcloudError | ka.ClientException) else None
    if row is None:
        return None
    cls, reason = row
    if cls is TransientBackendError and status is None and not never_sent(exc):
        cls = OutcomeUnknown  # sent, then no answer: the service may have acted on it
    prefix = f"openstack: {what}: " if what else "openstack: "
    if status is not None:
        prefix += f"HTTP {status}: "
    return cls(prefix + message, kind=kind, reason=reason)


@contextmanager
def faults(kind: str | None = None, what: str = "") -> Iterator[None]:
    """Run a block of calls to OpenStack, raising whatever fails as a canonical error."""
    try:
        yield
    except CloudgateError:
        raise
    except Exception as exc:
        error = translate(exc, kind, what)
        if error is None:
            raise
        raise error from exc
