"""ResourceMetadata: what this service offers for each resource type, as the tenant's backends really can.

A client reads it to discover, before it fails, what a backend cannot do: the machine actions offered
are the ones at least one of the tenant's backends supports, and capabilities such as
``MachineConfigByValue`` say which by-value forms are accepted. Declared as data (STYLE rule 9).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from frontends.cimi.context import SCHEMAS, Ctx, Reply
from frontends.cimi.controller import Controller, collection, windowed
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery
from translator.backend import Capability
from translator.identity import authorize


@dataclass(frozen=True, slots=True)
class Offer:
    """A capability or action, offered when the tenant's backends have ``needs`` (None: always)."""

    name: str
    needs: Capability | None = None
    value: str = "true"
    description: str = ""


@dataclass(frozen=True, slots=True)
class TypeMetadata:
    type_name: str
    capabilities: tuple[Offer, ...] = ()
    actions: tuple[Offer, ...] = ()
    needs: Capability | None = None


#: What each type offers. Capability names are DSP0263's; values are strings as the spec renders them.
TYPES: tuple[TypeMetadata, ...] = (
    TypeMetadata(
        "Machine",
        capabilities=(
            Offer("InitialStates", value="STARTED,STOPPED", description="States a machine can be created in"),
            Offer("DefaultInitialState", value="STARTED"),
            Offer("MachineConfigByValue", description="A MachineTemplate may hold a machineConfig by value"),
            Offer("CredentialByValue", Capability.KEY_PAIRS),
            Offer("VolumeTemplatesByValue", Capability.VOLUMES),
            Offer("UserData", description="A MachineTemplate may carry base64 userData"),
            Offer("MachineStopForce", Capability.STOP_HARD, description="stop with force cuts power"),
            Offer("MachineRestartForce", Capability.REBOOT_HARD),
            Offer("MachineVolumeAttach", Capability.VOLUMES),
            Offer("MachineNetworkInterfaceAttach", Capability.MACHINE_INTERFACES),
        ),
        actions=(
            Offer("start"),
            Offer("stop"),
            Offer("restart"),
            Offer("pause", Capability.MACHINE_PAUSE),
            Offer("suspend", Capability.MACHINE_SUSPEND),
            Offer("capture", Capability.IMAGE_CREATE),
        ),
        needs=Capability.MACHINES,
    ),
    TypeMetadata("MachineTemplate", capabilities=(Offer("MachineConfigByValue"),)),
    TypeMetadata("MachineConfiguration", needs=Capability.MACHINES),
    TypeMetadata("MachineImage", capabilities=(Offer("MachineCapture", Capability.IMAGE_CREATE),)),
    TypeMetadata("Credential", capabilities=(Offer("KeyPairGeneration", Capability.KEY_PAIR_CREATE),)),
    TypeMetadata(
        "Volume",
        capabilities=(Offer("VolumeConfigByValue"), Offer("VolumeResize", Capability.VOLUME_RESIZE)),
        needs=Capability.VOLUMES,
    ),
    TypeMetadata("VolumeImage", needs=Capability.SNAPSHOTS),
    TypeMetadata("VolumeConfiguration", needs=Capability.VOLUMES),
    TypeMetadata(
        "Network",
        capabilities=(Offer("NetworkConfigByValue"),),
        actions=(Offer("start", Capability.NETWORK_UP_DOWN), Offer("stop", Capability.NETWORK_UP_DOWN)),
        needs=Capability.NETWORKS,
    ),
    TypeMetadata("Address", capabilities=(Offer("AddressTemplateByValue"),), needs=Capability.ADDRESSES),
    TypeMetadata(
        "System",
        capabilities=(Offer("SystemTemplateByValue"),),
        actions=(Offer("start"), Offer("stop"), Offer("restart")),
        needs=Capability.MACHINES,
    ),
    TypeMetadata("Job"),
)
BY_NAME = {t.type_name: t for t in TYPES}


def metadata_doc(ctx: Ctx, meta: TypeMetadata, caps: frozenset[Capability]) -> dict[str, Any]:
    schema = SCHEMAS[ctx.version]
    href = ctx.href("resourceMetadata", meta.type_name)
    doc: dict[str, Any] = {
        "resourceURI": ctx.uri("ResourceMetadata"),
        "id": href,
        "name": meta.type_name,
        "typeURI": f"{schema}/{meta.type_name}",
        "properties": {},
    }
    offered = [c for c in meta.capabilities if c.needs is None or c.needs in caps]
    if offered:
        doc["capabilities"] = [
            {
                "uri": f"{schema}/capability/{meta.type_name}/{c.name}",
                "name": c.name,
                **({"description": c.description} if c.description else {}),
                "value": c.value,
            }
            for c in offered
        ]
    actions = [a for a in meta.actions if a.needs is None or a.needs in caps]
    if actions:
        doc["actions"] = [
            {"uri": ctx.action(a.name), "name": a.name, "method": "POST", "inputMessage": "application/json"}
            for a in actions
        ]
    if meta.type_name == "Machine":
        doc["initialStates"] = ["STARTED", "STOPPED"]
    doc["operations"] = []
    return doc


class ResourceMetadataCollection(Controller):
    name = "resourceMetadata"
    type_name = "ResourceMetadata"

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        authorize(ctx.principal, "read")
        caps = ctx.tenant_capabilities()
        docs = [metadata_doc(ctx, m, caps) for m in TYPES if m.needs is None or m.needs in caps]
        return collection(ctx, self, windowed(docs, query), query)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        authorize(ctx.principal, "read")
        meta = BY_NAME.get(rid)
        caps = ctx.tenant_capabilities()
        if meta is None or (meta.needs is not None and meta.needs not in caps):
            raise CimiError(404, f"There is no metadata for '{rid[:64]}'.")
        return metadata_doc(ctx, meta, caps)
