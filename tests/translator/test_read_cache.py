"""The read cache over a real Redis and the simulator: an answer built from fresh listings is reused while they
are unchanged, and built again after anything that changes what it was read from (a mutation, a Redis tag, a
refresh that finds the cloud changed, a lapsed TTL, a failed refresh) or when it read anything else."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator import read_cache
from translator.errors import BackendUnavailable
from translator.identity import Identity
from translator.model import MachineAction, MachineSpec, Principal, VolumeSpec
from translator.read_cache import ENTRY_BYTES, ReadCache, entry_bytes

DEMO = Principal(user="u", tenant="demo", role="admin")
TTL = 1.0


@pytest.fixture
def runtime(redis_server, redis_client) -> Iterator[Any]:
    sim = {"driver": "simulator", "boot_delay": 0.0, "terminated_retention": 0.0}
    config = parse(
        {
            "gateway": {"redis_url": redis_server.url},
            "translator": {"cache_ttl": TTL, "transitional_cache_ttl": TTL, "retry_attempts": 1},
            "backends": {"sim": sim},
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}},
        }
    )
    rt = build_runtime(config, redis_server.url)
    seed_identity(rt)
    yield rt
    rt.close()


class Counted:
    """A build that lists the caller's machines (with their volumes, as DescribeInstances does) and counts runs."""

    def __init__(self, rt: Any, read: Callable[[], Any] | None = None) -> None:
        self.t = rt.translator
        self.runs = 0
        self.read = read
        self.listed: Callable[[], list[Any]] = lambda: self.t.list(DEMO, "machine", "r1")

    def __call__(self) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
        self.runs += 1
        if self.read is not None:
            self.read()
        machines = self.listed()
        volume_ids = [v for m in machines for v in m.volume_ids]
        if volume_ids:
            self.t.get_many(DEMO, "volume", volume_ids)
        return [(m.id, str(m.state), tuple(sorted(m.tags.items()))) for m in machines]


def answer(rt: Any, build: Counted, key: str = "k") -> Any:
    return rt.translator.read_cache.answer(key, build, lambda value: 100)


def launch(rt: Any, count: int = 2) -> list[Any]:
    t = rt.translator
    image, flavor = t.list(DEMO, "image", "r1")[0], t.list(DEMO, "flavor", "r1")[0]
    return t.create_machines(DEMO, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=count), "r1")


def wait_fresh(rt: Any, *kinds: str) -> None:
    index = rt.translator.store.index
    deadline = time.monotonic() + 10
    while any(index.page("demo/r1", kind, None, 1).state != "fresh" for kind in kinds):
        assert time.monotonic() < deadline, "the background refreshes did not happen"
        time.sleep(0.05)


def settled(rt: Any, build: Counted) -> Any:
    """The answer once it is kept: the first build after a change refreshed the listing (not kept), the next
    one read it fresh (kept). A volume listing refreshes the volumes the build reads by id: after a mutation
    a read by id asks the cloud, and only a listing fills the index again."""
    answer(rt, build)
    rt.translator.list(DEMO, "volume", "r1")
    wait_fresh(rt, "machine", "volume")
    return answer(rt, build)


def test_an_answer_is_reused_while_its_listings_are_unchanged_and_rebuilt_after_a_mutation(runtime: Any) -> None:
    made = launch(runtime)
    build = Counted(runtime)
    first = settled(runtime, build)
    runs = build.runs
    assert [answer(runtime, build) for _ in range(5)] == [first] * 5
    assert build.runs == runs  # five answers, no build

    runtime.translator.act_on_machine(DEMO, made[0].id, MachineAction.STOP)
    after = settled(runtime, build)
    assert build.runs > runs and after != first
    assert dict((i, s) for i, s, _ in after)[made[0].id] in ("stopping", "stopped")


def test_a_redis_tag_a_lapsed_ttl_and_a_changed_cloud_each_rebuild(runtime: Any, redis_client) -> None:
    made = launch(runtime)
    build = Counted(runtime)
    settled(runtime, build)
    runs = build.runs

    # a tag kept in Redis (the simulator tags natively, so write one the way a non-native backend's are kept)
    runtime.translator.store.update_tags("demo/r1", "machine", made[1].id, {"team": "a"}, {})
    tagged = answer(runtime, build)
    assert build.runs == runs + 1 and dict((i, t) for i, _, t in tagged)[made[1].id] == (("team", "a"),)
    runs = build.runs

    # past the TTL the indexes are expired: the kept answer is not used, and the build refreshes them behind
    time.sleep(TTL * 1.5)
    answer(runtime, build)
    assert build.runs == runs + 1
    wait_fresh(runtime, "machine", "volume")
    runs = build.runs
    answer(runtime, build)
    assert build.runs == runs  # the refreshes found the cloud unchanged: the versions held, the answer is reused

    # the cloud changes behind the gateway's back: the next refresh writes the row, its version moves
    backend = runtime.translator.routing.backend(runtime.translator.account(DEMO, "r1"))
    backend.act_on_machine(made[0].native_id, MachineAction.STOP)
    time.sleep(TTL * 1.5)
    states: set[str] = set()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not states & {"stopping", "stopped"}:
        states = {s for i, s, _ in answer(runtime, build) if i == made[0].id}
        time.sleep(0.05)
    assert states & {"stopping", "stopped"}


def test_answers_that_read_outside_the_listings_are_never_kept(runtime: Any) -> None:
    launch(runtime)
    t = runtime.translator
    documents = Counted(runtime, read=lambda: t.documents.list("demo", "system"))
    jobs = Counted(runtime, read=lambda: t.jobs.list("demo"))
    cloud = Counted(runtime, read=lambda: t.routing.backend(t.account(DEMO, "r1")) and t.caller.call("sim", "x", int))
    for build in (documents, jobs, cloud):
        for _ in range(3):
            answer(runtime, build, key=str(id(build)))
        assert build.runs == 3


def uncached(redis_server: Any, regions: tuple[str, ...] = ("r1",), ttl: float = 0) -> Any:
    sims = {f"sim-{r}": {"driver": "simulator", "boot_delay": 0.0, "terminated_retention": 0.0} for r in regions}
    config = parse(
        {
            "gateway": {"redis_url": redis_server.url},
            "translator": {"cache_ttl": ttl, "transitional_cache_ttl": ttl, "retry_attempts": 1},
            "backends": sims,
            "tenants": {"demo": {"regions": {r: {"backend": f"sim-{r}"} for r in regions}}},
        }
    )
    rt = build_runtime(config, redis_server.url)
    seed_identity(rt)
    return rt


def revalidations(outcome: str) -> float:
    return REGISTRY.get_sample_value("cloudgate_answer_revalidations_total", {"outcome": outcome}) or 0.0


def test_answers_read_from_the_cloud_are_reused_only_while_the_cloud_answers_the_same(
    redis_server, redis_client
) -> None:
    """Listings not cached: each answer still asks the cloud, and is the kept one while the cloud answers as it did
    (the build does not run again); a change of the cloud behind the gateway's back, or of a Redis tag of the
    listing or of a resource read by id, is in the very next answer."""
    rt = uncached(redis_server)
    try:
        made = launch(rt)
        t = rt.translator
        volume = t.create_volume(DEMO, VolumeSpec(size_gb=1, zone=made[0].zone), "r1")
        t.attach_volume(DEMO, volume.id, made[0].id, "/dev/sdf")
        deadline = time.monotonic() + 10  # the cloud settles: what changes now is the test's doing
        while {str(m.state) for m in t.list(DEMO, "machine", "r1")} != {"running"} or str(
            t.get_many(DEMO, "volume", [volume.id])[0].state
        ) != "in-use":
            assert time.monotonic() < deadline, "the launch and the attachment did not settle"
            time.sleep(0.05)
        build = Counted(rt)
        first = answer(rt, build)
        same = revalidations("same")
        assert [answer(rt, build) for _ in range(3)] == [first] * 3
        assert build.runs == 1 and revalidations("same") == same + 3

        backend = t.routing.backend(t.account(DEMO, "r1"))
        backend.act_on_machine(made[1].native_id, MachineAction.STOP)
        changed = revalidations("changed")
        stopped = answer(rt, build)
        assert build.runs == 2 and revalidations("changed") == changed + 1
        assert dict((i, s) for i, s, _ in stopped)[made[1].id] in ("stopping", "stopped")

        t.store.update_tags("demo/r1", "machine", made[1].id, {"team": "a"}, {})
        tagged = answer(rt, build)
        assert build.runs == 3 and dict((i, tags) for i, _, tags in tagged)[made[1].id] == (("team", "a"),)

        answer(rt, build)
        runs = build.runs
        t.store.update_tags("demo/r1", "volume", volume.id, {"team": "b"}, {})  # read by id, not listed
        answer(rt, build)
        assert build.runs == runs + 1
    finally:
        rt.close()


def test_a_listing_over_several_regions_is_reused_only_while_each_region_is_unchanged(
    redis_server, redis_client
) -> None:
    """The regions are read side by side in other threads: what they read counts for the answer as the rest does
    (an answer kept with only the images read in this thread would not see a mutation in a region)."""
    rt = uncached(redis_server, ("r1", "r2"), ttl=30)
    try:
        t = rt.translator
        image, flavor = t.list(DEMO, "image", "r2")[0], t.list(DEMO, "flavor", "r2")[0]
        in_r2 = t.create_machines(DEMO, MachineSpec(image_id=image.id, flavor_id=flavor.id), "r2")[0]
        runs = [0]

        def build() -> list[tuple[str, str]]:
            runs[0] += 1
            t.list(DEMO, "image", "r1")
            return [(m.id, str(m.state)) for m in t.list(DEMO, "machine")]  # every region

        cache = t.read_cache
        deadline = time.monotonic() + 10
        while (kept := cache.answer("k", build, lambda value: 100)) != [(in_r2.id, "running")] or runs[0] < 2:
            assert time.monotonic() < deadline, "the launch did not settle"
            time.sleep(0.05)
        before = runs[0]
        assert cache.answer("k", build, lambda value: 100) == kept and runs[0] == before

        t.act_on_machine(DEMO, in_r2.id, MachineAction.STOP)
        after = cache.answer("k", build, lambda value: 100)
        assert runs[0] == before + 1 and dict(after)[in_r2.id] in ("stopping", "stopped")
    finally:
        rt.close()


def test_what_a_revalidation_read_feeds_the_build_and_the_cloud_is_not_asked_twice(runtime: Any) -> None:
    """A revalidation whose backend read returns something else, or fails, leaves that to the build, which gets it
    where it asks (a failure handled as the build would: a listing over regions answers without the region)."""
    account = runtime.translator.account(DEMO, "r1")
    cloud: list[Any] = [["a"], ["b"], BackendUnavailable("The backend is down.", reason="unavailable")]
    asked: list[str] = []

    def refetch(read: Any) -> Any:  # the revalidation's read: the cloud's next answer
        asked.append(read.method)
        answer = cloud.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    cache = ReadCache(runtime.translator.store.index, refetch=refetch)
    built: list[Any] = []

    def build() -> list[str]:
        try:
            things = read_cache.backend_read(account, "list_things", (), lambda: ["a"])  # the build's own read
        except BackendUnavailable:
            things = ["partial"]
        built.append(things)
        return things

    assert cache.answer("k", build, lambda value: 10) == ["a"]
    assert cache.answer("k", build, lambda value: 10) == ["a"] and built == [["a"]]  # the same: reused
    assert cache.answer("k", build, lambda value: 10) == ["b"] and built[-1] == ["b"]  # changed: built from it
    assert cache.answer("k", build, lambda value: 10) == ["partial"]  # failed: the build met the failure
    assert asked == ["list_things"] * 3 and not cloud


def test_the_least_recently_used_answers_go_first_past_the_capacity(runtime: Any) -> None:
    launch(runtime)
    each = 250 + ENTRY_BYTES + 1  # an answer of 250 bytes under a key of one character
    cache = ReadCache(runtime.translator.store.index, capacity=4 * each)
    build = Counted(runtime)
    build()  # fills the machine index
    runtime.translator.list(DEMO, "volume", "r1")
    wait_fresh(runtime, "machine", "volume")
    for key in ("a", "b", "c", "d"):
        cache.answer(key, build, lambda value: 250)
    runs = build.runs
    cache.answer("a", build, lambda value: 250)  # a is used again: b is now the oldest
    cache.answer("e", build, lambda value: 250)  # past the capacity: b goes
    assert build.runs == runs + 1
    for key in ("a", "c", "d", "e"):
        cache.answer(key, build, lambda value: 250)
    assert build.runs == runs + 1
    cache.answer("b", build, lambda value: 250)
    assert build.runs == runs + 2
    cache.answer("h", build, lambda value: 251)  # above a quarter of the capacity: never kept
    cache.answer("h", build, lambda value: 251)
    assert build.runs == runs + 4


def test_a_kept_answer_counts_its_key_and_its_entry() -> None:
    """Keys hold the caller's parameters: an entry costs its answer, its key's text and ENTRY_BYTES."""
    assert entry_bytes("abc") == ENTRY_BYTES + 3
    question = ("AKID", "http://h", "DescribeInstances", (("InstanceId.1", "i-0123"), ("MaxResults", "5")))
    text = sum(len(s) for s in ("AKID", "http://h", "DescribeInstances", "InstanceId.1", "i-0123", "MaxResults", "5"))
    assert entry_bytes(question) >= ENTRY_BYTES + text
    assert entry_bytes((*question, ("Filter.1.Name", "x" * 1000))) >= entry_bytes(question) + 1000


def test_a_user_record_is_read_once_and_again_as_soon_as_it_changes(runtime: Any, redis_client) -> None:
    cache = runtime.translator.read_cache
    guard = Identity.user_guard("AKIDCACHED")
    redis_client.hset(guard.key, guard.field, b"first")

    def hgets() -> int:
        return int(redis_client.info("commandstats").get("cmdstat_hget", {}).get("calls", 0))

    assert cache.guarded(guard) == b"first"
    before = hgets()
    assert [cache.guarded(guard) for _ in range(5)] == [b"first"] * 5
    assert hgets() == before  # kept: no round trip

    redis_client.hset(guard.key, guard.field, b"second")
    redis_client.ping()  # Redis has sent the invalidation before it answers the writer again
    assert cache.guarded(guard) == b"second"
    redis_client.hdel(guard.key, guard.field)
    redis_client.ping()
    assert cache.guarded(guard) is None
