"""CIMI collection query parameters: parsing into CollectionQuery, the 400 cases, and the helpers the collection
controllers call (window, apply_select, sort_key)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontends.cimi.filter import parse_filter
from frontends.cimi.query import (
    CollectionQuery,
    QueryError,
    apply_select,
    orderby_key,
    parse_query,
    sort_key,
    window,
)

# (query parameters as falcon gives them, the fields expected on the CollectionQuery)
VALID = [
    ({}, {}),
    ({"other": "x", "format": ["a", "b"]}, {}),  # not ours: ignored
    ({"$select": "name,state"}, {"select": frozenset({"name", "state"})}),
    ({"$select": ["name", " state , cpu "]}, {"select": frozenset({"name", "state", "cpu"})}),
    ({"$select": "*"}, {"select": None}),
    ({"$select": "name,*"}, {"select": None}),
    ({"$expand": "machineConfig,volumes"}, {"expand": frozenset({"machineConfig", "volumes"})}),
    ({"$expand": "*"}, {"expand_all": True}),
    ({"$first": "3"}, {"first": 3}),
    ({"$last": "5"}, {"last": 5}),
    ({"$first": "2", "$last": "2"}, {"first": 2, "last": 2}),
    ({"$first": "007"}, {"first": 7}),
    ({"$orderby": "name"}, {"orderby": (("name", False),)}),
    ({"$orderby": "name:desc,created:asc"}, {"orderby": (("name", True), ("created", False))}),
    ({"$orderby": ["cpu:DESC", "machineConfig.href"]}, {"orderby": (("cpu", True), ("machineConfig.href", False))}),
    ({"$filter": "state='STARTED'"}, {"filter": parse_filter("state='STARTED'")}),
    ({"$filter": ["a=1 or b=2", "c=3"]}, {"filter": parse_filter("(a=1 or b=2) and c=3")}),
]

# (query parameters, words the message must contain)
INVALID = [
    ({"$top": "5"}, "unknown query parameter '$top'"),
    ({"$Filter": "a=1"}, "unknown query parameter"),
    ({"$first": "0"}, "counts from 1"),
    ({"$first": "-1"}, "whole number"),
    ({"$first": "1.5"}, "whole number"),
    ({"$first": ""}, "whole number"),
    ({"$first": "\u0663"}, "whole number"),  # an Arabic-Indic digit: int() would take it
    ({"$first": "1_000"}, "whole number"),
    ({"$last": "99999999999999999999999"}, "larger than"),
    ({"$first": ["1", "2"]}, "only once"),
    ({"$first": "5", "$last": "4"}, "after $last"),
    ({"$select": "name,,state"}, "empty name"),
    ({"$select": ""}, "empty name"),
    ({"$select": "machineConfig.href"}, "not an attribute name"),
    ({"$expand": "a b"}, "not an attribute name"),
    ({"$orderby": "name:up"}, ":asc or :desc"),
    ({"$orderby": "name,"}, "empty name"),
    ({"$orderby": "name,name:desc"}, "twice"),
    ({"$orderby": "and"}, "not an attribute name"),
    ({"$filter": "state="}, "$filter: unexpected end of filter at column 7"),
    ({"$filter": ["a=1", "b=="]}, "$filter: unexpected '=' at column 3"),
]


@pytest.mark.parametrize(("params", "fields"), VALID)
def test_valid_parameters(params: dict, fields: dict) -> None:
    assert parse_query(params) == CollectionQuery(**fields)


@pytest.mark.parametrize(("params", "words"), INVALID)
def test_invalid_parameters_are_query_errors(params: dict, words: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(params)
    assert words in caught.value.message
    assert caught.value.parameter is not None


def test_filter_error_keeps_its_position() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query({"$filter": "state='x' cpu=1"})
    assert (caught.value.parameter, caught.value.position) == ("$filter", 10)


def test_expands() -> None:
    assert parse_query({"$expand": "machineConfig"}).expands("machineConfig")
    assert not parse_query({"$expand": "machineConfig"}).expands("volumes")
    assert parse_query({"$expand": "*"}).expands("volumes")
    assert not parse_query({}).expands("volumes")


@pytest.mark.parametrize(
    ("first", "last", "expected"),
    [
        (None, None, (0, None)),
        (1, None, (0, None)),
        (3, None, (2, None)),
        (None, 5, (0, 5)),
        (1, 5, (0, 5)),
        (3, 5, (2, 3)),
        (4, 4, (3, 1)),
    ],
)
def test_window(first: int | None, last: int | None, expected: tuple[int, int | None]) -> None:
    assert window(first, last) == expected
    assert CollectionQuery(first=first, last=last).window() == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.integers(0, 60))
def test_window_slices_the_positions_dsp0263_names(first: int, last: int, size: int) -> None:
    """Positions are 1-based and inclusive: $first=2&$last=3 of [a, b, c, d] is [b, c]."""
    if first > last:
        return
    items = list(range(1, size + 1))  # each item is its own 1-based position
    offset, limit = window(first, last)
    assert items[offset : offset + limit] == [p for p in items if first <= p <= last]


def test_apply_select_keeps_id_and_resource_uri() -> None:
    doc = {"resourceURI": "R", "id": "I", "name": "n", "state": "S", "operations": []}
    assert apply_select(doc, frozenset({"name"})) == {"resourceURI": "R", "id": "I", "name": "n"}
    assert apply_select(doc, frozenset({"name", "absent"})) == {"resourceURI": "R", "id": "I", "name": "n"}
    assert apply_select(doc, frozenset({"state"}), keep=("id", "operations")) == {
        "id": "I",
        "state": "S",
        "operations": [],
    }
    assert apply_select(doc, None) == doc
    assert doc["state"] == "S"  # the input is left alone


DOCS = [
    {"id": "a", "name": "web", "cpu": 4, "created": "2012-06-01T10:00:00Z", "ref": {"href": "http://h/2"}},
    {"id": "b", "name": "db", "cpu": "16", "created": "2012-06-01T09:00:00-02:00"},  # 11:00Z
    {"id": "c", "name": "Cache", "cpu": 2, "created": "2011-12-31", "ref": {"href": "http://h/1"}},
    {"id": "d", "cpu": 8},
]


def _order(attr: str, descending: bool = False) -> list[str]:
    return [doc["id"] for doc in sorted(DOCS, key=lambda doc: sort_key(doc, attr, descending))]


def test_sort_key_types_and_missing_last() -> None:
    assert _order("cpu") == ["c", "a", "d", "b"]  # numerically, "16" included
    assert _order("cpu", descending=True) == ["b", "d", "a", "c"]
    assert _order("created") == ["c", "a", "b", "d"]  # as instants; missing last
    assert _order("created", descending=True) == ["b", "a", "c", "d"]  # missing still last
    assert _order("name") == ["c", "b", "a", "d"]  # lexically (code points: upper case first)
    assert _order("ref") == ["c", "a", "b", "d"]  # references by href
    assert _order("ref.href", descending=True) == ["a", "c", "b", "d"]


def test_orderby_key_mixes_directions_and_breaks_ties_by_id() -> None:
    docs = [
        {"id": "1", "state": "STOPPED", "cpu": 2},
        {"id": "2", "state": "STARTED", "cpu": 2},
        {"id": "3", "state": "STARTED", "cpu": 8},
        {"id": "4", "state": "STARTED", "cpu": 8},
        {"id": "5", "cpu": 1},
    ]
    ordered = sorted(docs, key=orderby_key(parse_query({"$orderby": "state,cpu:desc"}).orderby))
    assert [doc["id"] for doc in ordered] == ["3", "4", "2", "1", "5"]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["$filter", "$select", "$expand", "$first", "$last", "$orderby", "$x", "other"]),
        st.one_of(st.text(max_size=30), st.lists(st.text(max_size=20), max_size=3)),
    )
)
def test_random_parameters_raise_only_query_error(params: dict) -> None:
    try:
        query = parse_query(params)
    except QueryError:
        return
    assert isinstance(query, CollectionQuery)
    offset, limit = query.window()
    assert offset >= 0 and (limit is None or limit >= 1)
