"""Which OCCI rendering a request gets: ``Accept`` for the answer, ``Content-Type`` for the request's own.

OCCI's default rendering is text/plain; ``*/*`` gets it too. text/uri-list only renders collections (of
locations); asked for anything else it is 406.
"""

from __future__ import annotations

from frontends.accept import best_offer
from frontends.occi.errors import OcciError
from frontends.occi.rendering import JSON, OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, URI_LIST

#: media types we render, as clients name them -> the exact Content-Type we answer with
ANSWERS: dict[str, str] = {
    TEXT_PLAIN: TEXT_PLAIN,
    TEXT_OCCI: TEXT_OCCI,
    OCCI_JSON: OCCI_JSON,
    JSON: JSON,
    URI_LIST: URI_LIST,
}
DEFAULT = TEXT_PLAIN


def answer_media(accept: str | None) -> str:
    """The rendering of the answer: the best-quality one ``Accept`` names; 406 when it names none of ours."""
    if not accept or not accept.strip():
        return DEFAULT
    best, wildcard = best_offer(accept, ANSWERS)
    if best is not None:
        return best
    if wildcard:
        return DEFAULT
    raise OcciError(406, "This service renders text/plain, text/occi, application/occi+json, application/json "
                         "and text/uri-list.")  # fmt: skip


def request_media(content_type: str | None, has_body: bool) -> str:
    """The rendering a request is in: its Content-Type; without one, text/occi (headers) when there is no
    body, else text/plain. 415 for a media type we do not read."""
    if not content_type:
        return TEXT_PLAIN if has_body else TEXT_OCCI
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ANSWERS:
        return media
    raise OcciError(415, f"'{media[:64]}' is not an OCCI rendering read here.")
