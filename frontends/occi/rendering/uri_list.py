"""The text/uri-list rendering (RFC 2483): only locations, one absolute URI per line.

The OCCI Text Rendering document allows it for listings alone, so every function that would render or
read an instance raises ``RenderingError`` (the HTTP layer answers 400, as the document asks).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from frontends.occi.model import ActionInvocation, Category, Entity, Link, Mixin, Rendered, RenderingError
from frontends.occi.rendering import URI_LIST, Headers

#: an absolute URI: a scheme, a colon and no white space or delimiter RFC 3986 forbids
ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\"<>\\^`{|}]+")
MAX_LOCATIONS = 10000
MAX_URI = 8192
MAX_BODY = 4 * 1024 * 1024


def check_uri(uri: str, where: str) -> str:
    """An absolute URI, or RenderingError naming ``where`` (a listing is read back by others: no paths)."""
    if len(uri) > MAX_URI:
        raise RenderingError(f"{where}: URI longer than {MAX_URI} characters")
    if not ABSOLUTE_URI.fullmatch(uri):
        raise RenderingError(f"{where}: {uri[:200]!r} is not an absolute URI")
    return uri


def render_locations(locations: Sequence[str], media: str = URI_LIST) -> Rendered:
    """One URI a line, CRLF-terminated as RFC 2483 asks."""
    body = "".join(f"{uri}\r\n" for uri in locations)
    return Rendered(body=body.encode("utf-8"), content_type=media)


def render_collection(entities: Sequence[Entity], links: Sequence[Link], media: str = URI_LIST) -> Rendered:
    """The locations of the entities, then of the links."""
    return render_locations([e.location for e in entities] + [li.location for li in links], media)


def parse_locations(body: bytes, headers: Headers = ()) -> list[str]:
    """The URIs of a uri-list body; ``#`` comment lines and blank lines skipped."""
    if len(body) > MAX_BODY:
        raise RenderingError(f"text/uri-list body larger than {MAX_BODY} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RenderingError(f"text/uri-list body is not UTF-8 (byte {exc.start})") from None
    uris: list[str] = []
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(uris) >= MAX_LOCATIONS:
            raise RenderingError(f"more than {MAX_LOCATIONS} URIs in the list")
        uris.append(check_uri(line, f"line {number}"))
    return uris


def _refused() -> RenderingError:
    return RenderingError("text/uri-list carries only locations (collections); use text/plain or text/occi")


def render_categories(categories: Sequence[Category], media: str = URI_LIST) -> Rendered:
    """Not a listing: refused."""
    raise _refused()


def render_entity(entity: Entity, media: str = URI_LIST) -> Rendered:
    """Not a listing: refused."""
    raise _refused()


def render_link(link: Link, media: str = URI_LIST) -> Rendered:
    """Not a listing: refused."""
    raise _refused()


def parse_entity(body: bytes, headers: Headers = ()) -> Entity:
    """Not a listing: refused."""
    raise _refused()


def parse_link(body: bytes, headers: Headers = ()) -> Link:
    """Not a listing: refused."""
    raise _refused()


def parse_action(body: bytes, headers: Headers = ()) -> ActionInvocation:
    """Not a listing: refused."""
    raise _refused()


def parse_mixins(body: bytes, headers: Headers = ()) -> list[Mixin]:
    """Not a listing: refused."""
    raise _refused()


def parse_category_ids(body: bytes, headers: Headers = ()) -> list[str]:
    """Not a listing: refused."""
    raise _refused()
