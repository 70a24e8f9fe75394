"""The OCCI 1.2 text grammar (``occi-1.2-text-rendering.abnf``): fields in, parsed values out.

A text/plain body and a text/occi header set are both lists of fields ``Name: value``; each value is an
RFC 7230 ``#list`` of Category, Link, X-OCCI-Attribute or X-OCCI-Location elements. This module reads
them with a small cursor, one rule of the ABNF per function, and raises ``RenderingError`` saying which
line or header and what is wrong. Leniencies, each seen in real clients or the document's own examples:
optional white space around ``;`` ``=`` ``,``; a trailing ``;``; Category parameters in any order; a
``rel`` with several identifiers (rOCCI renders a mixin's depends and applies there); a quoted or bare
``category`` in Link values; negative numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from frontends.occi.model import RenderingError

FIELD_NAMES = {"category": "Category", "link": "Link", "x-occi-attribute": "X-OCCI-Attribute"}
LOCATION_FIELD = "x-occi-location"

# Limits: a request is bounded before the controllers see it (each → RenderingError, a 400)
MAX_INPUT = 4 * 1024 * 1024
MAX_FIELD = 256 * 1024
MAX_ELEMENTS = 20000
MAX_CATEGORIES = 1000
MAX_ATTRIBUTES = 10000
MAX_LINKS = 1000
MAX_LOCATIONS = 10000
MAX_NUMBER = 1000

TERM = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_TERM = re.compile(TERM)
#: a URI scheme ending with "#" (what OCCI schemes are; the identifier is scheme + term)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\"<>\\]*#")
#: type-identifier = scheme term: the term is what follows the last "#"
_TYPE_ID = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*:[^\s\"<>\\]*#)(" + TERM + ")")
#: URI-reference: no white space, quotes or angle brackets (locations, link targets, self)
_URI_REF = re.compile(r"[^\s\"<>\\]+")
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]+")
_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~\-]+")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")
_OWS = re.compile(r"[ \t]*")
_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+)")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
#: "http: //host": white space after a URI's scheme colon, left where a long header was folded (rOCCI-server
#: captures in pOCCI's fixtures); a URI cannot hold it, so dropping it is unambiguous
_FOLDED_URI = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*:)[ \t]+(?=//)")
_CATEGORY_CLASSES = ("kind", "mixin", "action")
_ATTRIBUTE_PROPERTIES = ("immutable", "required")


@dataclass(slots=True)
class AttributeSpec:
    name: str
    immutable: bool = False
    required: bool = False


@dataclass(slots=True)
class CategoryValue:
    """One category-value: a kind, mixin or action as the text carries it."""

    term: str
    scheme: str
    cls: str
    title: str = ""
    rel: list[str] = field(default_factory=list)
    location: str | None = None
    attributes: list[AttributeSpec] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.scheme + self.term


@dataclass(slots=True)
class LinkValue:
    """One link-value: an inline link (with ``category``) or an action link (``?action=``)."""

    target: str
    rel: list[str]
    self_: str | None = None
    category: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def is_action(self) -> bool:
        """An ActionLink: ``<uri?action=term>; rel="action-id"`` and nothing else."""
        return (
            self.self_ is None
            and not self.category
            and not self.attributes
            and len(self.rel) == 1
            and re.search(r"\?action=" + TERM + "$", self.target) is not None
        )


@dataclass(slots=True)
class Fields:
    """The parsed fields of one request, in order of appearance per kind."""

    categories: list[tuple[CategoryValue, str]] = field(default_factory=list)
    links: list[tuple[LinkValue, str]] = field(default_factory=list)
    attributes: list[tuple[str, Any, str]] = field(default_factory=list)
    locations: list[tuple[str, str]] = field(default_factory=list)


class Cursor:
    """A position in one field value; every failure names the field (``where``) and the column."""

    __slots__ = ("pos", "text", "where")

    def __init__(self, text: str, where: str) -> None:
        self.text = text
        self.pos = 0
        self.where = where

    def fail(self, message: str) -> RenderingError:
        near = self.text[self.pos : self.pos + 40]
        return RenderingError(f"{self.where}, column {self.pos + 1}: {message} (near {near!r})")

    def ows(self) -> None:
        self.pos = _OWS.match(self.text, self.pos).end()  # type: ignore[union-attr]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self, char: str) -> bool:
        return self.text.startswith(char, self.pos)

    def take(self, char: str) -> bool:
        if self.text.startswith(char, self.pos):
            self.pos += len(char)
            return True
        return False

    def expect(self, char: str, what: str) -> None:
        if not self.take(char):
            raise self.fail(f"expected {char!r} {what}")

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        found = pattern.match(self.text, self.pos)
        if found is None or found.end() == self.pos:
            raise self.fail(f"expected {what}")
        self.pos = found.end()
        return found.group(0)

    def quoted(self, what: str) -> str:
        """quoted-string: ``"`` qdtext or backslash-escaped characters ``"``."""
        if not self.peek('"'):
            raise self.fail(f"expected a quoted {what}")
        found = _QUOTED.match(self.text, self.pos)
        if found is None:
            raise self.fail(f"unterminated quoted {what}")
        self.pos = found.end()
        return _UNESCAPE.sub(r"\1", found.group(1))

    def maybe_quoted(self, pattern: re.Pattern[str], what: str) -> str:
        """A value that may come quoted or bare (``class``, a Link's ``category``)."""
        if self.peek('"'):
            inner = self.quoted(what)
            if not pattern.fullmatch(inner):
                raise self.fail(f"{what} {inner[:80]!r} is malformed")
            return inner
        return self.match(pattern, what)


def elements(cursor: Cursor) -> Iterator[None]:
    """RFC 7230 ``#rule``: yields once per element, the cursor at its start; empty elements skipped."""
    while True:
        cursor.ows()
        while cursor.take(","):
            cursor.ows()
        if cursor.at_end():
            return
        yield
        cursor.ows()
        if cursor.at_end():
            return
        cursor.expect(",", "between list elements (or the end of the value)")


def unfold(uri: str) -> str:
    """A quoted URI value without the white space a header fold left after its scheme."""
    return _FOLDED_URI.sub(r"\1", uri)


def _type_ids(text: str, cursor: Cursor, what: str) -> list[str]:
    """``type-identifier *( 1*SP type-identifier )`` inside an already unquoted value."""
    ids = unfold(text).split()
    if not ids:
        raise cursor.fail(f"empty {what}")
    for ident in ids:
        if not _TYPE_ID.fullmatch(ident):
            raise cursor.fail(f"{what} {ident[:120]!r} is not a scheme URI ending in '#' followed by a term")
    return ids


def _attribute_list(text: str, cursor: Cursor) -> list[AttributeSpec]:
    """attribute-list: ``name`` or ``name{immutable required}`` separated by spaces."""
    specs: list[AttributeSpec] = []
    inner = Cursor(text, cursor.where + " attributes")
    inner.ows()
    while not inner.at_end():
        spec = AttributeSpec(inner.match(_TERM, "an attribute name"))
        if inner.take("{"):
            props: list[str] = []
            while True:
                inner.ows()
                if inner.take("}"):
                    break
                prop = inner.match(re.compile(r"[A-Za-z]+"), "'immutable', 'required' or '}'")
                if prop not in _ATTRIBUTE_PROPERTIES:
                    raise inner.fail(f"unknown attribute property {prop!r} (only immutable, required)")
                if prop in props:
                    raise inner.fail(f"attribute property {prop!r} given twice")
                props.append(prop)
            if not props:
                raise inner.fail("empty attribute properties '{}'")
            spec.immutable, spec.required = "immutable" in props, "required" in props
        if any(s.name == spec.name for s in specs):
            raise inner.fail(f"attribute {spec.name!r} defined twice")
        specs.append(spec)
        if not inner.at_end() and inner.match(re.compile(r" +"), "a space between attribute definitions"):
            inner.ows()
    return specs


def category_value(cursor: Cursor) -> CategoryValue:
    """category-value = term ";" scheme ";" class [";" title] [";" rel] [";" location] [";" attributes]
    [";" actions] (parameters accepted in any order, each at most once)."""
    term = cursor.match(_TERM, "a category term")
    params: dict[str, Any] = {}
    while True:
        cursor.ows()
        if not cursor.take(";"):
            break
        cursor.ows()
        if cursor.at_end() or cursor.peek(","):
            break  # a trailing ";" (the document's own example has one)
        name = cursor.match(re.compile(r"[A-Za-z]+"), "a category parameter name").lower()
        if name in params:
            raise cursor.fail(f"category parameter {name!r} given twice")
        cursor.ows()
        cursor.expect("=", f"after {name!r}")
        cursor.ows()
        if name == "class":
            value = cursor.maybe_quoted(re.compile(r"[A-Za-z]+"), "class")
            if value not in _CATEGORY_CLASSES:
                raise cursor.fail(f"class {value!r} is not kind, mixin or action")
        elif name == "scheme":
            value = unfold(cursor.quoted("scheme"))
            if not _SCHEME.fullmatch(value):
                raise cursor.fail(f"scheme {value[:120]!r} is not a URI ending in '#'")
        elif name == "title":
            value = cursor.quoted("title")
        elif name == "rel":
            value = _type_ids(cursor.quoted("rel"), cursor, "rel")
        elif name == "location":
            value = unfold(cursor.quoted("location"))
            if not _URI_REF.fullmatch(value):
                raise cursor.fail(f"location {value[:120]!r} is not a URI")
        elif name == "attributes":
            value = _attribute_list(cursor.quoted("attribute list"), cursor)
        elif name == "actions":
            value = _type_ids(cursor.quoted("action list"), cursor, "action")
        else:
            raise cursor.fail(f"unknown category parameter {name!r}")
        params[name] = value
    for required in ("scheme", "class"):
        if required not in params:
            raise cursor.fail(f"category {term!r} has no {required}")
    return CategoryValue(
        term=term,
        scheme=params["scheme"],
        cls=params["class"],
        title=params.get("title", ""),
        rel=params.get("rel", []),
        location=params.get("location"),
        attributes=params.get("attributes", []),
        actions=params.get("actions", []),
    )


def typed_value(cursor: Cursor, bare: re.Pattern[str], what: str, tokens_are_strings: bool = False) -> Any:
    """attribute-value: a quoted string, an int, a float, true or false."""
    if cursor.peek('"'):
        return cursor.quoted(f"{what} value")
    raw = cursor.match(bare, f"a value for {what} (a quoted string, a number, true or false)")
    if raw in ("true", "false"):
        return raw == "true"
    if len(raw) > MAX_NUMBER:
        raise cursor.fail(f"number longer than {MAX_NUMBER} characters")
    if _INT.fullmatch(raw):
        return int(raw)
    if _FLOAT.fullmatch(raw):
        number = float(raw)
        if not math.isfinite(number):
            raise cursor.fail(f"{what}: number out of range")
        return number
    if tokens_are_strings:
        return raw
    raise cursor.fail(f"{what} value {raw[:80]!r} is not a quoted string, a number, true or false")


def attribute_repr(cursor: Cursor) -> tuple[str, Any]:
    """attribute-repr = attribute-name "=" attribute-value."""
    name = cursor.match(_TERM, "an attribute name")
    cursor.ows()
    cursor.expect("=", f"after attribute name {name!r}")
    cursor.ows()
    return name, typed_value(cursor, re.compile(r"[^\s,;\"]+"), name)


def link_value(cursor: Cursor) -> LinkValue:
    """link-value = "<" URI-reference ">" ";" rel [";" self] [";" category *(";" link-attribute)]."""
    cursor.expect("<", "opening a link target '<URI>'")
    target = cursor.match(_URI_REF, "a link target URI")
    cursor.expect(">", "closing the link target")
    link = LinkValue(target=target, rel=[])
    seen: set[str] = set()
    while True:
        cursor.ows()
        if not cursor.take(";"):
            break
        cursor.ows()
        if cursor.at_end() or cursor.peek(","):
            break
        name = cursor.match(_TERM, "a link parameter name")
        cursor.ows()
        cursor.expect("=", f"after {name!r}")
        cursor.ows()
        if name in seen:
            raise cursor.fail(f"link parameter {name!r} given twice")
        seen.add(name)
        if name == "rel":
            link.rel = _type_ids(cursor.quoted("rel"), cursor, "rel")
        elif name == "self":
            link.self_ = unfold(cursor.quoted("self"))
            if not _URI_REF.fullmatch(link.self_):
                raise cursor.fail(f"self {link.self_[:120]!r} is not a URI")
        elif name == "category":
            quoted = cursor.peek('"')
            raw = cursor.quoted("category") if quoted else cursor.match(_TYPE_ID, "a category identifier")
            link.category = _type_ids(raw, cursor, "category")
        else:
            if not link.category:
                raise cursor.fail(f"link attribute {name!r} before the link's category")
            link.attributes[name] = typed_value(cursor, _TOKEN, name, tokens_are_strings=True)
    if not link.rel:
        raise cursor.fail("link has no rel")
    return link


def location_value(cursor: Cursor) -> str:
    """location-value = URI-reference (no commas: a text/occi header may list several)."""
    return cursor.match(re.compile(r"[^\s\"<>\\,]+"), "a location URI")


def _lines(body: bytes) -> Iterator[tuple[str, str, str]]:
    """text/plain: (lower-case name, value, "line N") per non-blank line."""
    if len(body) > MAX_INPUT:
        raise RenderingError(f"text/plain body larger than {MAX_INPUT} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RenderingError(f"body is not UTF-8 (byte {exc.start})") from None
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        where = f"line {number}"
        name, sep, value = line.partition(":")
        if not sep or not _HEADER_NAME.fullmatch(name):
            raise RenderingError(f"{where}: not a 'Name: value' line (near {line[:40]!r})")
        lower = name.lower()
        if lower not in FIELD_NAMES and lower != LOCATION_FIELD:
            raise RenderingError(
                f"{where}: unknown field {name[:40]!r} (expected Category, Link, X-OCCI-Attribute or X-OCCI-Location)"
            )
        yield lower, value, where


def _headers(headers: Sequence[tuple[str, str]], extra: frozenset[str]) -> Iterator[tuple[str, str, str]]:
    """text/occi: the OCCI fields among a request's headers (others are ordinary HTTP and skipped)."""
    total = 0
    for name, value in headers:
        lower = name.lower()
        if lower in FIELD_NAMES or lower == LOCATION_FIELD or lower in extra:
            total += len(value)
            if total > MAX_INPUT:
                raise RenderingError(f"OCCI headers larger than {MAX_INPUT} bytes")
            yield lower, value, f"header {name[:40]!r}"


_ELEMENT = {"category": category_value, "link": link_value, "x-occi-attribute": attribute_repr}


def read_fields(raw: Iterator[tuple[str, str, str]], extra_locations: frozenset[str] = frozenset()) -> Fields:
    """Every element of every field, parsed and counted against the limits."""
    fields = Fields()
    count = 0
    for lower, value, where in raw:
        if len(value) > MAX_FIELD:
            raise RenderingError(f"{where}: value longer than {MAX_FIELD} characters")
        if _CONTROL.search(value):
            raise RenderingError(f"{where}: control character in the value")
        cursor = Cursor(value, where)
        for _ in elements(cursor):
            count += 1
            if count > MAX_ELEMENTS:
                raise RenderingError(f"more than {MAX_ELEMENTS} OCCI field values")
            if lower == LOCATION_FIELD or lower in extra_locations:
                fields.locations.append((location_value(cursor), where))
                if len(fields.locations) > MAX_LOCATIONS:
                    raise RenderingError(f"more than {MAX_LOCATIONS} locations")
            elif lower == "category":
                fields.categories.append((category_value(cursor), where))
                if len(fields.categories) > MAX_CATEGORIES:
                    raise RenderingError(f"more than {MAX_CATEGORIES} categories")
            elif lower == "link":
                fields.links.append((link_value(cursor), where))
                if len(fields.links) > MAX_LINKS:
                    raise RenderingError(f"more than {MAX_LINKS} links")
            else:
                name, val = attribute_repr(cursor)
                fields.attributes.append((name, val, where))
                if len(fields.attributes) > MAX_ATTRIBUTES:
                    raise RenderingError(f"more than {MAX_ATTRIBUTES} attributes")
    return fields


def fields_from_body(body: bytes) -> Fields:
    """The fields of a text/plain body."""
    return read_fields(_lines(body))


def fields_from_headers(headers: Sequence[tuple[str, str]], extra_locations: frozenset[str] = frozenset()) -> Fields:
    """The fields of a text/occi header set (``extra_locations``: other header names read as locations)."""
    return read_fields(_headers(headers, extra_locations), extra_locations)


# ---- rendering: the inverse of the rules above


def quote(text: str) -> str:
    """quoted-string with ``\\`` and ``"`` escaped; control characters (which no line or header can
    carry) become spaces."""
    text = _CONTROL.sub(" ", text.replace("\t", " "))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split_id(identifier: str) -> tuple[str, str]:
    """(scheme, term) of a type-identifier."""
    found = _TYPE_ID.fullmatch(identifier)
    if found is None:
        raise RenderingError(f"{identifier[:120]!r} is not a category identifier (scheme ending in '#' + term)")
    return found.group(1), found.group(2)
