"""Gateway ids: computed, never stored first, so every worker on every node agrees without talking.

``gateway_id = uuid5(NAMESPACE, "<account key>/<kind>/<native id>")``. The account key (not just
the backend name) is hashed in so the same native id in two accounts never collides. Public short
forms (EC2 ``i-`` + 17 hex digits) are the gateway id's first 17 hex digits.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import threading
import time
import uuid

NAMESPACE = uuid.UUID("6f1c2a0e-4b1d-5c3e-9a7f-0c1a0d5e7a11")

SHORT_LEN = 17
_SHORT_RE = re.compile(r"^[0-9a-f]{17}$")
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


_NAMESPACE_BYTES = NAMESPACE.bytes


def computed_id(account_key: str, kind: str, native_id: str) -> str:
    """The gateway id of a backend resource, computed: ``str(uuid5(NAMESPACE, name))`` without the UUID objects
    (PERF: a third of the time). What a large listing publishes goes through here, not ``gateway_id``'s
    cache: thousands of entries made amid the listing's garbage would keep its memory from going back."""
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{account_key}/{kind}/{native_id}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@functools.lru_cache(maxsize=16384)
def gateway_id(account_key: str, kind: str, native_id: str) -> str:
    """The gateway id of a backend resource (PERF: every page names the same ones again)."""
    return computed_id(account_key, kind, native_id)


def short_form(gid: str) -> str:
    """17 hex digits identifying ``gid`` (collision odds ~2^-34 at a billion resources)."""
    return gid.replace("-", "")[:SHORT_LEN]


def is_short(text: str) -> bool:
    return bool(_SHORT_RE.match(text))


def is_gateway_id(text: str) -> bool:
    return bool(_UUID_RE.match(text))


_last_id = [0, 0]  # (milliseconds, sequence) of this process's latest sortable id
_id_lock = threading.Lock()


def sortable_id() -> str:
    """A UUIDv7 for what only the gateway owns (jobs, documents): ids sort by creation time (to the
    millisecond across processes, strictly within one), so a listing pages over a lexicographic index."""
    now = time.time_ns() // 1_000_000
    with _id_lock:
        millis, seq = _last_id
        if now > millis:
            millis, seq = now, int.from_bytes(os.urandom(2), "big") & 0x7FF
        elif seq < 0xFFF:
            seq += 1
        else:  # 4,096 ids in one millisecond: borrow the next one
            millis, seq = millis + 1, 0
        _last_id[:] = [millis, seq]
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    return str(uuid.UUID(int=(millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand))
