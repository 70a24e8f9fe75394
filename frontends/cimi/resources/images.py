"""MachineImages: the backends' images, captured ones included; posting one whose ``imageLocation`` is a
machine's URL captures that machine, as DSP0263 puts it."""

from __future__ import annotations

from typing import Any

from frontends.cimi import states
from frontends.cimi.context import Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, resource_listing
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery
from translator.backend import Capability
from translator.model import Image, ImageState, ImageUpdate, Resource
from translator.translator import Goal, Step

KIND = "image"


def image_doc(ctx: Ctx, image: Resource) -> dict[str, Any]:
    assert isinstance(image, Image)
    href = ctx.href("machineImages", image.id)
    doc = common(ctx, "MachineImage", href, image)
    doc["state"] = states.IMAGE[image.state]
    doc["type"] = "IMAGE"
    doc["imageLocation"] = href
    if image.source_machine_id:
        doc["relatedImage"] = {"href": ctx.href("machines", image.source_machine_id)}
    # The tenant's own images (captured, or private to it) can be changed; a cloud's public catalogue cannot.
    own = bool(image.source_machine_id) or (bool(image.owner) and not image.public)
    names = ["edit", "delete"] if own else []
    doc["operations"] = operations(ctx, href, names)
    return doc


class MachineImages(Controller):
    name = "machineImages"
    type_name = "MachineImage"
    create_type = "MachineImage"
    kind = KIND
    needs = Capability.IMAGES

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, image_doc, keep=lambda r: r.state is not ImageState.DEREGISTERED)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return image_doc(ctx, ctx.translator.get(ctx.principal, KIND, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        """Capture: ``imageLocation`` names the machine to make the image of."""
        from frontends.cimi.resources.machines import Machines

        location = body.get("imageLocation")
        if location is None:
            raise CimiError(400, "A MachineImage needs an 'imageLocation': the URL of the machine to capture.")
        machine_id = ctx.ref_id(location, "machines", "imageLocation")
        machines = Machines()
        return machines.capture(ctx, machines.machine(ctx, machine_id), body)

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        from frontends.cimi.resources.machines import replace_properties

        image = ctx.translator.get(ctx.principal, KIND, rid)
        name, description = body.get("name"), body.get("description")
        if (name is not None and name != image.name) or (description is not None and description != image.description):
            ctx.translator.update_image(ctx.principal, rid, ImageUpdate(name=name, description=description))
        if "properties" in body:
            replace_properties(ctx, KIND, image, body["properties"])
        return Reply(200, self.get(ctx, rid), self.type_name)

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        ctx.translator.get(ctx.principal, KIND, rid)
        job, _ = ctx.translator.follow(
            ctx.principal,
            "delete",
            Goal(KIND, (Step(("deregistered",), gone=True),)),
            lambda: ctx.translator.delete_image(ctx.principal, rid),
            targets=[rid],
        )
        return accepted(ctx, job)
