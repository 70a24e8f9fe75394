"""The real Nova API on loopback, run by the nova virtualenv's python (not by the test process).

Nova's wheel ships its functional-test harness: ``_IntegratedTestBase`` gives sqlite databases, an
in-process conductor, scheduler and compute (fake virt driver), a real in-process Placement and fake
Glance, Neutron and Cinder. We set one of those test cases up, then serve its ``osapi_compute`` WSGI
app (with the real keystonemiddleware against the test Keystone) over HTTP until told to stop:
SIGTERM, SIGINT or end of standard input (so a dead parent never leaves this process behind).

Usage: python nova_server.py CONFIG.json — the JSON names ``port`` (0: any), ``keystone_url``,
``username``/``password``/``project_name`` (the service user keystonemiddleware validates tokens
with), ``workdir`` (logs, ``ready.json`` with the bound port once serving) and ``log_level``.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import logging
import os
import signal
import sys
import threading
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
from keystoneauth1 import loading as ks_loading
from nova.conf import CONF
from nova.tests.functional import integrated_helpers
from oslo_utils import uuidutils

# Addresses for the per-project networks of the fake Neutron: one /20 each.
SUBNETS = ipaddress.ip_network("10.0.0.0/8").subnets(new_prefix=20)


class PeerNeutron(nova_fixtures.NeutronFixture):
    """The fake Neutron, with a private network and a ``default`` security group for every project.

    Upstream's fixture has one network and one security group, owned by its fixed test project, and
    gives every port the same address; our projects are real Keystone ones made per test tenant.
    """

    def __init__(self, test: Any) -> None:
        super().__init__(test)
        self._project_nets: dict[str, str] = {}
        self._next_ip: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _ensure_project(self, project_id: str) -> None:
        with self._lock:
            if project_id in self._project_nets or project_id == self.tenant_id:
                return
            cidr = next(SUBNETS)
            net_id, subnet_id, sg_id = (uuidutils.generate_uuid() for _ in range(3))
            hosts = cidr.hosts()
            gateway = next(hosts)
            self._networks[net_id] = {
                **copy.deepcopy(self.network_1),
                "id": net_id,
                "name": "private",
                "tenant_id": project_id,
                "project_id": project_id,
                "subnets": [subnet_id],
            }
            self._subnets[subnet_id] = {
                **copy.deepcopy(self.subnet_1),
                "id": subnet_id,
                "network_id": net_id,
                "tenant_id": project_id,
                "project_id": project_id,
                "gateway_ip": str(gateway),
                "cidr": str(cidr),
                "allocation_pools": [{"start": str(cidr[2]), "end": str(cidr[-2])}],
            }
            self._security_groups[sg_id] = {
                **copy.deepcopy(self.security_group),
                "id": sg_id,
                "tenant_id": project_id,
                "project_id": project_id,
                "security_group_rules": [],
            }
            self._project_nets[project_id] = net_id
            self._next_ip[subnet_id] = hosts

    def list_networks(self, retrieve_all: bool = True, **params: Any) -> dict[str, Any]:
        if isinstance(params.get("tenant_id"), str):
            self._ensure_project(params["tenant_id"])
        return super().list_networks(retrieve_all, **params)

    def list_security_groups(self, retrieve_all: bool = True, **params: Any) -> dict[str, Any]:
        if isinstance(params.get("tenant_id"), str):
            self._ensure_project(params["tenant_id"])
        return super().list_security_groups(retrieve_all, **params)

    def list_subnets(self, retrieve_all: bool = True, **params: Any) -> dict[str, Any]:
        wanted = params.get("id")
        if not wanted:
            return super().list_subnets(retrieve_all, **params)
        ids = {wanted} if isinstance(wanted, str) else set(wanted)
        return {"subnets": [copy.deepcopy(s) for s in self._subnets.values() if s["id"] in ids]}

    def create_port(self, body: dict[str, Any] | None = None) -> dict[str, Any]:
        request = (body or {}).get("port", {})
        net = self._networks.get(request.get("network_id", ""))
        if net is None or net["tenant_id"] == self.tenant_id:
            return super().create_port(body)
        subnet_id = net["subnets"][0]
        with self._lock:
            address = str(next(self._next_ip[subnet_id]))
        port = copy.deepcopy(request)
        port.update(copy.deepcopy(self.default_port))
        port.update(
            {
                "id": uuidutils.generate_uuid(),
                "mac_address": "fa:16:3e:" + ":".join(f"{b:02x}" for b in os.urandom(3)),
                "network_id": net["id"],
                "tenant_id": net["tenant_id"],
                "project_id": net["tenant_id"],
                "fixed_ips": [{"ip_address": address, "subnet_id": subnet_id}],
                "security_groups": request.get("security_groups", []),
            }
        )
        self._ports[port["id"]] = port
        return {"port": copy.deepcopy(port)}


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
        group = "keystone_authtoken"
        ks_loading.register_auth_conf_options(CONF, group)
        CONF.register_opts(ks_loading.get_auth_plugin_conf_options("password"), group=group)
        self.flags(
            www_authenticate_uri=cfg["keystone_url"],
            auth_type="password",
            auth_url=cfg["keystone_url"],
            username=cfg["username"],
            password=cfg["password"],
            project_name=cfg["project_name"],
            user_domain_id="default",
            project_domain_id="default",
            interface="public",
            http_connect_timeout=10,
            group=group,
        )
        region = cfg.get("region", "RegionOne")
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

        # Set from a signal handler or a greenthread and polled: a plain flag, no lock a handler could block on.
        stopping = {"now": False}

        def on_signal(signum: int, frame: Any) -> None:
            stopping["now"] = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        def watch_stdin() -> None:
            while os.read(0, 4096):  # green under eventlet: yields until the pipe has data or closes
                pass
            stopping["now"] = True

        sock = eventlet.listen(("127.0.0.1", int(self.config.get("port", 0))))
        server = eventlet.spawn(
            eventlet.wsgi.server,
            sock,
            self.api_fixture.app(),
            log=logging.getLogger("nova.peer.wsgi"),
            log_output=False,
        )
        eventlet.spawn(watch_stdin)
        ready = Path(self.config["workdir"]) / "ready.json"
        ready.with_suffix(".tmp").write_text(json.dumps({"port": sock.getsockname()[1], "pid": os.getpid()}))
        ready.with_suffix(".tmp").rename(ready)
        while not stopping["now"]:
            eventlet.sleep(0.1)
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
    nova_fixtures.NeutronFixture = RealService if NovaPeer.config.get("neutron_url") else PeerNeutron
    if NovaPeer.config.get("cinder"):
        nova_fixtures.CinderFixture = RealService
    os.environ["OS_TEST_TIMEOUT"] = "0"  # oslotest would otherwise end the "test" (our server) after a while
    result = Result()
    NovaPeer("test_serve").run(result)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
