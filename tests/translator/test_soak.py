"""Soak: 5,000 machines launched and terminated through the translator leave Redis as they found it.

In-process over a real Redis with the simulator (``boot_delay = 0``, terminated machines forgotten at once,
``prune_grace = 0``, ``job_ttl = 1``), in cycles of one 100-machine launch and 100 terminations, each
followed by the listings that show them gone. Key count and the keys' memory (``MEMORY USAGE``, exact)
must come back within 5% of a warmed-up start. About 15 s on a loaded 2-core machine.
"""

from __future__ import annotations

import time
from typing import Any

import redis
from test_pruning import DEMO, launch, runtime_for

MACHINES = 5_000
BATCH = 100


def cycle(rt: Any) -> None:
    t = rt.translator
    for machine in launch(rt, BATCH):
        t.act_on_machine(DEMO, machine.id, "terminate")
    assert t.list(DEMO, "machine") == []
    assert t.list(DEMO, "volume") == []


def settle(rt: Any, client: redis.Redis) -> None:
    """Let the cycles' job records (``job_ttl`` = 1 s) expire, and a walk of the job listing drop their ids."""
    time.sleep(1.1)
    cursor = None
    for _ in range(100):
        cursor = rt.translator.list_jobs(DEMO, cursor=cursor, limit=1000).next_cursor
        if cursor is None:
            break
    for _ in range(50):
        if next(client.scan_iter("cg:job:*", count=1000), None) is None:
            return
        time.sleep(0.1)
    raise AssertionError("job records did not expire")


def footprint(client: redis.Redis) -> tuple[int, int, int]:
    """(keys, bytes the keys hold, used_memory_dataset). The last is reported only: it moves with Redis's own
    allocations (client buffers, scripts), while MEMORY USAGE with SAMPLES 0 counts exactly the data."""
    keys = list(client.scan_iter(count=1000))
    held = sum(client.memory_usage(k, samples=0) or 0 for k in keys)
    return len(keys), held, client.info("memory")["used_memory_dataset"]


def test_five_thousand_machines_leave_redis_as_they_found_it(redis_server, redis_client) -> None:
    rt = runtime_for(redis_server.url, job_ttl=1)
    try:
        cycle(rt)  # warm up: what a first launch creates (default network, caches) is there before measuring
        settle(rt, redis_client)
        keys_before, held_before, dataset_before = footprint(redis_client)
        for _ in range(MACHINES // BATCH):
            cycle(rt)
        settle(rt, redis_client)
        keys_after, held_after, dataset_after = footprint(redis_client)
    finally:
        rt.close()
    report = f"keys {keys_before} -> {keys_after}, bytes {held_before} -> {held_after}"
    report += f", used_memory_dataset {dataset_before} -> {dataset_after}"
    assert abs(keys_after - keys_before) <= 0.05 * keys_before, report
    assert abs(held_after - held_before) <= 0.05 * held_before, report
