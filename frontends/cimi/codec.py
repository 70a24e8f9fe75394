"""CIMI documents to and from JSON and XML, typed by `vocabulary`.

A document is a dict in its JSON shape (see the package's conventions). `render_json`/`render_xml` write one for a
CIMI version; `parse_json`/`parse_xml`/`parse` read a request body into one, validating it against the expected root
type. Reading is lenient where clients are known to be sloppy (namespace missing or of either version, the root
element's case, 1.1 unwrapped or 2.0 wrapped lists, numbers and booleans as strings, the 1.0 drafts' names listed in
the vocabulary) and strict otherwise: every failure is a `CodecError` whose message names the attribute and where.

Everything the vocabulary decides is compiled once at import into a `_Shape` per (type, reference-or-not, extras):
parse tables and one XML render plan per version.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from lxml import etree

from frontends.cimi import vocabulary
from frontends.cimi.vocabulary import NAMESPACE, SCALARS, TYPES, Attr, Kind

#: Bodies larger than this are refused before parsing (the HTTP layer may set a lower limit).
MAX_BODY = 4 * 1024 * 1024
#: Deepest nesting of objects/elements accepted (CIMI's deepest real document is well under 16).
MAX_DEPTH = 32
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_NAMESPACES = frozenset(NAMESPACE.values())


class CodecError(ValueError):
    """A request body that is not a valid CIMI document of the expected type (the HTTP layer answers 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# -- scalars -------------------------------------------------------------------------------------------------

_INTEGER = re.compile(r"\s*[+-]?[0-9]{1,19}\s*\Z")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?)?\Z"
)
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _wrong(path: str, kind: str, value: Any) -> CodecError:
    return CodecError(f"{path}: expected {kind}, got {_describe(value)}")


def _text_string(text: str, path: str) -> str:
    return text


def _text_uri(text: str, path: str) -> str:
    return text.strip()


def _text_integer(text: str, path: str) -> int:
    if _INTEGER.match(text) is None:
        raise _wrong(path, "integer", text)
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise CodecError(f"{path}: integer out of range")
    return value


def _text_boolean(text: str, path: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise _wrong(path, "boolean", text)


def _text_datetime(text: str, path: str) -> str:
    value = text.strip()
    if _DATETIME.match(value) is None:
        raise _wrong(path, "dateTime (ISO 8601)", text)
    return value


#: kind -> reader of a scalar given as text (XML content, or a JSON string where clients are sloppy).
_FROM_TEXT: dict[Kind, Callable[[str, str], Any]] = {
    Kind.STRING: _text_string,
    Kind.URI: _text_uri,
    Kind.INTEGER: _text_integer,
    Kind.BOOLEAN: _text_boolean,
    Kind.DATETIME: _text_datetime,
}


def _json_scalar(kind: Kind, value: Any, path: str) -> Any:
    """A JSON scalar checked against `kind`: strings for every kind (read as text), native ints and booleans."""
    if isinstance(value, str):
        return _FROM_TEXT[kind](value, path)
    if kind is Kind.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        if not _INT_MIN <= value <= _INT_MAX:
            raise CodecError(f"{path}: integer out of range")
        return value
    if kind is Kind.BOOLEAN and isinstance(value, bool):
        return value
    if kind is Kind.URI and isinstance(value, dict) and set(value) == {"href"} and isinstance(value["href"], str):
        return value["href"].strip()  # the 1.0 drafts wrote some URIs as references
    raise _wrong(path, kind.value, value)


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


# -- compiled shapes -----------------------------------------------------------------------------------------

_HREF = vocabulary.u("href")
_RESOURCE_URI = vocabulary.u("resourceURI")
_MISSING = object()

# How an XML child element maps to an attribute.
_VALUE, _WRAPPER, _ITEM, _PROPERTY = "value", "wrapper", "item", "property"


class _Shape:
    """One compiled shape: a declared type as a document or embedded struct, or a reference to one (`href` plus,
    inline, the target's attributes and the reference's extras)."""

    __slots__ = (
        "attrs",
        "json_in",
        "label",
        "legacy",
        "plans",
        "renames",
        "xml_attrs",
        "xml_attrs_in",
        "xml_in",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.attrs: tuple[Attr, ...] = ()
        self.json_in: dict[str, tuple[str, Attr]] = {}
        self.xml_in: dict[str, tuple[str, Attr]] = {}
        self.xml_attrs: dict[str, Attr] = {}  # attributes rendered as XML attributes
        self.xml_attrs_in: dict[str, Attr] = {}  # XML attributes accepted on input, by any of their names
        self.legacy: frozenset[str] = frozenset()
        self.plans: dict[str, tuple[tuple[str, Callable[[Any, list[str]], None]], ...]] = {}
        self.renames: dict[str, bool] = {}


_SHAPES: dict[tuple[str | None, tuple[Attr, ...], bool], _Shape] = {}


def _shape(target: str | None, extras: tuple[Attr, ...] = (), is_ref: bool = False) -> _Shape:
    """The compiled shape (built on first use; recursive types see the same object)."""
    key = (target, extras, is_ref)
    found = _SHAPES.get(key)
    if found is not None:
        return found
    rtype = TYPES[target] if target else None
    shape = _Shape(("reference to " if is_ref else "") + (target or "a resource"))
    _SHAPES[key] = shape
    body = (rtype.attributes if rtype else ()) + extras
    xml_attr_names: list[Attr] = []
    if is_ref:
        xml_attr_names.append(_HREF)
    if is_ref or (rtype is not None and rtype.resource):
        xml_attr_names.append(_RESOURCE_URI)
    if rtype is not None and rtype.xml_attributes:
        xml_attr_names.extend(a for a in body if a.kind in SCALARS)
    shape.attrs = body
    shape.xml_attrs = {a.name: a for a in xml_attr_names}
    shape.legacy = rtype.legacy if rtype else frozenset()
    for attr in (*xml_attr_names, *body):
        for name in attr.all_names():
            shape.json_in[name] = (attr.name, attr)
    for attr in body:
        if attr.name in shape.xml_attrs:
            continue
        names = attr.all_names()
        if attr.kind is Kind.LIST:
            assert attr.item is not None
            for name in names:
                shape.xml_in[name] = (_WRAPPER, attr)
            shape.xml_in[attr.item.name] = (_ITEM, attr)
        elif attr.kind is Kind.MAP:
            for name in names:
                shape.xml_in[name] = (_WRAPPER, attr)
            shape.xml_in["property"] = (_PROPERTY, attr)
        else:
            for name in names:
                shape.xml_in[name] = (_VALUE, attr)
    for attr in shape.xml_attrs.values():
        for name in attr.all_names():
            shape.xml_attrs_in[name] = attr
    # Lenient: a reference's scalar attributes may come as XML attributes (`<volume href=.. initialLocation=../>`).
    if is_ref:
        for attr in body:
            if attr.kind in SCALARS:
                shape.xml_attrs_in.setdefault(attr.name, attr)
    return shape


def _attr_shape(attr: Attr) -> _Shape:
    return _shape(attr.target, attr.extras, attr.kind is Kind.REF)


# -- rendering -----------------------------------------------------------------------------------------------

Emit = Callable[[Any, list[str]], None]


def _plan(shape: _Shape, version: str) -> tuple[tuple[str, Emit], ...]:
    """The child elements of `shape` in vocabulary order, each with its emitter for `version`."""
    plan = shape.plans.get(version)
    if plan is None:
        plan = tuple((a.name, _emitter(a, version)) for a in shape.attrs if a.name not in shape.xml_attrs)
        shape.plans[version] = plan
    return plan


def _unknown(shape: _Shape, doc: dict[str, Any]) -> KeyError:
    unknown = sorted(set(doc) - {a.name for a in shape.attrs} - set(shape.xml_attrs))
    # A controller bug, not bad input: fail loudly rather than drop information from one rendering.
    return KeyError(f"{shape.label}: attributes not in the vocabulary: {', '.join(unknown)}")


def _element(shape: _Shape, tag: str, version: str, head: str = "") -> Emit:
    """Emitter of a document, struct or reference element `<tag [head] a="..">children</tag>`."""
    close = f"</{tag}>"
    open_ = f"<{tag}{head}"
    attrs = tuple(
        (name, f' {attr.wire_name(version)}="', attr.kind is Kind.BOOLEAN) for name, attr in shape.xml_attrs.items()
    )
    # PERF: most references are a bare {"href": ...}; they skip the general path.
    bare_ref = f'<{tag}{head} href="' if "href" in shape.xml_attrs else None
    plan: list[tuple[tuple[str, Emit], ...]] = []  # filled on first use: recursive types compile lazily

    if all(a.name in shape.xml_attrs for a in shape.attrs) and not head:
        # PERF: an element of XML attributes only (`<operation rel=.. href=../>`), the commonest element of all.
        def emit_empty(doc: Any, out: list[str]) -> None:
            if type(doc) is not dict:
                raise TypeError(f"{tag}: expected a dict, got {_describe(doc)}")
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
            if seen != len(doc):
                raise _unknown(shape, doc)
            out.append(start + "/>")

        return emit_empty

    def emit(doc: Any, out: list[str]) -> None:
        if type(doc) is not dict:
            raise TypeError(f"{tag}: expected a dict, got {_describe(doc)}")
        if bare_ref is not None and len(doc) == 1:
            href = doc.get("href")
            if href is not None:
                out.append(bare_ref + _esc_attr(href) + '"/>')
                return
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
    return _element(_attr_shape(attr), tag, version)


def _root_shape(type_name: str) -> _Shape:
    if type_name not in TYPES:
        raise KeyError(f"unknown CIMI type {type_name!r}")
    return _shape(type_name)


_ROOTS: dict[tuple[str, str], Emit] = {}


def render_xml(doc: dict[str, Any], type_name: str, version: str) -> bytes:
    """`doc` as `version`'s XML: root element `type_name` in the version's namespace, children in vocabulary order."""
    emit = _ROOTS.get((type_name, version))
    if emit is None:
        emit = _element(_root_shape(type_name), type_name, version, f' xmlns="{NAMESPACE[version]}"')
        _ROOTS[type_name, version] = emit
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n']
    emit(doc, out)
    return "".join(out).encode()


def _needs_rename(shape: _Shape, version: str, visiting: set[int] | None = None) -> bool:
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
        if one.kind in (Kind.REF, Kind.STRUCT) and _needs_rename(_attr_shape(one), version, visiting):
            found = True
    visiting.discard(id(shape))
    if not visiting:
        shape.renames[version] = found
    return found


def _to_wire(shape: _Shape, doc: Any, version: str) -> Any:
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
        return _to_wire(_attr_shape(attr), value, version)
    return value


def render_json(doc: dict[str, Any], version: str, type_name: str | None = None) -> bytes:
    """`doc` as JSON. The type (given, or read from `resourceURI`) matters only where 1.1 spells a name otherwise."""
    if version != "2":
        if type_name is None:
            found = vocabulary.type_of_uri(doc.get("resourceURI") or "")
            type_name = found[0] if found else None
        if type_name is not None:
            shape = _root_shape(type_name)
            if _needs_rename(shape, version):
                doc = _to_wire(shape, doc, version)
    return orjson.dumps(doc)


# -- parsing: JSON -------------------------------------------------------------------------------------------


def _check_root_uri(value: Any, type_name: str) -> str:
    if not isinstance(value, str):
        raise _wrong(f"{type_name}.resourceURI", "uri", value)
    found = vocabulary.type_of_uri(value)
    if found is not None and found[0] != type_name:
        raise CodecError(f"resourceURI names a {found[0]}, expected a {type_name}")
    return value.strip()


def _json_object(shape: _Shape, obj: Any, path: str, depth: int) -> dict[str, Any]:
    if type(obj) is not dict:
        raise _wrong(path, "an object (" + shape.label + ")", obj)
    if depth > MAX_DEPTH:
        raise CodecError(f"{path}: document nested too deeply")
    out: dict[str, Any] = {}
    for key, value in obj.items():
        entry = shape.json_in.get(key)
        if entry is None:
            if key in shape.legacy:
                continue
            raise CodecError(f"unknown attribute {key!r} in {shape.label} at {path}")
        if value is None:
            continue
        name, attr = entry
        out[name] = _json_value(attr, value, f"{path}.{name}", depth + 1)
    return out


def _json_value(attr: Attr, value: Any, path: str, depth: int) -> Any:
    kind = attr.kind
    if kind in SCALARS:
        return _json_scalar(kind, value, path)
    if kind is Kind.MAP:
        if type(value) is not dict:
            raise _wrong(path, "an object of strings", value)
        for key, one in value.items():
            if not isinstance(one, str):
                raise _wrong(f"{path}[{key!r}]", "string", one)
        return dict(value)
    if kind is Kind.LIST:
        if type(value) is not list:
            raise _wrong(path, "a list", value)
        assert attr.item is not None
        return [_json_value(attr.item, one, f"{path}[{n}]", depth + 1) for n, one in enumerate(value)]
    return _json_object(_attr_shape(attr), value, path, depth)


def parse_json(body: bytes, type_name: str) -> dict[str, Any]:
    """A JSON body read as a `type_name` document."""
    shape = _root_shape(type_name)
    _check_size(body)
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"malformed JSON: {exc}") from None
    if type(obj) is not dict:
        raise CodecError(f"expected a JSON object ({type_name}), got {type(obj).__name__}")
    uri = obj.get("resourceURI")
    if uri is not None:
        _check_root_uri(uri, type_name)
    return _json_object(shape, obj, type_name, 1)


# -- parsing: XML --------------------------------------------------------------------------------------------

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
    strip_cdata=True,
)
_XSI = "{http://www.w3.org/2001/XMLSchema-instance}"
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY|ELEMENT|ATTLIST|NOTATION)", re.IGNORECASE)


def _local(tag: Any, path: str) -> str:
    """An element's name without a CIMI namespace (no namespace is accepted too; a foreign one is not)."""
    if not isinstance(tag, str):
        raise CodecError(f"{path}: unexpected XML node")
    if tag[0] != "{":
        return tag
    ns, _, local = tag[1:].partition("}")
    if ns not in _NAMESPACES:
        raise CodecError(f"{path}: element {local!r} in foreign namespace {ns!r}")
    return local


def _only_whitespace(text: str | None) -> bool:
    return text is None or not text.strip()


def _xml_scalar(kind: Kind, el: Any, path: str) -> Any:
    if len(el):
        raise _wrong(path, kind.value, "elements")
    if el.attrib:
        if kind is Kind.URI and set(el.attrib) == {"href"} and _only_whitespace(el.text):
            return el.attrib["href"].strip()  # the 1.0 drafts' reference form
        raise CodecError(f"{path}: unexpected XML attribute {next(iter(el.attrib))!r}")
    return _FROM_TEXT[kind](el.text or "", path)


def _xml_value(attr: Attr, el: Any, path: str, depth: int) -> Any:
    if attr.kind in SCALARS:
        return _xml_scalar(attr.kind, el, path)
    return _xml_object(_attr_shape(attr), el, path, depth + 1)


def _xml_object(shape: _Shape, el: Any, path: str, depth: int) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise CodecError(f"{path}: document nested too deeply")
    out: dict[str, Any] = {}
    for key, value in el.attrib.items():
        attr = shape.xml_attrs_in.get(key)
        if attr is None and key.startswith(_XSI):
            continue  # schemaLocation and the like say nothing about the document
        if attr is None:
            raise CodecError(f"unknown XML attribute {key!r} in {shape.label} at {path}")
        out[attr.name] = _FROM_TEXT[attr.kind](value, f"{path}.{attr.name}")
    if not _only_whitespace(el.text):
        raise CodecError(f"{path}: unexpected text {_describe(el.text.strip())} in {shape.label}")
    for child in el:
        local = _local(child.tag, path)
        if not _only_whitespace(child.tail):
            raise CodecError(f"{path}: unexpected text {_describe(child.tail.strip())} in {shape.label}")
        entry = shape.xml_in.get(local)
        if local in shape.legacy and not len(child) and not child.attrib:
            continue  # a 1.0-draft attribute, read and dropped
        if entry is None:
            if local in shape.legacy:
                continue
            raise CodecError(f"unknown attribute {local!r} in {shape.label} at {path}")
        mode, attr = entry
        where = f"{path}.{attr.name}"
        if mode == _VALUE:
            if attr.name in out:
                raise CodecError(f"{where}: given more than once")
            out[attr.name] = _xml_value(attr, child, where, depth)
        elif mode == _PROPERTY:
            _xml_property(out.setdefault(attr.name, {}), child, where)
        elif attr.kind is Kind.MAP:  # the 2.0 <properties> wrapper
            if child.attrib or not _only_whitespace(child.text):
                raise CodecError(f"{where}: expected <property> elements only")
            found = out.setdefault(attr.name, {})
            for one in child:
                if _local(one.tag, where) != "property" or not _only_whitespace(one.tail):
                    raise CodecError(f"{where}: expected <property> elements only")
                _xml_property(found, one, where)
        else:
            assert attr.item is not None
            items = out.setdefault(attr.name, [])
            if mode == _ITEM:
                items.append(_xml_value(attr.item, child, f"{where}[{len(items)}]", depth))
                continue
            if child.attrib or not _only_whitespace(child.text):  # the 2.0 wrapper of the list
                raise CodecError(f"{where}: expected <{attr.item.name}> elements only")
            for one in child:
                if _local(one.tag, where) != attr.item.name or not _only_whitespace(one.tail):
                    raise CodecError(f"{where}: expected <{attr.item.name}> elements only")
                items.append(_xml_value(attr.item, one, f"{where}[{len(items)}]", depth + 1))
    return out


def _xml_property(found: dict[str, str], el: Any, path: str) -> None:
    key = el.attrib.get("key")
    if key is None or len(el.attrib) != 1 or len(el):
        raise CodecError(f'{path}: a property is <property key="...">value</property>')
    if key in found:
        raise CodecError(f"{path}: property {key!r} given more than once")
    found[key] = el.text or ""


def _check_size(body: bytes) -> None:
    if not body or not body.strip():
        raise CodecError("empty body")
    if len(body) > MAX_BODY:
        raise CodecError(f"body larger than {MAX_BODY} bytes")


def parse_xml(body: bytes, type_name: str) -> dict[str, Any]:
    """An XML body read as a `type_name` document. DTDs, entity declarations and external references are refused."""
    shape = _root_shape(type_name)
    _check_size(body)
    if _FORBIDDEN.search(body) is not None:
        raise CodecError("XML with a DOCTYPE or declarations is not accepted")
    try:
        root = etree.fromstring(body, _PARSER)
    except (etree.LxmlError, ValueError) as exc:
        raise CodecError(f"malformed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None or tree.docinfo.externalDTD is not None:
        raise CodecError("XML with a DOCTYPE or declarations is not accepted")
    for node in root.iter():
        if not isinstance(node.tag, str):  # an entity reference left unresolved
            raise CodecError("XML entities are not accepted")
    local = _local(root.tag, type_name)
    expected = type_name.lower()
    if local.lower() != expected and not (local == "Collection" and type_name.endswith("Collection")):
        raise CodecError(f"expected a <{type_name}> document, got <{local}>")
    doc = _xml_object(shape, root, type_name, 1)
    if "resourceURI" in doc:
        _check_root_uri(doc["resourceURI"], type_name)
    return doc


# -- dispatch by media type ----------------------------------------------------------------------------------


def media_kind(content_type: str | None) -> str | None:
    """ "json", "xml" or None (unsupported: the HTTP layer answers 415) for a Content-Type or Accept entry."""
    if not content_type:
        return None
    base = content_type.split(";", 1)[0].strip().lower()
    if base in ("application/json", "text/json") or base.endswith("+json"):
        return "json"
    if base in ("application/xml", "text/xml") or base.endswith("+xml"):
        return "xml"
    return None


_PARSERS: dict[str, Callable[[bytes, str], dict[str, Any]]] = {"json": parse_json, "xml": parse_xml}


def parse(body: bytes, content_type: str | None, type_name: str) -> dict[str, Any]:
    """A request body read as a `type_name` document according to its Content-Type."""
    kind = media_kind(content_type)
    if kind is None:
        raise CodecError(f"unsupported media type {content_type!r}: send application/json or application/xml")
    return _PARSERS[kind](body, type_name)


def _compile() -> None:
    """Build every shape and both render plans at import, so no request pays for it."""
    for name in TYPES:
        shape = _shape(name)
        for version in vocabulary.VERSIONS:
            _ROOTS[name, version] = _element(shape, name, version, f' xmlns="{NAMESPACE[version]}"')
            _plan(shape, version)
            _needs_rename(shape, version)
    # and the shapes reached only through references, until no new one appears
    done = 0
    while done != len(_SHAPES):
        done = len(_SHAPES)
        for shape in list(_SHAPES.values()):
            for version in vocabulary.VERSIONS:
                _plan(shape, version)
                _needs_rename(shape, version)


_compile()
