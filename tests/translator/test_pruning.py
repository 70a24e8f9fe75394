"""Nothing grows forever: id maps and tags of resources that are gone are forgotten (real Redis, the simulator)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator.errors import NotFound
from translator.ids import short_form
from translator.listing_index import tags_key
from translator.listings import MissingIds
from translator.model import MachineSpec, Principal, VolumeSpec

DEMO = Principal(user="u", tenant="demo", role="admin")
ACCOUNT = "demo/r1"


def runtime_for(url: str, *, grace: float = 0.0, retention: float = 0.0, job_ttl: int = 86400) -> Any:
    config = parse(
        {
            "gateway": {"redis_url": url},
            "translator": {"cache_ttl": 60.0, "prune_grace": grace, "job_ttl": job_ttl},
            "backends": {
                "sim": {
                    "driver": "simulator",
                    "boot_delay": 0.0,
                    "terminated_retention": retention,
                    "max_machines": 1000,
                }
            },
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim"}}}},
        }
    )
    runtime = build_runtime(config, url)
    seed_identity(runtime)
    return runtime


@pytest.fixture
def make_runtime(redis_server, redis_client):
    made: list[Any] = []

    def make(**kw: Any) -> Any:
        made.append(runtime_for(redis_server.url, **kw))
        return made[-1]

    yield make
    for rt in made:
        rt.close()


def launch(rt: Any, count: int) -> list[Any]:
    t = rt.translator
    image = t.list(DEMO, "image")[0]
    flavor = t.smallest_flavor(DEMO, 1, 1)
    return t.create_machines(DEMO, MachineSpec(image_id=image.id, flavor_id=flavor.id, count=count))


def remembered(client: redis.Redis, kind: str, gid: str) -> dict[str, bool]:
    """Where the store still keeps something of a resource."""
    return {
        "ids": client.hexists("cg:ids", gid),
        "short": client.hexists("cg:short", short_form(gid)),
        "tags": client.hexists(tags_key(ACCOUNT, kind), gid),
        "known": client.zscore(f"cg:known:{{{ACCOUNT}|{kind}}}", gid) is not None,
    }


KEPT = {"ids": True, "short": True, "tags": True, "known": True}
GONE = {"ids": False, "short": False, "tags": False, "known": False}


def test_a_successful_delete_forgets_the_resource(make_runtime, redis_client) -> None:
    t = make_runtime(grace=3600.0).translator
    key_pair = t.create_key_pair(DEMO, "doomed", "ed25519").key_pair
    volume = t.create_volume(DEMO, VolumeSpec(size_gb=1, zone=t.zones(DEMO)[0].name))
    for kind, r in (("key_pair", key_pair), ("volume", volume)):
        t.update_tags(DEMO, kind, [r.id], {"Name": "x"})
        assert remembered(redis_client, kind, r.id) == KEPT
    t.delete_key_pair(DEMO, key_pair.id)
    t.delete_volume(DEMO, volume.id)
    assert remembered(redis_client, "key_pair", key_pair.id) == GONE
    assert remembered(redis_client, "volume", volume.id) == GONE


def test_a_listing_forgets_published_resources_it_no_longer_holds(make_runtime, redis_client) -> None:
    rt = make_runtime()
    stay, leave = launch(rt, 2)
    t = rt.translator
    t.update_tags(DEMO, "machine", [stay.id, leave.id], {"Name": "m"})
    (root,) = [v for v in t.list(DEMO, "volume") if v.attachments and v.attachments[0].machine_id == leave.id]
    t.act_on_machine(DEMO, leave.id, "terminate")  # terminated, then gone from the simulator's listings
    assert [m.id for m in t.list(DEMO, "machine")] == [stay.id]
    assert remembered(redis_client, "machine", leave.id) == GONE
    assert remembered(redis_client, "machine", stay.id) == KEPT
    assert root.id not in {v.id for v in t.list(DEMO, "volume")}  # deleted with its machine
    assert not redis_client.hexists("cg:ids", root.id)


def test_terminated_machines_stay_known_while_listings_show_them(make_runtime, redis_client) -> None:
    rt = make_runtime(retention=3600.0)
    (machine,) = launch(rt, 1)
    rt.translator.act_on_machine(DEMO, machine.id, "terminate")
    assert [m.id for m in rt.translator.list(DEMO, "machine")] == [machine.id]
    assert redis_client.hexists("cg:ids", machine.id)


def test_resources_are_forgotten_only_once_unseen_for_the_grace_period(make_runtime, redis_client) -> None:
    rt = make_runtime(grace=0.5)
    (machine,) = launch(rt, 1)
    t = rt.translator
    t.act_on_machine(DEMO, machine.id, "terminate")
    assert t.list(DEMO, "machine") == []
    assert redis_client.hexists("cg:ids", machine.id)  # seen a moment ago: a lagging listing may miss it
    time.sleep(0.6)
    rt.store.invalidate(ACCOUNT, ["machine"])
    assert t.list(DEMO, "machine") == []
    assert not redis_client.hexists("cg:ids", machine.id)


def test_a_listing_read_before_a_mutation_forgets_nothing(make_runtime, redis_client) -> None:
    store = make_runtime().store
    gid = "11111111-2222-5333-8444-555555555555"
    generation = store.index.generation(ACCOUNT, "machine")
    store.remember([(gid, ACCOUNT, "machine", "vm-1")])
    store.invalidate(ACCOUNT, ["machine"])  # the create that published it lands after the listing was read
    assert store.reconcile(ACCOUNT, "machine", generation, [], grace=0.0) == []
    assert store.resolve([gid]) == [(ACCOUNT, "machine", "vm-1")]
    assert store.reconcile(ACCOUNT, "machine", generation + 1, [], grace=0.0) == [gid]
    assert store.resolve([gid]) == [None]


def test_an_id_another_worker_still_maps_after_its_delete_reads_as_gone(make_runtime) -> None:
    """Workers remember id mappings (they never change); one deleted through another worker is answered as
    missing by the cloud, as for an id never seen, not as an error of the gateway."""
    first, second = make_runtime().translator, make_runtime().translator
    zone = first.account(DEMO).zones[0]
    volume = first.create_volume(DEMO, VolumeSpec(size_gb=1, zone=zone))
    assert [v.id for v in first.get_many(DEMO, "volume", [volume.id])] == [volume.id]  # first now maps it
    second.delete_volume(DEMO, volume.id)
    with pytest.raises(MissingIds):
        first.get_many(DEMO, "volume", [volume.id])
    with pytest.raises(NotFound):
        first.delete_volume(DEMO, volume.id)
