"""Canonical -> EC2, for the requests that carry structure: rules, CIDRs, user data, names, key material.

Each check here answers as EC2 would, before EC2 is asked, so every EC2-compatible cloud (including those
that check less, like moto) gives the same canonical error.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from translator.errors import InvalidParameter
from translator.model import RULE_PROTOCOLS, Rule


def _port_range(rule: Rule, low: int, high: int, ordered: bool) -> None:
    bad = rule.from_port is None or rule.to_port is None
    bad = bad or not (low <= rule.from_port <= high and low <= rule.to_port <= high)  # type: ignore[operator]
    if bad or (ordered and rule.from_port > rule.to_port):  # type: ignore[operator]
        raise InvalidParameter(
            f"The port range {rule.from_port}-{rule.to_port} is invalid for {rule.protocol} ({low}..{high}).",
            kind="rule",
            reason="port",
        )


#: canonical protocol -> its port check (tcp/udp ranges, icmp type and code with -1 for any).
PORT_CHECKS: Mapping[str, Callable[[Rule], None]] = {
    "tcp": lambda r: _port_range(r, 0, 65535, True),
    "udp": lambda r: _port_range(r, 0, 65535, True),
    "icmp": lambda r: _port_range(r, -1, 255, False),
}


def permission(rule: Rule, *, with_description: bool = True) -> dict[str, Any]:
    """One EC2 IpPermission for one canonical rule, checked first so the answer is the same on every cloud."""
    protocol = RULE_PROTOCOLS.get(str(rule.protocol).lower(), str(rule.protocol))
    check = PORT_CHECKS.get(protocol)
    if check:
        check(rule)
    out: dict[str, Any] = {"IpProtocol": protocol}
    if protocol != "-1" and rule.from_port is not None:
        out["FromPort"], out["ToPort"] = rule.from_port, rule.to_port
    described = {"Description": rule.description} if with_description and rule.description else {}
    if rule.group_id:
        out["UserIdGroupPairs"] = [{"GroupId": rule.group_id, **described}]
    elif rule.cidr:
        try:
            net = ipaddress.ip_network(rule.cidr, strict=False)
        except ValueError:
            raise InvalidParameter(f"The CIDR '{rule.cidr}' is invalid.", kind="rule", reason="cidr") from None
        if net.version == 6:
            out["Ipv6Ranges"] = [{"CidrIpv6": str(net), **described}]
        else:
            out["IpRanges"] = [{"CidrIp": str(net), **described}]
    else:
        raise InvalidParameter("A rule needs a CIDR or a source group.", kind="rule", reason="missing")
    return out


def check_cidr(cidr: str, kind: str) -> str:
    """A CIDR EC2 would take, or InvalidParameter(reason="cidr") before asking it."""
    try:
        return str(ipaddress.ip_network(cidr, strict=True))
    except ValueError:
        raise InvalidParameter(f"The CIDR '{cidr}' is invalid.", kind=kind, reason="cidr") from None


def user_data_blob(user_data: str) -> bytes:
    """Canonical user data is base64 text (as EC2's Query API carries it); some calls want the bytes."""
    try:
        return base64.b64decode(user_data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter("User data must be base64-encoded.", kind="machine", reason="user_data") from None


def name_tags(resource_type: str, name: str, tags: tuple[tuple[str, str], ...] = ()) -> list[dict[str, Any]]:
    """TagSpecifications carrying the canonical name as EC2's ``Name`` tag, and any launch tags."""
    pairs = dict(tags)
    if name:
        pairs.setdefault("Name", name)
    if not pairs:
        return []
    return [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in pairs.items()]}]


def is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def public_half(private_key: str) -> str:
    """The OpenSSH public key of a private key EC2 generated (CreateKeyPair returns only the private half)."""
    data = private_key.encode()
    loaders = (serialization.load_pem_private_key, serialization.load_ssh_private_key)
    for load in loaders:
        try:
            key = load(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        public = key.public_key()
        return public.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return ""
