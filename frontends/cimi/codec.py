"""CIMI documents to and from JSON and XML, typed by `vocabulary`: the names the rest of the frontend uses.

A document is a dict in its JSON shape (see the package's conventions). `render_json`/`render_xml` write one for a
CIMI version (render.py); `parse_json`/`parse_xml`/`parse` read a request body into one, validating it against the
expected root type (parse.py). Everything the vocabulary decides is compiled once at import into a shape per (type,
reference-or-not, extras): parse tables and one XML render plan per version (shapes.py).
"""

from __future__ import annotations

from frontends.cimi.parse import MAX_BODY, CodecError, media_kind, parse, parse_json, parse_xml
from frontends.cimi.render import render_json, render_xml

__all__ = ["MAX_BODY", "CodecError", "media_kind", "parse", "parse_json", "parse_xml", "render_json", "render_xml"]
