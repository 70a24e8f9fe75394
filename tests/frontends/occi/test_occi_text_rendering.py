"""OCCI text renderings (text/plain, text/occi, text/uri-list): the pOCCI fixtures judged as their names say,
rOCCI-core's examples, exact renderings, hypothesis round trips, and random input refused only with
RenderingError."""

from __future__ import annotations

import contextlib
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from frontends.occi.model import (
    CORE,
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
from frontends.occi.rendering import text, text_syntax, uri_list

CONFORMANCE = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"
POCCI = CONFORMANCE / "pOCCI" / "tests"
ROCCI = CONFORMANCE / "rOCCI-core" / "examples" / "rendering"
PLAIN = [("Content-Type", "text/plain")]
OCCI = [("Content-Type", "text/occi")]
URIS = [("Content-Type", "text/uri-list")]
COMPUTE = INFRA + "compute"
COMPUTE_ACTION = INFRA[:-1] + "/compute/action#"


def fixture_request(name: str) -> tuple[bytes, list[tuple[str, str]]]:
    """A pOCCI fixture as a request: http-* are header sets (a captured response: its status line skipped,
    its other headers kept, as a server sees foreign headers), text-* bodies, uri-* uri-lists."""
    path = POCCI / name
    base = path.name
    if base.startswith("http-"):
        headers = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("HTTP/"):
                header, _, value = line.partition(":")
                headers.append((header.strip(), value.strip()))
        return b"", [h for h in headers if h[0].lower() != "content-type"] + OCCI
    return path.read_bytes(), (URIS if base.startswith("uri-") else PLAIN)


PARSER = {
    "category-collection": text.parse_categories,
    "resource": text.parse_entity,
    "entity-collection": text.parse_locations,
}

#: fixtures that must be refused, with what the message must say
REFUSED = {
    "category-collection/text-duplicity.txt": "line 3: category 'http://schemas.ogf.org/occi/core#entity' given twice",
    "category-collection/text-error-attrdef.txt": "unknown attribute property 'asdasd'",
    "category-collection/text-error-attrdef2.txt": "unterminated quoted attribute list",
    "category-collection/text-error-category.txt": "line 1: unknown field 'Nocategory'",
    "category-collection/text-error-category2.txt": "line 1: unknown field 'Category2'",
    "category-collection/text-missing-class.txt": "category 'entity' has no class",
    "category-collection/text-missing-scheme.txt": "line 2, column 188: category 'resource' has no scheme",
    "entity-collection/invalid-format.txt": "line 1: unknown field 'https'",
    "entity-collection/invalid-uri.txt": "line 2: '/compute/17679ebd-975f-4ea0-b42b-47405178c360' is not an absol",
    "entity-collection/uri-invalid-uri.txt": "line 2: '/compute/17679ebd-975f-4ea0-b42b-47405178c360' is not an abs",
    "resource/text-bad-quote-attribute.txt": "line 2, column 15: unterminated quoted occi.core.id value",
    "resource/text-bad-quote-category.txt": "line 1, column 117: unterminated quoted title",
    "resource/text-bad-quote-link.txt": "line 3, column 33: unterminated quoted rel",
    "resource/text-invalid-format.txt": "line 1: not a 'Name: value' line",
}
ACCEPTED = [
    f"{d}/{p.name}"
    for d in PARSER
    for p in sorted((POCCI / d).glob("*.txt"))
    if any(word in p.name for word in ("-ok-", "capitalization", "ignore-unknown"))
]


def test_every_fixture_has_a_verdict() -> None:
    """No fixture of the three parsed directories is left unjudged, and the names agree with the verdicts."""
    judged = set(REFUSED) | set(ACCEPTED)
    present = {f"{d}/{p.name}" for d in PARSER for p in (POCCI / d).glob("*.txt")}
    assert present - judged == {"resource/http-bad-attr.txt", "resource/text-bad-attr.txt"}
    for name in REFUSED:
        assert any(w in name for w in ("-error-", "-bad-", "-missing-", "duplicity", "invalid-")), name


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_bad_fixture_refused(name: str) -> None:
    body, headers = fixture_request(name)
    with pytest.raises(RenderingError) as caught:
        PARSER[name.split("/")[0]](body, headers)
    assert REFUSED[name] in str(caught.value)


@pytest.mark.parametrize("name", ACCEPTED)
def test_good_fixture_parses(name: str) -> None:
    body, headers = fixture_request(name)
    assert PARSER[name.split("/")[0]](body, headers)


def _categories(name: str) -> list:
    return text.parse_categories(*fixture_request("category-collection/" + name))


@pytest.mark.parametrize(("server", "count"), [("dummy", 35), ("ec2", 56), ("opennebula", 43)])
def test_query_interface_fixtures(server: str, count: int) -> None:
    """Headers and body of one server list the same categories; the http captures had their long header
    folded after "http:" (the parser drops that white space in URIs)."""
    plain = _categories(f"text-ok-{server}.txt")
    headers = _categories(f"http-ok-{server}.txt")
    assert [c.id for c in plain] == [c.id for c in headers] and len(plain) == count
    assert {type(c) for c in plain} == {Kind, Mixin, Action}
    compute = next(c for c in plain if c.id == COMPUTE)
    assert isinstance(compute, Kind) and compute.parent == CORE + "resource" and compute.location == "/compute/"
    assert COMPUTE_ACTION + "start" in compute.actions
    state = next(a for a in compute.attributes if a.name == "occi.compute.state")
    assert not state.mutable and not state.required
    assert all(c.scheme.startswith("http://") for c in headers)
    assert headers[-1].term == "offline"


def test_capitalized_field_names() -> None:
    reference = _categories("http-test-capitalization1.txt")
    for n in (2, 3, 4):
        assert _categories(f"http-test-capitalization{n}.txt") == reference
    mixed = _categories("text-test-capitalization.txt")
    assert [c.term for c in mixed] == ["entity", "resource", "link", "compute", "storage"]
    entity = next(c for c in mixed if c.term == "entity")
    assert entity.attributes[0] == AttributeDef("occi.core.id", mutable=False, required=True)


def _entity(name: str) -> Entity:
    return text.parse_entity(*fixture_request("resource/" + name))


def test_compute_fixtures() -> None:
    """The same OpenNebula compute as headers (with foreign headers), capitalised, and as a body."""
    headers = _entity("http-ok-opennebula-compute.txt")
    assert _entity("http-ok-ignore-unknown.txt") == headers
    assert _entity("http-test-capitalization1.txt") == headers == _entity("http-test-capitalization2.txt")
    assert headers.kind == COMPUTE and headers.id == "103" and headers.title == "one-103"
    assert headers.attributes["occi.compute.cores"] == 1 and headers.attributes["occi.compute.memory"] == 0.125
    assert "occi.core.id" not in headers.attributes
    disk = headers.links[0]
    assert (disk.kind, disk.target, disk.source) == (INFRA + "storagelink", "/storage/0", "/compute/103")
    assert disk.location == "/link/storagelink/compute_103_disk_0" and disk.target_kind == INFRA + "storage"
    assert disk.attributes["occi.storagelink.deviceid"] == "/dev/hda" and disk.title == "ttylinux"
    body = _entity("text-ok-opennebula-compute.txt")
    assert body.kind == headers.kind and body.id == headers.id and len(body.links) == len(headers.links)
    assert body.actions[0] == (COMPUTE_ACTION + "stop", "/compute/103?action=stop")
    ec2 = _entity("text-ok-ec2-compute.txt")
    assert ec2.id == "i-375ab99b" and len(ec2.mixins) == 3
    assert _entity("http-ok-ec2-compute.txt").mixins == ec2.mixins


def test_attribute_without_value_refused() -> None:
    """pOCCI's bad-attr fixtures use a placeholder category outside the grammar (class "myClass", scheme
    "myScheme"): refused for it as they are, and for the valueless attribute once it is a real category."""
    for name, where in (("text-bad-attr.txt", "line 5"), ("http-bad-attr.txt", "header 'X-OCCI-Attribute'")):
        body, headers = fixture_request("resource/" + name)
        with pytest.raises(RenderingError, match="scheme 'myScheme' is not a URI"):
            text.parse_entity(body, headers)
        real = 'scheme="http://example.com/occi#";class="kind"'
        body = body.replace(b'scheme="myScheme";class="myClass"', real.encode())
        headers = [(k, v.replace('scheme="myScheme";class="myClass"', real)) for k, v in headers]
        headers = [(k, re.sub('rel="/[^"]*"', f'rel="{COMPUTE}"', v)) for k, v in headers]
        body = re.sub(b'rel="/[^"]*"', f'rel="{COMPUTE}"'.encode(), body)
        with pytest.raises(RenderingError) as caught:
            text.parse_entity(body, headers)
        assert where in str(caught.value) and "expected '='" in str(caught.value)


def test_basic_fixtures() -> None:
    """pOCCI's rendering samples: outside the grammar as they are (placeholder class and scheme; rel "/rel"
    is no type identifier); with a real category the resource parses with typed attributes."""
    for path in sorted((POCCI / "basic").glob("*.txt")):
        body, headers = fixture_request("basic/" + path.name)
        with pytest.raises(RenderingError, match="myScheme"):
            text.parse_entity(body, headers)
    body = (POCCI / "basic" / "text-resource.txt").read_bytes()
    body = body.replace(b'scheme="myScheme";class="myClass"', b'scheme="http://example.com/occi#";class="kind"')
    entity = text.parse_entity(body, PLAIN)
    assert entity.id == "1" and entity.title == "Title 1"
    assert entity.attributes == {"pocci.test.enabled": True, "pocci.test.fs": "ext3"}
    with pytest.raises(RenderingError, match="rel '/rel' is not a scheme URI"):
        text.parse_entity(body + b'Link: <http://localhost/r>;rel="/rel"\n', PLAIN)


def test_location_fixtures() -> None:
    expected = [f"https://example.com:11443/compute/{n}" for n in (89, 90, 91, 92, 85)]
    for name in ("http-ok-entities.txt", "http-ok-entities2.txt", "http-test-capitalization1.txt"):
        assert text.parse_locations(*fixture_request("entity-collection/" + name)) == expected
    assert len(text.parse_locations(*fixture_request("entity-collection/text-ok-entities.txt"))) == 20
    listed = text.parse_locations(*fixture_request("entity-collection/uri-ok-entities.txt"))
    assert listed == [f"https://example.com:11443/compute/{n}" for n in range(88, 93)]
    assert uri_list.parse_locations(b"# a comment\r\nurn:uuid:1\r\n\r\n") == ["urn:uuid:1"]


def test_rocci_examples() -> None:
    model = text.parse_categories((ROCCI / "model.txt").read_bytes(), PLAIN)
    assert len(model) == 68
    zone = next(c for c in model if c.term == "uuid_fedcloud_warg_101")
    assert isinstance(zone, Mixin) and zone.applies == (COMPUTE,)
    assert zone.depends == ("http://fedcloud.egi.eu/occi/infrastructure#availability_zone",)
    assert text.parse_mixins((ROCCI / "categories.txt").read_bytes(), PLAIN)[1].term == "os_tpl"
    action = text.parse_action((ROCCI / "action_instance.txt").read_bytes(), PLAIN)
    assert action == ActionInvocation(COMPUTE_ACTION + "suspend", {"method": "suspend"})
    instance = text.parse_entity((ROCCI / "instance.txt").read_bytes(), PLAIN)
    assert [link.kind for link in instance.links] == [INFRA + "storagelink", INFRA + "networkinterface"]
    assert instance.links[1].mixins == [INFRA[:-1] + "/networkinterface#ipnetworkinterface"]


# ---- exact renderings


KIND = Kind(
    scheme=INFRA,
    term="compute",
    title='Compute "VM"',
    attributes=(
        AttributeDef("occi.compute.cores", "integer", mutable=True),
        AttributeDef("occi.compute.state", required=True),
    ),
    parent=CORE + "resource",
    location="http://h/occi/compute/",
    actions=(COMPUTE_ACTION + "start",),
)


def test_query_interface_rendering() -> None:
    rendered = text.render_categories([KIND, Action(COMPUTE_ACTION, "start", "Start")], "text/plain")
    assert rendered.content_type == "text/plain" and rendered.headers == ()
    assert rendered.body.decode().split("\r\n") == [
        'Category: compute;scheme="http://schemas.ogf.org/occi/infrastructure#";class="kind";'
        'title="Compute \\"VM\\"";rel="http://schemas.ogf.org/occi/core#resource";location="http://h/occi/compute/";'
        'attributes="occi.compute.cores occi.compute.state{immutable required}";'
        'actions="http://schemas.ogf.org/occi/infrastructure/compute/action#start"',
        'Category: start;scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#";class="action";title="Start"',
        "",
    ]
    mixin = Mixin(INFRA, "ubuntu", depends=(INFRA + "os_tpl",), applies=(COMPUTE,), location="/os_tpl/ubuntu/")
    line = text.render_categories([mixin], "text/plain").body.decode()
    assert line == f'Category: ubuntu;scheme="{INFRA}";class="mixin";rel="{INFRA}os_tpl";location="/os_tpl/ubuntu/"\r\n'


def test_entity_rendering_and_text_occi_headers() -> None:
    entity = Entity(
        kind=COMPUTE,
        id="c1",
        mixins=[INFRA + "os_tpl"],
        attributes={"occi.compute.cores": 2, "occi.compute.speed": 1e20, "x.on": False, "x.none": None},
        actions=[(COMPUTE_ACTION + "stop", "http://h/occi/compute/c1?action=stop")],
    )
    lines = text.render_entity(entity, "text/plain").body.decode().split("\r\n")
    assert lines == [
        f'Category: compute;scheme="{INFRA}";class="kind"',
        f'Category: os_tpl;scheme="{INFRA}";class="mixin"',
        f'Link: <http://h/occi/compute/c1?action=stop>;rel="{COMPUTE_ACTION}stop"',
        'X-OCCI-Attribute: occi.core.id="c1"',
        "X-OCCI-Attribute: occi.compute.cores=2",
        "X-OCCI-Attribute: occi.compute.speed=100000000000000000000.0",
        "X-OCCI-Attribute: x.on=false",
        "",
    ]
    occi = text.render_entity(entity, "text/occi")
    assert occi.body == b"OK" and occi.content_type == "text/occi"
    assert [name for name, _ in occi.headers] == ["Category", "Link", "X-OCCI-Attribute"]
    assert occi.headers[0][1].count(",") == 1


def test_long_header_lists_are_cut() -> None:
    """A big query interface in text/occi: several headers of the same name, none over 8000 characters."""
    mixins = [Mixin("http://example.com/tpl#", f"image{n}", title="x" * 100) for n in range(400)]
    rendered = text.render_categories(mixins, "text/occi")
    assert len(rendered.headers) > 1 and all(len(v) <= text.HEADER_CHUNK for _, v in rendered.headers)
    assert text.parse_mixins(b"", list(rendered.headers) + OCCI) == mixins


def test_collections_and_uri_list() -> None:
    entities = [
        Entity(COMPUTE, location="http://h/occi/compute/1"),
        Entity(COMPUTE, location="http://h/occi/compute/2"),
    ]
    link = Link(INFRA + "storagelink", location="http://h/occi/storagelink/3")
    plain = text.render_collection(entities, [link], "text/plain").body
    assert plain == b"".join(
        b"X-OCCI-Location: http://h/occi/%s\r\n" % p for p in (b"compute/1", b"compute/2", b"storagelink/3")
    )
    listed = text.render_collection(entities, [link], "text/uri-list")
    assert listed.content_type == "text/uri-list"
    assert listed.body == b"http://h/occi/compute/1\r\nhttp://h/occi/compute/2\r\nhttp://h/occi/storagelink/3\r\n"
    assert text.parse_locations(listed.body, URIS) == text.parse_locations(plain, PLAIN)
    for refused in (lambda: text.render_entity(entities[0], "text/uri-list"), lambda: uri_list.parse_entity(b"", [])):
        with pytest.raises(RenderingError, match="only locations"):
            refused()


def test_request_shapes() -> None:
    """Action invocation, user mixins, category filter; what each refuses."""
    stop = f'Category: stop;scheme="{COMPUTE_ACTION}";class="action"\nX-OCCI-Attribute: method="graceful"\n'
    assert text.parse_action(stop.encode(), PLAIN) == ActionInvocation(COMPUTE_ACTION + "stop", {"method": "graceful"})
    with pytest.raises(RenderingError, match="exactly one Category of class action"):
        text.parse_action(f'Category: compute;scheme="{INFRA}";class="kind"'.encode(), PLAIN)
    tag = 'mine; scheme="http://example.com/tags#"; class="mixin"; location="/tags/mine/"; title="my tag"'
    assert text.parse_mixins(b"", [("category", tag)]) == [
        Mixin("http://example.com/tags#", "mine", "my tag", location="/tags/mine/")
    ]
    with pytest.raises(RenderingError, match="is a kind, not a mixin"):
        text.parse_mixins(f'Category: compute;scheme="{INFRA}";class=kind'.encode(), PLAIN)
    with pytest.raises(RenderingError, match="no Category"):
        text.parse_mixins(b"", OCCI)
    assert text.parse_category_ids(b"", [("Category", f'compute;scheme="{INFRA}";class="kind"')]) == [COMPUTE]
    assert text.parse_category_ids(b"", []) == []
    with pytest.raises(RenderingError, match="line 2: X-OCCI-Location is not part of an entity rendering"):
        text.parse_entity(
            f'Category: compute;scheme="{INFRA}";class="kind"\nX-OCCI-Location: http://h/\n'.encode(), PLAIN
        )
    with pytest.raises(RenderingError, match="exactly one Category of class kind"):
        text.parse_entity(f'Category: os_tpl;scheme="{INFRA}";class="mixin"'.encode(), PLAIN)
    with pytest.raises(RenderingError, match="attribute 'a' given twice"):
        text.parse_entity(
            f'Category: compute;scheme="{INFRA}";class="kind"\nX-OCCI-Attribute: a=1, a=2'.encode(), PLAIN
        )


def test_limits() -> None:
    many = "".join(f'Category: t{n};scheme="http://e/s#";class="mixin"\n' for n in range(1001))
    with pytest.raises(RenderingError, match="more than 1000 categories"):
        text.parse_mixins(many.encode(), PLAIN)
    attrs = ",".join(f"a{n}=1" for n in range(10001))
    with pytest.raises(RenderingError, match="more than 10000 attributes"):
        text.parse_entity(b"", [("X-OCCI-Attribute", attrs), *OCCI])
    with pytest.raises(RenderingError, match="value longer than"):
        text.parse_entity(b'X-OCCI-Attribute: a="' + b"x" * 300_000 + b'"', PLAIN)
    with pytest.raises(RenderingError, match="number longer than"):
        text.parse_entity(b"X-OCCI-Attribute: a=" + b"9" * 5000, PLAIN)


def test_strings_are_escaped() -> None:
    entity = Entity(COMPUTE, title='a "quoted" \\ back\\slash, comma; semi', attributes={"x": "tab\there\nnewline"})
    for media, headers in (("text/plain", PLAIN), ("text/occi", OCCI)):
        rendered = text.render_entity(entity, media)
        back = text.parse_entity(rendered.body, list(rendered.headers) + headers)
        assert back.title == entity.title and back.attributes == {"x": "tab here newline"}


# ---- hypothesis: round trips and random input

_term = st.from_regex(r"[a-z0-9][a-z0-9_.\-]{0,12}", fullmatch=True)
_scheme = st.sampled_from([CORE, INFRA, COMPUTE_ACTION, "urn:x-example:tags#", "https://e.org/a,b#"])
_type_id = st.builds(lambda s, t: s + t, _scheme, _term)
_printable = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF, exclude_characters="\x7f"), max_size=30)
_uri = st.builds(lambda t: f"http://h.example/occi/x/{t}", _term)
_value = st.one_of(
    _printable,
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
)
_attr_name = _term.filter(lambda n: not n.startswith("occi.core"))
_attrs = st.dictionaries(_attr_name, _value, max_size=5)
LINKS = st.builds(
    Link,
    kind=_type_id,
    id=_printable,
    location=_uri,
    source=_uri,
    target=_uri,
    target_kind=_type_id,
    mixins=st.lists(_type_id, max_size=2, unique=True),
    attributes=_attrs,
    title=_printable,
).filter(lambda link: link.kind not in link.mixins)
ENTITIES = st.builds(
    Entity,
    kind=_type_id,
    id=_printable,
    mixins=st.lists(_type_id, max_size=3, unique=True),
    attributes=_attrs,
    actions=st.lists(st.tuples(_type_id, st.builds(lambda t: f"http://h/c/1?action={t}", _term)), max_size=2),
    links=st.lists(LINKS, max_size=3),
    title=_printable,
    summary=_printable,
).filter(lambda e: e.kind not in e.mixins)
_attr_defs = st.lists(
    st.builds(AttributeDef, name=_term, mutable=st.booleans(), required=st.booleans()),
    max_size=4,
    unique_by=lambda a: a.name,
).map(tuple)
_common = {"scheme": _scheme, "term": _term, "title": _printable, "attributes": _attr_defs}
_category = st.one_of(
    st.builds(Action, **_common),
    st.builds(
        Kind,
        **_common,
        parent=st.none() | _type_id,
        location=st.none() | _uri,
        actions=st.lists(_type_id, max_size=3).map(tuple),
    ),
    st.builds(
        Mixin,
        **_common,
        depends=st.lists(_type_id, max_size=1).map(tuple),
        location=st.none() | _uri,
        actions=st.lists(_type_id, max_size=2).map(tuple),
    ),
)
MEDIA = [("text/plain", PLAIN), ("text/occi", OCCI)]
#: no example database (nothing written into the tree) and no explain phase (slow on failures)
PHASES = (Phase.explicit, Phase.generate, Phase.shrink)
FAST = settings(
    max_examples=60, deadline=None, database=None, phases=PHASES, suppress_health_check=[HealthCheck.too_slow]
)
RANDOM = settings(max_examples=150, deadline=None, database=None, phases=PHASES)


@FAST
@given(entity=ENTITIES)
def test_entity_round_trip(entity: Entity) -> None:
    for media, headers in MEDIA:
        rendered = text.render_entity(entity, media)
        assert text.parse_entity(rendered.body, list(rendered.headers) + headers) == entity


@FAST
@given(link=LINKS)
def test_link_round_trip(link: Link) -> None:
    link.location = ""  # a link entity's own location is not in its rendering
    for media, headers in MEDIA:
        rendered = text.render_link(link, media)
        assert text.parse_link(rendered.body, list(rendered.headers) + headers) == link


@FAST
@given(categories=st.lists(_category, max_size=6, unique_by=lambda c: c.id))
def test_categories_round_trip(categories: list) -> None:
    for media, headers in MEDIA:
        rendered = text.render_categories(categories, media)
        assert text.parse_categories(rendered.body, list(rendered.headers) + headers) == categories


@FAST
@given(locations=st.lists(_uri, max_size=5))
def test_locations_round_trip(locations: list[str]) -> None:
    for media, headers in [*MEDIA, ("text/uri-list", URIS)]:
        rendered = text.render_locations(locations, media)
        assert text.parse_locations(rendered.body, list(rendered.headers) + headers) == locations


PARSERS = [
    text.parse_entity,
    text.parse_link,
    text.parse_action,
    text.parse_mixins,
    text.parse_categories,
    text.parse_category_ids,
    text.parse_locations,
]
_field_name = st.sampled_from(["Category", "Link", "X-OCCI-Attribute", "X-OCCI-Location", "Location", "Other"])
_noise = st.text(st.sampled_from(string.printable + '<>"\\;=,{}#é'), max_size=80)


def _only_rendering_errors(body: bytes, headers: list[tuple[str, str]]) -> None:
    for parse in PARSERS:
        with contextlib.suppress(RenderingError):
            parse(body, headers)


@RANDOM
@given(
    body=st.binary(max_size=200) | _noise.map(str.encode), media=st.sampled_from(["text/plain", "text/uri-list", ""])
)
def test_random_bodies_only_rendering_errors(body: bytes, media: str) -> None:
    _only_rendering_errors(body, [("Content-Type", media)] if media else [])


@RANDOM
@given(headers=st.lists(st.tuples(_field_name, _noise), max_size=4))
def test_random_headers_only_rendering_errors(headers: list[tuple[str, str]]) -> None:
    _only_rendering_errors(b"", headers + OCCI)


@RANDOM
@given(entity=ENTITIES, cut=st.integers(min_value=0), junk=_noise)
def test_damaged_renderings_only_rendering_errors(entity: Entity, cut: int, junk: str) -> None:
    """A valid rendering with random text spliced in: parsed or refused with RenderingError, nothing else."""
    body = text.render_entity(entity, "text/plain").body.decode()
    at = cut % (len(body) + 1)
    _only_rendering_errors((body[:at] + junk + body[at:]).encode(), PLAIN)


def test_syntax_error_messages_locate_the_problem() -> None:
    with pytest.raises(RenderingError, match=r"header 'Link', column 1: expected '<'"):
        text.parse_entity(b"", [("Link", "http://x/"), *OCCI])
    with pytest.raises(RenderingError, match="value 'yes' is not a quoted string, a number, true or false"):
        text.parse_entity(f'Category: compute;scheme="{INFRA}";class="kind"\nX-OCCI-Attribute: a=yes'.encode(), PLAIN)
    with pytest.raises(RenderingError, match="body is not UTF-8"):
        text.parse_entity(b"\xff", PLAIN)
    assert text_syntax.split_id(COMPUTE) == (INFRA, "compute")
