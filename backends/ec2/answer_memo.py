"""Describe answers read once per content: a worker keeps what an answer read as, by its bytes.

PERF: a listing read from the cloud on every request (no cache, or one that lapsed) mostly returns what it
returned the time before; reading moto's 151 KB DescribeInstances of 50 instances costs 2.7 ms even with the
generated reader, and comparing its bytes with a kept answer's some microseconds. Only the request id, a
child of the root, changes from one identical answer to the next: the key is the answer without it, and a
hit is the kept value with this answer's request id. Values are shared between callers, which only read
them (the backend maps them into fresh canonical records); each hit gets a top-level dict of its own,
where botocore adds the HTTP metadata. What is kept costs about 3.4 times its bytes (tracemalloc, moto's
answer of 50 instances): 2 MiB of answers hold some 7 MiB of a worker.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

#: A root's ``requestId`` child: only its text (no entity, no markup) may differ between equal answers.
_REQUEST_ID = re.compile(rb"[ \t\r\n]*<requestId>([^<&]*)</requestId>[ \t\r\n]*")
#: The root's end tag, the last one (only white space may follow it).
_ROOT_END = re.compile(rb"</[A-Za-z_][A-Za-z0-9_.-]*>[ \t\r\n]*\Z")


def answer_key(document: bytes) -> tuple[bytes, str | None] | None:
    """``document`` (an answer as ``plain_document`` leaves it: a declaration at most, then a root start tag
    without attributes) without its root's ``requestId`` child, and that id's text (None when empty, as
    lxml reads it); None when the id is not the root's first or last child (an element so named could be
    nested deeper: such an answer is not kept)."""
    after_root = document.find(b">", document.find(b"?>") + 2 if document.startswith(b"<?xml") else 0) + 1
    if after_root == 0 or document[after_root - 2 : after_root] == b"/>":
        return None
    first = _REQUEST_ID.match(document, after_root)
    if first is not None:
        return document[: first.start()] + document[first.end() :], _text(first.group(1))
    end = _ROOT_END.match(document, document.rfind(b"</"))
    if end is None or end.start() < after_root:
        return None
    at = document.rfind(b"<requestId>", after_root, end.start())
    if at < 0:
        return None
    last = _REQUEST_ID.match(document, at)
    if last is None or last.end() != end.start():
        return None
    return document[:at] + document[end.start() :], _text(last.group(1))


def _text(raw: bytes) -> str | None:
    return raw.decode("utf-8", "replace") or None


class AnswerMemo:
    """What answers read as, by output shape (botocore's ``Shape``, by identity: models may reuse names) and
    bytes; the least recently used forgotten first once the kept answers' bytes pass ``limit_bytes``."""

    def __init__(self, limit_bytes: int = 2 << 20) -> None:
        self.limit_bytes = limit_bytes
        self._kept: OrderedDict[tuple[Hashable, bytes], dict[str, Any]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, shape: Hashable, key: bytes, request_id: str | None) -> dict[str, Any] | None:
        """The kept value with ``request_id`` as its ``ResponseMetadata``; None when this answer is new."""
        with self._lock:
            kept = self._kept.get((shape, key))
            if kept is None:
                return None
            self._kept.move_to_end((shape, key))
        return {**kept, "ResponseMetadata": {"RequestId": request_id}}

    def put(self, shape: Hashable, key: bytes, parsed: dict[str, Any]) -> None:
        """Keep ``parsed`` (its ``ResponseMetadata`` left out) for answers of ``shape`` equal to ``key``."""
        if len(key) > self.limit_bytes // 4:
            return  # one answer never takes most of the room
        value = {k: v for k, v in parsed.items() if k != "ResponseMetadata"}
        with self._lock:
            if (shape, key) in self._kept:
                return
            self._kept[(shape, key)] = value
            self._bytes += len(key)
            while self._bytes > self.limit_bytes:
                (_, dropped), _ = self._kept.popitem(last=False)
                self._bytes -= len(dropped)
