"""The account's quotas: instances from Nova's limits, floating IPs from Neutron's quotas.

Behind Nova's proxy the floating IP quota is unknown: the one Nova's limits show up to microversion 2.35
is Nova's own, which nothing enforces since Neutron took networking over. -1 is OpenStack's "unlimited":
it reads as no limit (None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from translator.model import Limits

if TYPE_CHECKING:
    from backends.openstack.backend import OpenStackBackend


def _bounded(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def limits(b: OpenStackBackend) -> Limits:
    absolute = b.cloud.rest("GET", "compute", "/limits", kind="account", what="get limits")["limits"]["absolute"]
    addresses = None
    if b.cloud.has("network"):
        path = f"/quotas/{b.cloud.project_id()}"
        addresses = b.cloud.rest("GET", "network", path, kind="account", what="get quotas")["quota"].get("floatingip")
    return Limits(max_machines=_bounded(absolute.get("maxTotalInstances")), max_addresses=_bounded(addresses))
