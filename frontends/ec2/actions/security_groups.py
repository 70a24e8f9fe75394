"""Security groups: Create/Describe/DeleteSecurityGroup and Authorize/Revoke ingress and egress rules.

The canonical model keeps one ``Rule`` per source (a CIDR or a group); EC2 shows them grouped, one
``IpPermission`` per protocol and port range holding all its sources. Requests are canonicalised here as
EC2 does (protocol names and numbers, CIDRs with host bits cleared, no ports on all-port protocols) so
duplicates and revokes match however a rule was written. Rules have no native ids; their ``sgr-`` ids
are derived from the group and the rule's identity, so every worker names a rule alike.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
from collections.abc import Callable
from typing import Any

from frontends.ec2.actions.base import Call, Handler, describe_resources, describer, selected, tag_list, writer
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import public_id, resolve_ids
from frontends.ec2.paging import refuse_with_ids
from translator.model import RULE_PROTOCOLS, MachineState, Rule, SecurityGroup, SecurityGroupSpec

HandlerFn = Callable[[Call, dict[str, Any]], dict[str, Any]]

#: Named protocol -> its number, so the protocol filters match either spelling.
PROTOCOL_NUMBERS: dict[str, str] = {"tcp": "6", "udp": "17", "icmp": "1"}
#: Protocols whose rules carry a port range (ICMP: type and code); any other protocol means all ports.
PORTED = frozenset({"tcp", "udp", "icmp"})
#: What a flat ``SourceSecurityGroupName`` without a protocol grants: full TCP, UDP and ICMP access.
FULL_ACCESS: tuple[tuple[str, int, int], ...] = (("tcp", 0, 65535), ("udp", 0, 65535), ("icmp", -1, -1))
#: The flat (pre-IpPermissions) parameters; EC2 takes them on ingress only.
FLAT = ("IpProtocol", "FromPort", "ToPort", "CidrIp", "SourceSecurityGroupName", "SourceSecurityGroupOwnerId")


# -- reading the caller's groups ----------------------------------------------------------------------


class _Groups:
    """The caller's groups in this region and its default VPC, read once per request."""

    __slots__ = ("by_id", "default_vpc")

    def __init__(self, call: Call) -> None:
        self.by_id: dict[str, SecurityGroup] = {
            g.id: g for g in call.translator.list(call.principal, "security_group", call.region)
        }
        networks = call.translator.list(call.principal, "network", call.region)
        self.default_vpc: str | None = next((n.id for n in networks if getattr(n, "is_default", False)), None)

    def by_public_id(self, call: Call, pid: str) -> SecurityGroup:
        (found,) = selected(call, "security_group", [pid], list(self.by_id.values()))
        return found

    def by_name(self, name: str) -> SecurityGroup:
        """Names address groups of the default VPC only, as on EC2."""
        for g in self.by_id.values():
            if g.name == name and g.network_id == self.default_vpc:
                return g
        vpc = public_id("network", self.default_vpc)
        where = f" in default VPC '{vpc}'" if vpc else ""
        raise EC2Error("InvalidGroup.NotFound", f"The security group '{name}' does not exist{where}")

    def target(self, call: Call, args: dict[str, Any]) -> SecurityGroup:
        """The group a request acts on, by GroupId or (default VPC) GroupName."""
        if args.get("GroupId"):
            return self.by_public_id(call, args["GroupId"])
        if args.get("GroupName"):
            return self.by_name(args["GroupName"])
        raise EC2Error("MissingParameter", "The request must contain the parameter groupId or groupName")


# -- rules: request -> canonical ----------------------------------------------------------------------


def _protocol(value: Any) -> str:
    if value is None or str(value).strip() == "":
        raise EC2Error("MissingParameter", "The request must contain the parameter ipProtocol")
    raw = str(value).strip().lower()
    found = RULE_PROTOCOLS.get(raw)
    if found is not None:
        return found
    if raw.isdigit() and 0 <= int(raw) <= 255:
        return str(int(raw))
    raise EC2Error("InvalidParameterValue", f"Invalid value '{value}' for IP protocol. Unknown protocol.")


def _cidr(value: Any, parameter: str, version: int) -> str:
    """A CIDR in canonical form: EC2 clears host bits (100.68.0.18/18 -> 100.68.0.0/18)."""
    try:
        network = ipaddress.ip_network(str(value or "").strip(), strict=False)
    except ValueError:
        network = None
    if network is None or network.version != version:
        raise EC2Error(
            "InvalidParameterValue",
            f"Value ({value}) for parameter {parameter} is invalid. This is not a valid CIDR block.",
        )
    return str(network)


def _rule(direction: str, protocol: str, from_port: Any, to_port: Any, **source: Any) -> Rule:
    """A canonical rule; ports only where the protocol has them (EC2 ignores them otherwise)."""
    if protocol not in PORTED:
        from_port = to_port = None
    return Rule(direction=direction, protocol=protocol, from_port=from_port, to_port=to_port, **source)


def _from_permissions(call: Call, groups: _Groups, direction: str, perms: list[dict[str, Any]]) -> list[Rule]:
    out: list[Rule] = []
    for perm in perms:
        protocol = _protocol(perm.get("IpProtocol"))
        ports = (perm.get("FromPort"), perm.get("ToPort"))
        if perm.get("PrefixListIds"):
            pl = perm["PrefixListIds"][0].get("PrefixListId", "")
            raise EC2Error("InvalidPrefixListId.NotFound", f"The prefix list ID '{pl}' does not exist")
        before = len(out)
        for r in perm.get("IpRanges") or []:
            cidr = _cidr(r.get("CidrIp"), "cidrIp", 4)
            out.append(_rule(direction, protocol, *ports, cidr=cidr, description=r.get("Description") or ""))
        for r in perm.get("Ipv6Ranges") or []:
            cidr = _cidr(r.get("CidrIpv6"), "cidrIpv6", 6)
            out.append(_rule(direction, protocol, *ports, cidr=cidr, description=r.get("Description") or ""))
        for pair in perm.get("UserIdGroupPairs") or []:
            if pair.get("GroupId"):
                source = groups.by_public_id(call, pair["GroupId"])
            elif pair.get("GroupName"):
                source = groups.by_name(pair["GroupName"])
            else:
                raise EC2Error("MissingParameter", "A UserIdGroupPair must contain the parameter groupId or groupName")
            out.append(
                _rule(direction, protocol, *ports, group_id=source.id, description=pair.get("Description") or "")
            )
        if len(out) == before:
            raise EC2Error(
                "MissingParameter",
                "An IpPermission must contain a source or destination: IpRanges, Ipv6Ranges or UserIdGroupPairs",
            )
    return out


def _from_flat(groups: _Groups, args: dict[str, Any]) -> list[Rule]:
    """The old single-rule form: IpProtocol/FromPort/ToPort with CidrIp or SourceSecurityGroupName."""
    cidr, source_name = args.get("CidrIp"), args.get("SourceSecurityGroupName")
    if cidr is not None and source_name is not None:
        raise EC2Error(
            "InvalidParameterCombination",
            "The parameter cidrIp cannot be used with the parameter sourceSecurityGroupName",
        )
    if source_name is not None:
        source = groups.by_name(source_name).id
        if args.get("IpProtocol") is None:
            return [_rule("ingress", p, low, high, group_id=source) for p, low, high in FULL_ACCESS]
        protocol = _protocol(args["IpProtocol"])
        return [_rule("ingress", protocol, args.get("FromPort"), args.get("ToPort"), group_id=source)]
    if cidr is None:
        raise EC2Error("MissingParameter", "The request must contain the parameter cidrIp or sourceSecurityGroupName")
    protocol = _protocol(args.get("IpProtocol"))
    return [_rule("ingress", protocol, args.get("FromPort"), args.get("ToPort"), cidr=_cidr(cidr, "cidrIp", 4))]


def _requested(call: Call, groups: _Groups, direction: str, args: dict[str, Any]) -> list[Rule]:
    """Every rule a request names, flat form first, each in canonical form."""
    flat = [name for name in FLAT if args.get(name) is not None]
    rules: list[Rule] = []
    if flat:
        if direction == "egress":
            raise EC2Error(
                "InvalidParameterValue",
                f"The parameter {flat[0]} is not supported for egress rules; use IpPermissions.",
            )
        rules.extend(_from_flat(groups, args))
    rules.extend(_from_permissions(call, groups, direction, args.get("IpPermissions") or []))
    if not rules:
        raise EC2Error("MissingParameter", "The request must contain the parameter ipPermissions")
    return rules


# -- rules: canonical -> EC2 --------------------------------------------------------------------------


def rule_id(group_id: str, rule: Rule) -> str:
    """A rule's ``sgr-`` id: the same for the same rule of the same group on every worker."""
    digest = hashlib.sha256(repr((group_id, *rule.key())).encode()).hexdigest()
    return "sgr-" + digest[:17]


def _is_v6(cidr: str | None) -> bool:
    return cidr is not None and ":" in cidr


def _ports(rule: Rule) -> tuple[int | None, int | None]:
    return (rule.from_port, rule.to_port) if rule.protocol in PORTED else (None, None)


def _permissions(call: Call, rules: list[Rule], direction: str) -> list[dict[str, Any]]:
    """EC2's grouping: one IpPermission per protocol and port range, holding all its sources."""
    grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rules:
        if r.direction != direction:
            continue
        low, high = _ports(r)
        perm = grouped.get((r.protocol, low, high))
        if perm is None:
            perm = grouped[(r.protocol, low, high)] = {
                "IpProtocol": r.protocol,
                "FromPort": low,
                "ToPort": high,
                "IpRanges": [],
                "Ipv6Ranges": [],
                "UserIdGroupPairs": [],
                "PrefixListIds": [],
            }
        described = {"Description": r.description} if r.description else {}
        if r.group_id:
            pair = {"GroupId": public_id("security_group", r.group_id), "UserId": call.account_id}
            perm["UserIdGroupPairs"].append(pair | described)
        elif _is_v6(r.cidr):
            perm["Ipv6Ranges"].append({"CidrIpv6": r.cidr} | described)
        else:
            perm["IpRanges"].append({"CidrIp": r.cidr} | described)
    return list(grouped.values())


def _ec2_ports(rule: Rule) -> tuple[int, int]:
    """SecurityGroupRule ports: -1/-1 where the protocol has none."""
    low, high = _ports(rule)
    return (-1 if low is None else low, -1 if high is None else high)


def _rule_fields(group: SecurityGroup, rule: Rule) -> dict[str, Any]:
    """What a SecurityGroupRule and a RevokedSecurityGroupRule both say of a rule."""
    low, high = _ec2_ports(rule)
    return {
        "SecurityGroupRuleId": rule_id(group.id, rule),
        "GroupId": public_id("security_group", group.id),
        "IsEgress": rule.direction == "egress",
        "IpProtocol": rule.protocol,
        "FromPort": low,
        "ToPort": high,
        "CidrIpv4": rule.cidr if rule.cidr and not _is_v6(rule.cidr) else None,
        "CidrIpv6": rule.cidr if _is_v6(rule.cidr) else None,
        "Description": rule.description or None,
    }


def _group_rule(call: Call, group: SecurityGroup, rule: Rule) -> dict[str, Any]:
    return {
        **_rule_fields(group, rule),
        "GroupOwnerId": call.account_id,
        "ReferencedGroupInfo": (
            {"GroupId": public_id("security_group", rule.group_id), "UserId": call.account_id}
            if rule.group_id
            else None
        ),
        "Tags": [],
    }


def _revoked_rule(group: SecurityGroup, rule: Rule) -> dict[str, Any]:
    return {**_rule_fields(group, rule), "ReferencedGroupId": public_id("security_group", rule.group_id)}


def _arn(call: Call, group_pid: str | None) -> str:
    return f"arn:aws:ec2:{call.region}:{call.account_id}:security-group/{group_pid}"


def _group(call: Call, g: SecurityGroup, names: Callable[[], dict[str, str]]) -> dict[str, Any]:
    """One group in DescribeSecurityGroups' shape; ``names()`` gives group names by id (read when a rule names one)."""
    pid = public_id("security_group", g.id)
    return {
        "GroupId": pid,
        "GroupName": g.name,
        "Description": g.description,
        "OwnerId": call.account_id,
        "VpcId": public_id("network", g.network_id),
        "IpPermissions": _permissions(call, g.rules, "ingress"),
        "IpPermissionsEgress": _permissions(call, g.rules, "egress"),
        "Tags": tag_list(g) or None,
        "SecurityGroupArn": _arn(call, pid),
        # hidden fields, for filters and the stable page order
        "_Created": g.created,
        "_IngressGroupNames": [names().get(r.group_id, "") for r in g.rules if r.group_id and r.direction == "ingress"],
        "_EgressGroupNames": [names().get(r.group_id, "") for r in g.rules if r.group_id and r.direction == "egress"],
    }


# -- filters ------------------------------------------------------------------------------------------


def _protocol_values(key: str) -> Callable[[dict[str, Any]], list[str]]:
    def extract(item: dict[str, Any]) -> list[str]:
        out: list[str] = []
        for perm in item.get(key) or ():
            out.append(perm["IpProtocol"])
            number = PROTOCOL_NUMBERS.get(perm["IpProtocol"])
            if number:
                out.append(number)
        return out

    return extract


def _rule_filters(prefix: str, key: str, names: str) -> dict[str, str | Callable[[dict[str, Any]], Any]]:
    return {
        f"{prefix}ip-permission.cidr": f"{key}[].IpRanges[].CidrIp",
        f"{prefix}ip-permission.ipv6-cidr": f"{key}[].Ipv6Ranges[].CidrIpv6",
        f"{prefix}ip-permission.from-port": f"{key}[].FromPort",
        f"{prefix}ip-permission.to-port": f"{key}[].ToPort",
        f"{prefix}ip-permission.group-id": f"{key}[].UserIdGroupPairs[].GroupId",
        f"{prefix}ip-permission.group-name": names,
        f"{prefix}ip-permission.user-id": f"{key}[].UserIdGroupPairs[].UserId",
        f"{prefix}ip-permission.prefix-list-id": f"{key}[].PrefixListIds[].PrefixListId",
        f"{prefix}ip-permission.protocol": _protocol_values(key),
    }


#: DescribeSecurityGroups filters, as EC2 documents them (tag:K, tag-key, tag-value are built in).
FILTERS = table(
    {
        "description": "Description",
        "group-id": "GroupId",
        "group-name": "GroupName",
        "owner-id": "OwnerId",
        "vpc-id": "VpcId",
        **_rule_filters("", "IpPermissions", "_IngressGroupNames"),
        **_rule_filters("egress.", "IpPermissionsEgress", "_EgressGroupNames"),
    }
)


# -- handlers -----------------------------------------------------------------------------------------


def create_security_group(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    name, description = args.get("GroupName"), args.get("Description")
    if not name:
        raise EC2Error("MissingParameter", "The request must contain the parameter GroupName")
    if description is None:
        raise EC2Error("MissingParameter", "The request must contain the parameter GroupDescription")
    vpc = args.get("VpcId")
    network_id = resolve_ids(call.translator, "network", [vpc])[0] if vpc else None
    groups = _Groups(call)
    where = network_id or groups.default_vpc
    if any(g.name == name.strip() and g.network_id == where for g in groups.by_id.values()):
        raise EC2Error(
            "InvalidGroup.Duplicate",
            f"The security group '{name}' already exists for VPC '{public_id('network', where)}'",
        )
    spec = SecurityGroupSpec(name=name, description=description, network_id=network_id)
    group = call.translator.create_security_group(call.principal, spec, call.region)
    tags = spec_tags(args, "security-group")
    if tags:
        call.translator.update_tags(call.principal, "security_group", [group.id], dict(tags))
        group.tags = dict(tags)
    pid = public_id("security_group", group.id)
    return {"GroupId": pid, "Tags": tag_list(group) or None, "SecurityGroupArn": _arn(call, pid)}


def describe_security_groups(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    ids, names = args.get("GroupIds") or [], args.get("GroupNames") or []
    refuse_with_ids(args, ids or names, "groupIds" if ids else "groupNames")
    if names:  # names address the default VPC's groups: found in the region's listing
        groups = _Groups(call)
        ids = [*ids, *(public_id("security_group", groups.by_name(n).id) or "" for n in names)]

    @functools.cache
    def group_names() -> dict[str, str]:
        return {g.id: g.name for g in call.translator.list(call.principal, "security_group", call.region)}

    items, token = describe_resources(
        call,
        "DescribeSecurityGroups",
        "security_group",
        args,
        lambda g: _group(call, g, group_names),
        FILTERS,
        ids=ids,
    )
    return {"SecurityGroups": items, "NextToken": token}


def delete_security_group(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    groups = _Groups(call)
    group = groups.target(call, args)
    pid = public_id("security_group", group.id)
    if group.name == "default":
        raise EC2Error("CannotDelete", f'the specified group: "{pid}" name: "default" cannot be deleted by a user')
    users = [g for g in groups.by_id.values() if g.id != group.id and any(r.group_id == group.id for r in g.rules)]
    if users:
        raise EC2Error(
            "DependencyViolation",
            f"resource {pid} has a dependent object (referenced by {public_id('security_group', users[0].id)})",
        )
    for m in call.translator.list(call.principal, "machine", call.region):
        if group.id in m.security_group_ids and m.state != MachineState.TERMINATED:
            raise EC2Error(
                "DependencyViolation",
                f"resource {pid} has a dependent object (instance {public_id('machine', m.id)})",
            )
    call.translator.delete_security_group(call.principal, group.id)
    return {"Return": True, "GroupId": pid}


def _no_rule_tags(args: dict[str, Any]) -> None:
    if spec_tags(args, "security-group-rule"):
        raise EC2Error("UnsupportedOperation", "Tagging security group rules is not supported by this gateway.")


def _authorize(direction: str) -> HandlerFn:
    def handler(call: Call, args: dict[str, Any]) -> dict[str, Any]:
        _no_rule_tags(args)
        groups = _Groups(call)
        group = groups.target(call, args)
        rules = _requested(call, groups, direction, args)
        present = {r.key() for r in group.rules}
        for rule in rules:
            if rule.key() in present:
                low, high = _ports(rule)
                peer = rule.cidr or public_id("security_group", rule.group_id)
                raise EC2Error(
                    "InvalidPermission.Duplicate",
                    f'the specified rule "peer: {peer}, {rule.protocol.upper()}, from port: {low}, '
                    f'to port: {high}, ALLOW" already exists',
                )
            present.add(rule.key())
        call.translator.authorize_rules(call.principal, group.id, rules)
        return {"Return": True, "SecurityGroupRules": [_group_rule(call, group, r) for r in rules]}

    return handler


def _revoke(direction: str) -> HandlerFn:
    def handler(call: Call, args: dict[str, Any]) -> dict[str, Any]:
        groups = _Groups(call)
        group = groups.target(call, args)
        existing = {r.key(): r for r in group.rules}
        rule_ids = args.get("SecurityGroupRuleIds") or []
        if rule_ids:
            if args.get("IpPermissions") or any(args.get(name) is not None for name in FLAT):
                raise EC2Error(
                    "InvalidParameterCombination",
                    "The parameter securityGroupRuleIds cannot be used with ipPermissions or their flat form",
                )
            by_id = {rule_id(group.id, r): r for r in group.rules if r.direction == direction}
            missing = [i for i in rule_ids if i not in by_id]
            if missing:
                raise EC2Error(
                    "InvalidSecurityGroupRuleId.NotFound", f"The security group rule ID '{missing[0]}' does not exist"
                )
            wanted = [by_id[i] for i in rule_ids]
        else:
            wanted = _requested(call, groups, direction, args)
        known = list({r.key(): existing[r.key()] for r in wanted if r.key() in existing}.values())
        unknown = [r for r in wanted if r.key() not in existing]
        # EC2: in the default VPC an unknown rule is reported back; elsewhere nothing is revoked.
        if unknown and group.network_id != groups.default_vpc:
            raise EC2Error("InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
        if known:
            call.translator.revoke_rules(call.principal, group.id, known)
        return {
            "Return": True,
            "UnknownIpPermissions": _permissions(call, unknown, direction) if unknown else None,
            "RevokedSecurityGroupRules": [_revoked_rule(group, r) for r in known],
        }

    return handler


ACTIONS: dict[str, Handler] = {
    "CreateSecurityGroup": writer(create_security_group),
    "DescribeSecurityGroups": describer(describe_security_groups),
    "DeleteSecurityGroup": writer(delete_security_group),
    "AuthorizeSecurityGroupIngress": writer(_authorize("ingress")),
    "AuthorizeSecurityGroupEgress": writer(_authorize("egress")),
    "RevokeSecurityGroupIngress": writer(_revoke("ingress")),
    "RevokeSecurityGroupEgress": writer(_revoke("egress")),
}
