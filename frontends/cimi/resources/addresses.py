"""Addresses (DSP0263 Address): the backends' floating (elastic) addresses. Allocating one and releasing it
finish at once in every cloud we drive, so both are synchronous (``201`` with ``Location``, ``204``).
An address is associated with a machine through the machine's interface
(``POST /cimi/machines/<id>/networkInterfaces/<iface>/addresses``), and shows that machine as its ``resource``.

The canonical address has no name or description of its own: posted ones are not kept.
"""

from __future__ import annotations

from typing import Any

from frontends.cimi.context import Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, resource_listing
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery
from frontends.cimi.resources.machines import replace_properties
from frontends.cimi.resources.templates import existing, resolve
from translator.backend import Capability
from translator.identity import authorize
from translator.model import Address, Resource

KIND = "address"


def address_doc(ctx: Ctx, address: Resource) -> dict[str, Any]:
    assert isinstance(address, Address)
    href = ctx.href("addresses", address.id)
    doc = common(ctx, "Address", href, address)
    doc["ip"] = address.public_ip
    doc["allocation"] = "dynamic"
    doc["protocol"] = "IPv4"
    if address.machine_id:
        doc["resource"] = {"href": ctx.href("machines", address.machine_id)}
    # An associated address is released once it is let go (the clouds refuse before).
    doc["operations"] = operations(ctx, href, ["edit"] if address.machine_id else ["edit", "delete"])
    return doc


class Addresses(Controller):
    name = "addresses"
    type_name = "Address"
    create_type = "AddressCreate"
    kind = KIND
    needs = Capability.ADDRESSES

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, address_doc)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return address_doc(ctx, ctx.translator.get(ctx.principal, KIND, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        """Allocate one: in the region of the template's ``network`` if it names one, else the default region."""
        authorize(ctx.principal, "write")
        tmpl: dict[str, Any] = {}
        if body.get("addressTemplate") is not None:
            tmpl = resolve(ctx, body["addressTemplate"], "addressTemplates", "cimi_address_template", "addressTemplate")
        if tmpl.get("ip"):
            raise CimiError(501, "A particular address cannot be asked for here: the cloud picks it.")
        if tmpl.get("protocol") not in (None, "IPv4"):
            raise CimiError(501, "Only IPv4 addresses are allocated here.")
        region = None
        if tmpl.get("network") is not None:
            nid = ctx.ref_id(tmpl["network"], "networks", "network")
            region = ctx.translator.region_of(ctx.principal, "network", existing(ctx, "network", nid, "network").id)
        address = ctx.translator.allocate_address(ctx.principal, region)
        properties = body.get("properties")
        if isinstance(properties, dict) and properties:
            tags = {str(k): str(v) for k, v in properties.items()}
            ctx.translator.update_tags(ctx.principal, KIND, [address.id], tags)
            address.tags.update(tags)
        doc = address_doc(ctx, address)
        return Reply(201, doc, "Address", {"Location": doc["id"]})

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        """Only properties change: the cloud owns everything else of an address."""
        authorize(ctx.principal, "write")
        address = ctx.translator.get(ctx.principal, KIND, rid)
        if "properties" in body:
            replace_properties(ctx, KIND, address, body["properties"])
        return Reply(200, self.get(ctx, rid), "Address")

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        authorize(ctx.principal, "write")
        ctx.translator.get(ctx.principal, KIND, rid)
        ctx.translator.release_address(ctx.principal, rid)
        return Reply(204)
