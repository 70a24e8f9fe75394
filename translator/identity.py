"""Users, tenants and roles, kept in Redis so every worker and the CLI see the same set.

The secret has to be stored in the clear: SigV4 and SigV2 verification recompute an HMAC with it.
It never appears in a repr, a log line or a listing.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from translator.codec import dumps, loads
from translator.errors import AuthFailure, Forbidden, InvalidParameter, NotFound
from translator.keystone_auth import KeystoneTokens
from translator.model import Principal
from translator.read_cache import Guard, ReadCache
from translator.redis_client import RedisClient

#: role -> what it may do. "write" is any mutation; "admin" manages users.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "admin"}),
    "member": frozenset({"read", "write"}),
    "reader": frozenset({"read"}),
}


@dataclass(frozen=True, slots=True)
class User:
    access_key: str
    secret: str = field(repr=False)
    tenant: str
    role: str = "member"
    name: str = ""

    def principal(self) -> Principal:
        return Principal(user=self.name or self.access_key, tenant=self.tenant, role=self.role)


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    account_id: str
    accounts: tuple[str, ...]
    #: the Keystone project whose tokens act as this tenant (translator.keystone_auth), if any
    keystone_project_id: str = ""
    #: the image and flavor (their names) of a machine asked for with nothing but its kind (OCCI): empty = the
    #: first available image by name, the smallest flavor
    default_image: str = ""
    default_flavor: str = ""


def new_access_key() -> str:
    """20 upper-case characters, like AWS access key ids (clients sometimes check the shape)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "CG" + "".join(secrets.choice(alphabet) for _ in range(18))


def new_secret() -> str:
    return secrets.token_urlsafe(30)[:40]


#: access key -> the user's record (JSON: secret, tenant, role, name)
USERS = "cg:users"


class Identity:
    """Reads and writes ``cg:user:*`` and ``cg:tenant:*``; checks credentials and roles."""

    def __init__(self, client: RedisClient, keystone: KeystoneTokens | None = None) -> None:
        self.redis = client
        self.keystone = keystone

    # -- tenants -----------------------------------------------------------------------------
    def load_tenants(self, tenants: Iterable[Tenant]) -> None:
        """Publish the configured tenants (config is their source of truth)."""
        pipe = self.redis.pipeline()
        pipe.delete("cg:tenants")
        for t in tenants:
            record = {"account_id": t.account_id, "accounts": list(t.accounts), "keystone": t.keystone_project_id}
            pipe.hset("cg:tenants", t.name, dumps(record))
        pipe.execute()

    def tenant(self, name: str) -> Tenant | None:
        raw = self.redis.hget("cg:tenants", name)
        if raw is None:
            return None
        data = loads(raw)
        return Tenant(
            name=name,
            account_id=data["account_id"],
            accounts=tuple(data["accounts"]),
            keystone_project_id=data.get("keystone", ""),
        )

    # -- users -------------------------------------------------------------------------------
    def add_user(self, user: User, *, replace: bool = False) -> None:
        if user.role not in ROLE_PERMISSIONS:
            raise InvalidParameter(f"unknown role {user.role!r} (roles: {', '.join(ROLE_PERMISSIONS)})")
        if self.tenant(user.tenant) is None:
            raise InvalidParameter(f"unknown tenant {user.tenant!r}", kind="tenant")
        record = dumps({"secret": user.secret, "tenant": user.tenant, "role": user.role, "name": user.name})
        stored = (
            self.redis.hset(USERS, user.access_key, record)
            if replace
            else self.redis.hsetnx(USERS, user.access_key, record)
        )
        if not replace and not stored:
            raise InvalidParameter(f"access key {user.access_key!r} already exists", reason="duplicate")

    def remove_user(self, access_key: str) -> None:
        if not self.redis.hdel(USERS, access_key):
            raise NotFound(f"no user with access key {access_key!r}", kind="user")

    def users(self) -> list[User]:
        raw = self.redis.hgetall(USERS)
        return sorted((self._user(k.decode(), v) for k, v in raw.items()), key=lambda u: (u.tenant, u.access_key))

    def lookup(self, access_key: str) -> User | None:
        """The user owning ``access_key``; the signature verifiers call this for the secret."""
        return self.user_from(access_key, self.raw_user(access_key))

    def raw_user(self, access_key: str) -> bytes | None:
        """The record of the user owning ``access_key`` as stored (see ``user_from``)."""
        raw: bytes | None = self.redis.hget(USERS, access_key)
        return raw

    @staticmethod
    def user_guard(access_key: str) -> Guard:
        """Where ``access_key``'s user record lives, for a read cache lookup to read it in its own round trip."""
        return Guard(USERS, access_key)

    @classmethod
    def user_from(cls, access_key: str, raw: bytes | None) -> User | None:
        """The user a record read through ``user_guard`` describes (None: no such user)."""
        return _user_of(access_key, raw) if raw else None

    @staticmethod
    def _user(access_key: str, raw: bytes) -> User:
        data = loads(raw)
        return User(
            access_key=access_key,
            secret=data["secret"],
            tenant=data["tenant"],
            role=data["role"],
            name=data.get("name", ""),
        )

    # -- checks ------------------------------------------------------------------------------
    def authenticate_basic(self, access_key: str, secret: str) -> Principal:
        """HTTP Basic (CIMI, OCCI): access key and secret; constant-time comparison."""
        return _checked(self.lookup(access_key), secret)

    def authenticate_basic_kept(
        self, access_key: str, secret: str, cache: ReadCache, key: Hashable
    ) -> tuple[Principal, bytes | None, Any | None]:
        """HTTP Basic for a read the cache may answer: the principal, the user record it was checked against, and
        the answer kept for ``key`` if it still holds; the record and the answer in one round trip."""
        raw, kept = cache.lookup(key, self.user_guard(access_key))
        return _checked(self.user_from(access_key, raw), secret), raw, kept

    def authenticate_token(self, token: str) -> Principal:
        """A Keystone token (``X-Auth-Token``), when the gateway is configured to trust a Keystone."""
        if self.keystone is None:
            raise AuthFailure("Token authentication is not configured on this gateway.")
        return self.keystone.authenticate(token)


@functools.lru_cache(maxsize=4096)
def _user_of(access_key: str, raw: bytes) -> User:
    """PERF: a record is parsed once per worker while it stays the same (every request reads it)."""
    return Identity._user(access_key, raw)


def _checked(user: User | None, secret: str) -> Principal:
    # Compare against something even for unknown keys so timing does not reveal which exist.
    expected = user.secret if user else secrets.token_urlsafe(30)
    if not hmac.compare_digest(expected.encode(), secret.encode()) or user is None:
        raise AuthFailure("The access key or secret is not valid.")
    return user.principal()


def authorize(principal: Principal, permission: str) -> None:
    """Raise Forbidden unless the principal's role grants ``permission``."""
    if permission not in ROLE_PERMISSIONS.get(principal.role, frozenset()):
        raise Forbidden(f"User {principal.user} is not authorized to perform this operation.")
