"""DescribeRegions, DescribeAvailabilityZones: backend accounts as regions, their zones as zones."""

from __future__ import annotations

from typing import Any

from frontends.ec2.actions.base import Call, Handler, reader
from frontends.ec2.errors import EC2Error


def describe_regions(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    wanted = set(args.get("RegionNames") or [])
    regions = [a.region for a in call.translator.regions(call.principal)]
    unknown = sorted(wanted - set(regions))
    if unknown:
        raise EC2Error("InvalidParameterValue", f"Invalid region: {unknown}")
    return {
        "Regions": [
            {"RegionName": r, "Endpoint": call.endpoint, "OptInStatus": "opt-in-not-required"}
            for r in regions
            if not wanted or r in wanted
        ]
    }


def describe_availability_zones(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    wanted = set(args.get("ZoneNames") or [])
    zones = call.translator.zones(call.principal, call.region)
    unknown = sorted(wanted - {z.name for z in zones})
    if unknown:
        raise EC2Error("InvalidParameterValue", f"The zone '{unknown[0]}' does not exist.")
    return {
        "AvailabilityZones": [
            {
                "ZoneName": z.name,
                "ZoneId": z.name,
                "State": "available" if z.available else "unavailable",
                "RegionName": z.region,
                "ZoneType": "availability-zone",
                "OptInStatus": "opt-in-not-required",
                "GroupName": z.region,
                "NetworkBorderGroup": z.region,
                "Messages": [],
            }
            for z in zones
            if not wanted or z.name in wanted
        ]
    }


ACTIONS: dict[str, Handler] = {
    "DescribeRegions": reader(describe_regions),
    "DescribeAvailabilityZones": reader(describe_availability_zones),
}
