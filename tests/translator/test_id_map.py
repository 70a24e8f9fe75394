"""The id map: an EC2 id resolves in one read on any worker, and in none on the worker that wrote it (real Redis,
the simulator)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis_monitor import commands_during

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator.ids import short_form
from translator.model import MachineSpec, Principal
from translator.store import LEARN_AT_MOST

DEMO = Principal(user="u", tenant="demo", role="admin")


@pytest.fixture
def workers(redis_server: Any, redis_client: redis.Redis) -> Iterator[Any]:
    """``workers()`` makes the runtime of one more worker on the same Redis (each its own store and memos)."""
    config = parse(
        {
            "gateway": {"redis_url": redis_server.url},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0, "max_machines": 200}},
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}},
        }
    )
    made: list[Any] = []

    def make() -> Any:
        made.append(build_runtime(config, redis_server.url))
        seed_identity(made[-1])
        return made[-1]

    yield make
    for runtime in made:
        runtime.close()


def launched(runtime: Any, count: int = 1) -> Any:
    """The first of ``count`` machines launched through ``runtime``."""
    t = runtime.translator
    image, flavor = t.list(DEMO, "image")[0], t.smallest_flavor(DEMO, 1, 1)
    return t.create_machines(DEMO, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=count))[0]


def resolved(runtime: Any, short: str) -> tuple[str | None, Any]:
    """What an EC2 request naming ``short`` looks up: its gateway id, then where that id lives."""
    (gid,) = runtime.translator.expand_short([short])
    (row,) = runtime.store.resolve([gid]) if gid else (None,)
    return gid, row


def test_an_ec2_id_resolves_in_one_read_on_another_worker(workers: Any, redis_client: redis.Redis) -> None:
    machine = launched(workers())
    other = workers()
    found: list[Any] = []
    commands = commands_during(redis_client, lambda: found.extend(resolved(other, short_form(machine.id))))
    assert found == [machine.id, ("demo/r1", "machine", machine.native_id)]
    assert [c[:2] for c in commands] == [("HMGET", "cg:short")], commands
    assert commands_during(redis_client, lambda: resolved(other, short_form(machine.id))) == []  # remembered


def test_the_worker_that_wrote_an_id_resolves_it_without_reading(workers: Any, redis_client: redis.Redis) -> None:
    writer = workers()
    machine = launched(writer)
    found: list[Any] = []
    assert commands_during(redis_client, lambda: found.extend(resolved(writer, short_form(machine.id)))) == []
    assert found == [machine.id, ("demo/r1", "machine", machine.native_id)]


def test_a_worker_learns_no_more_than_a_page_from_one_write(workers: Any, redis_client: redis.Redis) -> None:
    """What a write of more than ``LEARN_AT_MOST`` rows publishes (a large launch, a listing) is read when asked."""
    writer = workers()
    machine = launched(writer, count=LEARN_AT_MOST + 1)
    commands = commands_during(redis_client, lambda: resolved(writer, short_form(machine.id)))
    assert [c[:2] for c in commands] == [("HMGET", "cg:short")], commands


def test_an_entry_an_older_gateway_wrote_still_resolves(workers: Any, redis_client: redis.Redis) -> None:
    """Short-form entries written before they held the row (the gateway id alone) resolve as before, in two."""
    machine = launched(workers())
    redis_client.hset("cg:short", short_form(machine.id), machine.id)
    other = workers()
    found: list[Any] = []
    commands = commands_during(redis_client, lambda: found.extend(resolved(other, short_form(machine.id))))
    assert found == [machine.id, ("demo/r1", "machine", machine.native_id)]
    assert [c[:2] for c in commands] == [("HMGET", "cg:short"), ("HMGET", "cg:ids")], commands


def test_an_unknown_short_form_is_none(workers: Any) -> None:
    assert resolved(workers(), "0123456789abcdef0") == (None, None)
