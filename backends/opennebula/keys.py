"""Key pairs as the OpenNebula user's own SSH keys, kept in its user template.

oned gives a user one ``SSH_PUBLIC_KEY`` attribute (several keys, one a line), which templates' contexts take
as ``$USER[SSH_PUBLIC_KEY]``; names are the gateway's, so each key is also kept under its name
(``CLOUDGATE_KEY_<hex of the name>``: attribute names are upper-cased letters, digits and ``_``). Both are rewritten
together on every change; a machine launched with a key gets it in its context's ``SSH_PUBLIC_KEY``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from backends.opennebula.templates import single, to_xml
from translator.errors import Conflict, InvalidParameter, NotFound
from translator.model import KeyPair

if TYPE_CHECKING:
    from backends.opennebula.backend import OpenNebulaBackend

PREFIX = "CLOUDGATE_KEY_"
SSH_KEY = "SSH_PUBLIC_KEY"
KEY_TYPES: dict[type, str] = {
    rsa.RSAPublicKey: "rsa",
    ed25519.Ed25519PublicKey: "ed25519",
    ec.EllipticCurvePublicKey: "ecdsa",
}
REPLACE = 0  # one.user.update: replace the whole user template


def _attribute(name: str) -> str:
    return PREFIX + name.encode().hex().upper()


def _name(attribute: str) -> str | None:
    try:
        return bytes.fromhex(attribute[len(PREFIX) :]).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def parse_key(public_key: str) -> tuple[str, str]:
    """(key type, ``type base64`` without its comment) of an OpenSSH public key; InvalidParameter otherwise."""
    parts = public_key.strip().split()
    try:
        key = serialization.load_ssh_public_key(" ".join(parts[:2]).encode())
    except (ValueError, IndexError, binascii.Error, TypeError) as exc:
        raise InvalidParameter(
            f"The key is not an OpenSSH public key: {exc}", kind="key_pair", reason="format"
        ) from None
    kind = next((k for cls, k in KEY_TYPES.items() if isinstance(key, cls)), None)
    if kind is None:
        raise InvalidParameter("The key's type is not rsa, ed25519 or ecdsa.", kind="key_pair", reason="format")
    return kind, " ".join(parts[:2])


def fingerprint(openssh: str) -> str:
    """The SHA-256 fingerprint ``ssh-keygen -l`` shows (without its ``SHA256:`` prefix)."""
    blob = base64.b64decode(openssh.split()[1])
    return base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _user(b: OpenNebulaBackend) -> Any:
    return b.one.call("user.info", -1, False, kind="key_pair", what="read user")


def _pairs(template: Any) -> dict[str, str]:
    """name -> public key, from a user template."""
    out = {}
    for attribute in template or {}:
        name = _name(attribute) if attribute.startswith(PREFIX) else None
        if name is not None:
            out[name] = single(template, attribute)
    return out


def _key_pair(name: str, public_key: str) -> KeyPair:
    kind, _ = parse_key(public_key)
    return KeyPair(native_id=name, name=name, fingerprint=fingerprint(public_key), public_key=public_key, key_type=kind)


def list_key_pairs(b: OpenNebulaBackend) -> list[KeyPair]:
    return [_key_pair(name, key) for name, key in _pairs(_user(b).TEMPLATE).items()]


def find_key(b: OpenNebulaBackend, name: str) -> str:
    """The public key of a key pair; NotFound."""
    key = _pairs(_user(b).TEMPLATE).get(name)
    if key is None:
        raise NotFound(f"The key pair '{name}' does not exist.", kind="key_pair")
    return key


def _write(b: OpenNebulaBackend, user: Any, pairs: dict[str, str]) -> None:
    """The whole user template back, with the named keys and SSH_PUBLIC_KEY rebuilt from them."""
    kept = {k: v for k, v in (user.TEMPLATE or {}).items() if not k.startswith(PREFIX) and k != SSH_KEY}
    named = {_attribute(name): key for name, key in pairs.items()}
    ssh = {SSH_KEY: "\n".join(pairs.values())} if pairs else {}
    b.one.call("user.update", user.ID, to_xml(kept | named | ssh), REPLACE, kind="key_pair", what="write keys")


def import_key_pair(b: OpenNebulaBackend, name: str, public_key: str) -> KeyPair:
    _, key = parse_key(public_key)
    user = _user(b)
    pairs = _pairs(user.TEMPLATE)
    if name in pairs:
        raise Conflict(f"The key pair '{name}' already exists.", kind="key_pair", reason="duplicate")
    _write(b, user, pairs | {name: key})
    return _key_pair(name, key)


def delete_key_pair(b: OpenNebulaBackend, name: str) -> None:
    user = _user(b)
    pairs = _pairs(user.TEMPLATE)
    if name not in pairs:
        raise NotFound(f"The key pair '{name}' does not exist.", kind="key_pair")
    del pairs[name]
    _write(b, user, pairs)
