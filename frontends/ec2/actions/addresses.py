"""Elastic IPs: AllocateAddress, DescribeAddresses, AssociateAddress, DisassociateAddress, ReleaseAddress,
DescribeAddressesAttribute. Every address is a VPC address (EC2-Classic is gone), named by AllocationId
or, for old tools, by its PublicIp.
"""

from __future__ import annotations

import functools
from typing import Any

from frontends.ec2.actions.base import (
    Call,
    Handler,
    describe_resources,
    describer,
    pick,
    reader,
    selected,
    tag_list,
    writer,
)
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.vocabulary import association_id
from translator.errors import Conflict
from translator.identity import authorize
from translator.model import Address

DOMAIN = "vpc"
POOL = "amazon"

ADDRESS_FILTERS = table(
    {
        "allocation-id": "AllocationId",
        "association-id": "AssociationId",
        "domain": "Domain",
        "instance-id": "InstanceId",
        "network-border-group": "NetworkBorderGroup",
        "network-interface-id": "NetworkInterfaceId",
        "network-interface-owner-id": "NetworkInterfaceOwnerId",
        "private-ip-address": "PrivateIpAddress",
        "public-ip": "PublicIp",
    }
)

#: DescribeAddressesAttribute knows no filters.
NO_FILTERS = table({}, tags=False)


def _address(call: Call, a: Address) -> dict[str, Any]:
    return {
        "PublicIp": a.public_ip,
        "AllocationId": public_id("address", a.id),
        "Domain": DOMAIN,
        "AssociationId": association_id(a),
        "InstanceId": public_id("machine", a.machine_id),
        "PrivateIpAddress": a.private_ip if a.machine_id else None,
        "NetworkInterfaceOwnerId": call.account_id if a.machine_id else None,
        "PublicIpv4Pool": POOL,
        "NetworkBorderGroup": call.region,
        "Tags": tag_list(a) or None,
        "_Created": a.created,
    }


def _addresses(call: Call) -> list[Address]:
    return call.translator.list(call.principal, "address", call.region)


def _by_allocation(call: Call, allocation_ids: list[str]) -> list[Address]:
    """The caller's addresses for ``eipalloc-`` ids, in order; another tenant's id is NotFound too."""
    return selected(call, "address", allocation_ids, _addresses(call))


def _by_ip(call: Call, ips: list[str]) -> list[Address]:
    return pick(_addresses(call), ips, lambda a: a.public_ip, "InvalidAddress.NotFound", "address")


def _one(call: Call, args: dict[str, Any]) -> Address:
    """The address an action names by AllocationId or PublicIp."""
    if args.get("AllocationId"):
        return _by_allocation(call, [args["AllocationId"]])[0]
    if args.get("PublicIp"):
        return _by_ip(call, [args["PublicIp"]])[0]
    raise EC2Error("MissingParameter", "Either AllocationId or PublicIp must be specified.")


def allocate_address(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    domain = args.get("Domain") or DOMAIN
    if domain != DOMAIN:
        raise EC2Error("InvalidParameterValue", f"Invalid value '{domain}' for domain: only 'vpc' is supported.")
    if args.get("Address") or args.get("CustomerOwnedIpv4Pool") or args.get("PublicIpv4Pool") not in (None, POOL):
        raise EC2Error("InvalidParameterValue", "Only addresses from Amazon's pool can be allocated here.")
    tags = spec_tags(args, "elastic-ip")
    a = call.translator.allocate_address(call.principal, call.region)
    if tags:
        call.translator.update_tags(call.principal, "address", [a.id], tags)
    return {
        "PublicIp": a.public_ip,
        "AllocationId": public_id("address", a.id),
        "Domain": DOMAIN,
        "PublicIpv4Pool": POOL,
        "NetworkBorderGroup": call.region,
    }


def describe_addresses(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """No MaxResults/NextToken: EC2 returns every address of the region at once."""
    ips = args.get("PublicIps") or []
    if ips:
        _by_ip(call, ips)  # InvalidAddress.NotFound for an address the caller does not hold
    items, _ = describe_resources(
        call,
        "DescribeAddresses",
        "address",
        args,
        functools.partial(_address, call),
        ADDRESS_FILTERS,
        ids=args.get("AllocationIds"),
        match={"public_ip": set(ips)} if ips else None,
    )
    return {"Addresses": items}


def associate_address(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """EC2-VPC reassociates an associated address automatically unless AllowReassociation is false."""
    address = _one(call, args)
    instance = args.get("InstanceId")
    if not instance:
        if args.get("NetworkInterfaceId"):
            eni = args["NetworkInterfaceId"]
            raise EC2Error("InvalidNetworkInterfaceID.NotFound", f"The networkInterface ID '{eni}' does not exist")
        raise EC2Error("MissingParameter", "Either InstanceId or NetworkInterfaceId must be specified.")
    (machine,) = resolve_ids(call.translator, "machine", [instance])
    if args.get("AllowReassociation") is False and address.machine_id not in (None, machine):
        raise EC2Error(
            "Resource.AlreadyAssociated",
            f"resource {public_id('address', address.id)} is already associated with associate-id "
            f"{association_id(address)}",
        )
    updated = call.translator.associate_address(call.principal, address.id, machine)
    return {"AssociationId": association_id(updated)}


def disassociate_address(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Idempotent by PublicIp, as EC2 documents; a stale or unknown AssociationId is NotFound."""
    assoc = args.get("AssociationId")
    if assoc:
        found = next((a for a in _addresses(call) if association_id(a) == assoc), None)
        if found is None:
            raise EC2Error("InvalidAssociationID.NotFound", f"The association ID '{assoc}' does not exist")
    elif args.get("PublicIp"):
        found = _by_ip(call, [args["PublicIp"]])[0]
    else:
        raise EC2Error("MissingParameter", "Either AssociationId or PublicIp must be specified.")
    if not found.machine_id:
        authorize(call.principal, "write")  # a no-op still needs the right to have done it
        return {}
    try:
        call.translator.disassociate_address(call.principal, found.id)
    except Conflict as exc:  # disassociated meanwhile by someone else: the goal is reached
        if exc.reason != "state":
            raise
    return {}


def release_address(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """EC2 refuses to release an associated address (not every cloud does); so does a backend's Conflict."""
    address = _one(call, args)
    if address.machine_id:
        raise EC2Error("InvalidIPAddress.InUse", f"Address {address.public_ip} is in use.")
    call.translator.release_address(call.principal, address.id)
    return {}


def describe_addresses_attribute(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Reverse DNS (``domain-name``) is never set here, so addresses come back without a PtrRecord."""
    attribute = args.get("Attribute") or "domain-name"
    if attribute != "domain-name":
        raise EC2Error("InvalidParameterValue", f"Invalid value '{attribute}' for Attribute.")
    items, token = describe_resources(
        call,
        "DescribeAddressesAttribute",
        "address",
        args,
        lambda a: {"PublicIp": a.public_ip, "AllocationId": public_id("address", a.id)},
        NO_FILTERS,
        ids=args.get("AllocationIds"),
        lowest=1,
        highest=1000,
    )
    return {"Addresses": items, "NextToken": token}


ACTIONS: dict[str, Handler] = {
    "AllocateAddress": writer(allocate_address),
    "DescribeAddresses": describer(describe_addresses),
    "AssociateAddress": writer(associate_address),
    "DisassociateAddress": writer(disassociate_address),
    "ReleaseAddress": writer(release_address),
    "DescribeAddressesAttribute": reader(describe_addresses_attribute),
}
