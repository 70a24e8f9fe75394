"""The CloudStack backend's options: one table of checks, and the parsed ``Options`` an account runs with.

Options come from ``[backends.NAME]`` merged with the account's region table: the endpoint usually sits with
the backend, the account's API and secret keys (and the project standing for the tenant) with the tenant.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backends import options as o
from translator.redact import safe_repr

DEFAULT_TIMEOUT = 30.0
DEFAULT_POLL_INTERVAL = 1.0
DEFAULT_JOB_TIMEOUT = 300.0
DEFAULT_RETENTION = 3600.0  # EC2 lists a terminated instance for about an hour
DEFAULT_NETWORK_OFFERING = "DefaultIsolatedNetworkOfferingWithSourceNatService"  # CloudStack's own

#: option -> check (None when fine, else what is wrong). Anything else in the table is an unknown option.
CHECKS: dict[str, o.Check] = {
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
    )
