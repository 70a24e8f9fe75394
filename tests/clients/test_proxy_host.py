"""Signatures behind a reverse proxy: ``[gateway] public_endpoint`` and trusted ``X-Forwarded-Host``.

A client signs for the host it talks to (the public name); the proxy may hand the request on with another
``Host``. With ``public_endpoint`` set, the gateway checks signatures against that endpoint's host whatever
arrives; with ``trusted_proxies``, it believes ``X-Forwarded-Host`` only from those addresses. The requests
here are signed for the public URL (botocore's ``SigV4Auth``, or the SigV2 signer in ``clientutil``) and sent
to the gateway's loopback address, as a proxy would forward them.
"""

from __future__ import annotations

from collections.abc import Mapping

import boto3
import pytest
import requests
from clientutil import error, host_of, region_names, sign_v2, sigv4_headers, success, wire
from gateway_process import GatewayProcess, StartGateway

PUBLIC = "https://cloud.example.com"
DESCRIBE_REGIONS = {"Action": "DescribeRegions", "Version": "2016-11-15"}


def post_v4(
    gateway: GatewayProcess,
    signed_url: str,
    *,
    host: str | None = None,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] = DESCRIBE_REGIONS,
) -> requests.Response:
    """POST ``params`` signed (SigV4) for ``signed_url`` to the gateway, with ``Host`` as given (default: signed)."""
    body = wire(params)
    sent = sigv4_headers(signed_url, body)
    if host is not None:
        sent["Host"] = host
    sent.update(headers or {})
    return requests.post(f"{gateway.url}/", data=body, headers=sent, timeout=30)


def get_v2(
    gateway: GatewayProcess, signed_host: str, *, host: str | None = None, headers: Mapping[str, str] | None = None
) -> requests.Response:
    """GET DescribeRegions signed (SigV2) for ``signed_host``, with ``Host`` as given (default: signed)."""
    signed = sign_v2("GET", signed_host, DESCRIBE_REGIONS)
    sent = {"Host": host or signed_host, **(headers or {})}
    return requests.get(f"{gateway.url}/?{wire(signed)}", headers=sent, timeout=30)


def _loopback(gateway: GatewayProcess) -> str:
    return host_of(gateway.url)


# --------------------------------------------------------------------------- public_endpoint


@pytest.fixture(scope="module")
def public(start_gateway: StartGateway) -> GatewayProcess:
    return start_gateway(f'public_endpoint = "{PUBLIC}"')


def test_public_endpoint_signature_is_accepted(public: GatewayProcess) -> None:
    root = success(post_v4(public, f"{PUBLIC}/"), "DescribeRegions")
    assert "local-1" in region_names(root)


def test_public_endpoint_holds_when_the_proxy_rewrites_host(public: GatewayProcess) -> None:
    success(post_v4(public, f"{PUBLIC}/", host=_loopback(public)), "DescribeRegions")
    success(post_v4(public, f"{PUBLIC}/", host="backend.internal:8080"), "DescribeRegions")


def test_public_endpoint_sigv2(public: GatewayProcess) -> None:
    success(get_v2(public, "cloud.example.com"), "DescribeRegions")
    success(get_v2(public, "cloud.example.com", host=_loopback(public)), "DescribeRegions")


def test_public_endpoint_presigned_url(public: GatewayProcess) -> None:
    signer = boto3.client(
        "ec2", endpoint_url=PUBLIC, region_name="local-1", aws_access_key_id="demo", aws_secret_access_key="demo-secret"
    )
    url = signer.generate_presigned_url("describe_regions", Params={}, ExpiresIn=300, HttpMethod="GET")
    assert url.startswith(f"{PUBLIC}/?")
    loopback_url = public.url + url[len(PUBLIC) :]
    success(requests.get(loopback_url, headers={"Host": "cloud.example.com"}, timeout=30), "DescribeRegions")


def test_public_endpoint_rejects_a_signature_for_another_host(public: GatewayProcess) -> None:
    """Signatures are checked against the public host only: one made for the loopback address fails."""
    assert error(post_v4(public, f"{public.url}/")) == (401, "AuthFailure")
    assert error(post_v4(public, "https://elsewhere.example.com/")) == (401, "AuthFailure")


def test_public_endpoint_ignores_x_forwarded_host(public: GatewayProcess) -> None:
    success(post_v4(public, f"{PUBLIC}/", headers={"X-Forwarded-Host": "evil.example"}), "DescribeRegions")
    forged = post_v4(public, "https://evil.example/", host="evil.example", headers={"X-Forwarded-Host": "evil.example"})
    assert error(forged) == (401, "AuthFailure")


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://cloud.example.com:443",
        "http://cloud.example.com:80/",
        "https://Cloud.Example.COM",
        "http://cloud.example.com:8773",
    ],
)
def test_public_endpoint_spellings(start_gateway: StartGateway, endpoint: str) -> None:
    """However the operator spells the endpoint, a client using that very URL must be accepted.

    botocore (like every AWS SDK) signs the host lower-cased and without a default port, which is also what
    an HTTP client sends as ``Host``.
    """
    gw = start_gateway(f'public_endpoint = "{endpoint}"')
    try:
        success(get_v2(gw, host_of(endpoint)), "DescribeRegions")
        success(post_v4(gw, endpoint.rstrip("/") + "/"), "DescribeRegions")
    finally:
        gw.stop()


# --------------------------------------------------------------------------- trusted proxies


@pytest.fixture(scope="module")
def proxied(start_gateway: StartGateway) -> GatewayProcess:
    """A gateway that trusts the loopback address as its reverse proxy."""
    return start_gateway('trusted_proxies = ["127.0.0.1"]')


@pytest.fixture(scope="module")
def untrusting(start_gateway: StartGateway) -> GatewayProcess:
    """A gateway whose only trusted proxy is elsewhere: requests from loopback are not from a proxy."""
    return start_gateway('trusted_proxies = ["192.0.2.10"]')


FORWARDED = {"X-Forwarded-Host": "cloud.example.com"}


def test_trusted_proxy_forwarded_host_is_honoured(proxied: GatewayProcess) -> None:
    response = post_v4(proxied, f"{PUBLIC}/", host=_loopback(proxied), headers=FORWARDED)
    assert "local-1" in region_names(success(response, "DescribeRegions"))


def test_trusted_proxy_forwarded_host_sigv2(proxied: GatewayProcess) -> None:
    success(get_v2(proxied, "cloud.example.com", host=_loopback(proxied), headers=FORWARDED), "DescribeRegions")


def test_trusted_proxy_first_of_several_forwarded_hosts(proxied: GatewayProcess) -> None:
    """Each proxy appends its own; the first ``X-Forwarded-Host`` entry is the one the client used."""
    headers = {"X-Forwarded-Host": "cloud.example.com, lb.internal:8080"}
    success(post_v4(proxied, f"{PUBLIC}/", host=_loopback(proxied), headers=headers), "DescribeRegions")


def test_trusted_proxy_with_forwarded_port(proxied: GatewayProcess) -> None:
    headers = {"X-Forwarded-Host": "cloud.example.com:8773"}
    signed_url = "http://cloud.example.com:8773/"
    success(post_v4(proxied, signed_url, host=_loopback(proxied), headers=headers), "DescribeRegions")


def test_trusted_proxy_direct_requests_still_work(proxied: GatewayProcess) -> None:
    assert "local-1" in [r["RegionName"] for r in proxied.client().describe_regions()["Regions"]]


def test_trusted_proxy_forwarded_host_is_the_only_host_checked(proxied: GatewayProcess) -> None:
    """Once the proxy says the client used cloud.example.com, a signature for the upstream Host fails."""
    response = post_v4(proxied, f"{proxied.url}/", headers=FORWARDED)
    assert error(response) == (401, "AuthFailure")


def test_untrusted_proxy_forwarded_host_is_ignored(untrusting: GatewayProcess) -> None:
    response = post_v4(untrusting, f"{PUBLIC}/", host=_loopback(untrusting), headers=FORWARDED)
    assert error(response) == (401, "AuthFailure")
    sigv2 = get_v2(untrusting, "cloud.example.com", host=_loopback(untrusting), headers=FORWARDED)
    assert error(sigv2) == (401, "AuthFailure")


def test_untrusted_proxy_header_does_not_break_direct_requests(untrusting: GatewayProcess) -> None:
    """A direct client's own signature for the real Host stays valid whatever X-Forwarded-Host says."""
    response = post_v4(untrusting, f"{untrusting.url}/", headers={"X-Forwarded-Host": "evil.example"})
    success(response, "DescribeRegions")


# --------------------------------------------------------------------------- X-Forwarded-Proto


@pytest.mark.parametrize("which", ["proxied", "untrusting", "public"])
def test_x_forwarded_proto_does_not_matter(request: pytest.FixtureRequest, which: str) -> None:
    """SigV4 does not sign the scheme: a request a TLS-terminating proxy marks ``https`` still verifies."""
    gw: GatewayProcess = request.getfixturevalue(which)
    headers = {"X-Forwarded-Proto": "https"}
    if which == "public":
        success(post_v4(gw, f"{PUBLIC}/", headers=headers), "DescribeRegions")
    else:
        success(post_v4(gw, f"{gw.url}/", headers=headers), "DescribeRegions")
    if which == "proxied":
        both = {**FORWARDED, **headers}
        success(post_v4(gw, f"{PUBLIC}/", host=_loopback(gw), headers=both), "DescribeRegions")
