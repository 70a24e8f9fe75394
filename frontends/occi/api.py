"""The OCCI endpoint under ``/occi`` (and the query interface at ``/.well-known/org/ogf/occi/-/``):
authenticate, negotiate the renderings, route, render.

Routes::

    /occi/-/                          the query interface: GET (Category filter), POST user mixins, DELETE them
    /occi/<kind>/                     compute, storage, network: GET (filters), POST create, DELETE (filtered) all
    /occi/<kind>/<id>                 GET, PUT (replace), POST (partial update, or ?action=<term>), DELETE
    /occi/networkinterface/, storagelink/   links: GET, POST create; <id>: GET, DELETE
    /occi/<mixin location>            the entities with that mixin: GET; user mixins: POST/PUT/DELETE locations

Every failure is answered in the rendering asked for, with the right status; a ``Server`` header names
OCCI/1.2. The answer's Content-Type is exactly the rendering asked for.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import falcon
import orjson

from frontends.occi import negotiation
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError, from_canonical
from frontends.occi.model import Category, Entity, Link, Mixin, Rendered, RenderingError
from frontends.occi.rendering import JSON, OCCI_JSON, TEXT_OCCI, TEXT_PLAIN, URI_LIST
from frontends.occi.rendering import json as json_rendering
from frontends.occi.rendering import text as text_rendering
from frontends.occi.resources import aliases
from frontends.occi.resources import links as link_resources
from frontends.occi.resources import mixins as mixin_resources
from frontends.occi.resources.base import KindController
from frontends.occi.resources.compute import Computes
from frontends.occi.resources.network import Networks
from frontends.occi.resources.storage import Storages
from translator import read_cache
from translator.errors import AuthFailure, CloudgateError, NotFound
from translator.identity import Identity
from translator.model import Principal
from translator.ratelimit import RateLimiter
from translator.translator import Translator

log = logging.getLogger("cloudgate.occi")

PREFIX = "/occi"
WELL_KNOWN = "/.well-known/org/ogf/occi/-/"
SERVER = "cloudgate OCCI/1.2"
#: rendering by the media type that names it
RENDERINGS: dict[str, ModuleType] = {
    TEXT_PLAIN: text_rendering,
    TEXT_OCCI: text_rendering,
    URI_LIST: text_rendering,
    OCCI_JSON: json_rendering,
    JSON: json_rendering,
}
KINDS: dict[str, KindController] = {"compute": Computes(), "storage": Storages(), "network": Networks()}
LINKS: dict[str, Any] = {
    "networkinterface": link_resources.NetworkInterfaces(),
    "storagelink": link_resources.StorageLinks(),
}
#: the abstract kinds' locations: each lists every entity (resources, links) of its subkinds
ABSTRACT = ("entity", "resource", "link")
_WITH_BODY = frozenset({"POST", "PUT", "DELETE", "GET"})


@dataclass(frozen=True, slots=True)
class OcciOptions:
    max_body_bytes: int = 1_048_576
    public_endpoint: str = ""
    trusted_proxies: tuple[str, ...] = ()
    store_faults: tuple[type[Exception], ...] = ()
    retry_after: int = 2
    #: request rates per access key and tenant (None: unlimited): over them, 429 with ``Retry-After``
    limiter: RateLimiter | None = None
    #: where a client gets a Keystone token (``WWW-Authenticate: Keystone uri=...``), when one is configured
    keystone_url: str = ""


@dataclass(slots=True)
class Answer:
    status: int = 200
    #: what to render: categories, an entity, a link, a collection (entities, links), locations, or nothing
    render: Callable[[ModuleType, str], Rendered] | None = None
    headers: dict[str, str] | None = None
    collection: bool = False


class Request:
    """A request's body and OCCI headers, parsed lazily in its own rendering."""

    def __init__(self, body: bytes, headers: list[tuple[str, str]], media: str) -> None:
        self.body, self.headers, self.media = body, headers, media
        self.module = RENDERINGS[media]

    def parse(self, what: str) -> Any:
        try:
            return getattr(self.module, f"parse_{what}")(self.body, self.headers)
        except RenderingError as exc:
            raise OcciError(400, str(exc) or "The request is not a well-formed OCCI rendering.") from None


class OcciFrontend:
    """A falcon sink for ``/occi`` and the well-known query interface."""

    def __init__(self, translator: Translator, identity: Identity, options: OcciOptions) -> None:
        self.translator = translator
        self.identity = identity
        self.options = options

    def __call__(self, req: falcon.Request, resp: falcon.Response, **_: Any) -> None:
        req.context.frontend = "occi"
        media = negotiation.DEFAULT
        try:
            media = negotiation.answer_media(req.get_header("Accept"))
            if req.method == "GET":
                answer, rendered = self._read(req, media)
            else:
                principal = self._authenticate(req)
                answer, rendered = self._answered(req, media, principal, self._request(req))
        except OcciError as exc:
            answer, rendered = self._error(exc, media)
        except CloudgateError as exc:
            answer, rendered = self._error(from_canonical(exc), media)
        except self.options.store_faults as exc:
            log.warning("%s %s: Redis failed: %s", req.method, req.path, exc)
            answer, rendered = self._error(
                OcciError(503, "The service is temporarily unavailable; retry later."), media
            )
        except Exception:
            log.exception("OCCI %s %s failed", req.method, req.path)
            answer, rendered = self._error(OcciError(500, "The gateway failed to handle the request."), media)
        resp.status = falcon.code_to_http_status(answer.status)
        resp.set_header("Server", SERVER)
        if answer.status == 503:  # the default; a breaker's cool-down in ``answer.headers`` replaces it
            resp.set_header("Retry-After", str(self.options.retry_after))
        for name, value in (answer.headers or {}).items():
            resp.set_header(name, value)
        if rendered is None:  # 204: no body, and no Content-Type to describe one
            resp.content_type = None
            return
        for name, value in rendered.headers:
            # HTTP header values are bytes: a title's UTF-8 travels as is (WSGI hands them on as latin-1)
            resp.append_header(name, value.encode("utf-8").decode("latin-1"))
        resp.content_type = rendered.content_type
        if req.method != "HEAD":
            resp.data = rendered.body

    def _read(self, req: falcon.Request, media: str) -> tuple[Answer, Rendered | None]:
        """A GET, answered as last time while the listings it read are unchanged (translator/read_cache.py); with
        Basic credentials the user record and the kept answer are checked in one round trip."""
        cache = self.translator.read_cache
        basic = None if req.get_header("X-Auth-Token") else self._basic(req)
        principal = self._authenticate(req) if basic is None else None
        request = self._request(req)
        asked = (media, self._base(req), req.path, req.query_string, _asking_headers(req), request.body)
        if principal is not None:
            return cache.answer(
                (principal, *asked), lambda: self._answered(req, media, principal, request), _answer_size
            )
        assert basic is not None
        key = ("basic", basic[0], *asked)
        try:
            found, raw, kept = self.identity.authenticate_basic_kept(basic[0], basic[1], cache, key)
        except AuthFailure as exc:
            raise self._unauthenticated(exc) from None
        self._admit(basic[0], found)
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        return cache.build(key, lambda: self._answered(req, media, found, request), _answer_size, guarded=raw)

    def _answered(
        self, req: falcon.Request, media: str, principal: Principal, request: Request
    ) -> tuple[Answer, Rendered | None]:
        answer = self._handle(req, media, principal, request)
        rendered = self._render(answer, media)
        if answer.status != 200:
            read_cache.note_unversioned()  # only plain answers are kept
        return Answer(answer.status, None, answer.headers, answer.collection), rendered

    # -- rendering -----------------------------------------------------------------------------------
    def _render(self, answer: Answer, media: str) -> Rendered | None:
        if answer.render is None:
            return None
        if media == URI_LIST and not answer.collection:
            raise OcciError(406, "text/uri-list renders collections only.")
        return answer.render(RENDERINGS[media], media)

    def _error(self, exc: OcciError, media: str) -> tuple[Answer, Rendered]:
        if media in (OCCI_JSON, JSON):
            body = orjson.dumps({"error": {"code": exc.status, "message": exc.message}})
        else:
            body = f"{exc.message}\n".encode()
            media = TEXT_PLAIN if media == URI_LIST else media
        return Answer(exc.status, None, dict(exc.headers)), Rendered(body, media)

    # -- requests ------------------------------------------------------------------------------------
    def _handle(self, req: falcon.Request, media: str, principal: Principal, request: Request) -> Answer:
        ctx = Ctx(principal, self.translator, self.translator.documents, self._base(req))
        method = "GET" if req.method == "HEAD" else req.method
        if req.path.startswith(WELL_KNOWN.rstrip("/")):
            return self._query(ctx, method, request)
        path = req.path[len(PREFIX) :].lstrip("/")
        segments = [s for s in path.split("/") if s]
        if segments == ["-"]:
            return self._query(ctx, method, request)
        if not segments:
            raise OcciError(404, "Nothing here: see the query interface at /occi/-/.")
        head = segments[0]
        if head in KINDS and len(segments) <= 2:
            controller = KINDS[head]
            if len(segments) == 1:
                return self._collection(ctx, controller, method, request, media)
            return self._entity(ctx, controller, segments[1], method, request, req.get_param("action"))
        if head in ABSTRACT and len(segments) == 1:
            if method != "GET":
                raise OcciError(405, f"The {head} collection is read-only.", {"Allow": "GET"})
            entities = [] if head == "link" else [e for k in KINDS.values() for e in self._filtered(ctx, k, request)]
            found = [] if head == "resource" else [link for c in LINKS.values() for link in c.listed(ctx)]
            return self._collection_answer(entities, found)
        if head in LINKS and len(segments) <= 2:
            return self._links(ctx, LINKS[head], segments[1:], method, request)
        mixin = ctx.catalog.by_location(ctx.url(path if path.endswith("/") else path + "/"))
        if mixin is not None:
            return self._mixin(ctx, mixin, method, request)
        raise OcciError(404, f"There is nothing at /occi/{path[:200]}.")

    def _request(self, req: falcon.Request) -> Request:
        limit = self.options.max_body_bytes
        if req.content_length is not None and req.content_length > limit:
            raise OcciError(413, f"The request body exceeds {limit} bytes.")
        body = req.bounded_stream.read(limit + 1) if req.method in _WITH_BODY else b""
        if len(body) > limit:
            raise OcciError(413, f"The request body exceeds {limit} bytes.")
        media = negotiation.request_media(req.content_type, bool(body))
        headers = [(name, value) for name, value in req.headers.items()]
        return Request(body, headers, media)

    def _query(self, ctx: Ctx, method: str, request: Request) -> Answer:
        if method == "GET":
            categories = mixin_resources.query(ctx, request.parse("category_ids"))
            return Answer(200, lambda m, media: m.render_categories(categories, media))
        if method == "POST":
            made = mixin_resources.create_user_mixins(ctx, request.parse("mixins"))
            return Answer(200, lambda m, media: m.render_categories(made, media))
        if method == "DELETE":
            mixin_resources.delete_user_mixins(ctx, request.parse("category_ids"))
            return Answer(204)
        raise OcciError(405, f"{method} is not allowed on the query interface.", {"Allow": "GET, POST, DELETE"})

    @staticmethod
    def _filters(request: Request) -> bool:
        """Whether a collection GET asks for a filter (a body, or OCCI headers)."""
        names = {"category", "x-occi-attribute"}
        return bool(request.body) or any(n.lower() in names for n, _ in request.headers)

    def _collection(self, ctx: Ctx, controller: KindController, method: str, request: Request, media: str) -> Answer:
        if method == "GET":
            if media in (TEXT_PLAIN, TEXT_OCCI, URI_LIST) and not self._filters(request):
                # PERF: the text renderings of a collection are its locations: no entity is built
                stubs = [Entity(controller.kind.id, r.id, ctx.url(f"{controller.kind.term}/{r.id}"))
                         for r in controller.listed(ctx)]  # fmt: skip
                if isinstance(controller, Networks):
                    stubs.append(controller.public(ctx))
                return self._collection_answer(stubs)
            ctx.bulk = True
            entities = self._filtered(ctx, controller, request)
            return self._collection_answer(entities)
        if method == "POST":
            entity = request.parse("entity")
            if entity.kind and entity.kind != controller.kind.id:
                raise OcciError(400, f"Post a {controller.kind.term} here, not '{entity.kind}'.")
            made = controller.create(ctx, entity)
            return Answer(201, lambda m, media: m.render_entity(made, media), {"Location": made.location})
        if method == "DELETE":
            for entity in self._filtered(ctx, controller, request):
                controller.delete(ctx, controller.find(ctx, entity.id))
            return Answer(204)
        raise OcciError(405, f"{method} is not allowed on a collection.", {"Allow": "GET, POST, DELETE"})

    def _filtered(self, ctx: Ctx, controller: KindController, request: Request) -> list[Entity]:
        """The kind's entities, filtered by the request's categories (kind or mixins) and attribute values."""
        wanted, attributes = request.parse("filter") if request.body or request.media == TEXT_OCCI else ([], {})
        entities = [controller.entity(ctx, r) for r in controller.listed(ctx)]
        if controller is KINDS["network"]:
            entities.append(KINDS["network"].public(ctx))  # type: ignore[attr-defined]
        found = []
        for entity in entities:
            held = {entity.kind, *entity.mixins}
            if any(w not in held and w not in (controller.kind.id,) for w in wanted):
                continue
            if any(entity.attributes.get(k) != v for k, v in attributes.items()):
                continue
            found.append(entity)
        return found

    def _collection_answer(self, entities: list[Entity], links: list[Link] | None = None) -> Answer:
        def render(module: ModuleType, media: str) -> Rendered:
            if media == URI_LIST:
                return module.render_locations([e.location for e in [*entities, *(links or [])]], media)
            return module.render_collection(entities, links or [], media)

        return Answer(200, render, collection=True)

    def _entity(
        self, ctx: Ctx, controller: KindController, rid: str, method: str, request: Request, action: str | None
    ) -> Answer:
        if isinstance(controller, Networks) and rid == link_resources.PUBLIC:
            if method != "GET":
                raise OcciError(405, "The public network is the gateway's own.", {"Allow": "GET"})
            public = controller.public(ctx)
            return Answer(200, lambda m, media: m.render_entity(public, media))
        alias = aliases.resolve(ctx, controller.kind.term, rid)
        if method == "PUT":
            try:
                resource = controller.find(ctx, alias or rid)
            except NotFound:
                made = self._put_create(ctx, controller, rid, request)
                return Answer(201, lambda m, media: m.render_entity(made, media), {"Location": ctx.url(
                    f"{controller.kind.term}/{rid}")})  # fmt: skip
            entity = controller.replace(ctx, resource, request.parse("entity"))
            return Answer(200, lambda m, media: m.render_entity(entity, media))
        resource = controller.find(ctx, alias or rid)
        if method == "GET":
            entity = controller.entity(ctx, resource)
            return Answer(200, lambda m, media: m.render_entity(entity, media))
        if method == "DELETE":
            controller.delete(ctx, resource)
            if alias:
                aliases.forget(ctx, controller.kind.term, rid)
            return Answer(204)
        if method == "POST":
            if action is not None:
                invocation = request.parse("action")
                if invocation.action.rsplit("#", 1)[-1] != action:
                    raise OcciError(400, f"The action category '{invocation.action}' is not ?action={action[:32]}.")
                result = controller.act(ctx, resource, invocation)
                if isinstance(result, Mixin):
                    return Answer(200, lambda m, media: m.render_categories([result], media))
                return Answer(200, lambda m, media: m.render_entity(result, media))
            entity = controller.update(ctx, resource, request.parse("entity"))
            return Answer(200, lambda m, media: m.render_entity(entity, media))
        raise OcciError(405, f"{method} is not allowed on an entity.", {"Allow": "GET, PUT, POST, DELETE"})

    def _put_create(self, ctx: Ctx, controller: KindController, rid: str, request: Request) -> Entity:
        """PUT to a new location creates the entity there: the cloud names it, so the location asked for becomes
        an alias of the entity's own (every method reaches it through either)."""
        aliases.check(rid)
        entity = request.parse("entity")
        if entity.kind and entity.kind != controller.kind.id:
            raise OcciError(400, f"Put a {controller.kind.term} here, not '{entity.kind}'.")
        aliases.reserve(ctx, controller.kind.term, rid)
        try:
            made = controller.create(ctx, entity)
        except BaseException:
            aliases.forget(ctx, controller.kind.term, rid)
            raise
        aliases.bind(ctx, controller.kind.term, rid, made.id)
        return made

    def _links(self, ctx: Ctx, controller: Any, rest: list[str], method: str, request: Request) -> Answer:
        if not rest:
            if method == "GET":
                found = controller.listed(ctx)

                def render(module: ModuleType, media: str) -> Rendered:
                    if media == URI_LIST:
                        return module.render_locations([link.location for link in found], media)
                    return module.render_collection([], found, media)

                return Answer(200, render, collection=True)
            if method == "POST":
                link = request.parse("link")
                if link.kind and link.kind != controller.kind.id:
                    raise OcciError(400, f"Post a {controller.kind.term} here, not '{link.kind}'.")
                made = controller.create(ctx, link)
                return Answer(201, lambda m, media: m.render_link(made, media), {"Location": made.location})
            raise OcciError(405, f"{method} is not allowed on a link collection.", {"Allow": "GET, POST"})
        if method == "GET":
            link = controller.get(ctx, rest[0])
            return Answer(200, lambda m, media: m.render_link(link, media))
        if method == "DELETE":
            controller.delete(ctx, rest[0])
            return Answer(204)
        raise OcciError(405, f"{method} is not allowed on a link.", {"Allow": "GET, DELETE"})

    def _mixin(self, ctx: Ctx, mixin: Category, method: str, request: Request) -> Answer:
        if method == "GET":
            by_kind = {"machine": KINDS["compute"], "volume": KINDS["storage"], "network": KINDS["network"]}
            entities = [by_kind[k].entity(ctx, r) for k, r in mixin_resources.entities_with(ctx, mixin)]
            return self._collection_answer(entities)
        if method in ("POST", "PUT"):
            mixin_resources.associate(ctx, mixin, request.parse("locations"), replace=method == "PUT")
            return Answer(204)
        if method == "DELETE":
            mixin_resources.dissociate(ctx, mixin, request.parse("locations"))
            return Answer(204)
        raise OcciError(405, f"{method} is not allowed on a mixin's location.", {"Allow": "GET, POST, PUT, DELETE"})

    # -- identity and URLs ---------------------------------------------------------------------------
    def _authenticate(self, req: falcon.Request) -> Principal:
        """The caller, once its request is within its rate."""
        token = req.get_header("X-Auth-Token")
        try:
            if token:
                principal = self.identity.authenticate_token(token)
                return self._admit(f"token:{principal.user}", principal)
            key, secret = self._basic(req)
            principal = self.identity.authenticate_basic(key, secret)
        except AuthFailure as exc:
            raise self._unauthenticated(exc) from None
        return self._admit(key, principal)

    def _admit(self, access_key: str, principal: Principal) -> Principal:
        """``Throttled`` (429) when the caller is over its rate."""
        if self.options.limiter is not None:
            self.options.limiter.check(access_key, principal.tenant)
        return principal

    def _basic(self, req: falcon.Request) -> tuple[str, str]:
        """The access key and secret of HTTP Basic credentials (401 when missing or malformed)."""
        header = req.get_header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        try:
            if scheme.lower() != "basic" or not value:
                raise AuthFailure("This service needs credentials: HTTP Basic (access key and secret) or a token.")
            try:
                key, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise AuthFailure("The Basic credentials are malformed.") from None
            if not sep or not key:
                raise AuthFailure("The Basic credentials are malformed.")
        except AuthFailure as exc:
            raise self._unauthenticated(exc) from None
        return key, secret

    def _unauthenticated(self, exc: AuthFailure) -> OcciError:
        return OcciError(401, exc.message, {"WWW-Authenticate": self._challenge()})

    def _challenge(self) -> str:
        if self.options.keystone_url:
            return f"Keystone uri='{self.options.keystone_url}'"
        return 'Basic realm="cloudgate OCCI"'

    def _base(self, req: falcon.Request) -> str:
        if self.options.public_endpoint:
            return self.options.public_endpoint.rstrip("/")
        host = req.get_header("Host") or "localhost"
        scheme = req.scheme
        if req.remote_addr in self.options.trusted_proxies:
            host = (req.get_header("X-Forwarded-Host") or host).split(",")[0].strip()
            scheme = (req.get_header("X-Forwarded-Proto") or scheme).split(",")[0].strip()
        return f"{scheme}://{host}"


__all__ = ["PREFIX", "WELL_KNOWN", "Category", "OcciFrontend", "OcciOptions"]


#: headers that say who asks or how the exchange goes, not what is asked (the caller is in the key already)
_NOT_ASKING = frozenset({"AUTHORIZATION", "X-AUTH-TOKEN", "HOST", "CONNECTION", "USER-AGENT", "CONTENT-LENGTH"})


def _asking_headers(req: falcon.Request) -> tuple[tuple[str, str], ...]:
    """The request headers an answer may depend on (OCCI filters travel in Category and X-OCCI-Attribute)."""
    return tuple(sorted((k, v) for k, v in req.headers.items() if k not in _NOT_ASKING))


def _answer_size(kept: tuple[Answer, Rendered | None]) -> int:
    rendered = kept[1]
    return 256 + (len(rendered.body) if rendered is not None else 0)
