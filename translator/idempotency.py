"""Client tokens: a create repeated with the same token returns the first attempt's resources."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from translator.errors import Conflict
from translator.model import Principal
from translator.store import Store


class Idempotency:
    """Claims a token in Redis before the work, records the result after it."""

    def __init__(self, store: Store, ttl: int, wait: float = 30.0) -> None:
        self.store = store
        self.ttl = ttl
        self.wait = wait

    def run(
        self,
        principal: Principal,
        token: str,
        fingerprint: str,
        kind: str,
        work: Callable[[], list[Any]],
        fetch: Callable[[list[str]], list[Any]],
    ) -> list[Any]:
        """``work()`` once per token; a repeat gets ``fetch(ids of the first result)``, a repeat with other
        arguments ``Conflict(reason="idempotency")``."""
        deadline = time.monotonic() + self.wait
        while True:
            existing = self.store.idempotency_claim(principal.tenant, token, fingerprint, self.ttl)
            if existing is None:
                break
            if existing.get("fp") != fingerprint:
                raise Conflict(
                    f"Arguments on this idempotent request are inconsistent with arguments used in previous "
                    f"request(s) with client token '{token}'.",
                    kind=kind,
                    reason="idempotency",
                )
            if existing.get("state") == "done":
                return fetch(existing["result"]["ids"])
            if time.monotonic() > deadline:
                raise Conflict(f"A request with client token '{token}' is still in progress.", reason="in_progress")
            time.sleep(0.05)
        try:
            created = work()
        except BaseException:
            self.store.idempotency_release(principal.tenant, token)
            raise
        ids = [r.id for r in created]
        self.store.idempotency_complete(principal.tenant, token, fingerprint, {"ids": ids}, self.ttl)
        return created
