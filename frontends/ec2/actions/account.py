"""Account-level reads tools call before anything else: DescribeAccountAttributes,
DescribeIamInstanceProfileAssociations, DescribeInstanceCreditSpecifications.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from frontends.ec2.actions.base import Call, Handler, by_created, describe, reader
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.paging import refuse_with_ids
from translator.model import Machine, MachineState

#: The limits EC2 reports for a new account. The translator exposes no backend limits, so these are
#: EC2's defaults (max-instances is documented as no longer meaningful anyway).
DEFAULT_LIMITS: dict[str, str] = {
    "max-instances": "20",
    "vpc-max-security-groups-per-interface": "5",
    "max-elastic-ips": "5",
    "vpc-max-elastic-ips": "5",
}


def _default_vpc(call: Call) -> list[str]:
    networks = call.translator.list(call.principal, "network", call.region)
    found = next((n for n in networks if n.is_default), None)
    return [public_id("network", found.id) if found else "none"]


#: attribute name -> its values, in the order EC2 lists them.
ATTRIBUTES: dict[str, Callable[[Call], list[str]]] = {
    "supported-platforms": lambda call: ["VPC"],
    "vpc-max-security-groups-per-interface": lambda call: [DEFAULT_LIMITS["vpc-max-security-groups-per-interface"]],
    "max-elastic-ips": lambda call: [DEFAULT_LIMITS["max-elastic-ips"]],
    "max-instances": lambda call: [DEFAULT_LIMITS["max-instances"]],
    "vpc-max-elastic-ips": lambda call: [DEFAULT_LIMITS["vpc-max-elastic-ips"]],
    "default-vpc": _default_vpc,
}

IAM_ASSOCIATION_FILTERS = table({"instance-id": "InstanceId", "state": "State"}, tags=False)
CREDIT_FILTERS = table({"instance-id": "InstanceId"}, tags=False)


def describe_account_attributes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    names = args.get("AttributeNames") or list(ATTRIBUTES)
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown:
        raise EC2Error("InvalidParameterValue", f"Value ({unknown[0]}) for parameter attributeName is invalid.")
    return {
        "AccountAttributes": [
            {"AttributeName": name, "AttributeValues": [{"AttributeValue": v} for v in ATTRIBUTES[name](call)]}
            for name in dict.fromkeys(names)
        ]
    }


def describe_iam_instance_profile_associations(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """No backend attaches IAM instance profiles, so there is never an association (filters still checked)."""
    page = describe(
        "DescribeIamInstanceProfileAssociations", args, [], IAM_ASSOCIATION_FILTERS, by_created("AssociationId")
    )
    return {"IamInstanceProfileAssociations": page.items, "NextToken": page.next_token}


def describe_instance_credit_specifications(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """Every instance runs with standard CPU credits; without ids, the non-terminated instances."""
    ids = args.get("InstanceIds")
    refuse_with_ids(args, ids, "instancesSet")
    machines: list[Machine] = call.translator.list(call.principal, "machine", call.region)
    if ids:
        gids = resolve_ids(call.translator, "machine", ids)
        mine = {m.id: m for m in machines}
        missing = [pid for pid, gid in zip(ids, gids, strict=True) if gid not in mine]
        if missing:
            raise EC2Error("InvalidInstanceID.NotFound", f"The instance ID '{', '.join(missing)}' does not exist")
        machines = [mine[g] for g in dict.fromkeys(gids)]
    else:
        machines = [m for m in machines if m.state != MachineState.TERMINATED]
    items = [
        {"InstanceId": public_id("machine", m.id), "CpuCredits": "standard", "_Created": m.launched or m.created}
        for m in machines
    ]
    page = describe("DescribeInstanceCreditSpecifications", args, items, CREDIT_FILTERS, by_created("InstanceId"))
    return {"InstanceCreditSpecifications": page.items, "NextToken": page.next_token}


ACTIONS: dict[str, Handler] = {
    "DescribeAccountAttributes": reader(describe_account_attributes),
    "DescribeIamInstanceProfileAssociations": reader(describe_iam_instance_profile_associations),
    "DescribeInstanceCreditSpecifications": reader(describe_instance_credit_specifications),
}
