"""Security groups: Neutron from the catalog (ingress and egress rules), else Nova's ``os-security-groups``
proxy (microversion 2.35; ingress only, so no EGRESS_RULES then).

REST through the keystoneauth1 session: libcloud maps rules to its own objects without their direction
or ether type, and reaches Neutron only through its own catalog lookup. Group names are kept unique (Nova
names a server's groups by name); a duplicate rule and a missing one are errors, as Neutron has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.openstack.session import PROXY_MICROVERSION
from translator.errors import Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import RULE_PROTOCOLS, Rule, SecurityGroup, SecurityGroupSpec, SecurityGroupUpdate

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend

#: Canonical protocol -> what Neutron and Nova's proxy call it (None: any protocol).
PROTOCOLS: Mapping[str, str | None] = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "-1": None}
#: Inclusive bounds of ``from_port``/``to_port``: ports for TCP and UDP, type and code for ICMP.
PORT_BOUNDS: Mapping[str, tuple[int, int]] = {"tcp": (0, 65535), "udp": (0, 65535), "icmp": (-1, 255)}


def _neutron(b: OpenStackBackend) -> bool:
    return b.cloud.has("network")


def normalise(rule: Rule) -> Rule:
    """A rule as stored: canonical protocol, no ports for "all protocols", an explicit CIDR or group."""
    protocol = RULE_PROTOCOLS.get(str(rule.protocol).lower(), str(rule.protocol).lower())
    if protocol not in PROTOCOLS:
        raise InvalidParameter(f"The protocol '{rule.protocol}' is not supported.", kind="rule", reason="protocol")
    low, high = PORT_BOUNDS.get(protocol, (0, 0))
    ports = (rule.from_port, rule.to_port)
    if protocol == "-1":
        ports = (None, None)
    elif any(p is not None and not low <= p <= high for p in ports) or (
        None not in ports and protocol != "icmp" and ports[0] > ports[1]  # type: ignore[operator]
    ):
        raise InvalidParameter(f"The port range {ports[0]}-{ports[1]} is invalid.", kind="rule", reason="port")
    cidr = rule.cidr if rule.cidr or rule.group_id else "0.0.0.0/0"
    return Rule(
        direction=rule.direction,
        protocol=protocol,
        from_port=ports[0],
        to_port=ports[1],
        cidr=cidr,
        group_id=rule.group_id,
        description=rule.description,
    )


def _neutron_rule(raw: Mapping[str, Any]) -> Rule:
    protocol = RULE_PROTOCOLS.get(str(raw.get("protocol")).lower(), "-1") if raw.get("protocol") else "-1"
    any_ip = "::/0" if raw.get("ethertype") == "IPv6" else "0.0.0.0/0"
    ports = (raw.get("port_range_min"), raw.get("port_range_max"))
    if protocol in ("tcp", "udp") and ports == (None, None):
        ports = (0, 65535)
    return Rule(
        direction=raw["direction"],
        protocol=protocol,
        from_port=None if protocol == "-1" else ports[0],
        to_port=None if protocol == "-1" else ports[1],
        cidr=raw.get("remote_ip_prefix") or (None if raw.get("remote_group_id") else any_ip),
        group_id=raw.get("remote_group_id"),
        description=raw.get("description") or "",
    )


def _proxied_rule(raw: Mapping[str, Any], ids_by_name: Mapping[str, str]) -> Rule:
    protocol = RULE_PROTOCOLS.get(str(raw.get("ip_protocol")).lower(), "-1") if raw.get("ip_protocol") else "-1"
    group = (raw.get("group") or {}).get("name")
    return Rule(
        direction="ingress",
        protocol=protocol,
        from_port=None if protocol == "-1" else raw.get("from_port"),
        to_port=None if protocol == "-1" else raw.get("to_port"),
        cidr=(raw.get("ip_range") or {}).get("cidr") or None,
        group_id=ids_by_name.get(group) if group else None,
    )


def _raw_groups(b: OpenStackBackend) -> list[dict[str, Any]]:
    if _neutron(b):
        params = {"project_id": b.cloud.project_id()}
        return b.cloud.pages("network", "/security-groups", "security_groups", params=params, what="list groups")
    path = "/os-security-groups"
    return b.cloud.rest("GET", "compute", path, what="list groups", microversion=PROXY_MICROVERSION)["security_groups"]


def list_security_groups(b: OpenStackBackend) -> list[SecurityGroup]:
    raw = _raw_groups(b)
    if _neutron(b):
        return [
            SecurityGroup(
                native_id=g["id"],
                name=g.get("name") or "",
                description=g.get("description") or "",
                rules=[_neutron_rule(r) for r in g.get("security_group_rules") or []],
            )
            for g in raw
        ]
    ids = {g["name"]: str(g["id"]) for g in raw}
    return [
        SecurityGroup(
            native_id=str(g["id"]),
            name=g.get("name") or "",
            description=g.get("description") or "",
            rules=[_proxied_rule(r, ids) for r in g.get("rules") or []],
        )
        for g in raw
    ]


def _group(b: OpenStackBackend, native_id: str) -> SecurityGroup:
    found = next((g for g in list_security_groups(b) if g.native_id == native_id), None)
    if found is None:
        raise NotFound(f"The security group '{native_id}' does not exist.", kind="security_group")
    return found


def _rest(b: OpenStackBackend, method: str, path: str, kind: str, what: str, body: Any = None) -> Any:
    if _neutron(b):
        return b.cloud.rest(method, "network", path, kind=kind, what=what, body=body)
    return b.cloud.rest(method, "compute", path, kind=kind, what=what, body=body, microversion=PROXY_MICROVERSION)


def create_security_group(b: OpenStackBackend, spec: SecurityGroupSpec) -> SecurityGroup:
    """Names are unique here though Neutron's are not: Nova names a server's groups by name only."""
    if any(g.name == spec.name for g in list_security_groups(b)):
        raise Conflict(f"The security group '{spec.name}' already exists.", kind="security_group", reason="duplicate")
    body = {"security_group": {"name": spec.name, "description": spec.description}}
    path = "/security-groups" if _neutron(b) else "/os-security-groups"
    made = _rest(b, "POST", path, "security_group", "create group", body)["security_group"]
    return _group(b, str(made["id"]))


def update_security_group(b: OpenStackBackend, native_id: str, update: SecurityGroupUpdate) -> SecurityGroup:
    """Neutron's (or the proxy's) group update, both fields sent (the proxy wants both); names stay unique and
    the default group keeps its own (Neutron refuses that)."""
    group = _group(b, native_id)
    name = group.name if update.name is None else update.name
    if name != group.name:
        if group.name == "default":
            raise Conflict("The default security group keeps its name.", kind="security_group", reason="default")
        if any(g.name == name for g in list_security_groups(b)):
            raise Conflict(f"The security group '{name}' already exists.", kind="security_group", reason="duplicate")
    description = group.description if update.description is None else update.description
    body = {"security_group": {"name": name, "description": description}}
    path = f"/security-groups/{native_id}" if _neutron(b) else f"/os-security-groups/{native_id}"
    _rest(b, "PUT", path, "security_group", "update group", body)
    return _group(b, native_id)


def delete_security_group(b: OpenStackBackend, native_id: str) -> None:
    group = _group(b, native_id)
    if group.name == "default":
        raise Conflict("The default security group cannot be deleted.", kind="security_group", reason="default")
    path = f"/security-groups/{native_id}" if _neutron(b) else f"/os-security-groups/{native_id}"
    try:
        _rest(b, "DELETE", path, "security_group", "delete group")
    except Conflict as exc:
        raise Conflict(exc.message, kind="security_group", reason="in_use") from exc


def authorize_rules(b: OpenStackBackend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    """Add rules, all checked first: a duplicate (of the group's or within the request) adds none."""
    group = _group(b, native_id)
    wanted = [normalise(r) for r in rules]
    have = {r.key() for r in group.rules}
    for rule in wanted:
        if rule.key() in have:
            raise Conflict("The rule already exists in the security group.", kind="rule", reason="duplicate")
        if rule.direction == "egress" and not _neutron(b):
            raise Unsupported("Egress rules need Neutron.", reason="egress_rules")
        have.add(rule.key())
    for rule in wanted:
        if _neutron(b):
            body = {
                "security_group_rule": {
                    "security_group_id": native_id,
                    "direction": rule.direction,
                    "ethertype": "IPv6" if rule.cidr and ":" in rule.cidr else "IPv4",
                    "protocol": PROTOCOLS[rule.protocol],
                    "port_range_min": rule.from_port,
                    "port_range_max": rule.to_port,
                    "remote_ip_prefix": rule.cidr if not rule.group_id else None,
                    "remote_group_id": rule.group_id,
                    "description": rule.description,
                }
            }
            _rest(b, "POST", "/security-group-rules", "rule", "add rule", body)
        else:
            body = {
                "security_group_rule": {
                    "parent_group_id": native_id,
                    "ip_protocol": PROTOCOLS[rule.protocol],
                    "from_port": rule.from_port,
                    "to_port": rule.to_port,
                    "cidr": rule.cidr if not rule.group_id else None,
                    "group_id": rule.group_id,
                }
            }
            _rest(b, "POST", "/os-security-group-rules", "rule", "add rule", body)
    return _group(b, native_id)


def revoke_rules(b: OpenStackBackend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    """Remove rules, each of which must exist (EC2's InvalidPermission.NotFound otherwise)."""
    raw = next((g for g in _raw_groups(b) if str(g["id"]) == native_id), None)
    if raw is None:
        raise NotFound(f"The security group '{native_id}' does not exist.", kind="security_group")
    if _neutron(b):
        existing = [(str(r["id"]), _neutron_rule(r).key()) for r in raw.get("security_group_rules") or []]
        path = "/security-group-rules/{}"
    else:
        ids = {g["name"]: str(g["id"]) for g in _raw_groups(b)}
        existing = [(str(r["id"]), _proxied_rule(r, ids).key()) for r in raw.get("rules") or []]
        path = "/os-security-group-rules/{}"
    doomed = []
    for rule in (normalise(r) for r in rules):
        match = next((rid for rid, key in existing if key == rule.key()), None)
        if match is None:
            raise NotFound("The rule does not exist in the security group.", kind="rule")
        doomed.append(match)
    for rule_id in doomed:
        _rest(b, "DELETE", path.format(rule_id), "rule", "remove rule")
    return _group(b, native_id)
