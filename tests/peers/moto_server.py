"""A real ``moto_server`` (moto's EC2 over HTTP) on a free loopback port, for the EC2 backend's tests and bench.

moto is told to check what AWS checks and by default does not: AMI ids, instance types and key names on
RunInstances. Its 1,177 built-in AMIs are not loaded: moto ignores ``OwnerIds`` on DescribeSnapshots (AWS
does not) and would list one snapshot per built-in AMI as the account's own; tests register their images.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from netutil import free_port

#: moto settings (moto/settings.py) that make it refuse what AWS refuses.
MOTO_ENV = {
    "MOTO_ENABLE_AMI_VALIDATION": "true",
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
    "MOTO_ENABLE_KEYPAIR_VALIDATION": "true",
    "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
}
START_TIMEOUT = 60.0
#: Credentials moto accepts (it checks none unless told to).
ACCESS_KEY = "AKIAMOTOTESTING00001"
SECRET_KEY = "moto-secret"


class MotoServer:
    """Starts ``moto_server -H 127.0.0.1 -p PORT``; ``stop()`` (always called by the fixture) ends it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"moto.{self.port}.log"
        self._log_file = self.log.open("wb")
        env = {**os.environ, **MOTO_ENV}
        for leaked in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.pop(leaked, None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto_server did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def reset(self) -> None:
        """Forget every resource (moto's own reset endpoint): each test starts from a fresh account."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()

    def client(self, region: str = "us-east-1", **config: Any) -> Any:
        """A boto3 EC2 client on this server, botocore retries off."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "ec2",
            endpoint_url=self.url,
            region_name=region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, **config),
        )

    def register_image(self, client: Any, name: str, root_device: str = "/dev/sda1", size_gb: int = 8) -> str:
        """An AMI of the account's own (moto's built-in AMIs are off, see the module docstring)."""
        return client.register_image(
            Name=name,
            Description=f"{name} (test image)",
            Architecture="x86_64",
            RootDeviceName=root_device,
            VirtualizationType="hvm",
            BlockDeviceMappings=[{"DeviceName": root_device, "Ebs": {"VolumeSize": size_gb, "VolumeType": "gp3"}}],
        )["ImageId"]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        self._log_file.close()
