"""VolumeImages (DSP0263 VolumeImage): the backends' volume snapshots. Posting one whose ``imageLocation`` is a
volume's URL snapshots that volume; a VolumeCreate naming a VolumeImage makes a volume from it.

The canonical snapshot carries a description but no name of its own: a posted ``name`` is shown only where the
backend reports one.
"""

from __future__ import annotations

from typing import Any

from frontends.cimi import states
from frontends.cimi.context import Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, resource_listing
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery
from frontends.cimi.resources.templates import existing
from translator.backend import Capability
from translator.identity import authorize
from translator.model import Resource, Snapshot
from translator.translator import Goal, Step

KIND = "snapshot"


def snapshot_doc(ctx: Ctx, snapshot: Resource) -> dict[str, Any]:
    assert isinstance(snapshot, Snapshot)
    href = ctx.href("volumeImages", snapshot.id)
    doc = common(ctx, "VolumeImage", href, snapshot)
    doc["state"] = states.SNAPSHOT[snapshot.state]
    if snapshot.volume_id:
        doc["imageLocation"] = ctx.href("volumes", snapshot.volume_id)
    doc["bootable"] = False
    doc["operations"] = operations(ctx, href, ["delete"])
    return doc


class VolumeImages(Controller):
    name = "volumeImages"
    type_name = "VolumeImage"
    create_type = "VolumeImage"
    kind = KIND
    needs = Capability.SNAPSHOTS

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, snapshot_doc)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return snapshot_doc(ctx, ctx.translator.get(ctx.principal, KIND, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        """Snapshot the volume ``imageLocation`` names; the job follows the snapshot until it is complete."""
        authorize(ctx.principal, "write")
        location = body.get("imageLocation")
        if location is None:
            raise CimiError(400, "A VolumeImage needs an 'imageLocation': the URL of the volume to snapshot.")
        vid = ctx.ref_id(location, "volumes", "imageLocation")
        volume = existing(ctx, "volume", vid, "imageLocation")
        description = str(body.get("description") or "")
        job, snapshot = ctx.translator.follow(
            ctx.principal,
            "add",
            Goal(KIND, (Step(("completed",)),)),
            lambda: ctx.translator.create_snapshot(ctx.principal, volume.id, description),
        )
        properties = body.get("properties")
        if isinstance(properties, dict) and properties:
            tags = {str(k): str(v) for k, v in properties.items()}
            ctx.translator.update_tags(ctx.principal, KIND, [snapshot.id], tags)
            snapshot.tags.update(tags)
        href = ctx.href("volumeImages", snapshot.id)
        return accepted(ctx, job, snapshot_doc(ctx, snapshot), "VolumeImage", location=href)

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        authorize(ctx.principal, "write")
        ctx.translator.get(ctx.principal, KIND, rid)
        job, _ = ctx.translator.follow(
            ctx.principal,
            "delete",
            Goal(KIND, (Step(("deleted",), gone=True),)),
            lambda: ctx.translator.delete_snapshot(ctx.principal, rid),
            targets=[rid],
        )
        return accepted(ctx, job)
