"""OCCI renderings, picked by media type from one table (STYLE rule 8).

Every rendering module offers the same functions (``Rendering``); the HTTP layer picks one by the
request's ``Accept`` (responses) or ``Content-Type`` (requests) and the controllers never see which.
``headers`` are a request's headers as (name, value) pairs (text/occi carries OCCI data in them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from frontends.occi.model import ActionInvocation, Category, Entity, Link, Mixin, Rendered

TEXT_PLAIN = "text/plain"
TEXT_OCCI = "text/occi"
OCCI_JSON = "application/occi+json"
JSON = "application/json"
URI_LIST = "text/uri-list"

Headers = Sequence[tuple[str, str]]


class Rendering(Protocol):
    """What a rendering module provides (``media`` is the exact Content-Type it answers with)."""

    def render_categories(self, categories: Sequence[Category], media: str) -> Rendered: ...

    def render_entity(self, entity: Entity, media: str) -> Rendered: ...

    def render_link(self, link: Link, media: str) -> Rendered: ...

    def render_collection(self, entities: Sequence[Entity], links: Sequence[Link], media: str) -> Rendered: ...

    def render_locations(self, locations: Sequence[str], media: str) -> Rendered: ...

    def parse_entity(self, body: bytes, headers: Headers) -> Entity: ...

    def parse_link(self, body: bytes, headers: Headers) -> Link: ...

    def parse_action(self, body: bytes, headers: Headers) -> ActionInvocation: ...

    def parse_mixins(self, body: bytes, headers: Headers) -> list[Mixin]: ...

    def parse_category_ids(self, body: bytes, headers: Headers) -> list[str]: ...

    def parse_filter(self, body: bytes, headers: Headers) -> tuple[list[str], dict[str, Any]]: ...

    def parse_locations(self, body: bytes, headers: Headers) -> list[str]: ...
