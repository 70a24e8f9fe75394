"""Keystone tokens as gateway credentials: a token of a Keystone project is a caller of the bound tenant.

The gateway validates a caller's token with its own service credentials (``GET /v3/auth/tokens`` with
``X-Subject-Token``, keystoneauth1 session, re-authenticated when its own token lapses). A valid
token's project must be bound to a tenant (``keystone_project_id`` in ``[tenants.T]``); its roles
map to gateway roles by a table. Validations are cached in Redis, keyed by a hash of the token and
never past the token's own expiry, so every worker shares them and Keystone sees one check a minute.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from translator.codec import dumps, loads
from translator.errors import AuthFailure, BackendUnavailable, Forbidden
from translator.model import Principal
from translator.redis_client import RedisClient

#: Keystone role name -> gateway role; the strongest role a token carries wins.
DEFAULT_ROLE_MAP: dict[str, str] = {"admin": "admin", "member": "member", "_member_": "member", "reader": "reader"}
_STRENGTH = {"reader": 0, "member": 1, "admin": 2}
#: what a caller hears when Keystone cannot answer; why (its URL, the library's words) goes to the log only
_UNAVAILABLE = "The identity service is temporarily unavailable; retry later."

log = logging.getLogger("cloudgate.keystone")


@dataclass(frozen=True, slots=True)
class KeystoneSettings:
    """``[identity.keystone]``: where Keystone is and the service user the gateway validates tokens as."""

    auth_url: str
    username: str
    password: str = field(repr=False)
    project_name: str
    user_domain_name: str = "Default"
    project_domain_name: str = "Default"
    cache_seconds: float = 60.0
    timeout: float = 10.0
    role_map: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLE_MAP))


class KeystoneTokens:
    """Turns a Keystone token into a Principal of the tenant bound to its project."""

    def __init__(self, settings: KeystoneSettings, client: RedisClient, project_tenants: dict[str, str]) -> None:
        self.settings = settings
        self.redis = client
        self.project_tenants = project_tenants
        auth = v3.Password(
            auth_url=settings.auth_url,
            username=settings.username,
            password=settings.password,
            project_name=settings.project_name,
            user_domain_name=settings.user_domain_name,
            project_domain_name=settings.project_domain_name,
        )
        # PERF: one session per worker; it pools connections and keeps the service token until it lapses.
        self.session = ks_session.Session(auth=auth, timeout=settings.timeout)

    def authenticate(self, token: str) -> Principal:
        """The caller a token names; AuthFailure for an invalid or expired one, Forbidden for an unbound project."""
        if not token:
            raise AuthFailure("No token was provided.")
        key = "cg:kstoken:" + hashlib.sha256(token.encode()).hexdigest()
        cached = self.redis.get(key)
        if cached is not None:
            return _principal(loads(cached))
        body = self._validate(token)
        data = self._caller(body)
        ttl = min(self.settings.cache_seconds, _seconds_left(body))
        if ttl > 0:
            self.redis.set(key, dumps(data), px=int(ttl * 1000))
        return _principal(data)

    def _validate(self, token: str) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                response = self.session.get(
                    "/auth/tokens",
                    endpoint_filter={"service_type": "identity", "interface": "public", "version": (3, 0)},
                    headers={"X-Subject-Token": token},
                    raise_exc=False,
                )
            except ks_exc.ClientException as exc:
                log.warning("Keystone token check failed: %s: %s", type(exc).__name__, exc)
                raise BackendUnavailable(_UNAVAILABLE, reason="identity") from None
            if response.status_code == 401 and attempt == 1:
                self.session.invalidate()  # our own service token lapsed: get a new one, once
                continue
            if response.status_code in (401, 404):
                raise AuthFailure("The token is not valid or has expired.")
            if response.status_code != 200:
                log.warning("Keystone answered %s to a token check", response.status_code)
                raise BackendUnavailable(_UNAVAILABLE, reason="identity")
            return response.json()["token"]
        raise AuthFailure("The token is not valid or has expired.")

    def _caller(self, token: dict[str, Any]) -> dict[str, str]:
        project = (token.get("project") or {}).get("id")
        if not project:
            raise Forbidden("The token is not scoped to a project.")
        tenant = self.project_tenants.get(project)
        if tenant is None:
            raise Forbidden(f"The project {project} is not bound to a tenant of this gateway.")
        roles = [self.settings.role_map.get(r.get("name", "")) for r in token.get("roles") or []]
        granted = [r for r in roles if r in _STRENGTH]
        if not granted:
            raise Forbidden("The token carries no role this gateway knows.")
        user = token.get("user") or {}
        return {
            "user": user.get("name") or user.get("id", ""),
            "tenant": tenant,
            "role": max(granted, key=_STRENGTH.__getitem__),
        }


def _principal(data: dict[str, str]) -> Principal:
    return Principal(user=data["user"], tenant=data["tenant"], role=data["role"])


def _seconds_left(token: dict[str, Any]) -> float:
    expires = token.get("expires_at")
    if not expires:
        return 0.0
    try:
        return datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp() - time.time()
    except ValueError:
        return 0.0
