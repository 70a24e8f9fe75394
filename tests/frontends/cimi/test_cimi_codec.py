"""The CIMI codec against DSP0263's shapes: the Deltacloud sample documents, random documents of every declared type
round-tripped through JSON and both versions' XML, hostile XML, and random input that must only ever be a CodecError."""

from __future__ import annotations

import contextlib
import functools
import string
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from frontends.cimi import vocabulary
from frontends.cimi.codec import MAX_BODY, CodecError, media_kind, parse, parse_json, parse_xml, render_json, render_xml
from frontends.cimi.vocabulary import NAMESPACE, SCALARS, TYPES, Attr, Kind

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "deltacloud" / "server" / "tests" / "cimi"
SAMPLES = SAMPLES / "data"
#: sample file stem -> the type it is read as. `container.*` is left out: it exercises Deltacloud's generic model
#: base class with a made-up `Container`/`Model` type that DSP0263 does not define.
SAMPLE_TYPES = {
    "credential": "Credential",
    "machine-minimal": "Machine",
    "machine": "Machine",
    "machine_configuration": "MachineConfiguration",
    "machine_create_by_value": "MachineCreate",
    "machine_image": "MachineImage",
    "machine_template": "MachineTemplate",
    "volume": "Volume",
    "volume_configuration": "VolumeConfiguration",
    "volume_image": "VolumeImage",
    "volume_template": "VolumeTemplate",
}
#: Where a JSON sample and its XML twin say different things (the XML never carries resourceURI).
SAMPLE_DIFFERENCES = {"machine-minimal": {"cpu"}}


def sample_files() -> list[Path]:
    return sorted(p for p in SAMPLES.iterdir() if p.stem in SAMPLE_TYPES)


def test_every_sample_but_the_container_is_covered() -> None:
    stems = {p.stem for p in SAMPLES.iterdir()}
    assert stems - set(SAMPLE_TYPES) == {"container"}


@pytest.mark.parametrize("path", sample_files(), ids=lambda p: p.name)
def test_sample_parses_and_renders_back(path: Path) -> None:
    type_name = SAMPLE_TYPES[path.stem]
    doc = parse(path.read_bytes(), f"application/{path.suffix[1:]}", type_name)
    assert doc.get("name") or doc.get("id")
    for version in vocabulary.VERSIONS:
        assert parse_xml(render_xml(doc, type_name, version), type_name) == doc
        assert parse_json(render_json(doc, version), type_name) == doc


@pytest.mark.parametrize("stem", sorted({p.stem for p in sample_files() if p.suffix == ".json"}))
def test_json_and_xml_samples_agree(stem: str) -> None:
    type_name = SAMPLE_TYPES[stem]
    from_json = parse((SAMPLES / f"{stem}.json").read_bytes(), "application/json", type_name)
    from_xml = parse((SAMPLES / f"{stem}.xml").read_bytes(), "application/xml; charset=utf-8", type_name)
    from_json.pop("resourceURI")
    differ = SAMPLE_DIFFERENCES.get(stem, set())
    assert set(from_json) ^ set(from_xml) == differ
    assert {k: v for k, v in from_json.items() if k not in differ} == from_xml


def test_samples_read_leniently_as_documented() -> None:
    machine = parse((SAMPLES / "machine.json").read_bytes(), "application/json", "Machine")
    assert machine["cpu"] == 4  # "cpu": "4"
    template = parse((SAMPLES / "machine_template.xml").read_bytes(), "application/xml", "MachineTemplate")
    assert template["volumes"] == [{"href": "http://cimi.example.org/volumes/1", "initialLocation": "/dev/sda"}]
    # the 1.0 draft's interface attributes: `maxTransmissionUnit` read as `mtu`, the others dropped
    assert template["networkInterfaces"] == [{"macAddress": "00:11:22:33:44:55", "state": "UP", "mtu": 1500}]
    image = parse((SAMPLES / "volume_image.json").read_bytes(), "application/json", "VolumeImage")
    assert image["imageLocation"] == "nfs://cimi.example.com/volume_images/vol_image_1.img"
    assert image["bootable"] is False


# -- random documents of every declared type ----------------------------------------------------------------

_XML_CHAR = st.one_of(
    st.characters(blacklist_categories=("Cs", "Cc", "Cn")),
    st.sampled_from("\t\n\r &<>\"'"),
)
TEXT = st.text(_XML_CHAR, max_size=10)
URI = st.text(_XML_CHAR, min_size=1, max_size=16).map(str.strip)
SCALAR_STRATEGIES: dict[Kind, st.SearchStrategy[Any]] = {
    Kind.STRING: TEXT,
    Kind.URI: URI,
    Kind.INTEGER: st.integers(-(2**63), 2**63 - 1),
    Kind.BOOLEAN: st.booleans(),
    Kind.DATETIME: st.datetimes().map(lambda d: d.replace(microsecond=0).isoformat() + "Z"),
}
#: References and structs are inlined this deep, then only referenced (CIMI types are recursive).
INLINE_DEPTH = 2


def value_strategy(attr: Attr, depth: int) -> st.SearchStrategy[Any]:
    if attr.kind in SCALARS:
        return SCALAR_STRATEGIES[attr.kind]
    if attr.kind is Kind.MAP:
        # never empty: 1.1 XML cannot tell an empty list or map from an absent one (test_v1_drops_empty_lists)
        return st.dictionaries(TEXT, TEXT, min_size=1, max_size=3)
    if attr.kind is Kind.LIST:
        assert attr.item is not None
        return st.lists(value_strategy(attr.item, depth + 1), min_size=1, max_size=2)
    return object_strategy(attr.target, attr.extras, attr.kind is Kind.REF, depth + 1)


@functools.cache
def object_strategy(target: str | None, extras: tuple[Attr, ...], is_ref: bool, depth: int) -> st.SearchStrategy:
    rtype = TYPES[target] if target else None
    optional: dict[str, st.SearchStrategy[Any]] = {}
    if is_ref:
        optional["href"] = URI
    if target and (is_ref or rtype.resource):
        optional["resourceURI"] = URI
    if depth <= INLINE_DEPTH or not is_ref:
        for attr in (*(rtype.attributes if rtype else ()), *extras):
            if depth > INLINE_DEPTH and attr.kind in (Kind.LIST, Kind.STRUCT, Kind.REF):
                continue
            optional[attr.name] = value_strategy(attr, depth)
    strategy = st.fixed_dictionaries({}, optional=optional)
    if is_ref:  # an empty reference is meaningless (and an empty 1.0-draft `<address/>` is read as dropped)
        strategy = strategy.filter(bool)
    return strategy


@st.composite
def documents(draw: st.DrawFn, type_name: str | None = None) -> tuple[str, dict[str, Any]]:
    type_name = type_name or draw(st.sampled_from(sorted(TYPES)))
    doc = draw(object_strategy(type_name, (), False, 0))
    doc.pop("resourceURI", None)
    if TYPES[type_name].resource and draw(st.booleans()):
        doc = {"resourceURI": vocabulary.resource_uri(type_name, draw(st.sampled_from(vocabulary.VERSIONS))), **doc}
    return type_name, doc


def roundtrip(type_name: str, doc: dict[str, Any]) -> None:
    for version in vocabulary.VERSIONS:
        from_json = parse_json(render_json(doc, version, type_name), type_name)
        assert from_json == doc
        xml = render_xml(from_json, type_name, version)
        assert parse_xml(xml, type_name) == doc, xml


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_random_documents_roundtrip_json_xml_json(case: tuple[str, dict[str, Any]]) -> None:
    roundtrip(*case)


def full_document(type_name: str, depth: int = 0) -> dict[str, Any]:
    """Every attribute of `type_name` set (references inlined one level): each type's every attribute is seen."""
    doc: dict[str, Any] = {}
    for attr in TYPES[type_name].attributes:
        doc[attr.name] = full_value(attr, depth)
    return doc


def full_value(attr: Attr, depth: int) -> Any:
    samples = {Kind.STRING: "a & <b>", Kind.URI: "http://h/x?a=1&b=2", Kind.INTEGER: 7, Kind.BOOLEAN: True}
    samples[Kind.DATETIME] = "2024-05-06T07:08:09Z"
    if attr.kind in samples:
        return samples[attr.kind]
    if attr.kind is Kind.MAP:
        return {"k": "v", 'q"<': "\n"}
    if attr.kind is Kind.LIST:
        assert attr.item is not None
        return [full_value(attr.item, depth), full_value(attr.item, depth)]
    inline = full_document(attr.target, depth + 1) if attr.target and depth < 1 else {}
    extras = {extra.name: full_value(extra, depth) for extra in attr.extras}
    if attr.kind is Kind.REF:
        return {"href": "http://h/ref", **inline, **extras}
    return inline or {}


@pytest.mark.parametrize("type_name", sorted(TYPES))
def test_every_type_roundtrips_with_every_attribute(type_name: str) -> None:
    doc = full_document(type_name)
    if TYPES[type_name].resource:
        doc = {"resourceURI": vocabulary.resource_uri(type_name, "2"), **doc}
    roundtrip(type_name, doc)


# -- the two versions' shapes ---------------------------------------------------------------------------------


def machine_collection() -> dict[str, Any]:
    machine = {
        "id": "http://h/cimi/machines/1",
        "properties": {"env": "prod"},
        "cpu": 2,
        "operations": [{"rel": "edit", "href": "http://h/cimi/machines/1"}],
    }
    return {
        "resourceURI": vocabulary.resource_uri("MachineCollection", "2"),
        "id": "http://h/cimi/machines",
        "count": 2,
        "machines": [machine, {**machine, "id": "http://h/cimi/machines/2"}],
    }


def test_v2_wraps_lists_and_v1_repeats_them() -> None:
    doc = machine_collection()
    v2 = etree.fromstring(render_xml(doc, "MachineCollection", "2"))
    ns2 = f"{{{NAMESPACE['2']}}}"
    assert v2.tag == ns2 + "MachineCollection"
    assert [el.tag for el in v2] == [ns2 + "id", ns2 + "count", ns2 + "machines"]
    machines = v2.find(ns2 + "machines")
    assert [el.tag for el in machines] == [ns2 + "Machine"] * 2
    first = machines[0]
    assert first.find(f"{ns2}properties/{ns2}property").attrib == {"key": "env"}
    assert first.find(f"{ns2}operations/{ns2}operation").attrib == {"rel": "edit", "href": "http://h/cimi/machines/1"}

    v1 = etree.fromstring(render_xml(doc, "MachineCollection", "1"))
    ns1 = f"{{{NAMESPACE['1']}}}"
    assert [el.tag for el in v1] == [ns1 + "id", ns1 + "count", ns1 + "Machine", ns1 + "Machine"]
    assert [el.tag for el in v1[2]] == [ns1 + "id", ns1 + "property", ns1 + "cpu", ns1 + "operation"]


def test_v1_drops_empty_lists() -> None:
    doc = {"id": "http://h/m/1", "operations": [], "properties": {}}
    assert parse_xml(render_xml(doc, "Machine", "2"), "Machine") == doc
    assert parse_xml(render_xml(doc, "Machine", "1"), "Machine") == {"id": "http://h/m/1"}


def test_resource_metadata_type_uri_is_spelled_per_version() -> None:
    doc = {"id": "http://h/cimi/resourceMetadata/machine", "typeURI": vocabulary.resource_uri("Machine", "2")}
    assert b'"typeUri"' in render_json(doc, "1", "ResourceMetadata")
    assert b'"typeURI"' in render_json(doc, "2", "ResourceMetadata")
    assert b"<typeUri>" in render_xml(doc, "ResourceMetadata", "1")
    assert b"<typeURI>" in render_xml(doc, "ResourceMetadata", "2")
    for version in vocabulary.VERSIONS:
        assert parse_json(render_json(doc, version, "ResourceMetadata"), "ResourceMetadata") == doc
        assert parse_xml(render_xml(doc, "ResourceMetadata", version), "ResourceMetadata") == doc
    # the type found from resourceURI when not given
    with_uri = {"resourceURI": vocabulary.resource_uri("ResourceMetadata", "1"), **doc}
    assert b'"typeUri"' in render_json(with_uri, "1")


def test_either_namespace_none_and_any_case_are_read() -> None:
    for ns in (f' xmlns="{NAMESPACE["1"]}"', f' xmlns="{NAMESPACE["2"]}"', ""):
        for root in ("MachineCreate", "machinecreate", "MACHINECREATE"):
            body = f"<{root}{ns}><name>m</name><machineTemplate href='http://h/t/1'/></{root}>".encode()
            assert parse_xml(body, "MachineCreate") == {"name": "m", "machineTemplate": {"href": "http://h/t/1"}}


def test_wrapped_and_unwrapped_lists_are_read_in_either_namespace() -> None:
    wrapped = b"""<MachineTemplate xmlns="http://schemas.dmtf.org/cimi/1"><properties><property key="a">1</property>
      </properties><volumes><volume href="http://h/v/1"><initialLocation>/dev/vdb</initialLocation></volume></volumes>
      </MachineTemplate>"""
    unwrapped = b"""<MachineTemplate xmlns="http://schemas.dmtf.org/cimi/2"><property key="a">1</property>
      <volume href="http://h/v/1" initialLocation="/dev/vdb"/></MachineTemplate>"""
    expected = {"properties": {"a": "1"}, "volumes": [{"href": "http://h/v/1", "initialLocation": "/dev/vdb"}]}
    assert parse_xml(wrapped, "MachineTemplate") == expected
    assert parse_xml(unwrapped, "MachineTemplate") == expected


def test_collection_root_of_the_1_0_drafts_is_read() -> None:
    body = b'<Collection xmlns="http://schemas.dmtf.org/cimi/1"><count>0</count></Collection>'
    assert parse_xml(body, "MachineCollection") == {"count": 0}


def test_sloppy_scalars_are_read() -> None:
    body = b'{"cpu": " 4 ", "memory": 1024, "disks": [{"capacity": "10"}], "created": "2011-11-14"}'
    assert parse_json(body, "MachineConfiguration") == {
        "cpu": 4,
        "memory": 1024,
        "disks": [{"capacity": 10}],
        "created": "2011-11-14",
    }
    assert parse_json(b'{"bootable": "TRUE"}', "Volume") == {"bootable": True}
    assert parse_xml(b"<Volume><bootable>0</bootable></Volume>", "Volume") == {"bootable": False}


# -- strictness -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "kind", "type_name", "words"),
    [
        (b'{"cpu": "four"}', "json", "Machine", ["Machine.cpu", "integer", "four"]),
        (b'{"bootable": "maybe"}', "json", "Volume", ["Volume.bootable", "boolean"]),
        (b'{"properties": {"a": 1}}', "json", "Machine", ["Machine.properties", "string"]),
        (b'{"properties": ["a"]}', "json", "Machine", ["Machine.properties", "object"]),
        (b'{"machineTemplate": "http://h/t"}', "json", "MachineCreate", ["MachineCreate.machineTemplate", "object"]),
        (b'{"operations": {"rel": "edit"}}', "json", "Machine", ["Machine.operations", "list"]),
        (b'{"created": "yesterday"}', "json", "Machine", ["Machine.created", "dateTime"]),
        (b'{"cpu": 99999999999999999999}', "json", "Machine", ["Machine.cpu", "integer"]),
        (b'{"cpu": "99999999999999999999"}', "json", "Machine", ["Machine.cpu"]),
        (b"<Machine><cpu>x</cpu></Machine>", "xml", "Machine", ["Machine.cpu", "integer"]),
        (b"<Machine><cpu><a/></cpu></Machine>", "xml", "Machine", ["Machine.cpu", "integer"]),
        (b"<Volume><bootable>yes</bootable></Volume>", "xml", "Volume", ["Volume.bootable", "boolean"]),
    ],
)
def test_wrong_types_are_named(body: bytes, kind: str, type_name: str, words: list[str]) -> None:
    with pytest.raises(CodecError) as err:
        parse(body, f"application/{kind}", type_name)
    for word in words:
        assert word in err.value.message


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        (b'{"name": "m", "colour": "red"}', "json", ["'colour'", "MachineCreate"]),
        (b'{"machineTemplate": {"machineConfig": {"cpu": 1, "gpu": 2}}}', "json", ["'gpu'", "machineConfig"]),
        (b'{"machineTemplate": {"volumes": [{"href": "x", "bus": "scsi"}]}}', "json", ["'bus'", "volumes[0]"]),
        (b"<MachineCreate><colour>red</colour></MachineCreate>", "xml", ["'colour'", "MachineCreate"]),
        (b'<MachineCreate colour="red"/>', "xml", ["'colour'", "XML attribute"]),
        (b"<MachineCreate><machineTemplate><gpu/></machineTemplate></MachineCreate>", "xml", ["'gpu'", "Template"]),
        (b'<MachineCreate xmlns:x="urn:x"><x:name>m</x:name></MachineCreate>', "xml", ["foreign namespace"]),
        (b"<MachineCreate>text<name>m</name></MachineCreate>", "xml", ["unexpected text"]),
        (b"<MachineCreate><name>a</name><name>b</name></MachineCreate>", "xml", ["more than once"]),
        (b"<MachineCreate><property>v</property></MachineCreate>", "xml", ["property key="]),
        (b'{"resourceURI": "http://schemas.dmtf.org/cimi/2/Volume"}', "json", ["Volume", "MachineCreate"]),
        (b'<MachineCreate resourceURI="http://schemas.dmtf.org/cimi/1/Job"/>', "xml", ["Job", "MachineCreate"]),
        (b"<Machine/>", "xml", ["<MachineCreate>", "<Machine>"]),
        (b"[1, 2]", "json", ["JSON object"]),
        (b"{", "json", ["malformed JSON"]),
        (b"<MachineCreate>", "xml", ["malformed XML"]),
        (b"   ", "json", ["empty"]),
    ],
)
def test_unknown_attributes_and_malformed_documents_are_refused(body: bytes, kind: str, words: list[str]) -> None:
    with pytest.raises(CodecError) as err:
        parse(body, f"application/{kind}", "MachineCreate")
    for word in words:
        assert word in err.value.message, err.value.message


HOSTILE_XML = {
    "doctype": b'<!DOCTYPE Machine><Machine xmlns="http://schemas.dmtf.org/cimi/2"><name>m</name></Machine>',
    "entity": b'<!DOCTYPE m [<!ENTITY e "boom">]><Machine><name>&e;</name></Machine>',
    "billion_laughs": b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10) for n in range(1, 10))
    + b"]><Machine><name>&lol9;</name></Machine>",
    "external_entity": b'<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Machine><name>&xxe;</name></Machine>',
    "parameter_entity": b'<!DOCTYPE m [<!ENTITY % p SYSTEM "http://127.0.0.1:1/x.dtd"> %p;]><Machine/>',
    "external_dtd": b'<!DOCTYPE Machine SYSTEM "http://127.0.0.1:1/cimi.dtd"><Machine/>',
    "undeclared_entity": b"<Machine><name>&nope;</name></Machine>",
    "utf16_doctype": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE m [<!ENTITY e "x">]><Machine/>'.encode("utf-16"),
    "xinclude": b'<Machine xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="/etc/passwd"/></Machine>',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_hostile_xml_is_refused(name: str) -> None:
    with pytest.raises(CodecError):
        parse(HOSTILE_XML[name], "application/xml", "Machine")


def test_too_deep_and_too_large_are_refused() -> None:
    deep = b'{"systemTemplate": ' * 40 + b"{}" + b"}" * 40
    nested = b'{"componentDescriptors": [' + deep.replace(b"{}", b'{"name": "x"}') + b"]}"
    with pytest.raises(CodecError, match="too deeply"):
        parse_json(b'{"componentDescriptors": [{"systemTemplate": ' * 20 + b"{}" + b"}]}" * 20, "SystemTemplate")
    with pytest.raises(CodecError):
        parse_json(nested, "SystemTemplate")
    xml = b"<SystemTemplate>" + b"<componentDescriptor><systemTemplate>" * 20
    xml += b"</systemTemplate></componentDescriptor>" * 20 + b"</SystemTemplate>"
    with pytest.raises(CodecError, match="too deeply"):
        parse_xml(xml, "SystemTemplate")
    big = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    with pytest.raises(CodecError, match="larger"):
        parse_json(big, "Machine")


def test_unsupported_media_type_is_a_codec_error() -> None:
    assert media_kind("application/json; charset=utf-8") == "json"
    assert media_kind("application/CIMI+xml") == "xml"
    assert media_kind("text/plain") is None
    with pytest.raises(CodecError, match="media type"):
        parse(b"{}", "text/plain", "Machine")


# -- rendering never writes what cannot be read back ---------------------------------------------------------------


def test_escaping_and_invalid_characters() -> None:
    doc = {
        "name": 'a&b<c>d"e\r\nf\tg',
        "description": "bell\x07 and \ufffe",
        "properties": {'k"<\n\t': "v&\r"},
        "operations": [{"rel": "edit", "href": 'http://h/?a=1&b="2"\n'}],
    }
    for version in vocabulary.VERSIONS:
        back = parse_xml(render_xml(doc, "Machine", version), "Machine")
        assert back["name"] == doc["name"]
        assert back["properties"] == doc["properties"]
        assert back["description"] == "bell\ufffd and \ufffd"  # XML 1.0 cannot carry them
        assert back["operations"] == [{"rel": "edit", "href": 'http://h/?a=1&b="2"'}]  # a URI is read stripped


def test_rendering_a_name_outside_the_vocabulary_fails_loudly() -> None:
    with pytest.raises(KeyError, match="colour"):
        render_xml({"name": "m", "colour": "red"}, "Machine", "2")
    with pytest.raises(KeyError, match="gpu"):
        render_xml({"machineConfig": {"href": "x", "gpu": 1}}, "Machine", "1")


# -- random input is a CodecError and nothing else -------------------------------------------------------------------

NAMES = sorted({a.name for t in TYPES.values() for a in t.attributes} | set(TYPES) | {"property", "href", "key"})
JSON_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=5)
)
JSONISH = st.recursive(
    JSON_LEAF | st.sampled_from(NAMES),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=3), inner),
    max_leaves=12,
)


@st.composite
def xmlish(draw: st.DrawFn, depth: int = 0) -> str:
    tag = draw(st.sampled_from(NAMES))
    attrs = draw(st.dictionaries(st.sampled_from(["href", "key", "rel", "resourceURI", "x"]), st.text(max_size=4)))
    attr_text = "".join(f' {k}="{v}"' for k, v in attrs.items())
    child = xmlish(depth + 1) if depth < 3 else st.just("")
    parts = draw(st.lists(st.text(string.printable, max_size=6) | child, max_size=3))
    return f"<{tag}{attr_text}>{''.join(parts)}</{tag}>"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(sorted(TYPES)), st.sampled_from(["json", "xml"]))
def test_random_bytes_are_codec_errors(body: bytes, type_name: str, kind: str) -> None:
    with contextlib.suppress(CodecError):
        parse(body, f"application/{kind}", type_name)


@settings(max_examples=300, deadline=None)
@given(JSONISH, st.sampled_from(sorted(TYPES)))
def test_random_json_is_a_document_or_a_codec_error(value: Any, type_name: str) -> None:
    try:
        doc = parse_json(orjson.dumps(value), type_name)
    except CodecError:
        return
    # whatever was accepted renders and reads back the same
    assert parse_xml(render_xml(doc, type_name, "2"), type_name) == doc
    assert parse_json(render_json(doc, "1", type_name), type_name) == doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(xmlish(), st.sampled_from(sorted(TYPES)), st.booleans())
def test_random_xml_is_a_document_or_a_codec_error(body: str, type_name: str, namespaced: bool) -> None:
    if namespaced:
        body = body.replace(">", f' xmlns="{NAMESPACE["2"]}">', 1)
    try:
        doc = parse_xml(body.encode(), type_name)
    except CodecError:
        return
    assert parse_xml(render_xml(doc, type_name, "2"), type_name) == doc


# -- vocabulary --------------------------------------------------------------------------------------------------


def test_uris() -> None:
    assert vocabulary.resource_uri("Machine", "2") == "http://schemas.dmtf.org/cimi/2/Machine"
    assert vocabulary.action_uri("start", "1") == "http://schemas.dmtf.org/cimi/1/action/start"
    assert vocabulary.action_uri("delete", "2") == "delete"
    assert vocabulary.type_of_uri("http://schemas.dmtf.org/cimi/1/MachineCollection") == ("MachineCollection", "1")
    assert vocabulary.type_of_uri("http://example.com/Machine") is None
    for version in vocabulary.VERSIONS:
        assert vocabulary.action_of_uri(vocabulary.action_uri("capture", version)) == "capture"
    assert vocabulary.action_of_uri("edit") == "edit"
    assert vocabulary.action_of_uri("http://schemas.dmtf.org/cimi/2/action/fly") is None


def test_every_resource_type_named_by_the_issue_is_declared_with_its_collection() -> None:
    for name, attr in [
        ("Machine", "machines"),
        ("MachineTemplate", "machineTemplates"),
        ("MachineConfiguration", "machineConfigurations"),
        ("MachineImage", "machineImages"),
        ("Credential", "credentials"),
        ("CredentialTemplate", "credentialTemplates"),
        ("MachineDisk", "disks"),
        ("MachineVolume", "volumes"),
        ("MachineNetworkInterface", "networkInterfaces"),
        ("MachineNetworkInterfaceAddress", "addresses"),
        ("Volume", "volumes"),
        ("VolumeTemplate", "volumeTemplates"),
        ("VolumeConfiguration", "volumeConfigurations"),
        ("VolumeImage", "volumeImages"),
        ("Network", "networks"),
        ("NetworkTemplate", "networkTemplates"),
        ("NetworkConfiguration", "networkConfigurations"),
        ("Address", "addresses"),
        ("AddressTemplate", "addressTemplates"),
        ("System", "systems"),
        ("SystemTemplate", "systemTemplates"),
        ("SystemMachine", "machines"),
        ("SystemVolume", "volumes"),
        ("SystemNetwork", "networks"),
        ("SystemAddress", "addresses"),
        ("Job", "jobs"),
        ("ResourceMetadata", "resourceMetadata"),
    ]:
        rtype = TYPES[name]
        assert (rtype.collection, rtype.collection_attr) == (f"{name}Collection", attr)
        collection = TYPES[rtype.collection]
        assert collection.attribute(attr).item.target == name
        for common in ("id", "name", "description", "created", "updated", "properties", "operations"):
            assert rtype.attribute(common) is not None, (name, common)
    for name in ("CloudEntryPoint", "MachineCreate", "MachineTemplateCreate", "CredentialCreate", "VolumeCreate"):
        assert name in TYPES
    for name in ("NetworkCreate", "AddressCreate", "SystemCreate", "Action", "Error"):
        assert name in TYPES
