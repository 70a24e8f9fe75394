"""Images and instance types: DescribeImages, CreateImage, DeregisterImage, DescribeInstanceTypes."""

from __future__ import annotations

import functools
import re
from typing import Any

from frontends.ec2.actions.base import (
    Call,
    Handler,
    describe_resources,
    describer,
    reader,
    tag_list,
    when,
    writer,
)
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.vocabulary import network_performance, root_device
from translator.model import Image, ImageSpec, ImageState

#: canonical image state -> EC2 image state.
EC2_IMAGE_STATES: dict[ImageState, str] = {
    ImageState.PENDING: "pending",
    ImageState.AVAILABLE: "available",
    ImageState.FAILED: "failed",
    ImageState.DEREGISTERED: "deregistered",
}


#: DescribeImages filters (EC2 API reference) -> where each reads in an image item.
IMAGE_FILTERS = table(
    {
        "architecture": "Architecture",
        "block-device-mapping.delete-on-termination": "BlockDeviceMappings[].Ebs.DeleteOnTermination",
        "block-device-mapping.device-name": "BlockDeviceMappings[].DeviceName",
        "block-device-mapping.snapshot-id": "BlockDeviceMappings[].Ebs.SnapshotId",
        "block-device-mapping.volume-size": "BlockDeviceMappings[].Ebs.VolumeSize",
        "block-device-mapping.volume-type": "BlockDeviceMappings[].Ebs.VolumeType",
        "block-device-mapping.encrypted": "BlockDeviceMappings[].Ebs.Encrypted",
        "creation-date": "CreationDate",
        "description": "Description",
        "ena-support": "EnaSupport",
        "hypervisor": "Hypervisor",
        "image-id": "ImageId",
        "image-type": "ImageType",
        "is-public": "Public",
        "kernel-id": "KernelId",
        "manifest-location": "ImageLocation",
        "name": "Name",
        "owner-alias": "ImageOwnerAlias",
        "owner-id": "OwnerId",
        "platform": "Platform",
        "platform-details": "PlatformDetails",
        "product-code": "ProductCodes[].ProductCodeId",
        "product-code.type": "ProductCodes[].ProductCodeType",
        "ramdisk-id": "RamdiskId",
        "root-device-name": "RootDeviceName",
        "root-device-type": "RootDeviceType",
        "source-instance-id": "SourceInstanceId",
        "state": "State",
        "state-reason-code": "StateReason.Code",
        "state-reason-message": "StateReason.Message",
        "sriov-net-support": "SriovNetSupport",
        "usage-operation": "UsageOperation",
        "virtualization-type": "VirtualizationType",
    }
)

#: The provider's public images are "amazon"'s, as AWS's own are; a tenant's are its account's.
PROVIDER_ALIAS = "amazon"

_IMAGE_NAME = re.compile(r"^[A-Za-z0-9()\[\]./\-'@_ ]{3,128}$")


def _owner(call: Call, image: Image) -> str:
    return call.account_id if image.owner and not image.public else PROVIDER_ALIAS


def _image(call: Call, img: Image) -> dict[str, Any]:
    created = when(img.created)
    return {
        "ImageId": public_id("image", img.id),
        "Name": img.name,
        "Description": img.description,
        "State": EC2_IMAGE_STATES[img.state],
        "OwnerId": _owner(call, img),
        "Public": img.public,
        "Architecture": img.architecture,
        "ImageType": "machine",
        "PlatformDetails": "Linux/UNIX",
        "UsageOperation": "RunInstances",
        "RootDeviceType": "ebs",
        "RootDeviceName": root_device(img),
        "VirtualizationType": "hvm",
        "Hypervisor": "xen",
        "EnaSupport": True,
        "CreationDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z") if created else None,
        "BlockDeviceMappings": [
            {
                "DeviceName": root_device(img),
                "Ebs": {
                    "VolumeSize": max(img.min_disk_gb, 1),
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                },
            }
        ],
        "Tags": tag_list(img) or None,
        "ImageOwnerAlias": PROVIDER_ALIAS if _owner(call, img) == PROVIDER_ALIAS else None,
        "SourceInstanceId": public_id("machine", img.source_machine_id),
        "_Created": img.created,
    }


def _owned_by(call: Call, image: Image, owners: set[str]) -> bool:
    owner = _owner(call, image)
    return owner in owners or ("self" in owners and owner == call.account_id)


def describe_images(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    owners = set(args.get("Owners") or [])

    def keep(image: Image) -> bool:
        return image.state != ImageState.DEREGISTERED and (not owners or _owned_by(call, image, owners))

    ids = args.get("ImageIds")
    render = functools.partial(_image, call)
    items, token = describe_resources(call, "DescribeImages", "image", args, render, IMAGE_FILTERS, ids=ids, keep=keep)
    return {"Images": items, "NextToken": token}


def create_image(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    name = args.get("Name") or ""
    if not _IMAGE_NAME.match(name):
        raise EC2Error(
            "InvalidAMIName.Malformed",
            "AMI names must be between 3 and 128 characters long, and may contain letters, numbers, "
            "'(', ')', '.', '-', '/', '_', '[', ']', '@', ' ' and apostrophes",
        )
    (machine,) = resolve_ids(call.translator, "machine", [args["InstanceId"]])
    # EC2's rule (not every cloud's): an account's AMI names are unique.
    images = call.translator.list(call.principal, "image", call.region)
    taken = next((i for i in images if i.name == name and _owner(call, i) == call.account_id), None)
    if taken is not None and taken.state != ImageState.DEREGISTERED:
        raise EC2Error(
            "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {public_id('image', taken.id)}"
        )
    spec = ImageSpec(machine_id=machine, name=name, description=args.get("Description") or "")
    image = call.translator.create_image(call.principal, spec)
    tags = spec_tags(args, "image", also=("snapshot",))
    if tags:
        call.translator.update_tags(call.principal, "image", [image.id], dict(tags))
    return {"ImageId": public_id("image", image.id)}


def deregister_image(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    (gid,) = resolve_ids(call.translator, "image", [args["ImageId"]])
    image = call.translator.get(call.principal, "image", gid)
    if _owner(call, image) != call.account_id:
        raise EC2Error("AuthFailure", f"Not authorized for image:{args['ImageId']}", 400)
    call.translator.delete_image(call.principal, gid)
    return {"Return": True}


def describe_instance_types(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    flavors = call.translator.list(call.principal, "flavor", call.region)
    wanted = set(args.get("InstanceTypes") or [])
    return {
        "InstanceTypes": [
            {
                "InstanceType": f.name,
                "CurrentGeneration": True,
                "SupportedUsageClasses": ["on-demand"],
                "SupportedRootDeviceTypes": ["ebs"],
                "SupportedVirtualizationTypes": ["hvm"],
                "Hypervisor": "nitro",
                "ProcessorInfo": {"SupportedArchitectures": [f.architecture]},
                "VCpuInfo": {"DefaultVCpus": f.vcpus},
                "MemoryInfo": {"SizeInMiB": f.memory_mb},
                "InstanceStorageSupported": False,
                "EbsInfo": {"EbsOptimizedSupport": "default"},
                "NetworkInfo": {"NetworkPerformance": network_performance(f.vcpus)},
            }
            for f in sorted(flavors, key=lambda f: (f.vcpus, f.memory_mb, f.name))
            if not wanted or f.name in wanted
        ]
    }


ACTIONS: dict[str, Handler] = {
    "DescribeImages": describer(describe_images),
    "CreateImage": writer(create_image),
    "DeregisterImage": writer(deregister_image),
    "DescribeInstanceTypes": reader(describe_instance_types),
}
