"""VPCs as networks, their subnets, and elastic addresses."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.ec2 import mapping, native_tags, to_ec2
from translator.errors import Conflict, NotFound
from translator.model import Address, Network, NetworkSpec, NetworkUpdate, Subnet, SubnetSpec

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend


def list_networks(b: EC2Backend) -> list[Network]:
    return [mapping.network(v) for v in b.pages("describe_vpcs", "Vpcs", "network")]


def create_network(b: EC2Backend, spec: NetworkSpec) -> Network:
    """EC2 VPCs have no description: one given is not kept."""
    cidr = to_ec2.check_cidr(spec.cidr, "network")
    made = b.call("create_vpc", "network", CidrBlock=cidr, TagSpecifications=to_ec2.name_tags("vpc", spec.name))
    return mapping.network(made["Vpc"])


def update_network(b: EC2Backend, native_id: str, update: NetworkUpdate) -> Network:
    """A VPC's name is its ``Name`` tag; it has no description."""
    native_tags.no_description("network", update.description)
    b.call("describe_vpcs", "network", VpcIds=[native_id])  # moto tags an unknown id without a word
    native_tags.rename(b, "network", native_id, update.name)
    return mapping.network(b.call("describe_vpcs", "network", VpcIds=[native_id])["Vpcs"][0])


def delete_network(b: EC2Backend, native_id: str) -> None:
    b.call("delete_vpc", "network", VpcId=native_id)


def list_subnets(b: EC2Backend) -> list[Subnet]:
    """The subnets in the account's zones: the account sees the EC2 region through them."""
    filters = [{"Name": "availability-zone", "Values": sorted(set(b.ec2_zones.values()))}]
    items = b.pages("describe_subnets", "Subnets", "subnet", Filters=filters)
    return [mapping.subnet(s, b.gateway_zone) for s in items]


def create_subnet(b: EC2Backend, spec: SubnetSpec) -> Subnet:
    cidr = to_ec2.check_cidr(spec.cidr, "subnet")
    made = b.call(
        "create_subnet",
        "subnet",
        VpcId=spec.network_id,
        CidrBlock=cidr,
        AvailabilityZone=b.ec2_zone(spec.zone),
        TagSpecifications=to_ec2.name_tags("subnet", spec.name),
    )
    return mapping.subnet(made["Subnet"], b.gateway_zone)


def delete_subnet(b: EC2Backend, native_id: str) -> None:
    b.call("delete_subnet", "subnet", SubnetId=native_id)


def _address_ref(native_id: str) -> dict[str, str]:
    """How EC2 names an address: its allocation id, or its public IP for an EC2-Classic one."""
    return {"PublicIp": native_id} if to_ec2.is_ip(native_id) else {"AllocationId": native_id}


def list_addresses(b: EC2Backend) -> list[Address]:
    return [mapping.address(a) for a in b.call("describe_addresses", "address").get("Addresses") or ()]


def _raw_address(b: EC2Backend, native_id: str) -> dict[str, Any]:
    ref = _address_ref(native_id)
    query = {"PublicIps": [native_id]} if "PublicIp" in ref else {"AllocationIds": [native_id]}
    found = b.call("describe_addresses", "address", **query).get("Addresses") or []
    if not found:
        raise NotFound(f"The allocation ID '{native_id}' does not exist", kind="address")
    return dict(found[0])


def address(b: EC2Backend, native_id: str) -> Address:
    """One address, read by id."""
    return mapping.address(_raw_address(b, native_id))


def allocate_address(b: EC2Backend) -> Address:
    return mapping.address(b.call("allocate_address", "address", Domain="vpc"))


def associate_address(b: EC2Backend, native_id: str, machine_native_id: str) -> Address:
    b.call("associate_address", "address", InstanceId=machine_native_id, **_address_ref(native_id))
    return address(b, native_id)


def disassociate_address(b: EC2Backend, native_id: str) -> Address:
    """By EC2's association id (a VPC address), else by the public IP (EC2-Classic)."""
    raw = _raw_address(b, native_id)
    if not (raw.get("AssociationId") or raw.get("InstanceId")):
        raise Conflict(f"The address '{native_id}' is not associated.", kind="address", reason="state")
    ref = {"AssociationId": raw["AssociationId"]} if raw.get("AssociationId") else {"PublicIp": raw["PublicIp"]}
    b.call("disassociate_address", "address", **ref)
    return address(b, native_id)


def release_address(b: EC2Backend, native_id: str) -> None:
    # AWS refuses to release an associated VPC address (InvalidIPAddress.InUse); moto releases it.
    raw = _raw_address(b, native_id)
    if raw.get("AssociationId") or raw.get("InstanceId"):
        raise Conflict(
            f"The address '{native_id}' is associated with '{raw.get('InstanceId')}'; disassociate it first.",
            kind="address",
            reason="in_use",
        )
    b.call("release_address", "address", **_address_ref(native_id))
