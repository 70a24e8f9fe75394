"""Which configured values are secrets, and how reprs show them: never in the clear.

Backend options merge a backend's and an account's tables, so credentials sit among harmless settings;
they are told apart by name (``password``, ``secret_access_key``, ``application_credential_secret``,
``session_token``, OpenNebula's ``session``...), at any depth.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

#: an option or field whose name contains one of these words holds a secret
SECRET_NAME = re.compile(r"password|passwd|secret|token|session|private_key|api_?key", re.IGNORECASE)
HIDDEN = "***"


def is_secret(name: str) -> bool:
    return bool(SECRET_NAME.search(name))


def redacted(value: Any) -> Any:
    """``value`` with every secret-named entry of every mapping in it replaced by ``***``."""
    if isinstance(value, Mapping):
        return {k: HIDDEN if isinstance(k, str) and is_secret(k) and v else redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redacted(v) for v in value)
    return value


def safe_repr(obj: Any) -> str:
    """A dataclass's repr with secret-named fields, and secret-named keys of the mappings it holds, hidden."""
    shown = (
        f"{f.name}={HIDDEN if is_secret(f.name) and getattr(obj, f.name) else redacted(getattr(obj, f.name))!r}"
        for f in fields(obj)
        if f.repr
    )
    return f"{type(obj).__name__}({', '.join(shown)})"
