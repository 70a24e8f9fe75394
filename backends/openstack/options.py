"""The OpenStack backend's options: one table of checks, and the parsed ``Options`` an account runs with.

Options come from ``[backends.NAME]`` merged with the account's region table, so credentials usually sit
with the tenant and endpoints with the backend. Every problem is one ``key: what is wrong`` line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backends import options as o
from backends import tiers

INTERFACES = ("public", "internal", "admin")
#: Services read from the catalog; without one, its Nova proxy API (if allowed in ``nova_proxies``) stands in.
SERVICES = ("compute", "image", "volumev3", "network")
#: Nova's deprecated proxy APIs (gone from microversion 2.36) this backend can fall back on.
PROXIES = ("images", "volumes", "networks", "security_groups", "floating_ips")
DEFAULT_TIMEOUT = 30.0
DEFAULT_RETENTION = 3600.0  # EC2 lists a terminated instance for about an hour
DEFAULT_MICROVERSION = "2.1"
DEFAULT_DELETE_WAIT = 10.0

_MICROVERSION = re.compile(r"^2\.\d{1,3}$")


def _microversion(v: Any) -> str | None:
    return None if isinstance(v, str) and _MICROVERSION.match(v) else "must be a compute microversion like '2.1'"


def _overrides(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "must be a table of service type = URL"
    for service, url in v.items():
        if service not in SERVICES:
            return f"unknown service {service!r} (known: {', '.join(SERVICES)})"
        if o.url(url):
            return f"{service}: must be an http:// or https:// URL"
    return None


#: option -> check (None when fine, else what is wrong). Anything else in the table is an unknown option.
CHECKS: dict[str, o.Check] = {
    "auth_url": o.url,
    "region_name": o.non_empty,
    "interface": o.one_of(INTERFACES),
    "timeout": o.positive,
    "verify": o.boolean,
    "cacert": o.non_empty,
    "username": o.non_empty,
    "user_id": o.non_empty,
    "password": o.non_empty,
    "user_domain_name": o.non_empty,
    "user_domain_id": o.non_empty,
    "project_name": o.non_empty,
    "project_id": o.non_empty,
    "project_domain_name": o.non_empty,
    "project_domain_id": o.non_empty,
    "application_credential_id": o.non_empty,
    "application_credential_name": o.non_empty,
    "application_credential_secret": o.non_empty,
    "compute_microversion": _microversion,
    "nova_proxies": o.names_of(PROXIES),
    "endpoint_override": _overrides,
    "network": o.non_empty,
    "floating_network": o.non_empty,
    "volume_types": tiers.CHECK,
    "terminated_retention": o.non_negative,
    "delete_wait": o.non_negative,
}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Problems with an account's options, one ``key: what`` line each (empty when fine)."""
    problems = o.validate(options, CHECKS)
    if "auth_url" not in options:
        problems.append("auth_url: is required (the Keystone v3 URL, e.g. https://keystone.example.com:5000/v3)")
    problems.extend(_credential_problems(options))
    return problems


def _credential_problems(o: Mapping[str, Any]) -> list[str]:
    """Exactly one way to authenticate: a password with a project, or an application credential."""
    if "application_credential_secret" in o:
        if "application_credential_id" in o:
            return []
        if "application_credential_name" in o and ("user_id" in o or "username" in o):
            return []
        return ["application_credential_id: is required with application_credential_secret (or a name and user)"]
    if "application_credential_id" in o or "application_credential_name" in o:
        return ["application_credential_secret: is required with an application credential"]
    problems = []
    if "password" not in o:
        problems.append("password: is required (or application_credential_id and application_credential_secret)")
    if "username" not in o and "user_id" not in o:
        problems.append("username: is required with a password (or user_id)")
    if "project_name" not in o and "project_id" not in o:
        problems.append("project_name: is required with a password (or project_id): tokens need a project scope")
    return problems


@dataclass(frozen=True, slots=True)
class Options:
    """An account's parsed options (validated before, by ``validate_options``)."""

    auth_url: str
    auth: dict[str, str]
    region_name: str | None = None
    interface: str = "public"
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    compute_microversion: str = DEFAULT_MICROVERSION
    nova_proxies: frozenset[str] = frozenset(PROXIES)
    endpoint_override: dict[str, str] = field(default_factory=dict)
    network: str | None = None
    floating_network: str | None = None
    #: tier -> Cinder volume type; an unmapped tier gets Cinder's default type, an unmapped Cinder type reads
    #: as the standard tier.
    volume_types: tiers.TierMap = field(default_factory=tiers.TierMap)
    terminated_retention: float = DEFAULT_RETENTION
    #: seconds a call waits for OpenStack to catch up (deletes to finish, attachments to show, ...)
    delete_wait: float = DEFAULT_DELETE_WAIT


#: Options handed to keystoneauth1's v3 plugins as they are.
AUTH_KEYS = (
    "username",
    "user_id",
    "password",
    "user_domain_name",
    "user_domain_id",
    "project_name",
    "project_id",
    "project_domain_name",
    "project_domain_id",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
)


def parse(options: Mapping[str, Any]) -> Options:
    """``Options`` from a validated table; domains default to ``Default`` as in every devstack."""
    auth = {k: options[k] for k in AUTH_KEYS if k in options}
    if "application_credential_secret" not in auth:
        if "user_domain_id" not in auth:
            auth.setdefault("user_domain_name", "Default")
        if "project_id" not in auth and "project_domain_id" not in auth:
            auth.setdefault("project_domain_name", "Default")
    elif "application_credential_id" not in auth and "user_domain_id" not in auth:
        auth.setdefault("user_domain_name", "Default")
    verify: bool | str = options.get("cacert") or options.get("verify", True)
    return Options(
        auth_url=options["auth_url"].rstrip("/"),
        auth=auth,
        region_name=options.get("region_name"),
        interface=options.get("interface", "public"),
        timeout=float(options.get("timeout", DEFAULT_TIMEOUT)),
        verify=verify,
        compute_microversion=options.get("compute_microversion", DEFAULT_MICROVERSION),
        nova_proxies=frozenset(options.get("nova_proxies", PROXIES)),
        endpoint_override={k: v.rstrip("/") for k, v in options.get("endpoint_override", {}).items()},
        network=options.get("network"),
        floating_network=options.get("floating_network"),
        volume_types=tiers.TierMap.of(options.get("volume_types")),
        terminated_retention=float(options.get("terminated_retention", DEFAULT_RETENTION)),
        delete_wait=float(options.get("delete_wait", DEFAULT_DELETE_WAIT)),
    )
