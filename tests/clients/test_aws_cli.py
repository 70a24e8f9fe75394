"""The ``aws`` command line (awscli v1) as a subprocess against a real gateway, answers read as JSON.

The CLI runs with its own credentials and region from the environment and empty config/credentials
files, so nothing from the machine's own AWS setup leaks in. Every assertion is about what EC2 documents
for the command, read back from the CLI's JSON output.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ec2util import unique
from gateway_process import GatewayProcess

AWS = [sys.executable, "-m", "awscli"]
AMI_ID = re.compile(r"^ami-[0-9a-f]{17}$")
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{17}$")
LIVE = "Name=instance-state-name,Values=pending,running"


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout) if self.stdout.strip() else None


class AwsCli:
    """Runs ``aws ec2 ...`` against one gateway with a clean environment."""

    def __init__(self, gateway: GatewayProcess, home: Path) -> None:
        self.gateway = gateway
        (home / "config").write_text("")
        (home / "credentials").write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            HOME=str(home),
            AWS_CONFIG_FILE=str(home / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(home / "credentials"),
            AWS_DEFAULT_REGION="local-1",
            AWS_MAX_ATTEMPTS="1",
            AWS_RETRY_MODE="standard",
            AWS_PAGER="",
        )
        self.env = env

    def run(self, *args: str, key: str = "demo", secret: str = "demo-secret") -> CliResult:
        env = {**self.env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
        command = [*AWS, "ec2", *args, "--endpoint-url", self.gateway.url, "--output", "json"]
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    def __call__(self, *args: str, **kw: str) -> Any:
        """Run a command that must succeed; its parsed JSON output."""
        result = self.run(*args, **kw)
        assert result.returncode == 0, f"aws ec2 {' '.join(args)} failed ({result.returncode}): {result.stderr}"
        return result.json()

    def error_code(self, *args: str, **kw: str) -> str:
        """Run a command that must fail with an EC2 error; the error code the CLI reports."""
        result = self.run(*args, **kw)
        assert result.returncode != 0, f"aws ec2 {' '.join(args)} unexpectedly succeeded: {result.stdout}"
        match = re.search(r"An error occurred \(([^)]+)\)", result.stderr)
        assert match, f"no EC2 error in the CLI's stderr: {result.stderr}"
        return match.group(1)


@pytest.fixture(scope="module")
def aws(gateway: GatewayProcess, tmp_path_factory: pytest.TempPathFactory) -> AwsCli:
    return AwsCli(gateway, tmp_path_factory.mktemp("awscli-home"))


@pytest.fixture(scope="module")
def ubuntu(aws: AwsCli) -> str:
    """The ImageId of the ``ubuntu-24.04`` image, found by name in the unfiltered listing."""
    images = aws("describe-images")["Images"]
    return next(i["ImageId"] for i in images if i["Name"] == "ubuntu-24.04")


def _poll(check: Callable[[], bool], attempts: int = 30, delay: float = 1.0) -> bool:
    for _ in range(attempts):
        if check():
            return True
        time.sleep(delay)
    return False


def _run(aws: AwsCli, image: str, name: str, count: int) -> list[dict[str, Any]]:
    spec = f"ResourceType=instance,Tags=[{{Key=Name,Value={name}}},{{Key=suite,Value=clients}}]"
    out = aws(
        "run-instances",
        "--image-id", image,
        "--instance-type", "t3.micro",
        "--count", str(count),
        "--tag-specifications", spec,
    )  # fmt: skip
    return out["Instances"]


def _live_ids(aws: AwsCli, name: str, *extra: str) -> list[str]:
    ids = aws(
        "describe-instances",
        "--filters", f"Name=tag:Name,Values={name}", LIVE,
        "--query", "Reservations[].Instances[].InstanceId",
        *extra,
    )  # fmt: skip
    return sorted(ids)


def test_describe_regions_lists_the_configured_region(aws: AwsCli) -> None:
    regions = aws("describe-regions")["Regions"]
    assert "local-1" in [r["RegionName"] for r in regions]
    only = aws("describe-regions", "--region-names", "local-1")["Regions"]
    assert [r["RegionName"] for r in only] == ["local-1"]


def test_describe_regions_unknown_name_is_an_error(aws: AwsCli) -> None:
    # EC2 answers an unknown RegionNames entry with InvalidParameterValue.
    assert aws.error_code("describe-regions", "--region-names", "nowhere-9") == "InvalidParameterValue"


def test_describe_availability_zones_lists_the_zones(aws: AwsCli) -> None:
    zones = aws("describe-availability-zones")["AvailabilityZones"]
    assert sorted(z["ZoneName"] for z in zones) == ["local-1a", "local-1b"]
    assert {z["RegionName"] for z in zones} == {"local-1"}
    assert {z["State"] for z in zones} == {"available"}


def test_describe_images_lists_the_catalogue(aws: AwsCli) -> None:
    images = aws("describe-images")["Images"]
    by_name = {i["Name"]: i for i in images}
    assert {"ubuntu-24.04", "debian-12"} <= set(by_name)
    for image in by_name.values():
        assert AMI_ID.match(image["ImageId"]), image["ImageId"]
        assert image["State"] == "available"
    ids = aws("describe-images", "--query", "Images[].ImageId")
    assert sorted(ids) == sorted(i["ImageId"] for i in images)


def test_describe_images_by_id(aws: AwsCli, ubuntu: str) -> None:
    images = aws("describe-images", "--image-ids", ubuntu)["Images"]
    assert [(i["ImageId"], i["Name"]) for i in images] == [(ubuntu, "ubuntu-24.04")]


def test_describe_images_filter_by_name(aws: AwsCli, ubuntu: str) -> None:
    # DescribeImages documents the `name` filter (the AMI name).
    images = aws("describe-images", "--filters", "Name=name,Values=ubuntu-24.04")["Images"]
    assert [i["ImageId"] for i in images] == [ubuntu]


def test_run_describe_terminate_instances(aws: AwsCli, ubuntu: str) -> None:
    name = unique("cli")
    launched = _run(aws, ubuntu, name, 2)
    ids = sorted(i["InstanceId"] for i in launched)
    assert len(ids) == 2 and all(INSTANCE_ID.match(i) for i in ids)
    for instance in launched:
        assert instance["ImageId"] == ubuntu
        assert instance["InstanceType"] == "t3.micro"
        assert instance["State"]["Name"] in ("pending", "running")
        assert {"Key": "Name", "Value": name} in instance["Tags"]
        assert {"Key": "suite", "Value": "clients"} in instance["Tags"]

    assert _live_ids(aws, name) == ids
    assert _live_ids(aws, unique("cli-nobody")) == []

    def running() -> bool:
        states = aws("describe-instances", "--instance-ids", *ids, "--query", "Reservations[].Instances[].State.Name")
        return states == ["running", "running"]

    assert _poll(running), "instances never reached running"
    running_ids = aws(
        "describe-instances",
        "--filters", f"Name=tag:Name,Values={name}", "Name=instance-state-name,Values=running",
        "--query", "Reservations[].Instances[].InstanceId",
    )  # fmt: skip
    assert sorted(running_ids) == ids

    changes = aws("terminate-instances", "--instance-ids", *ids)["TerminatingInstances"]
    assert sorted(c["InstanceId"] for c in changes) == ids
    for change in changes:
        assert change["PreviousState"]["Name"] == "running"
        assert change["CurrentState"]["Name"] in ("shutting-down", "terminated")
    assert _live_ids(aws, name) == []
    gone = aws("describe-instances", "--instance-ids", *ids, "--query", "Reservations[].Instances[].State.Name")
    assert set(gone) <= {"shutting-down", "terminated"} and len(gone) == 2


def test_describe_instances_pages_are_followed_by_the_cli(aws: AwsCli, ubuntu: str) -> None:
    """``--page-size 5`` sends MaxResults=5; the CLI follows NextToken and must see all 7 instances once."""
    name = unique("cli-page")
    ids = sorted(i["InstanceId"] for i in _run(aws, ubuntu, name, 7))
    try:
        listed = aws(
            "describe-instances",
            "--filters", f"Name=tag:Name,Values={name}",
            "--page-size", "5",
            "--query", "Reservations[].Instances[].InstanceId",
        )  # fmt: skip
        assert sorted(listed) == ids
    finally:
        aws("terminate-instances", "--instance-ids", *ids)


def test_terminate_unknown_instance_is_not_found(aws: AwsCli) -> None:
    code = aws.error_code("terminate-instances", "--instance-ids", "i-0123456789abcdef0")
    assert code == "InvalidInstanceID.NotFound"
    assert aws.error_code("terminate-instances", "--instance-ids", "i-nothex") == "InvalidInstanceID.Malformed"


def test_dry_run_and_reader_role(aws: AwsCli, ubuntu: str) -> None:
    name = unique("cli-dry")
    args = ("run-instances", "--image-id", ubuntu, "--instance-type", "t3.micro", "--count", "1")
    assert aws.error_code(*args, "--dry-run") == "DryRunOperation"
    assert aws.error_code(*args, "--dry-run", key="reader", secret="reader-secret") == "UnauthorizedOperation"
    spec = f"ResourceType=instance,Tags=[{{Key=Name,Value={name}}}]"
    code = aws.error_code(*args, "--tag-specifications", spec, key="reader", secret="reader-secret")
    assert code == "UnauthorizedOperation"
    assert _live_ids(aws, name) == []
    # The reader may still read.
    assert "local-1" in aws("describe-regions", "--query", "Regions[].RegionName", key="reader", secret="reader-secret")


def test_wrong_secret_is_auth_failure(aws: AwsCli) -> None:
    assert aws.error_code("describe-regions", secret="not-the-secret") == "AuthFailure"


def test_key_pair_lifecycle(aws: AwsCli) -> None:
    name = unique("cli-key")
    created = aws("create-key-pair", "--key-name", name)
    assert created["KeyName"] == name
    assert created["KeyMaterial"].startswith("-----BEGIN")
    assert created["KeyPairId"].startswith("key-")
    listed = aws("describe-key-pairs", "--key-names", name)["KeyPairs"]
    assert [(k["KeyName"], k["KeyFingerprint"]) for k in listed] == [(name, created["KeyFingerprint"])]
    assert aws.error_code("create-key-pair", "--key-name", name) == "InvalidKeyPair.Duplicate"
    aws("delete-key-pair", "--key-name", name)
    assert aws.error_code("describe-key-pairs", "--key-names", name) == "InvalidKeyPair.NotFound"
