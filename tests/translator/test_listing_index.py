"""The listing index over a real Redis: pages by cursor, reads by id, diffed refreshes, generations; and through
the translator on the simulator: a mutation is read back at once, an expired listing is answered at once and
refreshed behind the reader's back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator.listing_index import Freshness, ListingIndex, member
from translator.model import MachineAction, MachineSpec, MachineState, Principal

ACCOUNT, KIND = "demo/r1", "machine"
DEMO = Principal(user="u", tenant="demo", role="admin")


def rows(n: int, start: int = 0, state: str = "running") -> list[dict[str, Any]]:
    """``n`` rows, created one second apart; ids sort against creation order on purpose (the index orders by
    creation first)."""
    return [{"id": f"id-{9999 - i:04d}", "created": 1000.0 + i, "state": state} for i in range(start, start + n)]


def ids(found: list[bytes]) -> list[str]:
    return [orjson.loads(r)["id"] for r in found]


@pytest.fixture
def index(redis_client) -> ListingIndex:
    return ListingIndex(redis_client)


def test_pages_follow_creation_order_from_any_cursor(index: ListingIndex) -> None:
    assert index.page(ACCOUNT, KIND, None, 10).state is Freshness.ABSENT
    data = rows(25)
    assert index.write(ACCOUNT, KIND, 0, data, ttl=60)
    first = index.page(ACCOUNT, KIND, None, 10)
    assert first.state is Freshness.FRESH and ids(first.rows) == [r["id"] for r in data[:10]]
    last = orjson.loads(first.rows[-1])
    second = index.page(ACCOUNT, KIND, member(last["created"], last["id"]), 10)
    assert ids(second.rows) == [r["id"] for r in data[10:20]]
    assert ids(index.page(ACCOUNT, KIND, member(1019.0, data[19]["id"]), 10).rows) == [r["id"] for r in data[20:]]
    got = index.get(ACCOUNT, KIND, [data[3]["id"], "missing", data[1]["id"]])
    assert ids(got.rows) == [data[3]["id"], data[1]["id"]] and not got.tagged


def test_a_refresh_writes_what_changed_and_drops_what_went(index: ListingIndex, redis_client) -> None:
    data = rows(5)
    index.write(ACCOUNT, KIND, 0, data, ttl=60)
    rows_key = f"cg:ix:{{{ACCOUNT}|{KIND}}}:rows"
    # Mark the stored rows: a row the refresh rewrites loses its mark, one it leaves alone keeps it.
    for r in data:
        redis_client.hset(rows_key, r["id"], orjson.dumps({**r, "mark": True}))
    changed = [*data[:2], {**data[2], "state": "stopped"}, *rows(2, start=10)]  # data[3:] went, two are new
    index.write(ACCOUNT, KIND, 0, changed, ttl=60)
    stored = {k.decode(): orjson.loads(v) for k, v in redis_client.hgetall(rows_key).items()}
    assert set(stored) == {r["id"] for r in changed}
    assert [stored[r["id"]].get("mark", False) for r in changed] == [True, True, False, False, False]
    assert stored[data[2]["id"]]["state"] == "stopped"
    assert ids(index.page(ACCOUNT, KIND, None, 10).rows) == [r["id"] for r in changed]


def test_a_listing_read_before_a_mutation_is_not_written_and_the_index_goes_stale(index: ListingIndex) -> None:
    index.write(ACCOUNT, KIND, 0, rows(3), ttl=60)
    generation = index.generation(ACCOUNT, KIND)
    index.invalidate(ACCOUNT, [KIND])
    assert index.page(ACCOUNT, KIND, None, 10).state is Freshness.STALE
    assert not index.get(ACCOUNT, KIND, ["id-9999"]).rows  # a stale index answers nothing
    assert not index.write(ACCOUNT, KIND, generation, rows(1), ttl=60)  # read before the mutation
    assert index.write(ACCOUNT, KIND, generation + 1, rows(1), ttl=60)
    assert ids(index.page(ACCOUNT, KIND, None, 10).rows) == ["id-9999"]


def test_of_two_refreshes_at_one_generation_the_later_reader_wins_whichever_writes_last(index: ListingIndex) -> None:
    early, late = index.ticket(ACCOUNT, KIND), index.ticket(ACCOUNT, KIND)  # both read the cloud, early first
    assert index.write(ACCOUNT, KIND, 0, rows(2, state="running"), ttl=60, ticket=late)
    assert index.write(ACCOUNT, KIND, 0, rows(2, state="pending"), ttl=60, ticket=early)  # older news: dropped
    assert {orjson.loads(r)["state"] for r in index.page(ACCOUNT, KIND, None, 10).rows} == {"running"}
    newest = index.ticket(ACCOUNT, KIND)
    assert index.write(ACCOUNT, KIND, 0, rows(2, state="stopped"), ttl=60, ticket=newest)
    assert {orjson.loads(r)["state"] for r in index.page(ACCOUNT, KIND, None, 10).rows} == {"stopped"}


def test_an_expired_index_still_answers(index: ListingIndex) -> None:
    index.write(ACCOUNT, KIND, 0, rows(2), ttl=0.05)
    time.sleep(0.1)
    expired = index.page(ACCOUNT, KIND, None, 10)
    assert expired.state is Freshness.EXPIRED and len(expired.rows) == 2
    assert index.claim_refresh(ACCOUNT, KIND, "worker-1", lease=5)
    assert not index.claim_refresh(ACCOUNT, KIND, "worker-2", lease=5)  # one refresher at a time
    index.release_refresh(ACCOUNT, KIND)
    assert index.claim_refresh(ACCOUNT, KIND, "worker-2", lease=5)


# -- through the translator ---------------------------------------------------------------------------------------


@pytest.fixture
def runtime(redis_server, redis_client) -> Iterator[Any]:
    config = parse(
        {
            "gateway": {"redis_url": redis_server.url},
            "translator": {"cache_ttl": 0.3, "transitional_cache_ttl": 0.3, "retry_attempts": 1},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0}},
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}},
        }
    )
    rt = build_runtime(config, redis_server.url)
    seed_identity(rt)
    yield rt
    rt.close()


def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the bound"
        time.sleep(0.05)


def test_an_expired_listing_is_answered_at_once_and_refreshed_behind_the_reader(runtime) -> None:
    t = runtime.translator
    image, flavor = t.list(DEMO, "image")[0], t.list(DEMO, "flavor")[0]
    (vm,) = t.create_machines(DEMO, MachineSpec(image_id=image.id, flavor_id=flavor.id))
    until(lambda: t.list(DEMO, "machine")[0].state == MachineState.RUNNING)  # the index holds it running
    account = t.account(DEMO)
    native = runtime.store.resolve([vm.id])[0][2]
    t.routing.backend(account).act_on_machine(native, MachineAction.STOP)  # behind the gateway's back
    time.sleep(0.4)  # past the TTL: the index has expired
    seen = t.list(DEMO, "machine")[0].state
    assert seen == MachineState.RUNNING  # answered from the expired index, without waiting for the cloud
    until(lambda: t.list(DEMO, "machine")[0].state in (MachineState.STOPPING, MachineState.STOPPED))


def test_a_mutation_is_read_back_at_once(runtime) -> None:
    t = runtime.translator
    image, flavor = t.list(DEMO, "image")[0], t.list(DEMO, "flavor")[0]
    assert t.list(DEMO, "machine") == []
    made = t.create_machines(DEMO, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=3))
    assert sorted(m.id for m in t.list(DEMO, "machine")) == sorted(m.id for m in made)
    t.act_on_machine(DEMO, made[0].id, "terminate")
    assert t.get(DEMO, "machine", made[0].id).state in (MachineState.TERMINATING, MachineState.TERMINATED)


def test_uncached_listings_and_failed_refreshes_leave_the_index_unusable(index: ListingIndex) -> None:
    """``cache_ttl = 0``: every read refreshes; a background refresh that failed: the next read refreshes (and
    meets a cloud still down as its failure, not as ever older data)."""
    assert index.write(ACCOUNT, KIND, 0, rows(2), ttl=0)
    assert index.page(ACCOUNT, KIND, None, 10).state is Freshness.ABSENT
    assert index.write(ACCOUNT, KIND, 0, rows(2), ttl=60)
    assert index.page(ACCOUNT, KIND, None, 10).state is Freshness.FRESH
    index.spoil(ACCOUNT, KIND)
    assert index.page(ACCOUNT, KIND, None, 10).state is Freshness.ABSENT
