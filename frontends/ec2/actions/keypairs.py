"""Key pairs: CreateKeyPair, ImportKeyPair, DescribeKeyPairs, DeleteKeyPair (named by KeyName)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from frontends.ec2.actions.base import Call, Handler, reader, tag_list, tags_from_specs, when, writer
from frontends.ec2.errors import EC2Error
from frontends.ec2.ids import public_id
from translator.model import KeyPair


def _key_pair(kp: KeyPair) -> dict[str, Any]:
    return {
        "KeyPairId": public_id("key_pair", kp.id),
        "KeyName": kp.name,
        "KeyFingerprint": kp.fingerprint,
        "KeyType": kp.key_type,
        "PublicKey": kp.public_key,
        "CreateTime": when(kp.created),
        "Tags": tag_list(kp) or None,
    }


def _by_name(call: Call) -> dict[str, KeyPair]:
    return {k.name: k for k in call.translator.list(call.principal, "key_pair", call.region)}


def _tag(call: Call, kp: KeyPair, args: dict[str, Any]) -> None:
    tags = tags_from_specs(args.get("TagSpecifications"), "key-pair")
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
    pairs = _by_name(call)
    names = args.get("KeyNames")
    if names:
        missing = [n for n in names if n not in pairs]
        if missing:
            raise EC2Error("InvalidKeyPair.NotFound", f"The key pair '{missing[0]}' does not exist")
        selected = [pairs[n] for n in names]
    else:
        selected = sorted(pairs.values(), key=lambda k: k.name)
    return {"KeyPairs": [_key_pair(k) for k in selected]}


def delete_key_pair(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    name = args.get("KeyName")
    found = _by_name(call).get(name or "")
    if found is None:
        if not name:
            raise EC2Error("MissingParameter", "The request must contain the parameter KeyName")
        return {"Return": True}  # EC2 deletes a missing key pair without complaint
    call.translator.delete_key_pair(call.principal, found.id)
    return {"Return": True, "KeyPairId": public_id("key_pair", found.id)}


ACTIONS: dict[str, Handler] = {
    "CreateKeyPair": writer(create_key_pair),
    "ImportKeyPair": writer(import_key_pair),
    "DescribeKeyPairs": reader(describe_key_pairs),
    "DeleteKeyPair": writer(delete_key_pair),
}
