"""The EC2 backend's calls through its botocore client against the same calls made lean (lean_call.py).

    python bench/bench_ec2_lean_call.py [--rounds 200]

Starts a real moto_server, launches a few instances, then makes each call both ways in turns on one thread:
DescribeInstances of one instance by id, and TerminateInstances of one (launched untimed before each pair).
Prints the median wall and CPU milliseconds of each way (CPU: this thread's, so moto's own time is left out)
and what the lean way saves. Both ways answer the same (checked once before timing).
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

from peers.moto_server import ACCESS_KEY, SECRET_KEY, MotoServer  # noqa: E402

from backends.ec2.lean_call import LeanCaller  # noqa: E402
from backends.ec2.settings import credentials_of, make_client, parse_settings  # noqa: E402


def timed(call: Callable[..., Any], *args: Any) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.thread_time()
    call(*args)
    return time.perf_counter() - started, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="timed calls each way, per operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        moto = MotoServer(Path(tmp))
        try:
            ec2 = moto.client()
            image = moto.register_image(ec2, "bench-image")
            ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]]
            options = {"endpoint_url": moto.url, "aws_region": "us-east-1", "access_key_id": ACCESS_KEY}
            settings = parse_settings(options | {"secret_access_key": SECRET_KEY}, "bench-1", ["bench-1a"])
            client = make_client(settings)
            lean = LeanCaller.of(client, credentials_of(settings))
            if lean is None:
                sys.exit("botocore's client no longer has the parts lean calls use")

            def strip(answer: dict[str, Any]) -> dict[str, Any]:
                return {k: v for k, v in answer.items() if k != "ResponseMetadata"}

            one = {"InstanceIds": [ids[0]]}
            if strip(client.describe_instances(**one)) != strip(lean.call("describe_instances", one)):
                sys.exit("the two ways answer differently")

            samples: dict[str, list[tuple[float, float]]] = {}
            for _ in range(args.rounds):
                samples.setdefault("read by id, client", []).append(timed(lambda: client.describe_instances(**one)))
                samples.setdefault("read by id, lean", []).append(timed(lambda: lean.call("describe_instances", one)))
                made = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"]]
                samples.setdefault("terminate, client", []).append(
                    timed(lambda i: client.terminate_instances(InstanceIds=[i]), made[0])
                )
                samples.setdefault("terminate, lean", []).append(
                    timed(lambda i: lean.call("terminate_instances", {"InstanceIds": [i]}), made[1])
                )
        finally:
            moto.stop()
    medians = {
        label: (statistics.median(w for w, _ in s) * 1e3, statistics.median(c for _, c in s) * 1e3)
        for label, s in samples.items()
    }
    print(f"{'call':<24} {'wall ms':>9} {'CPU ms':>8}")
    for label, (wall, cpu) in medians.items():
        print(f"{label:<24} {wall:9.2f} {cpu:8.2f}")
    for what in ("read by id", "terminate"):
        client_cpu, lean_cpu = medians[f"{what}, client"][1], medians[f"{what}, lean"][1]
        print(f"{what}: lean saves {client_cpu - lean_cpu:.2f} ms of CPU a call ({lean_cpu / client_cpu:.2f} of it)")


if __name__ == "__main__":
    main()
