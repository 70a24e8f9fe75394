"""Key pairs with real key material, fingerprinted exactly as EC2 does, so users can verify them.

EC2's rules: a created RSA key's fingerprint is the SHA-1 of the DER PKCS#8 private key; an imported RSA
key's is the MD5 of the DER SubjectPublicKeyInfo; ED25519 (created or imported) is the base64 SHA-256 of
the OpenSSH public key blob, as ``ssh-keygen -l`` prints it (no padding). ECDSA, which EC2 does not take,
is fingerprinted like ED25519. The private key is returned once and never stored.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from backends.simulator.storage import Rec, Sim, Tx, new_id
from translator.errors import Conflict, InvalidParameter
from translator.model import KeyPair, KeyPairMaterial

MAX_NAME = 255
RSA_BITS = 2048
MIN_IMPORTED_RSA_BITS = 1024
NO_ENCRYPTION = serialization.NoEncryption()


def colon_hex(digest: bytes) -> str:
    return ":".join(f"{b:02x}" for b in digest)


def openssh_public(key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey) -> str:
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def sha256_fingerprint(openssh: str) -> str:
    blob = base64.b64decode(openssh.split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def md5_public_fingerprint(key: rsa.RSAPublicKey) -> str:
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return colon_hex(hashlib.md5(der, usedforsecurity=False).digest())


def _generate_rsa() -> tuple[str, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, NO_ENCRYPTION)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, NO_ENCRYPTION
    ).decode()
    return (
        pem,
        openssh_public(key.public_key()),
        colon_hex(hashlib.sha1(pkcs8, usedforsecurity=False).digest()),
    )


def _generate_ed25519() -> tuple[str, str, str]:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, NO_ENCRYPTION).decode()
    public = openssh_public(key.public_key())
    return private, public, sha256_fingerprint(public)


#: key type -> generator of (private key text, OpenSSH public key, fingerprint), as EC2 returns them.
GENERATORS: dict[str, Callable[[], tuple[str, str, str]]] = {
    "rsa": _generate_rsa,
    "ed25519": _generate_ed25519,
}


def check_name(name: str) -> None:
    if not name or len(name) > MAX_NAME or not name.isascii():
        raise InvalidParameter(
            f"The key pair name '{name}' is invalid (1-{MAX_NAME} ASCII characters).",
            kind="key_pair",
            reason="name",
        )


def parse_public_key(text: str) -> tuple[str, str, str]:
    """An OpenSSH rsa/ed25519/ecdsa public key -> (key type, normalised key, fingerprint)."""
    try:
        key = serialization.load_ssh_public_key(text.strip().encode())
    except (ValueError, TypeError, IndexError, UnicodeError, UnsupportedAlgorithm):
        key = None
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_IMPORTED_RSA_BITS:
        return "rsa", openssh_public(key), md5_public_fingerprint(key)
    if isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        public = openssh_public(key)
        return (
            ("ed25519" if isinstance(key, ed25519.Ed25519PublicKey) else "ecdsa"),
            public,
            sha256_fingerprint(public),
        )
    raise InvalidParameter(
        "The public key is not an OpenSSH rsa (1024 bits or more), ed25519 or ecdsa key.",
        kind="key_pair",
        reason="format",
    )


def _store(sim: Sim, name: str, key_type: str, public: str, fingerprint: str) -> KeyPair:
    def run(tx: Tx) -> KeyPair:
        if any(k.obj.name == name for k in tx.all("key_pair")):
            raise Conflict(f"The key pair '{name}' already exists.", kind="key_pair", reason="duplicate")
        rec = Rec(
            KeyPair(
                native_id=new_id("key"),
                name=name,
                key_type=key_type,
                public_key=public,
                fingerprint=fingerprint,
                created=tx.now,
                updated=tx.now,
            )
        )
        tx.put("key_pair", rec)
        return rec.obj

    return sim.store.transact(run)


def list_key_pairs(sim: Sim) -> list[KeyPair]:
    return [r.obj for r in sim.store.all("key_pair")]


def create_key_pair(sim: Sim, name: str, key_type: str) -> KeyPairMaterial:
    check_name(name)
    generate = GENERATORS.get(key_type)
    if generate is None:
        raise InvalidParameter(
            f"The key type '{key_type}' is not one of {', '.join(GENERATORS)}.",
            kind="key_pair",
            reason="key_type",
        )
    if any(k.obj.name == name for k in sim.store.all("key_pair")):  # fail fast before the costly keygen
        raise Conflict(f"The key pair '{name}' already exists.", kind="key_pair", reason="duplicate")
    private, public, fingerprint = generate()
    return KeyPairMaterial(key_pair=_store(sim, name, key_type, public, fingerprint), private_key=private)


def import_key_pair(sim: Sim, name: str, public_key: str) -> KeyPair:
    check_name(name)
    key_type, public, fingerprint = parse_public_key(public_key)
    return _store(sim, name, key_type, public, fingerprint)


def delete_key_pair(sim: Sim, native_id: str) -> None:
    def run(tx: Tx) -> None:
        tx.require("key_pair", native_id)
        tx.delete("key_pair", native_id)

    sim.store.transact(run)
