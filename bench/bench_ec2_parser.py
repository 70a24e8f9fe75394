"""Reading one DescribeInstances answer: botocore's EC2QueryParser against backends.ec2.response_parser.

    python bench/bench_ec2_parser.py [--instances 50] [--rounds 50]

Starts a real moto_server (tests/peers/moto_server.py), launches N instances in it, keeps the raw bytes of
its DescribeInstances answer (about 3 KB an instance), stops moto, then times parsing those bytes in process:
botocore's parser (as every stock client does) and ours (as the EC2 backend's clients do, made by its
factory). Both read the same bytes into the same dict (checked before timing). Prints median milliseconds
and the ratio.
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

from botocore.parsers import create_parser  # noqa: E402
from peers.moto_server import MotoServer  # noqa: E402

from backends.ec2.response_parser import ResponseParserFactory  # noqa: E402


def describe_instances_answer(instances: int) -> tuple[Any, bytes]:
    """The operation model and moto's raw DescribeInstances answer for ``instances`` running instances."""
    with tempfile.TemporaryDirectory() as tmp:
        moto = MotoServer(Path(tmp))
        try:
            ec2 = moto.client()
            image = moto.register_image(ec2, "bench-image")
            ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=instances, MaxCount=instances)
            seen: list[tuple[Any, bytes]] = []
            ec2.meta.events.register(
                "after-call.ec2.DescribeInstances",
                lambda http_response, model, **_: seen.append((model, http_response.content)),
            )
            ec2.describe_instances()
        finally:
            moto.stop()
    return seen[-1]


def median_ms(call: Callable[[], Any], rounds: int) -> float:
    call()  # the first call builds our reader; it is not what a worker pays per request
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    args.add_argument("--instances", type=int, default=50)
    args.add_argument("--rounds", type=int, default=50)
    options = args.parse_args()

    model, body = describe_instances_answer(options.instances)
    response = {"body": body, "headers": {}, "status_code": 200}
    factory = ResponseParserFactory()

    def botocore_parse() -> dict[str, Any]:
        parsed: dict[str, Any] = create_parser("ec2").parse(response, model.output_shape)
        return parsed

    def our_parse() -> dict[str, Any]:
        parsed: dict[str, Any] = factory.create_parser("ec2").parse(response, model.output_shape)
        return parsed

    assert our_parse() == botocore_parse(), "the two parsers disagree"
    theirs = median_ms(botocore_parse, options.rounds)
    ours = median_ms(our_parse, options.rounds)
    print(f"DescribeInstances of {options.instances} instances, {len(body) / 1024:.0f} KB, median of {options.rounds}")
    print(f"{'botocore EC2QueryParser':<28}{theirs:8.2f} ms")
    print(f"{'backends.ec2 parser':<28}{ours:8.2f} ms")
    print(f"{'ratio botocore / ours':<28}{theirs / ours:8.1f} x")


if __name__ == "__main__":
    main()
