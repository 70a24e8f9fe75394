"""Images and flavors: the provider's catalogue from the options, plus images users make from machines."""

from __future__ import annotations

from backends.simulator import machines
from backends.simulator.storage import Rec, Sim, Tx, new_id
from translator.errors import Conflict, Forbidden
from translator.model import Flavor, Image, ImageSpec, ImageState, ImageUpdate, MachineState

SOURCE_STATES = frozenset({MachineState.RUNNING, MachineState.STOPPED})


def list_flavors(sim: Sim) -> list[Flavor]:
    return list(sim.settings.flavors)


def list_images(sim: Sim) -> list[Image]:
    return [*sim.settings.images, *(r.obj for r in sim.store.all("image"))]


def _os_of(sim: Sim, tx: Tx, image_id: str | None) -> str:
    """The OS of the image a machine came from (which may have been deleted since)."""
    image = sim.settings.image(image_id) if image_id else None
    if image is None and image_id:
        rec = tx.get("image", image_id)
        image = rec.obj if rec is not None else None
    return image.os if image is not None else ""


def create_image(sim: Sim, spec: ImageSpec) -> Image:
    """Capture a running or stopped machine; the image is pending for ``boot_delay``, then available."""

    def run(tx: Tx) -> Image:
        machine = tx.require("machine", spec.machine_id).obj
        taken = {i.name for i in sim.settings.images} | {r.obj.name for r in tx.all("image")}
        if spec.name in taken:
            raise Conflict(f"The image name '{spec.name}' is already in use.", kind="image", reason="duplicate")
        if machine.state not in SOURCE_STATES:
            raise Conflict(
                f"The machine '{spec.machine_id}' is {machine.state}; images are made from running "
                "or stopped machines.",
                kind="machine",
                reason="state",
            )
        root = next(
            (
                v.obj
                for vid in machine.volume_ids
                if (v := tx.get("volume", vid)) is not None
                and any(a.device == machine.root_device for a in v.obj.attachments)
            ),
            None,
        )
        rec = Rec(
            Image(
                native_id=new_id("img"),
                name=spec.name,
                description=spec.description,
                state=ImageState.PENDING,
                architecture=machine.architecture,
                platform=machine.platform,
                owner=sim.account.tenant,
                public=False,
                os=_os_of(sim, tx, machine.image_id),
                min_disk_gb=root.size_gb if root else 0,
                root_device=machine.root_device,
                source_machine_id=machine.native_id,
                created=tx.now,
                updated=tx.now,
            )
        )
        rec.schedule(tx.now, sim.settings.boot_delay, state=ImageState.AVAILABLE)
        tx.put("image", rec)
        # The machine is captured meanwhile (as a Nova server in its image_snapshot task), then back as it was.
        source = tx.require("machine", spec.machine_id)
        machines.move(source, tx.now, sim.settings.boot_delay, machines.CAPTURING, source.sim.get("_native", "running"))
        tx.put("machine", source)
        return rec.obj

    return sim.store.transact(run)


def update_image(sim: Sim, native_id: str, update: ImageUpdate) -> Image:
    """Rename or describe one of the account's images (names stay unique, as at creation)."""
    if sim.settings.image(native_id) is not None:
        raise Forbidden(f"The image '{native_id}' belongs to the provider and cannot be changed.", kind="image")

    def run(tx: Tx) -> Image:
        rec = tx.require("image", native_id)
        if update.name is not None and update.name != rec.obj.name:
            taken = {i.name for i in sim.settings.images} | {r.obj.name for r in tx.all("image")}
            if update.name in taken:
                raise Conflict(f"The image name '{update.name}' is already in use.", kind="image", reason="duplicate")
            rec.obj.name = update.name
        if update.description is not None:
            rec.obj.description = update.description
        rec.obj.updated = tx.now
        tx.put("image", rec)
        return rec.obj

    return sim.store.transact(run)


def delete_image(sim: Sim, native_id: str) -> None:
    """Deregister an image of the account's; the provider's catalogue images are not the user's to delete."""
    if sim.settings.image(native_id) is not None:
        raise Forbidden(f"The image '{native_id}' belongs to the provider and cannot be deleted.", kind="image")

    def run(tx: Tx) -> None:
        tx.require("image", native_id)
        tx.delete("image", native_id)

    sim.store.transact(run)
