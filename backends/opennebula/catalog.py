"""Flavors (VM templates the operator marks with ``flavor_attribute``) and images (OpenNebula OS images).

As econe-server did, the gateway's sizes live in OpenNebula itself: a template carrying the attribute is a
flavor named by its value; launching one instantiates that template with the image's disk in place of its first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyone

from backends.opennebula.templates import number, single
from translator.errors import NotFound
from translator.model import Flavor, Image, ImageState

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

#: Image STATE -> canonical state (Image::ImageState; pyone.IMAGE_STATES names them).
IMAGE_STATES: Mapping[str, ImageState] = {
    "INIT": ImageState.PENDING,
    "READY": ImageState.AVAILABLE,
    "USED": ImageState.AVAILABLE,
    "DISABLED": ImageState.FAILED,  # kept, but nothing may be launched from it until the owner enables it
    "LOCKED": ImageState.PENDING,
    "ERROR": ImageState.FAILED,
    "CLONE": ImageState.AVAILABLE,  # being copied from; still usable
    "DELETE": ImageState.DEREGISTERED,
    "USED_PERS": ImageState.AVAILABLE,
    "LOCKED_USED": ImageState.PENDING,
    "LOCKED_USED_PERS": ImageState.PENDING,
}
OS_IMAGE = pyone.IMAGE_TYPES.OS
ALL = -2  # pool filter: everything the user may use (its own, its group's, shared)


def oid(native_id: str, kind: str) -> int:
    """The numeric id oned wants; an id that is not one names nothing (NotFound)."""
    if not native_id.isdigit():
        raise NotFound(f"The {kind.replace('_', ' ')} '{native_id}' does not exist.", kind=kind)
    return int(native_id)


def flavor_of(b: OpenNebulaBackend, template: Any) -> Flavor | None:
    """A VM template as a flavor, or None for a template without the flavor attribute."""
    body = template.TEMPLATE or {}
    marker = single(body, b.opts.flavor_attribute)
    if not marker:
        return None
    vcpus = int(number(body, "VCPU")) or math.ceil(number(body, "CPU"))
    return Flavor(
        native_id=str(template.ID),
        name=marker,
        description=single(body, "DESCRIPTION") or template.NAME,
        vcpus=vcpus,
        memory_mb=int(number(body, "MEMORY")),
        created=float(template.REGTIME or 0),
    )


def list_flavors(b: OpenNebulaBackend) -> list[Flavor]:
    pool = b.one.pool("templatepool.info", ALL, element="VMTEMPLATE", kind="flavor", what="list templates")
    found = (flavor_of(b, t) for t in pool)
    return [f for f in found if f is not None and f.vcpus > 0 and f.memory_mb > 0]


def flavor_template(b: OpenNebulaBackend, native_id: str) -> tuple[Flavor, Any]:
    """A flavor and its template's body; NotFound for a template that is not a flavor."""
    template = b.one.call("template.info", oid(native_id, "flavor"), False, False, kind="flavor", what="read flavor")
    flavor = flavor_of(b, template)
    if flavor is None:
        raise NotFound(f"The flavor '{native_id}' does not exist.", kind="flavor")
    return flavor, template.TEMPLATE or {}


def _name(enum: Any, value: int) -> str:
    try:
        return str(enum(value).name)
    except ValueError:
        return ""


def image_of(image: Any) -> Image:
    perms = image.PERMISSIONS
    return Image(
        native_id=str(image.ID),
        name=image.NAME,
        description=single(image.TEMPLATE, "DESCRIPTION"),
        state=IMAGE_STATES.get(_name(pyone.IMAGE_STATES, image.STATE), ImageState.FAILED),
        os=single(image.TEMPLATE, "OS") or image.NAME,
        owner=image.UNAME,
        public=bool(perms.OTHER_U) if perms is not None else False,
        min_disk_gb=math.ceil((image.SIZE or 0) / 1024),
        created=float(image.REGTIME or 0),
    )


def list_images(b: OpenNebulaBackend) -> list[Image]:
    """The OS images the user may use (data blocks are volumes, CD-ROMs and kernels are not launchable)."""
    pool = b.one.pool("imagepool.info", ALL, element="IMAGE", kind="image", what="list images")
    return [image_of(i) for i in pool if i.TYPE == OS_IMAGE]


def find_image(b: OpenNebulaBackend, native_id: str) -> Image:
    """One OS image; NotFound for a missing one or an image of another type."""
    image = b.one.call("image.info", oid(native_id, "image"), False, kind="image", what="read image")
    if image.TYPE != OS_IMAGE:
        raise NotFound(f"The image '{native_id}' does not exist.", kind="image")
    return image_of(image)
