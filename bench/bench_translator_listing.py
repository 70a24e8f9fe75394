"""Benchmarks of the hot paths, each printed as a ratio against a baseline measured in the same run.

    python bench/bench_translator_listing.py [--machines 1000] [--rounds 30]

Translator dispatch: listing N simulator machines with a cold cache (the backend reads its Redis
records) and a warm one (one cached document), through the same Translator a worker uses.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from gateway.embedded_redis import EmbeddedRedis
from translator.model import MachineSpec, Principal


def _config(redis_url: str, machines: int):
    return parse(
        {
            "gateway": {"redis_url": redis_url},
            "translator": {"cache_ttl": 3600.0},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0, "max_machines": machines + 10}},
            "tenants": {"bench": {"regions": {"local-1": {"backend": "sim", "zones": ["local-1a"]}}}},
            "users": [{"access_key": "bench", "secret": "bench-secret", "tenant": "bench", "role": "admin"}],
        },
        "<bench>",
    )


def _timed(fn, rounds: int) -> float:
    """Median seconds of ``rounds`` calls (after one warm-up)."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_listing(redis_url: str, machines: int, rounds: int) -> None:
    runtime = build_runtime(_config(redis_url, machines), redis_url)
    seed_identity(runtime)
    translator = runtime.translator
    who = Principal(user="bench", tenant="bench", role="admin")
    images = translator.list(who, "image")
    flavors = translator.list(who, "flavor")
    remaining = machines
    while remaining:
        batch = min(100, remaining)
        translator.create_machines(who, MachineSpec(image_id=images[0].id, flavor_id=flavors[0].id, count=batch))
        remaining -= batch
    account = translator.account(who)
    assert len(translator.list(who, "machine")) == machines

    def cold() -> None:
        runtime.store.invalidate(account.key, ["machine"])
        translator.list(who, "machine")

    def warm() -> None:
        translator.list(who, "machine")

    t_cold = _timed(cold, rounds)
    t_warm = _timed(warm, rounds)
    print(
        f"translator list {machines} machines: cold {t_cold * 1e3:8.2f} ms   warm {t_warm * 1e3:8.2f} ms   "
        f"cold/warm = {t_cold / t_warm:5.2f}x"
    )
    runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cg-bench-") as data:
        redis = EmbeddedRedis(data)
        url = redis.start()
        try:
            bench_listing(url, args.machines, args.rounds)
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
