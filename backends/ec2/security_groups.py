"""Security groups and their ingress and egress rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backends.ec2 import mapping, to_ec2
from translator.errors import InvalidParameter, NotFound
from translator.model import Rule, SecurityGroup, SecurityGroupSpec

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend


def list_security_groups(b: EC2Backend) -> list[SecurityGroup]:
    items = b.pages("describe_security_groups", "SecurityGroups", "security_group")
    return [mapping.security_group(g) for g in items]


def group(b: EC2Backend, native_id: str) -> SecurityGroup:
    """One security group, read by id."""
    found = b.call("describe_security_groups", "security_group", GroupIds=[native_id]).get("SecurityGroups")
    if not found:
        raise NotFound(f"The security group '{native_id}' does not exist", kind="security_group")
    return mapping.security_group(found[0])


def create_security_group(b: EC2Backend, spec: SecurityGroupSpec) -> SecurityGroup:
    extra = {"VpcId": spec.network_id} if spec.network_id else {}
    made = b.call("create_security_group", "security_group", GroupName=spec.name, Description=spec.description, **extra)
    return group(b, made["GroupId"])


def delete_security_group(b: EC2Backend, native_id: str) -> None:
    b.call("delete_security_group", "security_group", GroupId=native_id)


def _permissions(rules: list[Rule], *, with_description: bool) -> dict[str, list[dict[str, Any]]]:
    """Rules by direction as EC2 IpPermissions (checked here: moto takes port 70000)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for rule in rules:
        if rule.direction not in ("ingress", "egress"):
            raise InvalidParameter(
                f"The rule direction '{rule.direction}' is not ingress or egress.", kind="rule", reason="direction"
            )
        out.setdefault(rule.direction, []).append(to_ec2.permission(rule, with_description=with_description))
    return out


def authorize_rules(b: EC2Backend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    for direction, permissions in _permissions(rules, with_description=True).items():
        b.call(f"authorize_security_group_{direction}", "rule", GroupId=native_id, IpPermissions=permissions)
    return group(b, native_id)


def revoke_rules(b: EC2Backend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    for direction, permissions in _permissions(rules, with_description=False).items():
        answer = b.call(f"revoke_security_group_{direction}", "rule", GroupId=native_id, IpPermissions=permissions)
        # AWS answers rules that are not there with UnknownIpPermissions; older clouds and moto with an error.
        if answer.get("UnknownIpPermissions"):
            raise NotFound("The specified rule does not exist in this security group.", kind="rule")
    return group(b, native_id)
