"""VPCs and subnets: DescribeVpcs, CreateVpc, DeleteVpc, DescribeSubnets, CreateSubnet, DeleteSubnet.

A canonical ``Network`` is an EC2 VPC and a ``Subnet`` an EC2 subnet; the backend's default network
is the default VPC, its per-zone default subnets are ``DefaultForAz``.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any, cast

from frontends.ec2.actions.base import Call, Handler, describe_resources, describer, tag_list, writer
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.vocabulary import check_range
from translator.ids import gateway_id, short_form
from translator.model import Network, NetworkSpec, NetworkState, Subnet, SubnetSpec

#: canonical network state -> EC2 VPC state, and subnet state. Every canonical state has a row in each.
EC2_VPC_STATES: dict[NetworkState, str] = {
    NetworkState.PENDING: "pending",
    NetworkState.AVAILABLE: "available",
    NetworkState.ERROR: "pending",  # EC2 has no failed VPC: one the cloud failed to make never becomes available
    NetworkState.DOWN: "available",  # EC2 has no VPC that is down: it is there, its subnets carry no traffic
}
EC2_SUBNET_STATES: dict[NetworkState, str] = {
    NetworkState.PENDING: "pending",
    NetworkState.AVAILABLE: "available",
    NetworkState.ERROR: "failed",
    NetworkState.DOWN: "unavailable",
}

#: No DHCP options set is what EC2 calls ``default``.
DHCP_OPTIONS = "default"

VPC_FILTERS = table(
    {
        "vpc-id": "VpcId",
        "cidr": "CidrBlock",
        "cidr-block-association.cidr-block": "CidrBlockAssociationSet[].CidrBlock",
        "cidr-block-association.association-id": "CidrBlockAssociationSet[].AssociationId",
        "cidr-block-association.state": "CidrBlockAssociationSet[].CidrBlockState.State",
        "is-default": "IsDefault",
        "isDefault": "IsDefault",
        "state": "State",
        "owner-id": "OwnerId",
        "dhcp-options-id": "DhcpOptionsId",
    }
)

SUBNET_FILTERS = table(
    {
        "subnet-id": "SubnetId",
        "subnet-arn": "SubnetArn",
        "vpc-id": "VpcId",
        "cidr": "CidrBlock",
        "cidr-block": "CidrBlock",
        "cidrBlock": "CidrBlock",
        "availability-zone": "AvailabilityZone",
        "availabilityZone": "AvailabilityZone",
        "availability-zone-id": "AvailabilityZoneId",
        "default-for-az": "DefaultForAz",
        "defaultForAz": "DefaultForAz",
        "state": "State",
        "available-ip-address-count": "AvailableIpAddressCount",
        "map-public-ip-on-launch": "MapPublicIpOnLaunch",
        "owner-id": "OwnerId",
    }
)


def _cidr(args: dict[str, Any]) -> str:
    """The CidrBlock parameter; a value that is no IPv4 CIDR at all is InvalidParameterValue, as on EC2."""
    cidr = args.get("CidrBlock")
    if not cidr:
        raise EC2Error("MissingParameter", "The request must contain the parameter cidrBlock")
    try:
        ipaddress.IPv4Network(cidr, strict=True)
    except ValueError:
        raise EC2Error(
            "InvalidParameterValue",
            f"Value ({cidr}) for parameter cidrBlock is invalid. This is not a valid CIDR block.",
        ) from None
    return cidr


def _cidr_association(n: Network) -> str:
    return "vpc-cidr-assoc-" + short_form(gateway_id(n.account, "vpc_cidr_association", n.id))


def _vpc(call: Call, n: Network) -> dict[str, Any]:
    return {
        "VpcId": public_id("network", n.id),
        "CidrBlock": n.cidr,
        "State": EC2_VPC_STATES[n.state],
        "DhcpOptionsId": DHCP_OPTIONS,
        "OwnerId": call.account_id,
        "InstanceTenancy": "default",
        "IsDefault": n.is_default,
        "CidrBlockAssociationSet": [
            {"AssociationId": _cidr_association(n), "CidrBlock": n.cidr, "CidrBlockState": {"State": "associated"}}
        ],
        "Ipv6CidrBlockAssociationSet": [],
        "Tags": tag_list(n) or None,
        "_Created": n.created,
    }


def _subnet(call: Call, s: Subnet) -> dict[str, Any]:
    sid = public_id("subnet", s.id)
    return {
        "SubnetId": sid,
        "SubnetArn": f"arn:aws:ec2:{call.region}:{call.account_id}:subnet/{sid}",
        "VpcId": public_id("network", s.network_id),
        "CidrBlock": s.cidr,
        "State": EC2_SUBNET_STATES[s.state],
        "AvailabilityZone": s.zone,
        "AvailabilityZoneId": s.zone,  # as DescribeAvailabilityZones reports ZoneId
        "AvailableIpAddressCount": s.available_ips,
        "DefaultForAz": s.is_default,
        "MapPublicIpOnLaunch": s.is_default,  # EC2 sets it on default subnets only
        "MapCustomerOwnedIpOnLaunch": False,
        "AssignIpv6AddressOnCreation": False,
        "Ipv6CidrBlockAssociationSet": [],
        "Ipv6Native": False,
        "EnableDns64": False,
        "OwnerId": call.account_id,
        "PrivateDnsNameOptionsOnLaunch": {
            "HostnameType": "ip-name",
            "EnableResourceNameDnsARecord": False,
            "EnableResourceNameDnsAAAARecord": False,
        },
        "Tags": tag_list(s) or None,
        "_Created": s.created,
    }


def _tagged(call: Call, kind: str, resource: Any, tags: dict[str, str]) -> None:
    if tags:
        call.translator.update_tags(call.principal, kind, [resource.id], tags)
        resource.tags = {**resource.tags, **tags}


def describe_vpcs(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    render = functools.partial(_vpc, call)
    items, token = describe_resources(
        call, "DescribeVpcs", "network", args, render, VPC_FILTERS, ids=args.get("VpcIds")
    )
    return {"Vpcs": items, "NextToken": token}


def create_vpc(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("AmazonProvidedIpv6CidrBlock") or args.get("Ipv6CidrBlock") or args.get("Ipv4IpamPoolId"):
        raise EC2Error("UnsupportedOperation", "Only an IPv4 CidrBlock can be given for a VPC here.")
    cidr = _cidr(args)
    check_range("network", cidr)
    tags = spec_tags(args, "vpc")
    network = call.translator.create_network(
        call.principal, NetworkSpec(cidr=cidr, name=tags.get("Name", "")), call.region
    )
    _tagged(call, "network", network, tags)
    return {"Vpc": _vpc(call, network)}


def delete_vpc(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Subnets left in the VPC are EC2's DependencyViolation (some clouds delete them along); so is whatever
    else the cloud refuses to delete it with (the translator's Conflict)."""
    (gid,) = resolve_ids(call.translator, "network", [args["VpcId"]])
    if any(s.network_id == gid for s in call.translator.list(call.principal, "subnet", call.region)):
        raise EC2Error("DependencyViolation", f"The vpc '{args['VpcId']}' has dependencies and cannot be deleted.")
    call.translator.delete_network(call.principal, gid)
    return {}


def describe_subnets(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    render = functools.partial(_subnet, call)
    items, token = describe_resources(
        call, "DescribeSubnets", "subnet", args, render, SUBNET_FILTERS, ids=args.get("SubnetIds")
    )
    return {"Subnets": items, "NextToken": token}


def create_subnet(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    if args.get("Ipv6CidrBlock") or args.get("Ipv6Native") or args.get("Ipv4IpamPoolId"):
        raise EC2Error("UnsupportedOperation", "Only an IPv4 CidrBlock can be given for a subnet here.")
    (network,) = resolve_ids(call.translator, "network", [args["VpcId"]])
    cidr = _cidr(args)
    check_range("subnet", cidr, cast(Network, call.translator.get(call.principal, "network", network)).cidr)
    tags = spec_tags(args, "subnet")
    zone = args.get("AvailabilityZone") or args.get("AvailabilityZoneId")  # zone ids are zone names here
    spec = SubnetSpec(network_id=network, cidr=cidr, zone=zone, name=tags.get("Name", ""))
    subnet = call.translator.create_subnet(call.principal, spec)
    _tagged(call, "subnet", subnet, tags)
    return {"Subnet": _subnet(call, subnet)}


def delete_subnet(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Instances left in the subnet: the translator's Conflict is DependencyViolation."""
    (gid,) = resolve_ids(call.translator, "subnet", [args["SubnetId"]])
    call.translator.delete_subnet(call.principal, gid)
    return {}


ACTIONS: dict[str, Handler] = {
    "DescribeVpcs": describer(describe_vpcs),
    "CreateVpc": writer(create_vpc),
    "DeleteVpc": writer(delete_vpc),
    "DescribeSubnets": describer(describe_subnets),
    "CreateSubnet": writer(create_subnet),
    "DeleteSubnet": writer(delete_subnet),
}
