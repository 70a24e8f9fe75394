"""Nova servers as machines: listing, launch, lifecycle actions, resize, console output.

Actions, launch, resize and console output go through libcloud's OpenStack driver. Servers are read as
Nova's JSON on libcloud's connection, because libcloud's ``Node`` keeps only its own lossy state (no
Nova status: ``PAUSED``, ``SHELVED``, ``RESIZE`` are all "unknown" or "pending" there).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from libcloud.compute.base import Node, NodeImage, NodeSize
from libcloud.compute.types import NodeState

from backends.openstack import interfaces
from translator.backend import Capability
from translator.errors import CloudgateError, Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import (
    ActionMethod,
    Flavor,
    Image,
    Machine,
    MachineAction,
    MachineSpec,
    MachineState,
    MachineUpdate,
    NetworkInterface,
)

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend
    from backends.openstack.session import ComputeDriver

#: The server statuses Nova's API reports (``nova.api.openstack.common``: its state map's values and the
#: ``UNKNOWN`` of a VM state it does not know), and the task states read below (``nova.compute.task_states``);
#: the peer tests check both lists against the Nova they run.
NOVA_STATUSES = frozenset(
    {
        "ACTIVE",
        "BUILD",
        "DELETED",
        "ERROR",
        "HARD_REBOOT",
        "MIGRATING",
        "PASSWORD",
        "PAUSED",
        "REBOOT",
        "REBUILD",
        "RESCUE",
        "RESIZE",
        "REVERT_RESIZE",
        "SHELVED",
        "SHELVED_OFFLOADED",
        "SHUTOFF",
        "SOFT_DELETED",
        "SUSPENDED",
        "UNKNOWN",
        "VERIFY_RESIZE",
    }
)
NOVA_TASKS = frozenset(
    {
        "powering-off",
        "shelving",
        "powering-on",
        "unshelving",
        "resuming",
        "unpausing",
        "rebooting",
        "reboot_started",
        "rebooting_hard",
        "reboot_started_hard",
        "deleting",
        "soft-deleting",
        "image_snapshot",
        "image_snapshot_pending",
        "image_pending_upload",
        "image_uploading",
    }
)
NATIVE_STATES = NOVA_STATUSES | {f"*:{task}" for task in NOVA_TASKS}

#: Nova server status (or ``*:task_state``) -> canonical state. Task states come first: Nova keeps a
#: server ``ACTIVE`` while it powers off or is deleted, and the task says where it goes.
STATE_MAP: Mapping[str, MachineState] = {
    "BUILD": MachineState.PENDING,
    "REBUILD": MachineState.PENDING,
    "ACTIVE": MachineState.RUNNING,
    "PASSWORD": MachineState.RUNNING,
    "RESCUE": MachineState.RUNNING,
    "MIGRATING": MachineState.RUNNING,
    "RESIZE": MachineState.PENDING,
    "VERIFY_RESIZE": MachineState.PENDING,
    "REVERT_RESIZE": MachineState.PENDING,
    "SHUTOFF": MachineState.STOPPED,
    "SHELVED": MachineState.STOPPED,
    "SHELVED_OFFLOADED": MachineState.STOPPED,
    "PAUSED": MachineState.PAUSED,
    "SUSPENDED": MachineState.SUSPENDED,
    "REBOOT": MachineState.REBOOTING,
    "HARD_REBOOT": MachineState.REBOOTING,
    "ERROR": MachineState.ERROR,
    "UNKNOWN": MachineState.ERROR,
    "DELETED": MachineState.TERMINATED,
    "SOFT_DELETED": MachineState.TERMINATED,
    "*:powering-off": MachineState.STOPPING,
    "*:shelving": MachineState.STOPPING,
    "*:powering-on": MachineState.PENDING,
    "*:unshelving": MachineState.PENDING,
    "*:resuming": MachineState.PENDING,
    "*:unpausing": MachineState.PENDING,
    "*:rebooting": MachineState.REBOOTING,
    "*:reboot_started": MachineState.REBOOTING,
    "*:rebooting_hard": MachineState.REBOOTING,
    "*:reboot_started_hard": MachineState.REBOOTING,
    "*:deleting": MachineState.TERMINATING,
    "*:soft-deleting": MachineState.TERMINATING,
    # An image is being made of the server (ACTIVE or SHUTOFF meanwhile): createImage's task states.
    "*:image_snapshot": MachineState.CAPTURING,
    "*:image_snapshot_pending": MachineState.CAPTURING,
    "*:image_pending_upload": MachineState.CAPTURING,
    "*:image_uploading": MachineState.CAPTURING,
}

#: action -> canonical state the server is in -> libcloud driver method to call (None: already there, EC2's
#: idempotence). A state missing from a row is ``Conflict(reason="state")`` (EC2 IncorrectInstanceState).
ACTIONS: Mapping[MachineAction, Mapping[MachineState, str | None]] = {
    MachineAction.START: {
        MachineState.STOPPED: "start_node",
        MachineState.RUNNING: None,
        MachineState.PENDING: None,
        MachineState.REBOOTING: None,
    },
    MachineAction.STOP: {
        MachineState.RUNNING: "stop_node",
        MachineState.ERROR: "stop_node",
        MachineState.STOPPING: None,
        MachineState.STOPPED: None,
    },
    MachineAction.REBOOT: {MachineState.RUNNING: "ex_soft_reboot_node", MachineState.REBOOTING: None},
    MachineAction.SUSPEND: {MachineState.RUNNING: "ex_suspend_node", MachineState.SUSPENDED: None},
    MachineAction.RESUME: {
        MachineState.SUSPENDED: "ex_resume_node",
        MachineState.RUNNING: None,
        MachineState.PENDING: None,
    },
    MachineAction.PAUSE: {MachineState.RUNNING: "ex_pause_node", MachineState.PAUSED: None},
    MachineAction.UNPAUSE: {
        MachineState.PAUSED: "ex_unpause_node",
        MachineState.RUNNING: None,
        MachineState.PENDING: None,
    },
    MachineAction.TERMINATE: {
        **{s: "destroy_node" for s in MachineState if s not in (MachineState.TERMINATING, MachineState.TERMINATED)},
        MachineState.TERMINATING: None,
        MachineState.TERMINATED: None,
    },
}
#: The hard methods, replacing ACTIONS' row of their action. Nova resets a server (reboot HARD) from more
#: states than it reboots one softly; it has no hard stop (os-stop cuts power after the guest's grace period).
HARD: Mapping[MachineAction, Mapping[MachineState, str | None]] = {
    MachineAction.REBOOT: {
        s: "ex_hard_reboot_node"
        for s in (MachineState.RUNNING, MachineState.REBOOTING, MachineState.PAUSED, MachineState.ERROR)
    },
}

#: Server metadata naming the create that made a server (the translator's idempotency key) and its place in it.
IDEMPOTENCY_KEY, LAUNCH_INDEX = "cloudgate:idempotency_key", "cloudgate:launch_index"
GONE = frozenset({MachineState.TERMINATING, MachineState.TERMINATED})
RESIZE_POLL = 0.2
#: Nova's name for the boot disk on the hypervisors it runs on (libvirt/KVM, its fake driver).
ROOT_DEVICE = "/dev/vda"


def machine_state(status: str, task: str | None) -> MachineState:
    """The canonical state of a server: its task's row, else its status's (unknown statuses are errors)."""
    keys = (f"*:{task}", status) if task else (status,)
    return next((STATE_MAP[k] for k in keys if k in STATE_MAP), MachineState.ERROR)


def parse_time(value: Any) -> float:
    """Epoch seconds of an OpenStack timestamp (ISO 8601, with or without a zone: UTC either way)."""
    if not value:
        return 0.0
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _addresses(server: Mapping[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(network name, first fixed IPv4, first floating IPv4) of a server."""
    private = public = network = None
    for name, entries in (server.get("addresses") or {}).items():
        for entry in entries:
            if entry.get("version", 4) != 4:
                continue
            if entry.get("OS-EXT-IPS:type") == "floating":
                public = public or entry["addr"]
            elif private is None:
                private, network = entry["addr"], name
    return network, private, public


class Refs:
    """What a listing of servers looks up elsewhere (security groups, networks, floating IPs), once per listing."""

    def __init__(self, b: OpenStackBackend) -> None:
        self.b = b
        self._groups: dict[str, str] | None = None
        self._networks: dict[str, str] | None = None
        self._floating: dict[str, str] | None = None
        self._ports: dict[str, list[dict[str, Any]]] | None = None

    def floating(self) -> dict[str, str]:
        """Neutron's floating IPs by the port they are on: Nova's copy of them is only refreshed when Neutron
        notifies Nova, seconds after an association, or a minute later without that."""
        if Capability.ADDRESSES not in self.b.capabilities:
            return {}
        if self._floating is None:
            ips = self.b.cloud.pages("network", "/floatingips", "floatingips", what="list addresses")
            self._floating = {ip["port_id"]: ip["floating_ip_address"] for ip in ips if ip.get("port_id")}
        return self._floating

    def ports(self, server_id: str) -> list[dict[str, Any]]:
        """A server's Neutron ports (every port of the project is listed once per listing)."""
        if self._ports is None:
            self._ports = {}
            for port in self.b.cloud.pages("network", "/ports", "ports", what="list ports"):
                if port.get("device_id"):
                    self._ports.setdefault(port["device_id"], []).append(port)
        return self._ports.get(server_id, [])

    def interfaces(self, server: Mapping[str, Any], zone: str) -> list[NetworkInterface]:
        """A server's interfaces: its Neutron ports where Neutron is in the catalog, else Nova's addresses."""
        if self.b.cloud.has("network"):
            return interfaces.from_ports(self.ports(server["id"]), self.floating())
        return interfaces.from_addresses(server, self.network_id, zone)

    def group_ids(self, names: list[str]) -> list[str]:
        """Nova names a server's groups; the ids are what references carry (unknown names are skipped)."""
        if not names or Capability.SECURITY_GROUPS not in self.b.capabilities:
            return []
        if self._groups is None:
            self._groups = {}
            for g in self.b.list_security_groups():
                self._groups.setdefault(g.name, g.native_id)
        return [self._groups[n] for n in names if n in self._groups]

    def network_id(self, name: str | None) -> str | None:
        if not name or Capability.NETWORKS not in self.b.capabilities:
            return None
        if self._networks is None:
            self._networks = {}
            for n in self.b.list_networks():
                self._networks.setdefault(n.name, n.native_id)
        return self._networks.get(name)


def _flavor(b: OpenStackBackend, raw: Mapping[str, Any]) -> tuple[str | None, Flavor]:
    """A server's flavor: named by id up to microversion 2.46, embedded (name, sizes, no id) from 2.47."""
    index = b.flavor_index()
    if raw.get("id"):
        found = index.get(str(raw["id"]))
        if found is not None:
            return found.native_id, found
    name = str(raw.get("original_name") or "")
    found = next((f for f in index.values() if name and f.name == name), None)
    embedded = Flavor(
        native_id=str(raw.get("id") or ""),
        name=name,
        vcpus=int(raw.get("vcpus") or 0),
        memory_mb=int(raw.get("ram") or 0),
    )
    return (found.native_id if found else embedded.native_id or None), found or embedded


def to_machine(b: OpenStackBackend, server: Mapping[str, Any], refs: Refs | None = None) -> Machine:
    """A canonical machine from Nova's server JSON (any microversion from 2.1)."""
    refs = refs or Refs(b)
    status = str(server.get("status", "UNKNOWN")).upper()
    state = machine_state(status, server.get("OS-EXT-STS:task_state"))
    flavor_id, flavor = _flavor(b, server.get("flavor") or {})
    image = server.get("image") or {}
    network_name, private_ip, public_ip = _addresses(server)
    network_id = refs.network_id(network_name)
    zone = server.get("OS-EXT-AZ:availability_zone") or ""
    nics = [] if state is MachineState.TERMINATED else refs.interfaces(server, zone or b.account.zones[0])
    if nics:  # the machine's own address and network are its primary interface's
        private_ip, network_id = nics[0].private_ip, nics[0].network_id
        if b.cloud.has("network"):  # Neutron's word, fresher than Nova's copy
            public_ip = next((n.public_ip for n in nics if n.public_ip), None)
    fault = server.get("fault") or {}
    metadata = server.get("metadata") or {}
    created = parse_time(server.get("created"))
    return Machine(
        native_id=server["id"],
        name=server.get("name", ""),
        created=created,
        updated=parse_time(server.get("updated")),
        state=state,
        image_id=image.get("id") if isinstance(image, dict) else None,
        flavor_id=flavor_id,
        flavor_name=flavor.name,
        vcpus=flavor.vcpus,
        memory_mb=flavor.memory_mb,
        zone=zone,
        key_name=server.get("key_name") or None,
        security_group_ids=refs.group_ids([g["name"] for g in server.get("security_groups") or []]),
        network_id=network_id,
        subnet_id=nics[0].subnet_id if nics else None,
        private_ip=private_ip,
        public_ip=public_ip,
        volume_ids=[v["id"] for v in server.get("os-extended-volumes:volumes_attached") or []],
        interfaces=nics,
        root_device=server.get("OS-EXT-SRV-ATTR:root_device_name") or ROOT_DEVICE,
        launched=parse_time(server.get("OS-SRV-USG:launched_at")) or created,
        state_reason=str(fault.get("message", "")) if state is MachineState.ERROR else "",
        launch_key=str(metadata.get(IDEMPOTENCY_KEY) or ""),
    )


def _servers(b: OpenStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Nova's server JSON, every page (libcloud's own pagination helper, on its connection)."""

    def call(d: ComputeDriver) -> list[dict[str, Any]]:
        return d._paginated_request("/servers/detail", "servers", d.connection, params=dict(params or {}))["servers"]

    return b.cloud.nova(call, kind="machine", what="list servers")


def list_machines(b: OpenStackBackend) -> list[Machine]:
    """Live servers, plus servers deleted within ``terminated_retention`` (Nova lists those with changes-since)."""
    servers = {s["id"]: s for s in _servers(b)}
    if b.opts.terminated_retention > 0:
        since = iso(time.time() - b.opts.terminated_retention)
        for s in _servers(b, {"changes-since": since}):
            if s["id"] not in servers and str(s.get("status")).upper() in ("DELETED", "SOFT_DELETED"):
                servers[s["id"]] = s
    refs = Refs(b)
    return [to_machine(b, s, refs) for s in servers.values()]


def get_server(b: OpenStackBackend, native_id: str) -> dict[str, Any]:
    """A server's JSON, a recently deleted one included; NotFound(kind="machine") otherwise."""
    try:
        return b.cloud.nova_json("GET", f"/servers/{native_id}", kind="machine", what="get server")["server"]
    except NotFound:
        pass
    if b.opts.terminated_retention > 0:
        since = iso(time.time() - b.opts.terminated_retention)
        for s in _servers(b, {"changes-since": since}):
            if s["id"] == native_id:
                return s
    raise NotFound(f"The machine '{native_id}' does not exist.", kind="machine")


#: Up to this many servers are read one by one (GET /servers/{id}); more, and one listing is cheaper.
BY_ID_MAX = 10


def get_machines(b: OpenStackBackend, native_ids: list[str]) -> list[Machine]:
    """The named servers that exist (recently deleted ones included), read by id when they are few."""
    if len(native_ids) > BY_ID_MAX:
        wanted = set(native_ids)
        return [m for m in list_machines(b) if m.native_id in wanted]
    refs = Refs(b)
    found = []
    for native_id in dict.fromkeys(native_ids):
        try:
            found.append(to_machine(b, get_server(b, native_id), refs))
        except NotFound:
            continue
    return found


def _node(driver: ComputeDriver, native_id: str) -> Node:
    """The minimal libcloud Node its driver methods need (they use only the id)."""
    return Node(id=native_id, name="", state=NodeState.UNKNOWN, public_ips=[], private_ips=[], driver=driver)


# -- launch ------------------------------------------------------------------------------------------


def _check_references(b: OpenStackBackend, spec: MachineSpec) -> Image:
    """Fail before launching anything when a reference is missing, naming its kind (Nova says 400 for all);
    the image found."""
    if spec.flavor_id not in b.flavor_index(refresh=spec.flavor_id not in b.flavor_index()):
        raise NotFound(f"The flavor '{spec.flavor_id}' does not exist.", kind="flavor")
    image = b.find_image(spec.image_id)
    if image is None:
        raise NotFound(f"The image '{spec.image_id}' does not exist.", kind="image")
    if spec.key_name and not any(k.native_id == spec.key_name for k in b.list_key_pairs()):
        raise NotFound(f"The key pair '{spec.key_name}' does not exist.", kind="key_pair")
    if spec.security_group_ids:
        known = {g.native_id for g in b.list_security_groups()}
        missing = [g for g in spec.security_group_ids if g not in known]
        if missing:
            raise NotFound(f"The security group '{missing[0]}' does not exist.", kind="security_group")
    if spec.zone is not None and spec.zone not in b.account.zones:
        raise InvalidParameter(f"The zone '{spec.zone}' is not one of {', '.join(b.account.zones)}.", kind="zone")
    if spec.count < 1:
        raise InvalidParameter("The count of machines must be at least 1.", kind="machine")
    return image


BDM_VOLUME_TYPE = (2, 67)  # the first compute microversion taking a volume type in a block device mapping


def block_device_mappings(b: OpenStackBackend, spec: MachineSpec) -> list[dict[str, Any]]:
    """Nova's ``block_device_mapping_v2`` for the launch's disks: a boot disk with a size boots from a new
    volume of that size made from the image; other disks are new volumes, blank or from a Cinder snapshot."""
    if not spec.block_devices:
        return []
    if Capability.VOLUMES not in b.capabilities:
        raise Unsupported("Disks at launch need volumes, which this cloud does not offer.", reason="block_device")
    major, minor = b.opts.compute_microversion.split(".")
    typed = (int(major), int(minor)) >= BDM_VOLUME_TYPE
    mappings = []
    for disk in spec.block_devices:
        mapping: dict[str, Any] = {"destination_type": "volume", "delete_on_termination": disk.delete_on_termination}
        if disk.boot:
            if not disk.size_gb:
                continue  # the image's own disk, as without a mapping
            mapping |= {"boot_index": 0, "source_type": "image", "uuid": spec.image_id}
        elif disk.snapshot_id:
            mapping |= {"boot_index": -1, "source_type": "snapshot", "uuid": disk.snapshot_id}
        else:
            mapping |= {"boot_index": -1, "source_type": "blank"}
        if disk.size_gb:
            mapping["volume_size"] = disk.size_gb
        cinder_type = b.opts.volume_types.native(disk.tier)
        if cinder_type and typed:
            mapping["volume_type"] = cinder_type
        mappings.append(mapping)
    if not any(m["boot_index"] == 0 for m in mappings):
        # With a mapping list Nova wants the boot disk in it too: the image on the server's local disk.
        local = {"boot_index": 0, "source_type": "image", "destination_type": "local", "uuid": spec.image_id}
        mappings.insert(0, local | {"delete_on_termination": True})
    return mappings


def _user_data(spec: MachineSpec) -> str | None:
    """The user data libcloud sends (it base64-encodes it; ours arrives base64-encoded, as on EC2)."""
    if not spec.user_data:
        return None
    try:
        return base64.b64decode(spec.user_data, validate=True).decode("utf-8", errors="surrogateescape")
    except (binascii.Error, ValueError):
        raise InvalidParameter("The user data must be base64-encoded.", kind="machine", reason="user_data") from None


def launched_with(b: OpenStackBackend, key: str) -> dict[int, dict[str, Any]]:
    """The servers an earlier launch with this idempotency key made (its answer lost, or its worker dead), by
    their index in it. PERF: Nova filters servers by neither metadata nor tag before 2.26: one listing a launch."""
    if not key:
        return {}
    found = {}
    for server in _servers(b):
        metadata = server.get("metadata") or {}
        state = machine_state(str(server.get("status", "")).upper(), server.get("OS-EXT-STS:task_state"))
        if metadata.get(IDEMPOTENCY_KEY) == key and state not in GONE:  # not one a failed launch rolled back
            found[int(metadata.get(LAUNCH_INDEX) or 0)] = server
    return found


def _launch_marks(key: str, index: int) -> dict[str, str]:
    return {IDEMPOTENCY_KEY: key, LAUNCH_INDEX: str(index)} if key else {}


def create_machines(b: OpenStackBackend, spec: MachineSpec) -> list[Machine]:
    """Launch ``spec.count`` servers, all or none; unnamed ones get a name (Nova needs one). A launch repeated
    with its idempotency key finds the servers the first made, and launches only those missing."""
    refs = Refs(b)
    earlier = launched_with(b, spec.idempotency_key)
    if len(earlier) >= spec.count:
        return [to_machine(b, earlier[i], refs) for i in sorted(earlier)[: spec.count]]
    _check_references(b, spec)
    disks = block_device_mappings(b, spec)
    networks = b.launch_networks(spec.subnet_id)
    groups = [_SecurityGroupRef(g) for g in spec.security_group_ids]
    user_data = _user_data(spec)
    base = spec.name or "server-" + uuid.uuid4().hex[:8]
    made: dict[int, str] = {i: server["id"] for i, server in earlier.items()}
    try:
        for i in range(spec.count):
            if i in made:
                continue
            name = base if spec.count == 1 else f"{base}-{i + 1}"

            def launch(d: ComputeDriver, name: str = name, i: int = i) -> Node:
                return d.create_node(
                    name=name,
                    size=NodeSize(spec.flavor_id, "", 0, 0, 0, 0, d),
                    image=NodeImage(spec.image_id, "", d),
                    ex_keyname=spec.key_name,
                    ex_userdata=user_data,
                    ex_security_groups=groups,
                    ex_metadata=_launch_marks(spec.idempotency_key, i),
                    networks=networks,
                    ex_availability_zone=spec.zone,
                    ex_blockdevicemappings=disks or None,
                )

            made[i] = b.cloud.nova(launch, kind="machine", what="create server").id
    except Exception:
        for native_id in made.values():  # all or none, as EC2's RunInstances with MinCount = MaxCount
            with contextlib.suppress(CloudgateError):  # the launch's error is the one to report
                b.cloud.nova(lambda d, i=native_id: d.destroy_node(_node(d, i)), kind="machine")
        raise
    return [to_machine(b, get_server(b, made[i]), refs) for i in sorted(made)]


class _SecurityGroupRef:
    """What libcloud's ``create_node`` reads of a security group: its ``name`` (Nova takes ids there too)."""

    def __init__(self, native_id: str) -> None:
        self.name = native_id


# -- lifecycle ---------------------------------------------------------------------------------------


def act_on_machine(
    b: OpenStackBackend, native_id: str, action: MachineAction, method: ActionMethod = ActionMethod.GRACEFUL
) -> Machine:
    """Start, stop, reboot, suspend, resume, pause, unpause or terminate, with EC2's rules (ACTIONS; HARD for a
    hard reboot); the machine after."""
    machine = to_machine(b, get_server(b, native_id))
    row = (HARD if method is ActionMethod.HARD else ACTIONS).get(action)
    if row is None:
        raise Unsupported(f"Nova has no {method} {action}.", reason="method")
    if machine.state not in row:
        raise Conflict(
            f"The machine '{native_id}' is {machine.state}: it cannot {action}.", kind="machine", reason="state"
        )
    call = row[machine.state]
    if call is None:
        return replace(machine, previous_state=machine.state)
    b.cloud.nova(lambda d: getattr(d, call)(_node(d, native_id)), kind="machine", what=f"{action} server")
    return replace(to_machine(b, get_server(b, native_id)), previous_state=machine.state)


def user_data(b: OpenStackBackend, native_id: str) -> str | None:
    """A server's user data (base64 text, as given at boot): from microversion 2.3, for the roles Nova's
    policy lets see extended attributes (admins by default); None for the others, as for no user data."""
    server = b.cloud.rest(
        "GET", "compute", f"/servers/{native_id}", kind="machine", what="get server", microversion="2.3"
    )
    return server["server"].get("OS-EXT-SRV-ATTR:user_data") or None


def update_machine(b: OpenStackBackend, native_id: str, update: MachineUpdate) -> Machine:
    """Resize (confirmed here, as EC2 changes the type in one step) and rename a stopped server."""
    if update.user_data is not None:
        raise Unsupported("Changing the user data of an OpenStack server is not supported.", reason="user_data")
    machine = to_machine(b, get_server(b, native_id))
    if machine.state is not MachineState.STOPPED:
        raise Conflict(f"The machine '{native_id}' is {machine.state}, not stopped.", kind="machine", reason="state")
    if update.flavor_id and update.flavor_id != machine.flavor_id:
        if update.flavor_id not in b.flavor_index(refresh=update.flavor_id not in b.flavor_index()):
            raise NotFound(f"The flavor '{update.flavor_id}' does not exist.", kind="flavor")
        size = update.flavor_id
        b.cloud.nova(
            lambda d: d.ex_resize(_node(d, native_id), NodeSize(size, "", 0, 0, 0, 0, d)),
            kind="machine",
            what="resize server",
        )
        _confirm_resize(b, native_id, size)
    if update.name is not None and update.name != machine.name:
        b.cloud.nova_json(
            "PUT", f"/servers/{native_id}", kind="machine", what="rename server", body={"server": {"name": update.name}}
        )
    return to_machine(b, get_server(b, native_id))


def _confirm_resize(b: OpenStackBackend, native_id: str, flavor_id: str) -> None:
    """Wait for ``VERIFY_RESIZE``, confirm, and wait for the server to settle (bounded by the call timeout).

    Nova sets the task state before it answers the resize, so a server back at rest without the new
    flavor has had its resize fail (NoValidHost, a refusing hypervisor...). Returning before the confirm
    has settled would let the caller's next action (a delete) race Nova's own confirmation.
    """
    deadline = time.monotonic() + b.opts.timeout
    confirmed = False
    while True:
        server = get_server(b, native_id)
        status = str(server.get("status")).upper()
        at_rest = not server.get("OS-EXT-STS:task_state")
        if status == "VERIFY_RESIZE":
            if not confirmed:
                b.cloud.nova(lambda d: d.ex_confirm_resize(_node(d, native_id)), kind="machine", what="confirm resize")
                confirmed = True
        elif at_rest and status != "ERROR" and _flavor(b, server.get("flavor") or {})[0] == flavor_id:
            return  # confirmed, by us or by Nova's resize_confirm_window
        elif at_rest and status in ("SHUTOFF", "ERROR"):
            fault = (server.get("fault") or {}).get("message") or "Nova reverted it"
            raise Conflict(f"The resize of machine '{native_id}' failed: {fault}", kind="machine", reason="resize")
        if time.monotonic() > deadline:
            raise Conflict(f"The resize of machine '{native_id}' did not finish in time.", kind="machine")
        time.sleep(RESIZE_POLL)


def console_output(b: OpenStackBackend, native_id: str) -> str:
    """The server's console log (Nova's os-getConsoleOutput)."""
    result = b.cloud.nova(
        lambda d: d.ex_get_console_output(_node(d, native_id)), kind="machine", what="get console output"
    )
    return str((result or {}).get("output") or "")
