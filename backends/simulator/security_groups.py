"""Security groups and their rules, validated and normalised the way EC2 does for VPC groups."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from backends.simulator import machine_index
from backends.simulator.storage import Rec, Sim, Tx, new_id, stable_id
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.model import (
    RULE_PROTOCOLS,
    Rule,
    SecurityGroup,
    SecurityGroupSpec,
    SecurityGroupUpdate,
    replace,
)

DEFAULT_GROUP = "default"
DIRECTIONS = frozenset({"ingress", "egress"})
MAX_NAME = 255


def _ports(rule: Rule, low: int, high: int, *, ordered: bool) -> tuple[int | None, int | None]:
    if rule.from_port is None or rule.to_port is None:
        raise InvalidParameter(f"A {rule.protocol} rule needs a port range.", kind="rule", reason="port")
    bad = not (low <= rule.from_port <= high and low <= rule.to_port <= high)
    if bad or (ordered and rule.from_port > rule.to_port):
        raise InvalidParameter(
            f"The port range {rule.from_port}-{rule.to_port} is invalid "
            f"({low}..{high}{', from <= to' if ordered else ''}).",
            kind="rule",
            reason="port",
        )
    return rule.from_port, rule.to_port


#: canonical protocol -> its port check: tcp/udp port ranges, icmp type and code (-1 = any).
PORT_CHECKS: dict[str, Callable[[Rule], tuple[int | None, int | None]]] = {
    "tcp": lambda r: _ports(r, 0, 65535, ordered=True),
    "udp": lambda r: _ports(r, 0, 65535, ordered=True),
    "icmp": lambda r: _ports(r, -1, 255, ordered=False),
}


def normalize(rule: Rule) -> Rule:
    """A validated rule in canonical spelling, so duplicates are found however they were written."""
    if rule.direction not in DIRECTIONS:
        raise InvalidParameter(
            f"The rule direction '{rule.direction}' is not ingress or egress.",
            kind="rule",
            reason="direction",
        )
    protocol = RULE_PROTOCOLS.get(str(rule.protocol).lower())
    if protocol is None:
        number = str(rule.protocol)
        if not (number.isdigit() and 0 <= int(number) <= 255):
            raise InvalidParameter(
                f"The protocol '{rule.protocol}' is not tcp, udp, icmp, -1 or 0-255.",
                kind="rule",
                reason="protocol",
            )
        protocol = str(int(number))
    check = PORT_CHECKS.get(protocol)
    from_port, to_port = check(replace(rule, protocol=protocol)) if check else (None, None)
    if (rule.cidr is None) == (rule.group_id is None):
        raise InvalidParameter("A rule needs exactly one of a CIDR or a source group.", kind="rule", reason="missing")
    cidr = None
    # Host bits are cleared, not refused, as EC2 does with 10.0.0.5/24.
    if rule.cidr is not None:
        try:
            cidr = str(ipaddress.ip_network(rule.cidr, strict=False))
        except ValueError:
            raise InvalidParameter(f"The CIDR '{rule.cidr}' is invalid.", kind="rule", reason="cidr") from None
    return Rule(
        direction=rule.direction,
        protocol=protocol,
        from_port=from_port,
        to_port=to_port,
        cidr=cidr,
        group_id=rule.group_id,
        description=rule.description,
    )


def default_group(sim: Sim, network_id: str, now: float) -> Rec[SecurityGroup]:
    """A network's ``default`` group: all traffic from its own members in, everything out (as EC2)."""
    gid = stable_id("sg", sim.account.key, network_id, DEFAULT_GROUP)
    rules = [
        Rule(direction="ingress", protocol="-1", group_id=gid),
        Rule(direction="egress", protocol="-1", cidr="0.0.0.0/0"),
    ]
    return Rec(
        SecurityGroup(
            native_id=gid,
            name=DEFAULT_GROUP,
            description="default security group",
            network_id=network_id,
            rules=rules,
            created=now,
            updated=now,
        )
    )


def list_security_groups(sim: Sim) -> list[SecurityGroup]:
    return [r.obj for r in sim.store.all("security_group")]


def checked_name(given: str) -> str:
    name = given.strip()
    if not name or len(name) > MAX_NAME or name.startswith("sg-"):
        raise InvalidParameter(
            f"The security group name '{given}' is invalid (1-{MAX_NAME} characters, not starting with sg-).",
            kind="security_group",
            reason="name",
        )
    return name


def _taken(tx: Tx, name: str, network_id: str | None) -> None:
    if any(g.obj.name == name and g.obj.network_id == network_id for g in tx.all("security_group")):
        raise Conflict(
            f"The security group '{name}' already exists in network '{network_id}'.",
            kind="security_group",
            reason="duplicate",
        )


def create_security_group(sim: Sim, spec: SecurityGroupSpec, default_network: str) -> SecurityGroup:
    name = checked_name(spec.name)
    network_id = spec.network_id or default_network

    def run(tx: Tx) -> SecurityGroup:
        tx.require("network", network_id)
        _taken(tx, name, network_id)
        rec = Rec(
            SecurityGroup(
                native_id=new_id("sg"),
                name=name,
                description=spec.description,
                network_id=network_id,
                created=tx.now,
                updated=tx.now,
                rules=[Rule(direction="egress", protocol="-1", cidr="0.0.0.0/0")],
            )
        )
        tx.put("security_group", rec)
        return rec.obj

    return sim.store.transact(run)


def update_security_group(sim: Sim, native_id: str, update: SecurityGroupUpdate) -> SecurityGroup:
    """Describe or rename a group; a network's default group keeps its name (launches find it by it)."""
    name = checked_name(update.name) if update.name is not None else None

    def run(tx: Tx) -> SecurityGroup:
        group = tx.require("security_group", native_id)
        if name is not None and name != group.obj.name:
            if group.obj.name == DEFAULT_GROUP:
                raise Conflict(
                    f"The default security group '{native_id}' keeps its name.", kind="security_group", reason="default"
                )
            _taken(tx, name, group.obj.network_id)
            group.obj.name = name
        if update.description is not None:
            group.obj.description = update.description
        group.obj.updated = tx.now
        tx.put("security_group", group)
        return group.obj

    return sim.store.transact(run)


def delete_security_group(sim: Sim, native_id: str) -> None:
    def run(tx: Tx) -> None:
        group = tx.require("security_group", native_id).obj
        if group.name == DEFAULT_GROUP:
            raise Conflict(
                f"The default security group '{native_id}' cannot be deleted.",
                kind="security_group",
                reason="default",
            )
        users = machine_index.machines_in_group(tx, native_id)
        if users:
            raise Conflict(
                f"The security group '{native_id}' is used by machine '{min(users)}'.",
                kind="security_group",
                reason="in_use",
            )
        for other in tx.all("security_group"):
            if other.obj.native_id != native_id and any(r.group_id == native_id for r in other.obj.rules):
                raise Conflict(
                    f"The security group '{native_id}' is referenced by a rule of '{other.obj.native_id}'.",
                    kind="security_group",
                    reason="in_use",
                )
        tx.delete("security_group", native_id)
        machine_index.forget(tx, "security_group", native_id)

    sim.store.transact(run)


def authorize_rules(sim: Sim, native_id: str, rules: list[Rule]) -> SecurityGroup:
    wanted = [normalize(r) for r in rules]

    def run(tx: Tx) -> SecurityGroup:
        group = tx.require("security_group", native_id)
        for rule in wanted:
            if rule.group_id is not None and tx.get("security_group", rule.group_id) is None:
                raise NotFound(f"The security group '{rule.group_id}' does not exist.", kind="security_group")
        seen = {r.key() for r in group.obj.rules}
        for rule in wanted:
            if rule.key() in seen:
                raise Conflict(
                    f"The rule {_describe(rule)} already exists in '{native_id}'.",
                    kind="rule",
                    reason="duplicate",
                )
            seen.add(rule.key())
        group.obj.rules.extend(wanted)
        group.obj.updated = tx.now
        tx.put("security_group", group)
        return group.obj

    return sim.store.transact(run)


def revoke_rules(sim: Sim, native_id: str, rules: list[Rule]) -> SecurityGroup:
    """Remove rules, all or nothing; a rule the group lacks is ``NotFound(kind="rule")`` as on EC2."""
    unwanted = [normalize(r) for r in rules]

    def run(tx: Tx) -> SecurityGroup:
        group = tx.require("security_group", native_id)
        keys = {r.key() for r in unwanted}
        present = {r.key() for r in group.obj.rules}
        for rule in unwanted:
            if rule.key() not in present:
                raise NotFound(f"The rule {_describe(rule)} does not exist in '{native_id}'.", kind="rule")
        group.obj.rules = [r for r in group.obj.rules if r.key() not in keys]
        group.obj.updated = tx.now
        tx.put("security_group", group)
        return group.obj

    return sim.store.transact(run)


def _describe(rule: Rule) -> str:
    ports = "" if rule.from_port is None else f" {rule.from_port}-{rule.to_port}"
    return f"{rule.direction} {rule.protocol}{ports} {rule.cidr or rule.group_id}"
