"""Which OCCI rendering a request gets: ``Accept`` for the answer, ``Content-Type`` for the request's own.

OCCI's default rendering is text/plain; ``*/*`` gets it too. text/uri-list only renders collections (of
locations); asked for anything else it is 406.
"""

from __future__ import annotations

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
    best: tuple[float, int, str] | None = None
    wildcard = False
    for order, item in enumerate(accept.split(",")):
        fields = [f.strip() for f in item.split(";")]
        quality = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        kind = fields[0].lower()
        if quality <= 0:
            continue
        if kind in ("*/*", "text/*", "application/*"):
            wildcard = True
            continue
        chosen = ANSWERS.get(kind)
        if chosen and (best is None or (quality, -order) > (best[0], -best[1])):
            best = (quality, order, chosen)
    if best is not None:
        return best[2]
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
