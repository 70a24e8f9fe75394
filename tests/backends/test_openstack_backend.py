"""The OpenStack backend against real Keystone, Nova, Neutron, Cinder and Glance servers (``peers.openstack``),
on loopback.

Region ``RegionOne`` of the peers' catalog has Nova, Neutron and Cinder; Nova's images come from its
harness's fake Glance through Nova's image proxy, which the accounts here allow (``nova_proxies``). The
contract runs there, and again in ``PROXY_REGION``, where the catalog has Nova alone and every one of Nova's
proxy APIs stands in (reaching the same Neutron and Cinder behind Nova). The real Glance lives in a region
of its own. What the gateway adds is tested through a real ``cloudgate serve`` with two tenants, each its
own Keystone project.
"""

from __future__ import annotations

import base64
import importlib
import json
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from backend_contract import BackendContract, by_id, raises, settle
from botocore.exceptions import ClientError
from ec2util import error_of
from gateway_process import GatewayProcess
from keystoneauth1 import adapter
from keystoneauth1 import exceptions as ka_exc
from keystoneauth1.exceptions import http as ka_http
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from netutil import free_port
from peers.openstack import (
    PROXY_REGION,
    Cinder,
    Credentials,
    Glance,
    Keystone,
    Neutron,
    Nova,
    ensure_venv,
    start_keystone,
    start_nova,
)
from peers.openstack.glance_peer import PAGE_SIZE
from peers.openstack.venvs import python

from backends.openstack import OpenStackBackend
from backends.openstack.backend import ALL_CAPABILITIES, COMPUTE_CAPABILITIES
from backends.openstack.faults import translate
from backends.openstack.interfaces import OWN_PORT, from_ports
from backends.openstack.machines import NATIVE_STATES, NOVA_STATUSES, NOVA_TASKS, STATE_MAP, machine_state
from backends.openstack.options import CHECKS, PROXIES
from gateway.config import load as load_config
from translator.backend import AccountConfig, BackendServices, Capability
from translator.errors import (
    BackendUnavailable,
    CloudgateError,
    Conflict,
    Forbidden,
    InvalidParameter,
    NotFound,
    OutcomeUnknown,
    QuotaExceeded,
    TransientBackendError,
    Unsupported,
)
from translator.model import (
    BlockDevice,
    ImageState,
    ImageUpdate,
    Limits,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    Rule,
    SecurityGroupSpec,
    VolumeSpec,
    VolumeState,
    VolumeTier,
)

REPO = Path(__file__).resolve().parents[2]
#: Nova's proxies that the peer's fake services can serve.
PEER_PROXIES = ["images"]
SETTLE = 30.0  # seconds for a fake-driver transition, generous for a loaded CI machine


def options(creds: Credentials, **extra: Any) -> dict[str, Any]:
    """An account's options as a config file would give them, for a peer project's user."""
    return {
        "auth_url": creds.auth_url,
        "region_name": creds.region_name,
        "username": creds.username,
        "password": creds.password,
        "project_name": creds.project_name,
        "user_domain_name": creds.user_domain_name,
        "project_domain_name": creds.project_domain_name,
        "nova_proxies": PEER_PROXIES,
        "network": "private",  # Neutron's shared network; a project's own networks come and go in tests
        "timeout": 20,
        "delete_wait": 5,
    } | extra


def make_backend(client: redis.Redis, opts: dict[str, Any], key: str = "t1/os-1") -> OpenStackBackend:
    assert OpenStackBackend.validate_options(opts) == []
    tenant, region = key.split("/")
    account = AccountConfig(
        key=key, tenant=tenant, region=region, backend="os", driver="openstack", zones=("nova",), options=opts
    )
    return OpenStackBackend(account, BackendServices(client))


@pytest.fixture
def services(redis_server: Any) -> Iterator[redis.Redis]:
    """A Redis client the backend is lent (it keeps nothing there); not flushed, so gateways' data stays."""
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture
def backend(nova: Nova, openstack_project: Credentials, services: redis.Redis) -> Iterator[OpenStackBackend]:
    """An account on a fresh Keystone project and user (key pairs are per user, quotas per project)."""
    b = make_backend(services, options(openstack_project))
    yield b
    b.close()


class TestOpenStackContract(BackendContract):
    """Every contract test, against Keystone, Nova, Neutron and Cinder (images through Nova's proxy)."""


class TestOpenStackProxyContract(BackendContract):
    """Every contract test in a region whose catalog has Nova alone: Nova's proxy APIs (microversion 2.35)
    stand in for Glance, Cinder and Neutron, and reach the real Neutron and Cinder behind Nova."""

    @pytest.fixture
    def backend(self, nova: Nova, openstack_project: Credentials, services: redis.Redis) -> Iterator[OpenStackBackend]:
        b = make_backend(services, options(openstack_project, region_name=PROXY_REGION, nova_proxies=list(PROXIES)))
        yield b
        b.close()


# ---------------------------------------------------------------------------------------------------
# Declaration and options (no peer needed)
# ---------------------------------------------------------------------------------------------------


def test_entry_point_is_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = project["project"]["entry-points"]["cloudgate.backends"]["openstack"]
    module, _, name = target.partition(":")
    assert getattr(importlib.import_module(module), name) is OpenStackBackend


@pytest.mark.parametrize(
    ("status", "task", "state"),
    [
        ("BUILD", None, MachineState.PENDING),
        ("ACTIVE", None, MachineState.RUNNING),
        ("ACTIVE", "powering-off", MachineState.STOPPING),
        ("SHUTOFF", None, MachineState.STOPPED),
        ("SHUTOFF", "powering-on", MachineState.PENDING),
        ("PAUSED", None, MachineState.PAUSED),
        ("ACTIVE", "image_snapshot", MachineState.CAPTURING),
        ("SHUTOFF", "image_uploading", MachineState.CAPTURING),
        ("SUSPENDED", None, MachineState.SUSPENDED),
        ("REBOOT", None, MachineState.REBOOTING),
        ("HARD_REBOOT", None, MachineState.REBOOTING),
        ("ERROR", None, MachineState.ERROR),
        ("ACTIVE", "deleting", MachineState.TERMINATING),
        ("DELETED", None, MachineState.TERMINATED),
        ("SHELVED_OFFLOADED", None, MachineState.STOPPED),
        ("SOMETHING_NEW", None, MachineState.ERROR),
    ],
)
def test_nova_states(status: str, task: str | None, state: MachineState) -> None:
    assert machine_state(status, task) is state


VALID = {"auth_url": "https://keystone.example.com:5000/v3", "username": "u", "password": "p", "project_name": "x"}


@pytest.mark.parametrize(
    ("options_table", "expected"),
    [
        ({k: v for k, v in VALID.items() if k != "auth_url"}, "auth_url: is required"),
        (VALID | {"auth_url": "keystone:5000"}, "auth_url: must be an http:// or https:// URL"),
        ({k: v for k, v in VALID.items() if k != "password"}, "password: is required"),
        ({k: v for k, v in VALID.items() if k != "project_name"}, "project_name: is required"),
        (VALID | {"interface": "private"}, "interface: must be one of public, internal, admin"),
        (VALID | {"timeout": 0}, "timeout: must be a number > 0"),
        (VALID | {"timeout": True}, "timeout: must be a number > 0"),
        (VALID | {"nova_proxies": ["volumes", "dns"]}, "nova_proxies: must be a list of"),
        (VALID | {"compute_microversion": "3"}, "compute_microversion: must be a compute microversion"),
        (VALID | {"endpoint_override": {"dns": "http://x"}}, "endpoint_override: unknown service 'dns'"),
        (VALID | {"endpoint_override": {"compute": "x"}}, "endpoint_override: compute: must be an http"),
        (VALID | {"region": "RegionOne"}, "region: unknown option"),
        (VALID | {"volume_types": {"ssd": ""}}, "volume_types: must be a table"),
        (VALID | {"volume_types": ["ssd"]}, "volume_types: must be a table"),
        (VALID | {"volume_types": {"gp3": "fast"}}, "volume_types: unknown key(s) 'gp3'"),
        (
            {"auth_url": VALID["auth_url"], "application_credential_secret": "s"},
            "application_credential_id: is required",
        ),
        ({"auth_url": VALID["auth_url"], "application_credential_id": "i"}, "application_credential_secret"),
    ],
)
def test_option_validation(options_table: dict[str, Any], expected: str) -> None:
    problems = OpenStackBackend.validate_options(options_table)
    assert any(p.startswith(expected) for p in problems), problems


def test_valid_options() -> None:
    full = VALID | {
        "region_name": "RegionOne",
        "interface": "internal",
        "timeout": 12.5,
        "verify": False,
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        "compute_microversion": "2.60",
        "nova_proxies": [],
        "endpoint_override": {"compute": "http://nova.example.com:8774/v2.1"},
        "network": "private",
        "floating_network": "public",
        "volume_types": {"ssd": "fast", "hdd": "bulk"},
        "terminated_retention": 0,
        "delete_wait": 0,
    }
    assert OpenStackBackend.validate_options(full) == []
    app = {"auth_url": VALID["auth_url"], "application_credential_id": "i", "application_credential_secret": "s"}
    assert OpenStackBackend.validate_options(app) == []


def test_example_config_is_valid() -> None:
    """conf/examples/openstack.toml documents every option, and the gateway accepts it as it is."""
    config = load_config(REPO / "conf" / "examples" / "openstack.toml")
    acme, initech = config.accounts["acme/os-1"], config.accounts["initech/os-1"]
    assert acme.driver == initech.driver == "openstack"
    assert acme.options["auth_url"] == initech.options["auth_url"]
    text = (REPO / "conf" / "examples" / "openstack.toml").read_text()
    assert all(f"{name} =" in text for name in CHECKS), [n for n in CHECKS if f"{n} =" not in text]


@pytest.mark.parametrize(
    ("fault", "expected", "reason"),
    [
        (ka_http.ServiceUnavailable(http_status=503, message="busy"), TransientBackendError, "server_error"),
        (ka_http.InternalServerError(http_status=500, message="oops"), TransientBackendError, "server_error"),
        (ka_http.TooManyRequests(http_status=429, message="slow down"), TransientBackendError, "throttled"),
        (RateLimitReachedError(headers={}), TransientBackendError, "throttled"),
        (BaseHTTPError(502, "bad gateway"), TransientBackendError, "server_error"),
        (requests.ConnectTimeout("no connection"), TransientBackendError, "unreachable"),
        (ConnectionRefusedError(111, "refused"), TransientBackendError, "unreachable"),
        # Nothing shows the request never left (a read timeout, a reset): it may have reached the service.
        (ka_exc.ConnectFailure("reset"), OutcomeUnknown, "unreachable"),
        (requests.ConnectionError("reset"), OutcomeUnknown, "unreachable"),
        (requests.ReadTimeout("slow"), OutcomeUnknown, "unreachable"),
        (BaseHTTPError(404, "Instance x could not be found."), NotFound, None),
        (BaseHTTPError(409, "Key pair 'k' already exists."), Conflict, "duplicate"),
        (BaseHTTPError(409, "Cannot 'stop' instance x while it is in vm_state stopped"), Conflict, "state"),
        (BaseHTTPError(403, "Quota exceeded for instances: Requested 1, but already used 10"), QuotaExceeded, "quota"),
        (BaseHTTPError(403, "Policy doesn't allow os_compute_api:servers:create"), Forbidden, "policy"),
        (BaseHTTPError(400, "Invalid input for field/attribute name."), InvalidParameter, None),
        (ka_http.Unauthorized(http_status=401, message="no"), BackendUnavailable, "credentials"),
        (ka_exc.EndpointNotFound("no compute"), BackendUnavailable, "catalog"),
    ],
)
def test_fault_table(fault: Exception, expected: type[CloudgateError], reason: str | None) -> None:
    error = translate(fault, "machine", "test")
    assert type(error) is expected and error.reason == reason and error.kind == "machine", repr(error)


def test_faults_of_our_own_pass_through() -> None:
    """A bug of ours (not a client-library fault) is no canonical error: the translator logs its traceback."""
    assert translate(KeyError("flavor"), "machine") is None


# ---------------------------------------------------------------------------------------------------
# Against the peers: identity, catalog, capabilities, isolation, faults
# ---------------------------------------------------------------------------------------------------


def nova_server(creds: Credentials, nova: Nova, server_id: str) -> dict[str, Any] | None:
    """A server as its project sees it straight from Nova (None once it is gone), bypassing the backend."""
    response = creds.session().get(f"{nova.url}/servers/{server_id}", raise_exc=False)
    return response.json()["server"] if response.status_code == 200 else None


def wait_state(b: OpenStackBackend, native_id: str, state: MachineState) -> Any:
    return settle(lambda: by_id(b.list_machines(), native_id), lambda m: m.state == state, timeout=SETTLE)


def image_id(b: OpenStackBackend) -> str:
    return BackendContract.image_id(b)


def launch(b: OpenStackBackend, **spec: Any) -> Any:
    made = b.create_machines(MachineSpec(**({"image_id": image_id(b), "flavor_id": "1"} | spec)))[0]
    return wait_state(b, made.native_id, MachineState.RUNNING)


NOVA_STATES_SCRIPT = """
import json, warnings
warnings.simplefilter("ignore")
from nova.api.openstack import common
from nova.compute import task_states
statuses = {s for row in common._STATE_MAP.values() for s in row.values()} | {common.status_from_state("x")}
tasks = {v for k, v in vars(task_states).items() if k.isupper() and isinstance(v, str)}
print(json.dumps({"statuses": sorted(statuses), "tasks": sorted(tasks)}))
"""


def test_native_states_are_novas(nova: Nova) -> None:
    """The statuses and task states the table reads are those the Nova we run has (its own modules say)."""
    venv = ensure_venv("nova", print)
    found = subprocess.run(
        [str(python(venv)), "-c", NOVA_STATES_SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    nova_has = json.loads(found.stdout.strip().splitlines()[-1])
    assert set(nova_has["statuses"]) == NOVA_STATUSES
    assert set(nova_has["tasks"]) >= NOVA_TASKS
    assert set(STATE_MAP) == NATIVE_STATES == OpenStackBackend.NATIVE_STATES


def test_capabilities_follow_the_catalog(nova: Nova, openstack_project: Credentials, services: redis.Redis) -> None:
    alone = options(openstack_project, region_name=PROXY_REGION)  # a region with Nova alone in the catalog
    bare = make_backend(services, alone | {"nova_proxies": []})
    assert bare.cloud.endpoints()["compute"] == nova.url
    assert bare.capabilities == COMPUTE_CAPABILITIES
    proxied = make_backend(services, alone)
    assert proxied.capabilities == COMPUTE_CAPABILITIES | {Capability.IMAGES, Capability.IMAGE_CREATE}
    every_proxy = make_backend(services, alone | {"nova_proxies": list(PROXIES)})
    # What only Neutron, Cinder or Glance can do is never claimed through Nova's proxies.
    only_services = {
        Capability.NETWORK_CREATE,
        Capability.EGRESS_RULES,
        Capability.NETWORK_UP_DOWN,
        Capability.NETWORK_UPDATE,
        Capability.VOLUME_UPDATE,
        Capability.VOLUME_RESIZE,
        Capability.IMAGE_UPDATE,
    }
    assert every_proxy.capabilities == ALL_CAPABILITIES - only_services
    # RegionOne has Neutron and Cinder: everything but images, whose proxy the account does not allow here.
    full = make_backend(services, options(openstack_project, nova_proxies=[]))
    assert full.capabilities == ALL_CAPABILITIES - {Capability.IMAGES, Capability.IMAGE_CREATE, Capability.IMAGE_UPDATE}


def test_limits_are_the_project_quotas(
    nova: Nova, neutron: Neutron, keystone: Keystone, openstack_project: Credentials, services: redis.Redis
) -> None:
    """Instances from Nova's limits, floating IPs from Neutron's quotas (unknown behind Nova's proxy)."""
    direct = make_backend(services, options(openstack_project))
    proxied = make_backend(services, options(openstack_project, region_name=PROXY_REGION, nova_proxies=list(PROXIES)))
    defaults = direct.limits()
    assert defaults.max_machines == 10 and defaults.max_addresses == 50  # Nova's and Neutron's defaults
    admin = keystone.admin_session()
    project = openstack_project.project_id
    admin.put(f"{nova.url}/os-quota-sets/{project}", json={"quota_set": {"instances": 7}})
    admin.put(f"{neutron.url}/v2.0/quotas/{project}", json={"quota": {"floatingip": 3}})
    assert direct.limits() == Limits(max_machines=7, max_addresses=3)
    # Nova's own floating IP quota (its limits up to 2.35) is enforced by nothing: not reported.
    assert proxied.limits() == Limits(max_machines=7)
    admin.put(f"{nova.url}/os-quota-sets/{project}", json={"quota_set": {"instances": -1}})
    assert direct.limits().max_machines is None  # unlimited


def test_check_reaches_keystone_and_nova(backend: OpenStackBackend) -> None:
    backend.check()


def test_application_credential(nova: Nova, openstack_project: Credentials, services: redis.Redis) -> None:
    """An application credential, made by the user for its project, authenticates an account on its own."""
    session = openstack_project.session()
    body = {"application_credential": {"name": "cloudgate"}}
    made = session.post(
        f"{openstack_project.auth_url}/users/{openstack_project.user_id}/application_credentials", json=body
    ).json()["application_credential"]
    opts = {
        "auth_url": openstack_project.auth_url,
        "application_credential_id": made["id"],
        "application_credential_secret": made["secret"],
        "nova_proxies": PEER_PROXIES,
    }
    b = make_backend(services, opts)
    b.check()
    assert b.cloud.project_id() == openstack_project.project_id
    assert b.list_machines() == []


def test_wrong_password_is_unavailable_not_retried(
    nova: Nova, openstack_project: Credentials, services: redis.Redis
) -> None:
    b = make_backend(services, options(openstack_project, password="wrong"))
    with raises(BackendUnavailable, reason="credentials"):
        b.check()
    # Without a catalog, capabilities are what the options allow; every call then fails as above.
    assert b.capabilities >= COMPUTE_CAPABILITIES
    with raises(BackendUnavailable, reason="credentials"):
        b.list_machines()


@pytest.mark.parametrize("which", ["keystone", "nova"])
def test_unreachable_service_is_transient(
    which: str, nova: Nova, openstack_project: Credentials, services: redis.Redis
) -> None:
    """Connection refused (a service down, a wrong port) is transient: the translator retries it, then 503."""
    closed = f"http://127.0.0.1:{free_port()}"
    extra = (
        {"auth_url": f"{closed}/v3"} if which == "keystone" else {"endpoint_override": {"compute": f"{closed}/v2.1"}}
    )
    b = make_backend(services, options(openstack_project, **extra))
    with raises(TransientBackendError, reason="unreachable"):
        b.check()
    with raises(TransientBackendError, reason="unreachable"):
        b.list_machines()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (the listen backlog accepts for us)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("which", ["keystone", "nova"])
def test_every_call_has_a_timeout(
    which: str, silent_port: int, nova: Nova, openstack_project: Credentials, services: redis.Redis
) -> None:
    """A service that never answers fails the call after ``timeout`` (transient), instead of hanging a worker."""
    silent = f"http://127.0.0.1:{silent_port}"
    extra: dict[str, Any] = {"auth_url": f"{silent}/v3"}
    if which == "nova":
        extra = {"endpoint_override": {"compute": f"{silent}/v2.1"}}
    b = make_backend(services, options(openstack_project, timeout=1, **extra))
    with raises(TransientBackendError, reason="unreachable"):
        b.list_machines()


def test_nova_failing_then_stopped(services: redis.Redis, tmp_path: Path) -> None:
    """A Keystone and Nova of their own: a real 5xx is transient, and so is every call once Nova is stopped.

    This Nova runs with its harness's fake Cinder, which cannot list volumes: Nova's os-volumes proxy
    answers 500.
    """
    keystone = start_keystone(tmp_path / "keystone")
    try:
        nova = start_nova(tmp_path / "nova", keystone)
        try:
            b = make_backend(services, options(keystone.create_project_user(), nova_proxies=["volumes"]))
            b.check()
            assert Capability.VOLUMES in b.capabilities
            with raises(TransientBackendError, reason="server_error"):
                b.list_volumes()
            nova.stop()
            with raises(TransientBackendError, reason="unreachable"):
                b.check()
        finally:
            nova.stop()
    finally:
        keystone.stop()


def test_projects_are_isolated(
    nova: Nova, keystone: Keystone, openstack_project: Credentials, services: redis.Redis
) -> None:
    other_creds = keystone.create_project_user()
    try:
        mine, theirs = make_backend(services, options(openstack_project)), make_backend(services, options(other_creds))
        vm = launch(mine)
        assert by_id(theirs.list_machines(), vm.native_id) is None
        with raises(NotFound, kind="machine"):
            theirs.act_on_machine(vm.native_id, MachineAction.TERMINATE)
        assert nova_server(openstack_project, nova, vm.native_id)["tenant_id"] == openstack_project.project_id
        mine.create_key_pair("same", "ed25519")
        theirs.create_key_pair("same", "ed25519")  # key pairs are per user
        mine.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    finally:
        keystone.delete_project_user(other_creds)


@pytest.mark.parametrize("path", ["libcloud", "keystoneauth1"])
def test_revoked_token_is_reissued(
    path: str, keystone: Keystone, nova: Nova, openstack_project: Credentials, services: redis.Redis
) -> None:
    """A token Keystone revoked gets a 401 from Nova: the backend takes a new one and the call succeeds.

    The token is revoked before Nova has seen it: keystonemiddleware caches tokens it validated.
    """
    b = make_backend(services, options(openstack_project))
    call = {"libcloud": b.list_machines, "keystoneauth1": b.list_images}[path]
    token = b.cloud.token()
    keystone.admin_session().delete(f"{keystone.url}/auth/tokens", headers={"X-Subject-Token": token})
    assert isinstance(call(), list)
    assert b.cloud.token() != token


def test_a_server_paused_by_another_client_shows_paused_and_unpauses(
    nova: Nova, openstack_project: Credentials, backend: OpenStackBackend
) -> None:
    """Nova's pause, done by another client, reads as paused (not suspended); RESUME is refused, UNPAUSE wakes it."""
    vm = launch(backend)
    openstack_project.session().post(f"{nova.url}/servers/{vm.native_id}/action", json={"pause": None})
    wait_state(backend, vm.native_id, MachineState.PAUSED)
    assert nova_server(openstack_project, nova, vm.native_id)["status"] == "PAUSED"
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.RESUME)
    backend.act_on_machine(vm.native_id, MachineAction.UNPAUSE)
    wait_state(backend, vm.native_id, MachineState.RUNNING)
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)


def test_rules_are_read_as_neutron_keeps_them(backend: OpenStackBackend) -> None:
    """Protocol numbers are Neutron's names; one Neutron lacks is refused before it is asked."""
    group = backend.create_security_group(SecurityGroupSpec(name="numbers", description="rules by number"))
    asked = Rule(direction="ingress", protocol="6", from_port=22, to_port=22, cidr="203.0.113.0/24")
    group = backend.authorize_rules(group.native_id, [asked])
    assert ("ingress", "tcp", 22, 22, "203.0.113.0/24", None) in {r.key() for r in group.rules}
    with raises(InvalidParameter, kind="rule", reason="protocol"):
        backend.authorize_rules(group.native_id, [Rule(direction="ingress", protocol="gre", cidr="0.0.0.0/0")])
    with raises(Conflict, kind="security_group", reason="duplicate"):  # Nova names a server's groups by name
        backend.create_security_group(SecurityGroupSpec(name="numbers", description="again"))
    backend.delete_security_group(group.native_id)


def cinder_volume(creds: Credentials, cinder: Cinder, volume_id: str) -> dict[str, Any] | None:
    """A volume as its project sees it straight from Cinder (None once it is gone), bypassing the backend."""
    response = creds.session().get(f"{cinder.url}/volumes/{volume_id}", raise_exc=False)
    return response.json()["volume"] if response.status_code == 200 else None


def test_volume_tiers_map_to_cinder_types(
    cinder: Cinder, nova: Nova, openstack_project: Credentials, services: redis.Redis
) -> None:
    b = make_backend(services, options(openstack_project, volume_types={"ssd": "ssd", "io": "ssd", "hdd": "hdd"}))
    fast = b.create_volume(VolumeSpec(size_gb=1, tier=VolumeTier.SSD, zone="nova"))
    cold = b.create_volume(VolumeSpec(size_gb=1, tier=VolumeTier.HDD, zone="nova"))
    other = b.create_volume(VolumeSpec(size_gb=1, zone="nova"))  # standard, unmapped: Cinder's default type
    made = [cinder_volume(openstack_project, cinder, v.native_id)["volume_type"] for v in (fast, cold, other)]
    assert made == ["ssd", "hdd", "__DEFAULT__"]
    # Read back, a Cinder type is the first tier mapped to it; an unmapped one is the standard tier.
    listed = {v.native_id: v.tier for v in b.list_volumes()}
    assert [listed[v.native_id] for v in (fast, cold, other)] == [VolumeTier.SSD, VolumeTier.HDD, VolumeTier.STANDARD]
    for v in (fast, cold, other):
        b.delete_volume(v.native_id)


def test_disks_at_launch_become_cinder_volumes(
    cinder: Cinder, nova: Nova, openstack_project: Credentials, services: redis.Redis
) -> None:
    """Disks at launch: a blank one and one from a snapshot, made by Nova in Cinder, typed from microversion
    2.67, deleted with the server or kept, as each asks."""
    b = make_backend(services, options(openstack_project, compute_microversion="2.67", volume_types={"ssd": "ssd"}))
    source = b.create_volume(VolumeSpec(size_gb=1, zone="nova"))
    settle(lambda: by_id(b.list_volumes(), source.native_id), lambda v: v.state == VolumeState.AVAILABLE)
    snapshot = b.create_snapshot(source.native_id, "seed")
    settle(lambda: by_id(b.list_snapshots(), snapshot.native_id), lambda s: s.state.value == "completed")
    disks = (
        BlockDevice(device="/dev/vdb", size_gb=2, tier=VolumeTier.SSD, delete_on_termination=True),
        BlockDevice(device="/dev/vdc", snapshot_id=snapshot.native_id, delete_on_termination=False),
    )
    vm = launch(b, block_devices=disks)
    assert len(vm.volume_ids) == 2
    made = {v: cinder_volume(openstack_project, cinder, v) for v in vm.volume_ids}
    blank = next(v for v, raw in made.items() if not raw["snapshot_id"])
    copied = next(v for v, raw in made.items() if raw["snapshot_id"] == snapshot.native_id)
    assert (made[blank]["size"], made[blank]["volume_type"], made[blank]["status"]) == (2, "ssd", "in-use")
    assert made[copied]["size"] == 1 and made[blank]["attachments"][0]["server_id"] == vm.native_id
    b.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    wait_state(b, vm.native_id, MachineState.TERMINATED)
    settle(lambda: cinder_volume(openstack_project, cinder, blank), lambda raw: raw is None)
    kept = settle(lambda: by_id(b.list_volumes(), copied), lambda v: v is not None and v.state == VolumeState.AVAILABLE)
    assert kept.attachments == []
    # Cinder keeps a volume while it has snapshots (EC2 would not): the snapshot goes first.
    b.delete_snapshot(snapshot.native_id)
    for volume_id in (copied, source.native_id):
        b.delete_volume(volume_id)
    # Without volumes (a region with Nova alone, no proxy for them), disks at launch are refused up front.
    alone = make_backend(services, options(openstack_project, region_name=PROXY_REGION))
    with raises(Unsupported, reason="block_device"):
        alone.create_machines(MachineSpec(image_id=image_id(alone), flavor_id="1", block_devices=disks[:1]))


def test_launch_details_reach_nova(
    nova: Nova, keystone: Keystone, openstack_project: Credentials, backend: OpenStackBackend, services: redis.Redis
) -> None:
    key = backend.create_key_pair("launch-key", "rsa").key_pair
    script = base64.b64encode(b"#!/bin/sh\necho hello\n").decode()
    vm = launch(backend, name="web", key_name=key.native_id, zone="nova", user_data=script)
    server = nova_server(openstack_project, nova, vm.native_id)
    assert (server["name"], server["key_name"], server["OS-EXT-AZ:availability_zone"]) == ("web", "launch-key", "nova")
    assert vm.key_name == "launch-key" and vm.zone == "nova" and vm.private_ip
    # Nova's default policy shows user data to admins only: a member reads none, an admin account the script.
    assert backend.machine_user_data(vm.native_id) is None
    admin_creds = keystone.create_project_user(roles=("admin",))
    admin = make_backend(services, options(admin_creds), key="t9/os-admin")
    try:
        assert admin.machine_user_data(vm.native_id) == script
        with raises(NotFound, kind="machine"):
            admin.machine_user_data("00000000-0000-4000-8000-000000000000")
    finally:
        admin.close()
        keystone.delete_project_user(admin_creds)
    backend.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    wait_state(backend, vm.native_id, MachineState.TERMINATED)
    with raises(Conflict, kind="machine", reason="state"):
        backend.act_on_machine(vm.native_id, MachineAction.START)


def test_recent_compute_microversion(nova: Nova, openstack_project: Credentials, services: redis.Redis) -> None:
    """At 2.92 Nova only imports key pairs (ours are generated here), embeds flavors and wants ``networks``."""
    b = make_backend(services, options(openstack_project, compute_microversion="2.92"))
    made = b.create_key_pair("modern", "ed25519")
    assert "PRIVATE KEY" in made.private_key and made.key_pair.key_type == "ed25519"
    vm = launch(b, key_name="modern")
    assert (vm.flavor_id, vm.flavor_name, vm.vcpus, vm.memory_mb) == ("1", "m1.tiny", 1, 512)
    assert vm.private_ip and vm.key_name == "modern"
    b.act_on_machine(vm.native_id, MachineAction.STOP)
    wait_state(b, vm.native_id, MachineState.STOPPED)
    assert b.update_machine(vm.native_id, MachineUpdate(flavor_id="2")).flavor_id == "2"
    b.act_on_machine(vm.native_id, MachineAction.TERMINATE)
    wait_state(b, vm.native_id, MachineState.TERMINATED)


# ---------------------------------------------------------------------------------------------------
# Through the gateway: EC2 in front, Keystone projects behind
# ---------------------------------------------------------------------------------------------------

GATEWAY_CONFIG = """
[gateway]
workers = 2
threads = 4
redis_url = "{redis_url}"

[translator]
cache_ttl = 5.0
transitional_cache_ttl = 0.2
retry_attempts = 2
retry_initial_wait = 0.01
retry_max_wait = 0.05

[backends.os]
driver = "openstack"
auth_url = "{auth_url}"
region_name = "RegionOne"
interface = "public"
timeout = 20
nova_proxies = ["images"]

[tenants.acme]
account_id = "111111111111"
[tenants.acme.regions.os-1]
backend = "os"
zones = ["nova"]
{acme}

[tenants.globex]
account_id = "222222222222"
[tenants.globex.regions.os-1]
backend = "os"
zones = ["nova"]
{globex}

[[users]]
access_key = "acme"
secret = "acme-secret"
tenant = "acme"
role = "admin"

[[users]]
access_key = "globex"
secret = "globex-secret"
tenant = "globex"
role = "admin"
"""


def credentials_toml(creds: Credentials, **extra: str) -> str:
    lines = {
        "username": creds.username,
        "password": creds.password,
        "project_name": creds.project_name,
        "user_domain_name": creds.user_domain_name,
        "project_domain_name": creds.project_domain_name,
    } | extra
    return "\n".join(f'{k} = "{v}"' if not v.startswith("{") else f"{k} = {v}" for k, v in lines.items())


def write_gateway_config(path: Path, redis_url: str, keystone: Keystone, acme: str, globex: str) -> Path:
    path.write_text(GATEWAY_CONFIG.format(redis_url=redis_url, auth_url=keystone.url, acme=acme, globex=globex))
    return path


class Tenants:
    """The two tenants' Keystone credentials and a running gateway in front of them."""

    def __init__(self, acme: Credentials, globex: Credentials, gateway: GatewayProcess, config: Path) -> None:
        self.acme, self.globex, self.gateway, self.config = acme, globex, gateway, config


@pytest.fixture(scope="module")
def tenants(
    nova: Nova, keystone: Keystone, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenants]:
    acme, globex = keystone.create_project_user(), keystone.create_project_user()
    config = write_gateway_config(
        tmp_path_factory.mktemp("osgw") / "gw.toml",
        redis_server.url.rsplit("/", 1)[0] + "/14",
        keystone,
        credentials_toml(acme),
        credentials_toml(globex),
    )
    flush = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/14")
    flush.flushdb()
    flush.close()
    gateway = GatewayProcess(config)
    yield Tenants(acme, globex, gateway, config)
    gateway.stop()
    keystone.delete_project_user(acme)
    keystone.delete_project_user(globex)


def ec2(t: Tenants, who: str = "acme") -> Any:
    return t.gateway.client(who, f"{who}-secret", region="os-1")


def instance(client: Any, instance_id: str) -> dict[str, Any]:
    reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservations[0]["Instances"][0]


def wait_ec2(client: Any, instance_id: str, state: str) -> dict[str, Any]:
    return settle(lambda: instance(client, instance_id), lambda i: i["State"]["Name"] == state, timeout=SETTLE)


def bootable_image(client: Any) -> str:
    """One of the peer's images every flavor boots (some of its fake images ask for ephemeral encryption)."""
    (image,) = client.describe_images(Filters=[{"Name": "name", "Values": ["fakeimage7"]}])["Images"]
    return image["ImageId"]


def nova_status(creds: Credentials, nova: Nova, server_id: str) -> str:
    server = nova_server(creds, nova, server_id)
    return "GONE" if server is None else server["status"]


def instance_actions(creds: Credentials, nova: Nova, server_id: str) -> list[str]:
    """What Nova recorded being asked of a server, oldest first (its instance-action log lists newest first)."""
    actions = creds.session().get(f"{nova.url}/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    return [a["action"] for a in reversed(actions)]


def project_servers(creds: Credentials, nova: Nova) -> set[str]:
    """Ids of the project's live servers, straight from Nova."""
    return {s["id"] for s in creds.session().get(f"{nova.url}/servers").json()["servers"]}


def test_gateway_run_instances_lifecycle(tenants: Tenants, nova: Nova) -> None:
    """RunInstances makes a Nova server in the tenant's project; every action reaches Nova."""
    client = ec2(tenants)
    before = project_servers(tenants.acme, nova)
    image = bootable_image(client)
    types = client.describe_instance_types()["InstanceTypes"]
    tiny = min(types, key=lambda t: t["MemoryInfo"]["SizeInMiB"])["InstanceType"]
    run = client.run_instances(
        ImageId=image,
        InstanceType=tiny,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "gw-web"}]}],
    )
    iid = run["Instances"][0]["InstanceId"]
    assert run["Instances"][0]["State"]["Name"] in ("pending", "running")
    wait_ec2(client, iid, "running")
    (server_id,) = project_servers(tenants.acme, nova) - before
    assert nova_server(tenants.acme, nova, server_id)["tenant_id"] == tenants.acme.project_id
    assert nova_status(tenants.acme, nova, server_id) == "ACTIVE"

    client.stop_instances(InstanceIds=[iid], Force=True)  # Nova has no hard stop: the machine stops all the same
    wait_ec2(client, iid, "stopped")
    assert nova_status(tenants.acme, nova, server_id) == "SHUTOFF"
    client.start_instances(InstanceIds=[iid])
    wait_ec2(client, iid, "running")
    assert nova_status(tenants.acme, nova, server_id) == "ACTIVE"
    client.reboot_instances(InstanceIds=[iid])
    settle(lambda: instance_actions(tenants.acme, nova, server_id), lambda a: "reboot" in a, timeout=SETTLE)
    wait_ec2(client, iid, "running")
    assert instance_actions(tenants.acme, nova, server_id) == ["create", "stop", "start", "reboot"]
    client.terminate_instances(InstanceIds=[iid])
    wait_ec2(client, iid, "terminated")
    # Nova shows the server DELETED (terminated to EC2) for a moment before it stops finding it at all
    settle(lambda: nova_status(tenants.acme, nova, server_id), "GONE".__eq__, timeout=SETTLE)


def test_gateway_launch_disk_from_a_gateway_snapshot(tenants: Tenants) -> None:
    """A snapshot named by its gateway id inside RunInstances' BlockDeviceMapping reaches Nova as Cinder's id."""
    client = ec2(tenants)
    volume = client.create_volume(AvailabilityZone="nova", Size=1)["VolumeId"]
    settle(lambda: client.describe_volumes(VolumeIds=[volume])["Volumes"][0]["State"], "available".__eq__)
    snapshot = client.create_snapshot(VolumeId=volume)["SnapshotId"]
    settle(lambda: client.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["State"], "completed".__eq__)
    mapping = [{"DeviceName": "/dev/sdf", "Ebs": {"SnapshotId": snapshot, "DeleteOnTermination": True}}]
    iid = client.run_instances(
        ImageId=bootable_image(client), InstanceType=_smallest_type(client), MinCount=1, MaxCount=1,
        BlockDeviceMappings=mapping,
    )["Instances"][0]["InstanceId"]  # fmt: skip
    try:
        attached = settle(
            lambda: client.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [iid]}])["Volumes"],
            lambda vs: any(v.get("SnapshotId") == snapshot for v in vs),
            timeout=SETTLE,
        )
        # Its id is derived from the Cinder snapshot the volume names: the one the gateway's id stands for.
        made = next(v for v in attached if v.get("SnapshotId") == snapshot)
        assert made["Size"] == 1
    finally:
        client.terminate_instances(InstanceIds=[iid])
        wait_ec2(client, iid, "terminated")


def _smallest_type(client: Any) -> str:
    types = client.describe_instance_types()["InstanceTypes"]
    return min(types, key=lambda t: t["MemoryInfo"]["SizeInMiB"])["InstanceType"]


def test_gateway_second_tenant_cannot_see(tenants: Tenants, nova: Nova) -> None:
    client, other = ec2(tenants), ec2(tenants, "globex")
    image = bootable_image(client)
    iid = client.run_instances(ImageId=image, InstanceType="m1.tiny", MinCount=1, MaxCount=1)["Instances"][0][
        "InstanceId"
    ]
    wait_ec2(client, iid, "running")
    seen = [i["InstanceId"] for r in other.describe_instances()["Reservations"] for i in r["Instances"]]
    assert iid not in seen
    with pytest.raises(ClientError) as info:
        other.terminate_instances(InstanceIds=[iid])
    assert error_of(info) == ("InvalidInstanceID.NotFound", 400)
    assert project_servers(tenants.globex, nova) == set()
    client.terminate_instances(InstanceIds=[iid])


def test_gateway_readyz_ok(tenants: Tenants) -> None:
    response = requests.get(f"{tenants.gateway.url}/readyz", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["backend:acme/os-1"] == "ok"


def test_cloudgate_check_verifies_accounts(tenants: Tenants) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(tenants.config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "ok    acme/os-1 (openstack)" in result.stdout
    assert "ok    globex/os-1 (openstack)" in result.stdout


@pytest.fixture(scope="module")
def broken(
    tenants: Tenants, keystone: Keystone, redis_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, Path]]:
    """A gateway whose tenant acme reaches Nova at a closed port and globex Keystone at another."""
    nova_url = f"http://127.0.0.1:{free_port()}/v2.1"
    acme = credentials_toml(tenants.acme, endpoint_override=f'{{ compute = "{nova_url}" }}')
    globex = credentials_toml(tenants.globex, auth_url=f"http://127.0.0.1:{free_port()}/v3")
    config = write_gateway_config(
        tmp_path_factory.mktemp("osgw-broken") / "gw.toml",
        redis_server.url.rsplit("/", 1)[0] + "/13",
        keystone,
        acme,
        globex,
    )
    gateway = GatewayProcess(config)
    yield gateway, config
    gateway.stop()


def test_backend_down_is_unavailable_503(broken: tuple[GatewayProcess, Path]) -> None:
    gateway, config = broken
    ready = requests.get(f"{gateway.url}/readyz", timeout=60)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["backend:acme/os-1"].startswith("unavailable")
    assert checks["backend:globex/os-1"].startswith("unavailable")
    for who in ("acme", "globex"):
        client = gateway.client(who, f"{who}-secret", region="os-1")
        with pytest.raises(ClientError) as info:
            client.describe_instances()
        assert error_of(info) == ("Unavailable", 503)
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "FAIL  acme/os-1 (openstack)" in result.stdout


# ---------------------------------------------------------------------------------------------------
# A real Glance (``peers.openstack.glance_peer``), the image endpoint of its own catalog region.
# Nova's snapshots go to Nova's in-process fake Glance, never to this one: createImage is not tested
# here, nor launching from a Glance image (Nova would look it up in its fake Glance).
# ---------------------------------------------------------------------------------------------------


def glance_options(creds: Credentials, nova: Nova, glance: Glance) -> dict[str, Any]:
    """An account in Glance's region: images from the catalog, compute pinned to the peer Nova."""
    return options(creds, region_name=glance.region, nova_proxies=[], endpoint_override={"compute": nova.url})


def glance_api(creds: Credentials, glance: Glance) -> adapter.Adapter:
    """The project's own client of Glance, to make and inspect images behind the backend's back."""
    return adapter.Adapter(creds.session(), service_type="image", interface="public", region_name=glance.region)


def upload(api: adapter.Adapter, name: str, data: bytes = b"disk\n" * 64, **fields: Any) -> str:
    """A raw image with ``data`` (none: it stays queued); returns its id."""
    body = {"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "private"} | fields
    image_id = str(api.post("/v2/images", json=body).json()["id"])
    if data:
        api.put(f"/v2/images/{image_id}/file", data=data, headers={"Content-Type": "application/octet-stream"})
    return image_id


@pytest.fixture
def glance_backend(
    nova: Nova, glance: Glance, openstack_project: Credentials, services: redis.Redis
) -> Iterator[OpenStackBackend]:
    b = make_backend(services, glance_options(openstack_project, nova, glance))
    yield b
    b.close()


def test_glance_in_the_catalog_provides_images(nova: Nova, glance: Glance, glance_backend: OpenStackBackend) -> None:
    endpoints = glance_backend.cloud.endpoints()
    assert (endpoints["image"], endpoints["compute"]) == (f"{glance.url}/v2", nova.url)
    # Images without any Nova proxy: the catalog's image service alone gives them.
    images = {Capability.IMAGES, Capability.IMAGE_CREATE, Capability.IMAGE_UPDATE}
    assert glance_backend.capabilities == COMPUTE_CAPABILITIES | images
    glance_backend.check()  # one authenticated call to Glance among the probes


def test_images_are_listed_from_glance_page_by_page(
    glance: Glance, openstack_project: Credentials, glance_backend: OpenStackBackend
) -> None:
    api = glance_api(openstack_project, glance)
    extra = {"os_distro": "cirros", "architecture": "aarch64", "os_type": "windows", "description": "from glance"}
    ids = [upload(api, f"img-{n}", min_disk=1, **extra) for n in range(PAGE_SIZE + 2)]  # more than one page
    listed = {i.native_id: i for i in glance_backend.list_images()}
    assert {i for i, image in listed.items() if not image.public} == set(ids)
    assert not any(i.name.startswith("fakeimage") for i in listed.values())  # Nova's fake Glance is not asked
    image = listed[ids[0]]
    assert (image.name, image.state, image.public, image.owner) == (
        "img-0",
        ImageState.AVAILABLE,
        False,
        openstack_project.project_id,
    )
    assert (image.os, image.architecture, image.platform, image.min_disk_gb, image.description) == (
        "cirros",
        "aarch64",
        "windows",
        1,
        "from glance",
    )
    assert image.source_machine_id is None


def test_glance_image_states(
    keystone: Keystone, glance: Glance, openstack_project: Credentials, glance_backend: OpenStackBackend
) -> None:
    """queued reads as pending, active as available, an admin's deactivation as failed (and back)."""
    api = glance_api(openstack_project, glance)
    queued, active = upload(api, "queued", data=b""), upload(api, "active")
    assert glance_backend.find_image(queued).state is ImageState.PENDING  # type: ignore[union-attr]
    assert glance_backend.find_image(active).state is ImageState.AVAILABLE  # type: ignore[union-attr]
    admin = glance_api(keystone.admin, glance)
    admin.post(f"/v2/images/{active}/actions/deactivate")
    assert by_id(glance_backend.list_images(), active).state is ImageState.FAILED
    admin.post(f"/v2/images/{active}/actions/reactivate")
    assert glance_backend.find_image(active).state is ImageState.AVAILABLE  # type: ignore[union-attr]
    assert glance_backend.find_image("00000000-0000-0000-0000-000000000000") is None


def test_public_images_of_other_projects_private_ones_not(
    keystone: Keystone,
    nova: Nova,
    glance: Glance,
    openstack_project: Credentials,
    glance_backend: OpenStackBackend,
    services: redis.Redis,
) -> None:
    admin = glance_api(keystone.admin, glance)
    public = upload(admin, "shared-by-admin", visibility="public")
    mine = upload(glance_api(openstack_project, glance), "mine")
    stranger = keystone.create_project_user()
    other = make_backend(services, glance_options(stranger, nova, glance), key="t2/os-1")
    try:
        image = by_id(glance_backend.list_images(), public)
        assert (image.public, image.owner) == (True, keystone.admin.project_id)
        seen = {i.native_id for i in other.list_images()}
        assert public in seen and mine not in seen
        assert other.find_image(mine) is None
    finally:
        other.close()
        keystone.delete_project_user(stranger)
        admin.delete(f"/v2/images/{public}")


def test_delete_image_removes_it_from_glance(
    glance: Glance, openstack_project: Credentials, glance_backend: OpenStackBackend
) -> None:
    api = glance_api(openstack_project, glance)
    image_id = upload(api, "doomed")
    glance_backend.delete_image(image_id)
    assert api.get(f"/v2/images/{image_id}", raise_exc=False).status_code == 404
    assert image_id not in {i.native_id for i in glance_backend.list_images()}
    with raises(NotFound, kind="image"):
        glance_backend.delete_image(image_id)


def test_image_updates_are_glance_patches(
    glance: Glance, openstack_project: Credentials, glance_backend: OpenStackBackend
) -> None:
    api = glance_api(openstack_project, glance)
    image_id = upload(api, "before")
    updated = glance_backend.update_image(image_id, ImageUpdate(name="after", description="patched"))
    assert (updated.name, updated.description) == ("after", "patched")
    raw = api.get(f"/v2/images/{image_id}").json()
    assert (raw["name"], raw["description"]) == ("after", "patched")
    glance_backend.update_image(image_id, ImageUpdate(description="again"))  # a property there already
    assert by_id(glance_backend.list_images(), image_id).description == "again"
    glance_backend.delete_image(image_id)
    with raises(NotFound, kind="image"):
        glance_backend.update_image(image_id, ImageUpdate(name="gone"))


GLANCE_GATEWAY_CONFIG = """
[gateway]
workers = 1
threads = 4
redis_url = "{redis_url}"

[translator]
cache_ttl = 0.5
transitional_cache_ttl = 0.2

[backends.osg]
driver = "openstack"
auth_url = "{auth_url}"
region_name = "{region}"
timeout = 20
nova_proxies = []
endpoint_override = {{ compute = "{nova_url}" }}

[tenants.acme]
account_id = "111111111111"
[tenants.acme.regions.os-glance]
backend = "osg"
zones = ["nova"]
{credentials}

[[users]]
access_key = "acme"
secret = "acme-secret"
tenant = "acme"
role = "admin"
"""


def test_ec2_images_come_from_glance(
    keystone: Keystone,
    nova: Nova,
    glance: Glance,
    openstack_project: Credentials,
    redis_server: Any,
    tmp_path: Path,
) -> None:
    """DescribeImages lists what the project has in Glance; DeregisterImage deletes it there."""
    redis_url = redis_server.url.rsplit("/", 1)[0] + "/11"
    flush = redis.Redis.from_url(redis_url)
    flush.flushdb()
    flush.close()
    config = tmp_path / "gw.toml"
    config.write_text(
        GLANCE_GATEWAY_CONFIG.format(
            redis_url=redis_url,
            auth_url=keystone.url,
            region=glance.region,
            nova_url=nova.url,
            credentials=credentials_toml(openstack_project),
        )
    )
    api = glance_api(openstack_project, glance)
    image_id = upload(api, "from-glance", description="uploaded to the real Glance")
    gateway = GatewayProcess(config)
    try:
        client = gateway.client("acme", "acme-secret", region="os-glance")
        (image,) = client.describe_images(Owners=["self"])["Images"]
        assert (image["Name"], image["State"], image["Public"], image["Description"]) == (
            "from-glance",
            "available",
            False,
            "uploaded to the real Glance",
        )
        client.deregister_image(ImageId=image["ImageId"])
        assert api.get(f"/v2/images/{image_id}", raise_exc=False).status_code == 404
    finally:
        gateway.stop()


def test_of_ports_made_in_one_second_the_one_booted_with_comes_first() -> None:
    """Neutron times ports to the second; a port attached on a chosen subnet in the boot's second (a fast
    cloud) still lists after the boot port, whatever their ids."""
    second = "2026-12-02T08:50:01Z"
    boot = {"id": "ffff", "created_at": second, "fixed_ips": [], "status": "ACTIVE"}
    attached = {"id": "0000", "created_at": second, "fixed_ips": [], "status": "ACTIVE", "description": OWN_PORT}
    assert [i.native_id for i in from_ports([attached, boot], {})] == ["ffff", "0000"]
    later = {**attached, "created_at": "2026-12-02T08:50:02Z"}
    assert [i.native_id for i in from_ports([later, boot], {})] == ["ffff", "0000"]
