"""The simulator's options: defaults, validation (one table of checks) and the parsed ``Settings``.

The default catalogue mirrors what a user of EC2 would recognise: the real vCPU and memory figures of a
few current instance types, and two well-known Linux images.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends import options as o
from translator.model import Flavor, Image

DEFAULT_BOOT_DELAY = 0.5
DEFAULT_MAX_MACHINES = 256
#: EC2 keeps terminated instances visible for about an hour.
DEFAULT_TERMINATED_RETENTION = 3600.0

DEFAULT_IMAGES: tuple[dict[str, Any], ...] = (
    {
        "name": "ubuntu-24.04",
        "description": "Ubuntu Server 24.04 LTS (Noble Numbat)",
        "os": "ubuntu",
        "architecture": "x86_64",
        "platform": "linux",
        "min_disk_gb": 8,
        "root_device": "/dev/sda1",
    },
    {
        "name": "debian-12",
        "description": "Debian 12 (Bookworm)",
        "os": "debian",
        "architecture": "x86_64",
        "platform": "linux",
        "min_disk_gb": 8,
        "root_device": "/dev/xvda",
    },
)

#: EC2's published figures for these instance types (all EBS-only, hence disk_gb 0).
DEFAULT_FLAVORS: tuple[dict[str, Any], ...] = (
    {
        "name": "t3.micro",
        "vcpus": 2,
        "memory_mb": 1024,
        "disk_gb": 0,
    },
    {
        "name": "t3.small",
        "vcpus": 2,
        "memory_mb": 2048,
        "disk_gb": 0,
    },
    {
        "name": "t3.medium",
        "vcpus": 2,
        "memory_mb": 4096,
        "disk_gb": 0,
    },
    {
        "name": "m5.large",
        "vcpus": 2,
        "memory_mb": 8192,
        "disk_gb": 0,
    },
    {
        "name": "c5.xlarge",
        "vcpus": 4,
        "memory_mb": 8192,
        "disk_gb": 0,
    },
)

#: Fallback disk size when neither image nor flavor names one.
MIN_ROOT_GB = 1


@dataclass(frozen=True, slots=True)
class FaultSettings:
    """Injected failures (tests and demos of the translator's retries)."""

    fail_first: int = 0
    fail_rate: float = 0.0
    down: bool = False
    boot_failure_rate: float = 0.0  # launched machines that fail to boot end in the "error" state
    #: Seconds every create takes to answer once the resource is made (a slow cloud: a worker can die meanwhile).
    create_delay: float = 0.0
    #: The first N creates make their resource, then fail as if the answer were lost (``OutcomeUnknown``).
    timeout_after_create: int = 0


@dataclass(frozen=True, slots=True)
class Settings:
    """An account's options, parsed once when the backend is constructed."""

    boot_delay: float
    images: tuple[Image, ...]
    flavors: tuple[Flavor, ...]
    max_machines: int
    terminated_retention: float
    faults: FaultSettings

    def image(self, native_id: str) -> Image | None:
        return next((i for i in self.images if i.native_id == native_id), None)

    def flavor(self, native_id: str) -> Flavor | None:
        return next((f for f in self.flavors if f.native_id == native_id), None)


def image_id(name: str) -> str:
    """Provider images get ids derived from their names, so they survive restarts and match everywhere."""
    return "img-" + uuid.uuid5(uuid.NAMESPACE_URL, "cloudgate-simulator/image/" + name).hex


def make_image(table: Mapping[str, Any]) -> Image:
    return Image(
        native_id=image_id(table["name"]),
        name=table["name"],
        description=table.get("description", ""),
        os=table.get("os", ""),
        architecture=table.get("architecture", "x86_64"),
        platform=table.get("platform", "linux"),
        min_disk_gb=int(table.get("min_disk_gb", 0)),
        root_device=table.get("root_device", ""),
        owner="simulator",
        public=True,
    )


def make_flavor(table: Mapping[str, Any]) -> Flavor:
    return Flavor(
        native_id=table["name"],
        name=table["name"],
        vcpus=int(table["vcpus"]),
        memory_mb=int(table["memory_mb"]),
        disk_gb=int(table.get("disk_gb", 0)),
        architecture=table.get("architecture", "x86_64"),
        description=table.get("description", ""),
    )


def parse_settings(options: Mapping[str, Any]) -> Settings:
    """Options (assumed valid, see ``validate_options``) -> Settings with defaults filled in."""
    faults = options.get("faults") or {}
    return Settings(
        boot_delay=float(options.get("boot_delay", DEFAULT_BOOT_DELAY)),
        images=tuple(make_image(t) for t in options.get("images", DEFAULT_IMAGES)),
        flavors=tuple(make_flavor(t) for t in options.get("flavors", DEFAULT_FLAVORS)),
        max_machines=int(options.get("max_machines", DEFAULT_MAX_MACHINES)),
        terminated_retention=float(options.get("terminated_retention", DEFAULT_TERMINATED_RETENTION)),
        faults=FaultSettings(
            fail_first=int(faults.get("fail_first", 0)),
            fail_rate=float(faults.get("fail_rate", 0.0)),
            down=bool(faults.get("down", False)),
            boot_failure_rate=float(faults.get("boot_failure_rate", 0.0)),
            create_delay=float(faults.get("create_delay", 0.0)),
            timeout_after_create=int(faults.get("timeout_after_create", 0)),
        ),
    )


# ---------------------------------------------------------------------------------------------------
# Validation: one table of checks (backends.options), nested field tables for the images, flavors and faults.
# ---------------------------------------------------------------------------------------------------


def device(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith("/dev/")
    return None if ok else f"must be a device path like /dev/vda, got {value!r}"


IMAGE_FIELDS: o.Fields = {
    "name": (o.non_empty, True),
    "description": (o.text, False),
    "os": (o.text, False),
    "architecture": (o.non_empty, False),
    "platform": (o.non_empty, False),
    "min_disk_gb": (o.non_negative_int, False),
    "root_device": (device, False),
}
FLAVOR_FIELDS: o.Fields = {
    "name": (o.non_empty, True),
    "vcpus": (o.positive_int, True),
    "memory_mb": (o.positive_int, True),
    "disk_gb": (o.non_negative_int, False),
    "architecture": (o.non_empty, False),
    "description": (o.text, False),
}
FAULT_FIELDS: o.Fields = {
    "fail_first": (o.non_negative_int, False),
    "fail_rate": (o.fraction, False),
    "down": (o.boolean, False),
    "boot_failure_rate": (o.fraction, False),
    "create_delay": (o.non_negative, False),
    "timeout_after_create": (o.non_negative_int, False),
}
CHECKS: dict[str, o.Check | o.Nested] = {
    "boot_delay": o.non_negative,
    "max_machines": o.non_negative_int,
    "terminated_retention": o.non_negative,
    "images": o.named_tables(IMAGE_FIELDS),
    "flavors": o.named_tables(FLAVOR_FIELDS),
    "faults": o.table(FAULT_FIELDS),
}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Every problem with the options, as ``key: what is wrong``; unknown keys are reported (typos)."""
    return o.validate(options, CHECKS)
