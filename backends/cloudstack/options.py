"""The CloudStack backend's options: one table of checks, and the parsed ``Options`` an account runs with.

Options come from ``[backends.NAME]`` merged with the account's region table: the endpoint usually sits with
the backend, the account's API and secret keys (and the project standing for the tenant) with the tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from backends import options as o
from translator.model import VolumeTier
from translator.redact import safe_repr

DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_JOB_TIMEOUT = 300.0
DEFAULT_RETENTION = 3600.0  # EC2 lists a terminated instance for about an hour
DEFAULT_NETWORK_OFFERING = "DefaultIsolatedNetworkOfferingWithSourceNatService"  # CloudStack's own

_TIER_FIELDS: o.Fields = {str(t): (o.names, False) for t in VolumeTier}


def _disk_offering_problems(prefix: str, value: Any) -> list[str]:
    """``disk_offerings``: tier = [offering names]; an offering names one tier only (it reads back as that)."""
    problems = o.table(_TIER_FIELDS).problems(prefix, value)
    if problems:
        return problems
    seen: dict[str, str] = {}
    for tier, names in value.items():
        for name in names:
            if seen.setdefault(name, tier) != tier:
                problems.append(f"{prefix}.{tier}: the offering {name!r} is already the {seen[name]} tier's")
    return problems


#: option -> check (None when fine, else what is wrong). Anything else in the table is an unknown option.
CHECKS: dict[str, o.Check | o.Nested] = {
    "url": o.url,
    "api_key": o.non_empty,
    "secret_key": o.non_empty,
    "project": o.non_empty,
    "timeout": o.positive,
    "poll_interval": o.positive,
    "job_timeout": o.positive,
    "expunge": o.boolean,
    "terminated_retention": o.non_negative,
    "network_offering": o.non_empty,
    "default_network": o.non_empty,
    "disk_offerings": o.Nested(_disk_offering_problems),
}
REQUIRED = {
    "url": "is required (the API endpoint, e.g. https://cloudstack.example.com/client/api)",
    "api_key": "is required (the account's API key)",
    "secret_key": "is required (the account's secret key)",
}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Problems with an account's options, one ``key: what`` line each (empty when fine)."""
    problems = o.validate(options, CHECKS)
    return problems + [f"{key}: {what}" for key, what in REQUIRED.items() if key not in options]


@dataclass(frozen=True, slots=True)
class Options:
    """An account's parsed options (validated before, by ``validate_options``)."""

    url: str
    api_key: str
    secret_key: str
    #: the CloudStack project (by name) holding the tenant's resources; None: the account's own
    project: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    #: seconds between two queryAsyncJobResult polls
    poll_interval: float = DEFAULT_POLL_INTERVAL
    #: seconds a call waits for an asynchronous job it must see finished (tags, ...)
    job_timeout: float = DEFAULT_JOB_TIMEOUT
    #: destroyVirtualMachine with expunge=true: the machine and its root disk are gone at once, not recoverable
    expunge: bool = False
    terminated_retention: float = DEFAULT_RETENTION
    #: the network offering (name or id) of networks the gateway creates
    network_offering: str = DEFAULT_NETWORK_OFFERING
    #: the network (name or id) machines go on when a create names none; None: the zone's oldest isolated one
    default_network: str | None = None
    #: volume tier -> names of the disk offerings that make it (fixed sizes and a customised one); a tier not
    #: listed takes the offerings no tier names, and a volume of those reads back as ``standard``
    disk_offerings: Mapping[VolumeTier, tuple[str, ...]] = field(default_factory=dict)

    def tier_of(self, offering_name: str | None) -> VolumeTier:
        """The tier a volume of this disk offering is."""
        for tier, names in self.disk_offerings.items():
            if offering_name in names:
                return tier
        return VolumeTier.STANDARD

    def __repr__(self) -> str:
        return safe_repr(self)  # credentials never in the clear (translator.redact)


def parse(options: Mapping[str, Any]) -> Options:
    """``Options`` from a validated table."""
    return Options(
        url=options["url"],
        api_key=options["api_key"],
        secret_key=options["secret_key"],
        project=options.get("project"),
        timeout=float(options.get("timeout", DEFAULT_TIMEOUT)),
        poll_interval=float(options.get("poll_interval", DEFAULT_POLL_INTERVAL)),
        job_timeout=float(options.get("job_timeout", DEFAULT_JOB_TIMEOUT)),
        expunge=bool(options.get("expunge", False)),
        terminated_retention=float(options.get("terminated_retention", DEFAULT_RETENTION)),
        network_offering=str(options.get("network_offering", DEFAULT_NETWORK_OFFERING)),
        default_network=options.get("default_network"),
        disk_offerings={VolumeTier(k): tuple(v) for k, v in options.get("disk_offerings", {}).items()},
    )
