"""Networks: the tenant's networks with the ``ipnetwork`` mixin (address, gateway, allocation), made with a
subnet spanning them, actions up/down where the backend can; ``public`` is the pseudo-network floating
addresses are interfaces on."""

from __future__ import annotations

import contextlib
import ipaddress

from frontends.occi import categories as c
from frontends.occi.context import Ctx
from frontends.occi.errors import OcciError
from frontends.occi.model import ActionInvocation, Entity
from frontends.occi.resources.base import (
    MIXIN_TAG,
    NAME_TAG,
    KindController,
    check_attributes,
    common_attributes,
    remember_members,
    user_mixins_of,
)
from frontends.occi.resources.links import PUBLIC
from translator.backend import Capability
from translator.errors import CloudgateError
from translator.model import Network, NetworkAction, NetworkSpec, NetworkState, Resource, SubnetSpec

#: canonical state -> (occi.network.state, message); every state has a row
STATES: dict[NetworkState, tuple[str, str]] = {
    NetworkState.PENDING: ("inactive", "creating"),
    NetworkState.AVAILABLE: ("active", ""),
    NetworkState.DOWN: ("inactive", ""),
    NetworkState.ERROR: ("error", ""),
}
#: action -> (the canonical action, the states it is allowed in)
ACTIONS = {
    c.UP.id: (NetworkAction.UP, (NetworkState.DOWN,)),
    c.DOWN.id: (NetworkAction.DOWN, (NetworkState.AVAILABLE,)),
}


class Networks(KindController):
    kind = c.NETWORK
    canonical = "network"

    def public(self, ctx: Ctx) -> Entity:
        """The pseudo-network of floating addresses: link a compute to it to give it one."""
        attrs = {"occi.core.id": PUBLIC, "occi.core.title": "public", "occi.network.state": "active",
                 "occi.network.allocation": "static"}  # fmt: skip
        return Entity(c.NETWORK.id, PUBLIC, ctx.url(f"network/{PUBLIC}"), [c.IPNETWORK.id], attrs, [], [], "public")

    def entity(self, ctx: Ctx, resource: Resource) -> Entity:
        assert isinstance(resource, Network)
        n = resource
        location = ctx.url(f"network/{n.id}")
        attrs = common_attributes(n)
        state, message = STATES[n.state]
        attrs["occi.network.state"] = state
        if message:
            attrs["occi.network.state.message"] = message
        if n.cidr:
            attrs["occi.network.address"] = n.cidr
        attrs["occi.network.allocation"] = "dynamic"
        actions = []
        if Capability.NETWORK_UP_DOWN in ctx.capabilities(n):
            for action, (_, allowed) in ACTIONS.items():
                if n.state in allowed and action in ctx.catalog.actions:
                    actions.append((action, f"{location}?action={action.rsplit('#', 1)[1]}"))
        mixins = [c.IPNETWORK.id, *user_mixins_of(n)]
        return Entity(c.NETWORK.id, n.id, location, mixins, attrs, actions, [], attrs.get("occi.core.title", ""))

    def create(self, ctx: Ctx, request: Entity) -> Entity:
        check_attributes(ctx, request, self.kind, partial=False)
        cidr = request.attributes.get("occi.network.address")
        if not isinstance(cidr, str):
            raise OcciError(400, "A network needs the ipnetwork mixin's occi.network.address (a CIDR).")
        try:
            block = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise OcciError(400, f"occi.network.address '{cidr[:64]}' is not a CIDR.") from None
        title = str((request.title or request.attributes.get("occi.core.title")) or "")
        region = ctx.translator.account(ctx.principal).region
        network = ctx.translator.create_network(ctx.principal, NetworkSpec(cidr=str(block), name=title), region)
        try:
            ctx.translator.create_subnet(ctx.principal, SubnetSpec(network_id=network.id, cidr=str(block), name=title))
        except CloudgateError:
            with contextlib.suppress(CloudgateError):
                ctx.translator.delete_network(ctx.principal, network.id)
            raise
        tags = {MIXIN_TAG + m: ctx.catalog.mixins[m].title or m for m in request.mixins if m in ctx.catalog.user}
        if title:
            tags[NAME_TAG] = title
        if tags:
            ctx.translator.update_tags(ctx.principal, "network", [network.id], tags)
            network.tags.update(tags)
        remember_members(ctx, "network", network.id, request.mixins)
        return self.entity(ctx, network)

    def delete(self, ctx: Ctx, resource: Resource) -> None:
        for subnet in ctx.translator.page(ctx.principal, "subnet", match={"network_id": [resource.id]}).items:
            ctx.translator.delete_subnet(ctx.principal, subnet.id)
        ctx.translator.delete_network(ctx.principal, resource.id)

    def act(self, ctx: Ctx, resource: Resource, invocation: ActionInvocation) -> Entity:
        assert isinstance(resource, Network)
        found = ACTIONS.get(invocation.action)
        if found is None or invocation.action not in ctx.catalog.actions:
            raise OcciError(400, f"A network has no action '{invocation.action}' here.")
        if Capability.NETWORK_UP_DOWN not in ctx.capabilities(resource):
            raise OcciError(501, "This network's cloud cannot do that.")
        action, allowed = found
        if resource.state not in allowed:
            raise OcciError(409, f"A network cannot go {action} while it is {resource.state}.")
        ctx.translator.act_on_network(ctx.principal, resource.id, action)
        return self.entity(ctx, self.find(ctx, resource.id))
