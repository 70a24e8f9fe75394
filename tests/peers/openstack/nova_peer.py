"""The real Nova compute API on loopback, behind the test Keystone, registered in its catalog.

``start_nova(workdir, keystone)`` runs ``scripts/nova_server.py`` in Nova's venv: Nova's own
functional-test services (sqlite, conductor, scheduler, compute with the fake virt driver, in-process
Placement, fake Glance/Neutron/Cinder) with the osapi_compute WSGI app served over HTTP and real
keystonemiddleware token validation. What a client sees:

- ``Nova.url`` is ``http://127.0.0.1:PORT/v2.1`` (also the ``compute`` endpoint in Keystone's catalog,
  region ``RegionOne``); every microversion up to Nova's maximum; availability zone ``nova``.
- flavors ``m1.tiny`` (id 1), ``m1.small`` (2), ``m1.medium`` (3), ``m1.large`` (4), ``m1.xlarge`` (5);
  images (fake Glance, listed through Nova's ``/images`` proxy up to microversion 2.35), e.g.
  ``155d900f-4e14-4e4c-a73d-069cbf4541e6``.
- servers boot asynchronously (BUILD, then ACTIVE); stop/start/reboot/delete work; with ``networks``
  ``"auto"`` (or omitted before 2.37) each project gets its own network ``private`` (a /20 of 10/8) and
  ``default`` security group on first use, and each server a distinct fixed address.
- Nova's default quotas (10 instances, 20 cores, 50 GiB RAM per project); admins change them with
  ``os-quota-sets``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .keystone_peer import Keystone
from .process import PeerProcess
from .venvs import HERE, Progress, clean_env, ensure_venv, python

START_TIMEOUT = 180.0
SERVICE_PROJECT = "service"
SERVICE_USER = "nova"


class Nova:
    """A running Nova API: ``url`` is the v2.1 endpoint (no project id in the path)."""

    def __init__(self, url: str, workdir: Path, process: PeerProcess, startup: float) -> None:
        self.url = url
        self.workdir = workdir
        self.process = process
        self.startup_seconds = startup

    def __repr__(self) -> str:
        return f"Nova(url={self.url!r}, pid={self.process.pid})"

    def stop(self) -> None:
        """Stop the server process (idempotent)."""
        self.process.stop()


def _ready_port(ready: Path) -> int | None:
    try:
        return int(json.loads(ready.read_text())["port"])
    except (OSError, ValueError, KeyError):
        return None


def start_nova(
    workdir: Path,
    keystone: Keystone,
    progress: Progress = print,
    *,
    neutron: Any = None,
    cinder: Any = None,
    regions: tuple[str, ...] = (),
) -> Nova:
    """Build (once) Nova's venv, start the API in ``workdir``, and register it as ``compute`` in the catalog.

    With ``neutron`` and ``cinder`` (running peers) Nova uses them instead of its harness's fakes. ``regions``
    are catalog regions, besides Keystone's own, where Nova is registered alone: accounts there see no
    other service and go through Nova's proxies (which reach the same Neutron and Cinder).
    """
    venv = ensure_venv("nova", progress)
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    # keystonemiddleware validates tokens as a service user, as in a real deployment.
    service = keystone.create_project_user(SERVICE_PROJECT, username=SERVICE_USER, roles=("admin",))
    config = workdir / "nova-peer.json"
    config.write_text(
        json.dumps(
            {
                "port": 0,
                "keystone_url": keystone.url,
                "username": service.username,
                "password": service.password,
                "project_name": service.project_name,
                "workdir": str(workdir),
                "log_level": "INFO",
                "region": keystone.region,
                "neutron_url": neutron.url if neutron is not None else None,
                "cinder": cinder is not None,
            }
        )
    )
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    process = PeerProcess(
        [str(python(venv)), str(HERE / "scripts" / "nova_server.py"), str(config)],
        log=workdir / "nova-server.out",
        cwd=workdir,
        env={**clean_env(), "OS_TEST_TIMEOUT": "0", "OS_STDOUT_CAPTURE": "0", "OS_STDERR_CAPTURE": "0"},
        stdin_pipe=True,  # the server exits when this pipe closes, even if we die without stopping it
    )
    port = process.wait_until(lambda: _ready_port(ready), "nova (nova_server.py)", START_TIMEOUT)
    url = f"http://127.0.0.1:{port}/v2.1"
    try:
        for region in (keystone.region, *regions):
            keystone.register_endpoint("compute", "nova", url, region=region)
    except Exception:
        process.stop()
        raise
    nova = Nova(url, workdir, process, time.monotonic() - started)
    progress(f"openstack peers: nova serving {url} (started in {nova.startup_seconds:.1f}s)")
    return nova
