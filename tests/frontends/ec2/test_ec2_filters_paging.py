"""The filter engine and the pagination cursor on their own: EC2's documented wildcard and paging rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import apply, table
from frontends.ec2.paging import paginate

TABLE = table({"name": "Name", "zone": "Placement.Zone", "group-id": "Groups[].Id", "when": "When", "on": "On"})


def item(name: str, **kw: Any) -> dict[str, Any]:
    return {"Name": name, **kw}


@pytest.mark.parametrize(
    ("pattern", "value", "matches"),
    [
        ("web*", "web-1", True),
        ("web*", "web", True),  # * matches nothing too
        ("*-1", "web-1", True),
        ("web?", "web1", True),
        ("web?", "web", False),  # ? is exactly one character
        ("web?", "web12", False),
        ("web", "web-1", False),  # no wildcard: the whole value
        ("WEB", "web", False),  # case-sensitive
        ("a\\*b", "a*b", True),  # backslash escapes a wildcard
        ("a\\*b", "axb", False),
        ("a\\?", "a?", True),
        ("a.c", "abc", False),  # regex characters are literal
        ("(x)+", "(x)+", True),
    ],
)
def test_wildcards(pattern: str, value: str, matches: bool) -> None:
    found = apply([item(value)], [{"Name": "name", "Values": [pattern]}], TABLE)
    assert bool(found) is matches


def test_values_are_ored_filters_are_anded_lists_match_any_member() -> None:
    items = [
        item("a", Placement={"Zone": "z1"}, Groups=[{"Id": "sg-1"}, {"Id": "sg-2"}]),
        item("b", Placement={"Zone": "z2"}, Groups=[{"Id": "sg-2"}]),
        item("c", Placement={"Zone": "z1"}, Groups=[]),
    ]
    names = lambda filters: [i["Name"] for i in apply(items, filters, TABLE)]  # noqa: E731
    assert names([{"Name": "zone", "Values": ["z1", "z2"]}]) == ["a", "b", "c"]
    assert names([{"Name": "zone", "Values": ["z1"]}, {"Name": "group-id", "Values": ["sg-2"]}]) == ["a"]
    assert names([{"Name": "group-id", "Values": ["sg-1"]}]) == ["a"]
    assert names([{"Name": "group-id", "Values": ["*"]}]) == ["a", "b"]  # nothing to match in an empty list


def test_tags_booleans_and_timestamps() -> None:
    items = [
        item("a", Tags=[{"Key": "env", "Value": "prod"}], On=True, When=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        item("b", Tags=[{"Key": "team", "Value": "prod"}], On=False),
    ]
    names = lambda filters: [i["Name"] for i in apply(items, filters, TABLE)]  # noqa: E731
    assert names([{"Name": "tag:env", "Values": ["prod"]}]) == ["a"]
    assert names([{"Name": "tag-key", "Values": ["team"]}]) == ["b"]
    assert names([{"Name": "tag-value", "Values": ["prod"]}]) == ["a", "b"]
    assert names([{"Name": "on", "Values": ["false"]}]) == ["b"]
    assert names([{"Name": "when", "Values": ["2026-01-02T*"]}]) == ["a"]


@pytest.mark.parametrize(
    "filters",
    [[{"Name": "unknown", "Values": ["x"]}], [{"Name": "name", "Values": []}], [{"Values": ["x"]}]],
)
def test_bad_filters_are_invalid_parameter_values(filters: list[dict[str, Any]]) -> None:
    with pytest.raises(EC2Error) as excinfo:
        apply([item("a")], filters, TABLE)
    assert excinfo.value.code == "InvalidParameterValue"


def key(i: dict[str, Any]) -> tuple[Any, ...]:
    return (i["At"], i["Name"])


def walk(items: list[dict[str, Any]], limit: int) -> list[list[str]]:
    pages, token = [], None
    for _ in range(len(items) + 2):
        page = paginate("Describe", items, {"MaxResults": limit, "NextToken": token}, key)
        pages.append([i["Name"] for i in page.items])
        token = page.next_token
        if token is None:
            return pages
    raise AssertionError("pagination did not end")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.text("abcdef", min_size=1, max_size=4)), unique_by=lambda t: t[1]),
    st.integers(5, 9),
)
def test_pages_cover_everything_once_in_order(rows: list[tuple[int, str]], limit: int) -> None:
    items = [{"At": at, "Name": name} for at, name in rows]
    pages = walk(items, limit)
    flat = [n for page in pages for n in page]
    assert flat == [i["Name"] for i in sorted(items, key=key)]
    assert all(len(p) == limit for p in pages[:-1]) and len(pages[-1]) <= limit


def test_changes_between_pages_never_repeat_or_skip_the_others() -> None:
    items = [{"At": n, "Name": f"i{n:02d}"} for n in range(12)]
    first = paginate("Describe", items, {"MaxResults": 5}, key)
    changed = [i for i in items if i["Name"] not in ("i01", "i07")] + [{"At": 20, "Name": "late"}]
    second = paginate("Describe", changed, {"MaxResults": 5, "NextToken": first.next_token}, key)
    assert [i["Name"] for i in second.items] == ["i05", "i06", "i08", "i09", "i10"]


@pytest.mark.parametrize("token", ["garbage", "e30", "WyJPdGhlciIsWzFdXQ"])  # {} and ["Other",[1]]
def test_foreign_or_broken_tokens_are_refused(token: str) -> None:
    with pytest.raises(EC2Error) as excinfo:
        paginate("Describe", [], {"MaxResults": 5, "NextToken": token}, key)
    assert excinfo.value.code == "InvalidPaginationToken"


@pytest.mark.parametrize("limit", [4, 1001, -1])
def test_max_results_out_of_range(limit: int) -> None:
    with pytest.raises(EC2Error) as excinfo:
        paginate("Describe", [], {"MaxResults": limit}, key)
    assert excinfo.value.code == "InvalidParameterValue"
