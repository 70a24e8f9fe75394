"""The EC2 Query endpoint at ``/``: read, authenticate, parse, dispatch, render.

Every failure leaves as EC2's ``<Response><Errors>`` document with EC2's code and status; an
unexpected exception is logged and answered ``InternalError`` without a traceback. A fault of the
gateway's own store (the exception types the gateway passes in ``store_faults``) is ``ServiceUnavailable``;
every 503 carries ``Retry-After`` (a backend account's open circuit breaker: its remaining cool-down; else
``retry_after``). A caller over its rate (``limiter``, translator/ratelimit.py) is answered
``RequestLimitExceeded`` (503, as AWS does) once its signature is verified, with the seconds to wait.

Bodies may come gzip-compressed (``Content-Encoding: gzip``): they are inflated up to ``max_body_bytes``
(413 past it); any other content coding is refused with 415 before the body is read.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import falcon

from frontends.ec2 import service, sts
from frontends.ec2.actions import ACTIONS, Call
from frontends.ec2.errors import SERVICE_UNAVAILABLE, EC2Error, ec2_error
from frontends.ec2.ids import ID_FORMS, public_id
from frontends.ec2.query import QueryError, parse_form, parse_params, parse_query_string
from frontends.ec2.render import precompile, render_error, render_response
from frontends.ec2.signatures import SignatureError, SignedRequest, verify_request
from translator.errors import BackendUnavailable, CloudgateError, Throttled
from translator.identity import Identity, authorize
from translator.model import Principal
from translator.ratelimit import RateLimiter, retry_after
from translator.translator import Translator

log = logging.getLogger("cloudgate.ec2")
XML = "text/xml;charset=UTF-8"


@dataclass(frozen=True, slots=True)
class EC2Options:
    max_body_bytes: int = 1_048_576
    public_endpoint: str = ""
    trusted_proxies: tuple[str, ...] = ()
    #: exceptions meaning the gateway's own store is down (the gateway passes Redis's): ``ServiceUnavailable``
    store_faults: tuple[type[Exception], ...] = ()
    #: seconds a 503 asks the client to wait
    retry_after: int = 2
    #: request rates per access key and tenant (None: unlimited)
    limiter: RateLimiter | None = None


#: STS actions answered on the EC2 endpoint, as metrics label them
STS_ACTIONS = ("GetCallerIdentity",)
#: what a request's action is labelled when it names no action this frontend knows
OTHER_ACTION = "other"


def action_names() -> tuple[str, ...]:
    """Every action label this frontend sets (EC2's model, then STS's): metrics accept no others."""
    return (*service.action_names(), *(f"sts:{a}" for a in STS_ACTIONS))


class EC2Frontend:
    """One falcon resource for GET and POST ``/``."""

    def __init__(self, translator: Translator, identity: Identity, options: EC2Options) -> None:
        self.translator = translator
        self.identity = identity
        self.options = options
        self.public_host = signed_host_of(options.public_endpoint) if options.public_endpoint else ""
        self._store_log = ThrottledLog(log, 10.0)
        # PERF: walk the whole model once per worker at start-up, never per request.
        precompile(service.get_model())

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._handle(req, resp)

    def _signed_host(self, req: falcon.Request) -> str:
        if self.public_host:
            return self.public_host
        forwarded = req.get_header("X-Forwarded-Host")
        if forwarded and req.remote_addr in self.options.trusted_proxies:
            return forwarded.split(",")[0].strip()
        return req.get_header("Host") or ""

    def _endpoint(self, req: falcon.Request) -> str:
        """The URL clients reach this gateway at: ``public_endpoint``, else this request's scheme and host."""
        if self.options.public_endpoint:
            return self.options.public_endpoint.rstrip("/")
        return f"{req.scheme}://{self._signed_host(req)}"

    def _read_body(self, req: falcon.Request) -> tuple[bytes, bytes]:
        """The body as sent (what SigV4's payload hash covers) and as the form to parse (inflated), bounded.

        An unknown content coding is refused before anything is read.
        """
        limit = self.options.max_body_bytes
        coding = _content_coding(req)
        length = req.content_length
        if length is not None and length > limit:
            raise EC2Error("RequestEntityTooLarge", f"The request body exceeds {limit} bytes.", 413)
        body = req.bounded_stream.read(limit + 1)
        if len(body) > limit:
            raise EC2Error("RequestEntityTooLarge", f"The request body exceeds {limit} bytes.", 413)
        return body, (_inflate(body, limit) if body and coding == "gzip" else body)

    def _handle(self, req: falcon.Request, resp: falcon.Response) -> None:
        request_id = new_request_id()
        req.context.frontend = "ec2"
        req.context.sts = False
        resp.content_type = XML
        try:
            answer = self._dispatch(req, request_id)
            if isinstance(answer, bytes):
                resp.data = answer
            else:  # PERF: a kept answer goes out in its parts, never copied into one (sent as they are by gunicorn)
                resp.stream, resp.content_length = answer, sum(len(part) for part in answer)
        except EC2Error as exc:
            self._error(req, resp, exc.code, exc.message, exc.status, request_id)
        except (QueryError, SignatureError) as exc:
            self._error(req, resp, exc.code, exc.message, exc.status, request_id)
        except Throttled as exc:
            code, status = ec2_error(exc)
            self._error(req, resp, code, exc.message, status, request_id, retry_after(exc.retry_after))
        except CloudgateError as exc:
            code, status = ec2_error(exc)
            self._error(req, resp, code, self._public_message(exc), status, request_id, _known_wait(exc))
        except self.options.store_faults as exc:
            self._store_log.warning("EC2 request %s: the gateway's Redis failed: %s", request_id, exc)
            code, status, message = SERVICE_UNAVAILABLE
            self._error(req, resp, code, message, status, request_id)
        except Exception:
            log.exception("EC2 request %s failed", request_id)
            self._error(req, resp, "InternalError", "An internal error has occurred.", 500, request_id)

    def _error(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        code: str,
        message: str,
        status: int,
        request_id: str,
        wait: str = "",
    ) -> None:
        resp.status = status
        if status == 503:
            resp.set_header("Retry-After", wait or str(self.options.retry_after))
        resp.data = (sts.error if req.context.sts else _ec2_error)(code, message, request_id, status)

    def _dispatch(self, req: falcon.Request, request_id: str) -> bytes | list[bytes]:
        body, form = self._read_body(req)
        query_string = req.query_string
        if len(query_string) > self.options.max_body_bytes:
            raise EC2Error(
                "RequestEntityTooLarge", f"The request query exceeds {self.options.max_body_bytes} bytes.", 413
            )
        params = parse_query_string(query_string) if query_string else {}
        content_type = (req.content_type or "").split(";", 1)[0].strip().lower()
        if form and content_type in ("application/x-www-form-urlencoded", ""):
            params.update(parse_form(form))
        found: dict[str, tuple[bytes | None, Any]] = {}
        # A describe may be answered as last time (translator/read_cache.py): its key names the caller's access key
        # and what it asks, and the lookup of the caller's secret also checks the kept answer, in one round trip.
        action = _param(params, "Action")
        operation = service.find_operation(action or "")
        handler = ACTIONS.get(operation.name) if operation else None
        reusable = handler is not None and handler.reusable and bool(self.translator.read_cache.capacity)
        endpoint = self._endpoint(req)

        def answer_key(access_key: str) -> tuple[Any, ...]:
            assert operation is not None
            return (access_key, endpoint, operation.name, _request_params(params))

        def lookup_secret(access_key: str) -> str | None:
            # PERF: the verifier's lookup is kept for the principal below: a Redis read at most per request.
            if reusable:
                raw, kept = self.translator.read_cache.lookup(answer_key(access_key), Identity.user_guard(access_key))
            else:
                raw, kept = self.translator.read_cache.guarded(Identity.user_guard(access_key)), None
            found[access_key] = (raw, kept)
            user = Identity.user_from(access_key, raw)
            return user.secret if user else None

        signed = verify_request(
            SignedRequest(
                method=req.method,
                host=self._signed_host(req),
                path=req.env.get("RAW_URI", req.path).split("?", 1)[0] or "/",
                query_string=query_string,
                headers=req.headers,
                body=body,
            ),
            lookup_secret,
            datetime.now(UTC),
            params,
        )
        raw, kept = found.get(signed.access_key, (None, None))
        user = Identity.user_from(signed.access_key, raw)
        if user is None:  # never verified against a stored secret
            raise EC2Error("AuthFailure", "AWS was not able to validate the provided access credentials", 401)
        principal = user.principal()
        if self.options.limiter is not None:
            self.options.limiter.check(user.access_key, principal.tenant)
        if signed.service == "sts":
            req.context.sts = True
            return self._sts(req, params, principal, user.access_key, request_id)
        if not action:
            raise EC2Error("MissingAction", "The request must contain the parameter Action.")
        req.context.action = operation.name if operation else OTHER_ACTION
        if operation is None:
            raise EC2Error("InvalidAction", f"The action {action} is not valid for this web service.")
        if handler is None:
            raise EC2Error("UnsupportedOperation", f"The action {operation.name} is not supported by this gateway.")
        region = signed.region
        if region is not None and region not in {a.region for a in self.translator.regions(principal)}:
            raise EC2Error("AuthFailure", f"Credential should be scoped to a valid region, not '{region}'.", 401)
        call = Call(
            translator=self.translator,
            principal=principal,
            region=region or self.translator.account(principal).region,
            request_id=request_id,
            account_id=self.translator.tenant_of(principal).account_id,
            endpoint=endpoint,
        )
        if handler.mutating:
            _may_write(principal)

        def answer() -> bytes:
            args = parse_params(operation, params)
            if args.get("DryRun"):
                _dry_run(call, handler.mutating)
            return render_response(operation, handler.fn(call, args), request_id)

        if not reusable:
            return answer()
        scope = (call.region, call.account_id)
        if kept is not None and kept[0] == scope:  # the same user record, the same versions: last time's answer
            head, tail = kept[1], kept[2]
        else:
            _, head, tail = self.translator.read_cache.build(
                answer_key(user.access_key),
                lambda: (scope, *_split(answer(), request_id)),
                _size,
                guarded=raw,
                accept=lambda value: value[0] == scope,  # a revalidated answer, of the same region and account
            )
        return [head, request_id.encode(), tail]

    def _public_message(self, exc: CloudgateError) -> str:
        """A canonical error's message with gateway ids shown as the EC2 ids the client knows."""
        found = list(dict.fromkeys(_GATEWAY_ID.findall(exc.message)))
        if not found:
            return exc.message
        try:
            kinds = self.translator.kinds_of(found)
        except Exception:  # an error path must not fail on a lookup: fall back to the error's own kind
            kinds = [exc.kind] * len(found)
        names = {gid: public_id(kind, gid) or gid for gid, kind in zip(found, kinds, strict=True) if kind in ID_FORMS}
        return _GATEWAY_ID.sub(lambda m: names.get(m.group(0), m.group(0)), exc.message)

    def _sts(
        self, req: falcon.Request, params: dict[str, str], principal: Principal, access_key: str, request_id: str
    ) -> bytes:
        """STS on the same endpoint: only GetCallerIdentity, which any role may call."""
        action = _param(params, "Action")
        req.context.action = f"sts:{action}" if action in STS_ACTIONS else OTHER_ACTION
        if action != "GetCallerIdentity":
            raise EC2Error("InvalidAction", f"Could not find operation {action} for version 2011-06-15")
        account_id = self.translator.tenant_of(principal).account_id
        return sts.caller_identity(account_id, principal.user, access_key, request_id)


_GATEWAY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def signed_host_of(endpoint: str) -> str:
    """The Host a client signs for an endpoint URL: lower-case, without the scheme's default port."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host += f":{parts.port}"
    return host


#: Content-Encoding value -> how the body is read ("gzip" inflated, "" as is)
CONTENT_CODINGS: dict[str, str] = {"": "", "identity": "", "gzip": "gzip", "x-gzip": "gzip"}


def _content_coding(req: falcon.Request) -> str:
    """The body's one content coding we can undo; 415 for any other (the body is then never read)."""
    header = req.get_header("Content-Encoding")
    if not header:
        return ""
    codings = [c.strip().lower() for c in header.split(",")]
    undo = [CONTENT_CODINGS.get(c) for c in codings]
    if None in undo or sum(1 for u in undo if u) > 1:
        raise EC2Error(
            "UnsupportedMediaType", f"The content encoding {header[:64]!r} is not supported; use gzip or none.", 415
        )
    return next((u for u in undo if u), "")


def _inflate(body: bytes, limit: int) -> bytes:
    """A gzip body inflated, never past ``limit`` bytes (a small bomb must not cost memory)."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise EC2Error("MalformedQueryString", "The request body is not valid gzip data.") from None
    if len(data) > limit:
        raise EC2Error("RequestEntityTooLarge", f"The decompressed request body exceeds {limit} bytes.", 413)
    if not inflater.eof or inflater.unused_data:
        raise EC2Error("MalformedQueryString", "The request body is not one complete gzip stream.")
    return data


class ThrottledLog:
    """Logs a recurring failure (Redis down: every request fails alike) at most once per ``interval``."""

    def __init__(self, logger: logging.Logger, interval: float) -> None:
        self.logger = logger
        self.interval = interval
        self._lock = threading.Lock()
        self._next = 0.0
        self._skipped = 0

    def warning(self, message: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                self._skipped += 1
                return
            skipped, self._skipped, self._next = self._skipped, 0, now + self.interval
        suffix = f" ({skipped} more like it not logged)" if skipped else ""
        self.logger.warning(message + suffix, *args)


def new_request_id() -> str:
    """A version 4 UUID as EC2's request ids are. PERF: from the worker's PRNG (``uuid4`` reads the kernel's
    entropy each time); a request id names a request in logs, it guards nothing."""
    h = f"{random.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _ec2_error(code: str, message: str, request_id: str, status: int) -> bytes:
    return render_error(code, message, request_id)


#: parameters that authenticate a request (SigV4 presigned, SigV2) rather than say what it asks
_AUTH_PARAMS = frozenset(
    {"AWSAccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "Timestamp", "Expires", "SecurityToken"}
)


def _request_params(params: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """What a request asks, without how it was signed: two signings of one describe are one question."""
    return tuple(sorted((k, v) for k, v in params.items() if k not in _AUTH_PARAMS and not k.startswith("X-Amz-")))


def _split(body: bytes, request_id: str) -> tuple[bytes, bytes]:
    """An answer around its request id (rendered once, near its start), for another request's id to go in."""
    head, found, tail = body.partition(request_id.encode())
    assert found, "an EC2 answer names its request id"
    return head, tail


def _size(kept: tuple[Any, bytes, bytes]) -> int:
    return 64 + len(kept[1]) + len(kept[2])


def _known_wait(exc: CloudgateError) -> str:
    """The ``Retry-After`` a failure knows (an open breaker's cool-down), or "" for the frontend's default."""
    wait = exc.retry_after if isinstance(exc, BackendUnavailable) else None
    return "" if wait is None else retry_after(wait)


def _param(params: dict[str, str], name: str) -> str | None:
    """A top-level parameter, matched case-insensitively (old tools send ``action``)."""
    if name in params:
        return params[name]
    lower = name.lower()
    return next((v for k, v in params.items() if k.lower() == lower), None)


def _may_write(principal: Principal) -> None:
    """Refuse a write before looking at its parameters, as EC2's IAM check comes first."""
    try:
        authorize(principal, "write")
    except CloudgateError:
        raise EC2Error("UnauthorizedOperation", "You are not authorized to perform this operation.", 403) from None


def _dry_run(call: Call, mutating: bool) -> Any:
    if mutating:
        _may_write(call.principal)
    raise EC2Error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)
