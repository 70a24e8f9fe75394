"""The ``cloudgate`` command as an operator runs it: one clear line and exit 2 on every mistake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from gateway_process import write_config
from netutil import free_port


def cloudgate(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True, timeout=timeout)


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("cloudgate: ")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("[gateway\nbind = 1", ("not valid TOML",)),
        ('[gateway]\nworkers = "two"\n', ("gateway.workers", "must be int")),
        ("[gateway]\nspeed = 3\n", ("gateway.speed", "unknown setting")),
        ('[backends.sim]\ndriver = "simulator"\n', ("tenants", "at least one tenant")),
        (
            '[backends.x]\ndriver = "nosuchcloud"\n[tenants.t.regions.r1]\nbackend = "x"\n',
            ("backends.x.driver", "unknown backend driver 'nosuchcloud'"),
        ),
        (
            '[backends.sim]\ndriver = "simulator"\n[tenants.t.regions.r1]\nbackend = "nope"\n',
            ("tenants.t.regions.r1.backend", "unknown backend 'nope'"),
        ),
        (
            '[backends.sim]\ndriver = "simulator"\nboot_delay = -1\n[tenants.t.regions.r1]\nbackend = "sim"\n',
            ("backends.sim", "boot_delay"),
        ),
    ],
    ids=["toml", "type", "unknown-key", "no-tenant", "unknown-driver", "unknown-backend", "driver-option"],
)
def test_bad_config_is_one_line_and_exit_2(tmp_path: Path, text: str, fragments: tuple[str, ...]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = cloudgate("check", "--config", str(path))
    _assert_one_line_error(result, str(path), *fragments)


def test_missing_config_file(tmp_path: Path) -> None:
    _assert_one_line_error(cloudgate("serve", "--config", str(tmp_path / "none.toml")), "file not found")


def test_unreachable_redis_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "gw.toml", f"redis://127.0.0.1:{free_port()}/0")
    for command in ("serve", "check"):
        _assert_one_line_error(cloudgate(command, "--config", str(config)), "cannot reach Redis")


def test_check_reaches_redis_and_backends(tmp_path: Path, redis_server, redis_client) -> None:
    result = cloudgate("check", "--config", str(write_config(tmp_path / "gw.toml", redis_server.url)))
    assert result.returncode == 0, result.stderr
    assert "ok    demo/local-1 (simulator)" in result.stdout
    assert "ok    redis" in result.stdout


def test_check_reports_a_backend_that_is_down(tmp_path: Path, redis_server, redis_client) -> None:
    config = write_config(tmp_path / "gw.toml", redis_server.url, backend_extra="faults = { down = true }")
    result = cloudgate("check", "--config", str(config))
    _assert_one_line_error(result, "unreachable")
    assert "FAIL  demo/local-1" in result.stdout


def test_check_on_the_embedded_default(tmp_path: Path) -> None:
    """No config at all: the shipped default, with an embedded Redis started and stopped for the check."""
    data = tmp_path / "state"
    result = cloudgate("check", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert "demo credentials" in result.stderr
    assert not (data / "redis.sock").exists()


def test_users_add_list_remove(tmp_path: Path, redis_server, redis_client, gateways) -> None:
    config = write_config(tmp_path / "gw.toml", redis_server.url)
    added = cloudgate("users", "--config", str(config), "add", "--tenant", "demo", "--role", "member")
    assert added.returncode == 0, added.stderr
    fields = dict(line.split("=", 1) for line in added.stdout.splitlines())
    key, secret = fields["access_key"], fields["secret"]
    assert secret not in added.stderr
    listed = cloudgate("users", "--config", str(config), "list")
    assert key in listed.stdout and secret not in listed.stdout

    gw = gateways(config)
    assert gw.client(key, secret).describe_regions()["Regions"]

    assert cloudgate("users", "--config", str(config), "remove", key).returncode == 0
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as excinfo:
        gw.client(key, secret).describe_regions()
    assert excinfo.value.response["Error"]["Code"] == "AuthFailure"
    _assert_one_line_error(cloudgate("users", "--config", str(config), "remove", key), "no user")
    _assert_one_line_error(cloudgate("users", "--config", str(config), "add", "--tenant", "nosuch"), "unknown tenant")
