"""OCCI 1.2 JSON rendering (GFD.226, ``application/occi+json``; also answered as ``application/json``).

Responses are written to pass both JSON schemas clients check against: the specification appendix's and
rOCCI-core's. Where the two disagree the rendering leaves the member out rather than fail one of them:
an attribute definition's ``pattern`` (an object in the spec, a string in rOCCI) and its enumeration are not
rendered, nor are ``array``/``object`` defaults (the spec allows only scalars); empty arrays are left out
(rOCCI wants at least one item, and unique ones); ``integer`` attributes are typed ``number`` (the spec's
five types). An empty entity collection is ``{}`` (rOCCI's entity collection needs an item in each array
it has). A list of locations is a JSON array of URLs (rOCCI's ``locations``; the spec defines none).

Requests are accepted when the specification's schema accepts them (``_DEFINITIONS`` restates its
definitions), except that ``id`` may be left out of a resource or link a client creates; then our own checks
apply: category identifiers ``scheme#term``, attribute names, attribute descriptions that are not nested maps,
UTF-8, no duplicate members, finite numbers, a bounded depth. Anything else is a ``RenderingError`` whose
message starts with the JSON path. A category filter may also be rOCCI's lists of identifiers, and a list of
locations rOCCI's array of URLs.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from jsonschema import Draft4Validator
from jsonschema.exceptions import best_match

from frontends.occi.model import (
    ActionInvocation,
    AttributeDef,
    Category,
    Entity,
    Kind,
    Link,
    Mixin,
    Rendered,
    RenderingError,
)
from frontends.occi.rendering import Headers

#: deepest nesting of arrays and objects a request may have (the deepest valid document has 5)
MAX_DEPTH = 32
#: the attribute types the spec names; ``integer`` (ours) is rendered as ``number``
ATTRIBUTE_TYPES = ("string", "number", "boolean", "array", "object")
_RENDERED_TYPE = {"integer": "number"}
#: core attributes the JSON rendering carries as top-level members (attribute name -> Entity/Link field)
_ENTITY_CORE = {"occi.core.id": "id", "occi.core.title": "title", "occi.core.summary": "summary"}
_LINK_CORE = {
    "occi.core.id": "id",
    "occi.core.title": "title",
    "occi.core.source": "source",
    "occi.core.target": "target",
    "occi.core.target.kind": "target_kind",
}
_DESCRIPTION_KEYS = frozenset({"mutable", "required", "type", "default", "description", "pattern"})

# Text Rendering ABNF: term = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-" / "_" / "."); a scheme is a URI ending in "#"
_TERM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s#]*#\Z")
_ATTRIBUTE_NAME = _TERM


# -- the specification's schema (GFD.226 appendix), restated for requests ---------------------------------------

_STRING = {"type": "string"}
_STRINGS = {"type": "array", "items": _STRING}


def _object(required: Sequence[str], /, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def _array_of(definition: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/definitions/{definition}"}}


_REF = {name: {"$ref": f"#/definitions/{name}"} for name in ("attributes", "attribute_description", "kinded_uri")}
_DEFINITIONS: dict[str, Any] = {
    "kinded_uri": _object(["location"], location=_STRING, kind=_STRING),
    "attributes": {
        "type": "object",
        "additionalProperties": {"type": ["number", "boolean", "string", "object", "array"]},
    },
    "attribute_description": {
        "oneOf": [
            {
                **_object(
                    [],
                    mutable={"type": "boolean"},
                    required={"type": "boolean"},
                    type=_STRING,
                    default={"type": ["number", "string", "boolean"]},
                    description=_STRING,
                    pattern={"type": "object"},
                ),
                "minProperties": 1,
            },
            {
                "type": "object",
                "additionalProperties": False,
                "patternProperties": {".+": {"$ref": "#/definitions/attribute_description"}},
            },
        ]
    },
    # the spec requires "id"; a client creating an entity may leave it to the server
    "resource": _object(
        ["kind"],
        kind=_STRING,
        mixins=_STRINGS,
        attributes=_REF["attributes"],
        actions=_STRINGS,
        id=_STRING,
        links=_array_of("link"),
        summary=_STRING,
        title=_STRING,
    ),
    "link": _object(
        ["kind", "target", "source"],
        kind=_STRING,
        mixins=_STRINGS,
        attributes=_REF["attributes"],
        actions=_STRINGS,
        id=_STRING,
        source=_REF["kinded_uri"],
        target=_REF["kinded_uri"],
        rel=_STRING,
        title=_STRING,
    ),
    "action_invocation": _object(["action"], action=_STRING, attributes=_REF["attributes"]),
    "kind": _object(
        ["term", "scheme"],
        term=_STRING,
        scheme=_STRING,
        title=_STRING,
        attributes=_REF["attribute_description"],
        actions=_STRINGS,
        parent=_STRING,
        location=_STRING,
    ),
    "mixin": _object(
        ["term", "scheme", "location"],
        term=_STRING,
        scheme=_STRING,
        title=_STRING,
        attributes=_REF["attribute_description"],
        actions=_STRINGS,
        depends=_STRINGS,
        applies=_STRINGS,
        location=_STRING,
    ),
    "action": _object(
        ["term", "scheme"], term=_STRING, scheme=_STRING, title=_STRING, attributes=_REF["attribute_description"]
    ),
    "model": _object(
        [],
        resources=_array_of("resource"),
        links=_array_of("link"),
        mixins=_array_of("mixin"),
        kinds=_array_of("kind"),
        actions=_array_of("action"),
    ),
}
#: a category filter: the spec's category renderings (``{"term", "scheme"}``) or rOCCI's identifier lists
_CATEGORY_REFS = {
    "type": "array",
    "items": {"anyOf": [_STRING, *({"$ref": f"#/definitions/{name}"} for name in ("kind", "mixin", "action"))]},
}
_DEFINITIONS["category"] = {"anyOf": [{"$ref": f"#/definitions/{name}"} for name in ("kind", "mixin", "action")]}
_DEFINITIONS["category_lists"] = _object([], kinds=_CATEGORY_REFS, mixins=_CATEGORY_REFS, actions=_CATEGORY_REFS)
#: what to associate with a mixin: rOCCI's list of locations, or the spec's entity collection
_DEFINITIONS["locations"] = _STRINGS
_DEFINITIONS["entity_collection"] = _object([], resources=_array_of("resource"), links=_array_of("link"))


def _validator(definition: str) -> Draft4Validator:
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "definitions": _DEFINITIONS}
    return Draft4Validator({**schema, "allOf": [{"$ref": f"#/definitions/{definition}"}]})


#: compiled once (STYLE rule 2)
_VALIDATORS = {name: _validator(name) for name in _DEFINITIONS}


# -- rendering -----------------------------------------------------------------------------------------------------


def render_categories(categories: Sequence[Category], media: str) -> Rendered:
    """The query interface: ``{"kinds": [...], "mixins": [...], "actions": [...]}``, empty arrays left out."""
    doc: dict[str, list[dict[str, Any]]] = {}
    for category in categories:
        member, render = _CATEGORY_RENDERERS[category.cls]
        doc.setdefault(member, []).append(render(category))
    return _rendered(doc, media)


def render_entity(entity: Entity, media: str) -> Rendered:
    return _rendered(_resource_doc(entity), media)


def render_link(link: Link, media: str) -> Rendered:
    return _rendered(_link_doc(link, ""), media)


def render_collection(entities: Sequence[Entity], links: Sequence[Link], media: str) -> Rendered:
    """``{"resources": [...], "links": [...]}`` with empty members left out."""
    doc: dict[str, Any] = {}
    if entities:
        doc["resources"] = [_resource_doc(entity) for entity in entities]
    if links:
        doc["links"] = [_link_doc(link, "") for link in links]
    return _rendered(doc, media)


def render_locations(locations: Sequence[str], media: str) -> Rendered:
    return _rendered(_unique(locations), media)


def _rendered(doc: Any, media: str) -> Rendered:
    return Rendered(body=orjson.dumps(doc), content_type=media)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _put_list(doc: dict[str, Any], member: str, items: Iterable[str]) -> None:
    values = _unique(items)
    if values:
        doc[member] = values


def _attribute_values(attributes: dict[str, Any]) -> dict[str, Any]:
    """Values as JSON has them: unset (None) and non-finite numbers are left out (neither schema has null)."""
    return {
        name: value
        for name, value in attributes.items()
        if value is not None and not (isinstance(value, float) and not math.isfinite(value))
    }


def _resource_doc(entity: Entity) -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": entity.kind, "id": entity.id}
    _put_list(doc, "mixins", entity.mixins)
    doc["attributes"] = _attribute_values(entity.attributes)
    _put_list(doc, "actions", (action for action, _url in entity.actions))
    if entity.links:
        doc["links"] = [_link_doc(link, entity.kind, entity.location) for link in entity.links]
    if entity.title:
        doc["title"] = entity.title
    if entity.summary:
        doc["summary"] = entity.summary
    return doc


def _link_doc(link: Link, source_kind: str, source: str = "") -> dict[str, Any]:
    doc: dict[str, Any] = {"kind": link.kind, "id": link.id}
    _put_list(doc, "mixins", link.mixins)
    doc["attributes"] = _attribute_values(link.attributes)
    doc["source"] = {"location": link.source or source}
    if source_kind:
        doc["source"]["kind"] = source_kind
    doc["target"] = {"location": link.target}
    if link.target_kind:
        doc["target"]["kind"] = link.target_kind
    if link.title:
        doc["title"] = link.title
    return doc


def _attribute_def_doc(attribute: AttributeDef) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": _RENDERED_TYPE.get(attribute.type, attribute.type),
        "mutable": attribute.mutable,
        "required": attribute.required,
    }
    if isinstance(attribute.default, str | int | float) and _attribute_values({"": attribute.default}):
        doc["default"] = attribute.default
    if attribute.description:
        doc["description"] = attribute.description
    return doc


def _category_doc(category: Category) -> dict[str, Any]:
    doc: dict[str, Any] = {"term": category.term, "scheme": category.scheme}
    if category.title:
        doc["title"] = category.title
    if category.attributes:
        doc["attributes"] = {attribute.name: _attribute_def_doc(attribute) for attribute in category.attributes}
    return doc


def _kind_doc(kind: Kind) -> dict[str, Any]:
    doc = _category_doc(kind)
    _put_list(doc, "actions", kind.actions)
    if kind.parent:
        doc["parent"] = kind.parent
    if kind.location:
        doc["location"] = kind.location
    return doc


def _mixin_doc(mixin: Mixin) -> dict[str, Any]:
    doc = _category_doc(mixin)
    _put_list(doc, "actions", mixin.actions)
    _put_list(doc, "depends", mixin.depends)
    _put_list(doc, "applies", mixin.applies)
    if mixin.location:
        doc["location"] = mixin.location
    return doc


#: category class -> (member of the query interface document, renderer)
_CATEGORY_RENDERERS: dict[str, tuple[str, Callable[[Any], dict[str, Any]]]] = {
    "kind": ("kinds", _kind_doc),
    "mixin": ("mixins", _mixin_doc),
    "action": ("actions", _category_doc),
}


# -- parsing -------------------------------------------------------------------------------------------------------


def parse_entity(body: bytes, headers: Headers) -> Entity:
    """A resource (kind, mixins, attributes, inline links), as created, replaced or partially updated."""
    return _entity(_load(body, "resource"), "$")


def parse_link(body: bytes, headers: Headers) -> Link:
    return _link(_load(body, "link"), "$")


def parse_action(body: bytes, headers: Headers) -> ActionInvocation:
    doc = _load(body, "action_invocation")
    return ActionInvocation(
        action=_category_id(doc["action"], "$.action"), attributes=_attributes(doc.get("attributes", {}), "$")
    )


def parse_mixins(body: bytes, headers: Headers) -> list[Mixin]:
    """User mixins to define: one mixin rendering, or a mixin collection (``{"mixins": [...]}``)."""
    doc = _decode(body)
    if isinstance(doc, dict) and "term" in doc:
        return [_mixin(_valid(doc, "mixin"), "$")]
    _valid(doc, "model")
    for member in ("kinds", "actions", "resources", "links"):
        if doc.get(member):
            raise RenderingError(f"$.{member}: only mixins can be defined")
    mixins = [_mixin(mixin, f"$.mixins[{index}]") for index, mixin in enumerate(doc.get("mixins", []))]
    if not mixins:
        raise RenderingError("$.mixins: no mixin to define")
    return mixins


def parse_category_ids(body: bytes, headers: Headers) -> list[str]:
    """A filter: an empty body, a category rendering, or lists of categories or their identifiers."""
    if not body.strip():
        return []
    doc = _decode(body)
    if isinstance(doc, dict) and "term" in doc:
        return [_category_of(_valid(doc, "category"), "$")]
    _valid(doc, "category_lists")
    ids: list[str] = []
    for member in ("kinds", "mixins", "actions"):
        for index, item in enumerate(doc.get(member, [])):
            path = f"$.{member}[{index}]"
            ids.append(_category_id(item, path) if isinstance(item, str) else _category_of(item, path))
    return _unique(ids)


def parse_filter(body: bytes, headers: Headers) -> tuple[list[str], dict[str, Any]]:
    """A collection filter: category lists (as ``parse_category_ids``), or an entity-shaped body whose kind
    and mixins must all be held and whose attributes (``id``, ``title``, ``summary`` included) must be equal."""
    doc = _decode(body) if body.strip() else None
    if not (isinstance(doc, dict) and "kind" in doc):
        return parse_category_ids(body, headers), {}
    entity = _entity(_valid(doc, "resource"), "$")
    core = {name: getattr(entity, field) for name, field in _ENTITY_CORE.items() if getattr(entity, field)}
    return [entity.kind, *entity.mixins], {**core, **entity.attributes}


def parse_locations(body: bytes, headers: Headers) -> list[str]:
    """Entities to associate with a mixin: a JSON array of locations (rOCCI's rendering), or an entity collection
    (the HTTP Protocol's), of which the entities' ``id``s are returned (they are not paths)."""
    doc = _decode(body)
    if isinstance(doc, list):
        _valid(doc, "locations")
        for index, location in enumerate(doc):
            if not location or any(ch.isspace() for ch in location):
                raise RenderingError(f"$[{index}]: not a location: {_quote(location)}")
        return _unique(doc)
    _valid(doc, "entity_collection")
    ids: list[str] = []
    for member, parse in (("resources", _entity), ("links", _link)):
        for index, item in enumerate(doc.get(member, [])):
            path = f"$.{member}[{index}]"
            entity = parse(item, path)
            if not entity.id:
                raise RenderingError(f"{path}: 'id' is a required property")
            ids.append(entity.id)
    return _unique(ids)


def _load(body: bytes, definition: str) -> Any:
    """Decode a request body and check it against a definition of the spec's schema."""
    return _valid(_decode(body), definition)


def _decode(body: bytes) -> Any:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RenderingError(f"$: the body is not UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(text, object_pairs_hook=_members, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise RenderingError(f"$: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise RenderingError(f"$: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # a duplicate member, a non-finite or overlong number
        raise RenderingError(f"$: {_shorten(str(exc))}") from None
    _check_tree(doc)
    return doc


def _valid(doc: Any, definition: str) -> Any:
    error = best_match(_VALIDATORS[definition].iter_errors(doc))
    if error is not None:
        what = definition.replace("_", " ")
        raise RenderingError(f"{error.json_path}: {_shorten(error.message)} (not a valid {what} rendering)")
    return doc


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        duplicate = next(name for name, _ in pairs if name in seen or seen.add(name))
        raise ValueError(f"member {_quote(duplicate)} given twice")
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{_shorten(text)} is out of range")
    return value


def _check_tree(doc: Any) -> None:
    """Bounded depth and strings that are Unicode text (no lone surrogates from ``\\ud800`` escapes)."""
    stack: list[tuple[Any, str, int]] = [(doc, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise RenderingError(f"{path}: nested deeper than {MAX_DEPTH} levels")
            if isinstance(value, list):
                stack.extend((item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value))
            else:
                for name, item in value.items():
                    _check_text(name, path)
                    stack.append((item, f"{path}.{name}", depth + 1))


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RenderingError(f"{path}: a string is not Unicode text (a lone surrogate)") from None


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quote(text: str) -> str:
    return json.dumps(_shorten(text))


def _category_id(identifier: str, path: str) -> str:
    """A type identifier ``scheme#term`` (the scheme an absolute URI ending in ``#``)."""
    scheme, hash_, term = identifier.rpartition("#")
    if not (hash_ and _SCHEME.match(scheme + hash_) and _TERM.match(term)):
        raise RenderingError(f"{path}: not a category identifier (scheme#term): {_quote(identifier)}")
    return identifier


def _category_ids(doc: dict[str, Any], member: str, path: str) -> list[str]:
    return _unique(_category_id(item, f"{path}.{member}[{i}]") for i, item in enumerate(doc.get(member, [])))


def _category_of(doc: dict[str, Any], path: str) -> str:
    """The identifier of a category rendering (``{"scheme", "term"}``)."""
    scheme, term = doc["scheme"], doc["term"]
    if not isinstance(scheme, str) or not _SCHEME.match(scheme):
        raise RenderingError(f"{path}.scheme: not a category scheme (a URI ending in #): {_quote(str(scheme))}")
    if not isinstance(term, str) or not _TERM.match(term):
        raise RenderingError(f"{path}.term: not a category term: {_quote(str(term))}")
    return scheme + term


def _attributes(values: dict[str, Any], path: str) -> dict[str, Any]:
    for name in values:
        if not _ATTRIBUTE_NAME.match(name):
            raise RenderingError(f"{path}.attributes: not an attribute name: {_quote(name)}")
    return dict(values)


def _take_core(attributes: dict[str, Any], fields: dict[str, Any], table: dict[str, str], path: str) -> None:
    """Move core attributes (``occi.core.title``...) to the top-level fields the JSON rendering has for them."""
    for name, field_name in table.items():
        if name not in attributes:
            continue
        value = attributes.pop(name)
        if not isinstance(value, str):
            raise RenderingError(f"{path}.attributes.{name}: must be a string")
        if fields[field_name] and fields[field_name] != value:
            raise RenderingError(f"{path}.attributes.{name}: differs from the rendering's {field_name}")
        fields[field_name] = value


def _entity(doc: dict[str, Any], path: str) -> Entity:
    attributes = _attributes(doc.get("attributes", {}), path)
    fields = {"id": doc.get("id", ""), "title": doc.get("title", ""), "summary": doc.get("summary", "")}
    _take_core(attributes, fields, _ENTITY_CORE, path)
    return Entity(
        kind=_category_id(doc["kind"], f"{path}.kind"),
        mixins=_category_ids(doc, "mixins", path),
        attributes=attributes,
        actions=[(action, "") for action in _category_ids(doc, "actions", path)],
        links=[_link(link, f"{path}.links[{index}]") for index, link in enumerate(doc.get("links", []))],
        **fields,
    )


def _link(doc: dict[str, Any], path: str) -> Link:
    attributes = _attributes(doc.get("attributes", {}), path)
    source, target = doc["source"], doc["target"]
    for end, ref in (("source", source), ("target", target)):
        if "kind" in ref:
            _category_id(ref["kind"], f"{path}.{end}.kind")
    fields = {
        "id": doc.get("id", ""),
        "title": doc.get("title", ""),
        "source": source["location"],
        "target": target["location"],
        "target_kind": target.get("kind") or doc.get("rel", ""),
    }
    _take_core(attributes, fields, _LINK_CORE, path)
    if fields["target_kind"]:
        _category_id(fields["target_kind"], f"{path}.target.kind")
    _category_ids(doc, "actions", path)
    return Link(
        kind=_category_id(doc["kind"], f"{path}.kind"),
        mixins=_category_ids(doc, "mixins", path),
        attributes=attributes,
        **fields,
    )


def _mixin(doc: dict[str, Any], path: str) -> Mixin:
    _category_of(doc, path)
    return Mixin(
        scheme=doc["scheme"],
        term=doc["term"],
        title=doc.get("title", ""),
        attributes=_attribute_defs(doc.get("attributes", {}), f"{path}.attributes"),
        depends=tuple(_category_ids(doc, "depends", path)),
        applies=tuple(_category_ids(doc, "applies", path)),
        location=doc["location"],
        actions=tuple(_category_ids(doc, "actions", path)),
    )


def _attribute_defs(descriptions: dict[str, Any], path: str) -> tuple[AttributeDef, ...]:
    return tuple(_attribute_def(name, description, f"{path}.{name}") for name, description in descriptions.items())


def _attribute_def(name: str, description: dict[str, Any], path: str) -> AttributeDef:
    """An attribute description; the spec's schema also admits nested maps of them, which the rendering's text
    (names are opaque, not a hierarchy) does not, so those are refused here."""
    if not _ATTRIBUTE_NAME.match(name):
        raise RenderingError(f"{path}: not an attribute name: {_quote(name)}")
    if not description.keys() <= _DESCRIPTION_KEYS:
        raise RenderingError(f"{path}: not an attribute description (members {sorted(_DESCRIPTION_KEYS)})")
    type_ = description.get("type", "string")
    if type_ not in ATTRIBUTE_TYPES:
        raise RenderingError(f"{path}.type: must be one of {', '.join(ATTRIBUTE_TYPES)}")
    pattern = description.get("pattern", {})
    regex = pattern.get("pattern")
    if regex is not None and not _is_regex(regex):
        raise RenderingError(f"{path}.pattern.pattern: not a regular expression")
    enum = pattern.get("enum", [])
    if not isinstance(enum, list) or not all(isinstance(value, str) for value in enum):
        raise RenderingError(f"{path}.pattern.enum: must be an array of strings")
    return AttributeDef(
        name=name,
        type=type_,
        mutable=description.get("mutable", False),
        required=description.get("required", False),
        default=description.get("default"),
        description=description.get("description", ""),
        enum=tuple(enum),
        pattern=regex,
    )


def _is_regex(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError):
        return False
    return True
