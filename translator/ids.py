"""Gateway ids: computed, never stored first, so every worker on every node agrees without talking.

``gateway_id = uuid5(NAMESPACE, "<account key>/<kind>/<native id>")``. The account key (not just
the backend name) is hashed in so the same native id in two accounts never collides. Public short
forms (EC2 ``i-`` + 17 hex digits) are the gateway id's first 17 hex digits.
"""

from __future__ import annotations

import re
import uuid

NAMESPACE = uuid.UUID("6f1c2a0e-4b1d-5c3e-9a7f-0c1a0d5e7a11")

SHORT_LEN = 17
_SHORT_RE = re.compile(r"^[0-9a-f]{17}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def gateway_id(account_key: str, kind: str, native_id: str) -> str:
    """The gateway id of a backend resource."""
    return str(uuid.uuid5(NAMESPACE, f"{account_key}/{kind}/{native_id}"))


def short_form(gid: str) -> str:
    """17 hex digits identifying ``gid`` (collision odds ~2^-34 at a billion resources)."""
    return gid.replace("-", "")[:SHORT_LEN]


def is_short(text: str) -> bool:
    return bool(_SHORT_RE.match(text))


def is_gateway_id(text: str) -> bool:
    return bool(_UUID_RE.match(text))
