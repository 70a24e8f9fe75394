"""Machines mapped once per Describe answer (backends/ec2/machine_memo.py): against moto through the EC2 backend, and
the memo's own rules with a mapping that counts its calls."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from peers.moto_server import MotoServer
from test_ec2_backend import make_backend, moto, options  # noqa: F401 (moto: its fixture, shared)

from backends.ec2 import EC2Backend, machine_memo
from backends.ec2.machine_memo import MachineMemo
from translator import read_cache
from translator.model import Machine, MachineState


@pytest.fixture
def cloud(moto: MotoServer) -> tuple[Any, list[str]]:  # noqa: F811 (the fixture)
    """moto emptied, then three instances launched by boto3; the client and their ids."""
    moto.reset()
    ec2 = moto.client()
    image = moto.register_image(ec2, "ubuntu-24.04")
    made = ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=3, MaxCount=3)
    return ec2, [i["InstanceId"] for i in made["Instances"]]


@pytest.fixture
def backend(cloud: Any, moto: MotoServer, redis_client: redis.Redis) -> Iterator[EC2Backend]:  # noqa: F811
    b = make_backend(redis_client, options(moto))
    yield b
    b.close()


def test_an_unchanged_listing_comes_from_the_memo_as_a_copy_with_its_fingerprint(
    backend: EC2Backend, cloud: tuple[Any, list[str]]
) -> None:
    first = backend.list_machines()
    second = backend.list_machines()
    assert sorted(m.native_id for m in first) == sorted(cloud[1])
    assert second == first
    assert isinstance(first, read_cache.Fingerprinted) and isinstance(second, read_cache.Fingerprinted)
    # the very fingerprint kept with the first mapping (a second mapping would have pickled and hashed afresh)
    assert second.fingerprint is first.fingerprint
    assert read_cache.fingerprint(second) == first.fingerprint
    # each caller gets machines of its own: the translator stamps and merges tags into what it is given
    assert all(a is not b for a, b in zip(first, second, strict=True))
    second[0].tags["stamped"] = "by a caller"
    second[0].id = "gateway-id"
    third = backend.list_machines()
    assert third == first and "stamped" not in third[0].tags and third[0].id == first[0].id


def test_a_change_in_the_cloud_is_mapped_and_changes_the_fingerprint(
    backend: EC2Backend, cloud: tuple[Any, list[str]]
) -> None:
    ec2, ids = cloud
    before = backend.list_machines()
    ec2.create_tags(Resources=[ids[0]], Tags=[{"Key": "Name", "Value": "renamed"}])
    after = backend.list_machines()
    assert {m.native_id: m.name for m in after}[ids[0]] == "renamed"
    assert isinstance(after, read_cache.Fingerprinted) and after.fingerprint != before.fingerprint  # type: ignore[attr-defined]
    # a read by id maps from its own answer, and is kept apart from the listing's
    (one,) = backend.get_machines([ids[0]])
    assert one.name == "renamed"


# ---------------------------------------------------------------------------------------------------
# The memo's rules
# ---------------------------------------------------------------------------------------------------


class Mapping:
    """A stand-in for the backend's mapping of reservations: counts its calls."""

    def __init__(self, reservations: list[dict[str, Any]]) -> None:
        self.reservations = reservations
        self.calls = 0

    def __call__(self) -> list[Machine]:
        self.calls += 1
        return [
            Machine(native_id=i, name=f"vm {i}", state=MachineState.RUNNING)
            for r in self.reservations
            for i in r["Instances"]
        ]


def reservations(*ids: str) -> list[dict[str, Any]]:
    return [{"Instances": [i]} for i in ids]


def test_the_same_reservations_and_inputs_are_mapped_once() -> None:
    memo, backend, catalogue = MachineMemo(), object(), {"t3.micro": object()}
    held = reservations("i-1", "i-2")
    mapped = Mapping(held)
    first = memo.machines(held, (backend, catalogue), mapped)
    # a new list of the same reservation objects (as paging concatenates them) still hits
    again = memo.machines(list(held), (backend, catalogue), mapped)
    assert mapped.calls == 1 and again == first
    # equal reservations that are other objects were read from another answer: mapped again
    memo.machines(reservations("i-1", "i-2"), (backend, catalogue), mapped)
    assert mapped.calls == 2
    # so is the same answer under a catalogue fetched again, or for another backend (its own zone map)
    memo.machines(held, (backend, dict(catalogue)), mapped)
    memo.machines(held, (object(), catalogue), mapped)
    assert mapped.calls == 4


def test_the_memo_forgets_the_least_recently_used_past_its_limit() -> None:
    one, two = reservations("i-1"), reservations("i-2")
    size = len(pickle.dumps(Mapping(one)(), protocol=pickle.HIGHEST_PROTOCOL))
    memo, inputs = MachineMemo(limit_bytes=4 * size + 3), ({},)  # a listing may take a quarter: room for four
    first, second = Mapping(one), Mapping(two)
    memo.machines(one, inputs, first)
    for other in "abcde":  # five other answers (of as many bytes) push the first out
        memo.machines(reservations(f"i-{other}"), inputs, Mapping(reservations(f"i-{other}")))
    memo.machines(one, inputs, first)
    assert first.calls == 2
    memo.machines(two, inputs, second)
    memo.machines(two, inputs, second)
    assert second.calls == 1


def test_a_large_listing_is_neither_kept_nor_fingerprinted_here() -> None:
    """The answer memo keeps no answer of that many instances: its reservations are never the same twice."""
    memo, inputs = MachineMemo(limit_bytes=1 << 30), ({},)
    held = reservations(*(f"i-{n}" for n in range(machine_memo.MOST + 1)))
    mapped = Mapping(held)
    result = memo.machines(held, inputs, mapped)
    memo.machines(held, inputs, mapped)
    assert mapped.calls == 2 and not isinstance(result, read_cache.Fingerprinted)
    assert read_cache.fingerprint(result) is not None  # the read cache pickles it itself, as before
    small = reservations(*(f"i-{n}" for n in range(machine_memo.MOST)))
    assert isinstance(memo.machines(small, inputs, Mapping(small)), read_cache.Fingerprinted)
