"""Pages, reads by id, flavor lookup and fan-out over accounts: the translator over a real Redis and the simulator."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from netutil import free_port

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator.errors import BackendUnavailable, InvalidParameter, NotFound
from translator.listings import MissingIds, sort_key
from translator.model import MachineSpec, MachineState, Principal

DEMO = Principal(user="u", tenant="demo", role="admin")
OTHER = Principal(user="o", tenant="other", role="admin")
MULTI = Principal(user="m", tenant="multi", role="admin")
DARK = Principal(user="d", tenant="dark", role="admin")

FLAVORS = [
    {"name": "tiny", "vcpus": 1, "memory_mb": 512},
    {"name": "b.pair", "vcpus": 2, "memory_mb": 4096},
    {"name": "a.pair", "vcpus": 2, "memory_mb": 4096},
    {"name": "wide", "vcpus": 8, "memory_mb": 2048},
    {"name": "deep", "vcpus": 4, "memory_mb": 65536},
]


def _runtime(url: str, ttl: float = 60.0) -> Any:
    sim = {"driver": "simulator", "boot_delay": 0.0, "max_machines": 1000}
    config = parse(
        {
            "gateway": {"redis_url": url},
            "translator": {"cache_ttl": ttl, "retry_attempts": 1, "retry_initial_wait": 0.0},
            "backends": {
                "sim": sim,
                "small": {**sim, "flavors": FLAVORS},
                "down": {**sim, "faults": {"down": True}},
                # A real connection failure: an EC2 endpoint on a loopback port nobody listens on.
                "closed": {
                    "driver": "ec2",
                    "endpoint_url": f"http://127.0.0.1:{free_port()}",
                    "connect_timeout": 1.0,
                    "timeout": 1.0,
                    "access_key_id": "AKIDEXAMPLE",
                    "secret_access_key": "not-a-secret",
                    "aws_region": "us-east-1",
                },
            },
            "tenants": {
                "demo": {"regions": {"r1": {"backend": "sim"}, "small": {"backend": "small"}}},
                "other": {"regions": {"r1": {"backend": "sim"}}},
                "multi": {
                    "regions": {"up": {"backend": "sim"}, "down": {"backend": "down"}, "gone": {"backend": "closed"}}
                },
                "dark": {"regions": {"down": {"backend": "down"}, "gone": {"backend": "closed"}}},
            },
        }
    )
    runtime = build_runtime(config, url)
    seed_identity(runtime)
    return runtime


@pytest.fixture
def runtime(redis_server, redis_client):
    rt = _runtime(redis_server.url)
    yield rt
    rt.close()


def _launch(rt: Any, principal: Principal = DEMO, count: int = 1, region: str = "r1") -> list[Any]:
    t = rt.translator
    image = t.list(principal, "image", region)[0]
    flavor = t.smallest_flavor(principal, 1, 1, region)
    return t.create_machines(principal, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=count), region)


def _key_pairs(rt: Any, names: list[str], principal: Principal = DEMO) -> list[str]:
    return [rt.translator.create_key_pair(principal, n, "ed25519", "r1").key_pair.id for n in names]


def _walk(rt: Any, kind: str, limit: int, **kw: Any) -> list[list[Any]]:
    pages, cursor = [], None
    for _ in range(100):
        page = rt.translator.page(DEMO, kind, limit=limit, cursor=cursor, region="r1", **kw)
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("the pages never ended")


def test_pages_cover_every_resource_once_in_creation_then_id_order(runtime) -> None:
    launched = [m for _ in range(3) for m in _launch(runtime, count=4)]  # same creation time within a batch
    pages = _walk(runtime, "machine", 5)
    assert [len(p) for p in pages] == [5, 5, 2]
    flat = [m for p in pages for m in p]
    assert [m.id for m in flat] == [m.id for m in sorted(launched, key=sort_key)]
    assert flat == sorted(flat, key=sort_key)


def test_a_cursor_resumes_after_its_resource_while_others_come_and_go(runtime) -> None:
    ids = _key_pairs(runtime, [f"k{n}" for n in range(8)])
    t = runtime.translator
    first = t.page(DEMO, "key_pair", limit=5, region="r1")
    assert [k.id for k in first.items] == ids[:5] and first.next_cursor
    t.delete_key_pair(DEMO, ids[1])  # already shown
    t.delete_key_pair(DEMO, ids[6])  # not yet shown
    (late,) = _key_pairs(runtime, ["late"])
    second = t.page(DEMO, "key_pair", limit=5, cursor=first.next_cursor, region="r1")
    assert [k.id for k in second.items] == [ids[5], ids[7], late] and second.next_cursor is None


def test_where_is_asked_only_until_the_page_is_full(runtime) -> None:
    _key_pairs(runtime, [f"k{n}" for n in range(10)])
    asked: list[str] = []

    def even(resource: Any) -> bool:
        asked.append(resource.name)
        return int(resource.name[1:]) % 2 == 0

    pages = _walk(runtime, "key_pair", 2, where=even)
    assert [[k.name for k in p] for p in pages] == [["k0", "k2"], ["k4", "k6"], ["k8"]]
    # The first page stopped at the first match past its limit (k0..k4, not all ten); the next starts after k2.
    assert asked[:6] == ["k0", "k1", "k2", "k3", "k4", "k3"]


def test_canonical_matches_and_tags_are_seen_by_filters(runtime) -> None:
    machines = _launch(runtime, count=4)
    t = runtime.translator
    t.act_on_machine(DEMO, machines[1].id, "stop")
    t.update_tags(DEMO, "machine", [machines[2].id, machines[3].id], {"role": "web"})
    running = t.page(DEMO, "machine", match={"state": {"running", "pending"}}, region="r1").items
    assert {m.id for m in running} == {machines[0].id, machines[2].id, machines[3].id}
    web = t.page(DEMO, "machine", where=lambda m: m.tags.get("role") == "web", limit=5, region="r1")
    assert {m.id for m in web.items} == {machines[2].id, machines[3].id}
    assert all(m.tags == {"role": "web"} for m in web.items)


def test_ids_narrow_a_page_and_every_missing_id_is_named(runtime) -> None:
    mine = _key_pairs(runtime, ["a", "b", "c"])
    (theirs,) = _key_pairs(runtime, ["x"], OTHER)
    t = runtime.translator
    page = t.page(DEMO, "key_pair", ids=[mine[2], mine[0], mine[2]], region="r1")
    assert [k.id for k in page.items] == [mine[0], mine[2]]  # sort-key order, each once
    assert [k.id for k in t.page(DEMO, "key_pair", ids=mine, limit=2, region="r1").items] == mine[:2]
    unknown = "00000000-0000-5000-8000-000000000000"
    with pytest.raises(MissingIds) as excinfo:
        t.page(DEMO, "key_pair", ids=[mine[0], theirs, unknown], region="r1")
    assert excinfo.value.ids == [theirs, unknown] and excinfo.value.kind == "key_pair"
    with pytest.raises(NotFound):  # the caller's, but in another region than the one asked
        t.page(DEMO, "key_pair", ids=[mine[0]], region="small")


@pytest.mark.parametrize("cursor", ["garbage", "e30", "WyJhIiwxXQ"])  # {} and ["a",1]
def test_broken_cursors_and_limits_are_invalid_parameters(runtime, cursor: str) -> None:
    with pytest.raises(InvalidParameter) as excinfo:
        runtime.translator.page(DEMO, "machine", cursor=cursor, region="r1")
    assert excinfo.value.reason == "cursor"
    with pytest.raises(InvalidParameter):
        runtime.translator.page(DEMO, "machine", limit=0, region="r1")


def test_get_many_reads_by_id_when_the_listing_is_not_cached(runtime) -> None:
    machines = _launch(runtime, count=3)
    t, store = runtime.translator, runtime.store
    t.act_on_machine(DEMO, machines[0].id, "stop")  # invalidates the machine listing
    t.update_tags(DEMO, "machine", [machines[0].id], {"env": "dev"})
    (got,) = t.get_many(DEMO, "machine", [machines[0].id])
    assert got.state in (MachineState.STOPPING, MachineState.STOPPED) and got.tags == {"env": "dev"}
    assert not store.index.page("demo/r1", "machine", None, 1).state.usable  # read by id: no listing of the account
    t.list(DEMO, "machine", "r1")
    assert [m.id for m in t.get_many(DEMO, "machine", [machines[2].id, machines[0].id])] == [
        machines[2].id,
        machines[0].id,
    ]
    with pytest.raises(MissingIds):
        t.get_many(OTHER, "machine", [machines[1].id])


def test_reads_by_id_with_nothing_cached_see_the_cloud_now_and_the_redis_tags(redis_server) -> None:
    """``cache_ttl = 0``: a read by id asks the backend without an index, and merges the tags kept in Redis."""
    rt = _runtime(redis_server.url, ttl=0.0)
    try:
        machines = _launch(rt, count=3)
        t = rt.translator
        ids = [m.id for m in machines]
        t.update_tags(DEMO, "machine", ids[:2], {"env": "dev"})
        t.update_tags(DEMO, "machine", [ids[1]], {"role": "db"})
        t.act_on_machine(DEMO, ids[2], "stop")
        got = t.get_many(DEMO, "machine", [ids[2], ids[1], ids[0]])
        assert [m.id for m in got] == [ids[2], ids[1], ids[0]]
        assert [m.tags for m in got] == [{}, {"env": "dev", "role": "db"}, {"env": "dev"}]
        assert got[0].state in (MachineState.STOPPING, MachineState.STOPPED)
        page = t.page(DEMO, "machine", ids=[ids[1]], region="r1").items  # a region given: its account alone
        assert [(m.id, m.tags) for m in page] == [(ids[1], {"env": "dev", "role": "db"})]
        t.update_tags(DEMO, "machine", [ids[1]], {}, remove={"env": None})
        (again,) = t.get_many(DEMO, "machine", [ids[1]])
        assert again.tags == {"role": "db"}
        t.act_on_machine(DEMO, ids[2], "start")
        (started,) = t.get_many(DEMO, "machine", [ids[2]])
        assert started.state in (MachineState.PENDING, MachineState.RUNNING)
        with pytest.raises(MissingIds) as excinfo:
            t.get_many(OTHER, "machine", [ids[0]])
        assert excinfo.value.ids == [ids[0]]
    finally:
        rt.close()


def test_the_smallest_flavor_that_fits(runtime) -> None:
    t = runtime.translator
    assert t.smallest_flavor(DEMO, 1, 256, "small").name == "tiny"
    assert t.smallest_flavor(DEMO, 2, 1024, "small").name == "a.pair"  # fewest vCPUs, least memory, then name
    assert t.smallest_flavor(DEMO, 3, 1024, "small").name == "deep"  # 4 vCPUs beat 8, whatever the memory
    assert t.smallest_flavor(DEMO, 1, 3000, "small").name == "a.pair"
    with pytest.raises(NotFound) as excinfo:
        t.smallest_flavor(DEMO, 16, 1024, "small")
    assert excinfo.value.kind == "flavor" and excinfo.value.reason == "no_fit"


def test_pages_across_accounts_merge_them_in_one_order(runtime) -> None:
    launched = [m for region in ("r1", "small", "r1") for m in _launch(runtime, count=3, region=region)]
    t = runtime.translator
    seen, cursor = [], None
    for _ in range(10):
        page = t.page(DEMO, "machine", limit=4, cursor=cursor)
        seen += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [m.id for m in seen] == [m.id for m in sorted(launched, key=sort_key)]
    assert {m.account for m in seen} == {"demo/r1", "demo/small"} and not page.partial


def test_a_listing_across_accounts_leaves_out_the_ones_that_are_down(runtime, caplog) -> None:
    (machine,) = _launch(runtime, MULTI, region="up")
    t = runtime.translator
    with caplog.at_level(logging.WARNING, logger="cloudgate.translator"):
        page = t.page(MULTI, "machine")
    assert [m.id for m in page.items] == [machine.id]
    assert page.partial and sorted(page.unavailable_regions) == ["down", "gone"]
    assert {"down", "gone"} <= {r.args[1] for r in caplog.records if "unavailable" in r.getMessage()}
    assert [m.id for m in t.list(MULTI, "machine")] == [machine.id]
    with pytest.raises(BackendUnavailable):  # one region asked for, and it is down
        t.page(MULTI, "machine", region="down")
    with pytest.raises(BackendUnavailable):  # every region down
        t.page(DARK, "machine")
