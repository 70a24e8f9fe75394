"""A real Glance image API (v2) on loopback, behind the test Keystone, in a catalog region of its own.

``start_glance(workdir, keystone)`` sets up Glance from its own venv: a sqlite database (``glance-manage
db_sync``), the ``file`` store under the workdir, keystonemiddleware validating tokens against the test
Keystone as a ``glance-*`` service user (admin and service in its own project), and the API's WSGI app under
gunicorn. What a client sees:

- ``Glance.url`` is ``http://127.0.0.1:PORT`` (Glance's unversioned root; the API is under ``/v2``), the
  ``image`` endpoint of region ``Glance.region`` (``RegionGlance``) in Keystone's catalog.
- Region ``RegionOne`` stays compute-only: the Nova peer serves images from its in-process fake Glance
  through its ``/images`` proxy, and tests that rely on that keep working whether Glance runs or not.
  An account that wants both takes ``region_name = "RegionGlance"`` and Nova's URL as a compute
  ``endpoint_override``. Nova's fake Glance and this one share nothing: a Nova snapshot never lands here.
- A listing without ``limit`` comes in pages of ``PAGE_SIZE`` (3) images, linked by ``next``.
- Images are created (``queued``), uploaded (``PUT /v2/images/ID/file``, then ``active``), deactivated,
  shared and deleted with Glance's default policies: members manage their project's private images,
  admins may make them public.
"""

from __future__ import annotations

import time
from pathlib import Path

from .keystone_peer import Keystone
from .process import Peer, answers, run_manage, start_gunicorn
from .venvs import Progress, clean_env, ensure_venv

REGION = "RegionGlance"
START_TIMEOUT = 120.0
WORKERS = 2
PAGE_SIZE = 3  # images per page of a listing without ``limit``

GLANCE_CONF = """\
[DEFAULT]
log_file = {workdir}/glance-api.log
debug = false
enabled_backends = fs:file
# Direct uploads only: no interoperable import (it would need a task engine and a staging workflow).
enabled_import_methods = []
# Small pages: a listing of more than a few images has ``next`` links, which clients must follow.
limit_param_default = {page_size}
# The API's own links (``next`` of a listing) are relative; this is for anything that needs an absolute one.
public_endpoint = {url}

[database]
connection = sqlite:///{workdir}/glance.db

[glance_store]
default_backend = fs

[fs]
filesystem_store_datadir = {workdir}/images

[os_glance_staging_store]
filesystem_store_datadir = {workdir}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {workdir}/tasks

[paste_deploy]
flavor = keystone
config_file = {paste}

{authtoken}
[oslo_concurrency]
lock_path = {workdir}/locks
"""


class Glance(Peer):
    """A running Glance API: ``url`` is its root (the v2 API is under ``url + "/v2"``)."""

    region = REGION


def start_glance(workdir: Path, keystone: Keystone, progress: Progress = print) -> Glance:
    """Build (once) Glance's venv, set up a fresh sqlite Glance in ``workdir``, serve it and put it in the catalog."""
    venv = ensure_venv("glance", progress)
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("images", "staging", "tasks", "locks"):
        (workdir / sub).mkdir(exist_ok=True)
    # keystonemiddleware validates tokens as a service user, as in a real deployment.
    service = keystone.service_user("glance")
    conf = workdir / "glance-api.conf"
    env = {**clean_env(), "OS_GLANCE_CONFIG_DIR": str(workdir)}

    def prepare(port: int) -> str:
        url = f"http://127.0.0.1:{port}"
        conf.write_text(
            GLANCE_CONF.format(
                workdir=workdir,
                url=url,
                page_size=PAGE_SIZE,
                paste=venv / "etc" / "glance" / "glance-api-paste.ini",
                authtoken=keystone.authtoken_conf(service),
            )
        )
        if not (workdir / "glance.db").exists():
            run_manage(venv, "glance-manage", conf, "db_sync")
        return url

    process, url = start_gunicorn(
        venv,
        "glance_wsgi:application",
        workdir,
        env,
        workers=WORKERS,
        prepare=prepare,
        # The versions document at the root answers without a token, 300 Multiple Choices.
        ready=lambda url: answers(url, (200, 300)),
        timeout=START_TIMEOUT,
    )
    try:
        keystone.register_endpoint("image", "glance", url, region=REGION)
    except Exception:
        process.stop()
        raise
    glance = Glance(url, workdir, process, time.monotonic() - started)
    progress(f"openstack peers: glance serving {url} in {REGION} (set up and started in {glance.startup_seconds:.1f}s)")
    return glance
