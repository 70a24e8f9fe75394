"""Account-level reads tools call before anything else: DescribeAccountAttributes,
DescribeIamInstanceProfileAssociations, DescribeInstanceCreditSpecifications.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from frontends.ec2.actions.base import Call, Handler, by_created, describe, reader, selected
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id
from frontends.ec2.paging import refuse_with_ids
from translator.model import Limits, Machine, MachineState

#: The account's limits, asked of the translator at most once per request.
LimitsOf = Callable[[], Limits]
Reader = Callable[[Call, LimitsOf], list[str]]

#: Limit attribute -> the Limits field that gives it (None: a limit only EC2 has), and EC2's default for a new
#: account, reported when the cloud behind says nothing (max-instances is documented as no longer meaningful).
LIMITS: dict[str, tuple[str | None, int]] = {
    "vpc-max-security-groups-per-interface": (None, 5),
    "max-elastic-ips": ("max_addresses", 5),
    "max-instances": ("max_machines", 20),
    "vpc-max-elastic-ips": ("max_addresses", 5),
}


def _default_vpc(call: Call, limits: LimitsOf) -> list[str]:
    networks = call.translator.list(call.principal, "network", call.region)
    found = next((n for n in networks if n.is_default), None)
    return [public_id("network", found.id) if found else "none"]


def _limit(name: str) -> Reader:
    field_name, default = LIMITS[name]

    def read(call: Call, limits: LimitsOf) -> list[str]:
        value = getattr(limits(), field_name) if field_name else None
        return [str(default if value is None else value)]

    return read


#: attribute name -> its values, in the order EC2 lists them.
ATTRIBUTES: dict[str, Reader] = {
    "supported-platforms": lambda call, limits: ["VPC"],
    "vpc-max-security-groups-per-interface": _limit("vpc-max-security-groups-per-interface"),
    "max-elastic-ips": _limit("max-elastic-ips"),
    "max-instances": _limit("max-instances"),
    "vpc-max-elastic-ips": _limit("vpc-max-elastic-ips"),
    "default-vpc": _default_vpc,
}

IAM_ASSOCIATION_FILTERS = table({"instance-id": "InstanceId", "state": "State"}, tags=False)
CREDIT_FILTERS = table({"instance-id": "InstanceId"}, tags=False)


def describe_account_attributes(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    names = args.get("AttributeNames") or list(ATTRIBUTES)
    unknown = [n for n in names if n not in ATTRIBUTES]
    if unknown:
        raise EC2Error("InvalidParameterValue", f"Value ({unknown[0]}) for parameter attributeName is invalid.")
    limits = functools.cache(lambda: call.translator.limits(call.principal, call.region))
    return {
        "AccountAttributes": [
            {"AttributeName": name, "AttributeValues": [{"AttributeValue": v} for v in ATTRIBUTES[name](call, limits)]}
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
    machines: list[Machine] = selected(call, "machine", ids)
    if not ids:
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
