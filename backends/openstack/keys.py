"""Nova key pairs through libcloud; a created key pair is generated here and only its public half imported.

From compute microversion 2.92 Nova no longer generates key pairs, and the private key should not cross
one more service anyway: we generate it (RSA 2048 or Ed25519, EC2's two types), import the public key,
and hand the private key back once. Fingerprints are Nova's (MD5 of the public key blob), the same for
created and imported keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from libcloud.compute.base import KeyPair as LibcloudKeyPair

from translator.errors import Conflict, InvalidParameter
from translator.model import KeyPair, KeyPairMaterial

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend
    from backends.openstack.session import ComputeDriver

#: OpenSSH public key prefix -> EC2 key type.
KEY_TYPES: Mapping[str, str] = {
    "ssh-rsa": "rsa",
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
}
NO_ENCRYPTION = serialization.NoEncryption()


def _rsa() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, NO_ENCRYPTION
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private.decode(), public.decode()


def _ed25519() -> tuple[str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, NO_ENCRYPTION)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private.decode(), public.decode()


#: EC2 key type -> generator of (private key text, OpenSSH public key).
GENERATORS: Mapping[str, Callable[[], tuple[str, str]]] = {"rsa": _rsa, "ed25519": _ed25519}


def key_type(public_key: str) -> str:
    return KEY_TYPES.get(public_key.split(" ", 1)[0], "rsa")


def _to_key_pair(raw: LibcloudKeyPair) -> KeyPair:
    return KeyPair(
        native_id=raw.name,
        name=raw.name,
        fingerprint=raw.fingerprint or "",
        public_key=raw.public_key or "",
        key_type=key_type(raw.public_key or ""),
    )


def list_key_pairs(b: OpenStackBackend) -> list[KeyPair]:
    """The user's key pairs (Nova keeps key pairs per user, not per project)."""
    return [_to_key_pair(k) for k in b.cloud.nova(lambda d: d.list_key_pairs(), kind="key_pair", what="list keys")]


def _check_public_key(public_key: str) -> str:
    """The key as Nova should get it: one line, OpenSSH format, parseable (else EC2's InvalidKeyPair.Format)."""
    text = public_key.strip()
    try:
        serialization.load_ssh_public_key(text.encode())
    except (ValueError, TypeError, IndexError, UnsupportedAlgorithm) as exc:
        raise InvalidParameter(
            f"The key pair is not a valid OpenSSH public key ({exc}).", kind="key_pair", reason="format"
        ) from None
    return text


def _import(b: OpenStackBackend, name: str, public_key: str) -> KeyPair:
    def call(d: ComputeDriver) -> LibcloudKeyPair:
        return d.import_key_pair_from_string(name, public_key)

    try:
        return _to_key_pair(b.cloud.nova(call, kind="key_pair", what="import key pair"))
    except Conflict as exc:
        raise Conflict(f"The key pair '{name}' already exists.", kind="key_pair", reason="duplicate") from exc


def import_key_pair(b: OpenStackBackend, name: str, public_key: str) -> KeyPair:
    return _import(b, name, _check_public_key(public_key))


def create_key_pair(b: OpenStackBackend, name: str, kind: str) -> KeyPairMaterial:
    generate = GENERATORS.get(kind)
    if generate is None:
        raise InvalidParameter(
            f"The key type '{kind}' is not one of {', '.join(GENERATORS)}.", kind="key_pair", reason="type"
        )
    private, public = generate()
    return KeyPairMaterial(key_pair=_import(b, name, public), private_key=private)


def delete_key_pair(b: OpenStackBackend, native_id: str) -> None:
    def call(d: ComputeDriver) -> bool:
        return d.delete_key_pair(LibcloudKeyPair(native_id, None, None, d))

    b.cloud.nova(call, kind="key_pair", what="delete key pair")
