"""Property tests: hostile parameter maps never crash the parser; valid results always render.

parse_params must return a dict or raise QueryError for any input; render_response must accept any
result shaped like the model and produce XML botocore can read (and, for XML-safe text, read back equal).
"""

from __future__ import annotations

import math
import string
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.model import OperationModel, Shape
from botocore.parsers import EC2QueryParser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from frontends.ec2.query import QueryError, parse_form, parse_params
from frontends.ec2.render import render_response
from frontends.ec2.service import find_operation

OPERATIONS = (
    "RunInstances",
    "DescribeInstances",
    "DescribeInstanceStatus",
    "TerminateInstances",
    "ModifyInstanceAttribute",
    "DescribeImages",
    "CreateKeyPair",
    "ImportKeyPair",
    "AuthorizeSecurityGroupIngress",
    "DescribeSecurityGroups",
    "CreateVolume",
    "DescribeVolumes",
    "DescribeSnapshots",
    "CreateTags",
    "DescribeTags",
    "DescribeSubnets",
    "DescribeRegions",
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _operation(name: str) -> OperationModel:
    operation = find_operation(name)
    assert operation is not None
    return operation


def _wire_keys(shape: Shape, prefix: str = "", depth: int = 0) -> list[str]:
    """Every parameter name the model allows, with `#` where a list index goes (test-side model walk)."""
    if depth > 6:
        return []
    if shape.type_name == "structure":
        keys = []
        for name, member in shape.members.items():
            wire = member.serialization.get("queryName") or member.serialization.get("name") or name
            wire = wire[0].upper() + wire[1:]
            keys += _wire_keys(member, f"{prefix}.{wire}" if prefix else wire, depth + 1)
        return keys
    if shape.type_name == "list":
        return _wire_keys(shape.member, f"{prefix}.#", depth + 1)
    return [prefix]


WIRE_KEYS = {name: sorted(set(_wire_keys(_operation(name).input_shape))) for name in OPERATIONS}

indices = st.one_of(
    st.integers(0, 5).map(str),
    st.sampled_from(["-1", "01", "1e3", "99999999999999999999", "", " 1", "\u0661"]),
)
values = st.one_of(
    st.text(max_size=30),
    st.integers().map(str),
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.sampled_from(["true", "FALSE", "yes", "NaN", "-Infinity", "1e400", "2026-11-21T10:00:00Z", "Zm9v", "=="]),
    st.floats(allow_nan=True).map(str),
    st.binary(max_size=20).map(lambda b: b.decode("latin-1")),
)


@st.composite
def parameter_maps(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    name = draw(st.sampled_from(OPERATIONS))
    params: dict[str, str] = {}
    for _ in range(draw(st.integers(0, 25))):
        if draw(st.booleans()):
            key = draw(st.sampled_from(WIRE_KEYS[name]))
            while "#" in key:
                key = key.replace("#", draw(indices), 1)
            if draw(st.booleans()):
                key = "".join(c.swapcase() if draw(st.booleans()) else c for c in key)
        else:
            key = draw(st.text(min_size=0, max_size=40))
        params[key] = draw(values)
    return name, params


@SETTINGS
@given(parameter_maps())
def test_parse_params_returns_dict_or_query_error(case: tuple[str, dict[str, str]]) -> None:
    name, params = case
    try:
        parsed = parse_params(_operation(name), params)
    except QueryError as error:
        assert error.code in {"MissingParameter", "InvalidParameterValue"}
        assert error.status == 400
    else:
        assert isinstance(parsed, dict)


@SETTINGS
@given(st.binary(max_size=300))
def test_parse_form_returns_dict_or_query_error(body: bytes) -> None:
    try:
        assert isinstance(parse_form(body), dict)
    except QueryError as error:
        assert error.code in {"MalformedQueryString", "InvalidParameterValue"}


# --------------------------------------------------------------------------- rendering

XML_SAFE = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")


def _value(shape: Shape | None, depth: int, text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """A strategy for valid values of `shape`, bounded in depth (EC2 output shapes nest deeply)."""
    if shape is None:
        return st.just({})  # operation without output
    kind = shape.type_name
    if kind == "structure":
        if depth > 3:
            return st.just({})
        members = {
            name: _value(member, depth + 1, text)
            for name, member in list(shape.members.items())[:12]  # keep examples small
        }
        return st.fixed_dictionaries({}, optional=members)
    if kind == "list":
        return st.lists(_value(shape.member, depth + 1, text), max_size=2 if depth > 1 else 3)
    if kind in ("integer", "long"):
        bound = 2**31 - 1 if kind == "integer" else 2**63 - 1
        return st.integers(-bound - 1, bound)
    if kind == "boolean":
        return st.booleans()
    if kind in ("float", "double"):
        return st.floats(allow_nan=True, allow_infinity=True)
    if kind == "timestamp":
        return st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)).map(
            lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)
        )
    if kind == "blob":
        return st.binary(max_size=20)
    return st.text(text, max_size=20)


def _results(text: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, Any]]:
    return st.sampled_from(OPERATIONS).flatmap(
        lambda name: st.tuples(st.just(name), _value(_operation(name).output_shape, 0, text))
    )


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, datetime):
        return round(value.timestamp(), 3)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else value
    return value


def _botocore_read(operation: OperationModel, body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = EC2QueryParser().parse(
        {"body": body, "headers": {}, "status_code": 200}, operation.output_shape
    )
    parsed.pop("ResponseMetadata")
    return parsed


@SETTINGS
@given(_results(XML_SAFE))
def test_render_round_trips_through_botocore(case: tuple[str, Any]) -> None:
    name, result = case
    operation = _operation(name)
    body = render_response(operation, result, "fuzz")
    assert _comparable(_botocore_read(operation, body)) == _comparable(result)


@SETTINGS
@given(_results(st.characters()), st.text(string.printable + "\x00\ud800<&>", max_size=10))
def test_render_any_text_stays_well_formed(case: tuple[str, Any], request_id: str) -> None:
    name, result = case
    operation = _operation(name)
    _botocore_read(operation, render_response(operation, result, request_id))


# --------------------------------------------------------------------------- specific behaviours


def _error_code(name: str, params: dict[str, str]) -> str:
    try:
        parse_params(_operation(name), params)
    except QueryError as error:
        return error.code
    return "no error"


def test_lowercase_names_and_zero_based_indices_are_accepted() -> None:
    params = {
        "imageid": "ami-1",
        "MINCOUNT": "1",
        "maxCount": "2",
        "securitygroupid.0": "sg-a",
        "SecurityGroupId.7": "sg-b",
    }
    parsed = parse_params(_operation("RunInstances"), {**params, "UserData": "aGk=", "Action": "RunInstances"})
    assert parsed == {
        "ImageId": "ami-1",
        "MinCount": 1,
        "MaxCount": 2,
        "SecurityGroupIds": ["sg-a", "sg-b"],
        "UserData": "aGk=",  # a base64 *string* shape in the model: kept as text
    }


def test_missing_and_invalid_parameters_get_ec2_codes() -> None:
    assert _error_code("RunInstances", {"MaxCount": "1"}) == "MissingParameter"
    assert _error_code("RunInstances", {"MinCount": "abc", "MaxCount": "1"}) == "InvalidParameterValue"
    assert _error_code("RunInstances", {"MinCount": "1", "MaxCount": str(2**31)}) == "InvalidParameterValue"
    assert _error_code("RunInstances", {"MinCount": "1", "MaxCount": "1", "DryRun": "yes"}) == "InvalidParameterValue"
    assert _error_code("DescribeInstances", {"InstanceId.1": "a", "instanceid.01": "b"}) == "InvalidParameterValue"


def test_message_names_the_parameter_as_sent_on_the_wire() -> None:
    with pytest.raises(QueryError) as info:
        parse_params(_operation("RunInstances"), {"MinCount": "1", "MaxCount": "abc"})
    assert info.value.message.startswith("Value (abc) for parameter MaxCount is invalid.")


def test_form_decoding_is_strict() -> None:
    assert parse_form(b"A=1&&B=x+y%2Fz&C") == {"A": "1", "B": "x y/z", "C": ""}
    for body, code in (
        (b"A=%G1", "MalformedQueryString"),
        (b"A=%C3", "InvalidParameterValue"),
        (b"A=1&A=2", "MalformedQueryString"),
    ):
        with pytest.raises(QueryError) as info:
            parse_form(body)
        assert info.value.code == code
    with pytest.raises(QueryError):
        parse_form(b"&".join(b"K%d=1" % i for i in range(10_001)))
