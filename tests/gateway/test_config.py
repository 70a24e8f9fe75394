"""The shipped configs are valid and mean what the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, default_config_path, load, parse, redact_url

REPO = Path(__file__).resolve().parents[2]


def test_embedded_default_matches_the_readme() -> None:
    config = load(default_config_path())
    (account,) = config.accounts.values()
    assert (account.region, account.driver, account.zones) == ("local-1", "simulator", ("local-1a", "local-1b"))
    assert list(config.tenants) == ["demo"]
    (user,) = config.users
    assert (user.access_key, user.secret, user.tenant) == ("demo", "demo-secret", "demo")
    assert config.uses_demo_credentials()
    assert config.gateway.redis_url == "" or config.gateway.redis_url.startswith("redis")


def test_simulator_example_is_valid() -> None:
    config = load(REPO / "conf" / "examples" / "simulator.toml")
    assert config.accounts["acme/sim-1"].options["boot_delay"] == 0.5
    assert not config.uses_demo_credentials()
    assert repr(config.users[0]).count("change-me") == 0, "secrets never appear in a repr"


BASE = {
    "backends": {"sim": {"driver": "simulator"}},
    "tenants": {"t": {"keystone_project_id": "p-1", "regions": {"r": {"backend": "sim", "zones": ["r-a"]}}}},
}
KEYSTONE = {"auth_url": "http://127.0.0.1:5000/v3", "username": "gw", "password": "pw", "project_name": "service"}


def test_keystone_identity_section() -> None:
    config = parse({**BASE, "identity": {"keystone": {**KEYSTONE, "role_map": {"operator": "member"}}}})
    assert config.keystone is not None
    assert config.keystone.role_map["operator"] == "member" and config.keystone.role_map["admin"] == "admin"
    assert config.tenants["t"].keystone_project_id == "p-1"
    assert "pw" not in repr(config.keystone)
    assert parse(BASE).keystone is None


@pytest.mark.parametrize(
    ("identity", "key"),
    [
        ({"keystone": {**KEYSTONE, "auth_url": "ftp://x"}}, "identity.keystone.auth_url"),
        ({"keystone": {k: v for k, v in KEYSTONE.items() if k != "password"}}, "identity.keystone.password"),
        ({"keystone": {**KEYSTONE, "role_map": {"x": "root"}}}, "identity.keystone.role_map"),
        ({"keystone": {**KEYSTONE, "colour": 1}}, "identity.keystone.colour"),
        ({"ldap": {}}, "identity.ldap"),
    ],
)
def test_keystone_identity_mistakes_name_the_key(identity: dict, key: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse({**BASE, "identity": identity})
    assert excinfo.value.key == key


def test_redis_timeouts_and_log_level() -> None:
    defaults = parse(BASE).gateway
    assert (defaults.redis_connect_timeout, defaults.redis_socket_timeout) == (1.0, 2.0)
    gw = parse({**BASE, "gateway": {"redis_connect_timeout": 0.5, "redis_socket_timeout": 3, "log_level": "DEBUG"}})
    assert (gw.gateway.redis_connect_timeout, gw.gateway.redis_socket_timeout) == (0.5, 3.0)
    assert gw.gateway.log_level == "debug"


@pytest.mark.parametrize(
    ("gateway", "key"),
    [
        ({"redis_socket_timeout": 0}, "gateway.redis_socket_timeout"),
        ({"redis_connect_timeout": -1}, "gateway.redis_connect_timeout"),
        ({"redis_connect_timeout": "1s"}, "gateway.redis_connect_timeout"),
        ({"log_level": "chatty"}, "gateway.log_level"),
    ],
)
def test_gateway_mistakes_name_the_key(gateway: dict, key: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse({**BASE, "gateway": gateway})
    assert excinfo.value.key == key


def test_reprs_hide_every_credential() -> None:
    openstack = {"driver": "openstack", "auth_url": "http://127.0.0.1:5000/v3", "project_name": "p"}
    config = parse(
        {
            "gateway": {"redis_url": "redis://user:redis-pw@127.0.0.1:6379/0"},
            "backends": {"os": openstack},
            "tenants": {
                "t": {"regions": {"r": {"backend": "os", "username": "u", "password": "os-pw"}}},
            },
            "users": [{"access_key": "k", "secret": "user-secret", "tenant": "t"}],
            "identity": {"keystone": KEYSTONE},
        }
    )
    shown = repr(config)
    assert "user:***@127.0.0.1" in shown and "'password': '***'" in shown and "'username': 'u'" in shown
    for secret in ("redis-pw", "os-pw", "user-secret", "'pw'"):
        assert secret not in shown


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://default:pw@h:6380", "rediss://default:***@h:6380"),
        ("unix:///run/redis.sock?db=2&password=pw", "unix:///run/redis.sock?db=2&password=***"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
