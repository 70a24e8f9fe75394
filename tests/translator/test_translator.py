"""The translator over a real Redis and the simulator: ids, caching, retries, idempotency, tenancy, jobs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from frontends.ec2.actions.instances import EC2_STATES
from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator import memory
from translator.errors import BackendUnavailable, Conflict, Forbidden, NotFound
from translator.ids import NAMESPACE, computed_id, gateway_id
from translator.model import JobState, MachineSpec, MachineState, Principal, Volume

DEMO = Principal(user="u", tenant="demo", role="admin")
OTHER = Principal(user="o", tenant="other", role="admin")
READER = Principal(user="r", tenant="demo", role="reader")


def _runtime(url: str, *, attempts: int = 3, **sim: Any):
    config = parse(
        {
            "gateway": {"redis_url": url},
            "translator": {"cache_ttl": 60.0, "retry_attempts": attempts, "retry_initial_wait": 0.0},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0, **sim}},
            "tenants": {
                "demo": {"regions": {"r1": {"backend": "sim"}}},
                "other": {"regions": {"r1": {"backend": "sim"}}},
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


def _launch(rt, principal: Principal = DEMO, count: int = 1, **kw: Any):
    t = rt.translator
    image = t.list(principal, "image")[0]
    flavor = next(f for f in t.list(principal, "flavor") if f.name == "t3.micro")
    return t.create_machines(principal, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=count, **kw))


def test_gateway_ids_are_the_uuid5_of_account_kind_and_native_id(runtime, redis_server) -> None:
    (machine,) = _launch(runtime)
    assert machine.id == gateway_id("demo/r1", "machine", machine.native_id)
    assert machine.image_id == gateway_id(
        "demo/r1", "image", runtime.translator.backend(runtime.translator.account(DEMO)).list_machines()[0].image_id
    )
    # A second worker computes the same ids with no coordination.
    other_worker = _runtime(redis_server.url)
    assert [m.id for m in other_worker.translator.list(DEMO, "machine")] == [machine.id]
    other_worker.close()


def test_a_computed_id_is_the_uuid5_of_its_name_and_a_large_listing_leaves_the_id_cache_alone(runtime) -> None:
    for account, kind, native in (("demo/r1", "machine", "i-1"), ("a/b", "volume", "vol-é中"), ("", "image", "")):
        expected = str(uuid.uuid5(NAMESPACE, f"{account}/{kind}/{native}"))
        assert computed_id(account, kind, native) == expected == gateway_id(account, kind, native)
    t = runtime.translator
    account = t.account(DEMO)
    many = [Volume(native_id=f"vol-{i}", name="", created=0.0, size_gb=1) for i in range(memory.LARGE_LISTING)]
    cached = gateway_id.cache_info().currsize
    t.listings.publish_all(account, many)
    assert gateway_id.cache_info().currsize == cached  # published without a cache entry each
    assert many[7].id == str(uuid.uuid5(NAMESPACE, "demo/r1/volume/vol-7"))


def test_listing_cache_is_invalidated_by_mutations(runtime) -> None:
    t = runtime.translator
    assert t.list(DEMO, "machine") == []
    (first,) = _launch(runtime)
    assert [m.id for m in t.list(DEMO, "machine")] == [first.id]
    t.act_on_machine(DEMO, first.id, "stop")
    assert t.get(DEMO, "machine", first.id).state in (MachineState.STOPPING, MachineState.STOPPED)


def test_a_listing_fetched_before_a_mutation_is_never_served_after_it(runtime) -> None:
    store = runtime.store
    generation = store.index.generation("demo/r1", "machine")
    assert not store.index.page("demo/r1", "machine", None, 1).state.usable
    store.invalidate("demo/r1", ["machine"])  # a mutation lands while the listing is in flight
    assert not store.index.write("demo/r1", "machine", generation, [], 60)  # the stale listing arrives
    assert not store.index.page("demo/r1", "machine", None, 1).state.usable


def test_transient_faults_are_retried_then_unavailable(redis_server, redis_client) -> None:
    ok = _runtime(redis_server.url, attempts=3, faults={"fail_first": 2})
    assert ok.translator.list(DEMO, "image")
    ok.close()
    redis_client.flushall()
    failing = _runtime(redis_server.url, attempts=2, faults={"fail_first": 5})
    with pytest.raises(BackendUnavailable):
        failing.translator.list(DEMO, "image")
    with pytest.raises(BackendUnavailable):
        failing.translator.create_key_pair(DEMO, "k")
    (job,) = failing.translator.list_jobs(DEMO).items
    assert job.state == JobState.FAILED and job.operation == "create_key_pair"
    failing.close()


def test_client_tokens_are_idempotent(runtime) -> None:
    first = _launch(runtime, count=2, idempotency_key="tok")
    again = _launch(runtime, count=2, idempotency_key="tok")
    assert [m.id for m in again] == [m.id for m in first]
    assert len(runtime.translator.list(DEMO, "machine")) == 2
    with pytest.raises(Conflict) as excinfo:
        _launch(runtime, count=3, idempotency_key="tok")
    assert excinfo.value.reason == "idempotency"
    # Tokens are per tenant.
    assert len(_launch(runtime, OTHER, count=1, idempotency_key="tok")) == 1


def test_tenants_see_only_their_accounts(runtime) -> None:
    (machine,) = _launch(runtime)
    assert runtime.translator.list(OTHER, "machine") == []
    with pytest.raises(NotFound):
        runtime.translator.get(OTHER, "machine", machine.id)
    with pytest.raises(NotFound):
        runtime.translator.act_on_machine(OTHER, machine.id, "terminate")
    assert runtime.translator.get(DEMO, "machine", machine.id).state == MachineState.RUNNING


def test_an_id_met_only_as_a_reference_can_be_used(runtime) -> None:
    """A machine names its network and subnet before anyone listed networks: those ids still work, for their
    tenant only, and an id nobody ever published is still NotFound."""
    (machine,) = _launch(runtime)
    runtime.store.redis.delete("cg:ids", "cg:short")  # as on a gateway that never listed networks or subnets
    (seen,) = runtime.translator.list(DEMO, "machine")
    assert seen.id == machine.id
    assert runtime.translator.get(DEMO, "network", seen.network_id).id == seen.network_id
    assert runtime.translator.get(DEMO, "subnet", seen.subnet_id).network_id == seen.network_id
    with pytest.raises(NotFound):
        runtime.translator.get(OTHER, "network", seen.network_id)
    with pytest.raises(NotFound):
        runtime.translator.get(DEMO, "network", gateway_id("demo/r1", "network", "no-such-network"))


def test_a_resource_missing_from_a_fresh_cached_listing_is_read_by_id(runtime) -> None:
    """Clouds list new resources late (EC2): a listing cached just before one showed up must not hide it from
    a read by its id, which asks the backend for it."""
    t = runtime.translator
    (first,) = _launch(runtime)
    assert [m.id for m in t.list(DEMO, "machine")] == [first.id]  # cached now, for a minute
    account = t.account(DEMO)
    image = t.list(DEMO, "image")[0]
    flavor = next(f for f in t.list(DEMO, "flavor") if f.name == "t3.micro")
    spec = t.routing.native_refs(DEMO, account, MachineSpec(image_id=image.id, flavor_id=flavor.id))
    late = t.backend(account).create_machines(spec)  # made, and known by id, but not in the cached listing
    t.listings.publish_all(account, late)
    assert [m.id for m in t.list(DEMO, "machine")] == [first.id]
    assert [m.id for m in t.get_many(DEMO, "machine", [first.id, late[0].id])] == [first.id, late[0].id]


def test_readers_cannot_mutate(runtime) -> None:
    with pytest.raises(Forbidden):
        runtime.translator.create_key_pair(READER, "nope")
    assert runtime.translator.list(READER, "key_pair") == []


def test_tags_live_in_redis_and_merge_into_listings(runtime) -> None:
    (machine,) = _launch(runtime)
    t = runtime.translator
    t.update_tags(DEMO, "machine", [machine.id], {"Name": "web", "env": "prod"})
    t.update_tags(DEMO, "machine", [machine.id], {}, {"env": "dev"})  # value mismatch: kept
    assert t.get(DEMO, "machine", machine.id).tags == {"Name": "web", "env": "prod"}
    t.update_tags(DEMO, "machine", [machine.id], {}, {"env": None})
    assert t.get(DEMO, "machine", machine.id).tags == {"Name": "web"}


def test_every_mutation_records_a_job(runtime) -> None:
    (machine,) = _launch(runtime)
    runtime.translator.act_on_machine(DEMO, machine.id, "terminate")
    jobs = runtime.translator.list_jobs(DEMO).items
    assert [j.operation for j in jobs] == ["act_on_machine", "create_machines"]
    assert all(j.state == JobState.SUCCESS and j.target_ids == [machine.id] for j in jobs)
    assert runtime.translator.get_job(DEMO, jobs[0].id).id == jobs[0].id
    with pytest.raises(NotFound):
        runtime.translator.get_job(OTHER, jobs[0].id)


def test_every_canonical_state_has_an_ec2_row() -> None:
    assert set(EC2_STATES) == set(MachineState)
