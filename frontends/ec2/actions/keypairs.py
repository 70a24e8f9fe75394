"""Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair (named by KeyName)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from frontends.ec2.actions.base import Call, Handler, describer, pick, selected, tag_list, when, writer
from frontends.ec2.actions.tags import spec_tags
from frontends.ec2.errors import EC2Error
from frontends.ec2.filters import apply, table
from frontends.ec2.ids import public_id, resolve_ids
from translator.model import KeyPair

#: DescribeKeyPairs filters (EC2 API reference); the action has no pagination.
KEY_PAIR_FILTERS = table(
    {"key-pair-id": "KeyPairId", "key-name": "KeyName", "fingerprint": "KeyFingerprint", "key-type": "KeyType"}
)


def _key_pair(kp: KeyPair, include_public_key: bool) -> dict[str, Any]:
    return {
        "KeyPairId": public_id("key_pair", kp.id),
        "KeyName": kp.name,
        "KeyFingerprint": kp.fingerprint,
        "KeyType": kp.key_type,
        "PublicKey": kp.public_key if include_public_key else None,
        "CreateTime": when(kp.created),
        "Tags": tag_list(kp) or None,
    }


def _by_name(call: Call) -> dict[str, KeyPair]:
    return {k.name: k for k in call.translator.list(call.principal, "key_pair", call.region)}


def _tag(call: Call, kp: KeyPair, args: dict[str, Any]) -> None:
    tags = spec_tags(args, "key-pair")
    if tags:
        call.translator.update_tags(call.principal, "key_pair", [kp.id], dict(tags))
        kp.tags = dict(tags)


def create_key_pair(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    key_type = args.get("KeyType") or "rsa"
    if key_type not in ("rsa", "ed25519"):
        raise EC2Error("InvalidParameterValue", f"Invalid value '{key_type}' for KeyType.")
    material = call.translator.create_key_pair(call.principal, args["KeyName"], key_type, call.region)
    kp = material.key_pair
    _tag(call, kp, args)
    return {
        "KeyName": kp.name,
        "KeyFingerprint": kp.fingerprint,
        "KeyMaterial": material.private_key,
        "KeyPairId": public_id("key_pair", kp.id),
        "Tags": tag_list(kp) or None,
    }


def import_key_pair(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    raw = args["PublicKeyMaterial"]
    # botocore base64-encodes the blob on the wire; tools that send the key text itself also exist.
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else base64.b64decode(raw).decode("utf-8")
    except (UnicodeDecodeError, binascii.Error):
        raise EC2Error("InvalidKeyPair.Format", "Key is not in valid OpenSSH public key format") from None
    kp = call.translator.import_key_pair(call.principal, args["KeyName"], text.strip(), call.region)
    _tag(call, kp, args)
    return {
        "KeyName": kp.name,
        "KeyFingerprint": kp.fingerprint,
        "KeyPairId": public_id("key_pair", kp.id),
        "Tags": tag_list(kp) or None,
    }


def describe_key_pairs(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    pairs = list(_by_name(call).values())
    names = args.get("KeyNames")
    if names:
        pairs = pick(pairs, names, lambda k: k.name, "InvalidKeyPair.NotFound", "key pair")
    pairs = selected(call, "key_pair", args.get("KeyPairIds"), pairs)
    items = [_key_pair(k, bool(args.get("IncludePublicKey"))) for k in pairs]
    items = apply(items, args.get("Filters"), KEY_PAIR_FILTERS)
    return {"KeyPairs": sorted(items, key=lambda k: k["KeyName"])}


def delete_key_pair(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    name, key_id = args.get("KeyName"), args.get("KeyPairId")
    if not name and not key_id:
        raise EC2Error("MissingParameter", "The request must contain the parameter KeyName or KeyPairId")
    pairs = _by_name(call)
    if key_id:
        (gid,) = resolve_ids(call.translator, "key_pair", [key_id])
        found = next((k for k in pairs.values() if k.id == gid), None)
    else:
        found = pairs.get(name or "")
    if found is None:
        return {"Return": True}  # EC2 deletes a missing key pair without complaint
    call.translator.delete_key_pair(call.principal, found.id)
    return {"Return": True, "KeyPairId": public_id("key_pair", found.id)}


ACTIONS: dict[str, Handler] = {
    "CreateKeyPair": writer(create_key_pair),
    "ImportKeyPair": writer(import_key_pair),
    "DescribeKeyPairs": describer(describe_key_pairs),
    "DeleteKeyPair": writer(delete_key_pair),
}
