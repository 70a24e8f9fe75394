"""What the canonical model has and EC2 shows its own way: a machine's interfaces, paused machines, hard stops.

The EC2 frontend has no action that adds an interface to an instance the way the canonical model does (EC2
attaches ENIs made beforehand), nor one that pauses: those are done through the translator of the same
gateway's configuration, on the same Redis, and the gateway is asked over HTTP what it shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gateway_process import GatewayProcess

from frontends.ec2.actions.instances import EC2_INTERFACE_STATES
from frontends.ec2.actions.networks import EC2_SUBNET_STATES, EC2_VPC_STATES
from gateway.app import Runtime, build_runtime
from gateway.config import load
from translator.errors import NotFound
from translator.model import InterfaceSpec, InterfaceState, MachineAction, NetworkState, Principal

DEMO = Principal(user="test", tenant="demo", role="admin")
FAST = {"Delay": 0.2, "MaxAttempts": 50}


@pytest.fixture(scope="module")
def runtime(gateway: GatewayProcess) -> Iterator[Runtime]:
    """A translator over the gateway's own configuration and Redis (another worker, as it were)."""
    rt = build_runtime(load(gateway.config))
    yield rt
    rt.close()


def instance(ec2: Any, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def test_interfaces_are_the_backends_and_the_primary_keeps_its_id(ec2: Any, runtime: Runtime) -> None:
    (launched,) = ec2.run_instances(ImageId=_image(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"]
    iid = launched["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    first = instance(ec2, iid)
    (primary,) = first["NetworkInterfaces"]
    # The primary ENI's id is derived from the instance's, as it was before interfaces were listed.
    assert primary["NetworkInterfaceId"] == "eni-" + iid.removeprefix("i-")
    assert primary["Attachment"]["DeviceIndex"] == 0 and primary["Status"] == "in-use"

    vpc = first["VpcId"]
    # A VPC id is usable once VPCs have been listed: the gateway learns ids from listings of their own kind.
    assert vpc in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]
    zone = first["Placement"]["AvailabilityZone"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.200.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
    t = runtime.translator
    (machine_id,) = t.expand_short([iid.removeprefix("i-")])
    (subnet_id,) = t.expand_short([subnet.removeprefix("subnet-")])
    made = t.attach_interface(DEMO, machine_id, InterfaceSpec(subnet_id=subnet_id))
    assert made.subnet_id == subnet_id and made.id

    shown = instance(ec2, iid)["NetworkInterfaces"]
    assert [n["Attachment"]["DeviceIndex"] for n in shown] == [0, 1]
    assert shown[0]["NetworkInterfaceId"] == primary["NetworkInterfaceId"]
    second = shown[1]
    assert second["SubnetId"] == subnet and second["VpcId"] == vpc
    assert second["PrivateIpAddress"] == made.private_ip and second["PrivateIpAddress"].startswith("10.0.200.")
    assert second["MacAddress"] == made.mac != primary["MacAddress"]
    assert (
        second["NetworkInterfaceId"].startswith("eni-")
        and second["NetworkInterfaceId"] != primary["NetworkInterfaceId"]
    )
    found = ec2.describe_instances(Filters=[{"Name": "network-interface.subnet-id", "Values": [subnet]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [iid]

    t.detach_interface(DEMO, machine_id, made.id)
    assert [n["NetworkInterfaceId"] for n in instance(ec2, iid)["NetworkInterfaces"]] == [primary["NetworkInterfaceId"]]
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig=FAST)
    ec2.delete_subnet(SubnetId=subnet)


def _image(ec2: Any) -> str:
    return next(i["ImageId"] for i in ec2.describe_images()["Images"] if i["Name"].startswith("ubuntu"))


def test_an_unknown_interface_is_not_found(ec2: Any, runtime: Runtime) -> None:
    (launched,) = ec2.run_instances(ImageId=_image(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"]
    (machine_id,) = runtime.translator.expand_short([launched["InstanceId"].removeprefix("i-")])
    with pytest.raises(NotFound) as info:
        runtime.translator.detach_interface(DEMO, machine_id, "00000000-0000-0000-0000-000000000000")
    assert info.value.kind == "network_interface"
    ec2.terminate_instances(InstanceIds=[launched["InstanceId"]])


def test_a_paused_instance_is_stopped_to_ec2_and_started_again(ec2: Any, runtime: Runtime) -> None:
    (launched,) = ec2.run_instances(ImageId=_image(ec2), InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"]
    iid = launched["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    (machine_id,) = runtime.translator.expand_short([iid.removeprefix("i-")])
    runtime.translator.act_on_machine(DEMO, machine_id, MachineAction.PAUSE)
    paused = instance(ec2, iid)
    assert paused["State"] == {"Code": 80, "Name": "stopped"}
    assert paused["StateReason"]["Code"] == "Client.UserInitiatedPause"
    status = ec2.describe_instance_status(InstanceIds=[iid], IncludeAllInstances=True)["InstanceStatuses"]
    assert status[0]["InstanceStatus"]["Status"] == "not-applicable"
    # StartInstances wakes it (UNPAUSE), as it would start a stopped instance.
    (change,) = ec2.start_instances(InstanceIds=[iid])["StartingInstances"]
    assert change["PreviousState"]["Name"] == "stopped"
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig=FAST)
    # Force is a hard stop: the simulator cuts power at once.
    (stopped,) = ec2.stop_instances(InstanceIds=[iid], Force=True)["StoppingInstances"]
    assert stopped["CurrentState"]["Name"] == "stopped"
    ec2.terminate_instances(InstanceIds=[iid])


def test_every_canonical_interface_and_network_state_has_an_ec2_row() -> None:
    assert set(EC2_INTERFACE_STATES) == set(InterfaceState)
    assert set(EC2_VPC_STATES) == set(EC2_SUBNET_STATES) == set(NetworkState)
