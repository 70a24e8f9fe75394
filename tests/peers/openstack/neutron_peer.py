"""A real Neutron API (v2.0) on loopback, behind the test Keystone, with a ready-made topology.

``start_neutron(workdir, keystone)`` runs ``scripts/neutron_server.py`` in Neutron's venv: the ML2 core
plugin and the L3 ``router`` service plugin; a sqlite database whose schema is created from Neutron's
models (``neutron-db-manage upgrade heads`` fails on SQLite: its migrations alter constraints); the
in-memory ``fake://`` messaging transport (no broker; casts meant for agents go nowhere); keystonemiddleware
validating tokens against the test Keystone as a ``neutron-*`` service user (admin and service in its own project).
No agent runs. What a client sees:

- ``Neutron.url`` is ``http://127.0.0.1:PORT`` (Neutron's unversioned root; the API is under ``/v2.0``),
  the ``network`` endpoint of region ``Neutron.region`` (Keystone's ``RegionOne`` unless asked) in the
  catalog. Requests are served one at a time (SQLite would fail concurrent writers with 500s).
- Project networks are ``vxlan`` (VNIs 1-1000); ``flat`` ones on physical network ``public`` are the
  admin's. Ports bind to each host of ``compute_hosts`` (default ``compute``): the server records an
  alive Open vSwitch agent for each (tunnel type vxlan, bridge mapping ``public: br-ex``), so an admin
  or ``Neutron.service`` setting ``binding:host_id`` gets ``binding:vif_type`` ``ovs`` (another host:
  ``binding_failed``). Ports stay ``DOWN``: no agent wires them or reports them up.
- Made at start by Keystone's admin (ids on the ``Neutron`` object): external flat network ``public``
  with subnet 203.0.113.0/24 (gateway .1, pool .10-.250, no DHCP) for floating IPs; shared network
  ``private`` with subnet 10.0.0.0/16 (gateway 10.0.0.1, no DHCP); router ``router`` with its gateway on
  ``public`` and an interface on ``private``'s subnet, so a member's floating IP can be associated with
  the member's port on ``private``.
- Security groups on (each project gets its ``default`` group on first use); Neutron's default policies
  (binding attributes are admin-only, and a member cannot delete a port once its ``device_owner`` is
  ``compute:*``) and quotas. No DHCP agent scheduling or notification, no Nova notifications
  (``notify_nova_on_port_*`` off: no agent would ever report a port plugged).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from keystoneauth1 import adapter

from .keystone_peer import Credentials, Keystone
from .process import Peer, PeerProcess, start_script
from .venvs import Progress, clean_env, ensure_venv, python

START_TIMEOUT = 120.0
PHYSNET = "public"  # the flat physical network of the external network, mapped to br-ex on every host
# Longer than any test session (Neutron's maximum is about 24 days): the agents we record never go stale.
AGENT_DOWN_TIME = 2_000_000

NEUTRON_CONF = """\
[DEFAULT]
log_file = {workdir}/neutron-server.log
debug = false
host = neutron-peer
core_plugin = ml2
service_plugins = router
auth_strategy = keystone
api_paste_config = {paste}
transport_url = fake://
# No DHCP agent: no DHCP ports, scheduling or notifications.
enable_traditional_dhcp = false
dhcp_agent_notification = false
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
agent_down_time = {agent_down_time}

[database]
connection = {database}

{authtoken}
[oslo_concurrency]
lock_path = {workdir}/locks

[ml2]
type_drivers = flat,vxlan
project_network_types = vxlan
mechanism_drivers = openvswitch
extension_drivers = port_security

[ml2_type_flat]
flat_networks = {physnet}

[ml2_type_vxlan]
vni_ranges = 1:1000

[securitygroup]
enable_security_group = true
"""


class Neutron(Peer):
    """A running Neutron API: ``url`` is its root (the v2.0 API is under ``url + "/v2.0"``)."""

    def __init__(
        self,
        url: str,
        region: str,
        workdir: Path,
        process: PeerProcess,
        service: Credentials,
        topology: dict[str, str],
        startup: float,
    ) -> None:
        super().__init__(url, workdir, process, startup)
        self.region = region
        self.service = service  # the service user: for peers that call Neutron as a service
        self.public_network_id = topology["public_network_id"]
        self.public_subnet_id = topology["public_subnet_id"]
        self.private_network_id = topology["private_network_id"]
        self.private_subnet_id = topology["private_subnet_id"]
        self.router_id = topology["router_id"]


def _create_topology(api: adapter.Adapter) -> dict[str, str]:
    """The external and shared networks and the router between them, made as Keystone's admin."""

    def post(path: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
        return api.post(f"/v2.0/{path}", json={resource: body}).json()[resource]

    public = post(
        "networks",
        "network",
        {
            "name": "public",
            "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": PHYSNET,
        },
    )
    public_subnet = post(
        "subnets",
        "subnet",
        {
            "name": "public-subnet",
            "network_id": public["id"],
            "ip_version": 4,
            "cidr": "203.0.113.0/24",
            "gateway_ip": "203.0.113.1",
            "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.250"}],
            "enable_dhcp": False,
        },
    )
    private = post("networks", "network", {"name": "private", "shared": True})
    private_subnet = post(
        "subnets",
        "subnet",
        {
            "name": "private-subnet",
            "network_id": private["id"],
            "ip_version": 4,
            "cidr": "10.0.0.0/16",
            "gateway_ip": "10.0.0.1",
            "enable_dhcp": False,
        },
    )
    router = post("routers", "router", {"name": "router", "external_gateway_info": {"network_id": public["id"]}})
    api.put(f"/v2.0/routers/{router['id']}/add_router_interface", json={"subnet_id": private_subnet["id"]})
    return {
        "public_network_id": public["id"],
        "public_subnet_id": public_subnet["id"],
        "private_network_id": private["id"],
        "private_subnet_id": private_subnet["id"],
        "router_id": router["id"],
    }


def start_neutron(
    workdir: Path,
    keystone: Keystone,
    progress: Progress = print,
    *,
    region: str | None = None,
    compute_hosts: tuple[str, ...] = ("compute",),
) -> Neutron:
    """Build (once) Neutron's venv, serve a fresh sqlite Neutron from ``workdir``, catalog it, make the topology."""
    venv = ensure_venv("neutron", progress)
    started = time.monotonic()
    region = region or keystone.region
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "locks").mkdir(exist_ok=True)
    # keystonemiddleware validates tokens as a service user, as in a real deployment.
    service = keystone.service_user("neutron")
    service = dataclasses.replace(service, region_name=region)
    database = workdir / "neutron.db"
    database.unlink(missing_ok=True)
    conf = workdir / "neutron.conf"
    conf.write_text(
        NEUTRON_CONF.format(
            workdir=workdir,
            paste=venv / "etc" / "neutron" / "api-paste.ini",
            database=f"sqlite:///{database}",
            agent_down_time=AGENT_DOWN_TIME,
            authtoken=keystone.authtoken_conf(service),
            physnet=PHYSNET,
        )
    )
    config = workdir / "neutron-peer.json"
    config.write_text(
        json.dumps(
            {
                "config_file": str(conf),
                "port": 0,
                "workdir": str(workdir),
                "database": f"sqlite:///{database}",
                "compute_hosts": list(compute_hosts),
                "agent": {
                    "tunnel_types": ["vxlan"],
                    "bridge_mappings": {PHYSNET: "br-ex"},
                    "integration_bridge": "br-int",
                    "datapath_type": "system",
                    "ovs_hybrid_plug": False,
                },
            }
        )
    )
    process, port = start_script(python(venv), "neutron_server.py", [str(config)], workdir, START_TIMEOUT, clean_env())
    try:
        url = f"http://127.0.0.1:{port}"
        keystone.register_endpoint("network", "neutron", url, region=region)
        api = adapter.Adapter(keystone.admin_session(), endpoint_override=url)
        topology = _create_topology(api)
    except Exception:
        process.stop()
        raise
    neutron = Neutron(url, region, workdir, process, service, topology, time.monotonic() - started)
    progress(
        f"openstack peers: neutron serving {url} in {region} (set up and started in {neutron.startup_seconds:.1f}s)"
    )
    return neutron
