"""Keystone tokens through the identity layer, against the real Keystone peer (tests/peers/openstack)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from translator.errors import AuthFailure, BackendUnavailable, Forbidden
from translator.identity import Identity
from translator.keystone_auth import KeystoneSettings, KeystoneTokens

pytestmark = pytest.mark.timeout(900)  # the first use of the peers may build their virtualenv


def settings(keystone: Any, **kw: Any) -> KeystoneSettings:
    admin = keystone.admin
    return KeystoneSettings(
        auth_url=keystone.url,
        username=admin.username,
        password=admin.password,
        project_name=admin.project_name,
        **kw,
    )


def token_of(credentials: Any) -> str:
    return credentials.session().get_token()


def test_a_project_token_is_a_caller_of_the_bound_tenant(keystone: Any, redis_client: redis.Redis) -> None:
    member = keystone.create_project_user()
    reader = keystone.create_project_user(roles=("reader",))
    admin = keystone.create_project_user(roles=("admin",))
    bound = {member.project_id: "acme", reader.project_id: "readers", admin.project_id: "ops"}
    identity = Identity(redis_client, KeystoneTokens(settings(keystone), redis_client, bound))

    caller = identity.authenticate_token(token_of(member))
    assert (caller.tenant, caller.role, caller.user) == ("acme", "member", member.username)
    assert identity.authenticate_token(token_of(reader)).role == "reader"
    assert identity.authenticate_token(token_of(admin)).role == "admin"
    # a second check of the same token is answered from Redis, still the same caller
    token = token_of(member)
    assert identity.authenticate_token(token) == identity.authenticate_token(token)
    assert redis_client.keys("cg:kstoken:*")


def test_invalid_revoked_and_unbound_tokens_are_refused(keystone: Any, redis_client: redis.Redis) -> None:
    member = keystone.create_project_user()
    stranger = keystone.create_project_user()
    tokens = KeystoneTokens(settings(keystone, cache_seconds=0), redis_client, {member.project_id: "acme"})
    identity = Identity(redis_client, tokens)

    for bad in ("", "not-a-token", "gAAAAABinvalid" + "x" * 180):
        with pytest.raises(AuthFailure):
            identity.authenticate_token(bad)
    with pytest.raises(Forbidden):
        identity.authenticate_token(token_of(stranger))

    token = token_of(member)
    assert identity.authenticate_token(token).tenant == "acme"
    keystone.admin_session().delete(f"{keystone.url}/auth/tokens", headers={"X-Subject-Token": token})
    with pytest.raises(AuthFailure):
        identity.authenticate_token(token)


def test_without_keystone_tokens_are_refused_and_an_unreachable_keystone_is_unavailable(
    keystone: Any, redis_client: redis.Redis
) -> None:
    with pytest.raises(AuthFailure):
        Identity(redis_client).authenticate_token("anything")
    dead = KeystoneSettings(auth_url="http://127.0.0.1:9/v3", username="x", password="y", project_name="z", timeout=2)
    with pytest.raises(BackendUnavailable):
        Identity(redis_client, KeystoneTokens(dead, redis_client, {})).authenticate_token("token")
