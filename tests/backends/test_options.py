"""The option checks every backend driver shares (backends/options.py)."""

from __future__ import annotations

from typing import Any

import pytest

from backends import options as o

CHECKS: dict[str, o.Check | o.Nested] = {
    "timeout": o.positive,
    "password": o.non_empty,
    "mode": o.one_of(("fast", "slow")),
    "types": o.string_table("tier = native type", keys=("ssd", "hdd")),
    "disks": o.named_tables({"name": (o.non_empty, True), "size": (o.positive_int, False)}),
}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"timeout": 0}, ["timeout: must be a number > 0, got 0"]),
        ({"timeout": float("nan")}, ["timeout: must be a number > 0, got nan"]),
        ({"timout": 1}, ["timout: unknown option (known: timeout, password, mode, types, disks)"]),
        ({"mode": "medium"}, ["mode: must be one of fast, slow"]),
        ({"types": {"ssd": ""}}, ["types: must be a table of tier = native type"]),
        ({"types": {"nvme": "fast"}}, ["types: unknown key(s) 'nvme' (known: ssd, hdd)"]),
        ({"disks": [{"size": 0}]}, ["disks[0].name: is required", "disks[0].size: must be an integer > 0, got 0"]),
        ({"disks": [{"name": "a"}, {"name": "a"}]}, ["disks: duplicate name 'a'"]),
        ({"timeout": 2, "mode": "slow", "types": {"hdd": "sata"}, "disks": [{"name": "a", "size": 1}]}, []),
    ],
)
def test_validate_names_every_problem(options: dict[str, Any], expected: list[str]) -> None:
    assert sorted(o.validate(options, CHECKS)) == sorted(expected)


def test_a_wrong_string_is_never_echoed() -> None:
    """A password given as a number (or any string option) must not end up in an error line or a log."""
    (problem,) = o.validate({"password": 424242}, CHECKS)
    assert "424242" not in problem and problem.startswith("password: must be")
