"""The CIMI `$filter` parser and evaluator: tables of valid and invalid expressions, and hypothesis tests that
nothing but FilterError ever escapes and that canonical text round-trips."""

from datetime import UTC
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from frontends.cimi.filter import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Comparison,
    Filter,
    FilterError,
    Literal,
    Or,
    PropertyComparison,
    combine,
    equalities,
    parse_filter,
)

DOC = {
    "resourceURI": "http://schemas.dmtf.org/cimi/2/Machine",
    "id": "http://localhost/cimi/machines/1",
    "name": "web-1",
    "description": 'it\'s the "front" one',
    "state": "STARTED",
    "cpu": 2,
    "memory": "4096",
    "ratio": 0.75,
    "created": "2012-06-01T10:00:00Z",
    "updated": "2012-06-02T08:30:00.5+02:00",
    "enabled": True,
    "flag": "false",
    "machineConfig": {"href": "http://localhost/cimi/machineConfigs/small"},
    "properties": {"env": "prod", "tier": "web"},
    "disks": [{"capacity": 1000}, {"capacity": 5000}],
    "nested": {"deep": {"value": 7}},
}

# (expression, does it match DOC)
VALID = [
    ("state='STARTED'", True),
    ('state="STARTED"', True),
    ("state='STOPPED'", False),
    ("state!='STOPPED'", True),
    ("'STARTED'=state", True),
    ("name<'x'", True),
    ("name>'x'", False),
    ("name>='web-1'", True),
    ("cpu=2", True),
    ("cpu>1", True),
    ("cpu>=2 and cpu<=2", True),
    ("cpu<2", False),
    ("1<cpu", True),
    ("3<cpu", False),
    ("cpu=2.0", True),
    ("cpu>-1", True),
    ("cpu='2'", True),  # a string literal compares with the number's text
    ("memory>1000", True),  # a document string that reads as a number compares as one
    ("memory<10000", True),  # ... numerically, not lexically
    ("memory='4096'", True),
    ("ratio<1", True),
    ("ratio=0.75", True),
    ("enabled=true", True),
    ("enabled=TRUE", True),
    ("enabled!=false", True),
    ("flag=false", True),
    ("true=enabled", True),
    ("created=2012-06-01T10:00:00Z", True),
    ("created=2012-06-01T12:00:00+02:00", True),  # the same instant
    ("created>2012-06-01", True),  # date alone: midnight UTC
    ("created<2012-06-02", True),
    ("created<2012-06-01T10:00:00Z", False),
    ("created<=2012-06-01T10:00Z", True),
    ("updated>2012-06-02T06:30:00Z", True),
    ("updated<2012-06-02T06:30:00.6Z", True),
    ("2012-01-01<created", True),
    ("machineConfig='http://localhost/cimi/machineConfigs/small'", True),  # a reference compares by href
    ("machineConfig.href='http://localhost/cimi/machineConfigs/small'", True),
    ("disks.capacity>4000", True),  # any element of a list
    ("disks.capacity>9000", False),
    ("disks.capacity!=1000", False),  # != negates =
    ("nested.deep.value=7", True),
    ("property['env']='prod'", True),
    ('property["env"]="prod"', True),
    ("property [ 'env' ] = 'prod'", True),
    ("PROPERTY['tier']!='db'", True),
    ("property['env']='dev'", False),
    ("property['missing']!='x'", True),
    ("property['missing']='x'", False),
    ("'prod'=property['env']", True),
    ("absent='x'", False),  # absent: only != holds
    ("absent!='x'", True),
    ("absent<5", False),
    ("absent>=2012-01-01", False),
    ("name=5", False),  # incomparable: = false, != true
    ("name!=5", True),
    ("name>5", False),
    ("enabled=2012-01-01", False),
    ("description='it\\'s the \"front\" one'", True),
    ('description="it\'s the \\"front\\" one"', True),
    ("state='STARTED' and cpu=2", True),
    ("state='STARTED' AND cpu=3", False),
    ("state='STOPPED' or cpu=2", True),
    ("state='STOPPED' OR cpu=3", False),
    ("state='STOPPED' and cpu=3 or name='web-1'", True),  # and binds tighter
    ("state='STOPPED' and (cpu=3 or name='web-1')", False),
    ("name='web-1' or cpu=3 and state='STOPPED'", True),
    ("(name='web-1' or cpu=3) and state='STOPPED'", False),
    ("((((state='STARTED'))))", True),
    ("  state = 'STARTED'  ", True),
    ("state='STARTED'and cpu=2", True),
    ("andrew='x' or order!=1", True),  # names that begin with keywords
]

# (expression, 0-based position the error names, words the message must contain)
INVALID = [
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("state", 5, "end of filter"),
    ("state=", 6, "end of filter"),
    ("=1", 0, "'='"),
    ("state=='x'", 6, "'='"),
    ("state='x", 6, "unterminated string"),
    ('state="x', 6, "unterminated string"),
    ("state='x' and", 13, "end of filter"),
    ("state='x' cpu=1", 10, "'cpu'"),
    ("state='x' && cpu=1", 10, "'&'"),
    ("(state='x'", 10, "')'"),
    ("state='x')", 9, "')'"),
    ("()", 1, "')'"),
    ("enabled<true", 7, "booleans"),
    ("false>=enabled", 5, "booleans"),
    ("created>2012-13-01", 8, "invalid date-time"),
    ("created>2012-02-30T10:00:00Z", 8, "invalid date-time"),
    ("created>2012-01-01T25:00:00Z", 8, "invalid date-time"),
    ("created>2012-01-01T10", 18, "'T10'"),
    ("property['env']=5", 16, "'5'"),
    ("property['env']=prod", 16, "'prod'"),
    ("property[env]='prod'", 9, "'env'"),
    ("property['env'='prod'", 14, "'='"),
    ("5=6", 2, "'6'"),
    ("a=b", 2, "'b'"),
    ("'a'='b'", 4, "'b'"),
    ("and=1", 0, "'and'"),
    ("true=false", 5, "'false'"),
    ("name~'x'", 4, "'~'"),
    ("1name='x'", 1, "'name'"),
    ("name='x' or", 11, "end of filter"),
    ("name='x' or or name='y'", 12, "'or'"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_expression_evaluates(text: str, expected: bool) -> None:
    parsed = parse_filter(text)
    assert parsed.matches(DOC) is expected
    assert parse_filter(str(parsed)) == parsed


@pytest.mark.parametrize(("text", "position", "words"), INVALID)
def test_invalid_expression_says_where(text: str, position: int, words: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert words in caught.value.message
    if text.strip():
        assert f"column {position + 1}" in caught.value.message


def test_value_first_comparisons_are_stored_flipped() -> None:
    assert parse_filter("5<cpu") == parse_filter("cpu>5")
    assert parse_filter("'x'>=name") == parse_filter("name<='x'")
    assert parse_filter("'v'=property['k']") == PropertyComparison("k", "=", "v")


def test_canonical_text() -> None:
    cases = {
        "a=1 AND b='x' OR c=true": "a=1 and b='x' or c=true",
        "(a=1 or b=2) and c=3": "(a=1 or b=2) and c=3",
        "a=1 and (b=2 and c=3)": "a=1 and b=2 and c=3",
        "created>2012-06-01T12:00:00+02:00": "created>2012-06-01T10:00:00Z",
        "created>2012-06-01": "created>2012-06-01T00:00:00Z",
        'name="it\'s"': "name='it\\'s'",
        "x=-0.50": "x=-0.50",
        "property[\"k\"] != 'v'": "property['k']!='v'",
    }
    for text, canonical in cases.items():
        assert str(parse_filter(text)) == canonical


def test_attributes_lists_the_names_read() -> None:
    parsed = parse_filter("state='x' and (cpu>1 or machineConfig.href='h') and property['k']='v'")
    assert parsed.attributes() == {"state", "cpu", "machineConfig.href", "properties"}


def test_combine_ands_filters() -> None:
    one, two = parse_filter("a=1 or b=2"), parse_filter("c=3 and d=4")
    both = combine([one, None, two])
    assert both == And((one, *two.terms))
    assert str(both) == "(a=1 or b=2) and c=3 and d=4"
    assert combine([]) is None
    assert combine([None]) is None
    assert combine([one]) is one


def test_equalities_gives_what_can_be_pushed_down() -> None:
    parsed = parse_filter(
        "state='STARTED' and cpu>1 and (name='a' or name='b') and (name='b' or name='c') "
        "and (id='x' or cpu=2) and zone=5"
    )
    assert equalities(parsed, {"state", "name", "id", "zone"}) == {
        "state": frozenset({"STARTED"}),
        "name": frozenset({"b"}),
    }
    assert equalities(parse_filter("state='A' or state='B'"), {"state"}) == {"state": frozenset({"A", "B"})}
    assert equalities(parse_filter("state='A' or name='B'"), {"state", "name"}) == {}
    assert equalities(parse_filter("state!='A'"), {"state"}) == {}
    assert equalities(parse_filter("state='A'"), {"name"}) == {}
    assert equalities(None, {"state"}) == {}


def test_limits_give_filter_errors_not_recursion_errors() -> None:
    deep = "a=1 and (b=1 or " * (MAX_DEPTH + 5) + "c=1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(FilterError, match="nests deeper"):
        parse_filter(deep)
    shallow = "a=1 and (b=1 or " * 20 + "c=1" + ")" * 20
    assert parse_filter(shallow).matches({"a": 1, "c": 1})
    parens = "(" * 2000 + "a=1" + ")" * 2000  # parentheses alone do not nest the AST
    assert parse_filter(parens) == parse_filter("a=1")
    with pytest.raises(FilterError, match="longer than"):
        parse_filter("a=1 or " * (MAX_LENGTH // 7) + "a=1")
    flat = " or ".join(f"a={i}" for i in range(300))  # long but flat
    assert len(parse_filter(flat).terms) == 300


# --- hypothesis ---------------------------------------------------------------------------------------------

TOKENS = [
    "(", ")", "and", "AND", "or", "Or", "=", "!=", "<", "<=", ">", ">=", "==", "property[", "property", "[", "]",
    "'x'", '"y"', "'it\\'s'", "'", '"', "\\", "1", "-2.5", "+3", "1.", ".5", "2012-01-01", "2012-01-01T10:00:00Z",
    "2012-01-01T10:00:00.123+02:00", "2012-99-99", "true", "false", "name", "a.b", "a..b", ".", "state", "&", "~",
    "\u00e9t\u00e9", "\x00", "\n",
]  # fmt: skip


def _checked(text: str) -> None:
    """Parse: a FilterError is fine, anything else escaping is a bug; a success renders and reparses equal."""
    try:
        parsed = parse_filter(text)
    except FilterError as e:
        assert e.position is None or 0 <= e.position <= len(text)
        return
    assert isinstance(parsed, Filter)
    assert parse_filter(str(parsed)) == parsed
    parsed.matches(DOC)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120))
def test_random_text_raises_only_filter_error(text: str) -> None:
    _checked(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(["", " "])), max_size=14))
def test_random_token_sequences_raise_only_filter_error(tokens: list[tuple[str, str]]) -> None:
    _checked("".join(token + space for token, space in tokens))


KEYWORDS = {"and", "or", "true", "false"}
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}(\.[A-Za-z_][A-Za-z0-9_]{0,4}){0,2}", fullmatch=True).filter(
    lambda name: name.split(".")[0].lower() not in KEYWORDS
)
operators = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
literals = st.one_of(
    st.text(max_size=12).map(lambda s: Literal("string", s)),
    st.decimals(min_value=-(10**9), max_value=10**9, places=3).map(lambda d: Literal("number", d)),
    st.integers(-(10**12), 10**12).map(lambda i: Literal("number", Decimal(i))),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: Literal("datetime", d)),
)
comparisons = st.one_of(
    st.builds(Comparison, names, operators, literals),
    st.builds(Comparison, names, st.sampled_from(["=", "!="]), st.booleans().map(lambda b: Literal("boolean", b))),
    st.builds(PropertyComparison, st.text(max_size=8), operators, st.text(max_size=8)),
)


def _grouped(kind: type[And] | type[Or], terms: list[Filter]) -> Filter:
    """A canonical group: nested groups of the same kind are flattened, as the parser does."""
    flat: list[Filter] = []
    for term in terms:
        flat.extend(term.terms if isinstance(term, kind) else (term,))
    return kind(tuple(flat))


filters = st.recursive(
    comparisons,
    lambda inner: st.builds(_grouped, st.sampled_from([And, Or]), st.lists(inner, min_size=2, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(filters)
def test_generated_filter_round_trips(generated: Filter) -> None:
    text = str(generated)
    assert parse_filter(text) == generated
    assert str(parse_filter(text)) == text
    assert generated.matches(DOC) == parse_filter(text).matches(DOC)
