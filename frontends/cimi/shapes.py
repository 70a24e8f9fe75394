"""CIMI types compiled once into shapes: how a document, an embedded struct or a reference to a type reads and
writes (parse tables, XML attributes, render plans per version), shared by render.py and parse.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from frontends.cimi import vocabulary
from frontends.cimi.vocabulary import SCALARS, TYPES, Attr, Kind


def describe(value: Any) -> str:
    """A value as an error message quotes it (at most 40 characters)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_HREF = vocabulary.u("href")
_RESOURCE_URI = vocabulary.u("resourceURI")

# How an XML child element maps to an attribute.
VALUE, WRAPPER, ITEM, PROPERTY = "value", "wrapper", "item", "property"


class Shape:
    """One compiled shape: a declared type as a document or embedded struct, or a reference to one (`href` plus,
    inline, the target's attributes and the reference's extras)."""

    __slots__ = (
        "attrs",
        "json_in",
        "label",
        "legacy",
        "plans",
        "renames",
        "xml_attrs",
        "xml_attrs_in",
        "xml_in",
    )

    def __init__(self, label: str) -> None:
        self.label = label
        self.attrs: tuple[Attr, ...] = ()
        self.json_in: dict[str, tuple[str, Attr]] = {}
        self.xml_in: dict[str, tuple[str, Attr]] = {}
        self.xml_attrs: dict[str, Attr] = {}  # attributes rendered as XML attributes
        self.xml_attrs_in: dict[str, Attr] = {}  # XML attributes accepted on input, by any of their names
        self.legacy: frozenset[str] = frozenset()
        self.plans: dict[str, tuple[tuple[str, Callable[[Any, list[str]], None]], ...]] = {}
        self.renames: dict[str, bool] = {}


SHAPES: dict[tuple[str | None, tuple[Attr, ...], bool], Shape] = {}


def shape_of(target: str | None, extras: tuple[Attr, ...] = (), is_ref: bool = False) -> Shape:
    """The compiled shape (built on first use; recursive types see the same object)."""
    key = (target, extras, is_ref)
    found = SHAPES.get(key)
    if found is not None:
        return found
    rtype = TYPES[target] if target else None
    shape = Shape(("reference to " if is_ref else "") + (target or "a resource"))
    SHAPES[key] = shape
    body = (rtype.attributes if rtype else ()) + extras
    xml_attr_names: list[Attr] = []
    if is_ref:
        xml_attr_names.append(_HREF)
    if is_ref or (rtype is not None and rtype.resource):
        xml_attr_names.append(_RESOURCE_URI)
    if rtype is not None and rtype.xml_attributes:
        xml_attr_names.extend(a for a in body if a.kind in SCALARS)
    shape.attrs = body
    shape.xml_attrs = {a.name: a for a in xml_attr_names}
    shape.legacy = rtype.legacy if rtype else frozenset()
    for attr in (*xml_attr_names, *body):
        for name in attr.all_names():
            shape.json_in[name] = (attr.name, attr)
    for attr in body:
        if attr.name in shape.xml_attrs:
            continue
        names = attr.all_names()
        if attr.kind is Kind.LIST:
            assert attr.item is not None
            for name in names:
                shape.xml_in[name] = (WRAPPER, attr)
            shape.xml_in[attr.item.name] = (ITEM, attr)
        elif attr.kind is Kind.MAP:
            for name in names:
                shape.xml_in[name] = (WRAPPER, attr)
            shape.xml_in["property"] = (PROPERTY, attr)
        else:
            for name in names:
                shape.xml_in[name] = (VALUE, attr)
    for attr in shape.xml_attrs.values():
        for name in attr.all_names():
            shape.xml_attrs_in[name] = attr
    # Lenient: a reference's scalar attributes may come as XML attributes (`<volume href=.. initialLocation=../>`).
    if is_ref:
        for attr in body:
            if attr.kind in SCALARS:
                shape.xml_attrs_in.setdefault(attr.name, attr)
    return shape


def attr_shape(attr: Attr) -> Shape:
    return shape_of(attr.target, attr.extras, attr.kind is Kind.REF)


def root_shape(type_name: str) -> Shape:
    if type_name not in TYPES:
        raise KeyError(f"unknown CIMI type {type_name!r}")
    return shape_of(type_name)
