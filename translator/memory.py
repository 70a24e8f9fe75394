"""Giving memory back to the system after a large transient allocation: a whole listing read at once.

CPython frees the listing's objects once the request is over, but glibc's allocator keeps the freed heap for
reuse, so a worker that once refreshed a listing of 10,000 machines stayed about 80 MB larger than it needs.
``malloc_trim(0)`` hands those pages back, after a collection (some of the garbage is in reference cycles). It
is asked for only after a large listing (``note_listing``) and done once the request or background refresh that
made the garbage is over (``release``), so an ordinary request pays one flag test. Where the C library has no
``malloc_trim`` (not glibc), only the collection is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
from collections.abc import Callable

#: Resources in one listing from which its refresh asks for a trim afterwards.
LARGE_LISTING = 2000

_wanted = threading.Event()


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_TRIM = _malloc_trim()


def note_listing(size: int) -> None:
    """A listing of ``size`` resources was just read whole: trim once its objects are freed."""
    if size >= LARGE_LISTING:
        _wanted.set()


def release() -> bool:
    """Hand freed heap back to the system if a large listing asked for it since the last time; whether it did."""
    if not _wanted.is_set():
        return False
    _wanted.clear()
    gc.collect()  # the listing's objects in reference cycles too, before the heap is trimmed
    if _TRIM is not None:
        _TRIM(0)
    return True
