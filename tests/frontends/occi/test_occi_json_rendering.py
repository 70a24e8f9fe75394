"""The OCCI JSON rendering against the OCCI 1.2 JSON schemas: every rendered document passes both the spec
appendix's schema (refs fixed) and rOCCI-core's; the spec's and rOCCI's examples parse when the spec's schema
accepts them; requests are accepted exactly when the spec's schema accepts them (ids aside); random
entities, links and categories round-trip; random input is only ever a RenderingError."""

from __future__ import annotations

import contextlib
import json
import operator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from frontends.occi.model import (
    INFRA,
    Action,
    ActionInvocation,
    AttributeDef,
    Entity,
    Kind,
    Link,
    Mixin,
    RenderingError,
)
from frontends.occi.rendering import JSON, OCCI_JSON, Rendering
from frontends.occi.rendering import json as rendering

CONFORMANCE = Path(__file__).resolve().parents[4] / "shared" / "conformance"
OCCI_WG = CONFORMANCE / "occi-wg"
ROCCI = CONFORMANCE / "rOCCI-core"
SPEC_SCHEMA = json.loads((OCCI_WG / "occi-1.2-json-schema.from-spec-appendix.fixed-refs.json").read_text())
ROCCI_VALIDATORS = ROCCI / "lib" / "occi" / "core" / "parsers" / "json" / "validator"
ROCCI_REGISTRY = Registry().with_resource(
    "occi-schema.json", DRAFT4.create_resource(json.loads((ROCCI_VALIDATORS / "occi-schema.json").read_text()))
)


def spec(definition: str) -> Draft4Validator:
    """A definition of the spec's schema (draft-04 ignores the root's anyOf next to a $ref)."""
    return Draft4Validator({**SPEC_SCHEMA, "$ref": f"#/definitions/{definition}"})


def rocci(definition: str) -> Draft4Validator:
    return Draft4Validator({"$ref": f"occi-schema.json#/definitions/{definition}"}, registry=ROCCI_REGISTRY)


SPEC = {name: spec(name) for name in SPEC_SCHEMA["definitions"]}
ROCCI_DEFS = {name: rocci(name) for name in ("resource", "link", "model", "entity_collection", "kind", "mixin")}
ROCCI_DEFS["locations"] = Draft4Validator(json.loads((ROCCI_VALIDATORS / "locations.json").read_text()))


def assert_valid(validator: Draft4Validator, doc: Any) -> None:
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(doc)]
    assert not errors, errors


# -- strategies ----------------------------------------------------------------------------------------------------

SCHEMES = st.sampled_from(
    [INFRA, "http://schemas.ogf.org/occi/core#", "https://gw.example.com/occi/tags#", "urn:x-cloudgate:os_tpl#"]
)
TERMS = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,12}", fullmatch=True)
CATEGORY_IDS = st.builds(operator.add, SCHEMES, TERMS)
NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,6}(\.[a-z][a-z0-9_]{0,6}){0,3}", fullmatch=True).filter(
    lambda name: not name.startswith("occi.core.")
)
TEXTS = st.text(max_size=16)
SCALARS = st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | TEXTS
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3), max_leaves=6
)
ATTRIBUTES = st.dictionaries(NAMES, VALUES, max_size=4)
LOCATIONS = st.from_regex(r"https?://[a-z]{1,8}(:[0-9]{2,4})?/occi/[a-z_]{1,10}/[a-z0-9-]{0,12}", fullmatch=True)
IDS = st.lists(CATEGORY_IDS, unique=True, max_size=3)

LINKS = st.builds(
    Link,
    kind=CATEGORY_IDS,
    id=TEXTS,
    source=LOCATIONS,
    target=LOCATIONS,
    target_kind=st.just("") | CATEGORY_IDS,
    mixins=IDS,
    attributes=ATTRIBUTES,
    title=TEXTS,
)
ENTITIES = st.builds(
    Entity,
    kind=CATEGORY_IDS,
    id=TEXTS,
    mixins=IDS,
    attributes=ATTRIBUTES,
    actions=IDS.map(lambda ids: [(action, "") for action in ids]),
    links=st.lists(LINKS, max_size=2),
    title=TEXTS,
    summary=TEXTS,
)
#: attribute definitions as the JSON rendering keeps them: spec types, scalar defaults, no pattern or enumeration
ATTRIBUTE_DEFS = st.lists(
    st.builds(
        AttributeDef,
        name=NAMES,
        type=st.sampled_from(rendering.ATTRIBUTE_TYPES),
        mutable=st.booleans(),
        required=st.booleans(),
        default=st.none() | SCALARS,
        description=TEXTS,
    ),
    max_size=3,
    unique_by=lambda attribute: attribute.name,
).map(tuple)
ID_TUPLES = IDS.map(tuple)
MIXINS = st.builds(
    Mixin,
    scheme=SCHEMES,
    term=TERMS,
    title=TEXTS,
    attributes=ATTRIBUTE_DEFS,
    depends=ID_TUPLES,
    applies=ID_TUPLES,
    location=LOCATIONS,
    actions=ID_TUPLES,
)
KINDS = st.builds(
    Kind,
    scheme=SCHEMES,
    term=TERMS,
    title=TEXTS,
    attributes=ATTRIBUTE_DEFS,
    parent=st.none() | CATEGORY_IDS,
    location=LOCATIONS,
    actions=ID_TUPLES,
)
ACTIONS = st.builds(Action, scheme=SCHEMES, term=TERMS, title=TEXTS, attributes=ATTRIBUTE_DEFS)
MEDIA = st.sampled_from([OCCI_JSON, JSON])
FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body(doc: Any) -> bytes:
    return json.dumps(doc).encode()


# -- the module is a Rendering ---------------------------------------------------------------------------------------


def test_the_module_offers_every_function_of_the_rendering_protocol() -> None:
    for name, member in vars(Rendering).items():
        if callable(member) and not name.startswith("_"):
            assert callable(getattr(rendering, name, None)), name


# -- rendering: both schemas, and back ---------------------------------------------------------------------------------


@FAST
@given(entity=ENTITIES, media=MEDIA)
def test_an_entity_passes_both_schemas_and_parses_back(entity: Entity, media: str) -> None:
    rendered = rendering.render_entity(entity, media)
    assert rendered.content_type == media
    doc = orjson.loads(rendered.body)
    assert_valid(SPEC["resource"], doc)
    assert_valid(ROCCI_DEFS["resource"], doc)
    assert rendering.parse_entity(rendered.body, ()) == entity


@FAST
@given(link=LINKS)
def test_a_link_passes_both_schemas_and_parses_back(link: Link) -> None:
    rendered = rendering.render_link(link, OCCI_JSON)
    doc = orjson.loads(rendered.body)
    assert_valid(SPEC["link"], doc)
    assert_valid(ROCCI_DEFS["link"], doc)
    assert rendering.parse_link(rendered.body, ()) == link


def test_an_inline_link_names_its_source_and_the_source_kind() -> None:
    link = Link(kind=INFRA + "storagelink", id="l1", target="http://h/occi/storage/s1", target_kind=INFRA + "storage")
    entity = Entity(kind=INFRA + "compute", id="c1", location="http://h/occi/compute/c1", links=[link])
    doc = orjson.loads(rendering.render_entity(entity, OCCI_JSON).body)
    assert doc["links"][0]["source"] == {"location": "http://h/occi/compute/c1", "kind": INFRA + "compute"}
    assert doc["links"][0]["target"] == {"location": "http://h/occi/storage/s1", "kind": INFRA + "storage"}


def test_unset_and_non_finite_attributes_are_left_out() -> None:
    entity = Entity(kind=INFRA + "compute", id="c1", attributes={"a": None, "b": float("nan"), "c": 1})
    assert orjson.loads(rendering.render_entity(entity, OCCI_JSON).body)["attributes"] == {"c": 1}


@FAST
@given(entities=st.lists(ENTITIES, max_size=3), links=st.lists(LINKS, max_size=3))
def test_a_collection_passes_both_schemas(entities: list[Entity], links: list[Link]) -> None:
    doc = orjson.loads(rendering.render_collection(entities, links, OCCI_JSON).body)
    assert_valid(SPEC["model"], doc)
    assert_valid(ROCCI_DEFS["entity_collection"], doc)
    if entities and not links:
        assert_valid(SPEC["resource_collection"], doc)
    if links and not entities:
        assert_valid(SPEC["link_collection"], doc)
    assert [resource["id"] for resource in doc.get("resources", [])] == [entity.id for entity in entities]
    assert [link["id"] for link in doc.get("links", [])] == [link.id for link in links]


@FAST
@given(categories=st.lists(KINDS | MIXINS | ACTIONS, max_size=5))
def test_the_query_interface_passes_both_schemas(categories: list[Kind | Mixin | Action]) -> None:
    rendered = rendering.render_categories(categories, OCCI_JSON)
    doc = orjson.loads(rendered.body)
    assert_valid(SPEC["model"], doc)
    assert_valid(ROCCI_DEFS["model"], doc)
    for kind in doc.get("kinds", []):
        assert_valid(SPEC["kind"], kind)
        assert_valid(ROCCI_DEFS["kind"], kind)
    by_class = {cls: [c.id for c in categories if c.cls == cls] for cls in ("kind", "mixin", "action")}
    expected = list(dict.fromkeys(by_class["kind"] + by_class["mixin"] + by_class["action"]))
    assert rendering.parse_category_ids(rendered.body, ()) == expected


@FAST
@given(mixins=st.lists(MIXINS, min_size=1, max_size=3))
def test_mixins_parse_back_as_user_mixin_definitions(mixins: list[Mixin]) -> None:
    rendered = rendering.render_categories(mixins, OCCI_JSON)
    assert_valid(SPEC["mixin_collection"], orjson.loads(rendered.body))
    assert rendering.parse_mixins(rendered.body, ()) == mixins


def test_what_the_schemas_disagree_on_is_left_out_of_attribute_definitions() -> None:
    state = AttributeDef(
        "occi.compute.state", type="string", default="inactive", enum=("active", "inactive"), pattern="[a-z]+"
    )
    memory = AttributeDef("occi.compute.memory", type="integer", mutable=True, default=[1])
    kind = Kind(INFRA, "compute", attributes=(state, memory), location="http://h/occi/compute/")
    doc = orjson.loads(rendering.render_categories([kind], OCCI_JSON).body)
    assert doc["kinds"][0]["attributes"] == {
        "occi.compute.state": {"type": "string", "mutable": False, "required": False, "default": "inactive"},
        "occi.compute.memory": {"type": "number", "mutable": True, "required": False},
    }


@FAST
@given(locations=st.lists(LOCATIONS, unique=True, max_size=4))
def test_locations_are_an_array_and_parse_back(locations: list[str]) -> None:
    rendered = rendering.render_locations(locations, JSON)
    doc = orjson.loads(rendered.body)
    assert doc == locations
    if locations:
        assert_valid(ROCCI_DEFS["locations"], doc)
    assert rendering.parse_locations(rendered.body, ()) == locations


@FAST
@given(action=CATEGORY_IDS, attributes=ATTRIBUTES)
def test_an_action_invocation_parses(action: str, attributes: dict[str, Any]) -> None:
    doc = {"action": action, "attributes": attributes}
    assert_valid(SPEC["action_invocation"], doc)
    assert rendering.parse_action(body(doc), ()) == ActionInvocation(action, attributes)


# -- the spec's and rOCCI's examples -----------------------------------------------------------------------------------

EXAMPLES = {
    OCCI_WG / "json-examples" / "example-07.json": (rendering.parse_locations, []),
    OCCI_WG / "json-examples" / "example-08.json": (rendering.parse_locations, []),
    OCCI_WG / "json-examples" / "example-09.json": (rendering.parse_category_ids, []),
    OCCI_WG / "json-examples" / "example-10.json": (rendering.parse_category_ids, []),
    OCCI_WG / "json-examples" / "example-11.json": (rendering.parse_category_ids, []),
    OCCI_WG / "json-examples" / "example-15.json": (
        rendering.parse_action,
        ActionInvocation(INFRA.replace("#", "/compute/action#stop"), {"method": "graceful"}),
    ),
    OCCI_WG / "json-examples" / "example-19.json": (
        rendering.parse_category_ids,
        [INFRA.replace("#", "/compute/action#stop")],
    ),
    ROCCI / "examples" / "rendering" / "action_instance.json": (
        rendering.parse_action,
        ActionInvocation(INFRA.replace("#", "/compute/action#suspend"), {"method": "suspend"}),
    ),
}


def test_every_spec_example_is_covered() -> None:
    examples = set((OCCI_WG / "json-examples").iterdir())
    assert examples - set(EXAMPLES) == {OCCI_WG / "json-examples" / "example-18.json"}  # below


@pytest.mark.parametrize("path", sorted(EXAMPLES), ids=lambda path: path.name)
def test_an_example_parses(path: Path) -> None:
    parse, expected = EXAMPLES[path]
    assert parse(path.read_bytes(), ()) == expected


def test_the_spec_mixin_example_defines_a_mixin() -> None:
    (mixin,) = rendering.parse_mixins((OCCI_WG / "json-examples" / "example-18.json").read_bytes(), ())
    assert mixin.id == "http://example.com/template/resource#medium"
    assert mixin.location == "/template/resource/medium/"
    assert mixin.depends == ("http://schemas.ogf.org/occi/infrastructure#resourcetpl",)
    assert mixin.applies == (INFRA + "compute",)
    assert mixin.attributes == (AttributeDef("occi.compute.speed", type="number", default=2.8),)


def test_rocci_instance_parses_with_core_attributes_as_fields() -> None:
    entity = rendering.parse_entity((ROCCI / "examples" / "rendering" / "instance.json").read_bytes(), ())
    assert (entity.kind, entity.id, entity.title) == (INFRA + "compute", "89878", "my_compute")
    assert entity.attributes["occi.compute.cores"] == 1
    assert not any(name.startswith("occi.core.") for name in entity.attributes)
    storage, nic = entity.links
    assert (storage.id, storage.source, storage.target) == ("compute_89878_disk_0", "/compute/89878", "/storage/5401")
    assert storage.target_kind == INFRA + "storage"
    assert nic.mixins == ["http://schemas.ogf.org/occi/infrastructure/networkinterface#ipnetworkinterface"]
    assert nic.attributes["occi.networkinterface.address"] == "172.16.0.1"


def test_rocci_category_lists_and_model_alt_are_filters() -> None:
    ids = rendering.parse_category_ids((ROCCI / "examples" / "rendering" / "categories.json").read_bytes(), ())
    assert ids[-1] == INFRA + "resource_tpl"
    alt = (ROCCI / "examples" / "rendering" / "model.alt.json").read_bytes()
    assert_valid(SPEC["model"], json.loads(alt))
    assert INFRA + "compute" in rendering.parse_category_ids(alt, ())


def test_rocci_model_with_string_patterns_is_refused_as_the_spec_refuses_it() -> None:
    model = (ROCCI / "examples" / "rendering" / "model.json").read_bytes()
    assert not SPEC["model"].is_valid(json.loads(model))
    for parse in (rendering.parse_mixins, rendering.parse_category_ids):
        with pytest.raises(RenderingError, match=r"^\$\."):
            parse(model, ())


# -- requests: accepted exactly when the spec's schema accepts them --------------------------------------------------

JUNK = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(NAMES, st.none() | st.integers(), max_size=2)
)


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """The document with one node replaced by a non-string, removed, or given an unknown member."""
    nodes: list[tuple[Any, Any]] = []
    stack = [doc]
    while stack:
        node = stack.pop()
        keys = list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
        for key in keys:
            nodes.append((node, key))
            stack.append(node[key])
    if not nodes:
        return doc
    node, key = draw(st.sampled_from(nodes))
    operation = draw(st.sampled_from(["replace", "remove", "extend"]))
    if operation == "replace":
        node[key] = draw(JUNK)
    elif operation == "remove" and isinstance(node, dict):
        del node[key]
    elif isinstance(node, dict) and isinstance(node[key], dict):
        node[key]["unknown"] = 1
    return doc


def with_ids(doc: Any) -> Any:
    """The document with the ids the spec requires and a client creating an entity may leave out."""
    if isinstance(doc, dict) and "kind" in doc:
        doc = {"id": "x", **doc}
        if isinstance(doc.get("links"), list):
            doc["links"] = [with_ids(link) for link in doc["links"]]
    return doc


def accepted(parse: Any, doc: Any) -> bool:
    try:
        parse(body(doc), ())
    except RenderingError:
        return False
    return True


@FAST
@given(entity=ENTITIES, data=st.data())
def test_a_resource_request_is_accepted_exactly_when_the_spec_schema_accepts_it(entity: Entity, data: Any) -> None:
    doc = data.draw(mutated(orjson.loads(rendering.render_entity(entity, OCCI_JSON).body)))
    assert accepted(rendering.parse_entity, doc) == SPEC["resource"].is_valid(with_ids(doc))


@FAST
@given(link=LINKS, data=st.data())
def test_a_link_request_is_accepted_exactly_when_the_spec_schema_accepts_it(link: Link, data: Any) -> None:
    doc = data.draw(mutated(orjson.loads(rendering.render_link(link, OCCI_JSON).body)))
    assert accepted(rendering.parse_link, doc) == SPEC["link"].is_valid(with_ids(doc))


@FAST
@given(action=CATEGORY_IDS, attributes=ATTRIBUTES, data=st.data())
def test_an_action_request_is_accepted_exactly_when_the_spec_schema_accepts_it(
    action: str, attributes: dict[str, Any], data: Any
) -> None:
    doc = data.draw(mutated({"action": action, "attributes": attributes}))
    assert accepted(rendering.parse_action, doc) == SPEC["action_invocation"].is_valid(doc)


def test_a_resource_without_an_id_is_taken_for_the_server_to_name() -> None:
    assert rendering.parse_entity(b'{"kind": "http://schemas.ogf.org/occi/infrastructure#compute"}', ()).id == ""


# -- bad requests: a RenderingError naming where -----------------------------------------------------------------------

COMPUTE = INFRA + "compute"
BAD = [
    (rendering.parse_entity, b"", r"^\$: malformed JSON"),
    (rendering.parse_entity, b'{"kind": ', r"^\$: malformed JSON"),
    (rendering.parse_entity, b"\xff\xfe", r"^\$: the body is not UTF-8"),
    (rendering.parse_entity, b"[]", r"^\$: \[\] is not of type 'object'"),
    (rendering.parse_entity, b"{}", r"^\$: 'kind' is a required property"),
    (rendering.parse_entity, b'{"kind": 3}', r"^\$\.kind: 3 is not of type 'string'"),
    (rendering.parse_entity, b'{"kind": "compute"}', r"^\$\.kind: not a category identifier"),
    (rendering.parse_entity, b'{"kind": "http://x/compute"}', r"^\$\.kind: not a category identifier"),
    (rendering.parse_entity, body({"kind": COMPUTE, "mixins": ["x#"]}), r"^\$\.mixins\[0\]: not a category"),
    (rendering.parse_entity, body({"kind": COMPUTE, "attributes": {"a": None}}), r"^\$\.attributes\.a: None"),
    (rendering.parse_entity, body({"kind": COMPUTE, "attributes": {"a b": 1}}), r"^\$\.attributes: not an attr"),
    (rendering.parse_entity, body({"kind": COMPUTE, "color": "red"}), r"^\$: Additional properties"),
    (rendering.parse_entity, b'{"kind": "a:b#c", "kind": "a:b#d"}', r'^\$: member "kind" given twice'),
    (rendering.parse_entity, b'{"kind": "a:b#c", "attributes": {"n": NaN}}', r"^\$: NaN is not a JSON number"),
    (rendering.parse_entity, b'{"kind": "a:b#c", "attributes": {"n": 1e400}}', r"^\$: 1e400 is out of range"),
    (rendering.parse_entity, b'{"kind": "a:b#c", "title": "\\udc00"}', r"^\$\.title: a string is not Unicode"),
    (rendering.parse_entity, b'{"kind": "a:b#c", "attributes": {"n": ' + b"9" * 5000 + b"}}", r"^\$: Exceeds"),
    (rendering.parse_entity, b'{"kind": "a:b#c", "attributes": {"n": ' + b"[" * 40 + b"]" * 40 + b"}}", r"deeper"),
    (rendering.parse_entity, b"[" * 100_000, r"^\$: nested deeper than 32 levels"),
    (
        rendering.parse_entity,
        body({"kind": COMPUTE, "title": "a", "attributes": {"occi.core.title": "b"}}),
        r"^\$\.attributes\.occi\.core\.title: differs",
    ),
    (rendering.parse_entity, body({"kind": COMPUTE, "links": [{"kind": COMPUTE}]}), r"^\$\.links\[0\]: 'target'"),
    (
        rendering.parse_entity,
        body({"kind": COMPUTE, "links": [{"kind": COMPUTE, "source": {"location": "/a"}, "target": {}}]}),
        r"^\$\.links\[0\]\.target: 'location' is a required",
    ),
    (rendering.parse_link, body({"kind": COMPUTE, "source": {"location": "/a"}}), r"^\$: 'target'"),
    (
        rendering.parse_link,
        body({"kind": COMPUTE, "source": {"location": "/a"}, "target": {"location": "/b", "kind": "b"}}),
        r"^\$\.target\.kind: not a category identifier",
    ),
    (rendering.parse_action, b"{}", r"^\$: 'action' is a required property"),
    (rendering.parse_action, body({"action": "stop"}), r"^\$\.action: not a category identifier"),
    (rendering.parse_mixins, b"{}", r"^\$\.mixins: no mixin to define"),
    (rendering.parse_mixins, body({"kinds": [{"term": "k", "scheme": "a:b#"}]}), r"^\$\.kinds: only mixins"),
    (rendering.parse_mixins, body({"term": "t", "scheme": "a:b#"}), r"'location' is a required property"),
    (rendering.parse_mixins, body({"term": "t", "scheme": "ab", "location": "/t/"}), r"^\$\.scheme: not a categ"),
    (rendering.parse_mixins, body({"term": "-t", "scheme": "a:b#", "location": "/t/"}), r"^\$\.term: not a cat"),
    (
        rendering.parse_mixins,
        body({"term": "t", "scheme": "a:b#", "location": "/t/", "attributes": {"a": {"type": "date"}}}),
        r"^\$\.attributes\.a\.type: must be one of",
    ),
    (
        rendering.parse_mixins,
        body({"term": "t", "scheme": "a:b#", "location": "/t/", "attributes": {"a": {"b": {"type": "string"}}}}),
        r"^\$\.attributes\.a: not an attribute description",
    ),
    (
        rendering.parse_mixins,
        body({"term": "t", "scheme": "a:b#", "location": "/t/", "attributes": {"a": {"pattern": {"pattern": "("}}}}),
        r"^\$\.attributes\.a\.pattern\.pattern: not a regular expression",
    ),
    (rendering.parse_category_ids, body({"kinds": ["compute"]}), r"^\$\.kinds\[0\]: not a category identifier"),
    (rendering.parse_category_ids, body({"kinds": [{"term": "t"}]}), r"^\$"),
    (rendering.parse_category_ids, body({"tags": []}), r"^\$"),
    (rendering.parse_locations, body(["/a", ""]), r"^\$\[1\]: not a location"),
    (rendering.parse_locations, body({"resources": [{"kind": COMPUTE}]}), r"^\$\.resources\[0\]: 'id' is a req"),
    (rendering.parse_locations, body("/a"), r"^\$"),
]


BAD_IDS = [f"{parse.__name__}-{index}" for index, (parse, _, _) in enumerate(BAD)]


@pytest.mark.parametrize(("parse", "data", "message"), BAD, ids=BAD_IDS)
def test_a_bad_request_is_a_rendering_error_naming_where(parse: Any, data: bytes, message: str) -> None:
    with pytest.raises(RenderingError, match=message):
        parse(data, ())


def test_an_empty_filter_is_no_filter() -> None:
    assert rendering.parse_category_ids(b"", ()) == []
    assert rendering.parse_category_ids(b"  \r\n", ()) == []
    assert rendering.parse_category_ids(b"{}", ()) == []


def test_an_entity_collection_names_the_entities_to_associate() -> None:
    doc = {"resources": [{"kind": COMPUTE, "id": "c1"}], "links": []}
    assert rendering.parse_locations(body(doc), ()) == ["c1"]


PARSERS = [getattr(rendering, name) for name in dir(Rendering) if name.startswith("parse_")]
MEMBERS = ["kind", "id", "mixins", "attributes", "actions", "links", "source", "target", "location", "term", "scheme"]
MEMBERS += ["action", "kinds", "resources", "type", "pattern", "default", "depends", "applies", "title", "mutable"]


def _json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | CATEGORY_IDS,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(MEMBERS) | TEXTS, inner, max_size=4)
        ),
        max_leaves=12,
    )


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=64) | _json_values().map(lambda v: json.dumps(v).encode()))
def test_random_input_is_only_ever_a_rendering_error(data: bytes) -> None:
    for parse in PARSERS:
        with contextlib.suppress(RenderingError):
            parse(data, ())
