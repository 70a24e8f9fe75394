"""Instance elements rendered once and kept (``render.Fragments``): the bytes are those of a full rendering, a
changed value is rendered anew, and what cannot be kept is rendered as usual."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from botocore.parsers import EC2QueryParser

from frontends.ec2.render import Fragments, Rendered, render_response
from frontends.ec2.service import get_model

OPERATION = get_model().operation_model("DescribeInstances")


def instance(n: int, **extra: Any) -> dict[str, Any]:
    return {
        "InstanceId": f"i-{n:017x}",
        "ImageId": "ami-0123456789abcdef0",
        "State": {"Code": 16, "Name": "running"},
        "InstanceType": "t3.micro",
        "LaunchTime": datetime(2026, 12, 2, 10, n % 60, tzinfo=UTC),
        "Placement": {"AvailabilityZone": "zone-1a", "Tenancy": "default"},
        "PrivateIpAddress": f"10.0.0.{n % 250 + 1}",
        "EbsOptimized": False,
        "Tags": [{"Key": "Name", "Value": f"web <{n}> & co"}],  # escaped in the element
        "BlockDeviceMappings": [],
        "SecurityGroups": [{"GroupId": "sg-0123456789abcdef0", "GroupName": "default"}],
        "_Created": 1_790_000_000.0 + n,  # a handler's private key: not rendered, part of the value
        **extra,
    }


def answer(items: list[Any]) -> dict[str, Any]:
    return {"Reservations": [{"ReservationId": "r-0123456789abcdef0", "OwnerId": "123456789012", "Instances": items}]}


def parsed(body: bytes) -> dict[str, Any]:
    out = EC2QueryParser().parse({"body": body, "headers": {}, "status_code": 200}, OPERATION.output_shape)
    out.pop("ResponseMetadata", None)
    return out


def test_kept_elements_render_the_bytes_of_a_full_rendering() -> None:
    fragments = Fragments(OPERATION, ("Reservations", "Instances"))
    items = [instance(n) for n in range(5)]
    plain = render_response(OPERATION, answer(copy.deepcopy(items)), "req-1")
    first = [fragments(item) for item in items]
    again = [fragments(copy.deepcopy(item)) for item in items]  # equal values, other objects: kept ones
    assert all(type(f) is Rendered for f in first) and all(a is f for a, f in zip(again, first, strict=True))
    assert render_response(OPERATION, answer(again), "req-1") == plain
    assert parsed(plain)["Reservations"][0]["Instances"][0]["Tags"] == [{"Key": "Name", "Value": "web <0> & co"}]


def test_a_changed_value_is_rendered_anew() -> None:
    fragments = Fragments(OPERATION, ("Reservations", "Instances"))
    before = fragments(instance(1))
    stopped = fragments(instance(1, State={"Code": 80, "Name": "stopped"}))
    assert stopped != before
    states = [
        i["State"]["Name"]
        for i in parsed(render_response(OPERATION, answer([stopped]), "r"))["Reservations"][0]["Instances"]
    ]
    assert states == ["stopped"]


def test_at_most_size_are_kept() -> None:
    fragments = Fragments(OPERATION, ("Reservations", "Instances"), size=3)
    for n in range(10):
        fragments(instance(n))
    assert len(fragments) == 3


def test_a_value_orjson_cannot_spell_is_rendered_as_usual() -> None:
    fragments = Fragments(OPERATION, ("Reservations", "Instances"))
    odd = instance(2, _Extra={1: "not a string key"})
    assert fragments(odd) is odd and len(fragments) == 0
    body = render_response(OPERATION, answer([odd]), "r")
    assert parsed(body)["Reservations"][0]["Instances"][0]["InstanceId"] == odd["InstanceId"]
