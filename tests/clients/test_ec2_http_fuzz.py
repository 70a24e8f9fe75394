"""Property test over HTTP: any correctly signed request gets a well-formed EC2 answer, never a crash.

Hypothesis builds hostile parameter maps — actions from botocore's EC2 model (some lower-cased) and
garbage, wire names walked from the model's input shapes with hostile list indices, XML-hostile and
non-ASCII text, invalid UTF-8 and malformed percent-escapes, huge values, odd numbers — signs them with
botocore's ``SigV4Auth`` and sends them to a real gateway. Every answer must be either a 2xx EC2 success
document (``<ActionResponse>`` in EC2's namespace with a ``requestId``) or a 4xx/503 EC2 error document
(``Response/Errors/Error`` with ``Code`` and ``Message``, then ``RequestID``); any other 5xx is a bug.

Most examples run as the ``reader`` user (writes are refused before they touch anything); a smaller run as
the ``demo`` admin reaches the handlers of mutating actions too, on this module's own gateway and database.
"""

from __future__ import annotations

from urllib.parse import quote

import botocore.session
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape
from clientutil import FORM, NS
from gateway_process import GatewayProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

MODEL = botocore.session.get_session().get_service_model("ec2")
OPERATION_NAMES = tuple(MODEL.operation_names)
RESPONSE_TAGS = {f"{NS}{name}Response" for name in OPERATION_NAMES}
# A cross-section of the model: what this gateway implements, and some it does not.
FOCUS = (
    "RunInstances",
    "DescribeInstances",
    "TerminateInstances",
    "RebootInstances",
    "StopInstances",
    "DescribeImages",
    "DescribeInstanceTypes",
    "CreateKeyPair",
    "ImportKeyPair",
    "DescribeKeyPairs",
    "DeleteKeyPair",
    "DescribeRegions",
    "DescribeAvailabilityZones",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "DescribeSecurityGroups",
    "CreateVolume",
    "AttachVolume",
    "DescribeVolumes",
    "CreateTags",
    "DescribeTags",
    "AllocateAddress",
    "DescribeAddresses",
    "DescribeVpcs",
    "DescribeSubnets",
    "DescribeAccountAttributes",
    "CreateVpnGateway",
)


def _wire_templates(shape: Shape, prefix: str = "", depth: int = 0) -> list[str]:
    """Parameter names the model allows, ``#`` where a list index goes (EC2 lists are ``Name.N``)."""
    if depth > 4:
        return []
    if shape.type_name == "structure":
        out = []
        for name, member in shape.members.items():
            wire = member.serialization.get("queryName") or member.serialization.get("name") or name
            wire = wire[0].upper() + wire[1:]
            out.extend(_wire_templates(member, f"{prefix}{wire}", depth + 1))
        return out
    if shape.type_name == "list":
        return _wire_templates(shape.member, f"{prefix}.#", depth + 1)
    if shape.type_name == "map":
        return [f"{prefix}.#.Key", f"{prefix}.#.Value"]
    return [prefix.lstrip(".")]


TEMPLATES = {
    name: tuple(t for t in _wire_templates(MODEL.operation_model(name).input_shape) if t) or ("DryRun",)
    for name in FOCUS
}

# ---------------------------------------------------------------------------- strategies

HOSTILE_CHARS = st.sampled_from([*"<>&\"'=;+% \t\r\n\x00\x01\x0b\x1f\x7f]", "\u2028", "\ufffe", "é", "€", "😀"])
text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=HOSTILE_CHARS, max_size=20),
    st.sampled_from(
        [
            "]]>",
            "<![CDATA[x]]>",
            "&amp;",
            "",
            "true",
            "FALSE",
            "1",
            "0",
            "-1",
            "-2147483649",
            "99999999999999999999",
            "1e309",
            "NaN",
        ]
    ),
    st.sampled_from(["i-0123456789abcdef0", "vol-", "ami-zzzz", "sg-00000000", "local-1a", "t3.micro", "tag:Name"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "<", "&", "é", "%"]), st.integers(1_000, 150_000)),
)
INVALID_ESCAPES = st.sampled_from(
    ["%FF", "%C3%28", "%E2%82", "%ED%A0%80", "%C0%80", "%F8%88%80%80%80", "%", "%Z1", "%4"]
)


def _rarely(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in `one_in` draws (hypothesis favours small integers, so the rare case is the top one)."""
    return draw(st.integers(0, one_in - 1)) == one_in - 1 and draw(st.booleans())


def wire_token(plain: str, safe: str = "") -> str:
    """A key or value percent-encoded as a form would carry it."""
    return quote(plain, safe=safe)


index = st.one_of(
    st.integers(0, 3).map(str),
    st.sampled_from(["-1", "00", "01", "999999999", "1000000000", "99999999999999999999", "", "x", "1.5", " 1"]),
)


@st.composite
def model_key(draw: st.DrawFn, action: str) -> str:
    template = draw(st.sampled_from(TEMPLATES.get(action, ("Filter.#.Name", "Filter.#.Value.#", "MaxResults"))))
    parts = template.split("#")
    key = parts[0] + "".join(draw(index) + rest for rest in parts[1:])
    if _rarely(draw, 8):  # nested deeper than any EC2 parameter
        key += ".1" * draw(st.integers(1, 60))
    return key.lower() if _rarely(draw, 10) else key


action_names = st.one_of(
    st.sampled_from(FOCUS),
    st.sampled_from(FOCUS),
    st.sampled_from(FOCUS),
    st.sampled_from(FOCUS).map(str.lower),
    st.sampled_from(OPERATION_NAMES),
    st.text(max_size=30),
    st.sampled_from(["", "Describe", "describeinstances ", "DescribeInstances\x00", "A" * 200]),
)


@st.composite
def request_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    """(action drawn, form body bytes) with model keys, garbage keys and hostile values."""
    action = draw(action_names)
    safe = draw(st.sampled_from(["", "-_.~", "/:*"]))
    pairs: list[tuple[str, str]] = []
    if not _rarely(draw, 16):
        pairs.append(("Action", wire_token(action, safe)))
    if draw(st.booleans()):
        pairs.append(("Version", draw(st.sampled_from(["2016-11-15", "2013-10-15", "", "x"]))))
    keys = draw(st.lists(st.one_of(model_key(action), model_key(action), st.text(max_size=20)), max_size=10))
    for key in dict.fromkeys(k for k in keys if k.lower() not in ("action", "version")):
        pairs.append((wire_token(key, safe), wire_token(draw(text), safe)))
    if pairs and _rarely(draw, 16):  # a duplicated parameter
        pairs.append(pairs[-1])
    tokens = [k if _rarely(draw, 20) else f"{k}={v}" for k, v in pairs]
    if tokens and _rarely(draw, 4):  # broken bytes: invalid UTF-8 or a malformed escape
        at = draw(st.integers(0, len(tokens) - 1))
        cut = draw(st.integers(0, len(tokens[at])))
        tokens[at] = tokens[at][:cut] + draw(INVALID_ESCAPES) + tokens[at][cut:]
    return action, "&".join(tokens).encode("ascii")


# ---------------------------------------------------------------------------- sending and checking


def signed_send(
    gateway: GatewayProcess, body: bytes, key: str, secret: str, *, method: str = "POST", content_type: str = FORM
) -> requests.Response:
    """Send ``body`` (POST form) or use it as the query string (GET), signed with botocore's SigV4."""
    url = f"{gateway.url}/"
    if method == "GET":
        request = AWSRequest(method="GET", url=f"{url}?{body.decode('ascii')}")
    else:
        request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": content_type})
    SigV4Auth(Credentials(key, secret), "ec2", "local-1").add_auth(request)
    prepared = request.prepare()
    return requests.request(method, prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=60)


def assert_ec2_answer(response: requests.Response) -> str:
    """Assert the answer is an EC2 success or error document; its root tag or error code."""
    status = response.status_code
    assert status < 500 or status == 503, f"{status}: {response.text[:2000]}"
    assert response.headers.get("Content-Type", "").startswith("text/xml"), response.headers
    root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
    if 200 <= status < 300:
        assert root.tag in RESPONSE_TAGS, root.tag
        assert (root.findtext(f"{NS}requestId") or "").strip(), response.text[:500]
        return root.tag
    assert 400 <= status < 500 or status == 503, status
    assert root.tag == "Response", response.text[:2000]
    assert [child.tag for child in root] == ["Errors", "RequestID"], response.text[:2000]
    errors = root.findall("Errors/Error")
    assert len(errors) == 1
    assert [child.tag for child in errors[0]] == ["Code", "Message"], response.text[:2000]
    code = errors[0].findtext("Code") or ""
    assert code.strip() and code == code.strip()
    assert (root.findtext("RequestID") or "").strip()
    if status == 503:
        assert code == "Unavailable", code
    return code


FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@settings(FUZZ, max_examples=300)
@given(
    case=request_bodies(),
    method=st.sampled_from(["POST", "POST", "POST", "GET"]),
    content_type=st.sampled_from([FORM, FORM, FORM, "application/x-www-form-urlencoded", "text/plain", ""]),
)
def test_reader_gets_an_ec2_answer_for_anything(
    gateway: GatewayProcess, case: tuple[str, bytes], method: str, content_type: str
) -> None:
    _, body = case
    if method == "GET" and len(body) > 2500:
        # A URL, not a body: stay under the server's 8190-byte request line even after requests re-quotes a
        # cut escape (every `%` becomes `%25`); longer lines get gunicorn's own 414, not an EC2 answer.
        body = body[:2500]
    answer = assert_ec2_answer(
        signed_send(gateway, body, "reader", "reader-secret", method=method, content_type=content_type)
    )
    assert answer != "InternalError"


@settings(FUZZ, max_examples=120)
@given(case=request_bodies())
def test_admin_gets_an_ec2_answer_for_anything(gateway: GatewayProcess, case: tuple[str, bytes]) -> None:
    _, body = case
    assert assert_ec2_answer(signed_send(gateway, body, "demo", "demo-secret")) != "InternalError"


@pytest.mark.parametrize("action", ["DescribeRegions", "describeregions", "DESCRIBEREGIONS"])
def test_action_names_match_case_insensitively(gateway: GatewayProcess, action: str) -> None:
    body = f"Action={action}&Version=2016-11-15".encode()
    assert assert_ec2_answer(signed_send(gateway, body, "reader", "reader-secret")) == f"{NS}DescribeRegionsResponse"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"Version=2016-11-15", "MissingAction"),
        (b"Action=NoSuchThing&Version=2016-11-15", "InvalidAction"),
        (b"Action=CreateVpcPeeringConnection&Version=2016-11-15", "UnsupportedOperation"),
        (b"Action=DescribeRegions&RegionName.1=%FF%FE", None),
        (b"Action=DescribeInstances&MaxResults=-1", "InvalidParameterValue"),
        (b"Action=DescribeInstances&MaxResults=99999999999999999999", "InvalidParameterValue"),
        (b"Action=CreateKeyPair", "MissingParameter"),
    ],
)
def test_known_bad_requests_get_ec2_codes(gateway: GatewayProcess, body: bytes, code: str | None) -> None:
    response = signed_send(gateway, body, "demo", "demo-secret")
    answer = assert_ec2_answer(response)
    assert 400 <= response.status_code < 500
    if code is not None:
        assert answer == code


def test_older_tools_may_omit_version(gateway: GatewayProcess) -> None:
    response = signed_send(gateway, b"Action=DescribeRegions", "reader", "reader-secret")
    assert assert_ec2_answer(response) == f"{NS}DescribeRegionsResponse"


def test_body_over_the_limit_is_request_entity_too_large(gateway: GatewayProcess) -> None:
    body = b"Action=DescribeRegions&Junk=" + b"a" * 1_100_000  # over the default 1 MiB max_body_bytes
    response = signed_send(gateway, body, "reader", "reader-secret")
    assert response.status_code == 413
    assert assert_ec2_answer(response) == "RequestEntityTooLarge"


def test_too_many_parameters_is_an_ec2_error(gateway: GatewayProcess) -> None:
    body = ("Action=DescribeInstances&" + "&".join(f"Filter.{i}.Name=tag:k{i}" for i in range(12_000))).encode()
    response = signed_send(gateway, body, "reader", "reader-secret")
    assert response.status_code == 400
    assert assert_ec2_answer(response) == "InvalidParameterValue"


def test_xml_hostile_values_come_back_escaped(gateway: GatewayProcess) -> None:
    """An error message quoting a hostile value must still be well-formed XML."""
    hostile = "<x>&amp;]]>\x00\x1f\"'" + "\ud7ff" + "\U0001f600"
    body = f"Action=DescribeInstances&InstanceId.1={quote(hostile, safe='')}".encode()
    response = signed_send(gateway, body, "reader", "reader-secret")
    assert response.status_code == 400
    assert assert_ec2_answer(response) == "InvalidInstanceID.Malformed"


def test_query_over_the_limit_is_an_ec2_error_not_the_servers_page(gateway: GatewayProcess) -> None:
    """A GET query past max_body_bytes gets EC2's error document, not gunicorn's HTML 414."""
    response = requests.get(f"{gateway.url}/?Action=DescribeRegions&Junk={'a' * 1_100_000}", timeout=60)
    assert response.status_code == 413
    assert assert_ec2_answer(response) == "RequestEntityTooLarge"
