"""RunInstances retried with its ClientToken through a real gateway (two workers, real Redis): concurrent
repeats, answers lost after the launch, and a worker killed mid-launch all end with exactly one launch.

The simulator is configured (not patched) to be slow (``faults.create_delay``) or to lose answers after
launching (``faults.timeout_after_create``), each in a region of its own.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from ec2util import error_of, unique
from gateway_process import GatewayProcess

#: Two simulators in one gateway; a pending ClientToken lapses one second after its worker's last heartbeat.
CONFIG = """
[gateway]
workers = 2
threads = 4
redis_url = "{redis_url}"

[translator]
cache_ttl = 0.0
transitional_cache_ttl = 0.0
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05
idempotency_lease = 1.0

[backends.slow]
driver = "simulator"
boot_delay = 0.2
faults = {{ create_delay = 1.5 }}

[backends.lossy]
driver = "simulator"
boot_delay = 0.2
faults = {{ timeout_after_create = 3 }}

[tenants.demo]
account_id = "111111111111"
[tenants.demo.regions.slow-1]
backend = "slow"
zones = ["slow-1a"]
[tenants.demo.regions.lossy-1]
backend = "lossy"
zones = ["lossy-1a"]

[[users]]
access_key = "demo"
secret = "demo-secret"
tenant = "demo"
role = "admin"
"""
#: Bounds of every wait here (the waits themselves end as soon as their condition holds).
PATIENCE = 20.0


@pytest.fixture(scope="module")
def store(redis_server: Any) -> Iterator[redis.Redis]:
    """The gateway's Redis database (emptied first), where the test reads who holds a token."""
    client = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/13")
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(scope="module")
def gateway(store: redis.Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    kwargs = store.connection_pool.connection_kwargs
    path = tmp_path_factory.mktemp("retries") / "gw.toml"
    path.write_text(CONFIG.format(redis_url=f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"))
    gw = GatewayProcess(path)
    yield gw
    gw.stop()


def launch_args(ec2: Any, tag: str, **extra: Any) -> dict[str, Any]:
    (image,) = ec2.describe_images(Filters=[{"Name": "name", "Values": ["ubuntu-24.04"]}])["Images"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "run", "Value": tag}]}]
    return {"ImageId": image["ImageId"], "InstanceType": "t3.micro", "MinCount": 1, "MaxCount": 1,
            "TagSpecifications": tags, **extra}  # fmt: skip


def tagged(ec2: Any, tag: str) -> list[str]:
    found = ec2.describe_instances(Filters=[{"Name": "tag:run", "Values": [tag]}])["Reservations"]
    return [i["InstanceId"] for r in found for i in r["Instances"]]


def every(ec2: Any) -> set[str]:
    return {i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]}


def test_one_client_token_from_twenty_threads_is_one_launch(gateway: GatewayProcess) -> None:
    ec2 = gateway.client(region="slow-1")
    tag, token = unique("conc"), unique("token")
    args = launch_args(ec2, tag, ClientToken=token)

    def run(_: int) -> str:
        client = gateway.client(region="slow-1", read_timeout=PATIENCE + 10)
        try:
            return str(client.run_instances(**args)["Instances"][0]["InstanceId"])
        except ClientError as exc:  # still in progress after the gateway's bounded wait: retry later
            return str(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(run, range(20)))
    launched = tagged(ec2, tag)
    assert len(launched) == 1, answers
    assert set(answers) <= {launched[0], "Unavailable"} and launched[0] in answers, answers
    with pytest.raises(ClientError) as mismatch:
        ec2.run_instances(**{**args, "InstanceType": "t3.small"})
    assert error_of(mismatch) == ("IdempotentParameterMismatch", 400)
    assert ec2.run_instances(**args)["Instances"][0]["InstanceId"] == launched[0]


def test_a_launch_whose_answers_are_lost_is_one_launch_after_botocores_retry(gateway: GatewayProcess) -> None:
    """The first three answers of the region are lost after the launch: the gateway resends once (its own key
    finds the launch), answers 503, botocore retries with the ClientToken it generated, and gets that launch."""
    ec2 = boto3.client(
        "ec2",
        endpoint_url=gateway.url,
        region_name="lossy-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo-secret",
        config=Config(retries={"total_max_attempts": 4, "mode": "standard"}),
    )
    tag, before = unique("lost"), every(ec2)
    answer = ec2.run_instances(**launch_args(ec2, tag))  # no ClientToken given: botocore makes one
    assert answer["ResponseMetadata"]["RetryAttempts"] >= 1, "the gateway must have answered 503 first"
    launched = answer["Instances"][0]["InstanceId"]
    assert every(ec2) == before | {launched}, "only the first attempt launched (the others found it)"
    assert tagged(ec2, tag) == [launched]


def test_a_worker_killed_mid_launch_leaves_a_token_a_retry_takes_over(
    gateway: GatewayProcess, store: redis.Redis
) -> None:
    """The launch is made, its worker is SIGKILLed while the answer is held back; the retry with the token
    waits out the dead worker's lease, takes the token over and finds the launch through the backend's key."""
    ec2 = gateway.client(region="slow-1")
    tag, token = unique("kill"), unique("token")
    args = launch_args(ec2, tag, ClientToken=token)
    outcome: list[Any] = []

    def first() -> None:
        try:
            outcome.append(gateway.client(region="slow-1", read_timeout=PATIENCE).run_instances(**args))
        except (BotoCoreError, ClientError) as exc:
            outcome.append(exc)

    before = every(ec2)
    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + PATIENCE
    # Held: the token claimed, the machine made (untagged yet: the gateway tags it once the backend answers).
    while not (record := store.get(f"cg:idem:demo/slow-1:{token}")) or len(every(ec2)) == len(before):
        assert time.monotonic() < deadline, "the launch never started"
        time.sleep(0.05)
    worker = int(json.loads(record)["worker"].rsplit("/", 1)[1])  # host/pid, as X-Served-By names it
    assert worker != gateway.proc.pid
    os.kill(worker, signal.SIGKILL)
    thread.join(PATIENCE)
    assert not thread.is_alive() and isinstance(outcome[0], Exception), "the killed worker must not have answered"

    retry = gateway.client(region="slow-1", read_timeout=PATIENCE)
    again = retry.run_instances(**args)["Instances"][0]["InstanceId"]
    assert tagged(ec2, tag) == [again]
    assert every(ec2) == before | {again}
