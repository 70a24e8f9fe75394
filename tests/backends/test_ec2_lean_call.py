"""The EC2 backend's lean calls (backends/ec2/lean_call.py) send what its botocore client sends and answer or
raise what it answers or raises.

A recording EC2 peer on loopback keeps each request and answers from a table, so the two requests of one call
(through the client, then lean) are compared field by field; moto and the stacked gateway (whose EC2 frontend
checks every signature) run the lean calls in the rest of the suite. One difference is expected: the client adds
its retry bookkeeping headers (``amz-sdk-invocation-id``, ``amz-sdk-request``), which is also how a test tells
which way a call went.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import redis
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from backends.ec2 import EC2Backend
from backends.ec2.lean_call import LEAN, LeanCaller
from backends.ec2.settings import credentials_of, make_client, parse_settings
from translator.backend import AccountConfig, BackendServices
from translator.errors import TransientBackendError
from translator.model import MachineAction

NS = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
INSTANCE = (
    "<item><instanceId>i-0123456789abcdef0</instanceId><imageId>ami-12345678</imageId>"
    "<instanceState><code>16</code><name>running</name></instanceState><instanceType>t3.micro</instanceType>"
    "<launchTime>2026-12-01T10:00:00.000Z</launchTime><placement><availabilityZone>us-east-1a</availabilityZone>"
    "</placement><tagSet><item><key>Name</key><value>web</value></item></tagSet></item>"
)
ANSWERS: dict[str, tuple[int, str]] = {
    "DescribeInstances": (
        200,
        f"<DescribeInstancesResponse {NS}><requestId>req-1</requestId><reservationSet><item>"
        f"<reservationId>r-1</reservationId><ownerId>123456789012</ownerId><groupSet/>"
        f"<instancesSet>{INSTANCE}</instancesSet></item></reservationSet></DescribeInstancesResponse>",
    ),
    "RunInstances": (
        200,
        f"<RunInstancesResponse {NS}><requestId>req-2</requestId><reservationId>r-2</reservationId>"
        f"<ownerId>123456789012</ownerId><groupSet/><instancesSet>{INSTANCE}</instancesSet></RunInstancesResponse>",
    ),
    "TerminateInstances": (
        200,
        f"<TerminateInstancesResponse {NS}><requestId>req-3</requestId><instancesSet><item>"
        "<instanceId>i-0123456789abcdef0</instanceId><currentState><code>32</code><name>shutting-down</name>"
        "</currentState><previousState><code>16</code><name>running</name></previousState></item>"
        "</instancesSet></TerminateInstancesResponse>",
    ),
    "CreateTags": (
        200,
        f"<CreateTagsResponse {NS}><requestId>req-4</requestId><return>true</return></CreateTagsResponse>",
    ),
    "DescribeVolumes": (
        400,
        "<Response><Errors><Error><Code>InvalidVolume.NotFound</Code><Message>The volume 'vol-1' does not exist."
        "</Message></Error></Errors><RequestID>req-5</RequestID></Response>",
    ),
    "DescribeInstanceTypes": (
        200,
        f"<DescribeInstanceTypesResponse {NS}><requestId>req-7</requestId><instanceTypeSet><item>"
        "<instanceType>t3.micro</instanceType><vCpuInfo><defaultVCpus>2</defaultVCpus></vCpuInfo>"
        "<memoryInfo><sizeInMiB>1024</sizeInMiB></memoryInfo></item></instanceTypeSet>"
        "</DescribeInstanceTypesResponse>",
    ),
    "StopInstances": (
        503,
        "<Response><Errors><Error><Code>Unavailable</Code><Message>The service is unavailable.</Message></Error>"
        "</Errors><RequestID>req-6</RequestID></Response>",
    ),
}
#: the client's retry bookkeeping, which lean calls leave out
CLIENT_ONLY = ("amz-sdk-invocation-id", "amz-sdk-request")


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]


@dataclass
class Peer:
    url: str
    seen: list[Seen] = field(default_factory=list)
    #: set: requests get no answer (a stalled cloud) until ``release`` is set, at the end of the test
    stall: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def peer() -> Iterator[Peer]:
    state = Peer("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
            state.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, form))
            if state.stall.is_set():
                state.release.wait(10)
                self.close_connection = True
                return
            status, text = ANSWERS[form["Action"][0]]
            data = ('<?xml version="1.0" encoding="UTF-8"?>\n' + text).encode()
            head = f"HTTP/1.1 {status} X\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {len(data)}\r\n"
            self.wfile.write((head + "Date: Tue, 01 Dec 2026 10:00:00 GMT\r\n\r\n").encode() + data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def settings_for(url: str, **extra: Any) -> Any:
    options = {
        "endpoint_url": url,
        "aws_region": "us-east-1",
        "access_key_id": "AKIDLEAN",
        "secret_access_key": "s3cr3t",
    }
    return parse_settings(options | extra, "lean-1", ["lean-1a"])


def both_ways(settings: Any) -> tuple[Any, LeanCaller]:
    client = make_client(settings)
    lean = LeanCaller.of(client, credentials_of(settings))
    assert lean is not None, "botocore's client no longer has the parts lean calls use (lean_call.LeanCaller.of)"
    return client, lean


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "answer", call()
    except ClientError as exc:
        return type(exc).__name__, (exc.response, str(exc))


# Handlers botocore registers for every operation of every service, and why a lean call does without them.
GENERIC_HANDLERS = {
    "ParameterAlias.alias_parameter_in_call",  # renames Filters for members named Filter: none in LEAN (checked)
    "generate_idempotent_uuid",  # done by LeanCaller.call
    "_handle_request_validation_mode_member",  # checksum members: EC2 has none
    "add_recursion_detection_header",  # a Lambda function's trace id
    "inject_api_version_header_if_needed",  # services whose API version travels in a header: not EC2's Query
    "RequestSigner.handler",  # SigV4: done by LeanCaller.call
    "add_retry_headers",  # retry bookkeeping (CLIENT_ONLY)
    "set_operation_specific_signer",  # operations signed otherwise than SigV4: none in EC2
    "_set_auth_scheme_preference_signer",  # the client's auth_scheme_preference: not set
    "RetryHandler.needs_retry",  # the client's retries: one attempt
    "RetryQuotaChecker.release_retry_quota",
}
STAGES = (
    "provide-client-params",
    "before-parameter-build",
    "before-endpoint-resolution",
    "before-call",
    "request-created",
    "choose-signer",
    "before-sign",
    "before-send",
    "response-received",
    "needs-retry",
    "before-parse",
    "after-call",
    "after-call-error",
)


def test_botocore_has_no_handler_of_its_own_for_a_lean_operation() -> None:
    client = make_client(settings_for("http://127.0.0.1:9"))
    handlers = client.meta.events._emitter._handlers  # botocore's registry (a prefix trie of event names)
    seen: set[str] = set()
    for name in sorted(LEAN):
        operation = client.meta.method_to_api_mapping[name]
        shape = client.meta.service_model.operation_model(operation).input_shape
        assert "Filter" not in (shape.members if shape else {}), name
        for stage in STAGES:
            own = list(handlers.prefix_search(f"{stage}.ec2.{operation}"))
            assert own == list(handlers.prefix_search(f"{stage}.ec2.NoSuchOperation")), (name, stage)
            seen |= {getattr(h, "__qualname__", repr(h)) for h in own}
    assert seen <= GENERIC_HANDLERS, seen - GENERIC_HANDLERS
    # and the one operation-specific handler known, so the check above can fail
    assert any("decode_console_output" in repr(h) for h in handlers.prefix_search("after-call.ec2.GetConsoleOutput"))


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("describe_instances", {"InstanceIds": ["i-0123456789abcdef0"]}),
        ("describe_instances", {"Filters": [{"Name": "tag:Name", "Values": ["web", "db"]}], "MaxResults": 1000}),
        ("run_instances", {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1, "ClientToken": "tok-1",
                           "UserData": "aGVsbG8=", "TagSpecifications": [{"ResourceType": "instance",
                           "Tags": [{"Key": "Name", "Value": "web"}]}]}),
        ("terminate_instances", {"InstanceIds": ["i-0123456789abcdef0"]}),
        ("create_tags", {"Resources": ["i-0123456789abcdef0"], "Tags": [{"Key": "k", "Value": "v w&x"}]}),
        ("describe_volumes", {"VolumeIds": ["vol-1"]}),
        ("stop_instances", {"InstanceIds": ["i-0123456789abcdef0"], "Force": True}),
    ],
)  # fmt: skip
def test_a_lean_call_sends_and_answers_what_the_client_does(peer: Peer, name: str, params: dict[str, Any]) -> None:
    client, lean = both_ways(settings_for(peer.url, session_token="FwoGZXIvYXdzEBc"))
    through_client = outcome(lambda: getattr(client, name)(**params))
    through_lean = outcome(lambda: lean.call(name, params))
    assert through_lean == through_client
    assert len(peer.seen) == 2
    sent, lean_sent = peer.seen
    assert lean_sent.form == sent.form
    assert lean_sent.path == sent.path == "/"
    assert {k: v for k, v in sent.headers.items() if k not in CLIENT_ONLY}.keys() == lean_sent.headers.keys()
    for header in ("content-type", "user-agent", "host", "x-amz-security-token", "content-length"):
        assert lean_sent.headers[header] == sent.headers[header], header
    # the same key, day, region and service; a signature of their own (the time may differ by a second)
    scope = sent.headers["authorization"].split("Credential=")[1].split(",")[0]
    assert lean_sent.headers["authorization"].split("Credential=")[1].split(",")[0] == scope
    assert scope.startswith("AKIDLEAN/") and scope.endswith("/us-east-1/ec2/aws4_request")
    assert "x-amz-date" in lean_sent.headers["authorization"].split("SignedHeaders=")[1]


def test_a_launch_without_a_token_gets_one_as_through_the_client(peer: Peer) -> None:
    client, lean = both_ways(settings_for(peer.url))
    params = {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1}
    client.run_instances(**params)
    lean.call("run_instances", params)
    sent, lean_sent = peer.seen
    assert len(sent.form["ClientToken"][0]) == len(lean_sent.form["ClientToken"][0]) == 36  # a uuid4 each
    assert sent.form["ClientToken"] != lean_sent.form["ClientToken"]
    assert "ClientToken" not in params


def test_network_faults_are_the_clients(peer: Peer) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    client, lean = both_ways(settings_for(closed))
    for call in (lambda: client.describe_instances(), lambda: lean.call("describe_instances", {})):
        with pytest.raises(EndpointConnectionError):
            call()
    client, lean = both_ways(settings_for(peer.url, timeout=0.5))
    peer.stall.set()
    for call in (lambda: client.describe_instances(), lambda: lean.call("describe_instances", {})):
        with pytest.raises(ReadTimeoutError):
            call()


def test_the_backend_calls_lean(peer: Peer, redis_client: redis.Redis) -> None:
    options = {"endpoint_url": peer.url, "aws_region": "us-east-1", "access_key_id": "AKIDLEAN",
               "secret_access_key": "s3cr3t", "zone_map": {"lean-1a": "us-east-1a"}}  # fmt: skip
    account = AccountConfig(
        key="lean/lean-1", tenant="lean", region="lean-1", backend="aws", driver="ec2", zones=("lean-1a",),
        options=options,
    )  # fmt: skip
    backend = EC2Backend(account, BackendServices(redis_client))
    try:
        assert backend.lean() is not None
        (machine,) = backend.get_machines(["i-0123456789abcdef0"])
        assert machine.native_id == "i-0123456789abcdef0" and machine.zone == "lean-1a"
        backend.act_on_machine("i-0123456789abcdef0", MachineAction.TERMINATE)
        with pytest.raises(TransientBackendError):  # EC2's Unavailable
            backend.act_on_machine("i-0123456789abcdef0", MachineAction.STOP)
        actions = [s.form["Action"][0] for s in peer.seen]
        assert {"DescribeInstances", "TerminateInstances", "StopInstances"} <= set(actions) <= set(ANSWERS)
        assert not any(h in s.headers for s in peer.seen for h in CLIENT_ONLY)
    finally:
        backend.close()
