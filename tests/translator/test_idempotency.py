"""Idempotency keys over a real Redis: claims that lapse, heartbeats that keep them, keys the backend sees."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.app import build_runtime, seed_identity
from gateway.config import parse
from translator.codec import dumps
from translator.errors import BackendUnavailable, Conflict
from translator.idempotency import Idempotency, backend_key, fingerprint
from translator.model import JobState, MachineSpec, Principal, VolumeSpec
from translator.store import Store

DEMO = Principal(user="u", tenant="demo", role="admin")
LEASE = 0.3


@dataclass
class Made:
    id: str


def pending(name: str) -> bytes:
    return dumps({"fp": "f", "state": "pending", "claim": name})


def test_a_claim_lapses_without_renewal_and_a_stalled_claimer_cannot_undo_the_next(redis_client) -> None:
    store = Store(redis_client)
    first, second = pending("first"), pending("second")
    assert store.idempotency_claim("demo", "t", first, LEASE) is None
    assert store.idempotency_claim("demo", "t", second, LEASE) == {"fp": "f", "state": "pending", "claim": "first"}
    assert store.idempotency_claim("other", "t", second, LEASE) is None, "tokens are per tenant"
    assert 0 < redis_client.pttl("cg:idem:demo:t") <= LEASE * 1000, "a pending record holds a lease, not the TTL"
    deadline = time.monotonic() + 5
    while store.idempotency_claim("demo", "t", second, LEASE) is not None:
        assert time.monotonic() < deadline, "the lapsed claim was never taken over"
        time.sleep(0.05)
    # The first claimer wakes up: it can neither renew, release nor complete the token it lost.
    assert not store.idempotency_renew("demo", "t", first, LEASE)
    store.idempotency_release("demo", "t", first)
    store.idempotency_complete("demo", "t", first, dumps({"state": "done"}), 60)
    assert store.idempotency_claim("demo", "t", first, LEASE)["claim"] == "second"
    assert store.idempotency_renew("demo", "t", second, 60)
    store.idempotency_complete("demo", "t", second, dumps({"fp": "f", "state": "done"}), 60)
    assert redis_client.ttl("cg:idem:demo:t") > 50, "a completed record keeps idempotency_ttl"


@pytest.mark.parametrize(
    ("lease", "takes"),
    [
        (LEASE, LEASE * 4),
        # renewed every 1.1 s, later than the heartbeat thread looks by itself (Heartbeats.IDLE): the create
        # does not wake it, and its claim is renewed all the same (4.95 s)
        (3.3, 3.3 * 1.5),
    ],
)
def test_a_slow_create_keeps_its_claim_and_repeats_wait_for_its_result(redis_client, lease, takes) -> None:
    """The work takes longer than its lease; the heartbeat keeps the claim, so the repeats get the first result."""
    idem = Idempotency(Store(redis_client), ttl=60, lease=lease, wait=10)
    calls: list[str] = []
    spec = MachineSpec(image_id="i", flavor_id="f", idempotency_key="tok")

    def work(keyed: MachineSpec) -> list[Made]:
        calls.append(keyed.idempotency_key)
        time.sleep(takes)
        return [Made("m-1"), Made("m-2")]

    def fetch(ids: list[str]) -> list[Made]:
        return [Made(i) for i in ids]

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: idem.run("demo/r1", "machine", spec, work, fetch), range(6)))
    assert len(calls) == 1
    assert all([m.id for m in r] == ["m-1", "m-2"] for r in results)
    assert calls[0] == backend_key("demo/r1", "tok", fingerprint("demo/r1", spec))
    with pytest.raises(Conflict) as mismatch:
        idem.run("demo/r1", "machine", MachineSpec(image_id="i", flavor_id="g", idempotency_key="tok"), work, fetch)
    assert mismatch.value.reason == "idempotency"
    assert len(calls) == 1


def test_a_repeat_that_waits_too_long_is_told_to_retry(redis_client) -> None:
    idem = Idempotency(Store(redis_client), ttl=60, lease=5, wait=0.2)
    started, release = threading.Event(), threading.Event()
    spec = VolumeSpec(size_gb=1, idempotency_key="slow")

    def slow(keyed: VolumeSpec) -> list[Made]:
        started.set()
        release.wait(10)
        return [Made("v-1")]

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(idem.run, "demo/r1", "volume", spec, slow, lambda ids: [Made(i) for i in ids])
        assert started.wait(10)
        with pytest.raises(BackendUnavailable) as busy:
            idem.run("demo/r1", "volume", spec, slow, lambda ids: [Made(i) for i in ids])
        release.set()
        assert [v.id for v in first.result(10)] == ["v-1"]
    assert busy.value.reason == "in_progress"


def test_a_failed_create_frees_its_token_for_a_retry(redis_client) -> None:
    idem = Idempotency(Store(redis_client), ttl=60, lease=5)
    spec = VolumeSpec(size_gb=1, idempotency_key="again")
    keys: list[str] = []

    def failing(keyed: VolumeSpec) -> list[Any]:
        keys.append(keyed.idempotency_key)
        raise BackendUnavailable("down")

    with pytest.raises(BackendUnavailable):
        idem.run("demo/r1", "volume", spec, failing, lambda ids: [])
    assert not redis_client.exists("cg:idem:demo/r1:again")
    made = idem.run("demo/r1", "volume", spec, lambda keyed: keys.append(keyed.idempotency_key) or [Made("v")], list)
    assert [v.id for v in made] == ["v"]
    assert keys[0] == keys[1], "the retry hands the backend the same key: it finds what the first attempt made"


def test_keys_are_per_account_token_and_arguments_and_never_fingerprinted() -> None:
    spec = MachineSpec(image_id="i", flavor_id="f")
    assert fingerprint("demo/r1", spec) == fingerprint(
        "demo/r1", MachineSpec(image_id="i", flavor_id="f", idempotency_key="x")
    )
    assert fingerprint("demo/r1", spec) != fingerprint("demo/r2", spec)
    fp = fingerprint("demo/r1", spec)
    key = backend_key("demo/r1", "tok", fp)
    assert len(key) == 32 and key == backend_key("demo/r1", "tok", fp)
    assert (
        len(
            {
                key,
                backend_key("other/r1", "tok", fp),
                backend_key("demo/r1", "tok2", fp),
                backend_key("demo/r1", "tok", "x"),
            }
        )
        == 4
    )


def test_a_create_without_token_gets_a_fresh_key_of_its_own(redis_client) -> None:
    idem = Idempotency(Store(redis_client), ttl=60)
    keys: list[str] = []
    for _ in range(2):
        idem.run("demo/r1", "volume", VolumeSpec(size_gb=1), lambda k: keys.append(k.idempotency_key) or [], list)
    assert all(keys) and keys[0] != keys[1]
    assert not redis_client.keys("cg:idem:*"), "no record without a caller's token"


# ---------------------------------------------------------------------------------------------------
# Through the translator and the simulator whose answers to creates get lost (faults.timeout_after_create)
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def lossy(redis_server, redis_client):
    """A translator whose simulator makes the first two creates, then loses their answers; two attempts a call."""
    config = parse(
        {
            "gateway": {"redis_url": redis_server.url},
            "translator": {"cache_ttl": 0.0, "retry_attempts": 2, "retry_initial_wait": 0.0},
            "backends": {"sim": {"driver": "simulator", "boot_delay": 0.0, "faults": {"timeout_after_create": 2}}},
            "tenants": {"demo": {"regions": {"r1": {"backend": "sim", "zones": ["r1a"]}}}},
        }
    )
    runtime = build_runtime(config, redis_server.url)
    seed_identity(runtime)
    yield runtime.translator
    runtime.close()


def test_a_keyed_create_whose_answer_is_lost_is_resent_and_finds_the_first(lossy) -> None:
    """No token from the caller: the translator's own key makes its resend find the machines already made."""
    image = lossy.list(DEMO, "image")[0]
    flavor = next(f for f in lossy.list(DEMO, "flavor") if f.name == "t3.micro")
    spec = MachineSpec(image_id=image.id, flavor_id=flavor.id, count=2)
    with pytest.raises(BackendUnavailable):
        lossy.create_machines(DEMO, spec)  # made, answer lost, resent: found, answer lost again
    assert len(lossy.list(DEMO, "machine")) == 2, "the resend made nothing new"
    # The caller's retry carries no token: a new request, new machines (as EC2 without ClientToken).
    assert len(lossy.create_machines(DEMO, spec)) == 2
    assert len(lossy.list(DEMO, "machine")) == 4


def test_a_create_whose_answer_is_lost_is_found_by_the_callers_retry_with_its_token(lossy) -> None:
    spec = VolumeSpec(size_gb=1, zone="r1a", idempotency_key="vol-token")
    with pytest.raises(BackendUnavailable):
        lossy.create_volume(DEMO, spec)
    (made,) = lossy.list(DEMO, "volume")
    assert lossy.create_volume(DEMO, spec).id == made.id
    assert lossy.create_volume(DEMO, spec).id == made.id
    assert [v.id for v in lossy.list(DEMO, "volume")] == [made.id]


def test_a_create_without_key_is_not_resent_once_it_may_have_reached_the_cloud(lossy) -> None:
    """A key pair has no idempotency key: its lost answer is unavailable at once, not a second create (which
    would also answer "duplicate" for the pair the first attempt made)."""
    with pytest.raises(BackendUnavailable):
        lossy.create_key_pair(DEMO, "k1")
    assert [k.name for k in lossy.list(DEMO, "key_pair")] == ["k1"]
    (job,) = [j for j in lossy.list_jobs(DEMO).items if j.operation == "create_key_pair"]
    assert job.state == JobState.FAILED
    with pytest.raises(BackendUnavailable):
        lossy.create_key_pair(DEMO, "k2")  # the second lost answer (resent, it would have been "duplicate")
    assert sorted(k.name for k in lossy.list(DEMO, "key_pair")) == ["k1", "k2"]


def test_a_token_belongs_to_one_region(redis_client) -> None:
    """EC2 scopes ClientToken per region: the same token in another of the tenant's regions is another create."""
    idem = Idempotency(Store(redis_client), ttl=60)
    spec = VolumeSpec(size_gb=1, idempotency_key="same-token")
    made = [
        idem.run(region, "volume", spec, lambda keyed, r=region: [Made(f"v-{r}")], lambda ids: [Made(i) for i in ids])
        for region in ("demo/r1", "demo/r2", "demo/r1")
    ]
    assert [[v.id for v in m] for m in made] == [["v-demo/r1"], ["v-demo/r2"], ["v-demo/r1"]]


def _fetch(ids: list[str]) -> list[Made]:
    return [Made(i) for i in ids]
