"""Images (Glance v2, or Nova's image proxy when the catalog has no image service) and flavors.

Images are read over REST: libcloud's ``NodeImage`` drops the owner and the ``instance_uuid`` a snapshot
carries, and its driver reads Glance only. Flavors and snapshots of servers go through libcloud.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.openstack.machines import get_server, parse_time
from backends.openstack.session import PROXY_MICROVERSION
from backends.openstack.settle import settle
from translator.errors import NotFound
from translator.model import Flavor, Image, ImageSpec, ImageState, ImageUpdate

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend
    from backends.openstack.session import ComputeDriver

#: Glance v2 image status (lower case) and the image proxy's (upper case) -> canonical image state.
IMAGE_STATES: Mapping[str, ImageState] = {
    "active": ImageState.AVAILABLE,
    "queued": ImageState.PENDING,
    "saving": ImageState.PENDING,
    "uploading": ImageState.PENDING,
    "importing": ImageState.PENDING,
    "killed": ImageState.FAILED,
    "deactivated": ImageState.FAILED,
    "deleted": ImageState.DEREGISTERED,
    "pending_delete": ImageState.DEREGISTERED,
    "ACTIVE": ImageState.AVAILABLE,
    "SAVING": ImageState.PENDING,
    "QUEUED": ImageState.PENDING,
    "ERROR": ImageState.FAILED,
    "UNKNOWN": ImageState.FAILED,
    "DELETED": ImageState.DEREGISTERED,
}
#: Glance ``os_type`` -> canonical platform.
PLATFORMS: Mapping[str, str] = {"windows": "windows"}


def _glance(raw: Mapping[str, Any]) -> Image:
    return Image(
        native_id=raw["id"],
        name=raw.get("name") or "",
        created=parse_time(raw.get("created_at")),
        updated=parse_time(raw.get("updated_at")),
        state=IMAGE_STATES.get(str(raw.get("status")), ImageState.FAILED),
        description=str(raw.get("description") or ""),
        architecture=str(raw.get("architecture") or "x86_64"),
        platform=PLATFORMS.get(str(raw.get("os_type")), "linux"),
        os=str(raw.get("os_distro") or ""),
        owner=str(raw.get("owner") or ""),
        public=raw.get("visibility") in ("public", "community"),
        min_disk_gb=int(raw.get("min_disk") or 0),
        root_device=str(raw.get("root_device_name") or ""),
        source_machine_id=raw.get("instance_uuid") or None,
    )


def _proxied(raw: Mapping[str, Any]) -> Image:
    meta = raw.get("metadata") or {}
    return Image(
        native_id=raw["id"],
        name=raw.get("name") or "",
        created=parse_time(raw.get("created")),
        updated=parse_time(raw.get("updated")),
        state=IMAGE_STATES.get(str(raw.get("status")), ImageState.FAILED),
        description=str(meta.get("description") or ""),
        architecture=str(meta.get("architecture") or "x86_64"),
        platform=PLATFORMS.get(str(meta.get("os_type")), "linux"),
        os=str(meta.get("os_distro") or ""),
        owner=str(meta.get("owner_id") or ""),
        public=True,
        min_disk_gb=int(raw.get("minDisk") or 0),
        source_machine_id=(raw.get("server") or {}).get("id") or meta.get("instance_uuid") or None,
    )


def list_images(b: OpenStackBackend) -> list[Image]:
    """Images the project may launch; deregistered ones are gone, as on EC2."""
    if b.cloud.has("image"):
        images = [_glance(i) for i in b.cloud.pages("image", "/images", "images", what="list images")]
    else:
        raw = b.cloud.pages("compute", "/images/detail", "images", microversion=PROXY_MICROVERSION, what="list images")
        images = [_proxied(i) for i in raw]
    return [i for i in images if i.state is not ImageState.DEREGISTERED]


def find_image(b: OpenStackBackend, native_id: str) -> Image | None:
    """One image, or None: what a launch checks before asking Nova."""
    try:
        if b.cloud.has("image"):
            return _glance(b.cloud.rest("GET", "image", f"/images/{native_id}", kind="image", what="get image"))
        raw = b.cloud.rest(
            "GET", "compute", f"/images/{native_id}", kind="image", what="get image", microversion=PROXY_MICROVERSION
        )
        return _proxied(raw["image"])
    except NotFound:
        return None


def create_image(b: OpenStackBackend, spec: ImageSpec) -> Image:
    """A snapshot of a server (Nova's createImage); Glance takes any name, a used one included."""
    server = get_server(b, spec.machine_id)
    project = b.cloud.project_id()
    body: dict[str, Any] = {"name": spec.name}
    if spec.description:
        body["metadata"] = {"description": spec.description}

    # Not libcloud's create_image: it reads the new image back through its Glance connection, which has no
    # endpoint here when Nova proxies images. Nova's createImage action on libcloud's connection it is.
    def snapshot(d: ComputeDriver) -> str:
        response = d.connection.request(f"/servers/{server['id']}/action", method="POST", data={"createImage": body})
        body_id = (response.object or {}).get("image_id") if isinstance(response.object, dict) else None
        return str(body_id or response.headers["location"].rstrip("/").rsplit("/", 1)[-1])

    image_id = b.cloud.nova(snapshot, kind="machine", what="create image")
    now = time.time()
    return Image(
        native_id=image_id,
        name=spec.name,
        created=now,
        updated=now,
        state=ImageState.PENDING,
        description=spec.description,
        owner=project,
        public=False,
        source_machine_id=server["id"],
    )


#: Glance v2 takes changes to an image as a JSON patch of this media type.
JSON_PATCH = "application/openstack-images-v2.1-json-patch"


def update_image(b: OpenStackBackend, native_id: str, update: ImageUpdate) -> Image:
    """Glance's image PATCH: the name, and the ``description`` property (kept as one, as Nova's createImage does).
    Glance answers 403 for an image of another project."""
    patch = [
        {"op": "add", "path": f"/{field}", "value": value}
        for field, value in (("name", update.name), ("description", update.description))
        if value is not None
    ]
    path = f"/images/{native_id}"
    if not patch:
        return _glance(b.cloud.rest("GET", "image", path, kind="image", what="get image"))
    raw = b.cloud.rest("PATCH", "image", path, kind="image", what="update image", body=patch, content_type=JSON_PATCH)
    return _glance(raw)


def delete_image(b: OpenStackBackend, native_id: str) -> None:
    """Delete, then wait (at most ``delete_wait``) until it leaves the listing, as EC2's DeregisterImage does."""
    if b.cloud.has("image"):
        b.cloud.rest("DELETE", "image", f"/images/{native_id}", kind="image", what="delete image")
    else:
        path = f"/images/{native_id}"
        b.cloud.rest("DELETE", "compute", path, kind="image", what="delete image", microversion=PROXY_MICROVERSION)
    settle(b.opts.delete_wait, lambda: _deregistered(find_image(b, native_id)))


def _deregistered(image: Image | None) -> bool:
    return image is None or image.state is ImageState.DEREGISTERED


def list_flavors(b: OpenStackBackend) -> list[Flavor]:
    """Nova's flavors through libcloud (``NodeSize``: ram, disk, vcpus are all we need)."""
    sizes = b.cloud.nova(lambda d: d.list_sizes(), kind="flavor", what="list flavors")
    return [
        Flavor(
            native_id=str(s.id),
            name=s.name,
            vcpus=int(s.vcpus or 0),
            memory_mb=int(s.ram or 0),
            disk_gb=int(s.disk or 0),
            description=f"{s.name}: {s.vcpus} vCPU, {s.ram} MiB RAM, {s.disk} GiB disk",
        )
        for s in sizes
    ]
