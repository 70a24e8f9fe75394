"""OpenNebula template attributes: parsed from ``KEY = "value"`` / ``KEY = [ A = "x" ]`` text or ``<TEMPLATE>`` XML
(both are accepted by oned), rendered as XML in oned's order (attribute names sorted, as its multimap keeps them).

A template is ``{NAME: [value, ...]}`` where a value is a ``str`` (single attribute) or a ``{str: str}`` dict
(vector attribute); names are upper-cased as oned does.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

Value = str | dict[str, str]
Template = dict[str, list[Value]]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>\#[^\n]*)
      | (?P<name>[A-Za-z0-9_\-]+)\s*=\s*
        (?:\[(?P<vector>(?:[^\]"]|"(?:[^"\\]|\\.)*")*)\]
          |"(?P<quoted>(?:[^"\\]|\\.)*)"
          |(?P<bare>[^\s,\]\[]*))
      | (?P<sep>,)
    )""",
    re.VERBOSE | re.DOTALL,
)
_PAIR = re.compile(r"""\s*,?\s*([A-Za-z0-9_\-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*""", re.DOTALL)


class TemplateError(ValueError):
    """A template oned would refuse to parse."""


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse(text: str) -> Template:
    """A template from oned's text syntax or XML (``<TEMPLATE>...</TEMPLATE>``, as pyone sends nested dicts)."""
    if text.lstrip().startswith("<"):
        return _parse_xml(text)
    out: Template = {}
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise TemplateError(f"syntax error, unexpected {text[pos : pos + 20]!r}")
        pos = match.end()
        if match["name"] is None:
            continue
        name = match["name"].upper()
        if match["vector"] is not None:
            vector: dict[str, str] = {}
            inner = match["vector"].strip()
            ipos = 0
            while ipos < len(inner):
                pair = _PAIR.match(inner, ipos)
                if pair is None or pair.end() == ipos:
                    raise TemplateError(f"syntax error in vector {name}")
                ipos = pair.end()
                vector[pair[1].upper()] = _unescape(pair[2]) if pair[2] is not None else pair[3]
            out.setdefault(name, []).append(vector)
        elif match["quoted"] is not None:
            out.setdefault(name, []).append(_unescape(match["quoted"]))
        else:
            out.setdefault(name, []).append(match["bare"])
    return out


def _parse_xml(text: str) -> Template:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise TemplateError(f"XML template does not parse: {exc}") from None
    out: Template = {}
    for child in root:
        if len(child):
            out.setdefault(child.tag.upper(), []).append({sub.tag.upper(): sub.text or "" for sub in child})
        else:
            out.setdefault(child.tag.upper(), []).append(child.text or "")
    return out


def merge(base: Template, extra: Template) -> Template:
    """oned's merge update: each attribute named in ``extra`` replaces all of that name in ``base``."""
    out = {name: list(values) for name, values in base.items()}
    out.update({name: list(values) for name, values in extra.items()})
    return out


def single(template: Template, name: str, default: str = "") -> str:
    """The first single value of ``name`` (oned's ``get(name, value)``)."""
    for value in template.get(name, []):
        if isinstance(value, str):
            return value
    return default


def vectors(template: Template, name: str) -> list[dict[str, str]]:
    return [value for value in template.get(name, []) if isinstance(value, dict)]


def to_element(template: Template, tag: str = "TEMPLATE") -> ET.Element:
    """The XML element, attribute names and vector keys sorted as oned writes them."""
    root = ET.Element(tag)
    for name in sorted(template):
        for value in template[name]:
            element = ET.SubElement(root, name)
            if isinstance(value, dict):
                for key in sorted(value):
                    ET.SubElement(element, key).text = value[key]
            else:
                element.text = value
    return root


def to_text(template: Template) -> str:
    """oned's text syntax (for the ``TEMPLATE`` strings some answers carry)."""
    lines = []
    for name in sorted(template):
        for value in template[name]:
            if isinstance(value, dict):
                inner = ",\n  ".join(f'{k}="{_escape(v)}"' for k, v in sorted(value.items()))
                lines.append(f"{name}=[\n  {inner} ]")
            else:
                lines.append(f'{name}="{_escape(value)}"')
    return "\n".join(lines)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
