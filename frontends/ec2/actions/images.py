"""Images and instance types: DescribeImages, DescribeInstanceTypes."""

from __future__ import annotations

from typing import Any

from frontends.ec2.actions.base import Call, Handler, reader, tag_list, when
from frontends.ec2.ids import public_id, resolve_ids
from translator.model import Image, ImageState

#: canonical image state -> EC2 image state.
EC2_IMAGE_STATES: dict[ImageState, str] = {
    ImageState.PENDING: "pending",
    ImageState.AVAILABLE: "available",
    ImageState.FAILED: "failed",
    ImageState.DEREGISTERED: "deregistered",
}


def _owner(call: Call, image: Image) -> str:
    return call.account_id if image.owner and not image.public else "amazon"


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
        "RootDeviceName": img.root_device,
        "VirtualizationType": "hvm",
        "Hypervisor": "xen",
        "EnaSupport": True,
        "CreationDate": created.strftime("%Y-%m-%dT%H:%M:%S.000Z") if created else None,
        "BlockDeviceMappings": [
            {
                "DeviceName": img.root_device,
                "Ebs": {
                    "VolumeSize": max(img.min_disk_gb, 1),
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                },
            }
        ],
        "Tags": tag_list(img) or None,
    }


def describe_images(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    images = call.translator.list(call.principal, "image", call.region)
    ids = args.get("ImageIds")
    if ids:
        wanted = set(resolve_ids(call.translator, "image", ids))
        images = [i for i in images if i.id in wanted]
    owners = set(args.get("Owners") or [])
    if owners:
        images = [i for i in images if _owner(call, i) in owners or ("self" in owners and not i.public)]
    return {"Images": [_image(call, i) for i in sorted(images, key=lambda i: i.name)]}


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
                "NetworkInfo": {"NetworkPerformance": f.network_performance},
            }
            for f in sorted(flavors, key=lambda f: (f.vcpus, f.memory_mb, f.name))
            if not wanted or f.name in wanted
        ]
    }


ACTIONS: dict[str, Handler] = {
    "DescribeImages": reader(describe_images),
    "DescribeInstanceTypes": reader(describe_instance_types),
}
