"""Redis topologies by config: Sentinel URLs and the ``[gateway.redis]`` table, and the mistakes an operator makes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gateway_process import write_config
from netutil import free_port

from gateway.config import ConfigError, load, parse, redact_url
from gateway.redis_sentinel import SentinelTarget, parse_url

BASE: dict[str, Any] = {
    "backends": {"sim": {"driver": "simulator"}},
    "tenants": {"t": {"regions": {"r": {"backend": "sim", "zones": ["r-a"]}}}},
}


def _gateway(**gateway: Any) -> dict[str, Any]:
    return {**BASE, "gateway": gateway}


def test_a_sentinel_url_names_sentinels_service_db_and_passwords() -> None:
    url = "redis+sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380,sentinel-c:26381/mymaster/3?sentinel_password=pw2"
    config = parse(_gateway(redis_url=url))
    assert config.gateway.redis_url == url
    target = parse_url(url)
    assert target.sentinels == (("10.0.0.1", 26379), ("::1", 26380), ("sentinel-c", 26381))
    assert (target.service, target.db, target.password, target.sentinel_password) == ("mymaster", 3, "s@cret", "pw2")
    assert parse_url(target.url()) == target
    assert parse_url("redis+sentinel://127.0.0.1:26379/mymaster").db == 0
    for shown in (repr(config.gateway), redact_url(url), repr(target)):
        assert "s@cret" not in shown and "s%40cret" not in shown and "pw2" not in shown


def test_the_redis_table_is_the_same_deployment_as_its_url() -> None:
    table = {"sentinels": ["127.0.0.1:26379", "127.0.0.1:26380"], "service": "cache-1", "db": 2, "password": "p w"}
    config = parse(_gateway(redis=table))
    target = parse_url(config.gateway.redis_url)
    assert target == SentinelTarget((("127.0.0.1", 26379), ("127.0.0.1", 26380)), "cache-1", 2, "p w")
    assert "p w" not in repr(config.gateway) and "p%20w" not in repr(config.gateway)


def test_the_sentinel_example_is_valid() -> None:
    config = load(Path(__file__).resolve().parents[2] / "conf" / "examples" / "sentinel.toml")
    target = parse_url(config.gateway.redis_url)
    assert (target.service, len(target.sentinels), config.gateway.redis_wait_replicas) == ("mymaster", 3, 1)


def test_wait_settings() -> None:
    gw = parse(BASE).gateway
    assert (gw.redis_wait_replicas, gw.redis_wait_timeout_ms) == (1, 100)
    gw = parse(_gateway(redis_wait_replicas=0, redis_wait_timeout_ms=50)).gateway
    assert (gw.redis_wait_replicas, gw.redis_wait_timeout_ms) == (0, 50)


@pytest.mark.parametrize(
    ("gateway", "key", "fragment"),
    [
        ({"redis_url": "redis+sentinel://127.0.0.1:26379"}, "gateway.redis_url", "names no service"),
        ({"redis_url": "redis+sentinel://127.0.0.1:26379/"}, "gateway.redis_url", "names no service"),
        ({"redis_url": "redis+sentinel:///mymaster"}, "gateway.redis_url", "names no sentinel"),
        ({"redis_url": "redis+sentinel://127.0.0.1/mymaster"}, "gateway.redis_url", "is not HOST:PORT"),
        ({"redis_url": "redis+sentinel://h:99999/mymaster"}, "gateway.redis_url", "no valid port"),
        ({"redis_url": "redis+sentinel://h:1,,h:2/mymaster"}, "gateway.redis_url", "is not HOST:PORT"),
        ({"redis_url": "redis+sentinel://h:1/mymaster/zero"}, "gateway.redis_url", "is not a number"),
        ({"redis_url": "redis+sentinel://h:1/mymaster/0/x"}, "gateway.redis_url", "too many path parts"),
        ({"redis_url": "redis+sentinel://h:1/my master"}, "gateway.redis_url", "service name"),
        ({"redis_url": "redis+sentinel://u:pw@h:1/mymaster"}, "gateway.redis_url", "not a user name"),
        ({"redis_url": "redis+sentinel://h:1/mymaster?colour=red"}, "gateway.redis_url", "unknown option 'colour'"),
        ({"redis_url": "sentinel://h:1/mymaster"}, "gateway.redis_url", "redis+sentinel://"),
        ({"redis": {"service": "m"}}, "gateway.redis.sentinels", "missing"),
        ({"redis": {"sentinels": ["h:1"]}}, "gateway.redis.service", "missing"),
        ({"redis": {"sentinels": [], "service": "m"}}, "gateway.redis.sentinels", "non-empty list"),
        ({"redis": {"sentinels": ["h"], "service": "m"}}, "gateway.redis.sentinels", "is not HOST:PORT"),
        ({"redis": {"sentinels": ["h:1"], "service": "m", "db": -1}}, "gateway.redis.db", "must not be negative"),
        ({"redis": {"sentinels": ["h:1"], "service": "a b"}}, "gateway.redis", "service name"),
        ({"redis": {"sentinels": ["h:1"], "service": "m", "master": "x"}}, "gateway.redis.master", "unknown setting"),
        ({"redis": "h:1"}, "gateway.redis", "must be a table"),
        ({"redis": {"sentinels": ["h:1"], "service": "m"}, "redis_url": "redis://h"}, "gateway.redis", "not both"),
        ({"redis_wait_replicas": -1}, "gateway.redis_wait_replicas", "must not be negative"),
        ({"redis_wait_timeout_ms": 0}, "gateway.redis_wait_timeout_ms", "greater than 0"),
    ],
)
def test_topology_mistakes_name_the_key(gateway: dict[str, Any], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse(_gateway(**gateway))
    assert excinfo.value.key == key
    assert fragment in excinfo.value.message


def test_a_bad_sentinel_url_in_the_environment_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDGATE_REDIS_URL", "redis+sentinel://:hush@h:1")
    with pytest.raises(ConfigError) as excinfo:
        parse(BASE)
    assert excinfo.value.key == "CLOUDGATE_REDIS_URL" and "names no service" in str(excinfo.value)
    assert "hush" not in str(excinfo.value)


def test_check_with_unreachable_sentinels_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"redis+sentinel://:hush@127.0.0.1:{free_port()},127.0.0.1:{free_port()}/mymaster"
    config = write_config(tmp_path / "gw.toml", url)
    command = [sys.executable, "-m", "gateway.cli", "check", "--config", str(config)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "hush" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("cloudgate: ")]
    assert "cannot reach Redis at redis+sentinel://:***@127.0.0.1:" in line and "mymaster" in line
