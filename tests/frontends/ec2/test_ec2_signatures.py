"""Signature verification against independent reference signers.

SigV4: botocore's own SigV4Auth / SigV4QueryAuth sign the requests. SigV2: a signer written here from the
published algorithm (AWS "Signature Version 2 signing process"), sharing no code with the module under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from frontends.ec2.signatures import SignatureError, SignedIdentity, SignedRequest, verify_request

ACCESS_KEY, SECRET = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SIGNED_AT = datetime(2026, 11, 21, 10, 0, 0, tzinfo=UTC)
HOST = "ec2.cloudgate.example:8773"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
BODY = {
    "Action": "DescribeInstances",
    "Version": "2016-11-15",
    "Filter.1.Name": "tag:Name",
    "Filter.1.Value.1": "a b/c",
}


def lookup(access_key: str) -> str | None:
    return {ACCESS_KEY: SECRET}.get(access_key)


@pytest.fixture(autouse=True)
def _frozen_signing_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's signers stamp `get_current_datetime()`; pin it so tests choose the skew."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: SIGNED_AT.replace(tzinfo=None))


def _to_signed(request: AWSRequest) -> SignedRequest:
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    body = prepared.body or b""
    return SignedRequest(
        method=prepared.method,
        host=parts.netloc,
        path=parts.path,
        query_string=parts.query,
        headers=dict(prepared.headers),
        body=body.encode() if isinstance(body, str) else body,
    )


def sigv4_post(
    secret: str = SECRET, access_key: str = ACCESS_KEY, headers: dict[str, str] | None = None
) -> SignedRequest:
    request = AWSRequest(
        method="POST",
        url=f"https://{HOST}/",
        data=urlencode(BODY, quote_via=quote),
        headers={"Content-Type": FORM, **(headers or {})},
    )
    SigV4Auth(Credentials(access_key, secret), "ec2", "eu-west-1").add_auth(request)
    return _to_signed(request)


def sigv4_get(
    query: str = "Action=DescribeRegions&Version=2016-11-15&RegionName.1=eu%2Fwest",
) -> SignedRequest:
    request = AWSRequest(method="GET", url=f"https://{HOST}/?{query}")
    SigV4Auth(Credentials(ACCESS_KEY, SECRET), "ec2", "us-east-1").add_auth(request)
    return _to_signed(request)


def presigned(expires: int = 300, data: dict[str, str] | None = None) -> SignedRequest:
    request = AWSRequest(method="GET", url=f"https://{HOST}/", data=data or BODY)
    SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET), "ec2", "ap-south-1", expires=expires).add_auth(request)
    return _to_signed(request)


def _v2_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def sign_v2(
    params: dict[str, str], method: str = "GET", secret: str = SECRET, algorithm: str = "HmacSHA256"
) -> dict[str, str]:
    """Reference SigV2 signer, from the published algorithm: METHOD, host, path, sorted encoded params."""
    signed = {**params, "AWSAccessKeyId": params.get("AWSAccessKeyId", ACCESS_KEY), "SignatureVersion": "2"}
    signed["SignatureMethod"] = algorithm
    canonical = "&".join(f"{_v2_encode(k)}={_v2_encode(v)}" for k, v in sorted(signed.items()))
    string_to_sign = f"{method}\n{HOST.lower()}\n/\n{canonical}"
    digest = hashlib.sha256 if algorithm == "HmacSHA256" else hashlib.sha1
    mac = hmac.new(secret.encode(), string_to_sign.encode(), digest).digest()
    signed["Signature"] = base64.b64encode(mac).decode()
    return signed


def v2_request(params: dict[str, str], method: str = "GET") -> SignedRequest:
    encoded = urlencode(params, quote_via=quote)
    if method == "GET":
        return SignedRequest(method, HOST, "/", encoded, {}, b"")
    return SignedRequest(method, HOST, "/", "", {"Content-Type": FORM}, encoded.encode())


def _error(request: SignedRequest, now: datetime = SIGNED_AT, **kwargs: Any) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verify_request(request, lookup, now, **kwargs)
    return info.value


def _replace(request: SignedRequest, **changes: Any) -> SignedRequest:
    fields = {
        "method": request.method,
        "host": request.host,
        "path": request.path,
        "query_string": request.query_string,
        "headers": dict(request.headers),
        "body": request.body,
    }
    fields.update(changes)
    return SignedRequest(**fields)


# --------------------------------------------------------------------------- SigV4 header


def test_sigv4_header_post_is_accepted() -> None:
    identity = verify_request(sigv4_post(), lookup, SIGNED_AT + timedelta(minutes=3))
    assert identity == SignedIdentity(ACCESS_KEY, "eu-west-1", "ec2", 4)


def test_sigv4_header_get_with_query_is_accepted() -> None:
    assert verify_request(sigv4_get(), lookup, SIGNED_AT).region == "us-east-1"


def test_sigv4_with_date_header_instead_of_x_amz_date() -> None:
    request = sigv4_post(headers={"Date": "placeholder, botocore rewrites it"})
    assert request.header("x-amz-date") is None and request.header("date") is not None
    assert verify_request(request, lookup, SIGNED_AT).access_key == ACCESS_KEY


def test_sigv4_with_content_sha256_header() -> None:
    body_hash = hashlib.sha256(urlencode(BODY, quote_via=quote).encode()).hexdigest()
    request = sigv4_post(headers={"X-Amz-Content-SHA256": body_hash})
    assert verify_request(request, lookup, SIGNED_AT).service == "ec2"


def test_sigv4_wrong_secret_is_auth_failure() -> None:
    error = _error(sigv4_post(secret="not-the-secret"))
    assert (error.code, error.status) == ("AuthFailure", 401)
    assert "not able to validate" in error.message


def test_sigv4_unknown_access_key_is_auth_failure() -> None:
    assert _error(sigv4_post(access_key="AKIDUNKNOWN")).code == "AuthFailure"


def test_sigv4_tampered_body_is_auth_failure() -> None:
    request = sigv4_post()
    tampered = _replace(request, body=request.body.replace(b"DescribeInstances", b"TerminateInstances"))
    assert _error(tampered).code == "AuthFailure"


def test_sigv4_tampered_query_is_auth_failure() -> None:
    request = sigv4_get()
    assert _error(_replace(request, query_string=request.query_string + "&DryRun=true")).code == "AuthFailure"


def test_sigv4_content_sha256_that_lies_is_auth_failure() -> None:
    request = sigv4_post(headers={"X-Amz-Content-SHA256": hashlib.sha256(b"other").hexdigest()})
    assert _error(request).code == "AuthFailure"


def test_sigv4_unsigned_payload_with_body_is_refused() -> None:
    request = sigv4_post(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert _error(request).code == "IncompleteSignature"


def test_sigv4_other_host_is_auth_failure() -> None:
    assert _error(_replace(sigv4_post(), host="evil.example")).code == "AuthFailure"


@pytest.mark.parametrize("skew", [timedelta(minutes=16), -timedelta(minutes=16), timedelta(days=2)])
def test_sigv4_skew_over_15_minutes_is_request_expired(skew: timedelta) -> None:
    error = _error(sigv4_post(), SIGNED_AT + skew)
    assert (error.code, error.status) == ("RequestExpired", 400)


@pytest.mark.parametrize("skew", [timedelta(minutes=14), -timedelta(minutes=14)])
def test_sigv4_skew_under_15_minutes_is_accepted(skew: timedelta) -> None:
    assert verify_request(sigv4_post(), lookup, SIGNED_AT + skew).signature_version == 4


def test_sigv4_missing_date_is_incomplete_signature() -> None:
    request = sigv4_post()
    headers = {k: v for k, v in request.headers.items() if k.lower() != "x-amz-date"}
    assert _error(_replace(request, headers=headers)).code == "IncompleteSignature"


def _with_authorization(value: str) -> SignedRequest:
    request = sigv4_post()
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    return _replace(request, headers={**headers, "Authorization": value})


SCOPE = f"{ACCESS_KEY}/20261121/eu-west-1/ec2/aws4_request"


@pytest.mark.parametrize(
    "authorization",
    [
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA256 ",
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host;x-amz-date",
        f"AWS4-HMAC-SHA256 SignedHeaders=host;x-amz-date, Signature={'0' * 64}",
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261121/eu-west-1, SignedHeaders=host, Signature=00",
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=x-amz-date, Signature={'0' * 64}",
        f"AWS4-HMAC-SHA256 Credential={SCOPE} SignedHeaders=host Signature={'0' * 64}",
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, Credential={SCOPE}, SignedHeaders=host, Signature={'0' * 64}",
        "AWS4-HMAC-SHA1 Credential=x, SignedHeaders=host, Signature=y",
        "Basic QUtJRDpzZWNyZXQ=",
        "=,=,=",
    ],
    ids=[
        "algorithm-only",
        "algorithm-and-space",
        "no-signature",
        "no-credential",
        "short-credential-scope",
        "host-not-signed",
        "no-commas",
        "duplicate-credential",
        "wrong-algorithm",
        "basic-auth",
        "garbage",
    ],
)
def test_malformed_authorization_is_incomplete_signature(authorization: str) -> None:
    error = _error(_with_authorization(authorization))
    assert (error.code, error.status) == ("IncompleteSignature", 400)


def test_non_hex_signature_is_auth_failure() -> None:
    request = _with_authorization(
        f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders=host;x-amz-date, Signature=ü{'z' * 63}"
    )
    assert _error(request).code == "AuthFailure"


def test_credential_date_other_than_request_date_is_auth_failure() -> None:
    request = _with_authorization(
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20261120/eu-west-1/ec2/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}"
    )
    assert _error(request).code == "AuthFailure"


def test_no_authentication_at_all() -> None:
    request = SignedRequest("GET", HOST, "/", "Action=DescribeRegions&Version=2016-11-15", {}, b"")
    error = _error(request)
    assert (error.code, error.status) == ("MissingAuthenticationToken", 401)


def test_rotated_secret_is_not_served_from_the_signing_key_cache() -> None:
    request = sigv4_post()
    assert verify_request(request, lookup, SIGNED_AT).access_key == ACCESS_KEY
    with pytest.raises(SignatureError) as info:
        verify_request(request, {ACCESS_KEY: "rotated-secret"}.get, SIGNED_AT)
    assert info.value.code == "AuthFailure"


# --------------------------------------------------------------------------- SigV4 presigned


def test_presigned_is_accepted() -> None:
    identity = verify_request(presigned(), lookup, SIGNED_AT + timedelta(seconds=200))
    assert identity == SignedIdentity(ACCESS_KEY, "ap-south-1", "ec2", 4)


def test_presigned_past_expiry_is_request_expired() -> None:
    assert _error(presigned(expires=300), SIGNED_AT + timedelta(seconds=301)).code == "RequestExpired"


def test_presigned_from_the_future_is_request_expired() -> None:
    assert _error(presigned(), SIGNED_AT - timedelta(minutes=16)).code == "RequestExpired"


def test_presigned_tampered_query_is_auth_failure() -> None:
    request = presigned()
    tampered = request.query_string.replace("tag%3AName", "tag%3AOther")
    assert tampered != request.query_string
    assert _error(_replace(request, query_string=tampered)).code == "AuthFailure"


def test_presigned_with_added_body_is_auth_failure() -> None:
    request = presigned()
    assert _error(_replace(request, body=b"Action=TerminateInstances&InstanceId.1=i-1")).code == "AuthFailure"


@pytest.mark.parametrize("dropped", ["X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders"])
def test_presigned_missing_parameter_is_incomplete_signature(dropped: str) -> None:
    request = presigned()
    query = "&".join(p for p in request.query_string.split("&") if not p.startswith(dropped + "="))
    assert _error(_replace(request, query_string=query)).code == "IncompleteSignature"


# --------------------------------------------------------------------------- SigV2

V2_PARAMS = {"Action": "DescribeInstances", "Version": "2016-11-15", "InstanceId.1": "i-1 2/3+4"}


def _timestamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("algorithm", ["HmacSHA256", "HmacSHA1"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sigv2_is_accepted(algorithm: str, method: str) -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)}, method=method, algorithm=algorithm)
    identity = verify_request(v2_request(params, method), lookup, SIGNED_AT + timedelta(minutes=5))
    assert identity == SignedIdentity(ACCESS_KEY, None, None, 2)


def test_sigv2_with_expires_in_the_future_is_accepted() -> None:
    params = sign_v2({**V2_PARAMS, "Expires": _timestamp(SIGNED_AT + timedelta(hours=1))})
    assert verify_request(v2_request(params), lookup, SIGNED_AT).signature_version == 2


def test_sigv2_with_expires_in_the_past_is_request_expired() -> None:
    params = sign_v2({**V2_PARAMS, "Expires": _timestamp(SIGNED_AT - timedelta(seconds=1))})
    assert _error(v2_request(params)).code == "RequestExpired"


@pytest.mark.parametrize("skew", [timedelta(minutes=16), -timedelta(minutes=16)])
def test_sigv2_skewed_timestamp_is_request_expired(skew: timedelta) -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)})
    assert _error(v2_request(params), SIGNED_AT + skew).code == "RequestExpired"


def test_sigv2_wrong_secret_is_auth_failure() -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)}, secret="nope")
    assert _error(v2_request(params)).code == "AuthFailure"


def test_sigv2_unknown_key_is_auth_failure() -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT), "AWSAccessKeyId": "AKIDUNKNOWN"})
    assert _error(v2_request(params)).code == "AuthFailure"


def test_sigv2_tampered_parameter_is_auth_failure() -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)})
    assert _error(v2_request({**params, "InstanceId.1": "i-other"})).code == "AuthFailure"


def test_sigv2_signed_for_get_replayed_as_post_is_auth_failure() -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)}, method="GET")
    assert _error(v2_request(params, "POST")).code == "AuthFailure"


@pytest.mark.parametrize(
    "change",
    [
        {"SignatureVersion": "1"},
        {"SignatureMethod": "HmacMD5"},
        {"Expires": "2026-11-21T11:00:00Z"},  # both Timestamp and Expires
        {"Timestamp": "yesterday"},
    ],
    ids=["version-1", "md5", "timestamp-and-expires", "bad-timestamp"],
)
def test_sigv2_malformed_is_incomplete_signature(change: dict[str, str]) -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)})
    assert _error(v2_request({**params, **change})).code == "IncompleteSignature"


def test_sigv2_params_given_by_caller_are_used() -> None:
    params = sign_v2({**V2_PARAMS, "Timestamp": _timestamp(SIGNED_AT)}, method="POST")
    request = SignedRequest("POST", HOST, "/", "", {}, b"")
    assert verify_request(request, lookup, SIGNED_AT, params=params).access_key == ACCESS_KEY
