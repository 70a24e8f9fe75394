"""Bounded waits for OpenStack to catch up with a call it answered before finishing (``delete_wait``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from translator.errors import NotFound

POLL = 0.2  # seconds between two looks


def settle(seconds: float, done: Callable[[], bool]) -> None:
    """Look with ``done()`` until it holds or ``seconds`` have passed (not at all when ``seconds`` is 0)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(POLL)


def gone(get: Callable[[], object]) -> Callable[[], bool]:
    """A ``done`` for ``settle``: the resource ``get`` reads is gone (``NotFound``)."""

    def check() -> bool:
        try:
            get()
        except NotFound:
            return True
        return False

    return check
