"""Key pairs, known by name (the one id every EC2-compatible cloud takes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends.ec2 import mapping, to_ec2
from translator.model import KeyPair, KeyPairMaterial

if TYPE_CHECKING:
    from backends.ec2.backend import EC2Backend


def list_key_pairs(b: EC2Backend) -> list[KeyPair]:
    answer = b.call("describe_key_pairs", "key_pair", IncludePublicKey=True)
    return [mapping.key_pair(k) for k in answer.get("KeyPairs") or ()]


def create_key_pair(b: EC2Backend, name: str, key_type: str) -> KeyPairMaterial:
    # KeyType only when not EC2's default: EC2-compatible clouds older than ED25519 keys do not take it.
    typed = {"KeyType": key_type} if key_type != "rsa" else {}
    made = b.call("create_key_pair", "key_pair", KeyName=name, **typed)
    private = made.get("KeyMaterial") or ""
    made["PublicKey"] = to_ec2.public_half(private)
    made.setdefault("KeyType", key_type)
    return KeyPairMaterial(key_pair=mapping.key_pair(made), private_key=private)


def import_key_pair(b: EC2Backend, name: str, public_key: str) -> KeyPair:
    made = b.call("import_key_pair", "key_pair", KeyName=name, PublicKeyMaterial=public_key.encode())
    made["PublicKey"] = public_key
    return mapping.key_pair(made)


def delete_key_pair(b: EC2Backend, native_id: str) -> None:
    # EC2's DeleteKeyPair succeeds for a name that does not exist; the canonical answer is NotFound.
    b.call("describe_key_pairs", "key_pair", KeyNames=[native_id])
    b.call("delete_key_pair", "key_pair", KeyName=native_id)
