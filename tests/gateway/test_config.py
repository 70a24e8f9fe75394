"""The shipped configs are valid and mean what the README says."""

from __future__ import annotations

from pathlib import Path

from gateway.config import default_config_path, load

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
