"""Security groups: OpenNebula's own, whose ``RULE`` vectors are the rules (``RULE_TYPE`` inbound/outbound,
``PROTOCOL``, ``RANGE`` of ports, and ``IP`` + ``SIZE`` for the peer addresses, where a rule without them means any
address). A group's rules are rewritten whole with ``one.secgroup.update``; machines join groups through their
NICs' ``SECURITY_GROUPS``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.opennebula.catalog import ALL, oid
from backends.opennebula.templates import single, to_xml, vectors
from translator.errors import Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import Rule, SecurityGroup, SecurityGroupSpec

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

REPLACE = 0
#: canonical direction <-> RULE_TYPE; canonical protocol <-> PROTOCOL (oned's other protocols have no rule here)
DIRECTIONS: Mapping[str, str] = {"ingress": "inbound", "egress": "outbound"}
PROTOCOLS: Mapping[str, str] = {"tcp": "TCP", "udp": "UDP", "icmp": "ICMP", "-1": "ALL"}
ANY = "0.0.0.0/0"


def _rule_of(vector: Mapping[str, str]) -> Rule | None:
    """A RULE vector as a rule; None for one this model cannot express (IPv6, a network id, IPsec)."""
    direction = {v: k for k, v in DIRECTIONS.items()}.get(vector.get("RULE_TYPE", "").lower())
    protocol = {v: k for k, v in PROTOCOLS.items()}.get(vector.get("PROTOCOL", "").upper())
    if direction is None or protocol is None or "NETWORK_ID" in vector:
        return None
    cidr = ANY
    if vector.get("IP"):
        size = int(vector.get("SIZE", "1") or 1)
        prefix = 32 - (size.bit_length() - 1)
        if size & (size - 1):
            return None  # not a block: no CIDR says it
        cidr = str(ipaddress.IPv4Network(f"{vector['IP']}/{prefix}", strict=False))
    low = high = None
    if protocol in ("tcp", "udp"):
        low_text, _, high_text = vector.get("RANGE", "0:65535").partition(":")
        low, high = int(low_text), int(high_text or low_text)
    return Rule(direction=direction, protocol=protocol, from_port=low, to_port=high, cidr=cidr)


def _vector(rule: Rule) -> dict[str, str]:
    """A rule as a RULE vector; InvalidParameter for what oned cannot hold, Unsupported for source groups."""
    if rule.group_id is not None:
        raise Unsupported("OpenNebula security group rules name addresses, not groups.", reason="group_rules")
    protocol = PROTOCOLS.get(rule.protocol)
    if protocol is None or rule.direction not in DIRECTIONS:
        raise InvalidParameter(f"Unknown protocol or direction in rule {rule}.", kind="rule", reason="protocol")
    vector = {"PROTOCOL": protocol, "RULE_TYPE": DIRECTIONS[rule.direction]}
    if protocol in ("TCP", "UDP") and (rule.from_port is not None or rule.to_port is not None):
        low, high = rule.from_port or 0, rule.to_port if rule.to_port is not None else rule.from_port
        if not (0 <= low <= (high or 0) <= 65535):
            raise InvalidParameter(f"The port range {low}-{high} is not one.", kind="rule", reason="port")
        vector["RANGE"] = f"{low}:{high}"
    if rule.cidr and rule.cidr != ANY:
        try:
            network = ipaddress.IPv4Network(rule.cidr, strict=False)
        except ValueError:
            raise InvalidParameter(f"'{rule.cidr}' is not an IPv4 CIDR.", kind="rule", reason="cidr") from None
        vector |= {"IP": str(network.network_address), "SIZE": str(network.num_addresses)}
    return vector


def group_of(group: Any) -> SecurityGroup:
    rules = [r for r in (_rule_of(v) for v in vectors(group.TEMPLATE, "RULE")) if r is not None]
    return SecurityGroup(
        native_id=str(group.ID),
        name=group.NAME,
        description=single(group.TEMPLATE, "DESCRIPTION"),
        rules=rules,
    )


def list_security_groups(b: OpenNebulaBackend) -> list[SecurityGroup]:
    pool = b.one.pool(
        "secgrouppool.info", ALL, element="SECURITY_GROUP", kind="security_group", what="list security groups"
    )
    return [group_of(g) for g in pool]


def _group(b: OpenNebulaBackend, native_id: str) -> Any:
    return b.one.call(
        "secgroup.info", oid(native_id, "security_group"), False, kind="security_group", what="read security group"
    )


def find_group(b: OpenNebulaBackend, native_id: str) -> str:
    """The group's id, checked to exist (NotFound otherwise)."""
    return str(_group(b, native_id).ID)


def create_security_group(b: OpenNebulaBackend, spec: SecurityGroupSpec) -> SecurityGroup:
    if any(g.name == spec.name for g in list_security_groups(b)):
        raise Conflict(f"The security group '{spec.name}' exists.", kind="security_group", reason="duplicate")
    body = to_xml({"NAME": spec.name, "DESCRIPTION": spec.description})
    group_id = b.one.call("secgroup.allocate", body, kind="security_group", what="create security group")
    return group_of(_group(b, str(group_id)))


def delete_security_group(b: OpenNebulaBackend, native_id: str) -> None:
    group = _group(b, native_id)
    b.one.call("secgroup.delete", group.ID, kind="security_group", what="delete security group")


def _write(b: OpenNebulaBackend, group: Any, vectors_: list[dict[str, str]]) -> SecurityGroup:
    kept = {k: v for k, v in (group.TEMPLATE or {}).items() if k != "RULE"}
    body = to_xml(kept | ({"RULE": vectors_} if vectors_ else {}))
    b.one.call("secgroup.update", group.ID, body, REPLACE, kind="security_group", what="write rules")
    return group_of(_group(b, str(group.ID)))


def authorize_rules(b: OpenNebulaBackend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    group = _group(b, native_id)
    present = vectors(group.TEMPLATE, "RULE")
    have = {r.key() for r in (_rule_of(v) for v in present) if r is not None}
    added = []
    for rule in rules:
        vector = _vector(rule)
        if rule.key() in have:
            raise Conflict(f"The group '{native_id}' already has the rule {rule}.", kind="rule", reason="duplicate")
        added.append(vector)
    return _write(b, group, present + added)


def revoke_rules(b: OpenNebulaBackend, native_id: str, rules: list[Rule]) -> SecurityGroup:
    group = _group(b, native_id)
    present = vectors(group.TEMPLATE, "RULE")
    parsed = [_rule_of(v) for v in present]
    gone = set()
    for rule in rules:
        index = next((i for i, r in enumerate(parsed) if r is not None and r.key() == rule.key()), None)
        if index is None:
            raise NotFound(f"The group '{native_id}' has no rule {rule}.", kind="rule")
        gone.add(index)
    return _write(b, group, [v for i, v in enumerate(present) if i not in gone])
