"""OCCI 1.2 text renderings: text/plain (fields in the body), text/occi (fields in headers), and
text/uri-list for listings (delegated to ``uri_list``).

The grammar lives in ``text_syntax``; this module maps it to and from the model. What the text cannot
carry: attribute types, defaults, descriptions, enumerations and patterns of a category (only names and
``{immutable required}``), a mixin's ``applies`` and any ``depends`` past the first (the document renders
only the first as ``rel``), an entity's own location, arrays and objects as attribute values (rendered as
JSON text in a quoted string). Core attributes travel as ``occi.core.*`` attributes and are read back into
the model's fields (``id``, ``title``, ``summary``; a link's ``source``, ``target``, ``target_kind``), not
into ``attributes``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from frontends.occi.model import (
    Action,
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
from frontends.occi.rendering import TEXT_OCCI, TEXT_PLAIN, URI_LIST, Headers, uri_list
from frontends.occi.rendering.text_syntax import (
    CategoryValue,
    Fields,
    LinkValue,
    fields_from_body,
    fields_from_headers,
    quote,
    split_id,
)

#: media types whose OCCI data is in the body (text/occi+plain is the document's other name for it)
BODY_MEDIA = (TEXT_PLAIN, "text/occi+plain")
#: a text/occi header value is cut into pieces no longer than this (many HTTP clients refuse header
#: lines over 64 KiB, and some more than 100 headers: one comma-joined header per piece keeps both small)
HEADER_CHUNK = 8000
#: the text/occi body of a successful answer ("The body MUST contain the string OK")
OCCI_BODY = b"OK"
#: rel of an inline link whose target kind is not known
DEFAULT_TARGET_KIND = "http://schemas.ogf.org/occi/core#resource"

ENTITY_CORE = {"occi.core.id": "id", "occi.core.title": "title", "occi.core.summary": "summary"}
LINK_CORE = {
    "occi.core.id": "id",
    "occi.core.title": "title",
    "occi.core.source": "source",
    "occi.core.target": "target",
    "occi.core.target.kind": "target_kind",
}


# ---- rendering


def format_value(value: Any) -> str:
    """attribute-value typed by the Python value: bool, int, float (always with a "." and no exponent,
    as the grammar's ``float`` has none), else a quoted string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderingError(f"cannot render the number {value!r}")
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else text + ".0"
    if isinstance(value, str):
        return quote(value)
    return quote(json.dumps(value, separators=(",", ":"), sort_keys=True))


def _attribute_values(core: dict[str, Any], attributes: dict[str, Any]) -> list[str]:
    """``name=value`` of the core fields that are set, then of the other attributes (None skipped)."""
    pairs = [(name, value) for name, value in core.items() if value not in ("", None)]
    pairs += [(k, v) for k, v in attributes.items() if v is not None and k not in core]
    return [f"{name}={format_value(value)}" for name, value in pairs]


def _category_ref(identifier: str, cls: str) -> str:
    scheme, term = split_id(identifier)
    return f'{term};scheme="{scheme}";class="{cls}"'


def category_text(category: Category) -> str:
    """A Category value for the query interface: everything the grammar can carry."""
    parts = [category.term, f"scheme={quote(category.scheme)}", f'class="{category.cls}"']
    if category.title:
        parts.append(f"title={quote(category.title)}")
    if isinstance(category, Kind) and category.parent:
        parts.append(f"rel={quote(category.parent)}")
    if isinstance(category, Mixin) and category.depends:
        parts.append(f"rel={quote(category.depends[0])}")
    location = getattr(category, "location", None)
    if location:
        parts.append(f"location={quote(location)}")
    if category.attributes:
        defs = []
        for attr in category.attributes:
            props = [p for p, on in (("immutable", not attr.mutable), ("required", attr.required)) if on]
            defs.append(attr.name + ("{" + " ".join(props) + "}" if props else ""))
        parts.append(f"attributes={quote(' '.join(defs))}")
    actions = getattr(category, "actions", ())
    if actions:
        parts.append(f"actions={quote(' '.join(actions))}")
    return ";".join(parts)


def inline_link_text(link: Link) -> str:
    """A Link value for a link shown inside its source's rendering."""
    categories = " ".join([link.kind, *link.mixins])
    parts = [f"<{link.target}>", f"rel={quote(link.target_kind or DEFAULT_TARGET_KIND)}"]
    if link.location:
        parts.append(f"self={quote(link.location)}")
    if link.kind:
        parts.append(f"category={quote(categories)}")
        core = {"occi.core.id": link.id, "occi.core.title": link.title, "occi.core.source": link.source}
        core["occi.core.target"] = link.target
        parts += _attribute_values(core, link.attributes)
    return ";".join(parts)


def _rendered(fields: Iterable[tuple[str, str]], media: str) -> Rendered:
    """text/plain: one ``Name: value`` line per field (CRLF, as the grammar writes); text/occi: the same
    values comma-joined into headers of at most ``HEADER_CHUNK`` characters, and the body "OK"."""
    fields = list(fields)
    if media in BODY_MEDIA:
        body = "".join(f"{name}: {value}\r\n" for name, value in fields)
        return Rendered(body=body.encode("utf-8"), content_type=media)
    if media != TEXT_OCCI:
        raise RenderingError(f"the text rendering does not render {media!r}")
    headers: list[tuple[str, str]] = []
    current_name, current = "", ""
    for name, value in fields:
        if name == current_name and len(current) + len(value) + 1 <= HEADER_CHUNK:
            current += "," + value
            continue
        if current_name:
            headers.append((current_name, current))
        current_name, current = name, value
    if current_name:
        headers.append((current_name, current))
    return Rendered(body=OCCI_BODY, content_type=media, headers=tuple(headers))


def render_categories(categories: Sequence[Category], media: str) -> Rendered:
    """The query interface: one Category per kind, mixin and action."""
    if media == URI_LIST:
        return uri_list.render_categories(categories, media)
    return _rendered((("Category", category_text(c)) for c in categories), media)


def render_entity(entity: Entity, media: str) -> Rendered:
    """resource_rendering: Category lines (kind, mixins), Link lines (actions, inline links), attributes."""
    if media == URI_LIST:
        return uri_list.render_entity(entity, media)
    fields = [("Category", _category_ref(entity.kind, "kind"))]
    fields += [("Category", _category_ref(m, "mixin")) for m in entity.mixins]
    fields += [("Link", f"<{url}>;rel={quote(action)}") for action, url in entity.actions]
    fields += [("Link", inline_link_text(link)) for link in entity.links]
    core = {"occi.core.id": entity.id, "occi.core.title": entity.title, "occi.core.summary": entity.summary}
    fields += [("X-OCCI-Attribute", a) for a in _attribute_values(core, entity.attributes)]
    return _rendered(fields, media)


def render_link(link: Link, media: str) -> Rendered:
    """link_rendering: Category lines (kind, mixins) and attributes (source and target among them)."""
    if media == URI_LIST:
        return uri_list.render_link(link, media)
    fields = [("Category", _category_ref(link.kind, "kind"))]
    fields += [("Category", _category_ref(m, "mixin")) for m in link.mixins]
    core = {attr: getattr(link, name) for attr, name in LINK_CORE.items()}
    fields += [("X-OCCI-Attribute", a) for a in _attribute_values(core, link.attributes)]
    return _rendered(fields, media)


def render_locations(locations: Sequence[str], media: str) -> Rendered:
    """entity_collection_rendering: one X-OCCI-Location per URI (uri-list: one URI a line)."""
    if media == URI_LIST:
        return uri_list.render_locations(locations, media)
    return _rendered((("X-OCCI-Location", uri) for uri in locations), media)


def render_collection(entities: Sequence[Entity], links: Sequence[Link], media: str) -> Rendered:
    """A collection is rendered as the locations of its entities, then of its links."""
    return render_locations([e.location for e in entities] + [li.location for li in links], media)


# ---- parsing


def _media(headers: Headers) -> str:
    for name, value in headers:
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return ""


def _fields(body: bytes, headers: Headers) -> Fields:
    """The request's fields: from the headers for text/occi, from the body for text/plain. Without a
    Content-Type, from the headers if any OCCI header is there, else from the body."""
    media = _media(headers)
    if media == URI_LIST:
        raise RenderingError("text/uri-list carries only locations; send text/plain or text/occi")
    if media == TEXT_OCCI:
        return fields_from_headers(headers)
    if media in BODY_MEDIA:
        return fields_from_body(body)
    occi = {"category", "link", "x-occi-attribute", "x-occi-location"}
    if any(name.lower() in occi for name, _ in headers):
        return fields_from_headers(headers)
    return fields_from_body(body)


def _category(value: CategoryValue, where: str) -> Category:
    attrs = tuple(AttributeDef(a.name, mutable=not a.immutable, required=a.required) for a in value.attributes)
    common = {"scheme": value.scheme, "term": value.term, "title": value.title, "attributes": attrs}
    if value.cls == "kind":
        if len(value.rel) > 1:
            raise RenderingError(f"{where}: kind {value.term!r} has more than one parent in rel")
        parent = value.rel[0] if value.rel else None
        return Kind(**common, parent=parent, location=value.location, actions=tuple(value.actions))
    if value.cls == "mixin":
        return Mixin(
            **common,
            depends=tuple(value.rel[:1]),
            applies=tuple(value.rel[1:]),
            location=value.location,
            actions=tuple(value.actions),
        )
    if value.rel or value.location or value.actions:
        raise RenderingError(f"{where}: action {value.term!r} may have no rel, location or actions")
    return Action(**common)


def parse_categories(body: bytes, headers: Headers) -> list[Category]:
    """category_collection_rendering: Category fields only, no identifier twice."""
    fields = _fields(body, headers)
    _only(fields, "a category collection", categories=True)
    seen: set[str] = set()
    categories = []
    for value, where in fields.categories:
        if value.id in seen:
            raise RenderingError(f"{where}: category {value.id!r} given twice")
        seen.add(value.id)
        categories.append(_category(value, where))
    return categories


def _only(fields: Fields, what: str, **allowed: bool) -> None:
    """Refuse the kinds of field ``what`` cannot hold."""
    present = {
        "categories": fields.categories,
        "links": fields.links,
        "attributes": fields.attributes,
        "locations": fields.locations,
    }
    names = {
        "categories": "Category",
        "links": "Link",
        "attributes": "X-OCCI-Attribute",
        "locations": "X-OCCI-Location",
    }
    for kind, items in present.items():
        if items and not allowed.get(kind):
            where = items[0][-1]
            raise RenderingError(f"{where}: {names[kind]} is not part of {what}")


def _attributes(fields: Fields) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for name, value, where in fields.attributes:
        if name in attributes:
            raise RenderingError(f"{where}: attribute {name!r} given twice")
        attributes[name] = value
    return attributes


def _pop_core(attributes: dict[str, Any], table: dict[str, str]) -> dict[str, str]:
    """The core attributes moved out of ``attributes`` into model field names (as strings)."""
    return {field: str(attributes.pop(attr)) for attr, field in table.items() if attr in attributes}


def _kind_and_mixins(fields: Fields, what: str) -> tuple[str, list[str]]:
    kinds: list[str] = []
    mixins: list[str] = []
    seen: set[str] = set()
    for value, where in fields.categories:
        if value.id in seen:
            raise RenderingError(f"{where}: category {value.id!r} given twice")
        seen.add(value.id)
        if value.cls == "action":
            raise RenderingError(f"{where}: an action category is not part of {what}")
        (kinds if value.cls == "kind" else mixins).append(value.id)
    if len(kinds) != 1:
        where = fields.categories[0][1] if fields.categories else "request"
        raise RenderingError(f"{where}: {what} needs exactly one Category of class kind (found {len(kinds)})")
    return kinds[0], mixins


def _inline_link(value: LinkValue, where: str) -> Link:
    if not value.category:
        raise RenderingError(f"{where}: link to {value.target[:120]!r} has no category (its kind)")
    attributes = dict(value.attributes)
    core = _pop_core(attributes, LINK_CORE)
    core.setdefault("target", value.target)
    core.setdefault("target_kind", value.rel[0])
    if core["target"] != value.target:
        raise RenderingError(f"{where}: occi.core.target differs from the link's <{value.target[:120]}>")
    return Link(
        kind=value.category[0],
        mixins=value.category[1:],
        location=value.self_ or "",
        attributes=attributes,
        **core,
    )


def parse_entity(body: bytes, headers: Headers) -> Entity:
    """resource_rendering → Entity: one kind, mixins, attributes, inline links (action links read and
    kept in ``actions``)."""
    fields = _fields(body, headers)
    _only(fields, "an entity rendering", categories=True, links=True, attributes=True)
    kind, mixins = _kind_and_mixins(fields, "an entity rendering")
    attributes = _attributes(fields)
    entity = Entity(kind=kind, mixins=mixins, attributes=attributes, **_pop_core(attributes, ENTITY_CORE))
    for value, where in fields.links:
        if value.is_action:
            entity.actions.append((value.rel[0], value.target))
        else:
            entity.links.append(_inline_link(value, where))
    return entity


def parse_link(body: bytes, headers: Headers) -> Link:
    """link_rendering → Link: kind, mixins, attributes (source and target read from ``occi.core.*``)."""
    fields = _fields(body, headers)
    _only(fields, "a link rendering", categories=True, links=True, attributes=True)
    for value, where in fields.links:
        if not value.is_action:
            raise RenderingError(f"{where}: a link rendering holds only action links")
    kind, mixins = _kind_and_mixins(fields, "a link rendering")
    attributes = _attributes(fields)
    return Link(kind=kind, mixins=mixins, attributes=attributes, **_pop_core(attributes, LINK_CORE))


def parse_action(body: bytes, headers: Headers) -> ActionInvocation:
    """action_definition: exactly one Category of class action, and its attributes."""
    fields = _fields(body, headers)
    _only(fields, "an action invocation", categories=True, attributes=True)
    if len(fields.categories) != 1 or fields.categories[0][0].cls != "action":
        where = fields.categories[0][1] if fields.categories else "request"
        raise RenderingError(f"{where}: an action invocation needs exactly one Category of class action")
    return ActionInvocation(action=fields.categories[0][0].id, attributes=_attributes(fields))


def parse_mixins(body: bytes, headers: Headers) -> list[Mixin]:
    """User mixins to define or remove on the query interface: at least one, all of class mixin."""
    categories = parse_categories(body, headers)
    if not categories:
        raise RenderingError("no Category given: send the mixins as Category fields of class mixin")
    for category in categories:
        if not isinstance(category, Mixin):
            raise RenderingError(f"category {category.id!r} is a {category.cls}, not a mixin")
    return categories  # type: ignore[return-value]


def parse_category_ids(body: bytes, headers: Headers) -> list[str]:
    """The Category filter of a query-interface or collection request (empty: no filter)."""
    return [category.id for category in parse_categories(body, headers)]


def parse_filter(body: bytes, headers: Headers) -> tuple[list[str], dict[str, Any]]:
    """A collection filter: Category fields of any class (all must be held) and X-OCCI-Attribute values
    (all must be equal, ``occi.core.*`` included), each optional."""
    fields = _fields(body, headers)
    _only(fields, "a filter", categories=True, attributes=True)
    return _unique_ids(fields), _attributes(fields)


def _unique_ids(fields: Fields) -> list[str]:
    ids: list[str] = []
    for value, where in fields.categories:
        if value.id in ids:
            raise RenderingError(f"{where}: category {value.id!r} given twice")
        ids.append(value.id)
    return ids


def parse_locations(body: bytes, headers: Headers) -> list[str]:
    """entity_collection_rendering: X-OCCI-Location URIs (absolute), from the body, the headers
    (``Location`` headers too, as rOCCI-server lists them) or a uri-list."""
    media = _media(headers)
    if media == URI_LIST:
        return uri_list.parse_locations(body, headers)
    if media in BODY_MEDIA or (media != TEXT_OCCI and not _has_location_header(headers)):
        fields = fields_from_body(body)
    else:
        fields = fields_from_headers(headers, frozenset({"location"}))
    _only(fields, "a location list", locations=True)
    return [uri_list.check_uri(uri, where) for uri, where in fields.locations]


def _has_location_header(headers: Headers) -> bool:
    return any(name.lower() in ("x-occi-location", "location") for name, _ in headers)
