"""``cloudgate check`` against the OpenNebula and CloudStack simulators, through the CLI as an operator runs it:
a good account passes, and each thing that can be wrong with a real endpoint (unreachable, bad credentials, no
flavor templates / a zone the cloud does not have) fails on a line naming the account and the cause."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from netutil import free_port
from peers.cloudstack import CloudStackSimulator
from peers.opennebula import OpenNebulaSimulator

REPO = Path(__file__).resolve().parents[2]

HEAD = """
[translator]
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05

[[users]]
access_key = "alice"
secret = "alice-secret"
tenant = "good"
role = "admin"
"""


@dataclass(frozen=True)
class Cloud:
    """One simulated cloud: its backend table, and the region options of each account the tests configure."""

    driver: str
    backend: str
    accounts: dict[str, str]  #: tenant -> its region table's body (zones and credentials)
    causes: dict[str, str]  #: failing tenant -> what its FAIL line must say
    secrets: tuple[str, ...]  #: never printed, nor what would replay a call (a signed URL)


def config_text(cloud: Cloud, tenants: list[str]) -> str:
    parts = [HEAD, cloud.backend]
    for number, tenant in enumerate(tenants):
        parts.append(f'[tenants.{tenant}]\naccount_id = "{100000000000 + number}"\n')
        parts.append(f"[tenants.{tenant}.regions.r-1]\n{cloud.accounts[tenant]}\n")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def opennebula() -> Iterator[Cloud]:
    sim = OpenNebulaSimulator(admin_password="one-admin")
    sim.add_user("alice", "alice-pw")
    sim.add_image("debian-12", size_mb=2048)
    sim.add_template("gw-small", 'CPU="1"\nMEMORY="512"', GW_FLAVOR="small")
    unreachable = f"http://127.0.0.1:{free_port()}/RPC2"
    region = 'backend = "one"\nzones = ["default"]\n'
    try:
        yield Cloud(
            driver="opennebula",
            backend=f'[backends.one]\ndriver = "opennebula"\nendpoint = "{sim.url}"\ntimeout = 5\n',
            accounts={
                "good": region + 'session = "alice:alice-pw"',
                "badcreds": region + 'session = "alice:wrong"',
                "noflavors": region + 'session = "alice:alice-pw"\nflavor_attribute = "GW_SIZE"',  # no template has it
                "unreachable": region + f'session = "alice:alice-pw"\nendpoint = "{unreachable}"',
            },
            causes={
                "badcreds": "User couldn't be authenticated",
                "noflavors": "no VM template visible to this user carries GW_SIZE",
                "unreachable": "Connection refused",
            },
            secrets=("alice-pw",),
        )
    finally:
        sim.stop()


@pytest.fixture(scope="module")
def cloudstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    sim = CloudStackSimulator(tmp_path_factory.mktemp("cloudstack"))
    key, secret = sim.keys("alice")
    unreachable = f"http://127.0.0.1:{free_port()}/client/api"
    keys = f'api_key = "{key}"\nsecret_key = "{secret}"'
    try:
        yield Cloud(
            driver="cloudstack",
            backend=f'[backends.cs]\ndriver = "cloudstack"\nurl = "{sim.endpoint}"\ntimeout = 5\n',
            accounts={
                "good": f'backend = "cs"\nzones = ["zone1"]\n{keys}',
                "badcreds": f'backend = "cs"\nzones = ["zone1"]\napi_key = "{key}"\nsecret_key = "wrong"',
                "nozone": f'backend = "cs"\nzones = ["zone1", "zone9"]\n{keys}',
                "unreachable": f'backend = "cs"\nzones = ["zone1"]\n{keys}\nurl = "{unreachable}"',
            },
            causes={
                "badcreds": "CloudStack refused the account's keys",
                "nozone": "CloudStack has no zone named zone9",
                "unreachable": "CloudStack is unreachable",
            },
            secrets=(secret, "signature="),
        )
    finally:
        sim.stop()


@pytest.fixture(params=["opennebula", "cloudstack"])
def cloud(request: pytest.FixtureRequest) -> Cloud:
    return request.getfixturevalue(request.param)


def cloudgate_check(config: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(config), "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_check_passes_a_good_account(cloud: Cloud, tmp_path: Path) -> None:
    config = tmp_path / "gw.toml"
    config.write_text(config_text(cloud, ["good"]))
    checked = cloudgate_check(config, tmp_path / "data")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"ok    good/r-1 ({cloud.driver})" in checked.stdout.splitlines()


def test_check_names_the_account_and_the_cause(cloud: Cloud, tmp_path: Path) -> None:
    """Every failing account is reported (one bad account does not hide the next), each with its cause."""
    config = tmp_path / "gw.toml"
    config.write_text(config_text(cloud, ["good", *cloud.causes]))
    checked = cloudgate_check(config, tmp_path / "data")
    assert checked.returncode == 2, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    assert f"ok    good/r-1 ({cloud.driver})" in lines
    for tenant, cause in cloud.causes.items():
        (line,) = [x for x in lines if x.startswith(f"FAIL  {tenant}/r-1 ({cloud.driver}): ")]
        assert cause in line, line
    assert f"{len(cloud.causes)} backend account(s)" in checked.stderr
    assert "Traceback" not in checked.stderr
    assert not [s for s in cloud.secrets if s in checked.stdout + checked.stderr]
