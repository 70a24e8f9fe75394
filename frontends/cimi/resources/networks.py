"""Networks (DSP0263 Network) and the built-in NetworkConfigurations.

CIMI has no address plan, but every cloud network needs one: a ``cidr`` (ours, an extension attribute of
NetworkConfiguration and Network) may be given in the template's networkConfig; without one the network gets
the first ``10.N.0.0/16`` (N from 1; the simulator's default network holds 10.0.0.0/16) that overlaps none of
the region's networks. A network is made with one subnet spanning its whole CIDR in the region's first zone, so
a machine can be placed on it (a MachineTemplate's networkInterfaces) or given an interface on it; deleting the
network deletes its subnets first.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Any

from frontends.cimi import states
from frontends.cimi.context import Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, collection, resource_listing, windowed
from frontends.cimi.errors import CimiError
from frontends.cimi.jobs import accepted
from frontends.cimi.query import CollectionQuery
from frontends.cimi.resources.machines import replace_properties
from frontends.cimi.resources.templates import resolve
from translator.backend import Capability
from translator.errors import CloudgateError
from translator.identity import authorize
from translator.model import (
    Network,
    NetworkAction,
    NetworkSpec,
    NetworkState,
    NetworkUpdate,
    Resource,
    SubnetSpec,
)
from translator.translator import Goal, Step

KIND = "network"
#: the only kind of network made here (CIMI's PUBLIC networks are the clouds' own)
NETWORK_TYPE = "PRIVATE"
#: where automatic CIDRs come from: /16 blocks of 10.0.0.0/8, in order
AUTO_SPACE = ipaddress.ip_network("10.0.0.0/8")
AUTO_PREFIX = 16

#: the built-in NetworkConfigurations: id -> its attributes besides the common ones
CONFIGS: dict[str, dict[str, Any]] = {
    "private": {
        "description": "A private network; its CIDR is the configuration's 'cidr', else a free 10.N.0.0/16",
        "networkType": NETWORK_TYPE,
    },
}


@dataclass(frozen=True, slots=True)
class NetworkOp:
    """A CIMI network action: the canonical action, the states it is allowed in, the state it waits for."""

    action: NetworkAction
    allowed: frozenset[NetworkState]
    goal: str


ACTIONS: dict[str, NetworkOp] = {
    "start": NetworkOp(NetworkAction.UP, frozenset({NetworkState.DOWN}), "available"),
    "stop": NetworkOp(NetworkAction.DOWN, frozenset({NetworkState.AVAILABLE}), "down"),
}


def network_doc(ctx: Ctx, network: Resource) -> dict[str, Any]:
    assert isinstance(network, Network)
    href = ctx.href("networks", network.id)
    doc = common(ctx, "Network", href, network)
    doc["state"] = states.NETWORK[network.state]
    doc["networkType"] = NETWORK_TYPE
    if network.cidr:
        doc["cidr"] = network.cidr
    doc["operations"] = operations(ctx, href, allowed_operations(ctx, network))
    return doc


def allowed_operations(ctx: Ctx, network: Network) -> list[str]:
    names = ["edit", "delete"]
    if Capability.NETWORK_UP_DOWN in ctx.capabilities(network):
        names += [name for name, op in ACTIONS.items() if network.state in op.allowed]
    return names


class Networks(Controller):
    name = "networks"
    type_name = "Network"
    create_type = "NetworkCreate"
    kind = KIND
    needs = Capability.NETWORKS

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, network_doc)

    def network(self, ctx: Ctx, rid: str) -> Network:
        network = ctx.translator.get(ctx.principal, KIND, rid)
        assert isinstance(network, Network)
        return network

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return network_doc(ctx, self.network(ctx, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        if "networkTemplate" not in body:
            raise CimiError(400, "A NetworkCreate needs a 'networkTemplate'.")
        tmpl = resolve(ctx, body["networkTemplate"], "networkTemplates", "cimi_network_template", "networkTemplate")
        region = ctx.translator.account(ctx.principal).region
        spec = network_spec(ctx, tmpl, str(body.get("name") or ""), str(body.get("description") or ""), region)
        job, network = ctx.translator.follow(
            ctx.principal,
            "add",
            Goal(KIND, (Step(("available",)),)),
            lambda: create_with_subnet(ctx, spec, region),
        )
        properties = body.get("properties")
        if isinstance(properties, dict) and properties:
            tags = {str(k): str(v) for k, v in properties.items()}
            ctx.translator.update_tags(ctx.principal, KIND, [network.id], tags)
            network.tags.update(tags)
        return accepted(ctx, job, network_doc(ctx, network), "Network", location=ctx.href("networks", network.id))

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        network = self.network(ctx, rid)
        name, description = body.get("name"), body.get("description")
        if (name is not None and name != network.name) or (
            description is not None and description != network.description
        ):
            if Capability.NETWORK_UPDATE not in ctx.capabilities(network):
                raise CimiError(501, "This network's cloud cannot rename it or change its description.")
            ctx.translator.update_network(ctx.principal, rid, NetworkUpdate(name=name, description=description))
        if "properties" in body:
            replace_properties(ctx, KIND, network, body["properties"])
        return Reply(200, self.get(ctx, rid), "Network")

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        authorize(ctx.principal, "write")
        self.network(ctx, rid)
        job, _ = ctx.translator.follow(
            ctx.principal,
            "delete",
            Goal(KIND, (Step(("deleted",), gone=True),)),
            lambda: delete_with_subnets(ctx, rid),
            targets=[rid],
        )
        return accepted(ctx, job)

    def act(self, ctx: Ctx, rid: str, action: str, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        network = self.network(ctx, rid)
        op = ACTIONS.get(action)
        if op is None:
            raise CimiError(400, f"A Network has no action '{action}'.")
        if Capability.NETWORK_UP_DOWN not in ctx.capabilities(network):
            raise CimiError(501, f"This network's cloud cannot {action} it.")
        if network.state not in op.allowed:
            raise CimiError(409, f"A network cannot {action} while it is {states.NETWORK[network.state]}.")
        job, _ = ctx.translator.follow(
            ctx.principal,
            action,
            Goal(KIND, (Step((op.goal,)),)),
            lambda: ctx.translator.act_on_network(ctx.principal, rid, op.action),
            targets=[rid],
        )
        return accepted(ctx, job, location=ctx.href("networks", rid))


def network_spec(ctx: Ctx, template: dict[str, Any], name: str, description: str, region: str) -> NetworkSpec:
    """The canonical network a NetworkTemplate (by value) asks for: its config's ``cidr``, else a free /16."""
    config = network_config(ctx, template.get("networkConfig"))
    cidr = config.get("cidr") or free_cidr(ctx, region)
    if not isinstance(cidr, str):
        raise CimiError(400, "'cidr' must be an IPv4 CIDR such as 10.1.0.0/16.")
    return NetworkSpec(cidr=cidr.strip(), name=name, description=description)


def create_with_subnet(ctx: Ctx, spec: NetworkSpec, region: str) -> Network:
    """The network and its one subnet; a network whose subnet cannot be made is deleted again."""
    network = ctx.translator.create_network(ctx.principal, spec, region)
    try:
        subnet = SubnetSpec(network_id=network.id, cidr=network.cidr or spec.cidr, name=spec.name)
        ctx.translator.create_subnet(ctx.principal, subnet)
    except CloudgateError:
        with contextlib.suppress(CloudgateError):
            ctx.translator.delete_network(ctx.principal, network.id)
        raise
    return network


def delete_with_subnets(ctx: Ctx, rid: str) -> None:
    """The network's subnets first (the clouds refuse to delete a network that has any), then the network."""
    subnets = ctx.translator.page(ctx.principal, "subnet", match={"network_id": [rid]}).items
    for subnet in subnets:
        ctx.translator.delete_subnet(ctx.principal, subnet.id)
    ctx.translator.delete_network(ctx.principal, rid)


def network_config(ctx: Ctx, config: Any) -> dict[str, Any]:
    """A networkConfig by value or by reference to a built-in one (by-value attributes overriding)."""
    if config is None:
        return dict(CONFIGS["private"])
    if not isinstance(config, dict):
        raise CimiError(400, "'networkConfig' must be a NetworkConfiguration by value or a reference.")
    if "href" in config:
        rid = ctx.ref_id(config, "networkConfigs", "networkConfig")
        if rid not in CONFIGS:
            raise CimiError(400, f"'networkConfig' names no network configuration: '{rid}'.")
        config = {**CONFIGS[rid], **{k: v for k, v in config.items() if k != "href"}}
    kind = config.get("networkType") or NETWORK_TYPE
    if kind != NETWORK_TYPE:
        raise CimiError(400, f"Only {NETWORK_TYPE} networks can be made here, not '{str(kind)[:32]}'.")
    return config


def free_cidr(ctx: Ctx, region: str) -> str:
    """The first /16 of 10.0.0.0/8 that overlaps none of the region's networks."""
    taken = []
    for network in ctx.translator.list(ctx.principal, KIND, region):
        try:
            taken.append(ipaddress.ip_network(getattr(network, "cidr", ""), strict=False))
        except ValueError:
            continue
    for block in AUTO_SPACE.subnets(new_prefix=AUTO_PREFIX):
        if not any(block.overlaps(t) for t in taken):
            return str(block)
    raise CimiError(409, "Every 10.N.0.0/16 is taken in this region: name a 'cidr' in the networkConfig.")


def config_doc(ctx: Ctx, rid: str) -> dict[str, Any]:
    attrs = CONFIGS[rid]
    doc: dict[str, Any] = {
        "resourceURI": ctx.uri("NetworkConfiguration"),
        "id": ctx.href("networkConfigs", rid),
        "name": rid,
        "properties": {},
    }
    doc.update(attrs)
    doc["operations"] = []
    return doc


class NetworkConfigs(Controller):
    """A small read-only set built in (as VolumeConfigs are the canonical tiers)."""

    name = "networkConfigs"
    type_name = "NetworkConfiguration"
    needs = Capability.NETWORKS

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        authorize(ctx.principal, "read")
        return collection(ctx, self, windowed([config_doc(ctx, rid) for rid in CONFIGS], query), query)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        authorize(ctx.principal, "read")
        if rid not in CONFIGS:
            raise CimiError(404, f"There is no network configuration '{rid[:64]}'.")
        return config_doc(ctx, rid)
