"""Credentials: SSH public keys (the backends' key pairs). A create with a ``publicKey`` imports it; one
with only a name generates a key pair and returns its private key once, in that response only."""

from __future__ import annotations

from typing import Any

from frontends.cimi.context import Ctx, Reply, common, operations
from frontends.cimi.controller import Controller, resource_listing
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery
from frontends.cimi.resources.templates import resolve
from translator.backend import Capability
from translator.model import KeyPair, Resource

KIND = "key_pair"


def credential_doc(ctx: Ctx, key: Resource) -> dict[str, Any]:
    assert isinstance(key, KeyPair)
    href = ctx.href("credentials", key.id)
    doc = common(ctx, "Credential", href, key)
    doc["name"] = key.name
    doc["key"] = key.public_key
    doc["operations"] = operations(ctx, href, ["delete"])
    return doc


class Credentials(Controller):
    name = "credentials"
    type_name = "Credential"
    create_type = "CredentialCreate"
    kind = KIND
    needs = Capability.KEY_PAIRS

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        return resource_listing(ctx, self, query, credential_doc)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return credential_doc(ctx, ctx.translator.get(ctx.principal, KIND, rid))

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        tmpl = resolve(
            ctx,
            body.get("credentialTemplate") or {},
            "credentialTemplates",
            "cimi_credential_template",
            "credentialTemplate",
        )
        name = str(body.get("name") or tmpl.get("name") or "")
        if not name:
            raise CimiError(400, "A credential needs a 'name'.")
        public_key = tmpl.get("key")
        if public_key:
            key = ctx.translator.import_key_pair(ctx.principal, name, str(public_key).strip())
            doc = credential_doc(ctx, key)
        else:
            material = ctx.translator.create_key_pair(ctx.principal, name)
            key = material.key_pair
            doc = credential_doc(ctx, key)
            doc["privateKey"] = material.private_key  # this once; never stored
        properties = body.get("properties")
        if isinstance(properties, dict) and properties:
            ctx.translator.update_tags(ctx.principal, KIND, [key.id], {str(k): str(v) for k, v in properties.items()})
            doc["properties"] = {str(k): str(v) for k, v in properties.items()}
        return Reply(201, doc, "Credential", {"Location": doc["id"]})

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        ctx.translator.get(ctx.principal, KIND, rid)
        ctx.translator.delete_key_pair(ctx.principal, rid)
        return Reply(204)
