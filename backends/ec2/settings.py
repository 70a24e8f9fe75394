"""The EC2 backend's options (one table of defaults and checks) and the botocore client built from them.

An account's options merge its backend table and its region table (credentials usually live in the
latter, one set per tenant). botocore's own retries are off: the translator retries transient faults,
so a call is tried ``retry_attempts`` times in all, never that times botocore's count.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.client import BaseClient
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.handlers import base64_encode_user_data

from backends import options as o
from backends import tiers
from backends.ec2 import mapping
from backends.ec2.response_parser import ResponseParserFactory
from translator.model import VolumeTier
from translator.redact import safe_repr

#: The EC2 volume type each tier is made as unless ``volume_types`` says otherwise (types every
#: EC2-compatible cloud knows: gp3 and io2 came late).
DEFAULT_VOLUME_TYPES: Mapping[VolumeTier, str] = {
    VolumeTier.STANDARD: "standard",
    VolumeTier.SSD: "gp2",
    VolumeTier.HDD: "st1",
    VolumeTier.IO: "io1",
}


@dataclass(frozen=True, slots=True)
class Option:
    check: o.Check
    default: Any
    help: str


#: Every option of the ``ec2`` driver: check, default, and what it is for (conf/examples/ec2.toml says more).
OPTIONS: dict[str, Option] = {
    "endpoint_url": Option(o.url_or_empty, "", "EC2 endpoint; empty = AWS's endpoint for aws_region"),
    "aws_region": Option(o.text, "", "region on the EC2 side; empty = the gateway region's name"),
    "access_key_id": Option(o.text, "", "the account's credentials; both empty = botocore's default chain"),
    "secret_access_key": Option(o.text, "", "secret of access_key_id"),
    "session_token": Option(o.text, "", "for temporary (STS) credentials"),
    "connect_timeout": Option(o.positive, 5.0, "seconds to connect"),
    "timeout": Option(o.positive, 30.0, "seconds to wait for a response"),
    "max_pool_connections": Option(o.positive_int, 10, "HTTP connections kept per worker and account"),
    "tls_verify": Option(o.tls, True, "verify TLS certificates: true, false, or a CA bundle path"),
    "zone_map": Option(
        o.string_table("gateway zone = EC2 zone names"),
        {},
        "gateway zone = EC2 zone; zones not named map to themselves",
    ),
    "image_owners": Option(o.names, ["self"], "DescribeImages Owners: self, amazon, aws-marketplace, account ids"),
    "image_filters": Option(
        o.list_table("filter name = [values] (EC2 Filter.N)"), {}, "DescribeImages filters, name = [values]"
    ),
    "image_ids": Option(o.names, [], "AMIs always offered, whoever owns them"),
    "instance_types": Option(o.names, [], "instance types offered (wildcards allowed); empty = all"),
    "catalog_ttl": Option(o.non_negative, 3600.0, "seconds a worker keeps the instance-type catalogue"),
    "volume_types": Option(tiers.CHECK, {}, "tier = EC2 volume type, over standard, gp2, st1 and io1"),
}
CHECKS: dict[str, o.Check] = {key: option.check for key, option in OPTIONS.items()}


def validate_options(options: Mapping[str, Any]) -> list[str]:
    """Every problem with the options, as ``key: what is wrong``; unknown keys are reported (typos)."""
    problems = o.validate(options, CHECKS)
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
    volume_types: tiers.TierMap

    def __repr__(self) -> str:
        return safe_repr(self)  # credentials never in the clear (translator.redact)


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
        volume_types=tiers.TierMap.of(value["volume_types"], DEFAULT_VOLUME_TYPES, mapping.VOLUME_TIERS),
    )


# botocore sessions load the service models (slow) and are not thread-safe: one per process, behind a lock.
_LOCK = threading.Lock()
_SESSION: tuple[int, botocore.session.Session] | None = None


def _session() -> botocore.session.Session:
    global _SESSION
    if _SESSION is None or _SESSION[0] != os.getpid():
        _SESSION = (os.getpid(), _fast_parsing(botocore.session.get_session()))
    return _SESSION[1]


def _fast_parsing(session: botocore.session.Session) -> botocore.session.Session:
    """Clients of ``session`` read answers with backends.ec2.response_parser (botocore's output, ~6x faster)."""
    session.register_component("response_parser_factory", ResponseParserFactory())
    return session


def use_session(session: botocore.session.Session) -> None:
    """Make clients through ``session`` in this process: one lent by the gateway already holds botocore's EC2
    model (about 12 MB a second session would load again)."""
    global _SESSION
    with _LOCK:
        _SESSION = (os.getpid(), _fast_parsing(session))


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
    _keep_user_agent(client)
    return client


def credentials_of(settings: Settings) -> Credentials | None:
    """What ``make_client``'s client signs with: the account's keys, or botocore's default chain (the
    session's own object, refreshed by botocore); None when there are none."""
    if settings.access_key_id:
        return Credentials(settings.access_key_id, settings.secret_access_key, settings.session_token or None)
    with _LOCK:
        return _session().get_credentials()


class KeptUserAgent:
    """A client's ``User-Agent``, built once.

    PERF: botocore builds the header twice a call (about 70 µs on this machine) to append ids of the features
    the call used, which EC2-compatible clouds do not read; the string it builds first stays true.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def to_string(self) -> str:
        return self.text


def _keep_user_agent(client: BaseClient) -> None:
    """Swap botocore's per-call builder for a ``KeptUserAgent`` (left alone if botocore's internals moved)."""
    creator = getattr(client, "_user_agent_creator", None)
    rebuild = getattr(creator, "rebuild_and_replace_user_agent_handler", None)
    if creator is None or rebuild is None:
        return
    client.meta.events.unregister(f"request-created.{client.meta.service_model.service_id.hyphenize()}", rebuild)
    client._user_agent_creator = KeptUserAgent(creator.to_string())  # type: ignore[attr-defined]
