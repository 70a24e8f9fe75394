"""Canonical failures. Backends raise these; each frontend maps them to its protocol in one table.

Every error carries the resource ``kind`` it is about and a ``reason`` that refines it, so a frontend
can pick a precise code (EC2 ``InvalidKeyPair.Duplicate`` is ``Conflict(kind="key_pair",
reason="duplicate")``) without parsing messages.
"""

from __future__ import annotations


class CloudgateError(Exception):
    """Base of every canonical failure."""

    status = 400

    def __init__(self, message: str, *, kind: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, kind={self.kind!r}, reason={self.reason!r})"


class NotFound(CloudgateError):
    """The resource does not exist, or is not visible to the caller's tenant."""

    status = 404


class InvalidParameter(CloudgateError):
    """A parameter is malformed, out of range or inconsistent (``reason="missing"`` when absent)."""


class Conflict(CloudgateError):
    """The request clashes with current state.

    Reasons used across the code: ``duplicate``, ``state`` (wrong lifecycle state), ``in_use``,
    ``idempotency`` (same client token, different parameters), ``dependency``.
    """

    status = 409


class PreconditionFailed(Conflict):
    """A conditional write (``If-Match``) named a version that is no longer current (``reason="etag"``)."""

    status = 412


class Unsupported(CloudgateError):
    """The backend behind the caller's account cannot do this (declared by its capabilities)."""

    status = 501


class QuotaExceeded(CloudgateError):
    """A tenant or backend limit would be exceeded."""

    status = 403


class AuthFailure(CloudgateError):
    """The caller could not be authenticated."""

    status = 401


class Forbidden(CloudgateError):
    """The caller is authenticated but its role does not allow the operation."""

    status = 403


class BackendError(CloudgateError):
    """The backend refused or failed the request for a reason that retrying will not fix."""

    status = 502


class TransientBackendError(BackendError):
    """A failure worth retrying (refused, timeout, 5xx, throttling); never leaves the translator."""

    status = 503


class OutcomeUnknown(TransientBackendError):
    """The request may have reached the cloud, but no answer came back (read timeout, connection lost after
    sending). Retried only where the cloud can recognise a repeat (an idempotency key); else unavailable."""


class BackendUnavailable(CloudgateError):
    """The backend kept failing after the translator's retries, or is known to be down. ``retry_after``: the
    seconds until a retry may be served, when known (an open circuit breaker's cool-down); else None and the
    frontend answers its default ``Retry-After``."""

    status = 503

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        kind: str | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message, kind=kind, reason=reason)
        self.retry_after = retry_after


class Throttled(CloudgateError):
    """The caller is over its request rate (translator/ratelimit.py): it may retry after ``retry_after`` seconds."""

    status = 429

    def __init__(self, message: str, *, retry_after: float, kind: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, kind=kind, reason=reason)
        self.retry_after = retry_after
