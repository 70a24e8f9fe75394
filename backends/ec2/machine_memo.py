"""Machines mapped once per Describe answer: an answer read before is not mapped, nor fingerprinted, again.

PERF: a listing polled from the cloud mostly returns what it returned last time. ``answer_memo`` already spares
reading such an answer again, and hands back the very reservation dicts it read the first time; mapping them to
canonical machines still cost 1.2 ms of CPU for 50 instances (moto's), and the read cache's fingerprint of the
result, to tell that nothing changed, 0.7 ms more. Here the machines mapped from one set of reservations are kept
pickled, with the fingerprint of that pickle. The same reservations (the same objects, checked by identity),
mapped by the same backend with the same instance-type catalogue, give a fresh copy of the same machines (0.3 ms
for 50: the translator stamps gateway ids and merges tags into what it is given, so each caller needs its own) and
that fingerprint, so the read cache need not pickle them (``read_cache.Fingerprinted``). A revalidated listing of
50 on moto costs the worker 3.6 ms of CPU where it cost 4.5.

Mapping is a function of the instance items, the backend's zone map (fixed for its life) and the catalogue, so
nothing else can make a kept result stale. One memo serves a worker's every EC2 backend, as one answer memo does:
it keeps alive the reservations it was given, so it holds about as many machines as the answer memo holds answers
(2 MiB of answers: some 700 instances), and what it keeps adds no more than that. A listing of more than ``MOST``
machines is neither kept nor fingerprinted here (the read cache fingerprints it if it must): the answer memo keeps
no answer that large, so its reservations are never the same objects twice, and pickling them would be wasted.
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from translator.model import Machine
from translator.read_cache import Fingerprinted

#: machines of one listing kept at most (about 120 KB pickled; the answer memo keeps answers of up to 512 KiB, some
#: 170 instances)
MOST = 200


@dataclass(frozen=True, slots=True)
class _Kept:
    #: the reservations mapped (kept alive, so their ids name them and no other objects)
    reservations: tuple[Any, ...]
    #: what they were mapped with (the backend, its catalogue), compared by identity
    inputs: tuple[Any, ...]
    machines: bytes
    fingerprint: bytes


class MachineMemo:
    """Machines by the reservations they were mapped from, least recently used forgotten first once the kept pickles
    pass ``limit_bytes`` (thread-safe)."""

    def __init__(self, limit_bytes: int = 512 << 10) -> None:
        self.limit_bytes = limit_bytes
        self._kept: OrderedDict[tuple[int, ...], _Kept] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def machines(
        self, reservations: Sequence[Any], inputs: tuple[Any, ...], map_all: Callable[[], list[Machine]]
    ) -> list[Machine]:
        """``map_all()`` (the machines of ``reservations``, mapped with ``inputs``), or a copy of what it returned the
        last time it was called for the same objects; either as a ``Fingerprinted`` list."""
        key = (*map(id, inputs), *map(id, reservations))
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None:
                self._kept.move_to_end(key)
        if kept is not None and _same(kept.inputs, inputs) and _same(kept.reservations, reservations):
            return Fingerprinted(pickle.loads(kept.machines), kept.fingerprint)
        machines = map_all()
        if len(machines) > MOST:
            return machines
        pickled = pickle.dumps(machines, protocol=pickle.HIGHEST_PROTOCOL)
        fingerprint = hashlib.blake2b(pickled, digest_size=16).digest()
        if len(pickled) <= self.limit_bytes // 4:  # one listing never takes most of the room
            self._keep(key, _Kept(tuple(reservations), inputs, pickled, fingerprint))
        return Fingerprinted(machines, fingerprint)

    def _keep(self, key: tuple[int, ...], kept: _Kept) -> None:
        with self._lock:
            old = self._kept.pop(key, None)
            if old is not None:
                self._bytes -= len(old.machines)
            self._kept[key] = kept
            self._bytes += len(kept.machines)
            while self._bytes > self.limit_bytes:
                _, dropped = self._kept.popitem(last=False)
                self._bytes -= len(dropped.machines)


def _same(kept: Sequence[Any], given: Sequence[Any]) -> bool:
    return len(kept) == len(given) and all(a is b for a, b in zip(kept, given, strict=True))


#: the worker's memo, for every EC2 backend (as ``answer_memo``'s is for every parser)
MEMO = MachineMemo()
