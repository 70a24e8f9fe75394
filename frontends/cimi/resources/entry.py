"""The CloudEntryPoint: where a client starts, naming every collection this tenant can use."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from frontends.cimi.context import Ctx, iso
from frontends.cimi.controller import Controller
from translator.identity import authorize

#: when this service's entry point came to be (it never changes while the service runs)
_STARTED = time.time()


def entry_point(ctx: Ctx, controllers: Mapping[str, Controller]) -> dict[str, Any]:
    authorize(ctx.principal, "read")
    doc: dict[str, Any] = {
        "resourceURI": ctx.uri("CloudEntryPoint"),
        "id": ctx.href("cloudEntryPoint"),
        "name": "cloudgate",
        "description": f"The clouds of tenant {ctx.principal.tenant}, as one",
        "created": iso(_STARTED),
        "updated": iso(_STARTED),
        "baseURI": ctx.base + "/",
    }
    caps = ctx.tenant_capabilities()
    for name, controller in controllers.items():
        if controller.offered(caps):
            doc[name] = {"href": ctx.href(name)}
    return doc
