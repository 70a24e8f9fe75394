"""Zones, service offerings (flavors) and templates (images): what an account launches from.

The account's configured zone names are CloudStack zone names; templates are listed with
``templatefilter=executable`` (featured, community, the account's own and those shared with it, once ready) and
``self`` (the account's own, ready or still being made) in those zones.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from backends.cloudstack import tags
from translator.errors import InvalidParameter, NotFound
from translator.model import Flavor, Image, ImageState, Zone

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

ZONES_TTL = 300.0  # seconds a process keeps the zone name -> id map (zones change rarely)
#: The template filters an image listing reads: what the account may launch, and its own still being made.
TEMPLATE_FILTERS = ("executable", "self")
#: A template's ``status`` text when its download or creation failed (it is then never ``isready``).
FAILED_WORDS = ("fail", "error", "abandoned")


def zone_index(b: CloudStackBackend, refresh: bool = False) -> dict[str, dict[str, Any]]:
    """CloudStack zones by name, cached per process."""
    fetched, index = b._zones
    if refresh or not index or time.monotonic() - fetched > ZONES_TTL:
        zones = b.cloud.listing("listZones", "zone", kind="zone", what="list zones", owned=False)
        index = {z["name"]: z for z in zones}
        b._zones = (time.monotonic(), index)
    return index


def zone_id(b: CloudStackBackend, name: str | None) -> str:
    """The CloudStack id of one of the account's zones (its first when ``name`` is None)."""
    name = name or b.account.zones[0]
    if name not in b.account.zones:
        raise InvalidParameter(f"The zone '{name}' is not one of {', '.join(b.account.zones)}.", kind="zone")
    zone = zone_index(b).get(name) or zone_index(b, refresh=True).get(name)
    if zone is None:
        raise InvalidParameter(f"CloudStack has no zone named '{name}'.", kind="zone", reason="zone")
    return zone["id"]


def list_zones(b: CloudStackBackend) -> list[Zone]:
    index = zone_index(b, refresh=True)
    return [
        Zone(name=z, region=b.account.region, available=index.get(z, {}).get("allocationstate") == "Enabled")
        for z in b.account.zones
    ]


def to_flavor(offering: dict[str, Any]) -> Flavor:
    return Flavor(
        native_id=offering["id"],
        name=offering.get("name", ""),
        description=offering.get("displaytext", ""),
        vcpus=int(offering.get("cpunumber") or 0),
        memory_mb=int(offering.get("memory") or 0),
        disk_gb=int(offering.get("rootdisksize") or 0),
    )


def list_flavors(b: CloudStackBackend) -> list[Flavor]:
    """Service offerings with a fixed size (customised ones ask for CPUs and memory at deploy: not flavors)."""
    offerings = b.cloud.listing("listServiceOfferings", "serviceoffering", kind="flavor", what="list offerings")
    return [to_flavor(o) for o in offerings if o.get("cpunumber") and o.get("memory")]


def image_state(template: dict[str, Any]) -> ImageState:
    if template.get("isready"):
        return ImageState.AVAILABLE
    status = str(template.get("status", "")).lower()
    return ImageState.FAILED if any(w in status for w in FAILED_WORDS) else ImageState.PENDING


def to_image(template: dict[str, Any]) -> Image:
    os_name = str(template.get("ostypename", ""))
    return Image(
        native_id=template["id"],
        name=template.get("name", ""),
        description=template.get("displaytext", ""),
        state=image_state(template),
        os=os_name,
        platform="windows" if "windows" in os_name.lower() else "linux",
        owner=str(template.get("account", "")),
        public=bool(template.get("ispublic", False)),
        min_disk_gb=int(template.get("size") or 0) >> 30,
        created=parse_time(template.get("created")),
        tags=tags.user_tags(template),
    )


def list_images(b: CloudStackBackend, ids: list[str] | None = None) -> list[Image]:
    """Executable and own templates in the account's zones, one image per template (a cross-zone one is listed
    once)."""
    wanted = {z["id"] for n, z in zone_index(b).items() if n in b.account.zones}
    found: dict[str, Image] = {}
    for tid in ids if ids is not None else [None]:
        for kind in TEMPLATE_FILTERS:
            params = {"templatefilter": kind, "id": tid}
            for t in b.cloud.listing("listTemplates", "template", params, kind="image", what="list templates"):
                if t.get("zoneid") in wanted or t.get("crossZones"):
                    found.setdefault(t["id"], to_image(t))
    return list(found.values())


def get_images(b: CloudStackBackend, native_ids: list[str]) -> list[Image]:
    """Templates read by id (CloudStack's PARAM_ERROR for an unknown id means it is missing: left out)."""
    out = []
    for tid in dict.fromkeys(native_ids):
        try:
            out.extend(list_images(b, [tid]))
        except (NotFound, InvalidParameter):  # CloudStack's PARAM_ERROR for an id naming nothing: left out
            continue
    return out


def parse_time(value: Any) -> float:
    """Epoch seconds of a CloudStack date (``2024-05-01T12:00:00+0000``); 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        return datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return 0.0
