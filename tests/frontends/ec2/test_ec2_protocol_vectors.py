"""botocore's EC2 protocol test vectors, run in reverse against our codec (STYLE.md item 11).

Input vectors: botocore serialised `params` into `serialized.body`; our parser must recover `params`.
Output vectors: we render `result`; botocore's own EC2QueryParser must read `result` back.
Error vectors: we render the error the vector's XML carries; botocore must read code and message back.
Vectors from ../shared/conformance/botocore-protocol-tests (see its README for source and commit).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import EC2QueryParser
from shapes import normalise

from frontends.ec2.query import parse_form, parse_params
from frontends.ec2.render import render_error, render_response

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"
VECTORS = SHARED / "conformance" / "botocore-protocol-tests" / "tests" / "unit" / "protocols"
INPUT_FILES = ("input/ec2.json", "legacy/input/ec2.json")
OUTPUT_FILES = ("output/ec2.json", "legacy/output/ec2.json")
REQUEST_ID = "req-7f1c"

# Cases our design deliberately does not reproduce, with the reason. A test below checks every id exists.
UNSUPPORTED: dict[str, str] = {
    # Request compression: these vectors have no body (the SDK gzips it); decompressing a
    # `Content-Encoding: gzip` body belongs to the HTTP layer in front of the codec, not to parse_params.
    "SDKAppliedContentEncoding_ec2Query": "gzip request bodies are decoded by the HTTP layer, not the codec",
    "SDKAppendsGzipAndIgnoresHttpProvidedEncoding_ec2Query": "gzip request bodies are the HTTP layer's job",
}

# Error cases whose extra members (beyond Code and Message) we do not render: render_error writes EC2's
# Code/Message only, since real EC2 errors carry nothing else. These cases still run on code + message.
ERROR_MEMBERS_NOT_RENDERED: dict[str, str] = {
    "Ec2ComplexError": "TopLevel, Nested",
    "legacy-output-Modeled exceptions-0": "BodyMember",
    "legacy-output-Modeled exceptions-1": "BodyMember",
    "legacy-output-Modeled exceptions-2": "BodyMember",
}

# Members of otherwise supported cases that cannot round-trip, with the reason; compared without them.
IGNORED_MEMBERS: dict[str, tuple[set[str], str]] = {
    "Ec2XmlLists": (
        {"flattenedList", "flattenedList2"},
        "two flattened lists whose list member is named `item`: botocore's XML reader looks both up as "
        "<item> (parsers._member_key_name), so no document can give them different values. The EC2 model "
        "has no flattened lists, so we follow botocore's reader rather than the Smithy vector's XML.",
    ),
}

# The wire carries what the client actually sent, so a server sees values the SDK filled in itself.
EXPECTED_EXTRA: dict[str, dict[str, Any]] = {
    # botocore auto-fills idempotency tokens client-side; the parser sees the filled-in token.
    "Ec2ProtocolIdempotencyTokenAutoFill": {"token": "00000000-0000-4000-8000-000000000000"},
    "legacy-input-Idempotency token auto fill-1": {"Token": "00000000-0000-4000-8000-000000000000"},
}


def _load(relative: str, kind: str) -> list[Any]:
    """pytest params for every case of one vector file: (suite, case) with a stable id."""
    suites = json.loads((VECTORS / relative).read_text())
    prefix = "legacy-" if relative.startswith("legacy") else ""
    params = []
    for suite in suites:
        for index, case in enumerate(suite["cases"]):
            case_id = case.get("id") or f"{prefix}{kind}-{suite['description']}-{index}"
            marks = [pytest.mark.skip(reason=UNSUPPORTED[case_id])] if case_id in UNSUPPORTED else []
            params.append(pytest.param(suite, case, case_id, id=case_id, marks=marks))
    return params


INPUT_CASES = [p for f in INPUT_FILES for p in _load(f, "input")]
OUTPUT_CASES = [p for f in OUTPUT_FILES for p in _load(f, "output")]


def _operation(suite: dict[str, Any], case: dict[str, Any]) -> OperationModel:
    """Build the model the way botocore's tests/unit/test_protocols.py does: suite shapes + `given`."""
    given = case["given"]
    metadata = {"apiVersion": "2014-01-01", **suite["metadata"]}
    model = ServiceModel({"metadata": metadata, "operations": {given["name"]: given}, "shapes": suite["shapes"]})
    return model.operation_model(given["name"])


@pytest.mark.parametrize(("suite", "case", "case_id"), INPUT_CASES)
def test_input_vector_parses_back_to_params(suite: dict[str, Any], case: dict[str, Any], case_id: str) -> None:
    operation = _operation(suite, case)
    params = parse_form(case["serialized"]["body"].encode())
    assert params.pop("Action") == operation.name
    parsed = parse_params(operation, params)
    expected = {**case["params"], **EXPECTED_EXTRA.get(case_id, {})}
    shape = operation.input_shape
    assert normalise(shape, parsed) == normalise(shape, expected, drop_empty=True)


def _botocore_parse(operation: OperationModel, body: bytes, status: int = 200) -> dict[str, Any]:
    response = {"body": body, "headers": {}, "status_code": status}
    parsed: dict[str, Any] = EC2QueryParser().parse(response, operation.output_shape)
    return parsed


@pytest.mark.parametrize(("suite", "case", "case_id"), OUTPUT_CASES)
def test_output_vector_renders_what_botocore_reads(suite: dict[str, Any], case: dict[str, Any], case_id: str) -> None:
    operation = _operation(suite, case)
    if "errorCode" in case:
        # The vector's own XML, read by botocore, says which code/message the error carries.
        reference = _botocore_parse(operation, case["response"]["body"].encode(), case["response"]["status_code"])
        code, message = reference["Error"]["Code"], reference["Error"].get("Message", "")
        assert code == case["errorCode"]
        parsed = _botocore_parse(operation, render_error(code, message, REQUEST_ID), 400)
        assert parsed["Error"]["Code"] == case["errorCode"]
        assert parsed["Error"]["Message"] == case.get("errorMessage", message)
        assert parsed["ResponseMetadata"]["RequestId"] == REQUEST_ID
        extra = set(reference["Error"]) - {"Code", "Message"}
        assert bool(extra) == (case_id in ERROR_MEMBERS_NOT_RENDERED)
        return
    body = render_response(operation, case["result"], REQUEST_ID)
    parsed = _botocore_parse(operation, body)
    assert parsed.pop("ResponseMetadata")["RequestId"] == REQUEST_ID
    shape = operation.output_shape
    expected = dict(case["result"])
    for name in IGNORED_MEMBERS.get(case_id, (set(), ""))[0]:
        expected.pop(name)
        parsed.pop(name, None)
    assert normalise(shape, parsed) == normalise(shape, expected)


def test_unsupported_list_names_real_cases() -> None:
    known = {p.id for p in INPUT_CASES + OUTPUT_CASES}
    assert set(UNSUPPORTED) <= known
    assert set(EXPECTED_EXTRA) <= known
    assert set(IGNORED_MEMBERS) <= known
    assert set(ERROR_MEMBERS_NOT_RENDERED) <= known


def test_vectors_are_present() -> None:
    # 29 + 12 input cases and 29 + 13 output cases at the pinned botocore commit.
    assert len(INPUT_CASES) == 41
    assert len(OUTPUT_CASES) == 42


def test_rendered_error_document_is_ec2_shaped() -> None:
    body = render_error("InvalidInstanceID.NotFound", "The instance ID 'i-1' & <x> does not exist", "rid-1")
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        b"<Code>InvalidInstanceID.NotFound</Code>"
        b"<Message>The instance ID 'i-1' &amp; &lt;x&gt; does not exist</Message>"
        b"</Error></Errors><RequestID>rid-1</RequestID></Response>"
    )
