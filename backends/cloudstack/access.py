"""SSH key pairs and public IP addresses (static NAT) of a CloudStack account.

Key pairs are named, not numbered, in CloudStack: the name is the native id. CloudStack lists a key pair's
name and fingerprint only, so the type an import or create saw is remembered (in Redis, per account) to list
it again. A public address is ``associateIpAddress`` on the account's network in its first zone; it reaches
a machine by static NAT. Source-NAT addresses of networks are the networks' own and are not listed.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from backends.cloudstack import catalog, tags
from translator.errors import Conflict, InvalidParameter, NotFound, Unsupported
from translator.model import Address, KeyPair, KeyPairMaterial

if TYPE_CHECKING:
    from backends.cloudstack.backend import CloudStackBackend

#: OpenSSH public key type -> canonical key type.
KEY_TYPES: Mapping[str, str] = {
    "ssh-rsa": "rsa",
    "ssh-ed25519": "ed25519",
    "ecdsa-sha2-nistp256": "ecdsa",
    "ecdsa-sha2-nistp384": "ecdsa",
    "ecdsa-sha2-nistp521": "ecdsa",
    "ssh-dss": "dsa",
}


# -- key pairs ----------------------------------------------------------------------------------------------


def _types_key(b: CloudStackBackend) -> str:
    return f"cg:cloudstack:{{{b.account.key}}}:key_types"


def to_key_pair(pair: Mapping[str, Any], key_type: str, public_key: str = "") -> KeyPair:
    return KeyPair(
        native_id=pair["name"],
        name=pair["name"],
        fingerprint=pair.get("fingerprint", ""),
        public_key=pair.get("publickey") or public_key,
        key_type=key_type,
        created=catalog.parse_time(pair.get("created")),
    )


def _pairs(b: CloudStackBackend, name: str | None = None) -> list[dict[str, Any]]:
    found = b.cloud.listing("listSSHKeyPairs", "sshkeypair", {"name": name}, kind="key_pair", what="list keys")
    return [p for p in found if name is None or p.get("name") == name]


def _types(b: CloudStackBackend) -> dict[str, str]:
    def text(value: str | bytes) -> str:
        return value.decode() if isinstance(value, bytes) else value

    return {text(k): text(v) for k, v in b.services.redis.hgetall(_types_key(b)).items()}


def list_key_pairs(b: CloudStackBackend) -> list[KeyPair]:
    types = _types(b)
    return [to_key_pair(p, types.get(p["name"], "rsa")) for p in _pairs(b)]


def get_key_pairs(b: CloudStackBackend, native_ids: list[str]) -> list[KeyPair]:
    wanted = set(native_ids)
    return [k for k in list_key_pairs(b) if k.native_id in wanted]


def _refuse_duplicate(b: CloudStackBackend, name: str) -> None:
    if _pairs(b, name):
        raise Conflict(f"The key pair '{name}' already exists.", kind="key_pair", reason="duplicate")


def key_type_of(public_key: str) -> str:
    """The canonical type of an OpenSSH public key line; InvalidParameter(reason="format") when it is not one."""
    parts = public_key.split()
    kind = KEY_TYPES.get(parts[0]) if parts else None
    try:
        blob = base64.b64decode(parts[1], validate=True) if kind and len(parts) > 1 else b""
    except (binascii.Error, ValueError):
        blob = b""
    if not kind or not blob.startswith(len(parts[0]).to_bytes(4, "big") + parts[0].encode()):
        raise InvalidParameter("The public key is not an OpenSSH public key.", kind="key_pair", reason="format")
    return kind


def create_key_pair(b: CloudStackBackend, name: str, key_type: str) -> KeyPairMaterial:
    """createSSHKeyPair: CloudStack makes RSA keys only."""
    if key_type != "rsa":
        raise Unsupported("CloudStack makes RSA key pairs only.", kind="key_pair", reason="key_type")
    _refuse_duplicate(b, name)
    made = b.cloud.call("createSSHKeyPair", {"name": name}, kind="key_pair", what="create key")["keypair"]
    b.services.redis.hset(_types_key(b), name, "rsa")
    return KeyPairMaterial(key_pair=to_key_pair(made, "rsa"), private_key=made.get("privatekey", ""))


def import_key_pair(b: CloudStackBackend, name: str, public_key: str) -> KeyPair:
    key_type = key_type_of(public_key)
    _refuse_duplicate(b, name)
    params = {"name": name, "publickey": public_key.strip()}
    made = b.cloud.call("registerSSHKeyPair", params, kind="key_pair", what="import key")["keypair"]
    b.services.redis.hset(_types_key(b), name, key_type)
    return to_key_pair(made, key_type, public_key.strip())


def delete_key_pair(b: CloudStackBackend, native_id: str) -> None:
    if not _pairs(b, native_id):
        raise NotFound(f"The key pair '{native_id}' does not exist.", kind="key_pair")
    b.cloud.call("deleteSSHKeyPair", {"name": native_id}, kind="key_pair", what="delete key")
    b.services.redis.hdel(_types_key(b), native_id)


# -- public addresses ---------------------------------------------------------------------------------------


def to_address(ip: Mapping[str, Any]) -> Address:
    return Address(
        native_id=ip["id"],
        public_ip=ip.get("ipaddress", ""),
        machine_id=ip.get("virtualmachineid") if ip.get("isstaticnat") else None,
        private_ip=ip.get("vmipaddress") if ip.get("isstaticnat") else None,
        created=catalog.parse_time(ip.get("allocated")),
        tags=tags.user_tags(ip),
    )


def _ips(b: CloudStackBackend, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    found = b.cloud.listing("listPublicIpAddresses", "publicipaddress", params, kind="address", what="list IPs")
    return [i for i in found if not i.get("issourcenat") and not i.get("issystem") and i.get("state") != "Releasing"]


def list_addresses(b: CloudStackBackend) -> list[Address]:
    return [to_address(i) for i in _ips(b)]


def get_ip(b: CloudStackBackend, native_id: str) -> dict[str, Any] | None:
    try:
        return next((i for i in _ips(b, {"id": native_id}) if i["id"] == native_id), None)
    except (NotFound, InvalidParameter):
        return None


def need_ip(b: CloudStackBackend, native_id: str) -> dict[str, Any]:
    ip = get_ip(b, native_id)
    if ip is None:
        raise NotFound(f"The address '{native_id}' does not exist.", kind="address")
    return ip


def get_addresses(b: CloudStackBackend, native_ids: list[str]) -> list[Address]:
    found = (get_ip(b, native_id) for native_id in dict.fromkeys(native_ids))
    return [to_address(i) for i in found if i is not None]


def allocate_address(b: CloudStackBackend) -> Address:
    """associateIpAddress in the account's first zone (on its default network there), waited for."""
    zone = catalog.zone_id(b, None)
    answer = b.cloud.run_answer("associateIpAddress", {"zoneid": zone}, kind="address", what="allocate", target=zone)
    return to_address(need_ip(b, answer["id"]))


def associate_address(b: CloudStackBackend, native_id: str, vm_id: str) -> Address:
    """Static NAT to the VM; an address on another VM moves (as EC2 reassociates)."""
    from backends.cloudstack.machines import need_vm

    ip = need_ip(b, native_id)
    need_vm(b, vm_id)
    if ip.get("isstaticnat") and ip.get("virtualmachineid") == vm_id:
        return to_address(ip)
    if ip.get("isstaticnat"):
        b.cloud.run("disableStaticNat", {"ipaddressid": native_id}, kind="address", what="move address")
    params = {"ipaddressid": native_id, "virtualmachineid": vm_id}
    b.cloud.call("enableStaticNat", params, kind="address", what="associate address")
    return to_address(need_ip(b, native_id))


def disassociate_address(b: CloudStackBackend, native_id: str) -> Address:
    ip = need_ip(b, native_id)
    if ip.get("isstaticnat"):
        params = {"ipaddressid": native_id}
        b.cloud.run("disableStaticNat", params, kind="address", what="disassociate address", target=native_id)
    return to_address(need_ip(b, native_id))


def release_address(b: CloudStackBackend, native_id: str) -> None:
    if b.cloud.resume("disassociateIpAddress", native_id, kind="address", what="release address"):
        return
    need_ip(b, native_id)
    params = {"id": native_id}
    b.cloud.run("disassociateIpAddress", params, kind="address", what="release address", target=native_id)
