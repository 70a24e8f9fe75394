"""What a request may weigh, over real HTTP: long GET queries up to the body limit, header limits, gzip
bodies inflated under the same limit, other content codings refused, and metrics labels kept to known names.

The gateway here has ``max_body_bytes = 200000``, so the long cases stay cheap.
"""

from __future__ import annotations

import gzip
import re
import time
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from clientutil import FORM, NS, error, region_names, success
from gateway_process import GatewayProcess, StartGateway

LIMIT = 200_000


@pytest.fixture(scope="module")
def bounded(start_gateway: StartGateway) -> GatewayProcess:
    return start_gateway(f"max_body_bytes = {LIMIT}")


def _presigned_describe(gw: GatewayProcess, value_bytes: int) -> str:
    """A presigned GET DescribeInstances whose query carries about ``value_bytes`` of filter values."""
    values = ["v" * 1000] * (value_bytes // 1000)
    return gw.client().generate_presigned_url(
        "describe_instances",
        Params={"Filters": [{"Name": "tag:big", "Values": values}]},
        ExpiresIn=300,
        HttpMethod="GET",  # botocore signs the model's method, POST, unless told
    )


def _signed_post(gw: GatewayProcess, body: bytes, headers: dict[str, str], service: str = "ec2") -> requests.Response:
    """POST ``body`` as sent on the wire (compressed or not), SigV4-signed over exactly those bytes."""
    request = AWSRequest(method="POST", url=f"{gw.url}/", data=body, headers={"Content-Type": FORM, **headers})
    SigV4Auth(Credentials("demo", "demo-secret"), service, "local-1").add_auth(request)
    prepared = request.prepare()
    return requests.post(prepared.url, data=body, headers=dict(prepared.headers), timeout=30)


def test_a_long_presigned_get_up_to_the_body_limit_is_served(bounded: GatewayProcess) -> None:
    url = _presigned_describe(bounded, 100_000)
    assert 100_000 < len(url) < LIMIT
    root = success(requests.get(url, timeout=30), "DescribeInstances")
    assert root.find(f"{NS}reservationSet") is not None


def test_a_query_past_the_body_limit_gets_ec2s_error(bounded: GatewayProcess) -> None:
    response = requests.get(_presigned_describe(bounded, LIMIT + 20_000), timeout=30)
    assert error(response) == (413, "RequestEntityTooLarge")


def test_a_request_line_far_past_the_limit_is_refused_not_reset(bounded: GatewayProcess) -> None:
    response = requests.get(f"{bounded.url}/?Action=DescribeRegions&Junk={'a' * (3 * LIMIT)}", timeout=30)
    assert response.status_code == 414


@pytest.mark.parametrize(
    "headers",
    [{f"X-Extra-{i}": "x" for i in range(120)}, {"X-Huge": "h" * 20_000}],
    ids=["too-many-headers", "header-too-large"],
)
def test_header_bounds(bounded: GatewayProcess, headers: dict[str, str]) -> None:
    response = requests.get(f"{bounded.url}/?Action=DescribeRegions", headers=headers, timeout=30)
    assert response.status_code in (400, 431)


def test_a_gzip_body_is_inflated_and_served(bounded: GatewayProcess) -> None:
    body = gzip.compress(b"Action=DescribeRegions&Version=2016-11-15")
    root = success(_signed_post(bounded, body, {"Content-Encoding": "gzip"}), "DescribeRegions")
    assert region_names(root) == ["local-1"]


def test_a_gzip_body_inflating_past_the_limit_is_too_large(bounded: GatewayProcess) -> None:
    bomb = gzip.compress(b"Action=DescribeRegions&Junk=" + b"a" * (5 * LIMIT))
    assert len(bomb) < 2_000
    response = requests.post(f"{bounded.url}/", data=bomb, headers={"Content-Encoding": "gzip"}, timeout=30)
    assert error(response) == (413, "RequestEntityTooLarge")


@pytest.mark.parametrize(
    ("encoding", "body", "expected"),
    [
        ("br", b"\x0b\x02\x80Action=DescribeRegions\x03", (415, "UnsupportedMediaType")),
        ("deflate", b"x\x9c\x01\x00\x00\xff\xff\x00\x00\x00\x01", (415, "UnsupportedMediaType")),
        ("gzip, gzip", gzip.compress(gzip.compress(b"Action=DescribeRegions")), (415, "UnsupportedMediaType")),
        ("gzip", b"Action=DescribeRegions", (400, "MalformedQueryString")),
        ("gzip", gzip.compress(b"Action=DescribeRegions")[:-6], (400, "MalformedQueryString")),
    ],
    ids=["br", "deflate", "twice", "not-gzip", "truncated"],
)
def test_bodies_that_cannot_be_read_get_ec2_errors(
    bounded: GatewayProcess, encoding: str, body: bytes, expected: tuple[int, str]
) -> None:
    assert error(_signed_post(bounded, body, {"Content-Encoding": encoding})) == expected


def _action_labels(gw: GatewayProcess) -> set[str]:
    text = requests.get(f"{gw.url}/metrics", timeout=10).text
    return set(re.findall(r'^cloudgate_requests_total\{[^}]*action="([^"]*)"', text, re.MULTILINE))


def test_metrics_label_only_known_actions(bounded: GatewayProcess) -> None:
    made_up = ["NoSuchActionAtAll", "sts:Nope", "GetCallerIdentityX"]
    for action in made_up:
        response = _signed_post(bounded, f"Action={action}&Version=2016-11-15".encode(), {})
        assert error(response)[1] == "InvalidAction"
    sts = _signed_post(bounded, b"Action=AssumeRole&Version=2011-06-15", {}, service="sts")
    assert sts.status_code == 400 and b"InvalidAction" in sts.content
    bounded.client().describe_regions()
    labels: set[Any] = set()
    for _ in range(100):  # other workers' counts land in the shared directory as they happen
        labels = _action_labels(bounded)
        if {"DescribeRegions", "other"} <= labels:
            break
        time.sleep(0.05)
    assert {"DescribeRegions", "other"} <= labels
    assert not labels & {*made_up, "AssumeRole", "sts:AssumeRole", "unknown"}


def test_a_backends_error_message_reaches_the_client_capped(bounded: GatewayProcess) -> None:
    ec2 = bounded.client()
    image = ec2.describe_images()["Images"][0]["ImageId"]
    with pytest.raises(ClientError) as excinfo:  # the simulator's NotFound quotes the 3,000-character name
        ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1, KeyName="k" * 3000)
    err = excinfo.value.response["Error"]
    assert err["Code"] == "InvalidKeyPair.NotFound"
    assert len(err["Message"]) == 512 and err["Message"].startswith("The key pair 'kkk")
