"""Tags: CreateTags, DeleteTags, DescribeTags over every taggable kind, plus TagSpecifications checks.

Tags live on each resource's ``.tags`` (the translator keeps them in Redis when the backend cannot);
DescribeTags lists each taggable kind and returns one item per (resource, key), as EC2 does.
"""

from __future__ import annotations

from typing import Any

from frontends.ec2.actions.base import Call, Handler, describe, reader, writer
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import table
from frontends.ec2.ids import ID_FORMS, public_id, resolve_ids
from translator.model import Resource

#: canonical kind -> EC2 ResourceType of the taggable kinds; the id prefix comes from ids.ID_FORMS.
RESOURCE_TYPES: dict[str, str] = {
    "machine": "instance",
    "image": "image",
    "volume": "volume",
    "snapshot": "snapshot",
    "security_group": "security-group",
    "address": "elastic-ip",
    "network": "vpc",
    "subnet": "subnet",
    "key_pair": "key-pair",
}

#: EC2 id prefix (``vol-``) -> canonical kind, derived from the two tables above.
KIND_OF_PREFIX: dict[str, str] = {ID_FORMS[kind].prefix: kind for kind in RESOURCE_TYPES}

#: EC2's limits: 50 user tags a resource, keys up to 128 characters, values up to 256.
MAX_TAGS, MAX_KEY, MAX_VALUE = 50, 128, 256
RESERVED_PREFIX = "aws:"

DESCRIBE_TAGS_FILTERS = table(
    {"key": "Key", "value": "Value", "resource-id": "ResourceId", "resource-type": "ResourceType"}
)


def check_key(key: str) -> None:
    """EC2 refuses empty, over-long and ``aws:``-prefixed keys (the prefix is AWS's own)."""
    if not key or len(key) > MAX_KEY:
        raise EC2Error("InvalidParameterValue", f"Tag key must be between 1 and {MAX_KEY} characters long.")
    if key.lower().startswith(RESERVED_PREFIX):
        raise EC2Error(
            "InvalidParameterValue",
            f"Value ( {key} ) for parameter key is invalid. "
            "Tag keys starting with 'aws:' are reserved for internal use",
        )


def check_tags(tags: list[dict[str, Any]]) -> dict[str, str]:
    """Validated ``[{"Key", "Value"}]`` -> dict (a missing value is the empty string, as on EC2)."""
    out: dict[str, str] = {}
    for tag in tags:
        key, value = tag.get("Key") or "", tag.get("Value") or ""
        check_key(key)
        if len(value) > MAX_VALUE:
            raise EC2Error("InvalidParameterValue", f"Tag value must be at most {MAX_VALUE} characters long.")
        out[key] = value
    if len(out) > MAX_TAGS:
        raise EC2Error("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
    return out


def spec_tags(args: dict[str, Any], resource_type: str, also: tuple[str, ...] = ()) -> dict[str, str]:
    """The checked tags a create action's TagSpecifications give ``resource_type``.

    Specifications for the types in ``also`` are valid for the action but tag nothing here (RunInstances'
    ``volume``, CreateImage's ``snapshot``); any other ResourceType is EC2's error.
    """
    tags: list[dict[str, Any]] = []
    for spec in args.get("TagSpecifications") or []:
        named = spec.get("ResourceType")
        if named == resource_type:
            tags.extend(spec.get("Tags") or [])
        elif named in also:
            check_tags(spec.get("Tags") or [])
        else:
            raise EC2Error(
                "InvalidParameterValue", f"'{named}' is not a valid taggable resource type for this operation."
            )
    return check_tags(tags)


def kind_of(resource_id: str) -> str:
    """The canonical kind an EC2 id names, by its prefix; ``InvalidID`` for anything else."""
    dash = resource_id.find("-")
    kind = KIND_OF_PREFIX.get(resource_id[: dash + 1]) if dash > 0 else None
    if kind is None:
        raise EC2Error("InvalidID", f"The ID '{resource_id}' is not valid")
    return kind


def _resources(call: Call, resource_ids: list[str]) -> dict[str, list[Resource]]:
    """The caller's resources named by ``resource_ids``, grouped by kind (Malformed/NotFound as EC2)."""
    by_kind: dict[str, list[str]] = {}
    for rid in dict.fromkeys(resource_ids):
        by_kind.setdefault(kind_of(rid), []).append(rid)
    return {
        kind: call.translator.get_many(call.principal, kind, resolve_ids(call.translator, kind, ids))
        for kind, ids in by_kind.items()
    }


def create_tags(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    tags = check_tags(args.get("Tags") or [])
    groups = _resources(call, args.get("Resources") or [])
    for resources in groups.values():
        for r in resources:
            if len(r.tags.keys() | tags.keys()) > MAX_TAGS:
                raise EC2Error("TagLimitExceeded", "The maximum number of Tags for a resource has been reached.")
    for kind, resources in groups.items():
        call.translator.update_tags(call.principal, kind, [r.id for r in resources], tags)
    return {}


def delete_tags(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """A tag given with a value is deleted only if the value matches; no tags at all deletes every tag."""
    given = args.get("Tags")
    remove: dict[str, str | None] = {}
    for tag in given or []:
        key = tag.get("Key") or ""
        check_key(key)
        remove[key] = tag["Value"] if tag.get("Value") is not None else None
    for kind, resources in _resources(call, args.get("Resources") or []).items():
        if given:
            call.translator.update_tags(call.principal, kind, [r.id for r in resources], {}, remove)
        else:
            for r in resources:
                everything: dict[str, str | None] = dict.fromkeys(r.tags)
                call.translator.update_tags(call.principal, kind, [r.id], {}, everything)
    return {}


def describe_tags(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    items = [
        {
            "ResourceId": public_id(kind, r.id),
            "ResourceType": resource_type,
            "Key": key,
            "Value": value,
            "Tags": [{"Key": key, "Value": value}],  # not in the output shape: lets tag:KEY filter this tag
            "_Created": r.created,
        }
        for kind, resource_type in RESOURCE_TYPES.items()
        for r in call.translator.list(call.principal, kind, call.region)
        for key, value in r.tags.items()
    ]
    page = describe(
        "DescribeTags",
        args,
        items,
        DESCRIBE_TAGS_FILTERS,
        lambda item: (item["_Created"], item["ResourceId"], item["Key"]),
    )
    return {"Tags": page.items, "NextToken": page.next_token}


ACTIONS: dict[str, Handler] = {
    "CreateTags": writer(create_tags),
    "DeleteTags": writer(delete_tags),
    "DescribeTags": reader(describe_tags),
}
