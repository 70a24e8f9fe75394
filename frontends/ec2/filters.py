"""EC2's ``Filter.N.Name`` / ``Filter.N.Value.M``: tables of filter name -> where its value lives.

Filters apply to the botocore-shaped output items a handler builds (an instance dict, a volume
dict...), so the same names EC2 documents read the same fields the client will see. Each action's
table maps a filter name to a JMESPath over one item (compiled once at import) or a function.
Values match with EC2's wildcards: ``*`` any run, ``?`` one character, ``\\`` escapes; values
of one filter are OR-ed, filters are AND-ed. ``tag:KEY``, ``tag-key`` and ``tag-value`` work on
every item with a ``Tags`` list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jmespath

from frontends.ec2.errors import EC2Error

Extractor = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class FilterTable:
    """One action's filters: name -> extractor over an output item."""

    extractors: Mapping[str, Extractor]
    tags: bool = True

    def extractor(self, name: str) -> Extractor:
        found = self.extractors.get(name)
        if found is not None:
            return found
        if self.tags:
            if name.startswith("tag:") and len(name) > 4:
                key = name[4:]
                return lambda item: [t.get("Value", "") for t in item.get("Tags") or () if t.get("Key") == key]
            if name == "tag-key":
                return lambda item: [t.get("Key", "") for t in item.get("Tags") or ()]
            if name == "tag-value":
                return lambda item: [t.get("Value", "") for t in item.get("Tags") or ()]
        raise EC2Error("InvalidParameterValue", f"The filter '{name}' is invalid")


def table(paths: Mapping[str, str | Extractor], *, tags: bool = True) -> FilterTable:
    """Build a FilterTable; string values are JMESPath expressions, compiled here once."""
    compiled: dict[str, Extractor] = {}
    for name, path in paths.items():
        compiled[name] = jmespath.compile(path).search if isinstance(path, str) else path
    return FilterTable(compiled, tags)


@dataclass(frozen=True, slots=True)
class Filter:
    name: str
    extract: Extractor
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, item: dict[str, Any]) -> bool:
        return any(p.fullmatch(v) for v in _strings(self.extract(item)) for p in self.patterns)


def compile_filters(filters: list[dict[str, Any]] | None, filter_table: FilterTable) -> list[Filter]:
    """Parsed ``Filters`` -> matchers; an unknown name or a filter without values is EC2's error."""
    out: list[Filter] = []
    for f in filters or []:
        name = f.get("Name")
        if not name:
            raise EC2Error("InvalidParameterValue", "The filter name must not be empty")
        values = f.get("Values")
        if not values:
            raise EC2Error("InvalidParameterValue", f"The filter '{name}' requires at least one value")
        out.append(Filter(name, filter_table.extractor(name), tuple(_pattern(v) for v in values)))
    return out


def apply(
    items: Iterable[dict[str, Any]], filters: list[dict[str, Any]] | None, filter_table: FilterTable
) -> list[dict[str, Any]]:
    """The items every filter matches."""
    compiled = compile_filters(filters, filter_table)
    if not compiled:
        return list(items)
    return [item for item in items if all(f.matches(item) for f in compiled)]


def _pattern(value: str) -> re.Pattern[str]:
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _strings(value: Any) -> Iterable[str]:
    if value is None:
        return ()
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, datetime):
        return (value.strftime("%Y-%m-%dT%H:%M:%S.000Z"),)
    return (str(value),)
