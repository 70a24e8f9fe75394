"""Tags: CreateTags, DeleteTags, DescribeTags over every taggable kind, plus TagSpecifications checks.

Tags live on each resource's ``.tags`` (the translator keeps them in Redis when the backend cannot);
DescribeTags returns one item per (resource, key), as EC2 does, paging through the taggable kinds one after
the other with the translator's pages: its token holds the kind and the translator's cursor in it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from frontends.ec2.actions.base import Call, Handler, describer, writer
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import Filter, compile_filters, table
from frontends.ec2.ids import ID_FORMS, public_id, resolve_ids
from frontends.ec2.paging import max_results, open_token, seal_token
from translator.errors import InvalidParameter
from translator.listings import decode_cursor, encode_cursor, sort_key
from translator.model import Resource
from translator.translator import MissingIds, Where

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


@dataclass(frozen=True, slots=True)
class TagsToken:
    """Where the next DescribeTags page starts: in ``kind`` after the resource at the translator's ``cursor``
    (None: at the kind's first); when ``resource`` is set, first the rest of that resource's tags after key
    ``after_key`` (it alone held more tags than a page)."""

    kind: str
    cursor: str | None
    resource: str | None = None
    after_key: str | None = None

    def seal(self) -> str:
        return seal_token("DescribeTags", [self.kind, self.cursor, self.resource, self.after_key])

    @classmethod
    def open(cls, token: str) -> TagsToken:
        content = open_token("DescribeTags", token)
        try:
            kind, cursor, resource, after_key = content
            if kind not in RESOURCE_TYPES or (resource is None) != (after_key is None):
                raise ValueError(kind)
            if cursor is not None:
                decode_cursor(cursor)
            if not all(v is None or isinstance(v, str) for v in (cursor, resource, after_key)):
                raise ValueError(content)
            if resource is not None and cursor is None:
                raise ValueError(content)
        except (ValueError, TypeError, InvalidParameter):
            raise EC2Error(
                "InvalidPaginationToken", "The specified pagination token is not valid or is expired."
            ) from None
        return cls(kind, cursor, resource, after_key)


#: What ends the literal head of a filter value: EC2's wildcards and their escape.
_WILDCARD = re.compile(r"[*?\\]")
_SHORT = re.compile(r"[0-9a-f]{17}")


def _reach(values: list[str]) -> dict[str, set[str] | None]:
    """Kind -> the exact public ids a ``resource-id`` filter names in it (None: any of that kind, by wildcard).

    A value's id prefix decides its kind; a wildcard before any prefix reaches every kind."""
    reach: dict[str, set[str] | None] = {}
    for value in values:
        wild = _WILDCARD.search(value)
        head = value[: wild.start()] if wild else value
        dash = head.find("-")
        if dash < 0:
            if wild:
                return dict.fromkeys(RESOURCE_TYPES)
            continue  # an exact value that is no id of ours names nothing
        kind = KIND_OF_PREFIX.get(head[: dash + 1])
        if kind is None:
            continue
        if wild:
            reach[kind] = None
        else:
            exact = reach.setdefault(kind, set())
            if exact is not None:
                exact.add(value)
    return reach


def _scope(call: Call, raw: list[dict[str, Any]] | None, filters: list[Filter]) -> dict[str, list[str] | None]:
    """The kinds DescribeTags reads, in walk order, each with the gateway ids to read (None: the whole kind).

    Filters still judge every tag; this only spares reading kinds and resources they cannot match."""
    scope: dict[str, set[str] | None] = dict.fromkeys(RESOURCE_TYPES)
    for f in raw or []:
        if f.get("Name") != "resource-id":
            continue
        reach = _reach(f.get("Values") or [])
        for kind in list(scope):
            if kind not in reach:
                del scope[kind]
            elif reach[kind] is not None:
                known = scope[kind]
                scope[kind] = reach[kind] if known is None else known & reach[kind]  # type: ignore[operator]
    by_type = [f for f in filters if f.name == "resource-type"]
    out: dict[str, list[str] | None] = {}
    for kind, exact in scope.items():
        if not all(f.matches({"ResourceType": RESOURCE_TYPES[kind]}) for f in by_type):
            continue
        if exact is None:
            out[kind] = None
            continue
        prefix = ID_FORMS[kind].prefix
        shorts = [pid[len(prefix) :] for pid in sorted(exact) if _SHORT.fullmatch(pid[len(prefix) :])]
        gids = [g for g in call.translator.expand_short(shorts) if g is not None] if shorts else []
        if gids:
            out[kind] = gids
    return out


def _tag_items(kind: str, resource: Resource, filters: list[Filter]) -> list[dict[str, Any]]:
    """The resource's tags as DescribeTags items, in key order, those every filter passes (filters are per tag)."""
    rid, rtype = public_id(kind, resource.id), RESOURCE_TYPES[kind]
    out = []
    for key in sorted(resource.tags):
        value = resource.tags[key]
        item = {"ResourceId": rid, "ResourceType": rtype, "Key": key, "Value": value}
        if all(f.matches({**item, "Tags": [{"Key": key, "Value": value}]}) for f in filters):
            out.append(item)
    return out


def _page(
    call: Call, kind: str, gids: list[str] | None, cursor: str | None, limit: int | None, where: Where | None
) -> tuple[list[Resource], bool]:
    """The caller's next resources of ``kind`` that ``where`` keeps, and whether more follow them (the named ones
    when ``gids``; those the caller cannot see in this region are left out, as a filter leaves them out)."""
    while True:
        try:
            page = call.translator.page(
                call.principal, kind, cursor=cursor, limit=limit, ids=gids, where=where, region=call.region
            )
            return page.items, page.next_cursor is not None
        except MissingIds as exc:
            gone = set(exc.ids)
            gids = [g for g in gids or () if g not in gone]
            if not gids or not gone:
                return [], False


def describe_tags(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    """One item per (resource, key), kind after kind (``RESOURCE_TYPES``' order), each kind in the translator's
    order and each resource's keys sorted; a page ends at a resource boundary (so it may hold fewer than
    ``MaxResults``), unless one resource alone holds more than a page."""
    limit = max_results(args)
    start = TagsToken.open(args["NextToken"]) if args.get("NextToken") else None
    filters = compile_filters(args.get("Filters"), DESCRIBE_TAGS_FILTERS)
    scope = _scope(call, args.get("Filters"), filters)
    kinds = list(RESOURCE_TYPES)
    if start is not None:
        kinds = kinds[kinds.index(start.kind) :]
    items: list[dict[str, Any]] = []

    def answer(token: TagsToken | None) -> dict[str, Any]:
        return {"Tags": items, "NextToken": token.seal() if token is not None else None}

    for kind in kinds:
        if kind not in scope:
            continue
        cursor = start.cursor if start is not None and start.kind == kind else None
        if start is not None and start.kind == kind and start.resource is not None:  # finish a split resource
            split, _ = _page(call, kind, [start.resource], None, None, None)
            after_key = start.after_key or ""
            rest = [i for r in split for i in _tag_items(kind, r, filters) if i["Key"] > after_key]
            if limit is not None and len(rest) > limit:
                items = rest[:limit]
                return answer(TagsToken(kind, cursor, start.resource, items[-1]["Key"]))
            items.extend(rest)
        if limit is not None and len(items) == limit:
            return answer(TagsToken(kind, cursor))
        expanded: dict[str, list[dict[str, Any]]] = {}

        def where(resource: Resource, kind: str = kind, expanded: dict[str, list[dict[str, Any]]] = expanded) -> bool:
            found = expanded[resource.id] = _tag_items(kind, resource, filters)
            return bool(found)

        room = None if limit is None else limit - len(items)
        resources, more = _page(call, kind, scope[kind], cursor, room, where)
        for resource in resources:
            tags = expanded[resource.id]
            if limit is not None and len(items) + len(tags) > limit:
                if items:  # the next page starts with this resource: never split one that fits a page
                    return answer(TagsToken(kind, cursor))
                items = tags[:limit]
                return answer(TagsToken(kind, encode_cursor(sort_key(resource)), resource.id, items[-1]["Key"]))
            items.extend(tags)
            cursor = encode_cursor(sort_key(resource))
        if more:  # the page is full (each resource kept holds a tag) and this kind goes on
            return answer(TagsToken(kind, cursor))
    return answer(None)


ACTIONS: dict[str, Handler] = {
    "CreateTags": writer(create_tags),
    "DeleteTags": writer(delete_tags),
    "DescribeTags": describer(describe_tags),
}
