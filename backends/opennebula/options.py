"""The OpenNebula backend's options: one table of checks, and the parsed ``Options`` an account runs with.

Options come from ``[backends.NAME]`` merged with the account's region table: the endpoint usually sits with
the backend, the ``session`` (one OpenNebula user per tenant account) with the tenant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends import options as o
from translator.redact import safe_repr

DEFAULT_TIMEOUT = 30.0
DEFAULT_RETENTION = 3600.0  # EC2 lists a terminated instance for about an hour; oned keeps DONE VMs forever
DEFAULT_FLAVOR_ATTRIBUTE = "GW_FLAVOR"
DEFAULT_PAGE_SIZE = 1000  # objects per pool listing call
DEFAULT_NETWORK_DRIVER = "bridge"  # VN_MAD of networks made through the gateway
DEFAULT_IMAGE_DATASTORE = 1  # "default", the image datastore every OpenNebula installation starts with

_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_-]+$")


def _session(value: Any) -> str | None:
    ok = isinstance(value, str) and ":" in value and value.partition(":")[0] and value.partition(":")[2]
    return None if ok else "must be an OpenNebula session string 'user:password' (or 'user:token')"


def _page_size(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and (value == 0 or value >= 2)
    return None if ok else "must be 0 (whole pools in one call) or a page size of 2 or more"


def _attribute(value: Any) -> str | None:
    ok = isinstance(value, str) and _ATTRIBUTE.match(value)
    return None if ok else "must be a template attribute name (letters, digits, '_' and '-')"


#: option -> check (None when fine, else what is wrong). Anything else in the table is an unknown option.
CHECKS: dict[str, o.Check] = {
    "endpoint": o.url,
    "session": _session,
    "timeout": o.positive,
    "verify": o.tls,
    "flavor_attribute": _attribute,
    "terminated_retention": o.non_negative,
    "image_datastore": o.non_negative_int,
    "public_network": o.text,
    "network_driver": _attribute,
    "page_size": _page_size,
}

REQUIRED = {
    "endpoint": "the XML-RPC URL of oned, e.g. https://one.example.com:2633/RPC2",
    "session": "the account's OpenNebula 'user:password'",
}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Problems with an account's options, one ``key: what`` line each (empty when fine)."""
    problems = o.validate(options, CHECKS)
    problems += [f"{key}: is required ({what})" for key, what in REQUIRED.items() if key not in options]
    return problems


@dataclass(frozen=True, slots=True)
class Options:
    """An account's parsed options (validated before, by ``validate_options``)."""

    endpoint: str
    session: str
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    #: templates carrying this attribute are the account's flavors; its value names the flavor
    flavor_attribute: str = DEFAULT_FLAVOR_ATTRIBUTE
    terminated_retention: float = DEFAULT_RETENTION
    #: the image datastore volumes (persistent data blocks) and snapshots (their clones) are made in
    image_datastore: int = DEFAULT_IMAGE_DATASTORE
    #: the virtual network (name or id) whose leases are the account's public addresses; "" for none
    public_network: str = ""
    #: VN_MAD of the virtual networks made for the gateway's networks and subnets (bridge, 802.1Q, vxlan...)
    network_driver: str = DEFAULT_NETWORK_DRIVER
    #: objects per pool listing call (0: whole pools in one call)
    page_size: int = DEFAULT_PAGE_SIZE

    def __repr__(self) -> str:
        return safe_repr(self)  # the session holds the password


def parse(options: Mapping[str, Any]) -> Options:
    """``Options`` from a validated table."""
    return Options(
        endpoint=options["endpoint"],
        session=options["session"],
        timeout=float(options.get("timeout", DEFAULT_TIMEOUT)),
        verify=options.get("verify", True),
        flavor_attribute=options.get("flavor_attribute", DEFAULT_FLAVOR_ATTRIBUTE).upper(),
        terminated_retention=float(options.get("terminated_retention", DEFAULT_RETENTION)),
        image_datastore=int(options.get("image_datastore", DEFAULT_IMAGE_DATASTORE)),
        public_network=str(options.get("public_network", "")),
        network_driver=str(options.get("network_driver", DEFAULT_NETWORK_DRIVER)),
        page_size=int(options.get("page_size", DEFAULT_PAGE_SIZE)),
    )
