"""The real Nova API on loopback, run by the nova virtualenv's python (not by the test process).

Nova's wheel ships its functional-test harness: ``_IntegratedTestBase`` gives sqlite databases, an
in-process conductor, scheduler and compute (fake virt driver), a real in-process Placement and fake
Glance, Neutron and Cinder. We set one of those test cases up, with the real Neutron and Cinder in place
of the fakes when the config names them, then serve its ``osapi_compute`` WSGI app (with the real
keystonemiddleware against the test Keystone) over HTTP until told to stop: SIGTERM, SIGINT or end of
standard input (so a dead parent never leaves this process behind).

Usage: python nova_server.py CONFIG.json — the JSON names ``port`` (0: any), ``keystone_url``,
``username``/``password``/``project_name`` (the service user: keystonemiddleware validates tokens with
it, and Nova calls Neutron and Cinder as it), ``workdir`` (logs, ``ready.json`` with the bound port once
serving), ``log_level``, ``region``, ``neutron_url`` (null: the fake Neutron) and ``cinder`` (true: the
catalog's ``volumev3`` in ``region``; false: the fake Cinder).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

# Nova's functional package monkey-patches eventlet on import: it must come before anything else of nova's.
from nova.tests import functional  # noqa: F401  isort: skip
import eventlet
import eventlet.wsgi
import fixtures
import nova.tests.fixtures as nova_fixtures
from green_serving import announce, run_until_stopped
from keystoneauth1 import loading as ks_loading
from nova.conf import CONF
from nova.tests.functional import integrated_helpers


class RealService(fixtures.Fixture):
    """Stands in for one of the harness's fake services when the real one runs: Nova's own client talks to it."""

    def __init__(self, test: Any) -> None:
        super().__init__()


def _service_auth(group: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """Password auth options of a ``[group]`` Nova loads a keystoneauth plugin from, as the service user."""
    CONF.register_opts(ks_loading.get_auth_plugin_conf_options("password"), group=group)
    return {
        "auth_type": "password",
        "auth_url": cfg["keystone_url"],
        "username": cfg["username"],
        "password": cfg["password"],
        "project_name": cfg["project_name"],
        "user_domain_id": "default",
        "project_domain_id": "default",
    }


class NovaPeer(integrated_helpers._IntegratedTestBase):
    """Nova's functional-test services, with real keystonemiddleware and asynchronous casts."""

    STUB_KEYSTONE = False
    CAST_AS_CALL = False
    config: dict[str, Any] = {}

    def _setup_services(self) -> None:
        cfg = self.config
        self.flags(compute_driver="fake.FakeDriver")  # 1000 vCPUs: room for every test's servers
        self.flags(allow_resize_to_same_host=True)  # one compute host: a resize must land on it
        self.flags(api_paste_config=str(Path(sys.prefix) / "etc" / "nova" / "api-paste.ini"), group="wsgi")
        # keystonemiddleware's auth options are not registered yet when the flags are set: register them first.
        ks_loading.register_auth_conf_options(CONF, "keystone_authtoken")
        self.flags(
            **_service_auth("keystone_authtoken", cfg),
            www_authenticate_uri=cfg["keystone_url"],
            interface="public",
            http_connect_timeout=10,
            group="keystone_authtoken",
        )
        region = cfg.get("region", "RegionOne")
        if cfg.get("neutron_url") or cfg.get("cinder"):
            # As deployments must since CVE-2023-2088: Nova's calls carry a service token beside the user's,
            # which Neutron's and Cinder's policies ask for (a member alone cannot delete a server's port).
            self.flags(**_service_auth("service_user", cfg), send_service_user_token=True, group="service_user")
        if cfg.get("neutron_url"):
            self.flags(
                **_service_auth("neutron", cfg),
                region_name=region,
                endpoint_override=cfg["neutron_url"],
                default_floating_pool=cfg.get("floating_pool", "public"),
                group="neutron",
            )
        if cfg.get("cinder"):
            self.flags(
                **_service_auth("cinder", cfg),
                catalog_info="volumev3:cinderv3:publicURL",
                os_region_name=region,
                group="cinder",
            )
        super()._setup_services()

    def test_serve(self) -> None:
        """Serve the compute API until a signal or the end of standard input."""
        # The harness turns some warnings into errors and keeps logs in memory: undo both for a long run.
        warnings.resetwarnings()
        warnings.simplefilter("ignore")
        root = logging.getLogger()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        file_handler = logging.FileHandler(Path(self.config["workdir"]) / "nova.log")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        root.addHandler(file_handler)
        root.setLevel(self.config.get("log_level", "INFO"))

        sock = eventlet.listen(("127.0.0.1", int(self.config.get("port", 0))))
        server = eventlet.spawn(
            eventlet.wsgi.server,
            sock,
            self.api_fixture.app(),
            log=logging.getLogger("nova.peer.wsgi"),
            log_output=False,
        )
        announce(Path(self.config["workdir"]) / "ready.json", sock.getsockname()[1])
        run_until_stopped()
        server.kill()
        sock.close()


class Result:
    """The few testtools result callbacks we need: report anything that went wrong on stderr."""

    def __init__(self) -> None:
        self.failed = False

    def startTest(self, test: Any) -> None:
        pass

    def stopTest(self, test: Any) -> None:
        pass

    def addSuccess(self, test: Any, details: Any = None) -> None:
        pass

    def _fail(self, test: Any, err: Any = None, details: Any = None) -> None:
        self.failed = True
        for name, content in (details or {}).items():
            print(f"--- {name}\n{content.as_text()}", file=sys.stderr)
        if err:
            traceback.print_exception(*err, file=sys.stderr)

    addError = addFailure = addUnexpectedSuccess = addExpectedFailure = addSkip = _fail


def main() -> int:
    NovaPeer.config = json.loads(Path(sys.argv[1]).read_text())
    # _IntegratedTestBase builds its fake services by these module attributes.
    if NovaPeer.config.get("neutron_url"):
        nova_fixtures.NeutronFixture = RealService
    if NovaPeer.config.get("cinder"):
        nova_fixtures.CinderFixture = RealService
    os.environ["OS_TEST_TIMEOUT"] = "0"  # oslotest would otherwise end the "test" (our server) after a while
    result = Result()
    NovaPeer("test_serve").run(result)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
