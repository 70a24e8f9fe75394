"""Which CIMI version and which rendering a request gets, from its headers (DSP0263 §4.2 and §5.3).

``CIMI-Specification-Version`` lists the versions a client accepts (``1.1``, ``2.0``, ``1``...): the highest
we speak wins; without it, 2.0. ``Accept`` picks JSON or XML; a client that states no preference gets the
rendering it sent (``Content-Type``), else JSON.
"""

from __future__ import annotations

import re

from frontends.accept import best_offer
from frontends.cimi.errors import CimiError

JSON = "application/json"
XML = "application/xml"
#: media type (as clients send it) -> our rendering
MEDIA: dict[str, str] = {
    "application/json": JSON,
    "application/cimi+json": JSON,
    "text/json": JSON,
    "application/xml": XML,
    "application/cimi+xml": XML,
    "text/xml": XML,
}
#: version label -> what the ``CIMI-Specification-Version`` response header says
VERSION_HEADER: dict[str, str] = {"1": "1.1.0", "2": "2.0.0"}
DEFAULT_VERSION = "2"
_VERSION = re.compile(r"^\s*(\d+)(?:\.(\d+))?(?:\.\d+)?\s*$")


def version(header: str | None) -> str:
    """The version to answer in: the highest major version asked that we speak."""
    if not header:
        return DEFAULT_VERSION
    majors: list[str] = []
    for part in header.split(","):
        match = _VERSION.match(part)
        if match is None:
            raise CimiError(400, f"'{part.strip()[:32]}' is not a CIMI specification version.")
        majors.append(match.group(1))
    spoken = sorted((m for m in majors if m in VERSION_HEADER), reverse=True)
    if not spoken:
        raise CimiError(400, f"CIMI versions {header.strip()[:64]} are not spoken here; ask for 2.0 or 1.1.")
    return spoken[0]


def media_type(value: str | None) -> str | None:
    """The rendering a Content-Type names, or None for one we do not read."""
    if not value:
        return None
    return MEDIA.get(value.split(";", 1)[0].strip().lower())


def rendering(accept: str | None, content_type: str | None) -> str:
    """JSON or XML for the response: the best-quality one ``Accept`` names, else the request's own."""
    sent = media_type(content_type) or JSON
    if not accept:
        return sent
    best, wildcard = best_offer(accept, MEDIA)
    if best is not None:
        return best
    if wildcard:
        return sent
    raise CimiError(406, "This service renders application/json and application/xml only.")
