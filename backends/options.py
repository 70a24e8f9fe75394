"""Typed checks of backend options, shared by every driver, and the one validator of a table of them.

A driver's options arrive as TOML values (``[backends.NAME]`` merged with the account's region table). Each
driver declares one table, option name -> check; a check answers what is wrong with a value (None when it is
fine), and ``validate`` turns a whole table into ``key: what is wrong`` lines, unknown keys included (typos).
Checks never echo a string value back: an option may be a secret.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], str | None]


@dataclass(frozen=True, slots=True)
class Nested:
    """The check of an option whose value is a table or a list of tables: its problems name their own paths."""

    problems: Callable[[str, Any], list[str]]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def positive(value: Any) -> str | None:
    return None if _number(value) and value > 0 else f"must be a number > 0, got {value!r}"


def non_negative(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else f"must be a number >= 0, got {value!r}"


def positive_int(value: Any) -> str | None:
    return None if _integer(value) and value > 0 else f"must be an integer > 0, got {value!r}"


def non_negative_int(value: Any) -> str | None:
    return None if _integer(value) and value >= 0 else f"must be an integer >= 0, got {value!r}"


def fraction(value: Any) -> str | None:
    return None if _number(value) and 0 <= value <= 1 else f"must be a number between 0 and 1, got {value!r}"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def text(value: Any) -> str | None:
    """Any string, empty included."""
    return None if isinstance(value, str) else "must be a string"


def non_empty(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


_URL = re.compile(r"^https?://\S+$")


def url(value: Any) -> str | None:
    return None if isinstance(value, str) and _URL.match(value) else "must be an http:// or https:// URL"


def url_or_empty(value: Any) -> str | None:
    """A URL, or empty for the driver's default endpoint."""
    ok = isinstance(value, str) and (value == "" or _URL.match(value))
    return None if ok else "must be an http:// or https:// URL (or empty for the default endpoint)"


def tls(value: Any) -> str | None:
    """Whether to verify TLS certificates: true, false, or the path of a CA bundle."""
    ok = isinstance(value, bool) or (isinstance(value, str) and value != "")
    return None if ok else f"must be true, false or the path of a CA bundle, got {value!r}"


def one_of(choices: Iterable[str]) -> Check:
    allowed = tuple(choices)
    return lambda value: None if value in allowed else f"must be one of {', '.join(allowed)}"


def names(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    return None if ok else "must be a list of non-empty strings"


def names_of(choices: Iterable[str]) -> Check:
    """A list whose every item is one of ``choices``."""
    allowed = tuple(choices)
    return lambda value: (
        None
        if isinstance(value, list) and all(v in allowed for v in value)
        else f"must be a list of: {', '.join(allowed)}"
    )


def string_table(what: str, keys: Iterable[str] | None = None) -> Check:
    """A table of non-empty string = non-empty string (``what`` says which), its keys among ``keys`` if given."""
    allowed = tuple(keys) if keys is not None else None

    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and k and isinstance(v, str) and v for k, v in value.items()
        ):
            return f"must be a table of {what}"
        unknown = [k for k in value if allowed is not None and k not in allowed]
        return (
            f"unknown key(s) {', '.join(map(repr, unknown))} (known: {', '.join(allowed or ())})" if unknown else None
        )

    return check


def list_table(what: str) -> Check:
    """A table of name = non-empty list of non-empty strings."""
    return lambda value: (
        None
        if isinstance(value, Mapping) and all(names(v) is None and v for v in value.values())
        else f"must be a table of {what}"
    )


# -- nested tables (a list of images, a table of fault settings) ---------------------------------------------

#: field -> (check, required), for the tables inside an option.
Fields = Mapping[str, tuple[Check, bool]]


def _table_problems(prefix: str, value: Any, fields: Fields) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{prefix}: must be a table, got {value!r}"]
    problems = [f"{prefix}.{k}: unknown field (known: {', '.join(fields)})" for k in value if k not in fields]
    for key, (check, required) in fields.items():
        if key not in value:
            if required:
                problems.append(f"{prefix}.{key}: is required")
            continue
        wrong = check(value[key])
        if wrong:
            problems.append(f"{prefix}.{key}: {wrong}")
    return problems


def table(fields: Fields) -> Nested:
    """An option that is one table of known fields."""
    return Nested(lambda prefix, value: _table_problems(prefix, value, fields))


def named_tables(fields: Fields) -> Nested:
    """An option that is a non-empty list of tables, each with a unique ``name``."""

    def problems(prefix: str, value: Any) -> list[str]:
        if not isinstance(value, list | tuple) or not value:
            return [f"{prefix}: must be a non-empty list of tables"]
        found = [p for i, t in enumerate(value) for p in _table_problems(f"{prefix}[{i}]", t, fields)]
        given = [t.get("name") for t in value if isinstance(t, Mapping)]
        return found + [f"{prefix}: duplicate name {n!r}" for n in sorted({n for n in given if given.count(n) > 1})]

    return Nested(problems)


def validate(options: Mapping[str, Any], checks: Mapping[str, Check | Nested]) -> list[str]:
    """Every problem with ``options`` against a driver's table of checks, as ``key: what is wrong`` lines."""
    problems: list[str] = []
    for key, value in options.items():
        check = checks.get(key)
        if check is None:
            problems.append(f"{key}: unknown option (known: {', '.join(checks)})")
        elif isinstance(check, Nested):
            problems += check.problems(key, value)
        elif wrong := check(value):
            problems.append(f"{key}: {wrong}")
    return problems
