"""OCCI errors: canonical failures mapped to HTTP statuses in one table; the message is rendered in the
requested rendering by the HTTP layer (text: a plain message; JSON: ``{"error": ...}``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from translator import errors as canonical
from translator.ratelimit import retry_after


@dataclass(slots=True)
class OcciError(Exception):
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.message)


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


def from_canonical(exc: canonical.CloudgateError) -> OcciError:
    status = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    return OcciError(status, exc.message, _headers(exc))
