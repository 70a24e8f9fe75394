"""Helpers shared by the client-program tests: independent request signers and EC2 answer checks.

The SigV2 signer is written from AWS's published "Signature Version 2 signing process" and shares no code
with the gateway: add ``AWSAccessKeyId``, ``SignatureVersion=2``, ``SignatureMethod`` and ``Timestamp``
(or ``Expires``); sort the parameters by name (natural byte order); URI-encode names and values (RFC 3986
unreserved characters kept, everything else ``%XX`` upper-case, space as ``%20``); sign
``METHOD\\nhost\\npath\\ncanonical-query`` with HMAC and send the base64 result as ``Signature``.
SigV4 requests are signed by botocore's own ``SigV4Auth``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from lxml import etree

NS = "{http://ec2.amazonaws.com/doc/2016-11-15/}"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def encode(text: str) -> str:
    """AWS URI encoding: unreserved characters kept, the rest ``%XX`` (space is ``%20``)."""
    return quote(text, safe="-_.~")


def wire(params: Mapping[str, str]) -> str:
    """A query string or form body carrying ``params``."""
    return "&".join(f"{encode(k)}={encode(v)}" for k, v in params.items())


def host_of(url: str) -> str:
    """The Host header an HTTP client sends for ``url``: host name, plus the port if not the default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{parts.port}"
    return host


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign_v2(
    method: str,
    host: str,
    params: Mapping[str, str],
    key: str = "demo",
    secret: str = "demo-secret",
    *,
    algorithm: str = "HmacSHA256",
    timestamp: datetime | None = None,
    expires: datetime | None = None,
    path: str = "/",
) -> dict[str, str]:
    """``params`` plus the SigV2 authentication parameters and their ``Signature``."""
    signed = dict(params)
    signed.update(AWSAccessKeyId=key, SignatureVersion="2", SignatureMethod=algorithm, Version="2016-11-15")
    if expires is not None:
        signed["Expires"] = _iso(expires)
    else:
        signed["Timestamp"] = _iso(timestamp or datetime.now(UTC))
    canonical = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(signed.items()))
    string_to_sign = "\n".join((method, host.lower(), path, canonical))
    digest = hmac.new(secret.encode(), string_to_sign.encode(), DIGESTS[algorithm]).digest()
    signed["Signature"] = base64.b64encode(digest).decode()
    return signed


def sigv4_headers(
    signed_url: str, body: str, key: str = "demo", secret: str = "demo-secret", region: str = "local-1"
) -> dict[str, str]:
    """Headers (Host included) of a form POST of ``body`` to ``signed_url``, signed by botocore's SigV4Auth."""
    request = AWSRequest(method="POST", url=signed_url, data=body.encode(), headers={"Content-Type": FORM})
    SigV4Auth(Credentials(key, secret), "ec2", region).add_auth(request)
    headers = dict(request.prepare().headers)
    headers["Host"] = host_of(signed_url)
    return headers


def success(response: requests.Response, action: str) -> Any:
    """The parsed body of an EC2 success answer for ``action`` (asserting its form)."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.tag == f"{NS}{action}Response"
    assert (root.findtext(f"{NS}requestId") or "").strip()
    return root


def error(response: requests.Response) -> tuple[int, str]:
    """(HTTP status, EC2 code) of an answer in EC2's error document form (asserting that form)."""
    assert response.headers["Content-Type"].startswith("text/xml"), response.text
    root = etree.fromstring(response.content)
    assert root.tag == "Response", response.text
    errors = root.findall("Errors/Error")
    assert len(errors) == 1, response.text
    assert (errors[0].findtext("Message") or "").strip()
    assert (root.findtext("RequestID") or "").strip()
    return response.status_code, errors[0].findtext("Code") or ""


def region_names(root: Any) -> list[str]:
    """regionName of each item of a DescribeRegions answer."""
    return [item.findtext(f"{NS}regionName") for item in root.iterfind(f"{NS}regionInfo/{NS}item")]
