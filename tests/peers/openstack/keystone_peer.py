"""A real Keystone (identity v3) on loopback: sqlite, fernet tokens, gunicorn, bootstrapped admin; REST helpers.

``start_keystone(workdir)`` returns a running :class:`Keystone`. Its ``admin`` credentials are the
bootstrap admin (role ``admin`` on project ``admin``); ``create_project_user()`` makes a project and a
user with a role on it and returns that user's :class:`Credentials`, the same fields a cloudgate
OpenStack account takes; ``register_endpoint()`` puts a service in the catalog.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from .process import Peer, PeerProcess, answers, run_manage, start_gunicorn
from .venvs import Progress, clean_env, ensure_venv

REGION = "RegionOne"
DOMAIN = "Default"
HTTP_TIMEOUT = 30.0  # seconds for every call to Keystone
START_TIMEOUT = 90.0
WORKERS = 4  # concurrent requests Keystone serves (the gateway's workers authenticate in parallel)

KEYSTONE_CONF = """\
[DEFAULT]
log_file = {workdir}/keystone.log
debug = false

[database]
# Wait up to 30 s for sqlite's write lock (5 s by default): many logins at once otherwise fail with 500.
connection = sqlite:///{workdir}/keystone.db?timeout=30

[token]
provider = fernet
# Longer than a CI run, so a token taken at session start stays valid.
expiration = 14400

[fernet_tokens]
key_repository = {workdir}/fernet-keys

[fernet_receipts]
key_repository = {workdir}/fernet-keys

[credential]
key_repository = {workdir}/credential-keys

[identity]
# bcrypt's minimum cost: every password check would otherwise take a quarter of a second.
password_hash_rounds = 4
"""


AUTHTOKEN_CONF = """\
[keystone_authtoken]
www_authenticate_uri = {keystone_url}
auth_url = {keystone_url}
auth_type = password
username = {username}
password = {password}
project_name = {project_name}
user_domain_id = default
project_domain_id = default
interface = public
http_connect_timeout = 10
"""


@dataclass(frozen=True)
class Credentials:
    """A Keystone user's password credentials, scoped to one project."""

    auth_url: str
    username: str
    password: str = field(repr=False)
    project_name: str
    project_id: str
    user_id: str
    user_domain_name: str = DOMAIN
    project_domain_name: str = DOMAIN
    region_name: str = REGION

    def auth(self) -> v3.Password:
        """A keystoneauth1 password plugin for these credentials (project scope)."""
        return v3.Password(
            auth_url=self.auth_url,
            username=self.username,
            password=self.password,
            user_domain_name=self.user_domain_name,
            project_name=self.project_name,
            project_domain_name=self.project_domain_name,
        )

    def session(self, timeout: float = HTTP_TIMEOUT) -> ks_session.Session:
        """A keystoneauth1 session that authenticates as this user on first use and re-authenticates on expiry."""
        return ks_session.Session(auth=self.auth(), timeout=timeout)


class Keystone(Peer):
    """A running Keystone: ``url`` is the v3 endpoint, ``admin`` the bootstrap admin's credentials."""

    def __init__(self, url: str, admin: Credentials, workdir: Path, process: PeerProcess, startup: float) -> None:
        super().__init__(url, workdir, process, startup)
        self.admin = admin
        self.region = REGION
        self._admin_session: ks_session.Session | None = None
        self._roles: dict[str, str] = {}

    def service_user(self, service: str) -> Credentials:
        """A service's own user in a project of its own (``<service>-<suffix>``), with the ``admin`` and
        ``service`` roles a deployment gives it: it validates tokens, and calls other services as a service."""
        suffix = uuid.uuid4().hex[:6]
        return self.create_project_user(
            f"service-{service}-{suffix}", username=f"{service}-{suffix}", roles=("admin", "service")
        )

    def authtoken_conf(self, service: Credentials) -> str:
        """The ``[keystone_authtoken]`` section of a service's config: keystonemiddleware validating tokens
        against this Keystone as ``service``."""
        return AUTHTOKEN_CONF.format(
            keystone_url=self.url,
            username=service.username,
            password=service.password,
            project_name=service.project_name,
        )

    # --- REST helpers (identity v3, as the admin) ------------------------------------------------

    def admin_session(self) -> ks_session.Session:
        """A keystoneauth1 session of the bootstrap admin, shared by the helpers below."""
        if self._admin_session is None:
            self._admin_session = self.admin.session()
        return self._admin_session

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.admin_session().request(f"{self.url}{path}", method, **kwargs)
        return response.json() if response.content else None

    def role_id(self, name: str) -> str:
        """The id of a role by name, made if Keystone lacks it (bootstrap makes ``admin``, ``manager``,
        ``member`` and ``reader``; services' users also hold ``service``)."""
        if name not in self._roles:
            roles = self._call("GET", "/roles", params={"name": name})["roles"]
            if roles:
                self._roles[name] = roles[0]["id"]
            else:
                self._roles[name] = self._call("POST", "/roles", json={"role": {"name": name}})["role"]["id"]
        return self._roles[name]

    def create_project_user(
        self,
        project_name: str | None = None,
        *,
        username: str | None = None,
        roles: tuple[str, ...] = ("member",),
    ) -> Credentials:
        """A new project and a new user holding ``roles`` on it; returns the user's project-scoped credentials."""
        project_name = project_name or f"peer-{uuid.uuid4().hex[:10]}"
        username = username or f"{project_name}-user"
        password = secrets.token_urlsafe(16)
        project = self._call(
            "POST", "/projects", json={"project": {"name": project_name, "domain_id": "default", "enabled": True}}
        )["project"]
        user = self._call(
            "POST",
            "/users",
            json={"user": {"name": username, "password": password, "domain_id": "default", "enabled": True}},
        )["user"]
        for role in roles:
            self._call("PUT", f"/projects/{project['id']}/users/{user['id']}/roles/{self.role_id(role)}")
        return Credentials(
            auth_url=self.url,
            username=username,
            password=password,
            project_name=project_name,
            project_id=project["id"],
            user_id=user["id"],
        )

    def delete_project_user(self, credentials: Credentials) -> None:
        """Delete what ``create_project_user`` made (the cloud's resources in the project stay)."""
        self._call("DELETE", f"/users/{credentials.user_id}")
        self._call("DELETE", f"/projects/{credentials.project_id}")

    def register_endpoint(self, service_type: str, service_name: str, url: str, region: str | None = None) -> str:
        """Put ``url`` in the catalog as the public, internal and admin endpoint of a service; returns its id.

        An existing service of that type is reused and its old endpoints in the region replaced, so calling
        it again (a restarted peer on a new port) leaves one set of endpoints. ``region`` (default
        ``RegionOne``) is created if Keystone lacks it: a peer may live in a region of its own.
        """
        region = region or self.region
        if not any(r["id"] == region for r in self._call("GET", "/regions")["regions"]):
            self._call("POST", "/regions", json={"region": {"id": region}})
        services = self._call("GET", "/services", params={"type": service_type})["services"]
        if services:
            service_id = services[0]["id"]
            query = {"service_id": service_id, "region_id": region}
            for endpoint in self._call("GET", "/endpoints", params=query)["endpoints"]:
                self._call("DELETE", f"/endpoints/{endpoint['id']}")
        else:
            body = {"service": {"type": service_type, "name": service_name, "enabled": True}}
            service_id = self._call("POST", "/services", json=body)["service"]["id"]
        for interface in ("public", "internal", "admin"):
            endpoint = {"service_id": service_id, "interface": interface, "url": url, "region_id": region}
            self._call("POST", "/endpoints", json={"endpoint": endpoint})
        return service_id


def start_keystone(workdir: Path, progress: Progress = print) -> Keystone:
    """Build (once) Keystone's venv, set up a fresh sqlite Keystone in ``workdir`` and serve it on loopback."""
    venv = ensure_venv("keystone", progress)
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "keystone.conf"
    conf.write_text(KEYSTONE_CONF.format(workdir=workdir))
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    run_manage(venv, "keystone-manage", conf, "db_sync")
    run_manage(venv, "keystone-manage", conf, "fernet_setup", "--keystone-user", user, "--keystone-group", group)
    run_manage(venv, "keystone-manage", conf, "credential_setup", "--keystone-user", user, "--keystone-group", group)
    password = secrets.token_urlsafe(16)
    env = {**clean_env(), "OS_KEYSTONE_CONFIG_DIR": str(workdir)}

    def prepare(port: int) -> str:
        url = f"http://127.0.0.1:{port}/v3"
        # "--opt=value": a random password may start with "-", which argparse would read as an option.
        bootstrap = ["bootstrap", f"--bootstrap-password={password}", "--bootstrap-region-id", REGION]
        for interface in ("public", "internal", "admin"):
            bootstrap += [f"--bootstrap-{interface}-url", url]
        run_manage(venv, "keystone-manage", conf, *bootstrap)  # re-running it moves the endpoints to the new port
        return url

    process, url = start_gunicorn(
        venv,
        "keystone_wsgi:application",
        workdir,
        env,
        workers=WORKERS,
        prepare=prepare,
        ready=answers,
        timeout=START_TIMEOUT,
    )
    admin = Credentials(
        auth_url=url, username="admin", password=password, project_name="admin", project_id="", user_id=""
    )
    keystone = Keystone(url, admin, workdir, process, 0.0)
    session = keystone.admin_session()
    token = session.auth.get_access(session)  # authenticates: proves the admin works, gives the ids
    keystone.admin = Credentials(
        auth_url=url,
        username="admin",
        password=password,
        project_name="admin",
        project_id=token.project_id,
        user_id=token.user_id,
    )
    keystone.startup_seconds = time.monotonic() - started
    progress(f"openstack peers: keystone serving {url} (set up and started in {keystone.startup_seconds:.1f}s)")
    return keystone
