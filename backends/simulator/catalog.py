"""The simulator's options: defaults, validation (one table of checks) and the parsed ``Settings``.

The default catalogue mirrors what a user of EC2 would recognise: the real vCPU and memory figures of a
few current instance types, and two well-known Linux images.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
        "network_performance": "Up to 5 Gigabit",
    },
    {
        "name": "t3.small",
        "vcpus": 2,
        "memory_mb": 2048,
        "disk_gb": 0,
        "network_performance": "Up to 5 Gigabit",
    },
    {
        "name": "t3.medium",
        "vcpus": 2,
        "memory_mb": 4096,
        "disk_gb": 0,
        "network_performance": "Up to 5 Gigabit",
    },
    {
        "name": "m5.large",
        "vcpus": 2,
        "memory_mb": 8192,
        "disk_gb": 0,
        "network_performance": "Up to 10 Gigabit",
    },
    {
        "name": "c5.xlarge",
        "vcpus": 4,
        "memory_mb": 8192,
        "disk_gb": 0,
        "network_performance": "Up to 10 Gigabit",
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
        root_device=table.get("root_device", "/dev/sda1"),
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
        network_performance=table.get("network_performance", "Moderate"),
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
        ),
    )


# ---------------------------------------------------------------------------------------------------
# Validation: each check returns "what is wrong" or None; tables say which check applies to which key.
# ---------------------------------------------------------------------------------------------------

Check = Callable[[Any], str | None]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def non_negative_number(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else f"must be a number >= 0, got {value!r}"


def positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return None if ok else f"must be an integer > 0, got {value!r}"


def non_negative_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else f"must be an integer >= 0, got {value!r}"


def fraction(value: Any) -> str | None:
    return None if _number(value) and 0 <= value <= 1 else f"must be a number between 0 and 1, got {value!r}"


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def text(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {value!r}"


def name(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"must be a non-empty string, got {value!r}"


def device(value: Any) -> str | None:
    ok = isinstance(value, str) and value.startswith("/dev/")
    return None if ok else f"must be a device path like /dev/sda1, got {value!r}"


#: field -> (check, required) for each table of the ``images`` and ``flavors`` lists.
IMAGE_FIELDS: dict[str, tuple[Check, bool]] = {
    "name": (name, True),
    "description": (text, False),
    "os": (text, False),
    "architecture": (name, False),
    "platform": (name, False),
    "min_disk_gb": (non_negative_int, False),
    "root_device": (device, False),
}
FLAVOR_FIELDS: dict[str, tuple[Check, bool]] = {
    "name": (name, True),
    "vcpus": (positive_int, True),
    "memory_mb": (positive_int, True),
    "disk_gb": (non_negative_int, False),
    "architecture": (name, False),
    "network_performance": (text, False),
    "description": (text, False),
}
FAULT_FIELDS: dict[str, tuple[Check, bool]] = {
    "fail_first": (non_negative_int, False),
    "fail_rate": (fraction, False),
    "down": (boolean, False),
}


def check_table(prefix: str, table: Any, fields: Mapping[str, tuple[Check, bool]]) -> list[str]:
    """Problems of one table against its field table: unknown, missing and malformed keys."""
    if not isinstance(table, Mapping):
        return [f"{prefix}: must be a table, got {table!r}"]
    problems = [f"{prefix}.{k}: unknown field (known: {', '.join(fields)})" for k in table if k not in fields]
    for key, (check, required) in fields.items():
        if key not in table:
            if required:
                problems.append(f"{prefix}.{key}: is required")
            continue
        wrong = check(table[key])
        if wrong:
            problems.append(f"{prefix}.{key}: {wrong}")
    return problems


def check_list(prefix: str, value: Any, fields: Mapping[str, tuple[Check, bool]]) -> list[str]:
    """A non-empty list of tables with unique names."""
    if not isinstance(value, list | tuple) or not value:
        return [f"{prefix}: must be a non-empty list of tables"]
    problems = [p for i, t in enumerate(value) for p in check_table(f"{prefix}[{i}]", t, fields)]
    names = [t.get("name") for t in value if isinstance(t, Mapping)]
    problems += [f"{prefix}: duplicate name {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
    return problems


OPTION_CHECKS: dict[str, Callable[[str, Any], list[str]]] = {
    "boot_delay": lambda k, v: [f"{k}: {e}"] if (e := non_negative_number(v)) else [],
    "max_machines": lambda k, v: [f"{k}: {e}"] if (e := non_negative_int(v)) else [],
    "terminated_retention": lambda k, v: [f"{k}: {e}"] if (e := non_negative_number(v)) else [],
    "images": lambda k, v: check_list(k, v, IMAGE_FIELDS),
    "flavors": lambda k, v: check_list(k, v, FLAVOR_FIELDS),
    "faults": lambda k, v: check_table(k, v, FAULT_FIELDS),
}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Every problem with the options, as ``key: what is wrong``; unknown keys are reported (typos)."""
    problems: list[str] = []
    for key, value in options.items():
        check = OPTION_CHECKS.get(key)
        if check is None:
            problems.append(f"{key}: unknown option (known: {', '.join(OPTION_CHECKS)})")
        else:
            problems += check(key, value)
    return problems
