"""CIMI errors: canonical failures mapped to HTTP statuses in one table, rendered as the request asked.

DSP0263 defines no error document; ours is small (``status``, ``code``, ``message``) and carried in the
rendering the client asked for, so a CIMI client never meets a body it cannot parse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from translator import errors as canonical
from translator.ratelimit import retry_after


@dataclass(slots=True)
class CimiError(Exception):
    """A failure answered with ``status``; ``headers`` go with it (``Allow``, ``WWW-Authenticate``...)."""

    status: int
    message: str
    code: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)
        self.code = self.code or CODES.get(self.status, "Error")


#: HTTP status -> the short code our error document carries
CODES: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    412: "PreconditionFailed",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    429: "TooManyRequests",
    500: "InternalError",
    501: "NotImplemented",
    502: "BadGateway",
    503: "ServiceUnavailable",
}

#: Canonical failure -> HTTP status; the most specific class wins (looked up along the MRO).
STATUS: dict[type[canonical.CloudgateError], int] = {
    canonical.CloudgateError: 400,
    canonical.InvalidParameter: 400,
    canonical.NotFound: 404,
    canonical.Conflict: 409,
    canonical.PreconditionFailed: 412,
    canonical.Unsupported: 501,
    canonical.QuotaExceeded: 403,
    canonical.AuthFailure: 401,
    canonical.Forbidden: 403,
    canonical.BackendError: 502,
    canonical.TransientBackendError: 503,
    canonical.BackendUnavailable: 503,
    canonical.Throttled: 429,
}

#: Canonical failure -> the headers its answer carries (the MRO's most specific row)
HEADERS: dict[type[canonical.CloudgateError], Callable[[Any], dict[str, str]]] = {
    canonical.Throttled: lambda exc: {"Retry-After": retry_after(exc.retry_after)},
    # an open circuit breaker knows its cool-down; other 503s take the frontend's default Retry-After
    canonical.BackendUnavailable: lambda exc: (
        {} if exc.retry_after is None else {"Retry-After": retry_after(exc.retry_after)}
    ),
}


def _headers(exc: canonical.CloudgateError) -> dict[str, str]:
    return next((HEADERS[cls](exc) for cls in type(exc).__mro__ if cls in HEADERS), {})


def from_canonical(exc: canonical.CloudgateError) -> CimiError:
    """The CIMI answer to a canonical failure."""
    status = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    return CimiError(status, exc.message, headers=_headers(exc))


def not_found(what: str) -> CimiError:
    return CimiError(404, f"There is no {what} here.")


def bad_request(message: str) -> CimiError:
    return CimiError(400, message)
