"""DescribeInstances through the gateway's ``ec2`` backend against moto directly: same client code, same instances.

    python bench/bench_ec2_backend.py [--instances 50] [--rounds 30] [--workers 2]

Starts a real moto_server (tests/peers/moto_server.py), launches N instances in it, then a real
``cloudgate serve`` whose only backend is ``ec2`` on that moto (embedded Redis). One function,
``describe(client)`` (boto3 DescribeInstances, every page), is timed with a client on each endpoint:

- direct: moto itself, the floor any EC2 backend sits on;
- cold:   the gateway with its listing cache invalidated before each call (the backend asks moto; the
          instance-type catalogue stays in the worker, as it does in production);
- warm:   the gateway answering from its Redis cache.

Prints median milliseconds and the ratios cold/direct, warm/direct and cold/warm. Every process is stopped
at the end.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import redis  # noqa: E402
from gateway_process import GatewayProcess  # noqa: E402
from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer  # noqa: E402

from gateway.embedded_redis import EmbeddedRedis  # noqa: E402
from translator.store import Store  # noqa: E402

ACCOUNT = "bench/moto-1"
CONFIG = """
[gateway]
workers = {workers}
threads = 4
log_level = "warning"

[translator]
cache_ttl = 3600.0
transitional_cache_ttl = 3600.0

[backends.aws]
driver = "ec2"
endpoint_url = "{url}"
aws_region = "us-east-1"
instance_types = ["t3.micro", "t3.small", "m5.large"]

[tenants.bench]
account_id = "123456789012"
[tenants.bench.regions.moto-1]
backend = "aws"
zones = ["moto-1a", "moto-1b"]
zone_map = {{ "moto-1a" = "us-east-1a", "moto-1b" = "us-east-1b" }}
access_key_id = "{key}"
secret_access_key = "{secret}"

[[users]]
access_key = "bench"
secret = "bench-secret"
tenant = "bench"
role = "admin"
"""


def describe(client: Any) -> int:
    """The client code under test: every instance, every page. Returns how many it saw."""
    return sum(len(r["Instances"]) for page in client.get_paginator("describe_instances").paginate()
               for r in page["Reservations"])  # fmt: skip


def timed(call: Callable[[], Any], rounds: int, before: Callable[[], None] = lambda: None) -> float:
    """Median seconds of ``call`` over ``rounds`` (after three warm-ups); ``before`` runs untimed."""
    for _ in range(3):
        before()
        call()
    samples = []
    for _ in range(rounds):
        before()
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="cg-bench-ec2-") as tmp:
        work = Path(tmp)
        moto = MotoServer(work)
        gateway = None
        try:
            upstream = moto.client()
            image = moto.register_image(upstream, "bench-image")
            upstream.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=args.instances,
                                   MaxCount=args.instances)  # fmt: skip
            config = work / "gw.toml"
            config.write_text(CONFIG.format(workers=args.workers, url=moto.url, key=ACCESS_KEY, secret=SECRET_KEY))
            gateway = GatewayProcess(config, data_dir=work / "data", workers=args.workers)
            through = gateway.client("bench", "bench-secret", region="moto-1")
            store = Store(redis.Redis.from_url(EmbeddedRedis(work / "data").url))
            assert describe(upstream) == describe(through) == args.instances

            direct = timed(lambda: describe(upstream), args.rounds)
            cold = timed(lambda: describe(through), args.rounds, lambda: store.invalidate(ACCOUNT, ["machine"]))
            warm = timed(lambda: describe(through), args.rounds)
        finally:
            if gateway is not None:
                gateway.stop()
            moto.stop()

    print(f"DescribeInstances, {args.instances} instances, median of {args.rounds}, {args.workers} workers:")
    print(f"  moto direct        {direct * 1e3:8.2f} ms")
    print(f"  gateway cold cache {cold * 1e3:8.2f} ms   cold/direct = {cold / direct:5.2f}x")
    print(f"  gateway warm cache {warm * 1e3:8.2f} ms   warm/direct = {warm / direct:5.2f}x")
    print(f"  cold/warm = {cold / warm:5.2f}x")


if __name__ == "__main__":
    main()
