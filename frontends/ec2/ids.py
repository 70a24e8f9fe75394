"""EC2's public ids (``i-`` + 17 hex digits, ...) <-> gateway ids, with EC2's Malformed/NotFound codes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from frontends.ec2.errors import EC2Error
from translator.ids import short_form
from translator.translator import Translator


@dataclass(frozen=True, slots=True)
class IdForm:
    prefix: str
    malformed: str
    not_found: str
    noun: str  # how EC2's messages name one: "The <noun> ID '...' does not exist"


#: canonical kind -> how EC2 names it. One table for every action.
ID_FORMS: dict[str, IdForm] = {
    "machine": IdForm("i-", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", "instance"),
    "image": IdForm("ami-", "InvalidAMIID.Malformed", "InvalidAMIID.NotFound", "image"),
    "volume": IdForm("vol-", "InvalidVolumeID.Malformed", "InvalidVolume.NotFound", "volume"),
    "snapshot": IdForm("snap-", "InvalidSnapshotID.Malformed", "InvalidSnapshot.NotFound", "snapshot"),
    "security_group": IdForm("sg-", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", "security group"),
    "address": IdForm("eipalloc-", "InvalidAllocationID.Malformed", "InvalidAllocationID.NotFound", "allocation"),
    "network": IdForm("vpc-", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", "vpc"),
    "subnet": IdForm("subnet-", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", "subnet"),
    "key_pair": IdForm("key-", "InvalidKeyPair.Malformed", "InvalidKeyPair.NotFound", "key pair"),
    "association": IdForm(
        "eipassoc-", "InvalidAssociationID.Malformed", "InvalidAssociationID.NotFound", "association"
    ),
    "network_interface": IdForm(
        "eni-", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", "networkInterface"
    ),
    "reservation": IdForm("r-", "InvalidReservationID.Malformed", "InvalidReservationID.NotFound", "reservation"),
}

_SHORT = re.compile(r"^[0-9a-f]{17}$")


def public_id(kind: str, gid: str | None) -> str | None:
    """The EC2 id of a gateway id (None stays None)."""
    return ID_FORMS[kind].prefix + short_form(gid) if gid else None


def resolve_ids(translator: Translator, kind: str, public: list[str]) -> list[str]:
    """Gateway ids for EC2 ids; Malformed for a bad shape, NotFound for an id never seen."""
    form = ID_FORMS[kind]
    shorts = []
    for pid in public:
        short = pid[len(form.prefix) :] if pid.startswith(form.prefix) else ""
        if not _SHORT.match(short):
            raise EC2Error(form.malformed, f'Invalid id: "{pid}"')
        shorts.append(short)
    gids = translator.expand_short(shorts)
    missing = [pid for pid, gid in zip(public, gids, strict=True) if gid is None]
    if missing:
        raise EC2Error(form.not_found, f"The {form.noun} ID '{', '.join(missing)}' does not exist")
    return [g for g in gids if g is not None]
