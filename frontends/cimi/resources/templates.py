"""Templates (Machine, Volume, Network, Address, Credential, System) kept in the core's document store,
and the readers that turn a template, by value or by reference, into a canonical request.

A template is stored as the client sent it (the attributes of its type, references as hrefs), so a
template made in CIMI 1.1 is read back in 2.0 and the other way round; ``id``, ``created``, ``updated``
and ``operations`` are the store's, never the client's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from typing import Any

from frontends.cimi.context import Ctx, Reply, iso
from frontends.cimi.controller import Controller, collection, windowed
from frontends.cimi.errors import CimiError
from frontends.cimi.query import CollectionQuery
from translator.documents import Document
from translator.errors import Conflict, NotFound
from translator.identity import authorize
from translator.model import BlockDevice, MachineSpec, VolumeTier

#: the attributes the store owns on every stored document
OWN = ("id", "resourceURI", "created", "updated", "operations", "href")
#: the most documents one collection read gathers before windowing
MAX_DOCUMENTS = 10_000
#: Volume configurations built in: one per canonical tier (their id is the tier's name)
TIERS = {tier.value: tier for tier in VolumeTier}
#: CIMI ``initialState`` values a machine can be created in
INITIAL_STATES = ("STARTED", "STOPPED")


class DocumentCollection(Controller):
    """A collection the gateway alone owns: members are documents in the store, of ``doc_kind``."""

    doc_kind = ""
    #: the attribute of a ``<Type>Create`` body that holds the template itself (``machineTemplate``)
    inner = ""

    def list(self, ctx: Ctx, query: CollectionQuery) -> Reply:
        authorize(ctx.principal, "read")
        docs: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(docs) < MAX_DOCUMENTS:
            page = ctx.documents.list(ctx.principal.tenant, self.doc_kind, cursor, 1000)
            docs += [self.render(ctx, d) for d in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        return collection(ctx, self, windowed(docs, query), query)

    def stored(self, ctx: Ctx, rid: str) -> Document:
        authorize(ctx.principal, "read")
        return ctx.documents.get(ctx.principal.tenant, self.doc_kind, rid)

    def get(self, ctx: Ctx, rid: str) -> dict[str, Any]:
        return self.render(ctx, self.stored(ctx, rid))

    def render(self, ctx: Ctx, document: Document) -> dict[str, Any]:
        href = ctx.href(self.name, document.id)
        doc: dict[str, Any] = {"resourceURI": ctx.uri(self.type_name), "id": href}
        body = document.body
        for key in ("name", "description"):
            if body.get(key):
                doc[key] = body[key]
        doc["created"], doc["updated"] = iso(document.created), iso(document.updated)
        doc["properties"] = dict(body.get("properties") or {})
        doc.update({k: v for k, v in body.items() if k not in ("name", "description", "properties")})
        doc["operations"] = [{"rel": "edit", "href": href}, {"rel": "delete", "href": href}]
        return doc

    def body_of(self, body: dict[str, Any]) -> dict[str, Any]:
        """What to store: a ``<Type>Create``'s inner template merged with its name and properties, or the
        template itself."""
        inner = body.get(self.inner) if self.inner else None
        if isinstance(inner, dict):
            merged = {k: v for k, v in inner.items() if k not in OWN}
            for key in ("name", "description", "properties"):
                if key in body:
                    merged[key] = body[key]
            return merged
        return {k: v for k, v in body.items() if k not in OWN}

    def add(self, ctx: Ctx, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        self.check(ctx, self.body_of(body))
        document = ctx.documents.create(ctx.principal.tenant, self.doc_kind, self.body_of(body))
        href = ctx.href(self.name, document.id)
        return Reply(201, self.render(ctx, document), self.type_name, {"Location": href, "ETag": _etag(document)})

    def edit(self, ctx: Ctx, rid: str, body: dict[str, Any]) -> Reply:
        authorize(ctx.principal, "write")
        new = self.body_of(body)
        self.check(ctx, new)
        document = ctx.documents.replace(ctx.principal.tenant, self.doc_kind, rid, new, if_match=_unquote(ctx.if_match))
        return Reply(200, self.render(ctx, document), self.type_name, {"ETag": _etag(document)})

    def delete(self, ctx: Ctx, rid: str) -> Reply:
        authorize(ctx.principal, "write")
        ctx.documents.delete(ctx.principal.tenant, self.doc_kind, rid, if_match=_unquote(ctx.if_match))
        return Reply(204)

    def check(self, ctx: Ctx, body: dict[str, Any]) -> None:
        """Refuse a template whose references name nothing of the right collection (overridden per type)."""


def _etag(document: Document) -> str:
    return f'"{document.etag}"'


def _unquote(value: str | None) -> str | None:
    if value is None or value.strip() == "*":
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


class MachineTemplates(DocumentCollection):
    name = "machineTemplates"
    type_name = "MachineTemplate"
    create_type = "MachineTemplateCreate"
    doc_kind = "cimi_machine_template"
    inner = "machineTemplate"

    def check(self, ctx: Ctx, body: dict[str, Any]) -> None:
        if "machineImage" in body:
            ctx.ref_id(body["machineImage"], "machineImages", "machineImage")
        config = body.get("machineConfig")
        if isinstance(config, dict) and "href" in config:
            ctx.ref_id(config, "machineConfigs", "machineConfig")
        state = body.get("initialState")
        if state is not None and state not in INITIAL_STATES:
            raise CimiError(400, f"'initialState' must be one of {', '.join(INITIAL_STATES)}.")


class VolumeTemplates(DocumentCollection):
    name = "volumeTemplates"
    type_name = "VolumeTemplate"
    create_type = "VolumeTemplate"  # the vocabulary has no VolumeTemplateCreate: the template itself is posted
    doc_kind = "cimi_volume_template"
    inner = "volumeTemplate"


class NetworkTemplates(DocumentCollection):
    name = "networkTemplates"
    type_name = "NetworkTemplate"
    create_type = "NetworkTemplate"  # the vocabulary has no NetworkTemplateCreate: the template itself is posted
    doc_kind = "cimi_network_template"
    inner = "networkTemplate"


class AddressTemplates(DocumentCollection):
    name = "addressTemplates"
    type_name = "AddressTemplate"
    create_type = "AddressTemplate"  # the vocabulary has no AddressTemplateCreate: the template itself is posted
    doc_kind = "cimi_address_template"
    inner = "addressTemplate"


class CredentialTemplates(DocumentCollection):
    name = "credentialTemplates"
    type_name = "CredentialTemplate"
    create_type = "CredentialTemplate"  # the vocabulary has no CredentialTemplateCreate: the template itself is posted
    doc_kind = "cimi_credential_template"
    inner = "credentialTemplate"


# -- reading templates into requests ---------------------------------------------------------------
def resolve(ctx: Ctx, value: Any, collection_name: str, doc_kind: str, attribute: str) -> dict[str, Any]:
    """A template given by value, or by reference (``{"href"}``, with by-value attributes overriding)."""
    if not isinstance(value, dict):
        raise CimiError(400, f"'{attribute}' must be a {attribute} by value or a reference to one.")
    if "href" not in value:
        return value
    rid = ctx.ref_id(value, collection_name, attribute)
    try:
        stored = ctx.documents.get(ctx.principal.tenant, doc_kind, rid).body
    except NotFound:
        raise CimiError(400, f"'{attribute}' names no {attribute} of this tenant: '{rid}'.") from None
    return {**stored, **{k: v for k, v in value.items() if k != "href"}}


def existing(ctx: Ctx, kind: str, gid: str, attribute: str) -> Any:
    """The resource a reference names, or 400 naming the attribute (a bad reference is bad input)."""
    try:
        return ctx.translator.get(ctx.principal, kind, gid)
    except NotFound:
        raise CimiError(400, f"'{attribute}' names nothing this tenant has: '{gid}'.") from None


def machine_spec(ctx: Ctx, body: dict[str, Any]) -> tuple[MachineSpec, str, str]:
    """A MachineCreate as a canonical launch: the spec, the region of its image, its initial state."""
    if "machineTemplate" not in body:
        raise CimiError(400, "A MachineCreate needs a 'machineTemplate'.")
    tmpl = resolve(ctx, body["machineTemplate"], "machineTemplates", "cimi_machine_template", "machineTemplate")
    if "machineImage" not in tmpl:
        raise CimiError(400, "The machine template needs a 'machineImage'.")
    image_id = ctx.ref_id(tmpl["machineImage"], "machineImages", "machineImage")
    image = existing(ctx, "image", image_id, "machineImage")
    region = ctx.translator.region_of(ctx.principal, "image", image.id)
    flavor_id = _flavor(ctx, tmpl.get("machineConfig"), region)
    key_name = _credential(ctx, tmpl.get("credential"), region)
    user_data = _user_data(tmpl.get("userData"))
    initial = tmpl.get("initialState") or "STARTED"
    if initial not in INITIAL_STATES:
        raise CimiError(400, f"'initialState' must be one of {', '.join(INITIAL_STATES)}.")
    if tmpl.get("volumes"):
        raise CimiError(501, "Attaching existing volumes at creation is not supported yet: add them afterwards.")
    devices = tuple(_block_device(ctx, v, i) for i, v in enumerate(tmpl.get("volumeTemplates") or ()))
    subnet_id = _subnet(ctx, tmpl.get("networkInterfaces") or [])
    properties = body.get("properties") or {}
    spec = MachineSpec(
        image_id=image.id,
        flavor_id=flavor_id,
        name=str(body.get("name") or ""),
        key_name=key_name,
        user_data=user_data,
        subnet_id=subnet_id,
        block_devices=devices,
        tags=tuple((str(k), str(v)) for k, v in properties.items()),
        idempotency_key=ctx.idempotency_key,
    )
    return spec, region, initial


def _flavor(ctx: Ctx, config: Any, region: str) -> str:
    if config is None:
        raise CimiError(400, "The machine template needs a 'machineConfig'.")
    if isinstance(config, dict) and "href" in config:
        gid = ctx.ref_id(config, "machineConfigs", "machineConfig")
        return existing(ctx, "flavor", gid, "machineConfig").id
    if not isinstance(config, dict):
        raise CimiError(400, "'machineConfig' must be a MachineConfiguration by value or a reference.")
    cpu, memory = config.get("cpu"), config.get("memory")
    if not isinstance(cpu, int) or not isinstance(memory, int) or cpu < 1 or memory < 1:
        raise CimiError(400, "A machineConfig by value needs a positive 'cpu' and 'memory' (KiB).")
    try:
        return ctx.translator.smallest_flavor(ctx.principal, cpu, math.ceil(memory / 1024), region).id
    except NotFound:
        raise CimiError(400, f"No machine configuration has {cpu} CPUs and {memory} KiB of memory.") from None


def _credential(ctx: Ctx, credential: Any, region: str) -> str | None:
    """The key-pair name a credential names: a reference to a Credential, or one by value (its public key
    is imported into the machine's region under a name derived from the key)."""
    if credential is None:
        return None
    if not isinstance(credential, dict):
        raise CimiError(400, "'credential' must be a Credential by value or a reference.")
    if "href" in credential:
        gid = ctx.ref_id(credential, "credentials", "credential")
        return existing(ctx, "key_pair", gid, "credential").name
    public_key = credential.get("key")
    if not isinstance(public_key, str) or not public_key.strip():
        raise CimiError(400, "A credential by value needs its public 'key'.")
    name = str(credential.get("name") or f"cimi-{hashlib.sha256(public_key.encode()).hexdigest()[:16]}")
    try:
        return ctx.translator.import_key_pair(ctx.principal, name, public_key.strip(), region).name
    except Conflict:  # imported before (the same key gives the same name)
        return name


def _user_data(value: Any) -> str | None:
    """CIMI's userData is base64 text, as the canonical model keeps it."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CimiError(400, "'userData' must be base64 text.")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise CimiError(400, "'userData' must be base64 text.") from None
    return value


def _block_device(ctx: Ctx, value: Any, index: int) -> BlockDevice:
    tmpl = resolve(ctx, value, "volumeTemplates", "cimi_volume_template", "volumeTemplates")
    size_gb, tier = volume_config(ctx, tmpl.get("volumeConfig"))
    snapshot_id = None
    if tmpl.get("volumeImage") is not None:
        snapshot_id = ctx.ref_id(tmpl["volumeImage"], "volumeImages", "volumeImage")
    if size_gb is None and snapshot_id is None:
        raise CimiError(400, "A volume template needs a capacity or a volumeImage.")
    return BlockDevice(
        device=str(tmpl.get("initialLocation") or ""), size_gb=size_gb, tier=tier, snapshot_id=snapshot_id
    )


def volume_config(ctx: Ctx, config: Any) -> tuple[int | None, VolumeTier]:
    """(size in GiB or None, tier) of a volumeConfig by value or reference (built-in tiers by id)."""
    if config is None:
        return None, VolumeTier.STANDARD
    if not isinstance(config, dict):
        raise CimiError(400, "'volumeConfig' must be a VolumeConfiguration by value or a reference.")
    if "href" in config:
        rid = ctx.ref_id(config, "volumeConfigs", "volumeConfig")
        if rid not in TIERS:
            raise CimiError(400, f"'volumeConfig' names no volume configuration: '{rid}'.")
        config = {"type": rid, **{k: v for k, v in config.items() if k != "href"}}
    capacity = config.get("capacity")
    if capacity is not None and (not isinstance(capacity, int) or capacity < 1):
        raise CimiError(400, "'capacity' must be a positive number of KiB.")
    tier = tier_of(config.get("type"))
    return (None if capacity is None else max(1, math.ceil(capacity / (1024 * 1024)))), tier


def tier_of(value: Any) -> VolumeTier:
    """A volume type (our volumeConfig type URI, or a tier name) as a canonical tier."""
    if value is None or value == "":
        return VolumeTier.STANDARD
    name = str(value).rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    tier = TIERS.get(name)
    if tier is None:
        raise CimiError(400, f"'{str(value)[:100]}' is not a volume type here ({', '.join(TIERS)}).")
    return tier


def _subnet(ctx: Ctx, interfaces: Any) -> str | None:
    if not isinstance(interfaces, list):
        raise CimiError(400, "'networkInterfaces' must be a list.")
    if not interfaces:
        return None
    if len(interfaces) > 1:
        raise CimiError(501, "A machine is created with one network interface here; add more afterwards.")
    network = interfaces[0].get("network") if isinstance(interfaces[0], dict) else None
    if network is None:
        return None
    nid = ctx.ref_id(network, "networks", "network")
    subnets = ctx.translator.page(ctx.principal, "subnet", match={"network_id": [nid]}, limit=1).items
    if not subnets:
        raise CimiError(400, f"The network '{nid}' has no subnet a machine can be placed in.")
    return subnets[0].id
