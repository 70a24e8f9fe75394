"""CIMI `$filter` expressions (DSP0263 §4.1.6.1): parse once into a small immutable AST, evaluate it on documents.

The grammar is ours, written from DSP0263's and StratusLab's: `or` of `and` of comparisons (`and` binds
tighter), parentheses, `attribute op value` in either order, `property['key'] op 'value'`. We parse with
lark's LALR parser: it is table-driven (no recursion on the input, so deep nesting cannot blow the stack)
and its errors carry the offset and the offending token, which is all a good 400 message needs; a
hand-written parser would not report positions better, only cost more code.

Our decisions where the spec is silent or loose:
- Attribute names may be dotted paths into nested structures (`machineConfig.href`); a reference
  `{"href": ...}` met at the end of a path compares by its href; a list along the path matches if any of
  its elements does.
- Keywords (`and`, `or`, `true`, `false`) are case-insensitive and reserved: they cannot name attributes.
- Numbers may be signed and decimal; a date-time may omit seconds or its zone (then UTC); a date alone
  means midnight UTC. Booleans only support `=` and `!=` (anything else is a parse error).
- A comparison is typed by its literal: numbers compare numerically (a document string that reads as a
  number counts as one), date-times as instants, strings lexically, booleans by value. A document value
  that cannot be read as the literal's type does not compare: `=` and the orderings are false.
- `!=` is always the exact negation of `=`, so an absent attribute (or an incomparable value) makes
  `!=` true and every other comparison false; `a='x' or a!='x'` holds for every document.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

import lark

MAX_LENGTH = 4096  # characters of one $filter value
MAX_DEPTH = 64  # nesting of and/or groups

# Our grammar. Terminal priorities make the basic lexer context-free and predictable: a date before a
# number, keywords (whole words only) before names.
_GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (OR and_expr)*
?and_expr: atom (AND atom)*
?atom: comparison
     | "(" or_expr ")"
comparison: NAME OP value              -> attr_op_value
           | value OP NAME              -> value_op_attr
           | PROPERTY STRING "]" OP value   -> prop_op_value
           | value OP PROPERTY STRING "]"   -> value_op_prop
?value: STRING | NUMBER | DATETIME | BOOL

DATETIME.3: /\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?/
NUMBER.2: /[+-]?\d+(?:\.\d+)?/
AND.2: /and(?!\w)/i
OR.2: /or(?!\w)/i
BOOL.2: /(?:true|false)(?!\w)/i
PROPERTY.2: /property\s*\[/i
NAME: /[^\W\d]\w*(?:\.[^\W\d]\w*)*/
STRING: /"(?:[^"\\]|\\.)*"/s | /'(?:[^'\\]|\\.)*'/s
OP: /<=|>=|!=|<|>|=/
%ignore /\s+/
"""

# PERF: the LALR tables are built once, at import.
_PARSER = lark.Lark(_GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False)

# What each terminal is called in an error message.
_TERMINAL_WORDS = {
    "NAME": "an attribute name",
    "OP": "a comparison operator",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "DATETIME": "a date-time",
    "BOOL": "true or false",
    "AND": "'and'",
    "OR": "'or'",
    "PROPERTY": "property[",
    "LPAR": "'('",
    "RPAR": "')'",
    "RSQB": "']'",
    "$END": "the end of the filter",
}

_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ORDERINGS = {
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}
_KEYWORDS = frozenset({"and", "or", "true", "false"})

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?([Zz]|[+-]\d{2}:\d{2})?)?"
)
_NUMBER_TEXT_RE = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*")
_NAME_RE = re.compile(r"[^\W\d]\w*(?:\.[^\W\d]\w*)*")


class FilterError(ValueError):
    """A `$filter` that does not parse; `position` is the 0-based offset where it failed (the message says
    the 1-based column)."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


# ---------------------------------------------------------------------------------------------------------
# The AST


class Filter:
    """A parsed `$filter`: evaluate it with `matches`, render it canonically with `str`."""

    __slots__ = ()

    def matches(self, doc: dict[str, Any]) -> bool:
        raise NotImplementedError

    def attributes(self) -> set[str]:
        """The (possibly dotted) attribute names the filter reads; `properties` for property[...] tests."""
        raise NotImplementedError

    def _render(self, inside: type[Filter] | None) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return self._render(None)


@dataclass(frozen=True, slots=True)
class Literal:
    """A typed literal: `kind` is one of number/string/boolean/datetime; numbers are Decimals, date-times
    UTC-aware datetimes."""

    kind: str
    value: Any

    def render(self) -> str:
        if self.kind == "string":
            return _quote(self.value)
        if self.kind == "boolean":
            return "true" if self.value else "false"
        if self.kind == "number":
            return format(self.value, "f")
        return _render_datetime(self.value)


@dataclass(frozen=True, slots=True)
class Comparison(Filter):
    """`attribute op value`; a value-first comparison is stored flipped (`5 < a` as `a > 5`)."""

    attribute: str
    op: str
    value: Literal

    def matches(self, doc: dict[str, Any]) -> bool:
        return _compare(resolve(doc, self.attribute), self.op, self.value)

    def attributes(self) -> set[str]:
        return {self.attribute}

    def _render(self, inside: type[Filter] | None) -> str:
        return f"{self.attribute}{self.op}{self.value.render()}"


@dataclass(frozen=True, slots=True)
class PropertyComparison(Filter):
    """`property['key'] op 'value'` on the document's `properties` map (always strings)."""

    key: str
    op: str
    value: str

    def matches(self, doc: dict[str, Any]) -> bool:
        props = doc.get("properties")
        found = props.get(self.key) if isinstance(props, dict) else None
        return _compare([] if found is None else [found], self.op, Literal("string", self.value))

    def attributes(self) -> set[str]:
        return {"properties"}

    def _render(self, inside: type[Filter] | None) -> str:
        return f"property[{_quote(self.key)}]{self.op}{_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class And(Filter):
    """Every term holds; terms are never themselves `And` (the parser flattens)."""

    terms: tuple[Filter, ...]

    def matches(self, doc: dict[str, Any]) -> bool:
        return all(term.matches(doc) for term in self.terms)

    def attributes(self) -> set[str]:
        return set().union(*(term.attributes() for term in self.terms))

    def _render(self, inside: type[Filter] | None) -> str:
        return " and ".join(term._render(And) for term in self.terms)


@dataclass(frozen=True, slots=True)
class Or(Filter):
    """Some term holds; terms are never themselves `Or`."""

    terms: tuple[Filter, ...]

    def matches(self, doc: dict[str, Any]) -> bool:
        return any(term.matches(doc) for term in self.terms)

    def attributes(self) -> set[str]:
        return set().union(*(term.attributes() for term in self.terms))

    def _render(self, inside: type[Filter] | None) -> str:
        text = " or ".join(term._render(Or) for term in self.terms)
        return f"({text})" if inside is And else text


def _group(kind: type[And] | type[Or], terms: Iterable[Filter]) -> Filter:
    """An And/Or of `terms`, flattening nested groups of the same kind; a single term stands alone."""
    flat: list[Filter] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, kind) else (term,))
    return flat[0] if len(flat) == 1 else kind(tuple(flat))


def combine(filters: Iterable[Filter | None]) -> Filter | None:
    """AND several `$filter` parameters of one request together, as DSP0263 says; None when there are none."""
    present = [f for f in filters if f is not None]
    return _group(And, present) if present else None


def equalities(filter: Filter | None, attributes: Collection[str]) -> dict[str, frozenset[str]]:
    """What a caller may push down to a store: for each of `attributes` constrained by a top-level conjunct
    of the form `attr='s'` (or an `or` of such tests on that one attribute), the set of string values a
    matching document must have there. The result is necessary, not sufficient: the caller narrows its
    candidates with it and still runs `matches` on them. Two conjuncts on one attribute intersect. Name only
    attributes that hold plain strings (state, name, ids): a number or a list compares more loosely."""
    if filter is None:
        return {}
    conjuncts = filter.terms if isinstance(filter, And) else (filter,)
    found: dict[str, frozenset[str]] = {}
    for conjunct in conjuncts:
        alternatives = conjunct.terms if isinstance(conjunct, Or) else (conjunct,)
        if not all(_is_string_equality(alt) for alt in alternatives):
            continue
        names = {alt.attribute for alt in alternatives}  # type: ignore[attr-defined]
        if len(names) != 1 or (name := names.pop()) not in attributes:
            continue
        values = frozenset(alt.value.value for alt in alternatives)  # type: ignore[attr-defined]
        found[name] = found[name] & values if name in found else values
    return found


def _is_string_equality(term: Filter) -> bool:
    return isinstance(term, Comparison) and term.op == "=" and term.value.kind == "string"


# ---------------------------------------------------------------------------------------------------------
# Parsing


def parse_filter(text: str) -> Filter:
    """Parse one `$filter` value; any malformed input raises FilterError saying where."""
    if not isinstance(text, str):
        raise FilterError("the filter must be text", 0)
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the filter is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    if not text.strip():
        raise FilterError("the filter is empty", 0)
    try:
        tree = _PARSER.parse(text)
    except lark.exceptions.UnexpectedCharacters as e:
        raise _bad_character(text, e.pos_in_stream) from None
    except lark.exceptions.UnexpectedToken as e:
        # accepts() replays the pending reductions, so it names only what could really come next.
        expected = e.interactive_parser.accepts() if e.interactive_parser is not None else e.expected
        raise _bad_token(text, e.token, expected) from None
    except lark.exceptions.UnexpectedEOF as e:
        raise _bad_token(text, None, e.expected) from None
    _check_depth(tree)
    return _build(tree)


def _bad_character(text: str, pos: int) -> FilterError:
    char = text[pos]
    if char in "'\"":
        return FilterError(f"unterminated string starting at column {pos + 1}", pos)
    return FilterError(f"unexpected character {char!r} at column {pos + 1}", pos)


def _bad_token(text: str, token: lark.Token | None, expected: Collection[str]) -> FilterError:
    wanted = sorted({_TERMINAL_WORDS.get(name, name) for name in expected})
    hint = f"; expected {', '.join(wanted)}" if wanted else ""
    if token is None or token.type == "$END":
        return FilterError(f"unexpected end of filter at column {len(text) + 1}{hint}", len(text))
    pos = token.start_pos if token.start_pos is not None else 0
    shown = token.value if len(token.value) <= 40 else token.value[:40] + "..."
    return FilterError(f"unexpected {shown!r} at column {pos + 1}{hint}", pos)


def _check_depth(tree: lark.Tree) -> None:
    """Refuse and/or nesting deeper than MAX_DEPTH before anything recurses over the tree."""
    stack: list[tuple[lark.Tree, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            pos = getattr(node.meta, "start_pos", 0) or 0
            raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels at column {pos + 1}", pos)
        grows = node.data in ("or_expr", "and_expr")
        stack.extend((child, depth + grows) for child in node.children if isinstance(child, lark.Tree))


def _build(node: lark.Tree | lark.Token) -> Filter:
    if not isinstance(node, lark.Tree):  # a bare value such as `5`: the grammar never yields one alone
        raise FilterError(f"expected a comparison at column {node.start_pos + 1}", node.start_pos)
    kids = node.children
    if node.data == "or_expr":
        return _group(Or, (_build(k) for k in kids if isinstance(k, lark.Tree)))
    if node.data == "and_expr":
        return _group(And, (_build(k) for k in kids if isinstance(k, lark.Tree)))
    if node.data == "attr_op_value":
        name, op, value = kids
        return _comparison(name, op, op.value, _literal(value))
    if node.data == "value_op_attr":
        value, op, name = kids
        return _comparison(name, op, _FLIPPED[op.value], _literal(value))
    if node.data == "prop_op_value":
        _, key, op, value = kids
        return PropertyComparison(_literal(key).value, op.value, _string_only(value))
    if node.data == "value_op_prop":
        value, op, _, key = kids
        return PropertyComparison(_literal(key).value, _FLIPPED[op.value], _string_only(value))
    raise FilterError(f"unexpected expression at column {node.meta.start_pos + 1}", node.meta.start_pos)


def _comparison(name: lark.Token, op_token: lark.Token, op: str, value: Literal) -> Comparison:
    if value.kind == "boolean" and op not in ("=", "!="):
        pos = op_token.start_pos
        raise FilterError(f"unexpected {op_token.value!r} at column {pos + 1}: booleans support only = and !=", pos)
    return Comparison(str(name), op, value)


def _string_only(token: lark.Token) -> str:
    literal = _literal(token)
    if literal.kind != "string":
        pos = token.start_pos
        raise FilterError(f"property values are strings: quote {token.value!r} at column {pos + 1}", pos)
    return literal.value


def _literal(token: lark.Token) -> Literal:
    text = token.value
    if token.type == "STRING":
        return Literal("string", re.sub(r"\\(.)", r"\1", text[1:-1], flags=re.S))
    if token.type == "NUMBER":
        return Literal("number", Decimal(text))
    if token.type == "BOOL":
        return Literal("boolean", text.lower() == "true")
    instant = parse_datetime(text)
    if instant is None:
        pos = token.start_pos
        raise FilterError(f"invalid date-time {text!r} at column {pos + 1}", pos)
    return Literal("datetime", instant)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _render_datetime(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def parse_datetime(text: str) -> datetime | None:
    """An ISO-8601 date or date-time as a UTC-aware instant (no zone: UTC; date alone: midnight); None if it
    is not one."""
    match = _DATETIME_RE.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        if zone is None or zone in "Zz":
            tz = UTC
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        moment = datetime(
            int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=tz
        )
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


# ---------------------------------------------------------------------------------------------------------
# Evaluation


def resolve(doc: dict[str, Any], path: str) -> list[Any]:
    """The values found at a dotted path (empty if absent): lists along the way contribute every element,
    and a reference `{"href": ...}` at the end stands for its href."""
    current: list[Any] = [doc]
    for part in path.split("."):
        step: list[Any] = []
        for value in current:
            if isinstance(value, dict) and part in value:
                found = value[part]
                step.extend(found if isinstance(found, list) else (found,))
        current = step
    return [_dereference(v) for v in current if v is not None]


def _dereference(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("href"), str):
        return value["href"]
    return value


def _compare(values: list[Any], op: str, literal: Literal) -> bool:
    if op == "=":
        return any(_order(v, literal) == 0 for v in values)
    if op == "!=":
        return not any(_order(v, literal) == 0 for v in values)
    test = _ORDERINGS[op]
    return any((c := _order(v, literal)) is not None and test(c) for v in values)


def _order(value: Any, literal: Literal) -> int | None:
    """-1/0/1 comparing a document value to a literal, or None when the value cannot be read as its type."""
    mine = _COERCE[literal.kind](value)
    if mine is None:
        return None
    return (mine > literal.value) - (mine < literal.value)


def as_number(value: Any) -> Decimal | None:
    """A document value read as a finite number (ints, floats, numeric strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float | Decimal | str):
        text = str(value)
        if isinstance(value, str) and not _NUMBER_TEXT_RE.fullmatch(value):
            return None
        try:
            number = Decimal(text.strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def _as_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    return None


def _as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return None


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return parse_datetime(value)
    return None


_COERCE = {"number": as_number, "string": _as_string, "boolean": _as_boolean, "datetime": _as_datetime}


def is_attribute_name(text: str) -> bool:
    """Whether `text` is a (dotted) attribute name the filter grammar accepts, keywords excluded."""
    return bool(_NAME_RE.fullmatch(text)) and text.split(".")[0].lower() not in _KEYWORDS


__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Comparison",
    "Filter",
    "FilterError",
    "Literal",
    "Or",
    "PropertyComparison",
    "as_number",
    "combine",
    "equalities",
    "is_attribute_name",
    "parse_datetime",
    "parse_filter",
    "resolve",
]
