"""Configurations: MachineConfigurations are the backends' flavors; VolumeConfigurations the canonical
volume tiers (each backend maps them to its own volume types)."""

from __future__ import annotations

from typing import Any

from frontends.cimi.context import Ctx, Reply, common
from frontends.cimi.controller import Controller, collection, resource_listing, windowed
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery
from translator.backend import Capability
from translator.identity import authorize
from translator.model import Flavor, Resource, VolumeTier

#: what each tier is, in words a client can show
TIER_DESCRIPTIONS: dict[VolumeTier, str] = {
    VolumeTier.STANDARD: "The cloud's default storage",
    VolumeTier.SSD: "General-purpose solid-state storage",
    VolumeTier.HDD: "Magnetic storage for throughput or cold data",
    VolumeTier.IO: "Solid-state storage with provisioned IOPS",
}
#: the URI a volume's ``type`` carries for each tier
TYPE_PREFIX = "urn:x-cloudgate:volume-type:"


def flavor_doc(ctx: Ctx, flavor: Resource) -> dict[str, Any]:
    assert isinstance(flavor, Flavor)
    doc = common(ctx, "MachineConfiguration", ctx.href("machineConfigs", flavor.id), flavor)
    doc["cpu"] = flavor.vcpus
    doc["memory"] = flavor.memory_mb * 1024
    doc["cpuArch"] = flavor.architecture
    if flavor.disk_gb:
        doc["disks"] = [{"capacity": flavor.disk_gb * 1024 * 1024, "format": "ext4"}]
    doc["operations"] = []
    return doc


class MachineConfigs(Controller):
    name = "machineConfigs"
    type_name = "MachineConfiguration"
    kind = "flavor"

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, flavor_doc)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return flavor_doc(ctx, ctx.translator.get(ctx.principal, "flavor", rid))


def tier_doc(ctx: Ctx, tier: VolumeTier) -> dict[str, Any]:
    return {
        "resourceURI": ctx.uri("VolumeConfiguration"),
        "id": ctx.href("volumeConfigs", tier.value),
        "name": tier.value,
        "description": TIER_DESCRIPTIONS[tier],
        "properties": {},
        "type": TYPE_PREFIX + tier.value,
        "format": "raw",
        "operations": [],
    }


class VolumeConfigs(Controller):
    name = "volumeConfigs"
    type_name = "VolumeConfiguration"
    needs = Capability.VOLUMES

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        authorize(ctx.principal, "read")
        return collection(ctx, self, windowed([tier_doc(ctx, t) for t in VolumeTier], query), query)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        authorize(ctx.principal, "read")
        try:
            return tier_doc(ctx, VolumeTier(rid))
        except ValueError:
            raise CimiError(404, f"There is no volume configuration '{rid[:64]}'.") from None
