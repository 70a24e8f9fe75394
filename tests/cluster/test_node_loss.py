"""Node loss under load: three nodes behind nginx, one SIGKILLed half-way and restarted; no launch lost or doubled.

Eight client threads each launch their share of ``LAUNCHES`` single instances with distinct ClientTokens
through nginx, retrying a failed call with the same token (as an EC2 SDK does) on a 5xx or a broken
connection. A call that was cut off by the kill may or may not have made its instance; the retry must
find it rather than make a second one. Afterwards DescribeInstances through nginx lists exactly one
instance per token.

The clients are users of ``TENANTS`` tenants, two threads each (two clients still race on every account). One
account for all would test nothing more and cost minutes: the simulator reads every machine of an account on
each launch (its quota count and free addresses), so launches into one account take time growing with its
size, and 1,000 of them took ~50 s of load where four accounts of 250 take a fraction of that.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError
from cluster_nodes import Nginx, kill_node
from gateway_process import GatewayProcess, write_config
from netutil import free_port

LAUNCHES = 1000
THREADS = 8
TENANTS = 4
NODES = 3
#: attempts per launch (the first included); a launch out of attempts fails the test
ATTEMPTS = 30
RETRY_PAUSE = 0.2
#: a bound on the whole load, so a stuck cluster fails the test instead of hanging it
LOAD_BOUND = 240.0


@dataclass
class Tally:
    """What the clients saw, shared by their threads."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: int = 0
    retries: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    launched: dict[str, str] = field(default_factory=dict)  # ClientToken -> the instance id answered
    failures: list[str] = field(default_factory=list)


def _launch(ec2: Any, image: str, token: str, tally: Tally) -> None:
    for attempt in range(ATTEMPTS):
        if attempt:
            with tally.lock:
                tally.retries += 1
            time.sleep(RETRY_PAUSE)
        try:
            answer = ec2.run_instances(
                ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, ClientToken=token
            )
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
            with tally.lock:
                tally.statuses[status] += 1
            if status >= 500:
                continue
            with tally.lock:
                tally.failures.append(f"{token}: {exc}")
            return
        except BotoCoreError:  # connection refused, reset or timed out
            with tally.lock:
                tally.connection_errors += 1
            continue
        (instance,) = answer["Instances"]
        with tally.lock:
            tally.launched[token] = instance["InstanceId"]
            tally.done += 1
        return
    with tally.lock:
        tally.failures.append(f"{token}: out of attempts")


def _tenants(count: int) -> str:
    """Config tables of ``count`` tenants on the simulator, each with a user of its own (``load<n>``)."""
    return "".join(
        f"""
[tenants.load{n}]
account_id = "{300000000000 + n}"
[tenants.load{n}.regions.local-1]
backend = "sim"
zones = ["local-1a", "local-1b"]

[[users]]
access_key = "load{n}"
secret = "load{n}-secret"
tenant = "load{n}"
role = "member"
"""
        for n in range(count)
    )


def _client_thread(lb: Nginx, user: str, image: str, tokens: list[str], tally: Tally) -> None:
    ec2 = lb.client(user, f"{user}-secret", retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=60)
    for token in tokens:
        _launch(ec2, image, token, tally)


def _described(ec2: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for page in ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 500}):
        found += [i for r in page["Reservations"] for i in r["Instances"]]
    return found


def test_a_node_killed_under_load_loses_and_doubles_no_launch(
    tmp_path: Path, redis_server: Any, start_nginx: Any, nodes: list[GatewayProcess], figures: Any
) -> None:
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/0"
    client = redis_server.client()
    client.flushdb()
    client.close()
    ports = [free_port() for _ in range(NODES)]
    lb = start_nginx(ports)
    config = write_config(
        tmp_path / "gw.toml",
        redis_url,
        workers=1,
        backend_extra=f"max_machines = {LAUNCHES * 2}",
        gateway_extra=f'public_endpoint = "{lb.url}"\ntrusted_proxies = ["127.0.0.1"]',
    )
    config.write_text(config.read_text() + _tenants(TENANTS))
    with ThreadPoolExecutor(NODES) as pool:  # each waits for its node to answer: start them together
        futures = [pool.submit(GatewayProcess, config, workers=1, port=port) for port in ports]
    nodes += [f.result() for f in futures if f.exception() is None]  # the fixture stops every one started
    assert len(nodes) == NODES, [str(f.exception()) for f in futures if f.exception()]

    users = [f"load{n}" for n in range(TENANTS)]
    ec2s = {user: lb.client(user, f"{user}-secret", retries={"total_max_attempts": 5, "mode": "standard"})
            for user in users}  # fmt: skip
    ubuntu = [{"Name": "name", "Values": ["ubuntu-24.04"]}]
    images = {user: ec2.describe_images(Filters=ubuntu)["Images"][0]["ImageId"] for user, ec2 in ec2s.items()}
    tokens = [f"loss-{uuid.uuid4().hex}" for _ in range(LAUNCHES)]
    mine = {n: tokens[n::THREADS] for n in range(THREADS)}  # thread n is a client of tenant n % TENANTS
    tally = Tally()
    threads = [
        threading.Thread(
            target=_client_thread,
            args=(lb, users[n % TENANTS], images[users[n % TENANTS]], mine[n], tally),
            daemon=True,
        )
        for n in range(THREADS)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while tally.done < LAUNCHES // 2 and time.monotonic() - started < LOAD_BOUND and any(t.is_alive() for t in threads):
        time.sleep(0.02)
    victim = nodes[1]
    kill_node(victim)
    killed_at = tally.done
    nodes.append(GatewayProcess(config, workers=1, port=victim.port))
    restarted_at = tally.done
    for thread in threads:
        thread.join(max(0.0, LOAD_BOUND - (time.monotonic() - started)))
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), f"the load did not end within {LOAD_BOUND:.0f}s"

    # Each token's answer names one instance: one its tenant's listing lacks is lost; one listed that no answer
    # named (or listed twice) was made twice.
    ids = [i["InstanceId"] for ec2 in ec2s.values() for i in _described(ec2)]
    answered = set(tally.launched.values())
    lost = [t for t in tokens if tally.launched.get(t) not in ids]
    duplicated = len(ids) - len(set(ids)) + len(set(ids) - answered) + len(tally.launched) - len(answered)
    fivexx = sum(n for status, n in tally.statuses.items() if status >= 500)
    figures(
        f"node loss: launches={LAUNCHES} acknowledged={len(tally.launched)} described={len(ids)} "
        f"lost={len(lost)} duplicated={duplicated} retries={tally.retries} 5xx={fivexx} "
        f"statuses={dict(tally.statuses)} connection_errors={tally.connection_errors} "
        f"killed_after={killed_at} restarted_after={restarted_at} load_seconds={elapsed:.1f}"
    )
    assert tally.failures == [], tally.failures[:5]
    assert (len(lost), duplicated) == (0, 0)
    assert len(ids) == LAUNCHES


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])
