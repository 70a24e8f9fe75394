"""Configured secrets never show: not in a repr of the loaded config, not in the log at DEBUG, not in /readyz.

The gateway runs at ``log_level = "DEBUG"`` with every kind of secret configured (a Redis password, user
secrets, Keystone's service password, EC2 and OpenStack account credentials) and serves requests that
succeed and requests that fail (wrong signatures, backends that cannot be reached); then the whole log,
the reprs and the readiness answer are searched for each secret value.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from botocore.exceptions import ClientError
from gateway_process import GatewayProcess
from netutil import free_port
from redis_process import RedisProcess

from backends.ec2.settings import parse_settings
from backends.openstack.options import parse as parse_options
from gateway.config import load
from translator.backend import AccountConfig

SECRETS = {
    "redis": "redis-pw-5d1c9e",
    "demo": "user-secret-8f2a71",
    "keystone": "keystone-service-pw-33b0",
    "ec2_secret": "ec2-secret-access-key-90ad",
    "ec2_session": "ec2-session-token-71c4",
    "os_password": "openstack-password-4e6f",
    "os_app_secret": "openstack-app-cred-secret-c2d8",
}


@pytest.fixture
def password_redis(tmp_path: Path) -> Iterator[str]:
    """A redis-server of its own that wants a password (the shared one has none)."""
    server = RedisProcess(tmp_path / "redis", "--appendonly", "no", password=SECRETS["redis"])
    yield server.url
    server.stop()


def _config(path: Path, redis_url: str) -> Path:
    closed = f"http://127.0.0.1:{free_port()}"  # nobody listens: every call to these backends fails
    path.write_text(f"""
[gateway]
workers = 1
threads = 4
redis_url = "{redis_url}"
log_level = "DEBUG"

[translator]
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.02

[backends.sim]
driver = "simulator"
boot_delay = 0.1

[backends.aws]
driver = "ec2"
endpoint_url = "{closed}"
connect_timeout = 1
timeout = 1

[backends.os]
driver = "openstack"
auth_url = "{closed}/v3"
timeout = 1

[tenants.demo]
account_id = "111111111111"
[tenants.demo.regions.local-1]
backend = "sim"
[tenants.demo.regions.aws-1]
backend = "aws"
access_key_id = "AKIAEXAMPLEEXAMPLE00"
secret_access_key = "{SECRETS["ec2_secret"]}"
session_token = "{SECRETS["ec2_session"]}"
[tenants.demo.regions.os-1]
backend = "os"
username = "gw"
password = "{SECRETS["os_password"]}"
project_name = "demo"
[tenants.demo.regions.os-2]
backend = "os"
application_credential_id = "app-cred-1"
application_credential_secret = "{SECRETS["os_app_secret"]}"

[identity.keystone]
auth_url = "{closed}/v3"
username = "gateway"
password = "{SECRETS["keystone"]}"
project_name = "service"

[[users]]
access_key = "demo"
secret = "{SECRETS["demo"]}"
tenant = "demo"
role = "admin"
""")
    return path


def _parsed_options(account: AccountConfig) -> object:
    if account.driver == "ec2":
        return parse_settings(account.options, account.region, account.zones)
    return parse_options(account.options)


def test_no_secret_in_reprs_logs_or_readiness(tmp_path: Path, password_redis: str, gateways) -> None:
    config_path = _config(tmp_path / "gw.toml", password_redis)
    config = load(config_path)
    shown = repr(config) + "".join(repr(a) for a in config.accounts.values()) + repr(config.gateway)
    shown += "".join(repr(u) for u in config.users) + repr(config.keystone)
    # What each backend parses its account's options into (a backend object logs or raises with these).
    shown += "".join(repr(_parsed_options(a)) for a in config.accounts.values() if a.driver != "simulator")
    assert [name for name, value in SECRETS.items() if value in shown] == []

    gw: GatewayProcess = gateways(config_path, workers=1)
    demo = gw.client(secret=SECRETS["demo"])
    assert demo.describe_regions()["Regions"]
    assert "Reservations" in demo.describe_instances()
    for region in ("aws-1", "os-1", "os-2"):  # backends that cannot be reached
        with pytest.raises(ClientError) as excinfo:
            gw.client(secret=SECRETS["demo"], region=region).describe_instances()
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(ClientError):  # a wrong signature
        gw.client(secret="not-" + SECRETS["demo"]).describe_instances()

    ready = requests.get(f"{gw.url}/readyz", timeout=30)
    # One account of four still serves: ready, with the others named unavailable and nothing more.
    assert ready.status_code == 200
    body = ready.json()
    assert {k: body[k] for k in ("status", "checks")} == {
        "status": "degraded",
        "checks": {
            "redis": "ok",
            "backend:demo/local-1": "ok",
            "backend:demo/aws-1": "unavailable",
            "backend:demo/os-1": "unavailable",
            "backend:demo/os-2": "unavailable",
        },
    }
    assert set(body["breakers"]) <= {"demo/aws-1", "demo/os-1", "demo/os-2"}  # account keys only, no secret
    assert gw.stop() == 0
    log = gw.log.read_text(errors="replace")
    assert " DEBUG " in log, "the log must really be at DEBUG for this test to mean anything"
    assert [name for name, value in SECRETS.items() if value in log] == []
