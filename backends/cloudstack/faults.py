"""CloudStack's failures as canonical errors, in one place.

CloudStack answers an error with ``errorcode`` (``ApiErrorCode``, also the HTTP status) and ``errortext``; an
asynchronous job that fails carries the same pair in its ``jobresult``. libcloud raises ``ProviderError`` with
the status for the first, ``InvalidCredsError`` for a 401, and requests' exceptions for the transport.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import requests
from libcloud.common.types import LibcloudError, MalformedResponseError, ProviderError
from libcloud.compute.types import InvalidCredsError

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

#: CloudStack's PARAM_ERROR text for an id naming nothing (ApiDispatcher: "... or entity does not exist ...").
MISSING = "entity does not exist"

Make = Callable[[str, str | None], CloudgateError]

#: ApiErrorCode -> canonical error, given the message and the kind of resource the call is about.
CODES: Mapping[int, Make] = {
    # The account's keys, not the gateway client's: the gateway cannot serve it (as every backend answers it).
    401: lambda m, k: BackendUnavailable(m, kind=k, reason="credentials"),
    431: lambda m, k: (
        NotFound(m, kind=k) if MISSING in m.lower() and k else InvalidParameter(m, kind=k, reason="parameter")
    ),  # PARAM_ERROR
    432: lambda m, k: Forbidden(m, kind=k, reason="command"),  # UNSUPPORTED_ACTION_ERROR: not for this user
    530: lambda m, k: OutcomeUnknown(m, kind=k, reason="internal"),  # INTERNAL_ERROR: may have run in part
    531: lambda m, k: Forbidden(m, kind=k, reason="permission"),  # ACCOUNT_ERROR (PermissionDenied)
    532: lambda m, k: Forbidden(m, kind=k, reason="resource_limit"),  # ACCOUNT_RESOURCE_LIMIT_ERROR
    533: lambda m, k: BackendError(m, kind=k, reason="capacity"),  # INSUFFICIENT_CAPACITY_ERROR
    534: lambda m, k: QuotaExceeded(m, kind=k, reason="limit"),  # RESOURCE_ALLOCATION_ERROR (limits)
    535: lambda m, k: TransientBackendError(m, kind=k, reason="unavailable"),  # RESOURCE_UNAVAILABLE_ERROR
    536: lambda m, k: Conflict(m, kind=k, reason="in_use"),  # RESOURCE_IN_USE_ERROR
    537: lambda m, k: Conflict(m, kind=k, reason="duplicate"),  # NETWORK_RULE_CONFLICT_ERROR
}


def from_code(code: int, message: str, kind: str | None) -> CloudgateError:
    """The canonical error for a CloudStack error code (a sync answer's status or a failed job's code)."""
    make = CODES.get(code)
    if make is not None:
        return make(message, kind)
    if code >= 500:
        return TransientBackendError(message, kind=kind, reason="server")
    return BackendError(message, kind=kind)


def translate(exc: Exception, kind: str | None, what: str) -> CloudgateError:
    """Any exception out of a CloudStack call (libcloud's or the transport's) as a canonical error."""
    if isinstance(exc, CloudgateError):
        return exc
    if isinstance(exc, InvalidCredsError):
        return BackendUnavailable(f"CloudStack refused the account's keys ({what}).", reason="credentials")
    if isinstance(exc, ProviderError):
        return from_code(int(exc.http_code or 0), f"CloudStack ({what}): {exc.value}", kind)
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return TransientBackendError(f"CloudStack is unreachable ({what}): {_why(exc)}", reason="unreachable")
    if isinstance(exc, requests.ConnectionError) and _refused(exc):
        return TransientBackendError(f"CloudStack is unreachable ({what}): {_why(exc)}", reason="unreachable")
    if isinstance(exc, requests.RequestException | ConnectionError | TimeoutError):
        # A read timeout or a connection closed after sending: the call may have run.
        return OutcomeUnknown(f"CloudStack did not answer ({what}): {_why(exc)}", reason="unreachable")
    if isinstance(exc, MalformedResponseError | LibcloudError):
        return BackendError(f"CloudStack answered oddly ({what}): {exc}", kind=kind)
    return BackendError(f"CloudStack call failed ({what}): {exc!r}", kind=kind)


def _why(exc: BaseException) -> str:
    """What went wrong with the transport, without the request's URL: its query string carries the API key and
    a signature that stays valid when no ``expires`` is signed (it would reach logs and ``cloudgate check``)."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None  # urllib3's MaxRetryError
    return str(reason if isinstance(reason, BaseException) else exc).split("?", 1)[0]


def _refused(exc: requests.ConnectionError) -> bool:
    """Whether the connection was never made (nothing was sent), as opposed to lost after sending."""
    text = repr(exc)
    return "NewConnectionError" in text or "Connection refused" in text or "Name or service not known" in text
