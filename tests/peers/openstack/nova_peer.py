"""The real Nova compute API on loopback, behind the test Keystone, registered in its catalog.

``start_nova(workdir, keystone, neutron=..., cinder=...)`` runs ``scripts/nova_server.py`` in Nova's venv:
Nova's own functional-test services (sqlite, conductor, scheduler, compute ``compute`` with the fake virt
driver, in-process Placement, fake Glance) with the osapi_compute WSGI app served over HTTP and real
keystonemiddleware token validation. Given the Neutron and Cinder peers, Nova uses them (ports bound on
host ``compute``, volumes attached through Cinder's attachments API) and sends a service token with the
user's, as deployments must; without them, the harness's fake Neutron and Cinder stand in. What a client sees:

- ``Nova.url`` is ``http://127.0.0.1:PORT/v2.1``, the ``compute`` endpoint in Keystone's catalog in region
  ``RegionOne`` (beside Neutron and Cinder) and alone in each of ``regions`` (``PROXY_REGION`` for the
  fixture): accounts there go through Nova's proxy APIs, which reach the same Neutron and Cinder. Every
  microversion up to Nova's maximum; availability zone ``nova``.
- flavors ``m1.tiny`` (id 1), ``m1.small`` (2), ``m1.medium`` (3), ``m1.large`` (4), ``m1.xlarge`` (5);
  images (fake Glance, listed through Nova's ``/images`` proxy up to microversion 2.35), e.g.
  ``155d900f-4e14-4e4c-a73d-069cbf4541e6``.
- servers boot asynchronously (BUILD, then ACTIVE); stop/start/reboot/delete work; with ``networks``
  ``"auto"`` (or omitted before 2.37) a server lands on the project's only network: Neutron's shared
  ``private`` (10.0.0.0/16) until the project makes its own.
- Nova's default quotas (10 instances, 20 cores, 50 GiB RAM per project); admins change them with
  ``os-quota-sets``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from .cinder_peer import Cinder
from .keystone_peer import Keystone
from .neutron_peer import Neutron
from .process import Peer, start_script
from .venvs import Progress, clean_env, ensure_venv, python

START_TIMEOUT = 180.0
#: A catalog region with Nova alone: accounts there reach Neutron and Cinder through Nova's proxy APIs.
PROXY_REGION = "RegionNovaOnly"


class Nova(Peer):
    """A running Nova API: ``url`` is the v2.1 endpoint (no project id in the path)."""


def start_nova(
    workdir: Path,
    keystone: Keystone,
    progress: Progress = print,
    *,
    neutron: Neutron | None = None,
    cinder: Cinder | None = None,
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
    # keystonemiddleware validates tokens as a service user, as in a real deployment; its ``service`` role is
    # what Neutron and Cinder look for on the service token Nova sends along with the user's.
    service = keystone.service_user("nova")
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
    env = {**clean_env(), "OS_TEST_TIMEOUT": "0", "OS_STDOUT_CAPTURE": "0", "OS_STDERR_CAPTURE": "0"}
    process, port = start_script(python(venv), "nova_server.py", [str(config)], workdir, START_TIMEOUT, env)
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
