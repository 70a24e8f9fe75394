"""HTTP ``Accept`` ranking shared by the frontends that negotiate a rendering (CIMI, OCCI)."""

from __future__ import annotations

from collections.abc import Mapping

#: media ranges that accept more than one rendering
WILDCARDS = frozenset({"*/*", "application/*", "text/*"})


def best_offer(accept: str, offers: Mapping[str, str]) -> tuple[str | None, bool]:
    """The offer ``Accept`` ranks highest (quality, then the order the client listed them; q=0 refuses),
    as ``offers`` maps media types to renderings, and whether a wildcard accepts anything else."""
    best: tuple[float, int, str] | None = None
    wildcard = False
    for order, item in enumerate(accept.split(",")):
        fields = [f.strip() for f in item.split(";")]
        quality = 1.0
        for param in fields[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        kind = fields[0].lower()
        if quality <= 0:
            continue
        if kind in WILDCARDS:
            wildcard = True
            continue
        chosen = offers.get(kind)
        if chosen and (best is None or (quality, -order) > (best[0], -best[1])):
            best = (quality, order, chosen)
    return (best[2] if best else None), wildcard
