"""OCCI documents as plain data, between the renderings and the controllers.

Categories (kinds, mixins, actions) with their attribute definitions describe what exists; ``Entity``,
``Link`` and ``ActionInvocation`` are instances as a request carries them or a response shows them. The
renderings (``frontends/occi/rendering/``) turn these into text/plain, text/occi, JSON or uri-list and
parse requests back into them; the controllers never see a media type (STYLE rule 8).

Category identifiers are ``scheme + term`` (the scheme ends with ``#``). Locations are absolute URLs in
responses; requests may carry paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: OCCI attribute types (JSON rendering's names); text renders strings quoted, numbers and booleans bare
AttributeType = Literal["string", "number", "integer", "boolean", "array", "object"]

CORE = "http://schemas.ogf.org/occi/core#"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"


@dataclass(frozen=True, slots=True)
class AttributeDef:
    """One attribute a category defines."""

    name: str
    type: AttributeType = "string"
    mutable: bool = False
    required: bool = False
    default: Any = None
    description: str = ""
    #: allowed values (an enumeration), e.g. compute states
    enum: tuple[str, ...] = ()
    #: a regular expression a string value must match (JSON schema ``pattern``)
    pattern: str | None = None


@dataclass(frozen=True, slots=True)
class Category:
    """Kind, mixin or action: ``scheme`` + ``term`` identify it."""

    scheme: str
    term: str
    title: str = ""
    attributes: tuple[AttributeDef, ...] = ()

    @property
    def id(self) -> str:
        return self.scheme + self.term

    @property
    def cls(self) -> str:
        return "category"


@dataclass(frozen=True, slots=True)
class Action(Category):
    @property
    def cls(self) -> str:
        return "action"


@dataclass(frozen=True, slots=True)
class Kind(Category):
    #: the parent kind's identifier (``entity`` has none)
    parent: str | None = None
    #: where its entities live: an absolute URL in responses (e.g. ``http://host/occi/compute/``)
    location: str | None = None
    #: identifiers of the actions its entities may be asked to do
    actions: tuple[str, ...] = ()

    @property
    def cls(self) -> str:
        return "kind"


@dataclass(frozen=True, slots=True)
class Mixin(Category):
    #: identifiers of mixins this one depends on (``os_tpl`` for an image's template)
    depends: tuple[str, ...] = ()
    #: identifiers of kinds this mixin applies to
    applies: tuple[str, ...] = ()
    location: str | None = None
    actions: tuple[str, ...] = ()

    @property
    def cls(self) -> str:
        return "mixin"


@dataclass(slots=True)
class Link:
    """A link instance (networkinterface, storagelink): inline in its source's rendering, or on its own."""

    kind: str
    id: str = ""
    #: absolute URL of the link (its own location), when it has one
    location: str = ""
    source: str = ""
    target: str = ""
    #: the kind of the target (``rel`` in the text rendering; ``target.kind`` in JSON)
    target_kind: str = ""
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    title: str = ""


@dataclass(slots=True)
class Entity:
    """A resource instance (compute, storage, network...)."""

    kind: str
    id: str = ""
    location: str = ""
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    #: the action links of the entity in its current state: (action identifier, absolute action URL)
    actions: list[tuple[str, str]] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    title: str = ""
    summary: str = ""


@dataclass(slots=True)
class ActionInvocation:
    """An action a request asks for: its category identifier and attributes (e.g. ``method``)."""

    action: str
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response (or request) in one rendering: its body, the headers that carry OCCI data (text/occi),
    and its exact Content-Type."""

    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


class RenderingError(ValueError):
    """A request is not a well-formed rendering (400); ``message`` says what and where."""
