"""Request bodies read as CIMI documents, JSON or XML, validated against the expected root type.

Reading is lenient where clients are known to be sloppy (namespace missing or of either version, the root
element's case, 1.1 unwrapped or 2.0 wrapped lists, numbers and booleans as strings, the 1.0 drafts' names listed in
the vocabulary) and strict otherwise: every failure is a `CodecError` whose message names the attribute and where.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from lxml import etree

from frontends.cimi import vocabulary
from frontends.cimi.shapes import ITEM, PROPERTY, VALUE, Shape, attr_shape, describe, root_shape
from frontends.cimi.vocabulary import NAMESPACE, SCALARS, Attr, Kind

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


def _wrong(path: str, kind: str, value: Any) -> CodecError:
    return CodecError(f"{path}: expected {kind}, got {describe(value)}")


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


# -- JSON ----------------------------------------------------------------------------------------------------


def _check_root_uri(value: Any, type_name: str) -> str:
    if not isinstance(value, str):
        raise _wrong(f"{type_name}.resourceURI", "uri", value)
    found = vocabulary.type_of_uri(value)
    if found is not None and found[0] != type_name:
        raise CodecError(f"resourceURI names a {found[0]}, expected a {type_name}")
    return value.strip()


def _json_object(shape: Shape, obj: Any, path: str, depth: int) -> dict[str, Any]:
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
    return _json_object(attr_shape(attr), value, path, depth)


def parse_json(body: bytes, type_name: str) -> dict[str, Any]:
    """A JSON body read as a `type_name` document."""
    shape = root_shape(type_name)
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


# -- XML -----------------------------------------------------------------------------------------------------

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
    return _xml_object(attr_shape(attr), el, path, depth + 1)


def _xml_object(shape: Shape, el: Any, path: str, depth: int) -> dict[str, Any]:
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
        raise CodecError(f"{path}: unexpected text {describe(el.text.strip())} in {shape.label}")
    for child in el:
        local = _local(child.tag, path)
        if not _only_whitespace(child.tail):
            raise CodecError(f"{path}: unexpected text {describe(child.tail.strip())} in {shape.label}")
        entry = shape.xml_in.get(local)
        if local in shape.legacy and not len(child) and not child.attrib:
            continue  # a 1.0-draft attribute, read and dropped
        if entry is None:
            if local in shape.legacy:
                continue
            raise CodecError(f"unknown attribute {local!r} in {shape.label} at {path}")
        mode, attr = entry
        where = f"{path}.{attr.name}"
        if mode == VALUE:
            if attr.name in out:
                raise CodecError(f"{where}: given more than once")
            out[attr.name] = _xml_value(attr, child, where, depth)
        elif mode == PROPERTY:
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
            if mode == ITEM:
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
    shape = root_shape(type_name)
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
