"""Signature Version 2 and presigned SigV4 URLs, over real HTTP against a running gateway.

SigV2 requests are signed by ``clientutil.sign_v2``, written from AWS's published algorithm (no code shared
with the gateway). Presigned SigV4 URLs come from botocore's own ``generate_presigned_url`` and are fetched
with ``requests``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import pytest
import requests
from clientutil import FORM, NS, error, region_names, sign_v2, success, wire
from ec2util import unique
from gateway_process import GatewayProcess


def _host(gateway: GatewayProcess) -> str:
    return urlsplit(gateway.url).netloc


def v2_get(gateway: GatewayProcess, params: Mapping[str, str], **kw: Any) -> requests.Response:
    signed = sign_v2("GET", _host(gateway), params, **kw)
    return requests.get(f"{gateway.url}/?{wire(signed)}", timeout=30)


def v2_post(gateway: GatewayProcess, params: Mapping[str, str], **kw: Any) -> requests.Response:
    signed = sign_v2("POST", _host(gateway), params, **kw)
    return requests.post(f"{gateway.url}/", data=wire(signed), headers={"Content-Type": FORM}, timeout=30)


# --------------------------------------------------------------------------- SigV2


@pytest.mark.parametrize("algorithm", ["HmacSHA256", "HmacSHA1"])
def test_sigv2_get(gateway: GatewayProcess, algorithm: str) -> None:
    root = success(v2_get(gateway, {"Action": "DescribeRegions"}, algorithm=algorithm), "DescribeRegions")
    assert "local-1" in region_names(root)


@pytest.mark.parametrize("algorithm", ["HmacSHA256", "HmacSHA1"])
def test_sigv2_post(gateway: GatewayProcess, algorithm: str) -> None:
    root = success(v2_post(gateway, {"Action": "DescribeRegions"}, algorithm=algorithm), "DescribeRegions")
    assert "local-1" in region_names(root)


@pytest.mark.parametrize("send", [v2_get, v2_post], ids=["GET", "POST"])
def test_sigv2_values_that_need_encoding(gateway: GatewayProcess, send: Any) -> None:
    """Space, ``+``, ``*``, ``/``, ``~`` and non-ASCII must be signed as the published encoding says."""
    value = unique("no such name") + " +*/~=&ü€"
    params = {"Action": "DescribeInstances", "Filter.1.Name": "tag:Name", "Filter.1.Value.1": value}
    root = success(send(gateway, params), "DescribeInstances")
    assert root.find(f"{NS}reservationSet") is not None
    assert root.findall(f"{NS}reservationSet/{NS}item") == []


def test_sigv2_with_expires_in_the_future(gateway: GatewayProcess) -> None:
    later = datetime.now(UTC) + timedelta(minutes=5)
    success(v2_get(gateway, {"Action": "DescribeRegions"}, expires=later), "DescribeRegions")


def test_sigv2_write_round_trip(gateway: GatewayProcess) -> None:
    name = unique("v2-key")
    created = success(v2_get(gateway, {"Action": "CreateKeyPair", "KeyName": name}), "CreateKeyPair")
    assert created.findtext(f"{NS}keyName") == name
    assert (created.findtext(f"{NS}keyMaterial") or "").startswith("-----BEGIN")
    listed = success(v2_post(gateway, {"Action": "DescribeKeyPairs", "KeyName.1": name}), "DescribeKeyPairs")
    assert [i.findtext(f"{NS}keyName") for i in listed.iterfind(f"{NS}keySet/{NS}item")] == [name]
    success(v2_post(gateway, {"Action": "DeleteKeyPair", "KeyName": name}), "DeleteKeyPair")
    assert error(v2_get(gateway, {"Action": "DescribeKeyPairs", "KeyName.1": name})) == (
        400,
        "InvalidKeyPair.NotFound",
    )


def test_sigv2_wrong_secret_is_auth_failure(gateway: GatewayProcess) -> None:
    assert error(v2_get(gateway, {"Action": "DescribeRegions"}, secret="not-the-secret")) == (401, "AuthFailure")
    assert error(v2_post(gateway, {"Action": "DescribeRegions"}, secret="not-the-secret")) == (401, "AuthFailure")


def test_sigv2_unknown_key_is_auth_failure(gateway: GatewayProcess) -> None:
    response = v2_get(gateway, {"Action": "DescribeRegions"}, key="nobody", secret="demo-secret")
    assert error(response) == (401, "AuthFailure")


@pytest.mark.parametrize("age", [timedelta(minutes=20), timedelta(minutes=-20)], ids=["past", "future"])
def test_sigv2_timestamp_out_of_window_is_request_expired(gateway: GatewayProcess, age: timedelta) -> None:
    # EC2 refuses a request whose Timestamp is more than 15 minutes off with RequestExpired (400).
    response = v2_get(gateway, {"Action": "DescribeRegions"}, timestamp=datetime.now(UTC) - age)
    assert error(response) == (400, "RequestExpired")


def test_sigv2_expires_in_the_past_is_request_expired(gateway: GatewayProcess) -> None:
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    assert error(v2_get(gateway, {"Action": "DescribeRegions"}, expires=earlier)) == (400, "RequestExpired")


def test_sigv2_signed_for_get_sent_as_post_is_auth_failure(gateway: GatewayProcess) -> None:
    signed = sign_v2("GET", _host(gateway), {"Action": "DescribeRegions"})
    response = requests.post(f"{gateway.url}/", data=wire(signed), headers={"Content-Type": FORM}, timeout=30)
    assert error(response) == (401, "AuthFailure")


def test_sigv2_signed_for_another_host_is_auth_failure(gateway: GatewayProcess) -> None:
    signed = sign_v2("GET", "ec2.elsewhere.example", {"Action": "DescribeRegions"})
    assert error(requests.get(f"{gateway.url}/?{wire(signed)}", timeout=30)) == (401, "AuthFailure")


def test_sigv2_tampered_parameter_is_auth_failure(gateway: GatewayProcess) -> None:
    signed = sign_v2("GET", _host(gateway), {"Action": "DescribeRegions", "RegionName.1": "local-1"})
    signed["RegionName.1"] = "local-2"
    assert error(requests.get(f"{gateway.url}/?{wire(signed)}", timeout=30)) == (401, "AuthFailure")


def test_sigv2_reader_cannot_write(gateway: GatewayProcess) -> None:
    params = {"Action": "CreateKeyPair", "KeyName": unique("v2-reader")}
    assert error(v2_get(gateway, params, key="reader", secret="reader-secret")) == (403, "UnauthorizedOperation")


def test_no_signature_at_all_is_missing_authentication_token(gateway: GatewayProcess) -> None:
    response = requests.get(f"{gateway.url}/?Action=DescribeRegions&Version=2016-11-15", timeout=30)
    assert error(response) == (401, "MissingAuthenticationToken")


# --------------------------------------------------------------------------- presigned SigV4 URLs


def _presign(client: Any, operation: str, params: dict[str, Any] | None = None, **kw: Any) -> str:
    """A botocore presigned URL for a GET (botocore signs EC2's model method, POST, unless told)."""
    return client.generate_presigned_url(operation, Params=params or {}, ExpiresIn=300, HttpMethod="GET", **kw)


def test_presigned_url_from_botocore(gateway: GatewayProcess) -> None:
    url = _presign(gateway.client(), "describe_regions")
    assert "X-Amz-Signature=" in url
    root = success(requests.get(url, timeout=30), "DescribeRegions")
    assert "local-1" in region_names(root)


def test_presigned_url_signs_the_method(gateway: GatewayProcess) -> None:
    """botocore's default presigned EC2 URL is signed for POST (the model's method) with an empty body."""
    url = gateway.client().generate_presigned_url("describe_regions", Params={}, ExpiresIn=300)
    success(requests.post(url, timeout=30), "DescribeRegions")
    assert error(requests.get(url, timeout=30)) == (401, "AuthFailure")


def test_presigned_url_with_list_parameters(gateway: GatewayProcess) -> None:
    params = {"Filters": [{"Name": "tag:Name", "Values": [unique("no such") + " +*/ü"]}]}
    url = _presign(gateway.client(), "describe_instances", params)
    root = success(requests.get(url, timeout=30), "DescribeInstances")
    assert root.findall(f"{NS}reservationSet/{NS}item") == []


def test_presigned_url_tampered_is_auth_failure(gateway: GatewayProcess) -> None:
    url = _presign(gateway.client(), "describe_regions")
    parts = urlsplit(url)
    query = [(k, "DescribeAvailabilityZones" if k == "Action" else v) for k, v in parse_qsl(parts.query)]
    tampered = urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))
    assert error(requests.get(tampered, timeout=30)) == (401, "AuthFailure")


def test_presigned_url_of_another_secret_is_auth_failure(gateway: GatewayProcess) -> None:
    url = _presign(gateway.client(secret="not-the-secret"), "describe_regions")
    assert error(requests.get(url, timeout=30)) == (401, "AuthFailure")


def test_presigned_url_past_its_expiry_is_request_expired(gateway: GatewayProcess) -> None:
    # Sign as if 20 minutes ago, valid for 5: expired now, whatever the clocks' small drift.
    signed_at = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=signed_at):
        url = _presign(gateway.client(), "describe_regions")
    assert error(requests.get(url, timeout=30)) == (400, "RequestExpired")


def test_presigned_url_for_a_write_by_the_reader_is_refused(gateway: GatewayProcess) -> None:
    client = gateway.client("reader", "reader-secret")
    url = _presign(client, "create_key_pair", {"KeyName": unique("ps-reader")})
    assert error(requests.get(url, timeout=30)) == (403, "UnauthorizedOperation")
