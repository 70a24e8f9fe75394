"""OpenNebula templates as data: reading the dicts pyone makes of ``TEMPLATE`` elements, writing XML templates.

oned accepts a template as ``KEY="value"`` text or as ``<TEMPLATE>`` XML; XML is what this backend sends, because
ElementTree escapes any value (user data, tag values) where the text syntax would need quoting rules of its own.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

#: A template to send: attribute -> a value, a vector (dict), or a list of either (repeated attribute).
Template = Mapping[str, Any]


def to_xml(template: Template) -> str:
    """``<TEMPLATE>`` XML of a template, attribute names as given (oned upper-cases them)."""
    root = ET.Element("TEMPLATE")
    for name, value in template.items():
        for item in value if isinstance(value, list) else [value]:
            element = ET.SubElement(root, name)
            if isinstance(item, Mapping):
                for key, sub in item.items():
                    ET.SubElement(element, key).text = str(sub)
            else:
                element.text = str(item)
    return ET.tostring(root, encoding="unicode")


def vectors(template: Mapping[str, Any] | None, name: str) -> list[dict[str, str]]:
    """Every vector attribute ``name`` of a parsed template (pyone gives one as a dict, several as a list)."""
    value = (template or {}).get(name)
    items = value if isinstance(value, list) else [value] if value is not None else []
    return [dict(item) for item in items if isinstance(item, Mapping)]


def single(template: Mapping[str, Any] | None, name: str, default: str = "") -> str:
    """A single attribute's value (the first, if repeated), or ``default``."""
    value = (template or {}).get(name)
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    return value if isinstance(value, str) else default


def number(template: Mapping[str, Any] | None, name: str) -> float:
    """A numeric attribute (CPU, MEMORY, SIZE...), 0 when absent or not a number."""
    try:
        return float(single(template, name, "0") or 0)
    except ValueError:
        return 0.0
