"""EC2's own tags (the backend declares NATIVE_TAGS): set and removed on the resource itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from translator.errors import Unsupported

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend


def _taggable(b: EC2Backend, kind: str, native_id: str) -> str:
    """The EC2 id CreateTags takes: key pairs are known here by name, EC2 tags them by KeyPairId."""
    if kind == "flavor":
        raise Unsupported("Instance types cannot be tagged.", kind="flavor", reason="native_tags")
    if kind != "key_pair":
        return native_id
    answer = b.call("describe_key_pairs", "key_pair", KeyNames=[native_id])
    (found,) = answer.get("KeyPairs") or [{}]
    if not found.get("KeyPairId"):
        raise Unsupported("This cloud does not tag key pairs.", kind="key_pair", reason="native_tags")
    return str(found["KeyPairId"])


def set_tags(b: EC2Backend, kind: str, native_id: str, tags: dict[str, str]) -> None:
    if tags:
        resource = _taggable(b, kind, native_id)
        b.call("create_tags", kind, Resources=[resource], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def rename(b: EC2Backend, kind: str, native_id: str, name: str | None) -> None:
    """EC2's names are ``Name`` tags: set, removed for an empty name, left alone for None."""
    if name:
        set_tags(b, kind, native_id, {"Name": name})
    elif name == "":
        remove_tags(b, kind, native_id, ["Name"])


def no_description(kind: str, description: str | None) -> None:
    """EC2 keeps no description of volumes and VPCs: a change to one is refused before anything is changed."""
    if description is not None:
        raise Unsupported(f"EC2 keeps no description of a {kind}.", kind=kind, reason="description")


def remove_tags(b: EC2Backend, kind: str, native_id: str, keys: list[str]) -> None:
    if keys:
        resource = _taggable(b, kind, native_id)
        b.call("delete_tags", kind, Resources=[resource], Tags=[{"Key": k} for k in keys])
