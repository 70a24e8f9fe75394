"""A real Cinder block-storage service (API v3, scheduler, volume) on loopback, behind the test Keystone.

``start_cinder(workdir, keystone)`` runs ``scripts/cinder_server.py`` in Cinder's venv: the three
services of a deployment in one process, joined by oslo.messaging's in-process ``fake://`` transport
instead of a broker, with the fake LVM volume driver Cinder ships for its functional tests (no disks,
no root). A sqlite database in the workdir (``cinder-manage db sync``), Cinder's default policies, and
keystonemiddleware validating tokens against the test Keystone as a ``cinder-*`` service user (admin and
service in its own project). What a client sees:

- ``Cinder.url`` is ``http://127.0.0.1:PORT/v3`` (no project id in the path), the ``volumev3``
  endpoint (service ``cinderv3``) of ``Cinder.region`` (default ``RegionOne``) in Keystone's catalog;
  microversions up to 3.71 (``OpenStack-API-Version: volume 3.x``).
- One volume backend, host ``cinder@fake#fake``, in availability zone ``nova`` (the Nova peer's);
  unlimited capacity, Cinder's default quotas.
- Volume types ``__DEFAULT__`` (Cinder's default) and the public ``ssd`` and ``hdd``, in
  ``Cinder.volume_types``.
- Volumes and snapshots are created asynchronously (``creating``, then ``available`` within a second
  or so) and deleted the same way; a volume can be made from a snapshot. Attachments (microversion
  3.27+, Nova's flow from 3.44): create with ``volume_uuid`` and ``instance_uuid`` (volume
  ``reserved``), update with a ``connector`` (returns ``connection_info``), ``os-complete``
  (``in-use``), delete (``available``). An attached volume cannot be deleted (400). Deleting a connected
  attachment takes, as in any Cinder since bug #2004555, either a service token (``service`` role) beside
  the user's, as Nova sends, or a Nova in the catalog that no longer lists the volume on that server.
- Admins (and service tokens) see an attachment's ``host_name``: the connector's ``host``.
"""

from __future__ import annotations

import time
from pathlib import Path

from keystoneauth1 import session as ks_session

from .keystone_peer import Credentials, Keystone
from .process import Peer, PeerProcess, run_manage, start_script
from .venvs import Progress, clean_env, ensure_venv, python

START_TIMEOUT = 120.0
HOST = "cinder"  # the services' host name; the backend is ``cinder@fake``
ZONE = "nova"  # the Nova peer's availability zone: Nova attaches only volumes of its zone by default
EXTRA_TYPES = ("ssd", "hdd")  # public volume types made at start, beside Cinder's default one

CINDER_CONF = """\
[DEFAULT]
host = {host}
state_path = {workdir}
log_file = {workdir}/cinder.log
debug = false
auth_strategy = keystone
transport_url = fake://
enabled_backends = fake
storage_availability_zone = {zone}
default_availability_zone = {zone}
osapi_volume_listen = 127.0.0.1
# 0: any free port; the server writes the one it bound to its ready file (no race for a chosen port).
osapi_volume_listen_port = 0
osapi_volume_workers = 1
api_paste_config = {etc}/api-paste.ini
# Which query parameters filter a listing (name, status, metadata, ...); without it no filter works.
resource_query_filters_file = {etc}/resource_filters.json
# The scheduler waits this long at most for the volume service's first capability report.
scheduler_driver_init_wait_time = 10
# Heartbeats: Cinder keeps the id a service reports under in a class attribute, so with the scheduler and
# the volume service in one process only one of their rows is ever refreshed. Without a long grace the
# volume service would read as down a minute after start, and every volume would fail to schedule.
service_down_time = 604800

[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake
target_helper = fake

[database]
connection = sqlite:///{workdir}/cinder.db

{authtoken}
[coordination]
backend_url = file://{workdir}/coordination

[oslo_concurrency]
lock_path = {workdir}/locks

[oslo_messaging_notifications]
driver = noop
"""


class Cinder(Peer):
    """A running Cinder: ``url`` is the v3 endpoint (no project id in the path)."""

    def __init__(
        self,
        url: str,
        region: str,
        workdir: Path,
        process: PeerProcess,
        service: Credentials,
        volume_types: list[str],
        startup: float,
    ) -> None:
        super().__init__(url, workdir, process, startup)
        self.region = region
        self.service = service
        self.volume_types = volume_types


def _ensure_volume_types(session: ks_session.Session, url: str) -> list[str]:
    """Create the public types ``EXTRA_TYPES`` (as Keystone's admin) unless present; all type names, sorted."""
    headers = {"Accept": "application/json"}
    listed = session.get(f"{url}/types", params={"is_public": "None"}, headers=headers).json()["volume_types"]
    names = {t["name"] for t in listed}
    for name in EXTRA_TYPES:
        if name not in names:
            body = {"volume_type": {"name": name, "os-volume-type-access:is_public": True}}
            session.post(f"{url}/types", json=body, headers=headers)
            names.add(name)
    return sorted(names)


def start_cinder(workdir: Path, keystone: Keystone, progress: Progress = print, *, region: str | None = None) -> Cinder:
    """Build (once) Cinder's venv, start API, scheduler and volume in ``workdir``; ``volumev3`` in the catalog."""
    venv = ensure_venv("cinder", progress)
    started = time.monotonic()
    region = region or keystone.region
    workdir.mkdir(parents=True, exist_ok=True)
    for sub in ("locks", "coordination"):
        (workdir / sub).mkdir(exist_ok=True)
    # keystonemiddleware validates tokens as a service user, as in a real deployment.
    service = keystone.service_user("cinder")
    conf = workdir / "cinder.conf"
    conf.write_text(
        CINDER_CONF.format(
            host=HOST,
            workdir=workdir,
            zone=ZONE,
            etc=venv / "etc" / "cinder",
            authtoken=keystone.authtoken_conf(service),
        )
    )
    run_manage(venv, "cinder-manage", conf, "db", "sync")
    ready = str(workdir / "ready.json")
    process, port = start_script(
        python(venv), "cinder_server.py", [str(conf), ready], workdir, START_TIMEOUT, clean_env()
    )
    try:
        url = f"http://127.0.0.1:{port}/v3"
        volume_types = _ensure_volume_types(keystone.admin_session(), url)
        keystone.register_endpoint("volumev3", "cinderv3", url, region=region)
    except Exception:
        process.stop()
        raise
    cinder = Cinder(url, region, workdir, process, service, volume_types, time.monotonic() - started)
    progress(f"openstack peers: cinder serving {url} in {region} (set up and started in {cinder.startup_seconds:.1f}s)")
    return cinder
