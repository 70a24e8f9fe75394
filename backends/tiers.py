"""Volume tiers <-> a cloud's own volume types, as the operator maps them in ``[backends.NAME.volume_types]``.

The canonical model names storage by tier (``translator.model.VolumeTier``); a cloud has volume types of
its own (Cinder's ``lvmdriver-1``, EC2's ``gp3``). Each backend holds one ``TierMap``: the operator's table
first, then what the driver knows of its cloud. A tier nobody maps gets the cloud's default type; a native
type nobody maps reads as ``standard`` (the cloud's default storage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backends import options
from translator.model import VolumeTier

#: The check of a ``volume_types`` option: tier = native type name.
CHECK = options.string_table("tier = native volume type name", keys=[str(t) for t in VolumeTier])


@dataclass(frozen=True, slots=True)
class TierMap:
    """One backend's tier -> native type table, and its reverse."""

    native_types: Mapping[VolumeTier, str] = field(default_factory=dict)
    #: native type -> tier for types the table does not name (a driver's knowledge of its cloud).
    known: Mapping[str, VolumeTier] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        option: Mapping[str, Any] | None,
        defaults: Mapping[VolumeTier, str] | None = None,
        known: Mapping[str, VolumeTier] | None = None,
    ) -> TierMap:
        """From a validated ``volume_types`` option over the driver's defaults."""
        table = {**(defaults or {}), **{VolumeTier(k): str(v) for k, v in (option or {}).items()}}
        return cls(native_types=table, known=dict(known or {}))

    def native(self, tier: VolumeTier | str) -> str | None:
        """The native type for a tier; None: let the cloud choose its default."""
        return self.native_types.get(VolumeTier(tier))

    def tier(self, native: str | None) -> VolumeTier:
        """The tier a native type stands for; the first tier mapped to it wins."""
        for tier, name in self.native_types.items():
            if name == native:
                return tier
        return self.known.get(native or "", VolumeTier.STANDARD)
