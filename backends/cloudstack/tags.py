"""Tags kept by CloudStack itself (``createTags``/``deleteTags``), read back from each resource's ``tags``.

CloudStack tags a fixed set of resource types (``ResourceObjectType``); key pairs are not among them, so their
tags stay in Redis (``NATIVE_TAG_KINDS``). Three CloudStack rules shape this module: a value may not be empty
(so an empty value is stored as ``EMPTY`` and read back as ""), a key the resource has already is refused
(so a changed value is deleted first), and deleting keys none of which is there fails the job (so only present
keys are deleted). Keys under ``RESERVED`` are the gateway's own marks (a create's idempotency key): never
shown as user tags, never set or removed by users.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from translator.errors import InvalidParameter, NotFound

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

RESERVED = "cloudgate:"
#: The tag naming the create that made a resource (the translator's idempotency key).
IDEMPOTENCY_TAG = RESERVED + "idempotency_key"
#: What an empty value is stored as (CloudStack: "Value for the key ... is either null or empty").
EMPTY = RESERVED + "empty"


@dataclass(frozen=True, slots=True)
class Taggable:
    """A kind CloudStack tags: its ``resourcetype``, and how one resource of it is read (with its tags)."""

    resourcetype: str
    command: str
    key: str
    params: Mapping[str, str] = field(default_factory=dict)


#: canonical kind -> how CloudStack tags and reads it.
TAGGABLE: Mapping[str, Taggable] = {
    "machine": Taggable("UserVm", "listVirtualMachines", "virtualmachine"),
    "volume": Taggable("Volume", "listVolumes", "volume"),
    "snapshot": Taggable("Snapshot", "listSnapshots", "snapshot"),
    "image": Taggable("Template", "listTemplates", "template", {"templatefilter": "executable"}),
    "security_group": Taggable("SecurityGroup", "listSecurityGroups", "securitygroup"),
    "address": Taggable("PublicIpAddress", "listPublicIpAddresses", "publicipaddress"),
    "network": Taggable("Network", "listNetworks", "network"),
}
KINDS = frozenset(TAGGABLE)


def user_tags(resource: Mapping[str, Any]) -> dict[str, str]:
    """A resource's tags as users set them: the gateway's own left out, empty values restored."""
    return {
        t["key"]: "" if t.get("value") == EMPTY else str(t.get("value", ""))
        for t in resource.get("tags") or []
        if "key" in t and not str(t["key"]).startswith(RESERVED)
    }


def marks(resource: Mapping[str, Any]) -> dict[str, str]:
    """The gateway's own tags on a resource."""
    return {
        t["key"]: t.get("value", "") for t in resource.get("tags") or [] if str(t.get("key", "")).startswith(RESERVED)
    }


def tag_params(resourcetype: str, ids: Iterable[str], tags: Mapping[str, str | None]) -> dict[str, Any]:
    """createTags/deleteTags parameters (``tags[n].key``/``tags[n].value``; a None value: key only)."""
    params: dict[str, Any] = {"resourcetype": resourcetype, "resourceids": ",".join(ids)}
    for n, (key, value) in enumerate(tags.items()):
        params[f"tags[{n}].key"] = key
        if value is not None:
            params[f"tags[{n}].value"] = value or EMPTY
    return params


def mark(b: CloudStackBackend, kind: str, ids: list[str], tags: Mapping[str, str]) -> None:
    """Put tags on resources just made (none of them has these keys yet), waiting for the job."""
    taggable = TAGGABLE[kind]
    target = f"{taggable.resourcetype}:{','.join(ids)}"
    params = tag_params(taggable.resourcetype, ids, tags)
    b.cloud.run("createTags", params, kind=kind, what=f"tag {kind}", target=target)


def _current(b: CloudStackBackend, kind: str, native_id: str) -> dict[str, Any]:
    taggable = TAGGABLE.get(kind)
    if taggable is None:
        raise InvalidParameter(f"CloudStack does not tag {kind.replace('_', ' ')}s.", kind=kind, reason="tag")
    try:
        found = b.cloud.listing(
            taggable.command, taggable.key, {**taggable.params, "id": native_id}, kind=kind, what="tags"
        )
    except (NotFound, InvalidParameter):  # CloudStack's PARAM_ERROR for an id naming nothing
        found = []
    match = next((r for r in found if r.get("id") == native_id), None)
    if match is None:
        raise NotFound(f"The {kind.replace('_', ' ')} '{native_id}' does not exist.", kind=kind)
    return match


def refuse_reserved(keys: Iterable[str]) -> None:
    bad = [k for k in keys if k.startswith(RESERVED)]
    if bad:
        raise InvalidParameter(f"Tag keys starting with '{RESERVED}' are reserved: '{bad[0]}'.", reason="tag")


def set_tags(b: CloudStackBackend, kind: str, native_id: str, tags: Mapping[str, str]) -> None:
    """Add or overwrite tags: keys whose value changes are deleted first (CloudStack refuses a key twice)."""
    refuse_reserved(tags)
    resource = _current(b, kind, native_id)
    have = user_tags(resource)
    lowered = {k.lower(): k for k in have}
    changed = {
        lowered[k.lower()]: None for k, v in tags.items() if k.lower() in lowered and have[lowered[k.lower()]] != v
    }
    new = {k: v for k, v in tags.items() if k.lower() not in lowered or have[lowered[k.lower()]] != v}
    taggable = TAGGABLE[kind]
    target = f"{taggable.resourcetype}:{native_id}"
    if changed:
        params = tag_params(taggable.resourcetype, [native_id], changed)
        b.cloud.run("deleteTags", params, kind=kind, what=f"retag {kind}", target=target)
    if new:
        params = tag_params(taggable.resourcetype, [native_id], new)
        b.cloud.run("createTags", params, kind=kind, what=f"tag {kind}", target=target)


def remove_tags(b: CloudStackBackend, kind: str, native_id: str, keys: list[str]) -> None:
    """Remove the tags of these keys; absent ones (and the gateway's own) are ignored."""
    resource = _current(b, kind, native_id)
    have = {k.lower() for k in user_tags(resource)}
    present = {k: None for k in dict.fromkeys(keys) if k.lower() in have and not k.startswith(RESERVED)}
    if present:
        taggable = TAGGABLE[kind]
        params = tag_params(taggable.resourcetype, [native_id], present)
        b.cloud.run(
            "deleteTags", params, kind=kind, what=f"untag {kind}", target=f"{taggable.resourcetype}:{native_id}"
        )
