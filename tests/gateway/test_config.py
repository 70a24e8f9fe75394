"""The shipped configs are valid and mean what the README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, default_config_path, load, parse

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
