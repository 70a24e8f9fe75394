"""How long the simulator backend takes to list an account of N machines (its Redis records, decoded).

    python bench/bench_simulator.py [--machines 1000] [--rounds 10]

The backend alone, no translator or cache: what a cold listing costs at the bottom. It was a test's
assertion once (1,000 machines under a second); a speed belongs here, where it is measured, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backends.simulator import SimulatorBackend
from backends.simulator.catalog import image_id
from gateway.embedded_redis import EmbeddedRedis
from translator.backend import AccountConfig, BackendServices
from translator.model import MachineSpec

#: What a listing of 1,000 machines may take (the test's limit it once was), scaled to N.
BUDGET_SECONDS = 1.0


def bench(client: redis.Redis, machines: int, rounds: int) -> None:
    account = AccountConfig(
        key="bench/local-1",
        tenant="bench",
        region="local-1",
        backend="sim",
        driver="simulator",
        zones=("local-1a",),
        options={"boot_delay": 0.0, "max_machines": machines},
    )
    backend = SimulatorBackend(account, BackendServices(client))
    backend.create_machines(MachineSpec(image_id=image_id("ubuntu-24.04"), flavor_id="t3.micro", count=machines))
    assert len(backend.list_machines()) == machines
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        backend.list_machines()
        samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    budget = BUDGET_SECONDS * machines / 1000
    verdict = "within" if median < budget else "OVER"
    print(f"simulator list_machines, {machines} machines: median {median * 1e3:8.2f} ms ({verdict} {budget:.2f} s)")
    backend.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as data:
        server = EmbeddedRedis(data)
        url = server.start()
        try:
            bench(redis.Redis.from_url(url), args.machines, args.rounds)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
