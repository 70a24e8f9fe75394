"""One account's connection to OpenStack: a keystoneauth1 session, its catalog, and libcloud on its token.

Keystone v3 authenticates with a password or an application credential; keystoneauth1 caches the token,
takes a new one shortly before it expires, and re-authenticates once on a 401 of a REST call. libcloud's
OpenStack driver gets the same token and the catalog's compute endpoint (``ex_force_auth_token`` /
``ex_force_base_url``), so it never authenticates on its own; on a 401 from Nova we invalidate the token
and repeat the call once. A libcloud driver is not thread-safe (one HTTP connection, per-request context),
so each thread has its own; the keystoneauth1 session is shared and locks its token refreshes.

Everything here is a per-process cache of connections: nothing that matters across workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from keystoneauth1 import exceptions as ka
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from libcloud.common.exceptions import BaseHTTPError
from libcloud.compute.drivers.openstack import OpenStack_2_Connection, OpenStack_2_NodeDriver

from backends.openstack.faults import faults, status_of
from backends.openstack.options import SERVICES, Options
from translator.errors import BackendUnavailable

T = TypeVar("T")

#: Version suffix a catalog URL may lack (Glance and Neutron list their unversioned root).
VERSION_SUFFIX: Mapping[str, str] = {"image": "/v2", "network": "/v2.0"}
#: The last compute microversion with Nova's proxy APIs (images, os-volumes, os-networks, ...).
PROXY_MICROVERSION = "2.35"


def auth_plugin(opts: Options) -> v3.Password | v3.ApplicationCredential:
    """The keystoneauth1 v3 plugin for the account's credentials."""
    if "application_credential_secret" in opts.auth:
        return v3.ApplicationCredential(auth_url=opts.auth_url, **opts.auth)
    return v3.Password(auth_url=opts.auth_url, **opts.auth)


class ComputeConnection(OpenStack_2_Connection):
    """libcloud's compute connection, honouring the account's TLS settings (libcloud's are process-wide)."""

    tls_verify: bool | str = True

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        result = super().connect(*args, **kwargs)
        if isinstance(self.tls_verify, str):
            self.connection.ca_cert = self.tls_verify
        elif not self.tls_verify:
            self.connection.ca_cert = None
            self.connection.verify = False
        return result


class ComputeDriver(OpenStack_2_NodeDriver):
    """libcloud's OpenStack driver with our connection class."""

    connectionCls = ComputeConnection
    #: Microversion of this driver's calls, as a comparable tuple (set by ``Cloud.driver``).
    microversion: tuple[int, int] = (2, 1)

    def _create_args_to_params(self, node: Any, **kwargs: Any) -> dict[str, Any]:
        """From microversion 2.37 Nova wants ``networks`` on every boot; libcloud sends none for "Nova's choice"."""
        params = super()._create_args_to_params(node, **kwargs)
        if self.microversion >= (2, 37):
            params.setdefault("networks", "auto")
        return params


class Cloud:
    """The account's Keystone session, service endpoints and per-thread libcloud drivers."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.auth = auth_plugin(opts)
        self.session = ks_session.Session(
            auth=self.auth, timeout=opts.timeout, verify=opts.verify, user_agent="cloudgate"
        )
        self._endpoints: dict[str, str | None] | None = None
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- identity and catalog -------------------------------------------------------------------
    def token(self) -> str:
        """A valid token (cached; re-issued by keystoneauth1 before it expires)."""
        with faults(what="authenticate with Keystone"):
            token = self.session.get_token()
        if not token:
            raise BackendUnavailable("openstack: Keystone gave no token", reason="credentials")
        return token

    def project_id(self) -> str:
        with faults(what="authenticate with Keystone"):
            return self.session.get_project_id() or ""

    def endpoints(self) -> Mapping[str, str | None]:
        """Service type -> base URL (None when the catalog lacks it), read once per process."""
        if self._endpoints is None:
            with self._lock:
                if self._endpoints is None:
                    self._endpoints = {service: self._find(service) for service in SERVICES}
        return self._endpoints

    def _find(self, service: str) -> str | None:
        url = self.opts.endpoint_override.get(service)
        if url is None:
            with faults(what=f"find the {service} endpoint in the catalog"):
                try:
                    url = self.session.get_endpoint(
                        service_type=service, interface=self.opts.interface, region_name=self.opts.region_name
                    )
                except ka.EndpointNotFound:
                    url = None
        if not url:
            if service == "compute":
                region = self.opts.region_name or "any region"
                raise BackendUnavailable(
                    f"openstack: the catalog has no {self.opts.interface} compute endpoint in {region}",
                    reason="catalog",
                )
            return None
        url = url.rstrip("/")
        suffix = VERSION_SUFFIX.get(service, "")
        return url if not suffix or url.endswith(suffix) else url + suffix

    def has(self, service: str) -> bool:
        return bool(self.endpoints().get(service))

    def url(self, service: str) -> str:
        found = self.endpoints().get(service)
        if not found:
            raise BackendUnavailable(f"openstack: the catalog has no {service} endpoint", reason="catalog")
        return found

    # -- REST through the keystoneauth1 session ---------------------------------------------------
    def rest(
        self,
        method: str,
        service: str,
        path: str,
        *,
        kind: str | None = None,
        what: str = "",
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        microversion: str | None = None,
        content_type: str | None = None,
    ) -> Any:
        """One authenticated call to a service's REST API; the decoded JSON body (None when empty). ``content_type``
        names a JSON body's media type where the service wants its own (Glance's JSON patch)."""
        url = path if path.startswith("http") else self.url(service) + path
        with faults(kind, what or f"{method} {service} {path}"):
            response = self.session.request(
                url,
                method,
                json=body,
                params=dict(params or {}),
                headers={"Accept": "application/json"} | ({"Content-Type": content_type} if content_type else {}),
                microversion=microversion,
                microversion_service_type=service if microversion else None,
                connect_retries=0,
                raise_exc=True,
            )
            return response.json() if response.content else None

    def pages(
        self,
        service: str,
        path: str,
        key: str,
        *,
        params: Mapping[str, Any] | None = None,
        microversion: str | None = None,
        what: str = "",
    ) -> list[dict[str, Any]]:
        """Every item of a paged collection: follows ``<key>_links`` (Nova, Cinder) or ``next`` (Glance)."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        query: Mapping[str, Any] | None = params
        for _ in range(1000):  # bounded: 1000 pages of a collection is a runaway
            if url is None:
                break
            page = self.rest("GET", service, url, params=query, microversion=microversion, what=what) or {}
            items.extend(page.get(key, []))
            url, query = self._next(service, page, key), None
        return items

    def _next(self, service: str, page: Mapping[str, Any], key: str) -> str | None:
        link = next((x["href"] for x in page.get(f"{key}_links", []) if x.get("rel") == "next"), None)
        if link:
            return link
        if isinstance(page.get("next"), str):  # Glance: a path from the service's root
            root = self.url(service)
            return root.rsplit(VERSION_SUFFIX.get(service, "/v2"), 1)[0] + page["next"]
        return None

    # -- compute through libcloud -----------------------------------------------------------------
    def driver(self) -> ComputeDriver:
        """This thread's libcloud driver, carrying the session's current token."""
        token = self.token()
        driver: ComputeDriver | None = getattr(self._local, "driver", None)
        if driver is None:
            driver = ComputeDriver(
                "cloudgate",
                "",
                ex_force_auth_url=self.opts.auth_url,
                ex_force_auth_version="3.x_password",
                ex_tenant_name="unused",  # libcloud builds (and never uses, with a forced token) its own auth
                ex_force_auth_token=token,
                ex_force_base_url=self.url("compute"),
                ex_force_microversion=self.opts.compute_microversion,
                timeout=self.opts.timeout,
            )
            driver.connection.tls_verify = self.opts.verify
            major, minor = self.opts.compute_microversion.split(".")
            driver.microversion = (int(major), int(minor))
            self._local.driver = driver
        driver.connection.auth_token = token
        return driver

    def nova(self, fn: Callable[[ComputeDriver], T], *, kind: str | None = None, what: str = "") -> T:
        """Run ``fn`` with this thread's libcloud driver; a 401 gets a new token and one more try."""
        with faults(kind, what):
            try:
                return fn(self.driver())
            except BaseHTTPError as exc:
                if status_of(exc) != 401:
                    raise
                self.auth.invalidate()  # the token was revoked or expired early: take a new one, once
            return fn(self.driver())

    def nova_json(
        self,
        method: str,
        path: str,
        *,
        kind: str | None = None,
        what: str = "",
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """A raw compute call on libcloud's connection (for what its driver maps lossily or lacks)."""

        def call(driver: ComputeDriver) -> Any:
            return driver.connection.request(path, params=dict(params or {}), data=body or "", method=method).object

        return self.nova(call, kind=kind, what=what or f"{method} compute {path}")
