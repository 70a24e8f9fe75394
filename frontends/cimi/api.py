"""The CIMI endpoint under ``/cimi``: authenticate, negotiate version and rendering, route, render.

Routes (every collection of the entry point has the same shape)::

    GET  /cimi/cloudEntryPoint                  the entry point (``/cimi`` and ``/cimi/`` too)
    GET  /cimi/<collection>[?$filter...]        a collection read;  POST: add a member
    GET  /cimi/<collection>/<id>                a member;  PUT: edit;  DELETE: delete;  POST: an action
    ...  /cimi/<collection>/<id>/<sub>[/...]     a member's sub-collections (a machine's volumes...)

Every failure leaves as our CIMI error document in the negotiated rendering, with the right status:
malformed input 400, no credentials 401 (``WWW-Authenticate: Basic``), a reader writing 403, a stale
``If-Match`` 412, a body over the limit 413, a content type we do not read 415, Redis or a backend down
503 with ``Retry-After``; an unexpected exception is logged and answered 500 without a traceback.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any

import falcon
import orjson

from frontends.cimi import codec, negotiation
from frontends.cimi.context import Ctx, Reply
from frontends.cimi.controller import Controller
from frontends.cimi.errors import CimiError, from_canonical
from frontends.cimi.expand import expand
from frontends.cimi.filter import FilterError
from frontends.cimi.query import QueryError, parse_query
from frontends.cimi.resources import REGISTRY
from frontends.cimi.resources.entry import entry_point
from translator import read_cache
from translator.errors import AuthFailure, CloudgateError
from translator.identity import Identity
from translator.model import Principal
from translator.ratelimit import RateLimiter
from translator.translator import Translator

log = logging.getLogger("cloudgate.cimi")

PREFIX = "/cimi"
_IDEMPOTENCY_KEY = re.compile(r"^[!-~]{1,128}$")
#: methods that carry a body we read
_WITH_BODY = frozenset({"POST", "PUT"})


@dataclass(frozen=True, slots=True)
class _Out:
    """A response as sent: kept as it is for a read answered again (translator/read_cache.py)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    content_type: str | None = None
    data: bytes = b""


def _out_size(out: _Out) -> int:
    return 256 + len(out.data)


@dataclass(frozen=True, slots=True)
class CimiOptions:
    max_body_bytes: int = 1_048_576
    public_endpoint: str = ""
    trusted_proxies: tuple[str, ...] = ()
    #: exceptions meaning the gateway's own store is down: 503
    store_faults: tuple[type[Exception], ...] = ()
    retry_after: int = 2
    #: request rates per access key and tenant (None: unlimited): over them, 429 with ``Retry-After``
    limiter: RateLimiter | None = None


class CimiFrontend:
    """A falcon sink for everything under ``/cimi``."""

    def __init__(self, translator: Translator, identity: Identity, options: CimiOptions) -> None:
        self.translator = translator
        self.identity = identity
        self.options = options
        self.controllers: dict[str, Controller] = {c.name: c for c in REGISTRY}
        for controller in REGISTRY:
            controller.register(translator)

    # -- falcon ------------------------------------------------------------------------------
    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        req.context.frontend = "cimi"
        version, media = negotiation.DEFAULT_VERSION, negotiation.JSON
        try:
            version = negotiation.version(req.get_header("CIMI-Specification-Version"))
            media = negotiation.rendering(req.get_header("Accept"), req.content_type)
            if req.method == "GET":
                out = self._read(req, version, media)
            else:
                out = self._output(req, self._handle(req, version, self._authenticate(req)), version, media)
        except CimiError as exc:
            out = self._output(req, _error_reply(exc), version, media)
        except CloudgateError as exc:
            out = self._output(req, _error_reply(from_canonical(exc)), version, media)
        except (codec.CodecError, QueryError, FilterError) as exc:
            out = self._output(req, _error_reply(CimiError(400, str(exc))), version, media)
        except self.options.store_faults as exc:
            log.warning("%s %s: Redis failed: %s", req.method, req.path, exc)
            error = CimiError(503, "The service is temporarily unavailable; retry later.")
            out = self._output(req, _error_reply(error), version, media)
        except Exception:
            log.exception("CIMI %s %s failed", req.method, req.path)
            error = CimiError(500, "The gateway failed to handle the request.")
            out = self._output(req, _error_reply(error), version, media)
        resp.status = falcon.code_to_http_status(out.status)
        for name, value in out.headers:
            resp.set_header(name, value)
        if out.content_type is not None:
            resp.content_type = out.content_type
            resp.data = out.data

    def _read(self, req: falcon.Request, version: str, media: str) -> _Out:
        """A GET, answered as last time while the listings it read are unchanged (translator/read_cache.py); with
        Basic credentials the user record and the kept answer are checked in one round trip."""
        cache = self.translator.read_cache
        asked = (version, media, self._base(req), req.path, req.query_string)
        basic = None if req.get_header("X-Auth-Token") else self._basic(req)
        if basic is None:
            principal = self._authenticate(req)
            return cache.answer((principal, *asked), lambda: self._kept(req, version, media, principal), _out_size)
        key = ("basic", basic[0], *asked)
        try:
            principal, raw, kept = self.identity.authenticate_basic_kept(basic[0], basic[1], cache, key)
        except CloudgateError as exc:
            raise _unauthenticated(exc.message) from None
        self._admit(basic[0], principal)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        return cache.build(key, lambda: self._kept(req, version, media, principal), _out_size, guarded=raw)

    def _kept(self, req: falcon.Request, version: str, media: str, principal: Principal) -> _Out:
        reply = self._handle(req, version, principal)
        if reply.status != 200:
            read_cache.note_unversioned()  # only plain answers are kept
        return self._output(req, reply, version, media)

    def _output(self, req: falcon.Request, reply: Reply, version: str, media: str) -> _Out:
        """What goes back for ``reply``: status, headers, and the document in the negotiated rendering."""
        headers = [("CIMI-Specification-Version", negotiation.VERSION_HEADER[version])]
        if reply.status == 503 and "Retry-After" not in reply.headers:  # a breaker's cool-down is in the reply's
            headers.append(("Retry-After", str(self.options.retry_after)))
        headers += reply.headers.items()
        if reply.doc is None or reply.status == 204 or req.method == "HEAD":
            return _Out(reply.status, tuple(headers))
        if media == negotiation.XML:
            data = codec.render_xml(reply.doc, reply.type_name, version)
            return _Out(reply.status, tuple(headers), "application/xml; charset=utf-8", data)
        data = codec.render_json(reply.doc, version, reply.type_name or None)
        return _Out(reply.status, tuple(headers), "application/json", data)

    # -- requests ----------------------------------------------------------------------------
    def _handle(self, req: falcon.Request, version: str, principal: Principal) -> Reply:
        path = req.path[len(PREFIX) :]
        segments = [s for s in path.split("/") if s]
        method = "GET" if req.method == "HEAD" else req.method
        ctx = Ctx(
            principal=principal,
            version=version,
            base=self._base(req),
            translator=self.translator,
            documents=self.translator.documents,
            if_match=req.get_header("If-Match"),
            idempotency_key=_idempotency_key(req.get_header("Idempotency-Key")),
            resolve=self._resolve,
        )
        if not segments or segments == ["cloudEntryPoint"]:
            if method != "GET":
                raise CimiError(405, "The entry point is read-only.", headers={"Allow": "GET"})
            return Reply(200, entry_point(ctx, self.controllers), "CloudEntryPoint")
        controller = self.controllers.get(segments[0])
        if controller is None:
            raise CimiError(404, f"There is no collection '{segments[0][:64]}' here.")
        body = self._body(req, method)
        ctx.parse = lambda type_name: _parse(body, type_name)
        return self._route(ctx, controller, segments[1:], method, req.params)

    def _route(
        self,
        ctx: Ctx,
        controller: Controller,
        rest: list[str],
        method: str,
        params: dict[str, Any],
    ) -> Reply:
        if not rest:
            if method == "GET":
                reply = controller.list(ctx, parse_query(params))
                return self._expanded(ctx, reply, params)
            if method == "POST" and controller.create_type:
                return controller.add(ctx, ctx.parse(controller.create_type))
            allow = "GET, POST" if controller.create_type else "GET"
            raise CimiError(405, f"{method} is not allowed on a collection.", headers={"Allow": allow})
        rid = rest[0]
        if len(rest) > 1:
            query = parse_query(params) if method == "GET" else None
            return controller.sub(ctx, rid, rest[1:], method, query)
        if method == "GET":
            doc = controller.get(ctx, rid)
            reply = Reply(200, doc, controller.type_name, {"ETag": etag(doc)})
            return self._expanded(ctx, reply, params)
        if method in ("PUT", "DELETE"):
            self._check_if_match(ctx, controller, rid)
            if method == "DELETE":
                return controller.delete(ctx, rid)
            return controller.edit(ctx, rid, ctx.parse(controller.type_name))
        if method == "POST":
            action = ctx.parse("Action")
            return controller.act(ctx, rid, action_name(action), action)
        raise CimiError(405, f"{method} is not allowed here.", headers={"Allow": ", ".join(controller.allowed())})

    def _check_if_match(self, ctx: Ctx, controller: Controller, rid: str) -> None:
        """``If-Match``: the edit or delete happens only if the member is still as the client saw it."""
        wanted = ctx.if_match
        if not wanted or wanted.strip() == "*":
            return
        current = etag(controller.get(ctx, rid))
        if current not in [w.strip() for w in wanted.split(",")]:
            raise CimiError(412, "The resource has changed since it was read (If-Match).")

    def _expanded(self, ctx: Ctx, reply: Reply, params: dict[str, Any]) -> Reply:
        if reply.doc is not None and "$expand" in params:
            query = parse_query(params)
            expand(ctx, reply.doc, query)
        return reply

    def _resolve(self, ctx: Ctx, href: str) -> dict[str, Any]:
        """GET one of our hrefs as a document, as the caller (``$expand`` follows references with it)."""
        if not href.startswith(ctx.base + "/"):
            raise CimiError(404, "Not one of this service's resources.")
        segments = [s for s in href[len(ctx.base) :].split("/") if s]
        controller = self.controllers.get(segments[0]) if segments else None
        if controller is None:
            raise CimiError(404, "Not one of this service's resources.")
        reply = self._route(ctx, controller, segments[1:], "GET", {})
        if reply.doc is None:
            raise CimiError(404, "Nothing to expand.")
        return reply.doc

    def _body(self, req: falcon.Request, method: str) -> tuple[bytes, str] | None:
        """The request body and its rendering, bounded; its media type checked (415)."""
        if method not in _WITH_BODY:
            return None
        limit = self.options.max_body_bytes
        length = req.content_length
        if length is not None and length > limit:
            raise CimiError(413, f"The request body exceeds {limit} bytes.")
        coding = (req.get_header("Content-Encoding") or "identity").strip().lower()
        if coding != "identity":
            raise CimiError(415, f"Content-Encoding '{coding[:32]}' is not accepted here.")
        body = req.bounded_stream.read(limit + 1)
        if len(body) > limit:
            raise CimiError(413, f"The request body exceeds {limit} bytes.")
        if not body:
            return None
        media = negotiation.media_type(req.content_type)
        if media is None:
            raise CimiError(415, "Send application/json or application/xml.")
        return body, media

    def _authenticate(self, req: falcon.Request) -> Principal:
        """The caller, once its request is within its rate."""
        token = req.get_header("X-Auth-Token")
        if token:
            try:
                principal = self.identity.authenticate_token(token)
            except AuthFailure as exc:
                raise _unauthenticated(exc.message) from None
            return self._admit(f"token:{principal.user}", principal)
        key, secret = self._basic(req)
        try:
            principal = self.identity.authenticate_basic(key, secret)
        except CloudgateError as exc:
            raise _unauthenticated(exc.message) from None
        return self._admit(key, principal)

    def _admit(self, access_key: str, principal: Principal) -> Principal:
        """``Throttled`` (429) when the caller is over its rate."""
        if self.options.limiter is not None:
            self.options.limiter.check(access_key, principal.tenant)
        return principal

    @staticmethod
    def _basic(req: falcon.Request) -> tuple[str, str]:
        """The access key and secret of HTTP Basic credentials (401 when missing or malformed)."""
        header = req.get_header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or not value:
            raise _unauthenticated("This service needs HTTP Basic credentials: your access key and secret.")
        try:
            key, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _unauthenticated("The Basic credentials are malformed.") from None
        if not sep or not key:
            raise _unauthenticated("The Basic credentials are malformed.")
        return key, secret

    def _base(self, req: falcon.Request) -> str:
        if self.options.public_endpoint:
            return self.options.public_endpoint.rstrip("/") + PREFIX
        host = req.get_header("Host") or "localhost"
        scheme = req.scheme
        if req.remote_addr in self.options.trusted_proxies:
            host = (req.get_header("X-Forwarded-Host") or host).split(",")[0].strip()
            scheme = (req.get_header("X-Forwarded-Proto") or scheme).split(",")[0].strip()
        return f"{scheme}://{host}{PREFIX}"


def _parse(body: tuple[bytes, str] | None, type_name: str) -> dict[str, Any]:
    if body is None:
        raise CimiError(400, f"The request needs a {type_name} body.")
    return codec.parse(body[0], body[1], type_name)


def action_name(action: dict[str, Any]) -> str:
    """The action an Action body names, from either version's URI (or a bare name, as sloppy clients send)."""
    uri = action.get("action")
    if not isinstance(uri, str) or not uri:
        raise CimiError(400, "An Action needs an 'action' URI.")
    return uri.rstrip("/").rsplit("/", 1)[-1]


def etag(doc: dict[str, Any]) -> str:
    """A member's entity tag: a digest of what a client sees of it (operations and times included)."""
    return '"' + hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32] + '"'


def _idempotency_key(value: str | None) -> str:
    if value is None:
        return ""
    if not _IDEMPOTENCY_KEY.match(value):
        raise CimiError(400, "The Idempotency-Key must be 1 to 128 printable characters.")
    return value


def _unauthenticated(message: str) -> CimiError:
    return CimiError(401, message, headers={"WWW-Authenticate": 'Basic realm="cloudgate CIMI"'})


def _error_reply(exc: CimiError) -> Reply:
    doc = {"status": exc.status, "code": exc.code, "message": exc.message}
    return Reply(exc.status, doc, "Error", dict(exc.headers))
