"""OCCI Core and Infrastructure declared once, as data (STYLE rule 9): kinds, mixins, actions and their
attributes, from the OCCI 1.2 Core and Infrastructure documents' tables. The query interface, validation
and rendering all read these; per-tenant mixins (an ``os_tpl`` per image, a ``resource_tpl`` per flavor,
an availability zone per zone, user mixins) are made from the same classes at request time.
"""

from __future__ import annotations

from dataclasses import dataclass

from frontends.occi.model import CORE, INFRA, Action, AttributeDef, Kind, Mixin
from translator.backend import Capability

A = AttributeDef

#: our own schemes, for the templates and zones this gateway offers (OCCI leaves them to the provider)
OWN = "http://schemas.cloudgate.org/occi/"
OS_TPL_SCHEME = OWN + "template/os#"
RESOURCE_TPL_SCHEME = OWN + "template/resource#"
ZONE_SCHEME = OWN + "availability_zone#"
USER_SCHEME = OWN + "user#"

COMPUTE_ACTIONS = INFRA.rstrip("#") + "/compute/action#"
NETWORK_ACTIONS = INFRA.rstrip("#") + "/network/action#"
STORAGE_ACTIONS = INFRA.rstrip("#") + "/storage/action#"

# -- core ---------------------------------------------------------------------------------------------------
# The abstract kinds have locations too (rOCCI's schema asks for one): each lists every entity of its subkinds.
ENTITY = Kind(CORE, "entity", "Entity", (A("occi.core.id"), A("occi.core.title", mutable=True)), location="entity/")
RESOURCE = Kind(
    CORE, "resource", "Resource", (A("occi.core.summary", mutable=True),), parent=ENTITY.id, location="resource/"
)
LINK = Kind(
    CORE,
    "link",
    "Link",
    (A("occi.core.source", required=True), A("occi.core.target", required=True)),
    parent=ENTITY.id,
    location="link/",
)

# -- actions ------------------------------------------------------------------------------------------------
START = Action(COMPUTE_ACTIONS, "start", "Start the compute")
STOP = Action(
    COMPUTE_ACTIONS,
    "stop",
    "Stop the compute",
    (A("method", enum=("graceful", "acpioff", "poweroff"), default="graceful", mutable=True),),
)
RESTART = Action(
    COMPUTE_ACTIONS,
    "restart",
    "Restart the compute",
    (A("method", enum=("graceful", "warm", "cold"), default="graceful", mutable=True),),
)
SUSPEND = Action(
    COMPUTE_ACTIONS,
    "suspend",
    "Suspend the compute",
    (A("method", enum=("hibernate", "suspend"), default="suspend", mutable=True),),
)
SAVE = Action(
    COMPUTE_ACTIONS,
    "save",
    "Save the compute as a new OS template",
    (A("method", enum=("hot", "deferred"), default="hot", mutable=True), A("name", mutable=True)),
)
UP = Action(NETWORK_ACTIONS, "up", "Bring the network up")
DOWN = Action(NETWORK_ACTIONS, "down", "Take the network down")
ONLINE = Action(STORAGE_ACTIONS, "online", "Bring the storage online")
OFFLINE = Action(STORAGE_ACTIONS, "offline", "Take the storage offline")
BACKUP = Action(STORAGE_ACTIONS, "backup", "Back the storage up")
SNAPSHOT = Action(STORAGE_ACTIONS, "snapshot", "Take a snapshot of the storage")
RESIZE = Action(STORAGE_ACTIONS, "resize", "Resize the storage", (A("size", "number", required=True, mutable=True),))

# -- infrastructure kinds -------------------------------------------------------------------------------------
COMPUTE_STATES = ("active", "inactive", "suspended", "error")
COMPUTE = Kind(
    INFRA,
    "compute",
    "Compute resource",
    (
        A("occi.compute.architecture", enum=("x86", "x64"), mutable=True),
        A("occi.compute.cores", "integer", mutable=True),
        A("occi.compute.hostname", mutable=True),
        A("occi.compute.share", "integer", mutable=True),
        A("occi.compute.memory", "number", mutable=True, description="GiB"),
        A("occi.compute.state", enum=COMPUTE_STATES, required=True, default="inactive"),
        A("occi.compute.state.message"),
    ),
    parent=RESOURCE.id,
    location="compute/",
    actions=(START.id, STOP.id, RESTART.id, SUSPEND.id, SAVE.id),
)
NETWORK_STATES = ("active", "inactive", "error")
NETWORK = Kind(
    INFRA,
    "network",
    "Network resource",
    (
        A("occi.network.vlan", "integer", mutable=True),
        A("occi.network.label", mutable=True),
        A("occi.network.state", enum=NETWORK_STATES, required=True, default="inactive"),
        A("occi.network.state.message"),
    ),
    parent=RESOURCE.id,
    location="network/",
    actions=(UP.id, DOWN.id),
)
STORAGE_STATES = ("online", "offline", "error")
STORAGE = Kind(
    INFRA,
    "storage",
    "Storage resource",
    (
        A("occi.storage.size", "number", required=True, mutable=True, description="GiB"),
        A("occi.storage.state", enum=STORAGE_STATES, required=True, default="offline"),
        A("occi.storage.state.message"),
    ),
    parent=RESOURCE.id,
    location="storage/",
    actions=(ONLINE.id, OFFLINE.id, BACKUP.id, SNAPSHOT.id, RESIZE.id),
)
LINK_STATES = ("active", "inactive", "error")
NETWORKINTERFACE = Kind(
    INFRA,
    "networkinterface",
    "Network interface link",
    (
        A("occi.networkinterface.interface"),
        A("occi.networkinterface.mac", mutable=True),
        A("occi.networkinterface.state", enum=LINK_STATES, required=True, default="inactive"),
        A("occi.networkinterface.state.message"),
    ),
    parent=LINK.id,
    location="networkinterface/",
)
STORAGELINK = Kind(
    INFRA,
    "storagelink",
    "Storage link",
    (
        A("occi.storagelink.deviceid", mutable=True),
        A("occi.storagelink.mountpoint", mutable=True),
        A("occi.storagelink.state", enum=LINK_STATES, required=True, default="inactive"),
        A("occi.storagelink.state.message"),
    ),
    parent=LINK.id,
    location="storagelink/",
)

# -- infrastructure mixins --------------------------------------------------------------------------------------
IPNETWORK = Mixin(
    INFRA.rstrip("#") + "/network#",
    "ipnetwork",
    "IP network",
    (
        A("occi.network.address", mutable=True),
        A("occi.network.gateway", mutable=True),
        A("occi.network.allocation", enum=("dynamic", "static"), mutable=True),
    ),
    applies=(NETWORK.id,),
    location="ipnetwork/",
)
IPNETWORKINTERFACE = Mixin(
    INFRA.rstrip("#") + "/networkinterface#",
    "ipnetworkinterface",
    "IP network interface",
    (
        A("occi.networkinterface.address", mutable=True),
        A("occi.networkinterface.gateway", mutable=True),
        A("occi.networkinterface.allocation", enum=("dynamic", "static"), mutable=True),
    ),
    applies=(NETWORKINTERFACE.id,),
    location="ipnetworkinterface/",
)
OS_TPL = Mixin(INFRA, "os_tpl", "OS template", applies=(COMPUTE.id,), location="os_tpl/")
RESOURCE_TPL = Mixin(INFRA, "resource_tpl", "Resource template", applies=(COMPUTE.id,), location="resource_tpl/")
SSH_KEY = Mixin(
    INFRA.rstrip("#") + "/credentials#",
    "ssh_key",
    "SSH key",
    (A("occi.credentials.ssh.publickey", required=True, mutable=True),),
    applies=(COMPUTE.id,),
    location="ssh_key/",
)
USER_DATA = Mixin(
    INFRA.rstrip("#") + "/compute#",
    "user_data",
    "User data",
    (A("occi.compute.userdata", required=True, mutable=True, description="base64"),),
    applies=(COMPUTE.id,),
    location="user_data/",
)
AVAILABILITY_ZONE = Mixin(
    OWN.rstrip("/") + "#",
    "availability_zone",
    "Availability zone",
    applies=(COMPUTE.id, STORAGE.id),
    location="availability_zone/",
)

KINDS: tuple[Kind, ...] = (ENTITY, RESOURCE, LINK, COMPUTE, NETWORK, STORAGE, NETWORKINTERFACE, STORAGELINK)
MIXINS: tuple[Mixin, ...] = (IPNETWORK, IPNETWORKINTERFACE, OS_TPL, RESOURCE_TPL, SSH_KEY, USER_DATA, AVAILABILITY_ZONE)


@dataclass(frozen=True, slots=True)
class Offered:
    """An action, offered when the tenant's backends have ``needs`` (None: whenever its kind is)."""

    action: Action
    needs: Capability | None = None


#: Every action and what a backend needs for it; only those a tenant's backends can do are offered.
ACTIONS: tuple[Offered, ...] = (
    Offered(START),
    Offered(STOP),
    Offered(RESTART),
    Offered(SUSPEND, Capability.MACHINE_SUSPEND),
    Offered(SAVE, Capability.IMAGE_CREATE),
    Offered(UP, Capability.NETWORK_UP_DOWN),
    Offered(DOWN, Capability.NETWORK_UP_DOWN),
    Offered(SNAPSHOT, Capability.SNAPSHOTS),
    Offered(BACKUP, Capability.SNAPSHOTS),
    Offered(RESIZE, Capability.VOLUME_RESIZE),
)
#: storage online/offline: no canonical operation takes a volume offline, so they are never offered
NEVER_OFFERED = (ONLINE, OFFLINE)
#: kind -> the capability the tenant's backends need for it to be offered
KIND_NEEDS: dict[str, Capability] = {
    COMPUTE.id: Capability.MACHINES,
    NETWORK.id: Capability.NETWORKS,
    STORAGE.id: Capability.VOLUMES,
    NETWORKINTERFACE.id: Capability.MACHINES,
    STORAGELINK.id: Capability.VOLUMES,
}
BY_ID = {c.id: c for c in (*KINDS, *MIXINS, *(o.action for o in ACTIONS), *NEVER_OFFERED)}
