"""OCCI errors: canonical failures mapped to HTTP statuses in one table; the message is rendered in the
requested rendering by the HTTP layer (text: a plain message; JSON: ``{"error": ...}``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from translator import errors as canonical


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
}


def from_canonical(exc: canonical.CloudgateError) -> OcciError:
    status = next(STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS)
    return OcciError(status, exc.message)
