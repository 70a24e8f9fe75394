"""An instance's network interfaces (ENIs): made on a subnet and attached, detached and deleted.

EC2 attaches only an ENI that exists; ``attach_interface`` makes one (marked as ours in its description) with
the instance's security groups and attaches it at the next free device index. ``detach_interface`` detaches,
and deletes an ENI of ours once EC2 has let it go (bounded by the account's ``timeout``).
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from backends.ec2 import mapping
from backends.ec2.machines import instance
from translator.errors import CloudgateError, Conflict, InvalidParameter, NotFound
from translator.model import InterfaceSpec, NetworkInterface

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend

#: Description of the ENIs made here (deleted here when detached).
OWN_ENI = "cloudgate: interface attached to an instance"
POLL = 0.2  # seconds between two looks at a detaching ENI


def _subnet(b: EC2Backend, item: dict[str, Any], spec: InterfaceSpec) -> str:
    """The subnet for the ENI: the one named, else the network's subnet in the instance's zone (its default one
    first). EC2 refuses an ENI in another zone than its instance with a generic code: answered here."""
    zone = (item.get("Placement") or {}).get("AvailabilityZone")
    if spec.subnet_id is not None:
        found = b.call("describe_subnets", "subnet", SubnetIds=[spec.subnet_id]).get("Subnets") or []
        if not found:
            raise NotFound(f"The subnet '{spec.subnet_id}' does not exist.", kind="subnet")
        subnet = found[0]
        if spec.network_id is not None and subnet.get("VpcId") != spec.network_id:
            raise InvalidParameter(f"The subnet '{spec.subnet_id}' is not in VPC '{spec.network_id}'.", kind="subnet")
        if subnet.get("AvailabilityZone") != zone:
            raise InvalidParameter(
                f"The subnet '{spec.subnet_id}' is not in the instance's zone.", kind="subnet", reason="zone"
            )
        return spec.subnet_id
    b.call("describe_vpcs", "network", VpcIds=[spec.network_id])
    filters = [{"Name": "vpc-id", "Values": [spec.network_id]}, {"Name": "availability-zone", "Values": [zone]}]
    here = b.call("describe_subnets", "subnet", Filters=filters).get("Subnets") or []
    if not here:
        raise InvalidParameter(
            f"The VPC '{spec.network_id}' has no subnet in the instance's zone.", kind="network", reason="zone"
        )
    return min(here, key=lambda s: (not s.get("DefaultForAz"), s.get("CidrBlock") or ""))["SubnetId"]


def attach_interface(b: EC2Backend, native_id: str, spec: InterfaceSpec) -> NetworkInterface:
    item = instance(b, native_id)
    subnet = _subnet(b, item, spec)
    groups = [g["GroupId"] for g in item.get("SecurityGroups") or () if g.get("GroupId")]
    made = b.call(
        "create_network_interface",
        "network_interface",
        SubnetId=subnet,
        Description=OWN_ENI,
        **({"Groups": groups} if groups else {}),
    )["NetworkInterface"]
    eni = made["NetworkInterfaceId"]
    taken = [int((e.get("Attachment") or {}).get("DeviceIndex") or 0) for e in item.get("NetworkInterfaces") or ()]
    try:
        b.call(
            "attach_network_interface",
            "machine",
            NetworkInterfaceId=eni,
            InstanceId=native_id,
            DeviceIndex=max(taken, default=0) + 1,
        )
    except CloudgateError:
        with contextlib.suppress(CloudgateError):  # the attach's error is the one to report
            b.call("delete_network_interface", "network_interface", NetworkInterfaceId=eni)
        raise
    found = b.call("describe_network_interfaces", "network_interface", NetworkInterfaceIds=[eni])
    return mapping.interface((found.get("NetworkInterfaces") or [made])[0])


def detach_interface(b: EC2Backend, native_id: str, interface_native_id: str) -> None:
    item = instance(b, native_id)
    eni = next(
        (e for e in item.get("NetworkInterfaces") or () if e.get("NetworkInterfaceId") == interface_native_id), None
    )
    if eni is None:
        message = f"The instance '{native_id}' has no interface '{interface_native_id}'."
        raise NotFound(message, kind="network_interface")
    attachment = eni.get("Attachment") or {}
    # EC2 answers OperationNotPermitted for the primary ENI (moto does not refuse it): answered here.
    if int(attachment.get("DeviceIndex") or 0) == 0:
        raise Conflict(
            f"The interface '{interface_native_id}' is the primary interface of '{native_id}'.",
            kind="network_interface",
            reason="primary",
        )
    b.call("detach_network_interface", "network_interface", AttachmentId=attachment["AttachmentId"])
    if eni.get("Description") == OWN_ENI:
        _delete_when_free(b, interface_native_id)


def _delete_when_free(b: EC2Backend, eni: str) -> None:
    """Delete an ENI of ours once it is ``available``; left for the account's owner if that takes too long."""
    deadline = time.monotonic() + b.settings.timeout
    while True:
        found = b.call("describe_network_interfaces", "network_interface", NetworkInterfaceIds=[eni])
        items = found.get("NetworkInterfaces") or []
        if not items:
            return
        if items[0].get("Status") == "available":
            with contextlib.suppress(NotFound):
                b.call("delete_network_interface", "network_interface", NetworkInterfaceId=eni)
            return
        if time.monotonic() > deadline:
            return
        time.sleep(POLL)
