"""AMIs as images, and the instance-type catalogue as flavors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.ec2 import mapping
from translator.errors import Conflict, NotFound
from translator.model import Flavor, Image, ImageSpec

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend


def fetch_flavors(b: EC2Backend) -> dict[str, Flavor]:
    """The instance types the options offer, by name (read from EC2; the backend keeps them a while)."""
    types = b.settings.instance_types
    filters = [{"Name": "instance-type", "Values": list(types)}] if types else []
    items = b.pages("describe_instance_types", "InstanceTypes", "flavor", Filters=filters)
    return {f.native_id: f for f in map(mapping.flavor, items)}


def list_images(b: EC2Backend) -> list[Image]:
    s = b.settings
    items: list[dict[str, Any]] = []
    if s.image_owners or s.image_filters:
        owners = {"Owners": list(s.image_owners)} if s.image_owners else {}
        filters = [{"Name": k, "Values": list(v)} for k, v in s.image_filters]
        items += b.pages("describe_images", "Images", "image", Filters=filters, **owners)
    if s.image_ids:
        # A filter, not ImageIds: a listed AMI that was since deregistered must not fail the whole listing.
        filters = [{"Name": "image-id", "Values": list(s.image_ids)}]
        items += b.pages("describe_images", "Images", "image", Filters=filters)
    unique = {item["ImageId"]: item for item in items}
    return [mapping.image(item) for item in unique.values()]


def image(b: EC2Backend, native_id: str) -> Image:
    """One image, read by id."""
    found = b.call("describe_images", "image", ImageIds=[native_id]).get("Images") or []
    if not found:
        raise NotFound(f"The image id '{native_id}' does not exist", kind="image")
    return mapping.image(found[0])


def create_image(b: EC2Backend, spec: ImageSpec) -> Image:
    # EC2 refuses a second AMI of one name in an account (InvalidAMIName.Duplicate); moto does not check.
    filters = [{"Name": "name", "Values": [spec.name.replace("*", "\\*").replace("?", "\\?")]}]
    mine = b.call("describe_images", "image", Owners=["self"], Filters=filters).get("Images") or []
    if any(i.get("Name") == spec.name for i in mine):
        raise Conflict(
            f"AMI name '{spec.name}' is already in use by an image you own.", kind="image", reason="duplicate"
        )
    extra = {"Description": spec.description} if spec.description else {}
    made = b.call("create_image", "image", InstanceId=spec.machine_id, Name=spec.name, **extra)
    found = image(b, made["ImageId"])
    found.source_machine_id = spec.machine_id
    return found


def delete_image(b: EC2Backend, native_id: str) -> None:
    b.call("deregister_image", "image", ImageId=native_id)
