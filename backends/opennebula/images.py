"""The account's own OS images: captured from a machine's boot disk (``one.vm.disksaveas``), renamed
(``one.image.rename``), described (``DESCRIPTION`` in the image's template) and deleted (``one.image.delete``).

A capture copies the boot disk while the VM goes on (its LCM state HOTPLUG_SAVEAS, a machine ``capturing``; from
POWEROFF or SUSPENDED the matching HOTPLUG_SAVEAS_* state) and the new image is LOCKED (``pending``) until the copy
is done. Image names are the cloud's: oned wants them unique per user, so a second image of a name the user
already has is ``Conflict(reason="duplicate")``, as EC2 does for AMI names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.opennebula.catalog import OS_IMAGE, image_of, oid
from backends.opennebula.machines import MINE, settled_vm
from backends.opennebula.templates import to_xml, vectors
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.model import Image, ImageSpec, ImageUpdate

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

MERGE = 1
CURRENT_STATE = -1  # disksaveas: the disk as it is now, not one of its snapshots


def _own_names(b: OpenNebulaBackend) -> set[str]:
    return {i.NAME for i in b.one.pool("imagepool.info", MINE, element="IMAGE", kind="image", what="list images")}


def _os_image(b: OpenNebulaBackend, native_id: str) -> Any:
    image = b.one.call("image.info", oid(native_id, "image"), False, kind="image", what="read image")
    if image.TYPE != OS_IMAGE:
        raise NotFound(f"The image '{native_id}' does not exist.", kind="image")
    return image


def _taken(name: str) -> Conflict:
    return Conflict(f"An image named '{name}' exists.", kind="image", reason="duplicate")


def create_image(b: OpenNebulaBackend, spec: ImageSpec) -> Image:
    """Save the machine's boot disk as a new OS image of the user's, then describe it."""
    vm = settled_vm(b, spec.machine_id)
    boot = next(iter(vectors(vm.TEMPLATE, "DISK")), None)
    if boot is None or not boot.get("IMAGE_ID"):
        raise InvalidParameter(
            f"The machine '{spec.machine_id}' has no boot disk made from an image.", kind="machine", reason="disk"
        )
    if spec.name in _own_names(b):
        raise _taken(spec.name)
    image_id = b.one.call(
        "vm.disksaveas", vm.ID, int(boot["DISK_ID"]), spec.name, "OS", CURRENT_STATE,
        kind="machine", what="capture machine",
    )  # fmt: skip
    if spec.description:
        body = to_xml({"DESCRIPTION": spec.description})
        b.one.call("image.update", image_id, body, MERGE, kind="image", what="describe image")
    return image_of(_os_image(b, str(image_id)))


def delete_image(b: OpenNebulaBackend, native_id: str) -> None:
    """Delete an OS image; one the user does not own is Forbidden (oned wants MANAGE on it)."""
    image = _os_image(b, native_id)
    b.one.call("image.delete", image.ID, False, kind="image", what="delete image")


def update_image(b: OpenNebulaBackend, native_id: str, update: ImageUpdate) -> Image:
    image = _os_image(b, native_id)
    if update.name is not None and update.name != image.NAME:
        if update.name in _own_names(b):
            raise _taken(update.name)
        b.one.call("image.rename", image.ID, update.name, kind="image", what="rename image")
    if update.description is not None:
        body = to_xml({"DESCRIPTION": update.description})
        b.one.call("image.update", image.ID, body, MERGE, kind="image", what="describe image")
    return image_of(_os_image(b, native_id))
