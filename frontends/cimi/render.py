"""CIMI documents written as JSON and as XML for a CIMI version (compiled render plans, built at import)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from frontends.cimi import vocabulary
from frontends.cimi.shapes import SHAPES, Shape, attr_shape, describe, root_shape, shape_of
from frontends.cimi.vocabulary import NAMESPACE, SCALARS, TYPES, Attr, Kind

_MISSING = object()

# -- escaping ------------------------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry are replaced by U+FFFD: a rendering must always parse back.
_INVALID = r"\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff"
_TEXT_SPECIAL = re.compile(f"[&<>\r{_INVALID}]")
_ATTR_SPECIAL = re.compile(f'[&<>"\t\n\r{_INVALID}]')
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}


def _escape_char(match: re.Match[str]) -> str:
    return _ESCAPES.get(match.group(), "\ufffd")


def _esc(value: Any) -> str:
    """Element text."""
    text = value if type(value) is str else str(value)
    # PERF: most values need no escaping; one regex search is cheaper than an unconditional substitution.
    if _TEXT_SPECIAL.search(text) is None:
        return text
    return _TEXT_SPECIAL.sub(_escape_char, text)


def _esc_attr(value: Any) -> str:
    """An attribute value (white space escaped: attribute normalisation would turn it into spaces)."""
    text = value if type(value) is str else str(value)
    if _ATTR_SPECIAL.search(text) is None:
        return text
    return _ATTR_SPECIAL.sub(_escape_char, text)


# -- rendering -----------------------------------------------------------------------------------------------

Emit = Callable[[Any, list[str]], None]


def _plan(shape: Shape, version: str) -> tuple[tuple[str, Emit], ...]:
    """The child elements of `shape` in vocabulary order, each with its emitter for `version`."""
    plan = shape.plans.get(version)
    if plan is None:
        plan = tuple((a.name, _emitter(a, version)) for a in shape.attrs if a.name not in shape.xml_attrs)
        shape.plans[version] = plan
    return plan


def _unknown(shape: Shape, doc: dict[str, Any]) -> KeyError:
    unknown = sorted(set(doc) - {a.name for a in shape.attrs} - set(shape.xml_attrs))
    # A controller bug, not bad input: fail loudly rather than drop information from one rendering.
    return KeyError(f"{shape.label}: attributes not in the vocabulary: {', '.join(unknown)}")


def _element(shape: Shape, tag: str, version: str, head: str = "") -> Emit:
    """Emitter of a document, struct or reference element `<tag [head] a="..">children</tag>`."""
    close = f"</{tag}>"
    open_ = f"<{tag}{head}"
    attrs = tuple(
        (name, f' {attr.wire_name(version)}="', attr.kind is Kind.BOOLEAN) for name, attr in shape.xml_attrs.items()
    )
    # PERF: most references are a bare {"href": ...}; they skip the general path.
    bare_ref = f'<{tag}{head} href="' if "href" in shape.xml_attrs else None
    plan: list[tuple[tuple[str, Emit], ...]] = []  # filled on first use: recursive types compile lazily

    def opening(doc: dict[str, Any]) -> tuple[str, int]:
        """The start tag with ``doc``'s XML attributes (left open), and how many of ``doc``'s keys they used."""
        start = open_
        seen = 0
        for name, prefix, boolean in attrs:
            value = doc.get(name, _MISSING)
            if value is _MISSING:
                continue
            seen += 1
            if value is not None:
                if boolean:
                    value = "true" if value is True or value == "true" else "false"
                start += prefix + _esc_attr(value) + '"'
        return start, seen

    if all(a.name in shape.xml_attrs for a in shape.attrs) and not head:
        # PERF: an element of XML attributes only (`<operation rel=.. href=../>`), the commonest element of all.
        def emit_empty(doc: Any, out: list[str]) -> None:
            if type(doc) is not dict:
                raise TypeError(f"{tag}: expected a dict, got {describe(doc)}")
            start, seen = opening(doc)
            if seen != len(doc):
                raise _unknown(shape, doc)
            out.append(start + "/>")

        return emit_empty

    def emit(doc: Any, out: list[str]) -> None:
        if type(doc) is not dict:
            raise TypeError(f"{tag}: expected a dict, got {describe(doc)}")
        if bare_ref is not None and len(doc) == 1:
            href = doc.get("href")
            if href is not None:
                out.append(bare_ref + _esc_attr(href) + '"/>')
                return
        start, seen = opening(doc)
        at = len(out)
        out.append(start)
        if not plan:
            plan.append(_plan(shape, version))
        for key, emit_one in plan[0]:
            value = doc.get(key, _MISSING)
            if value is _MISSING:
                continue
            seen += 1
            if value is not None:
                emit_one(value, out)
        if seen != len(doc):
            raise _unknown(shape, doc)
        if len(out) == at + 1:
            out[at] = start + "/>"
        else:
            out[at] = start + ">"
            out.append(close)

    return emit


def _scalar_emitter(kind: Kind, tag: str) -> Emit:
    open_, close = f"<{tag}>", f"</{tag}>"
    if kind is Kind.BOOLEAN:
        true, false = f"{open_}true{close}", f"{open_}false{close}"
        return lambda value, out: out.append(true if value is True or value == "true" else false)
    if kind is Kind.INTEGER:
        return lambda value, out: out.append(open_ + (str(value) if type(value) is int else _esc(value)) + close)
    return lambda value, out: out.append(open_ + _esc(value) + close)


def _emitter(attr: Attr, version: str) -> Emit:
    """How one attribute is written in `version`'s XML."""
    tag = attr.wire_name(version)
    kind = attr.kind
    if kind in SCALARS:
        return _scalar_emitter(kind, tag)
    if kind is Kind.MAP:

        def emit_map(value: dict[str, Any], out: list[str]) -> None:
            items = [f'<property key="{_esc_attr(k)}">{_esc(v)}</property>' for k, v in value.items()]
            if version == "1":
                out.extend(items)
            else:
                out.append(f"<{tag}>" + "".join(items) + f"</{tag}>")

        return emit_map
    if kind is Kind.LIST:
        assert attr.item is not None
        item = _emitter(attr.item, version)
        if version == "1":  # 1.1 repeats the item elements unwrapped

            def emit_items(value: list[Any], out: list[str]) -> None:
                for one in value:
                    item(one, out)

            return emit_items
        open_, close = f"<{tag}>", f"</{tag}>"

        def emit_wrapped(value: list[Any], out: list[str]) -> None:
            out.append(open_)
            for one in value:
                item(one, out)
            out.append(close)

        return emit_wrapped
    return _element(attr_shape(attr), tag, version)


_ROOTS: dict[tuple[str, str], Emit] = {}


def render_xml(doc: dict[str, Any], type_name: str, version: str) -> bytes:
    """`doc` as `version`'s XML: root element `type_name` in the version's namespace, children in vocabulary order."""
    emit = _ROOTS.get((type_name, version))
    if emit is None:
        emit = _element(root_shape(type_name), type_name, version, f' xmlns="{NAMESPACE[version]}"')
        _ROOTS[type_name, version] = emit
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    emit(doc, out)
    return "".join(out).encode()


def _needs_rename(shape: Shape, version: str, visiting: set[int] | None = None) -> bool:
    """Whether some attribute reachable from `shape` is spelled differently in `version`."""
    known = shape.renames.get(version)
    if known is not None:
        return known
    visiting = visiting or set()
    if id(shape) in visiting:
        return False
    visiting.add(id(shape))
    found = False
    for attr in shape.attrs:
        if attr.wire_name(version) != attr.name:
            found = True
        one = attr.item if attr.kind is Kind.LIST else attr
        assert one is not None
        if one.kind in (Kind.REF, Kind.STRUCT) and _needs_rename(attr_shape(one), version, visiting):
            found = True
    visiting.discard(id(shape))
    if not visiting:
        shape.renames[version] = found
    return found


def _to_wire(shape: Shape, doc: Any, version: str) -> Any:
    if type(doc) is not dict:
        return doc
    out = {}
    for key, value in doc.items():
        entry = shape.json_in.get(key)
        if entry is None:
            out[key] = value
            continue
        attr = entry[1]
        out[attr.wire_name(version)] = _wire_value(attr, value, version)
    return out


def _wire_value(attr: Attr, value: Any, version: str) -> Any:
    if attr.kind is Kind.LIST and attr.item is not None and type(value) is list:
        return [_wire_value(attr.item, one, version) for one in value]
    if attr.kind in (Kind.REF, Kind.STRUCT):
        return _to_wire(attr_shape(attr), value, version)
    return value


def render_json(doc: dict[str, Any], version: str, type_name: str | None = None) -> bytes:
    """`doc` as JSON. The type (given, or read from `resourceURI`) matters only where 1.1 spells a name otherwise."""
    if version != "2":
        if type_name is None:
            found = vocabulary.type_of_uri(doc.get("resourceURI") or "")
            type_name = found[0] if found else None
        if type_name is not None:
            shape = root_shape(type_name)
            if _needs_rename(shape, version):
                doc = _to_wire(shape, doc, version)
    return orjson.dumps(doc)


# -- at import ----------------------------------------------------------------------------------------------


def _compile() -> None:
    """Build every shape and both render plans at import, so no request pays for it."""
    for name in TYPES:
        shape = shape_of(name)
        for version in vocabulary.VERSIONS:
            _ROOTS[name, version] = _element(shape, name, version, f' xmlns="{NAMESPACE[version]}"')
            _plan(shape, version)
            _needs_rename(shape, version)
    # and the shapes reached only through references, until no new one appears
    done = 0
    while done != len(SHAPES):
        done = len(SHAPES)
        for shape in list(SHAPES.values()):
            for version in vocabulary.VERSIONS:
                _plan(shape, version)
                _needs_rename(shape, version)


_compile()
