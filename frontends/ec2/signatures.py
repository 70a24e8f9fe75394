"""Verification of AWS request signatures: SigV4 (Authorization header or presigned query) and SigV2.

Pure functions over a small frozen `SignedRequest`; the frontend builds one from the HTTP request with the
path and query string exactly as they arrived on the wire (still percent-encoded) and `host` as the client
signed it (the public host, not a rewritten upstream one).

Error codes follow EC2, not IAM/S3: EC2's error list has no `SignatureDoesNotMatch`; an unknown access key
and a wrong signature both get `AuthFailure` (401, "AWS was not able to validate the provided access
credentials"), so a caller cannot probe which keys exist. Malformed or incomplete auth gets
`IncompleteSignature` (400), no auth at all `MissingAuthenticationToken` (401), a request more than 15
minutes off `now` (either way) or a presigned URL past its expiry `RequestExpired` (400).

Payload integrity: SigV4 signs the body's SHA-256 (botocore does so for presigned EC2 URLs too);
`UNSIGNED-PAYLOAD` (header `X-Amz-Content-Sha256`, or S3-style presigning) is accepted only for an empty
body, because EC2 Query parameters in an unsigned body would be unauthenticated.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import quote, unquote_plus

from frontends.ec2.query import QueryError, parse_form, parse_query_string

__all__ = [
    "MAX_SKEW",
    "SignatureError",
    "SignedIdentity",
    "SignedRequest",
    "verify_request",
]

MAX_SKEW: Final = timedelta(minutes=15)
_ALGORITHM: Final = "AWS4-HMAC-SHA256"
_UNSIGNED: Final = "UNSIGNED-PAYLOAD"
_MAX_PRESIGN_EXPIRES: Final = 7 * 24 * 3600  # AWS's limit for X-Amz-Expires
_AMZ_DATE_RE: Final = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)
_HEX64_RE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_UNRESERVED_RE: Final = re.compile(r"[A-Za-z0-9_.~-]*", re.ASCII)
_AUTH_FAILURE: Final = "AWS was not able to validate the provided access credentials"
_PRESIGN_PARAMS: Final = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)

LookupSecret = Callable[[str], str | None]


class SignatureError(Exception):
    """Authentication failed; `code`/`status` are what EC2 sends back."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _auth_failure() -> SignatureError:
    return SignatureError("AuthFailure", _AUTH_FAILURE, 401)


def _incomplete(message: str) -> SignatureError:
    return SignatureError("IncompleteSignature", message, 400)


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What signature verification needs from an HTTP request, nothing more."""

    method: str
    host: str  # as the client signed it, e.g. "ec2.example.com:8773"
    path: str  # raw, still percent-encoded, without the query
    query_string: str  # raw, still percent-encoded, without "?"
    headers: Mapping[str, str]  # case-insensitive lookup is not assumed: names are folded once below
    body: bytes = b""
    _lower_headers: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_lower_headers", {k.lower(): v for k, v in self.headers.items()})

    def header(self, name: str) -> str | None:
        """Header value by lower-case name."""
        return self._lower_headers.get(name)


@dataclass(frozen=True, slots=True)
class SignedIdentity:
    """Who signed the request; region/service come from the SigV4 credential scope (None for SigV2)."""

    access_key: str
    region: str | None
    service: str | None
    signature_version: int


# --------------------------------------------------------------------------- shared helpers


def _uri_encode(text: str) -> str:
    """AWS URI-encoding: unreserved characters kept, everything else %XX upper-case, space as %20.

    PERF: most keys and values are unreserved already; one regex match spares them ``quote``.
    """
    if _UNRESERVED_RE.fullmatch(text):
        return text
    return _quoted(text) if len(text) <= 256 else quote(text, safe="-_.~")


@functools.lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    """PERF: what a client repeats (its credential scope, its path) is encoded once per worker."""
    return quote(text, safe="-_.~")


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 dot-segment removal plus collapsing of empty segments, as AWS canonicalises paths."""
    if not path:
        return "/"
    kept: list[str] = []
    for segment in path.split("/"):
        if not segment or segment == ".":
            continue
        if segment == "..":
            if kept:
                kept.pop()
        else:
            kept.append(segment)
    first = "/" if path.startswith("/") else ""
    last = "/" if path.endswith("/") and kept else ""
    return first + "/".join(kept) + last


def _query_pairs(query_string: str) -> list[tuple[str, str]]:
    """Decoded (key, value) pairs of a raw query string, `+` as a space as the parser reads it.

    SigV4 clients encode a literal plus as %2B; libcloud sends spaces as `+` but signs them as %20.
    """
    pairs = []
    for part in query_string.split("&"):
        if part:
            key, _, value = part.partition("=")
            if "%" in part or "+" in part:
                key, value = unquote_plus(key), unquote_plus(value)
            pairs.append((key, value))
    return pairs


def _canonical_query(pairs: list[tuple[str, str]]) -> str:
    encoded = sorted((_uri_encode(k), _uri_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _compare(expected: bytes, provided: bytes) -> bool:
    return hmac.compare_digest(expected, provided)


def _check_skew(when: datetime, now: datetime) -> None:
    if abs(now - when) > MAX_SKEW:
        raise SignatureError("RequestExpired", f"Request has expired. Request time {when:%Y%m%dT%H%M%SZ}.")


def _aware(now: datetime) -> datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


# --------------------------------------------------------------------------- SigV4

_KEY_CACHE: OrderedDict[tuple[bytes, str, str, str], bytes] = OrderedDict()
_KEY_CACHE_SIZE: Final = 4096
_KEY_LOCK = threading.Lock()


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the SigV4 signing key, cached per (secret hash, date, region, service).

    PERF: derivation is four HMACs (~70% of a verification); the cache makes repeat clients cost one HMAC.
    The secret itself is never a cache key, only its SHA-256.
    """
    cache_key = (hashlib.sha256(secret.encode("utf-8")).digest(), date, region, service)
    with _KEY_LOCK:
        key = _KEY_CACHE.get(cache_key)
        if key is not None:
            _KEY_CACHE.move_to_end(cache_key)
            return key
    key = hmac.new(f"AWS4{secret}".encode(), date.encode("utf-8"), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    with _KEY_LOCK:
        _KEY_CACHE[cache_key] = key
        if len(_KEY_CACHE) > _KEY_CACHE_SIZE:
            _KEY_CACHE.popitem(last=False)
    return key


def _parse_credential(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts[:4]):
        raise _incomplete(f"Credential must be AK/date/region/service/aws4_request: {credential[:200]}")
    access_key, date, region, service, _ = parts
    if not (len(date) == 8 and date.isascii() and date.isdigit()):
        raise _incomplete(f"Invalid credential date {date[:20]}.")
    return access_key, date, region, service


def _parse_amz_date(value: str) -> datetime:
    if not _AMZ_DATE_RE.fullmatch(value):
        raise _incomplete(f"Invalid X-Amz-Date {value[:40]}; expected format YYYYMMDD'T'HHMMSS'Z'.")
    try:  # PERF: the format is fixed by the regex; strptime costs ten times the slicing
        return datetime(
            int(value[:4]), int(value[4:6]), int(value[6:8]), int(value[9:11]), int(value[11:13]),
            int(value[13:15]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise _incomplete(f"Invalid X-Amz-Date {value[:40]}.") from None


def _canonical_headers(request: SignedRequest, signed_headers: str) -> str:
    names = signed_headers.split(";")
    if "host" not in names:
        raise _incomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")
    lines = []
    for name in names:
        value = request.host if name == "host" else request.header(name) or ""
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "".join(lines)


def _verify_v4(
    request: SignedRequest,
    lookup_secret: LookupSecret,
    *,
    credential: str,
    signed_headers: str,
    signature: str,
    amz_date: str,
    query: str,
    payload_hashes: tuple[str, ...],
) -> SignedIdentity:
    """Check a SigV4 signature; any of `payload_hashes` may have been signed (presigned URLs vary)."""
    access_key, date, region, service = _parse_credential(credential)
    secret = lookup_secret(access_key)
    if secret is None:
        raise _auth_failure()
    if amz_date[:8] != date:
        raise _auth_failure()  # credential scope date differs from the request date
    head = "\n".join(
        (
            request.method.upper(),
            quote(_remove_dot_segments(request.path), safe="/~"),
            query,
            _canonical_headers(request, signed_headers),
            signed_headers,
            "",
        )
    )
    scope = f"{_ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/aws4_request\n"
    key = _signing_key(secret, date, region, service)
    provided = (signature if _HEX64_RE.fullmatch(signature) else "").encode("ascii")
    matched = False
    for payload_hash in payload_hashes:
        canonical_request = head + payload_hash
        string_to_sign = scope + hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()
        expected = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        matched |= _compare(expected.encode("ascii"), provided)
    if not matched:
        raise _auth_failure()
    return SignedIdentity(access_key, region, service, 4)


def _split_authorization(value: str) -> dict[str, str]:
    """Parse `Credential=..., SignedHeaders=..., Signature=...` (after the algorithm) into a dict."""
    fields: dict[str, str] = {}
    for part in value.split(","):
        name, sep, content = part.strip().partition("=")
        if not sep or not name:
            raise _incomplete(f"Authorization header is malformed near '{part.strip()[:60]}'.")
        if name in fields:
            raise _incomplete(f"Authorization header has '{name[:40]}' more than once.")
        fields[name] = content
    missing = [n for n in ("Credential", "SignedHeaders", "Signature") if n not in fields]
    if missing:
        raise _incomplete(" ".join(f"Authorization header requires '{n}' parameter." for n in missing))
    return fields


def _verify_v4_header(
    request: SignedRequest, authorization: str, lookup_secret: LookupSecret, now: datetime
) -> SignedIdentity:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm != _ALGORITHM:
        raise _incomplete(f"Unsupported Authorization type {algorithm[:40]}.")
    fields = _split_authorization(rest)
    amz_date_header = request.header("x-amz-date")
    if amz_date_header is not None:
        amz_date = amz_date_header.strip()
        when = _parse_amz_date(amz_date)
    else:
        date_header = request.header("date")
        if date_header is None:
            raise _incomplete("Authorization header requires either a 'X-Amz-Date' or a 'Date' header.")
        try:
            when = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            raise _incomplete(f"Invalid Date header {date_header[:60]}.") from None
        when = _aware(when).astimezone(UTC)
        amz_date = f"{when:%Y%m%dT%H%M%SZ}"
    _check_skew(when, now)
    body_hash = hashlib.sha256(request.body).hexdigest()
    claimed = request.header("x-amz-content-sha256")
    if claimed is None:
        payload_hash = body_hash
    elif claimed == _UNSIGNED:
        if request.body:
            raise _incomplete("UNSIGNED-PAYLOAD is not accepted for a request with a body.")
        payload_hash = claimed
    elif claimed != body_hash:
        raise _auth_failure()  # body altered after signing, or a wrong claim
    else:
        payload_hash = claimed
    return _verify_v4(
        request,
        lookup_secret,
        credential=fields["Credential"],
        signed_headers=fields["SignedHeaders"],
        signature=fields["Signature"],
        amz_date=amz_date,
        query=_canonical_query(_query_pairs(request.query_string)),
        payload_hashes=(payload_hash,),
    )


def _verify_v4_presigned(
    request: SignedRequest, pairs: list[tuple[str, str]], lookup_secret: LookupSecret, now: datetime
) -> SignedIdentity:
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in _PRESIGN_PARAMS and key in params:
            raise _incomplete(f"Query parameter {key} is given more than once.")
        params[key] = value
    missing = [n for n in _PRESIGN_PARAMS if n not in params]
    if missing:
        raise _incomplete(" ".join(f"Presigned requests require the {n} parameter." for n in missing))
    if params["X-Amz-Algorithm"] != _ALGORITHM:
        raise _incomplete(f"Unsupported X-Amz-Algorithm {params['X-Amz-Algorithm'][:40]}.")
    expires_text = params["X-Amz-Expires"]
    if not (expires_text.isascii() and expires_text.isdigit() and len(expires_text) <= 7):
        raise _incomplete(f"X-Amz-Expires must be a number of seconds, not {expires_text[:20]}.")
    expires = int(expires_text)
    if not 1 <= expires <= _MAX_PRESIGN_EXPIRES:
        raise _incomplete(f"X-Amz-Expires must be between 1 and {_MAX_PRESIGN_EXPIRES} seconds.")
    amz_date = params["X-Amz-Date"]
    when = _parse_amz_date(amz_date)
    body_hash = hashlib.sha256(request.body).hexdigest()
    if now < when - MAX_SKEW or now > when + timedelta(seconds=expires):
        raise SignatureError("RequestExpired", "Request has expired.")
    return _verify_v4(
        request,
        lookup_secret,
        credential=params["X-Amz-Credential"],
        signed_headers=params["X-Amz-SignedHeaders"],
        signature=params["X-Amz-Signature"],
        amz_date=amz_date,
        query=_canonical_query([(k, v) for k, v in pairs if k != "X-Amz-Signature"]),
        # botocore's EC2 presigner signs the body hash; S3-style presigners sign UNSIGNED-PAYLOAD, which
        # is only accepted with no body, so a body is never unauthenticated.
        payload_hashes=(body_hash,) if request.body else (body_hash, _UNSIGNED),
    )


# --------------------------------------------------------------------------- SigV2

_V2_DIGESTS: Final = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}


def _parse_iso(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _incomplete(f"Invalid timestamp {value[:40]}; expected ISO 8601.") from None
    return _aware(parsed)


def _verify_v2(
    request: SignedRequest, params: Mapping[str, str], lookup_secret: LookupSecret, now: datetime
) -> SignedIdentity:
    version = params.get("SignatureVersion")
    if version != "2":
        raise _incomplete(f"Signature version {str(version)[:10]} is not supported; use 2 or 4.")
    access_key, signature = params.get("AWSAccessKeyId"), params.get("Signature")
    if not access_key or not signature:
        raise _incomplete("SignatureVersion 2 requires the AWSAccessKeyId and Signature parameters.")
    digest = _V2_DIGESTS.get(params.get("SignatureMethod", ""))
    if digest is None:
        raise _incomplete("SignatureMethod must be HmacSHA256 or HmacSHA1.")
    timestamp, expires = params.get("Timestamp"), params.get("Expires")
    if (timestamp is None) == (expires is None):
        raise _incomplete("SignatureVersion 2 requires exactly one of the Timestamp and Expires parameters.")
    if timestamp is not None:
        _check_skew(_parse_iso(timestamp), now)
    elif now > _parse_iso(expires or ""):
        raise SignatureError("RequestExpired", "Request has expired.")
    secret = lookup_secret(access_key)
    if secret is None:
        raise _auth_failure()
    canonical = _canonical_query([(k, v) for k, v in params.items() if k != "Signature"])
    string_to_sign = "\n".join((request.method.upper(), request.host.lower(), request.path or "/", canonical))
    expected = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), digest).digest()
    try:
        # NOTE: some old clients leave `+` unescaped in the query, which decodes to a space.
        provided = base64.b64decode(signature.replace(" ", "+"), validate=True)
    except (binascii.Error, ValueError):
        provided = b""
    if not _compare(expected, provided):
        raise _auth_failure()
    return SignedIdentity(access_key, None, None, 2)


# --------------------------------------------------------------------------- entry point


def _request_params(request: SignedRequest) -> dict[str, str]:
    """Decoded query + form-body parameters (form wins, as EC2 reads both), for SigV2 detection."""
    params = parse_query_string(request.query_string)
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if request.body and content_type == "application/x-www-form-urlencoded":
        params.update(parse_form(request.body))
    return params


def verify_request(
    request: SignedRequest,
    lookup_secret: LookupSecret,
    now: datetime,
    params: Mapping[str, str] | None = None,
) -> SignedIdentity:
    """Check the request's AWS signature and return who signed it, or raise SignatureError.

    `params` are the already decoded query + form parameters, if the caller has them (saves a parse);
    they are only used for SigV2. `now` is injected so tests and the server's clock agree.
    """
    now = _aware(now)
    authorization = request.header("authorization")
    if authorization is not None:
        return _verify_v4_header(request, authorization, lookup_secret, now)
    if "X-Amz-" in request.query_string:
        pairs = _query_pairs(request.query_string)
        if any(k in ("X-Amz-Algorithm", "X-Amz-Signature", "X-Amz-Credential") for k, _ in pairs):
            return _verify_v4_presigned(request, pairs, lookup_secret, now)
    if params is None:
        try:
            params = _request_params(request)
        except QueryError as exc:
            raise SignatureError(exc.code, exc.message, exc.status) from None
    if "Signature" in params or "SignatureVersion" in params or "AWSAccessKeyId" in params:
        return _verify_v2(request, params, lookup_secret, now)
    raise SignatureError("MissingAuthenticationToken", "Request is missing Authentication Token", 401)
