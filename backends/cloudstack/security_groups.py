"""CloudStack security groups and their ingress and egress rules.

CloudStack has security groups in zones that enable them (``securitygroupsenabled``). A group's name is
unique in its account and its description fixed at creation. A rule is one protocol, one port range (ICMP:
type and code) and one CIDR or another group (named by account and group name); each authorize or revoke is
an asynchronous job, waited for, so the group read afterwards shows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.cloudstack import catalog, tags
from translator.errors import Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import RULE_PROTOCOLS, Rule, SecurityGroup, SecurityGroupSpec

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

#: direction -> (the group's rule list in CloudStack's JSON, authorize command, revoke command)
DIRECTIONS: Mapping[str, tuple[str, str, str]] = {
    "ingress": ("ingressrule", "authorizeSecurityGroupIngress", "revokeSecurityGroupIngress"),
    "egress": ("egressrule", "authorizeSecurityGroupEgress", "revokeSecurityGroupEgress"),
}
DEFAULT_GROUP = "default"


def _raw_groups(b: CloudStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return b.cloud.listing(
        "listSecurityGroups", "securitygroup", params, kind="security_group", what="list security groups"
    )


def to_rule(direction: str, rule: Mapping[str, Any], ids_by_name: Mapping[str, str]) -> tuple[str, Rule]:
    """(CloudStack's rule id, the canonical rule)."""
    protocol = RULE_PROTOCOLS.get(str(rule.get("protocol", "")).lower(), str(rule.get("protocol", "")))
    low = high = None
    if protocol in ("tcp", "udp"):
        low, high = rule.get("startport"), rule.get("endport")
    elif protocol == "icmp":
        low, high = rule.get("icmptype"), rule.get("icmpcode")
    group = rule.get("securitygroupname")
    return rule["ruleid"], Rule(
        direction=direction,
        protocol=protocol,
        from_port=None if low is None else int(low),
        to_port=None if high is None else int(high),
        cidr=None if group else rule.get("cidr"),
        group_id=(ids_by_name.get(group, group) if group else None),
    )


def _rules(group: Mapping[str, Any], ids_by_name: Mapping[str, str]) -> list[tuple[str, Rule]]:
    return [
        to_rule(direction, rule, ids_by_name)
        for direction, (field, _, _) in DIRECTIONS.items()
        for rule in group.get(field) or []
    ]


def to_group(group: Mapping[str, Any], ids_by_name: Mapping[str, str]) -> SecurityGroup:
    return SecurityGroup(
        native_id=group["id"],
        name=group.get("name", ""),
        description=group.get("description", ""),
        rules=[rule for _, rule in _rules(group, ids_by_name)],
        tags=tags.user_tags(group),
    )


def _index(groups: list[dict[str, Any]]) -> dict[str, str]:
    return {g["name"]: g["id"] for g in groups}


def list_security_groups(b: CloudStackBackend) -> list[SecurityGroup]:
    groups = _raw_groups(b)
    names = _index(groups)
    return [to_group(g, names) for g in groups]


def get_security_groups(b: CloudStackBackend, native_ids: list[str]) -> list[SecurityGroup]:
    wanted = set(native_ids)
    return [g for g in list_security_groups(b) if g.native_id in wanted]


def _need(b: CloudStackBackend, native_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The group's JSON and all the account's groups (to name rules' groups)."""
    groups = _raw_groups(b)
    group = next((g for g in groups if g["id"] == native_id), None)
    if group is None:
        raise NotFound(f"The security group '{native_id}' does not exist.", kind="security_group")
    return group, groups


def _read(b: CloudStackBackend, native_id: str) -> SecurityGroup:
    group, groups = _need(b, native_id)
    return to_group(group, _index(groups))


def create_security_group(b: CloudStackBackend, spec: SecurityGroupSpec) -> SecurityGroup:
    zones = catalog.zone_index(b)
    if not any(zones.get(z, {}).get("securitygroupsenabled") for z in b.account.zones):
        raise Unsupported("The account's zones have no security groups.", kind="security_group", reason="zone")
    if any(g["name"] == spec.name for g in _raw_groups(b)) or spec.name.lower() == DEFAULT_GROUP:
        raise Conflict(f"The security group '{spec.name}' already exists.", kind="security_group", reason="duplicate")
    params = {"name": spec.name, "description": spec.description or None}
    made = b.cloud.call("createSecurityGroup", params, kind="security_group", what="create security group")
    return to_group(made["securitygroup"], {})


def delete_security_group(b: CloudStackBackend, native_id: str) -> None:
    group, _ = _need(b, native_id)
    if group.get("name") == DEFAULT_GROUP:
        raise Conflict("The default security group cannot be deleted.", kind="security_group", reason="default")
    b.cloud.call("deleteSecurityGroup", {"id": native_id}, kind="security_group", what="delete security group")


def canonical(rule: Rule) -> Rule:
    """The rule as CloudStack will report it: the protocol's canonical name, a one-port range's end."""
    if rule.direction not in DIRECTIONS:
        raise InvalidParameter(f"A rule is ingress or egress, not '{rule.direction}'.", kind="rule", reason="direction")
    protocol = RULE_PROTOCOLS.get(rule.protocol.lower(), rule.protocol.lower())
    if protocol not in ("tcp", "udp", "icmp"):
        return dataclasses.replace(rule, protocol=protocol, from_port=None, to_port=None)
    one_port = protocol != "icmp" and rule.to_port is None
    return dataclasses.replace(rule, protocol=protocol, to_port=rule.from_port if one_port else rule.to_port)


def rule_params(rule: Rule, groups: list[dict[str, Any]]) -> dict[str, Any]:
    """authorizeSecurityGroup{Ingress,Egress}'s parameters for one rule."""
    protocol = RULE_PROTOCOLS.get(rule.protocol.lower(), rule.protocol)
    params: dict[str, Any] = {"protocol": "all" if protocol == "-1" else protocol}
    if protocol in ("tcp", "udp"):
        if rule.from_port is None:
            raise InvalidParameter("A TCP or UDP rule needs a port range.", kind="rule", reason="port")
        params.update(startport=rule.from_port, endport=rule.to_port if rule.to_port is not None else rule.from_port)
    elif protocol == "icmp":
        params.update(icmptype=-1 if rule.from_port is None else rule.from_port)
        params.update(icmpcode=-1 if rule.to_port is None else rule.to_port)
    if rule.group_id:
        other = next((g for g in groups if g["id"] == rule.group_id), None)
        if other is None:
            raise NotFound(f"The security group '{rule.group_id}' does not exist.", kind="security_group")
        params["usersecuritygrouplist[0].account"] = other.get("account", "")
        params["usersecuritygrouplist[0].group"] = other["name"]
    else:
        params["cidrlist"] = rule.cidr or "0.0.0.0/0"
    return params


def _target(native_id: str, rule: Rule) -> str:
    """What a rule's command is noted under on the core job (``Cloud.start``): the group and the rule's identity."""
    return native_id + ":" + "/".join("" if part is None else str(part) for part in rule.key())


def _resumed(b: CloudStackBackend, native_id: str, rules: list[Rule], command: int, what: str) -> set[tuple[Any, ...]]:
    """The keys of ``rules`` whose command (``DIRECTIONS`` column ``command``) an earlier attempt of the running
    core job sent: their CloudStack jobs are followed to their end here, and not sent again."""
    return {
        rule.key()
        for rule in rules
        if b.cloud.resume(DIRECTIONS[rule.direction][command], _target(native_id, rule), kind="rule", what=what)
    }


def authorize_rules(b: CloudStackBackend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    """All or none: a rule the group has already is a duplicate before anything is sent, unless an earlier
    attempt of the running core job sent it (its job is followed instead)."""
    group, groups = _need(b, native_id)
    asked = [(rule, rule_params(rule, groups)) for rule in map(canonical, rules)]
    resumed = _resumed(b, native_id, [rule for rule, _ in asked], 1, "authorize rule")
    if resumed:
        group, groups = _need(b, native_id)
    have = {rule.key() for _, rule in _rules(group, _index(groups))}
    for rule, _ in asked:
        if rule.key() in have and rule.key() not in resumed:
            raise Conflict("The security group has that rule already.", kind="rule", reason="duplicate")
    for rule, params in asked:
        if rule.key() not in resumed:
            command, target = DIRECTIONS[rule.direction][1], _target(native_id, rule)
            params = {"securitygroupid": native_id, **params}
            b.cloud.run(command, params, kind="rule", what="authorize rule", target=target)
    return _read(b, native_id)


def revoke_rules(b: CloudStackBackend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    """All or none: a rule the group lacks is not found before anything is sent, unless an earlier attempt of the
    running core job revoked it (its job is followed instead)."""
    wanted = [canonical(r) for r in rules]
    resumed = _resumed(b, native_id, wanted, 2, "revoke rule")
    group, groups = _need(b, native_id)
    by_key = {rule.key(): (rule_id, rule) for rule_id, rule in _rules(group, _index(groups))}
    if any(r.key() not in by_key and r.key() not in resumed for r in wanted):
        raise NotFound("The security group has no such rule.", kind="rule")
    for rule in wanted:
        if rule.key() not in resumed:
            rule_id, _ = by_key[rule.key()]
            command, target = DIRECTIONS[rule.direction][2], _target(native_id, rule)
            b.cloud.run(command, {"id": rule_id}, kind="rule", what="revoke rule", target=target)
    return _read(b, native_id)
