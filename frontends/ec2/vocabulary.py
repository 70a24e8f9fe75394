"""What EC2 says that the canonical model does not: its names for canonical things, its rules, and the
EC2-only attributes derived from canonical data (so nothing EC2-shaped is stored or asked of a backend).

Every table here is EC2's; a frontend for another protocol has its own.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping

from frontends.ec2.errors import EC2Error
from frontends.ec2.ids import public_id
from translator.ids import gateway_id, short_form
from translator.model import Address, Image, Machine, VolumeTier

# -- volume types -------------------------------------------------------------------------------------

#: EC2 volume type -> the tier it is made as.
VOLUME_TIERS: Mapping[str, VolumeTier] = {
    "standard": VolumeTier.STANDARD,
    "gp2": VolumeTier.SSD,
    "gp3": VolumeTier.SSD,
    "io1": VolumeTier.IO,
    "io2": VolumeTier.IO,
    "st1": VolumeTier.HDD,
    "sc1": VolumeTier.HDD,
}
#: tier -> the EC2 volume type it reads back as (every tier has a row).
TIER_NAMES: Mapping[VolumeTier, str] = {
    VolumeTier.STANDARD: "standard",
    VolumeTier.SSD: "gp2",
    VolumeTier.IO: "io1",
    VolumeTier.HDD: "st1",
}
#: CreateVolume's and RunInstances' volume type when none is given.
DEFAULT_VOLUME_TYPE = "gp2"


def tier_of(volume_type: str | None) -> VolumeTier:
    """The tier of an EC2 volume type (EC2's default when none); an unknown type is InvalidParameterValue."""
    name = volume_type or DEFAULT_VOLUME_TYPE
    found = VOLUME_TIERS.get(name)
    if found is None:
        raise EC2Error(
            "InvalidParameterValue",
            f"Value ({name}) for parameter volumeType is invalid. Valid types: {', '.join(VOLUME_TIERS)}",
        )
    return found


# -- device names -------------------------------------------------------------------------------------

#: Linux device names EC2 takes for EBS volumes: /dev/sdf, /dev/xvdb, /dev/sda1, /dev/hdb ... (and /dev/vdb,
#: which clouds behind the gateway report and clients send back).
DEVICE = re.compile(r"^/dev/(sd|xvd|vd|hd)[a-z]{1,2}[0-9]{0,2}$")
#: platform -> the root device EC2 shows for an AMI or instance whose cloud names none.
ROOT_DEVICES: Mapping[str, str] = {"linux": "/dev/sda1", "windows": "/dev/sda1"}
DEFAULT_ROOT_DEVICE = "/dev/sda1"


def check_device(device: str) -> str:
    """A device name EC2 would take, or its InvalidParameterValue."""
    if not DEVICE.match(device or ""):
        raise EC2Error("InvalidParameterValue", f"Value ({device}) for parameter device is invalid.")
    return device


def root_device(resource: Image | Machine) -> str:
    """The root device name of an AMI or instance: the cloud's own, else EC2's for its platform."""
    return resource.root_device or ROOT_DEVICES.get(resource.platform, DEFAULT_ROOT_DEVICE)


# -- VPC and subnet ranges ------------------------------------------------------------------------------

#: EC2's VPC and subnet sizes, and the code it refuses others with.
MIN_PREFIX, MAX_PREFIX = 16, 28
RANGE_ERRORS: Mapping[str, str] = {"network": "InvalidVpc.Range", "subnet": "InvalidSubnet.Range"}


def check_range(kind: str, cidr: str, within: str | None = None) -> None:
    """A VPC or subnet block EC2 would take: /16 to /28, a subnet inside its VPC's block."""
    net = ipaddress.IPv4Network(cidr, strict=True)
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise EC2Error(RANGE_ERRORS[kind], f"The CIDR '{cidr}' is invalid: blocks are /{MIN_PREFIX} to /{MAX_PREFIX}.")
    if within and not net.subnet_of(ipaddress.ip_network(within)):
        raise EC2Error(RANGE_ERRORS[kind], f"The CIDR '{cidr}' is invalid: it is outside the VPC's {within}.")


# -- attributes derived from canonical data -------------------------------------------------------------

#: vCPUs -> what DescribeInstanceTypes says of an instance type's network (EC2's figures for its sizes).
NETWORK_PERFORMANCE: tuple[tuple[int, str], ...] = (
    (2, "Up to 5 Gigabit"),
    (16, "Up to 10 Gigabit"),
    (32, "10 Gigabit"),
    (64, "20 Gigabit"),
)
LARGEST_NETWORK = "25 Gigabit"


def network_performance(vcpus: int) -> str:
    return next((text for most, text in NETWORK_PERFORMANCE if vcpus <= most), LARGEST_NETWORK)


def reservation_id(machine: Machine) -> str:
    """EC2's ``r-`` id of the launch a machine came from, computed alike by every worker from the machine.

    A launch is named by the idempotency key its machines carry in the cloud. A machine made outside the
    gateway has none: its launch is then the machines of the account made at one time from one image, type,
    key, zone, subnet and groups (what RunInstances shares between the instances of a reservation).
    """
    if machine.launch_key:
        return "r-" + short_form(gateway_id(machine.account, "reservation", "key/" + machine.launch_key))
    launch = "/".join(
        (
            repr(machine.created),
            machine.image_id or "",
            machine.flavor_id or "",
            machine.key_name or "",
            machine.zone,
            machine.subnet_id or "",
            ",".join(sorted(machine.security_group_ids)),
        )
    )
    return "r-" + short_form(gateway_id(machine.account, "reservation", launch))


def association_id(address: Address) -> str | None:
    """The public ``eipassoc-`` id of an address's current association (None when not associated).

    Derived from the address and the machine it is associated with (uuid5 with the account, as gateway ids
    are): every worker computes it alike with nothing stored, and an id for an earlier association with
    another machine is refused rather than undoing a later one. DisassociateAddress resolves it by scanning
    the caller's addresses, which are few.
    """
    if not address.machine_id:
        return None
    return public_id("association", gateway_id(address.account, "association", f"{address.id}/{address.machine_id}"))
