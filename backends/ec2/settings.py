"""The EC2 backend's options (one table of defaults and checks) and the botocore client built from them.

An account's options merge its backend table and its region table (credentials usually live in the
latter, one set per tenant). botocore's own retries are off: the translator retries transient faults,
so a call is tried ``retry_attempts`` times in all, never that times botocore's count.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.handlers import base64_encode_user_data

Check = Callable[[Any], str | None]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: Any) -> str | None:
    return None if _number(value) and value > 0 else f"must be a number > 0, got {value!r}"


def _non_negative(value: Any) -> str | None:
    return None if _number(value) and value >= 0 else f"must be a number >= 0, got {value!r}"


def _positive_int(value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return None if ok else f"must be an integer > 0, got {value!r}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) else f"must be a string, got {value!r}"


def _url(value: Any) -> str | None:
    ok = isinstance(value, str) and (value == "" or value.startswith(("http://", "https://")))
    return None if ok else f"must be an http:// or https:// URL (or empty for AWS), got {value!r}"


def _tls(value: Any) -> str | None:
    ok = isinstance(value, bool) or (isinstance(value, str) and value != "")
    return None if ok else f"must be true, false or the path of a CA bundle, got {value!r}"


def _names(value: Any) -> str | None:
    ok = isinstance(value, list) and all(isinstance(v, str) and v for v in value)
    return None if ok else f"must be a list of non-empty strings, got {value!r}"


def _zone_map(value: Any) -> str | None:
    ok = isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) and v for k, v in value.items())
    return None if ok else f"must be a table of gateway zone = EC2 zone names, got {value!r}"


def _filters(value: Any) -> str | None:
    ok = isinstance(value, Mapping) and all(_names(v) is None and v for v in value.values())
    return None if ok else f"must be a table of filter name = [values] (EC2 Filter.N), got {value!r}"


@dataclass(frozen=True, slots=True)
class Option:
    check: Check
    default: Any
    help: str


#: Every option of the ``ec2`` driver: check, default, and what it is for (conf/examples/ec2.toml says more).
OPTIONS: dict[str, Option] = {
    "endpoint_url": Option(_url, "", "EC2 endpoint; empty = AWS's endpoint for aws_region"),
    "aws_region": Option(_text, "", "region on the EC2 side; empty = the gateway region's name"),
    "access_key_id": Option(_text, "", "the account's credentials; both empty = botocore's default chain"),
    "secret_access_key": Option(_text, "", "secret of access_key_id"),
    "session_token": Option(_text, "", "for temporary (STS) credentials"),
    "connect_timeout": Option(_positive, 5.0, "seconds to connect"),
    "timeout": Option(_positive, 30.0, "seconds to wait for a response"),
    "max_pool_connections": Option(_positive_int, 10, "HTTP connections kept per worker and account"),
    "tls_verify": Option(_tls, True, "verify TLS certificates: true, false, or a CA bundle path"),
    "zone_map": Option(_zone_map, {}, "gateway zone = EC2 zone; zones not named map to themselves"),
    "image_owners": Option(_names, ["self"], "DescribeImages Owners: self, amazon, aws-marketplace, account ids"),
    "image_filters": Option(_filters, {}, "DescribeImages filters, name = [values]"),
    "image_ids": Option(_names, [], "AMIs always offered, whoever owns them"),
    "instance_types": Option(_names, [], "instance types offered (wildcards allowed); empty = all"),
    "catalog_ttl": Option(_non_negative, 3600.0, "seconds a worker keeps the instance-type catalogue"),
}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Every problem with the options, as ``key: what is wrong``; unknown keys are reported (typos)."""
    problems: list[str] = []
    for key, value in options.items():
        option = OPTIONS.get(key)
        if option is None:
            problems.append(f"{key}: unknown option (known: {', '.join(OPTIONS)})")
            continue
        wrong = option.check(value)
        if wrong:
            problems.append(f"{key}: {wrong}")
    if bool(options.get("access_key_id")) != bool(options.get("secret_access_key")):
        problems.append("access_key_id: access_key_id and secret_access_key go together (or both empty)")
    return problems


@dataclass(frozen=True, slots=True)
class Settings:
    endpoint_url: str
    aws_region: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    connect_timeout: float
    timeout: float
    max_pool_connections: int
    tls_verify: bool | str
    zone_map: Mapping[str, str]
    image_owners: tuple[str, ...]
    image_filters: tuple[tuple[str, tuple[str, ...]], ...]
    image_ids: tuple[str, ...]
    instance_types: tuple[str, ...]
    catalog_ttl: float


def parse_settings(options: Mapping[str, Any], region: str, zones: tuple[str, ...]) -> Settings:
    """Options (already validated by the config loader) with defaults filled in."""
    value = {key: options.get(key, option.default) for key, option in OPTIONS.items()}
    given = dict(value["zone_map"])
    zone_map = {zone: given.get(zone, zone) for zone in zones}
    return Settings(
        endpoint_url=value["endpoint_url"],
        aws_region=value["aws_region"] or region,
        access_key_id=value["access_key_id"],
        secret_access_key=value["secret_access_key"],
        session_token=value["session_token"],
        connect_timeout=float(value["connect_timeout"]),
        timeout=float(value["timeout"]),
        max_pool_connections=int(value["max_pool_connections"]),
        tls_verify=value["tls_verify"],
        zone_map=zone_map,
        image_owners=tuple(value["image_owners"]),
        image_filters=tuple((k, tuple(v)) for k, v in dict(value["image_filters"]).items()),
        image_ids=tuple(value["image_ids"]),
        instance_types=tuple(value["instance_types"]),
        catalog_ttl=float(value["catalog_ttl"]),
    )


# botocore sessions load the service models (slow) and are not thread-safe: one per process, behind a lock.
_LOCK = threading.Lock()
_SESSION: tuple[int, botocore.session.Session] | None = None


def _session() -> botocore.session.Session:
    global _SESSION
    if _SESSION is None or _SESSION[0] != os.getpid():
        _SESSION = (os.getpid(), botocore.session.get_session())
    return _SESSION[1]


def make_client(settings: Settings) -> BaseClient:
    """A botocore EC2 client for one account: timeouts on every call, no retries of its own.

    ``UserData`` goes out as given: canonical user data is already base64 (as EC2's Query API carries it),
    so botocore's RunInstances hook that would encode it again is unregistered on this client.
    """
    config = Config(
        region_name=settings.aws_region,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
        max_pool_connections=settings.max_pool_connections,
        user_agent_extra="cloudgate",
    )
    with _LOCK:
        client = _session().create_client(
            "ec2",
            region_name=settings.aws_region,
            endpoint_url=settings.endpoint_url or None,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=settings.secret_access_key or None,
            aws_session_token=settings.session_token or None,
            verify=settings.tls_verify,
            config=config,
        )
    client.meta.events.unregister("before-parameter-build.ec2.RunInstances", base64_encode_user_data)
    return client
