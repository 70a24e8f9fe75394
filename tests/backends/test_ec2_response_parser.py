"""backends.ec2.response_parser reads what botocore's EC2QueryParser reads, value for value.

Three sources of answers: botocore's EC2 protocol test vectors (../shared/conformance), real answers of a
moto_server for operations with rich output, and hand-made documents for the cases where the generated reader
must leave the document to botocore. Each is parsed by botocore's parser and by ours from the same bytes.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import EC2QueryParser
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from peers.moto_server import MotoServer

from backends.ec2 import settings
from backends.ec2.answer_memo import AnswerMemo, answer_key
from backends.ec2.response_parser import EC2ResponseParser, ResponseParserFactory, parse_timestamp, plain_document

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
VECTORS = SHARED / "conformance" / "botocore-protocol-tests" / "tests" / "unit" / "protocols"
OUTPUT_FILES = ("output/ec2.json", "legacy/output/ec2.json")

#: Successful vectors the generated reader leaves to botocore, and why (every other one it reads itself).
LEFT_TO_BOTOCORE: dict[str, str] = {
    "Ec2XmlNamespaces": "namespaces declared below the root",
    "Ec2XmlLists": "namespaces declared below the root",
}


def same(left: Any, right: Any, where: str = "") -> None:
    """Equal values of the same types, dict keys in the same order; floats by repr (NaN == NaN); datetimes
    by instant and UTC offset."""
    assert type(left) is type(right) or (isinstance(left, datetime) and isinstance(right, datetime)), where
    if isinstance(left, dict):
        assert list(left) == list(right), where
        for key in left:
            same(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            same(a, b, f"{where}[{index}]")
    elif isinstance(left, float):
        assert repr(left) == repr(right) or (math.isnan(left) and math.isnan(right)), where
    elif isinstance(left, datetime):
        assert (left, left.utcoffset()) == (right, right.utcoffset()), where
    else:
        assert left == right, where


def botocore_and_ours(operation: OperationModel, body: bytes, status: int = 200, headers: Any = None) -> None:
    """botocore's parse equals ours, with botocore's timestamp parser and with the factory's (fast) one."""
    response = {"body": body, "headers": headers or {}, "status_code": status}
    expected = EC2QueryParser().parse(response, operation.output_shape)
    same(EC2ResponseParser().parse(response, operation.output_shape), expected, operation.name)
    same(ResponseParserFactory().create_parser("ec2").parse(response, operation.output_shape), expected)


def read_fast(operation: OperationModel, body: bytes) -> bool:
    """Whether the generated reader read ``body`` itself (rather than leaving it to botocore)."""
    return EC2ResponseParser().parse_fast(body, operation.output_shape) is not None


# ---------------------------------------------------------------------------------------------------
# botocore's protocol vectors
# ---------------------------------------------------------------------------------------------------


def _cases() -> list[Any]:
    params = []
    for relative in OUTPUT_FILES:
        prefix = "legacy-" if relative.startswith("legacy") else ""
        for suite in json.loads((VECTORS / relative).read_text()):
            for index, case in enumerate(suite["cases"]):
                case_id = case.get("id") or f"{prefix}output-{suite['description']}-{index}"
                params.append(pytest.param(suite, case, case_id, id=case_id))
    return params


CASES = _cases()


def _operation(suite: dict[str, Any], case: dict[str, Any]) -> OperationModel:
    """The model as botocore's tests/unit/test_protocols.py builds it: suite shapes + ``given``."""
    given = case["given"]
    metadata = {"apiVersion": "2014-01-01", **suite["metadata"]}
    model = ServiceModel({"metadata": metadata, "operations": {given["name"]: given}, "shapes": suite["shapes"]})
    return model.operation_model(given["name"])


@pytest.mark.parametrize(("suite", "case", "case_id"), CASES)
def test_vector_reads_as_botocore_reads_it(suite: dict[str, Any], case: dict[str, Any], case_id: str) -> None:
    operation = _operation(suite, case)
    response = case["response"]
    body = response["body"].encode()
    botocore_and_ours(operation, body, response["status_code"], response.get("headers"))
    if "errorCode" not in case:
        assert read_fast(operation, body) == (case_id not in LEFT_TO_BOTOCORE)


def test_vectors_are_all_there() -> None:
    assert len(CASES) == 42  # 29 + 13 at the pinned botocore commit
    assert set(LEFT_TO_BOTOCORE) <= {p.id for p in CASES}


# ---------------------------------------------------------------------------------------------------
# Documents the generated reader must read as botocore does, or leave to it
# ---------------------------------------------------------------------------------------------------

EC2 = botocore.session.get_session().get_service_model("ec2")
DESCRIBE_INSTANCES = EC2.operation_model("DescribeInstances")
NS = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'


def _instances(inner: str, root: str = f"<DescribeInstancesResponse {NS}>", head: str = "") -> bytes:
    return (
        f"{head}{root}<requestId>r-1</requestId><reservationSet><item><reservationId>r-9</reservationId>"
        f"<instancesSet><item>{inner}</item></instancesSet></item></reservationSet></DescribeInstancesResponse>"
    ).encode()


#: (document, read by the generated reader itself?)
DOCUMENTS: dict[str, tuple[bytes, bool]] = {
    "scalars": (
        _instances(
            "<instanceId>i-1</instanceId><amiLaunchIndex>3</amiLaunchIndex><ebsOptimized>true</ebsOptimized>"
            "<launchTime>2026-12-02T13:52:50.000Z</launchTime><enaSupport>maybe</enaSupport>"
            "<kernelId></kernelId><ramdiskId/><unknownThing>x</unknownThing><instanceState><code>16</code>"
            "<name>running</name></instanceState><tagSet/><productCodes><item/></productCodes>"
        ),
        True,
    ),
    "declaration, text escapes, CDATA, comments, whitespace": (
        _instances(
            "<instanceId> i-&amp;&lt;&#x41;<![CDATA[<z>]]> </instanceId><!-- note -->"
            "<keyName>\n k<!-- c --><?pi x?>\r\n</keyName>",
            head='<?xml version="1.0" encoding="UTF-8"?>\n',
        ),
        True,
    ),
    "no namespace at all": (_instances("<instanceId>i-1</instanceId>", root="<DescribeInstancesResponse>"), True),
    "a repeated member tag": (_instances("<ebsOptimized>true</ebsOptimized><ebsOptimized>true</ebsOptimized>"), False),
    "a repeated list element": (
        _instances("<groupSet><item><groupId>a</groupId></item></groupSet><groupSet><groupId>b</groupId></groupSet>"),
        False,
    ),
    "a repeated unknown tag": (_instances("<instanceId>i-1</instanceId><x>1</x><x>2</x>"), True),
    "a namespace below the root": (_instances('<instanceId xmlns="urn:other">i-1</instanceId>'), False),
    "the xml: prefix": (_instances("<xml:instanceId>i-1</xml:instanceId>"), False),
    "a DOCTYPE": (_instances("<instanceId>i-1</instanceId>", head="<!DOCTYPE r>"), False),
    "another encoding": (
        _instances("<instanceId>i-\xe9</instanceId>", head='<?xml version="1.0" encoding="ISO-8859-1"?>'),
        False,
    ),
    "a bad timestamp": (_instances("<launchTime>yesterday</launchTime>"), False),
    "an hour 24": (_instances("<launchTime>2026-12-02T24:00:00Z</launchTime>"), False),
    "a timestamp in another form": (_instances("<launchTime>Wed, 02 Dec 2026 13:52:50 GMT</launchTime>"), True),
    "a bad integer": (_instances("<amiLaunchIndex>three</amiLaunchIndex>"), False),
    "no requestId": (b"<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>", True),
    "two requestIds": (
        b"<DescribeInstancesResponse><requestId>a</requestId><requestId>b</requestId></DescribeInstancesResponse>",
        False,
    ),
}


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_document_reads_as_botocore_reads_it(name: str) -> None:
    body, fast = DOCUMENTS[name]
    response = {"body": body, "headers": {}, "status_code": 200}
    try:
        expected = EC2QueryParser().parse(response, DESCRIBE_INSTANCES.output_shape)
    except Exception as error:  # botocore refuses it: so do we, with the same exception
        with pytest.raises(type(error)):
            EC2ResponseParser().parse(response, DESCRIBE_INSTANCES.output_shape)
    else:
        botocore_and_ours(DESCRIBE_INSTANCES, body)
        assert ("RequestId" in expected["ResponseMetadata"]) == (b"<requestId>" in body)
    assert read_fast(DESCRIBE_INSTANCES, body) == fast


def test_a_bad_document_is_botocores_error() -> None:
    for body in (b"<DescribeInstancesResponse><requestId>", b"not xml", b""):
        response = {"body": body, "headers": {}, "status_code": 200}
        with pytest.raises(Exception) as expected:
            EC2QueryParser().parse(response, DESCRIBE_INSTANCES.output_shape)
        with pytest.raises(expected.type):
            EC2ResponseParser().parse(response, DESCRIBE_INSTANCES.output_shape)


def _model(shapes: dict[str, Any]) -> OperationModel:
    metadata = {"apiVersion": "2014-01-01", "protocol": "ec2", "endpointPrefix": "ec2"}
    operation = {"name": "Op", "http": {"method": "POST", "requestUri": "/"}, "output": {"shape": "Out"}}
    return ServiceModel({"metadata": metadata, "operations": {"Op": operation}, "shapes": shapes}).operation_model("Op")


STRING = {"type": "string"}
#: Models the vectors lack: (shapes, document, read by the generated reader itself?)
MODELS: dict[str, tuple[dict[str, Any], bytes, bool]] = {
    "recursive structure": (
        {
            "Out": {"type": "structure", "members": {"Node": {"shape": "Node", "locationName": "node"}}},
            "Node": {"type": "structure", "members": {"Name": {"shape": "S"}, "Next": {"shape": "Node"}}},
            "S": STRING,
        },
        b"<OpResponse><node><Name>a</Name><Next><Name>b</Name><Next><Name/></Next></Next></node></OpResponse>",
        True,
    ),
    "lists of lists and maps in lists": (
        {
            "Out": {"type": "structure", "members": {"L": {"shape": "LL"}, "M": {"shape": "LM"}}},
            "LL": {"type": "list", "member": {"shape": "L"}},
            "L": {"type": "list", "member": {"shape": "N"}},
            "LM": {"type": "list", "member": {"shape": "M"}},
            "M": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "B"}},
            "N": {"type": "long"},
            "B": {"type": "blob"},
            "S": STRING,
        },
        b"<OpResponse><L><m><m>1</m><m>2</m></m><m/></L>"
        b"<M><m><entry><key>k</key><value>aGk=</value></entry><entry><key>j</key><value/></entry></m></M>"
        b"</OpResponse>",
        True,
    ),
    "a map entry without its key": (
        {
            "Out": {"type": "structure", "members": {"M": {"shape": "M"}}},
            "M": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
            "S": STRING,
        },
        b"<OpResponse><M><entry><key>k</key><value>1</value></entry><entry><value>2</value></entry></M></OpResponse>",
        True,
    ),
    "an attribute member": (
        {
            "Out": {"type": "structure", "members": {"A": {"shape": "S", "xmlAttribute": True, "locationName": "a"}}},
            "S": STRING,
        },
        b'<OpResponse a="1"/>',
        False,
    ),
    "a union": (
        {
            "Out": {"type": "structure", "members": {"U": {"shape": "U"}}},
            "U": {"type": "structure", "union": True, "members": {"A": {"shape": "S"}, "B": {"shape": "S"}}},
            "S": STRING,
        },
        b"<OpResponse><U><A>1</A></U></OpResponse>",
        False,
    ),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_model_reads_as_botocore_reads_it(name: str) -> None:
    shapes, body, fast = MODELS[name]
    operation = _model(shapes)
    botocore_and_ours(operation, body)
    assert read_fast(operation, body) == fast


def test_plain_document_drops_only_the_roots_namespace() -> None:
    body = b'<?xml version="1.0" encoding="UTF-8"?>\n<R xmlns="urn:x"><a>1</a></R>'
    assert plain_document(body) == b'<?xml version="1.0" encoding="UTF-8"?>\n<R><a>1</a></R>'
    assert plain_document(b'<R xmlns="urn:x" id="1"/>') is None
    assert plain_document(b"\xef\xbb\xbf<R/>") is None


# ---------------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------------

TIMESTAMPS = [
    "2026-12-02T13:52:50.000Z",
    "2026-12-02T13:52:50Z",
    "2026-12-02T13:52:50.5Z",
    "2026-12-02T13:52:50.123456Z",
    "2026-12-02T13:52:50.1234567Z",
    "2026-12-02T13:52:50+02:00",
    "2026-12-02T13:52:50.250-05:30",
    "2026-12-02T13:52:50+00:00",
    "2026-12-02T13:52:50-00:00",
    "2024-02-29T00:00:00Z",
    "2026-12-02T24:00:00Z",
    "2026-12-02T13:52:50",
    "2026-12-02",
    "20261202T135250Z",
    "Wed, 02 Dec 2026 13:52:50 GMT",
    "1764683570",
    "1764683570.25",
    1764683570,
    "2026-02-30T00:00:00Z",
    "2026-12-02T13:52:50.000+23:59",
    "garbage",
    "",
]


@pytest.mark.parametrize("value", TIMESTAMPS, ids=[repr(v) for v in TIMESTAMPS])
def test_timestamp_as_botocore_reads_it(value: Any) -> None:
    try:
        expected = botocore_parse_timestamp(value)
    except Exception as error:
        with pytest.raises(type(error)):
            parse_timestamp(value)
    else:
        for _ in range(2):  # the second read may come from the memo of texts already read
            got = parse_timestamp(value)
            assert (got, got.utcoffset(), got.tzinfo is None) == (
                expected,
                expected.utcoffset(),
                expected.tzinfo is None,
            )


# ---------------------------------------------------------------------------------------------------
# Real answers of moto_server
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def answers(moto: MotoServer) -> list[tuple[OperationModel, int, dict[str, str], bytes]]:
    """Every answer of a run of calls with rich output, as the wire carried it."""
    ec2 = moto.client()
    seen: list[tuple[OperationModel, int, dict[str, str], bytes]] = []

    def keep(http_response: Any, model: OperationModel, **_: Any) -> None:
        seen.append((model, http_response.status_code, dict(http_response.headers), http_response.content))

    ec2.meta.events.register("after-call.ec2", keep)
    image = moto.register_image(ec2, "parser-image")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": group}]},
        ],
    )
    ec2.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=3,
        MaxCount=3,
        SubnetId=subnet,
        SecurityGroupIds=[group],
        BlockDeviceMappings=[{"DeviceName": "/dev/sdb", "Ebs": {"VolumeSize": 5, "VolumeType": "gp3"}}],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "a & <b>"}]}],
    )
    ec2.run_instances(ImageId=image, InstanceType="t3.small", MinCount=1, MaxCount=1)
    volume = ec2.create_volume(AvailabilityZone="us-east-1a", Size=3, TagSpecifications=[])["VolumeId"]
    ec2.create_tags(Resources=[volume], Tags=[{"Key": "tier", "Value": "ssd"}, {"Key": "empty", "Value": ""}])
    ec2.describe_instances()
    ec2.describe_volumes()
    ec2.describe_security_groups()
    ec2.describe_images(Owners=["self"])
    ec2.describe_subnets()
    ec2.describe_vpcs()
    ec2.describe_instance_types(InstanceTypes=["t3.micro", "m5.large", "c5.xlarge"])
    ec2.describe_tags()
    ec2.describe_availability_zones()
    ec2.describe_key_pairs()
    with pytest.raises(botocore.exceptions.ClientError):
        ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"])
    return seen


def test_moto_answers_read_as_botocore_reads_them(
    answers: list[tuple[OperationModel, int, dict[str, str], bytes]],
) -> None:
    names = {model.name for model, *_ in answers}
    assert {"RunInstances", "DescribeInstances", "DescribeVolumes", "DescribeSecurityGroups"} <= names
    assert {"DescribeImages", "DescribeSubnets", "DescribeVpcs", "DescribeInstanceTypes", "DescribeTags"} <= names
    assert any(status >= 400 for _, status, _, _ in answers)
    for model, status, headers, body in answers:
        botocore_and_ours(model, body, status, headers)
        if status < 300:
            assert read_fast(model, body), model.name


def test_the_backends_clients_use_the_fast_parser(moto: MotoServer, answers: Any) -> None:
    """Clients made by the EC2 backend read with our factory, and read what a stock client reads."""
    session = botocore.session.get_session()
    settings.use_session(session)
    assert isinstance(session.get_component("response_parser_factory"), ResponseParserFactory)
    options = {"endpoint_url": moto.url, "aws_region": "us-east-1", "access_key_id": "AKIAMOTOTESTING00001"}
    client = settings.make_client(
        settings.parse_settings(options | {"secret_access_key": "moto-secret"}, "us-east-1", ("us-east-1a",))
    )
    ours = client.describe_instances()
    stock = moto.client().describe_instances()
    ours.pop("ResponseMetadata")
    stock.pop("ResponseMetadata")
    same(ours, stock)
    assert sum(len(r["Instances"]) for r in ours["Reservations"]) == 4


class _Recorder(BaseHTTPRequestHandler):
    """Answers every EC2 call with an empty TerminateInstances response and keeps the User-Agent it came with."""

    protocol_version = "HTTP/1.1"
    agents: list[str] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.agents.append(self.headers["User-Agent"])
        body = b"<TerminateInstancesResponse><requestId>r</requestId><instancesSet/></TerminateInstancesResponse>"
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_backends_clients_send_one_user_agent_naming_the_gateway() -> None:
    """The User-Agent is built once per client (settings.KeptUserAgent) and still says botocore and cloudgate."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        options = {"endpoint_url": f"http://127.0.0.1:{server.server_port}", "access_key_id": "AKIAUSERAGENT0000001"}
        client = settings.make_client(
            settings.parse_settings(options | {"secret_access_key": "secret"}, "us-east-1", ("us-east-1a",))
        )
        for _ in range(3):
            client.terminate_instances(InstanceIds=["i-0123456789abcdef0"])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert len(_Recorder.agents) == 3
    assert len(set(_Recorder.agents)) == 1
    assert _Recorder.agents[0].startswith("Botocore/")
    assert _Recorder.agents[0].endswith(" cloudgate")


# ---------------------------------------------------------------------------------------------------
# Describe answers read once per content (backends/ec2/answer_memo.py)
# ---------------------------------------------------------------------------------------------------

#: document -> (the key: the document without its root's requestId child, that id's text), or None
ANSWER_KEYS: dict[bytes, tuple[bytes, str | None] | None] = {
    b"<R><requestId>a</requestId><x>1</x></R>": (b"<R><x>1</x></R>", "a"),
    b'<?xml version="1.0"?>\n<R>\n <requestId>a</requestId>\n <x/></R>\n': (
        b'<?xml version="1.0"?>\n<R><x/></R>\n',
        "a",
    ),
    b"<R><x>1</x><requestId>b</requestId></R>": (b"<R><x>1</x></R>", "b"),
    b"<R><x>1</x>\n<requestId>b</requestId>\n</R>\n": (b"<R><x>1</x>\n</R>\n", "b"),
    b"<R><requestId></requestId><x/></R>": (b"<R><x/></R>", None),
    b"<R><x>1</x><requestId>b</requestId><y/></R>": None,  # not the first or last child
    b"<R><x><requestId>b</requestId></x></R>": None,  # nested
    b"<R><requestId>a&amp;b</requestId><x/></R>": None,  # an entity: lxml's text is not the bytes
    b"<R/>": None,
    b"<R><x/></R>": None,
}


@pytest.mark.parametrize("document", list(ANSWER_KEYS), ids=[d.decode() for d in ANSWER_KEYS])
def test_answer_key(document: bytes) -> None:
    assert answer_key(document) == ANSWER_KEYS[document]


def _describe_instances_body(answers: list[tuple[OperationModel, int, dict[str, str], bytes]]) -> bytes:
    (body,) = {b for model, status, _, b in answers if model.name == "DescribeInstances" and status == 200}
    return body


def test_an_answer_read_again_is_botocores_with_its_own_request_id(
    answers: list[tuple[OperationModel, int, dict[str, str], bytes]],
) -> None:
    """moto's answer with request ids first (as EC2 sends them) and last (as moto does): every read is
    botocore's own, and one equal but for its request id is not read again."""
    body = _describe_instances_body(answers)
    assert body.count(b"<requestId>") == 1
    body = re.sub(rb"<requestId>[^<]*</requestId>", b"", body)
    root_end = body.rindex(b"</DescribeInstancesResponse>")
    root_start = body.index(b">", body.index(b"<DescribeInstancesResponse")) + 1
    first = [body[:root_start] + f"<requestId>first-{n}</requestId>".encode() + body[root_start:] for n in range(2)]
    last = [body[:root_end] + f"<requestId>last-{n}</requestId>".encode() + body[root_end:] for n in range(2)]
    for same_but_the_id in (first, last):
        parser = ResponseParserFactory().create_parser("ec2")
        read = [parser.parse_fast(b, DESCRIBE_INSTANCES.output_shape) for b in same_but_the_id]
        for b in same_but_the_id:
            botocore_and_ours(DESCRIBE_INSTANCES, b)
        assert read[0] is not None and read[1] is not None
        assert read[1]["Reservations"] is read[0]["Reservations"]  # the second was not read again
        assert read[1] is not read[0]
        prefix = "first" if same_but_the_id is first else "last"
        assert [r["ResponseMetadata"]["RequestId"] for r in read] == [f"{prefix}-0", f"{prefix}-1"]
    # what changes in an answer is read: one instance stopped
    changed = last[0].replace(b"<name>running</name>", b"<name>stopped</name>", 1)
    assert changed != last[0]
    botocore_and_ours(DESCRIBE_INSTANCES, changed)
    states = [
        i["State"]["Name"]
        for r in ResponseParserFactory()
        .create_parser("ec2")
        .parse_fast(changed, DESCRIBE_INSTANCES.output_shape)["Reservations"]
        for i in r["Instances"]
    ]
    assert states.count("stopped") == 1


def test_an_answer_whose_request_id_is_not_the_roots_first_or_last_child_is_read_each_time() -> None:
    body = _instances("<instanceId>i-1</instanceId>").replace(b"<requestId>r-1</requestId>", b"")
    body = body.replace(b"<reservationSet>", b"<nextToken>t</nextToken><requestId>m</requestId><reservationSet>")
    parser = ResponseParserFactory().create_parser("ec2")
    read = [parser.parse_fast(body, DESCRIBE_INSTANCES.output_shape) for _ in range(2)]
    botocore_and_ours(DESCRIBE_INSTANCES, body)
    assert read[0] == read[1]
    assert read[0] is not None and read[1] is not None
    assert read[1]["Reservations"] is not read[0]["Reservations"]


def test_the_memo_forgets_the_least_recently_used_answer_first() -> None:
    memo = AnswerMemo(limit_bytes=400)
    shape = object()
    for n in range(4):
        memo.put(shape, bytes([n]) * 100, {"N": n, "ResponseMetadata": {"RequestId": "x"}})
    assert memo.get(shape, bytes([0]) * 100, "y") == {"N": 0, "ResponseMetadata": {"RequestId": "y"}}
    memo.put(shape, bytes([4]) * 100, {"N": 4})  # past 400 bytes: 1, the least recently used, goes
    assert memo.get(shape, bytes([1]) * 100, "y") is None
    assert [memo.get(shape, bytes([n]) * 100, None) is not None for n in (0, 2, 3, 4)] == [True] * 4
    assert memo.get(object(), bytes([0]) * 100, None) is None  # another shape's answers are its own
    memo.put(shape, b"z" * 101, {"N": 5})  # more than a quarter of the room: not kept
    assert memo.get(shape, b"z" * 101, None) is None
    assert len(memo) == 4
