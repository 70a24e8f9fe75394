"""Loading and validating the TOML config once, at start-up.

Every problem is reported as ``<file>: <dotted key>: <what is wrong>`` so an operator can fix it
without reading code; the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from gateway import redis_cluster, redis_sentinel
from translator.backend import AccountConfig, load_driver
from translator.breaker import BreakerSettings
from translator.calls import RetryPolicy
from translator.errors import InvalidParameter
from translator.identity import ROLE_PERMISSIONS, Tenant, User
from translator.keystone_auth import DEFAULT_ROLE_MAP, KeystoneSettings
from translator.ratelimit import Bucket, RateLimitSettings
from translator.translator import TranslatorSettings

DEMO_ACCESS_KEY = "demo"


class ConfigError(Exception):
    """A config problem; ``str()`` is the one line the CLI prints."""

    def __init__(self, source: str, key: str, message: str) -> None:
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")
        self.source, self.key, self.message = source, key, message


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    bind: str = "127.0.0.1:8080"
    workers: int = 2
    threads: int = 4
    worker_class: str = "gthread"
    #: may carry a password (redis://:pw@host): shown redacted; ``redis+sentinel://`` for Sentinel (also written
    #: from a ``[gateway.redis]`` table), ``redis-cluster://`` for Redis Cluster
    redis_url: str = field(default="", repr=False)
    #: seconds to connect to Redis, and to wait for one of its answers; past them a request answers 503
    redis_connect_timeout: float = 1.0
    redis_socket_timeout: float = 2.0
    #: replicas an id map, tag, idempotency or job write waits for (at most as many as are connected; 0: never),
    #: and for how long (translator/durability.py)
    redis_wait_replicas: int = 1
    redis_wait_timeout_ms: int = 100
    data_dir: str = ""
    max_body_bytes: int = 1_048_576
    public_endpoint: str = ""
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "info"
    #: seconds a stopping node keeps serving with /readyz at 503, so an actively checking balancer stops
    #: sending before the listener closes (0: close at once; nginx's passive checks need no more)
    drain_seconds: float = 0.0
    #: ``[gateway.rate_limits]``: requests a second per access key and per tenant (off by default)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in self.__dataclass_fields__ if name != "redis_url"
        )
        return f"GatewaySettings(redis_url={redact_url(self.redis_url)!r}, {shown})"


def redact_url(url: str) -> str:
    """A Redis URL without its passwords (``redis://:pw@host``, ``unix:///s?password=pw``, ``?sentinel_password=``),
    for reprs and logs."""
    parts = urlsplit(url)
    if parts.password is not None:
        url = url.replace(parts.netloc, f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}", 1)
    if "password" in parts.query.lower():
        query = "&".join(
            f"{k}=***" if k.lower().endswith("password") else f"{k}={v}"
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        url = url.split("?", 1)[0] + "?" + query
    return url


@dataclass(frozen=True, slots=True)
class Config:
    source: str
    gateway: GatewaySettings
    translator: TranslatorSettings
    accounts: Mapping[str, AccountConfig]
    tenants: Mapping[str, Tenant]
    users: tuple[User, ...] = field(default=())
    keystone: KeystoneSettings | None = None

    def uses_demo_credentials(self) -> bool:
        return any(u.access_key == DEMO_ACCESS_KEY and u.secret == "demo-secret" for u in self.users)


def _positive(v: Any) -> str | None:
    return None if v > 0 else "must be greater than 0"


def _non_negative(v: Any) -> str | None:
    return None if v >= 0 else "must not be negative"


#: gunicorn's worker timeout (gateway/server.py): no job and no wait for one may outlive it.
WORKER_TIMEOUT = 120


def _below_worker_timeout(v: Any) -> str | None:
    return None if 0 < v < WORKER_TIMEOUT else f"must be greater than 0 and below {WORKER_TIMEOUT} (the worker timeout)"


LOG_LEVELS = ("debug", "info", "warning", "error")
_BIND = re.compile(r"^(\[[0-9a-fA-F:]+\]|[\w.-]+):\d{1,5}$|^unix:/.+$")

#: [gateway] and [cache]/[backend_calls]-style scalar settings: key -> (types, default, check).
Check = Callable[[Any], str | None]
_GATEWAY_KEYS: dict[str, tuple[tuple[type, ...], Check | None]] = {
    "bind": ((str,), lambda v: None if _BIND.match(v) else "must be HOST:PORT or unix:/PATH"),
    "workers": ((int,), _positive),
    "threads": ((int,), _positive),
    "worker_class": ((str,), lambda v: None if v in ("sync", "gthread") else "must be 'sync' or 'gthread'"),
    "redis_url": ((str,), lambda v: _redis_url_problem(v)),
    "redis_connect_timeout": ((int, float), _positive),
    "redis_socket_timeout": ((int, float), _positive),
    "redis_wait_replicas": ((int,), _non_negative),
    "redis_wait_timeout_ms": ((int,), _positive),
    "data_dir": ((str,), None),
    "max_body_bytes": ((int,), _positive),
    "public_endpoint": (
        (str,),
        lambda v: None if v == "" or re.match(r"^https?://", v) else "must be an http:// or https:// URL",
    ),
    "trusted_proxies": (
        (list,),
        lambda v: None if all(isinstance(x, str) for x in v) else "must be a list of addresses",
    ),
    "log_level": (
        (str,),
        lambda v: None if v.lower() in LOG_LEVELS else "must be debug, info, warning or error",
    ),
    "drain_seconds": ((int, float), _non_negative),
}
_RATE_LIMIT_KEYS: dict[str, tuple[tuple[type, ...], Check | None]] = {
    "rate_per_key": ((int, float), _non_negative),
    "burst_per_key": ((int,), _non_negative),
    "rate_per_tenant": ((int, float), _non_negative),
    "burst_per_tenant": ((int,), _non_negative),
    "batch": ((int,), _positive),
    "batch_seconds": ((int, float), lambda v: None if 0 < v <= 5 else "must be greater than 0 and at most 5"),
}
_TRANSLATOR_KEYS: dict[str, tuple[tuple[type, ...], Check | None]] = {
    "cache_ttl": ((int, float), _non_negative),
    "transitional_cache_ttl": ((int, float), _non_negative),
    "idempotency_ttl": ((int,), _positive),
    "idempotency_lease": ((int, float), _positive),
    "job_ttl": ((int,), _positive),
    "job_lease": ((int, float), _positive),
    "job_run_bound": ((int, float), _below_worker_timeout),
    "job_wait_bound": ((int, float), _below_worker_timeout),
    "job_threads": ((int,), _positive),
    "prune_grace": ((int, float), _non_negative),
    "read_cache_mb": ((int,), _non_negative),
    "retry_attempts": ((int,), _positive),
    "retry_initial_wait": ((int, float), _non_negative),
    "retry_max_wait": ((int, float), _non_negative),
    "breaker_failures": ((int,), _non_negative),
    "breaker_window": ((int, float), _positive),
    "breaker_cooldown": ((int, float), _positive),
}
_REGION_RESERVED = {"backend", "zones"}
_USER_KEYS = {"access_key", "secret", "tenant", "role", "name"}


def default_config_path() -> Path:
    """The embedded default (conf/gateway.toml, shipped inside the package)."""
    return Path(str(resources.files("conf") / "gateway.toml"))


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate a config file; ConfigError on the first problem found."""
    path = Path(path) if path else default_config_path()
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(source, "", "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(source, "", f"cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "", f"not valid TOML: {exc}") from None
    return parse(data, source)


def parse(data: Mapping[str, Any], source: str = "<config>") -> Config:
    def err(key: str, message: str) -> ConfigError:
        return ConfigError(source, key, message)

    unknown = set(data) - {"gateway", "translator", "backends", "tenants", "users", "identity"}
    if unknown:
        raise err(sorted(unknown)[0], "unknown section")
    gw_table = data.get("gateway", {})
    limits_table = gw_table.get("rate_limits", {}) if isinstance(gw_table, dict) else {}
    redis_table = gw_table.get("redis") if isinstance(gw_table, dict) else None
    if isinstance(gw_table, dict):
        gw_table = {k: v for k, v in gw_table.items() if k not in ("rate_limits", "redis")}
    gw = _scalars(gw_table, "gateway", _GATEWAY_KEYS, err)
    gw["rate_limits"] = _rate_limits(limits_table, err)
    if redis_table is not None:
        if "redis_url" in gw:
            raise err("gateway.redis", "set either redis_url or a [gateway.redis] table, not both")
        gw["redis_url"] = _sentinel_table(redis_table, err)
    if "trusted_proxies" in gw:
        gw["trusted_proxies"] = tuple(gw["trusted_proxies"])
    for key in ("redis_connect_timeout", "redis_socket_timeout", "drain_seconds"):
        if key in gw:
            gw[key] = float(gw[key])
    if "log_level" in gw:
        gw["log_level"] = gw["log_level"].lower()
    env_redis = os.environ.get("CLOUDGATE_REDIS_URL")
    if env_redis:
        problem = _redis_url_problem(env_redis)
        if problem:
            raise err("CLOUDGATE_REDIS_URL", f"{redact_url(env_redis)}: {problem}")
        gw["redis_url"] = env_redis
    gateway = GatewaySettings(**gw)

    tr = _scalars(data.get("translator", {}), "translator", _TRANSLATOR_KEYS, err)
    retry = RetryPolicy(
        attempts=tr.pop("retry_attempts", 3),
        initial_wait=float(tr.pop("retry_initial_wait", 0.05)),
        max_wait=float(tr.pop("retry_max_wait", 1.0)),
        breaker=BreakerSettings(
            failures=tr.pop("breaker_failures", 5),
            window=float(tr.pop("breaker_window", 10.0)),
            cooldown=float(tr.pop("breaker_cooldown", 5.0)),
        ),
    )
    translator = TranslatorSettings(retry=retry, **tr)

    backends = _table(data, "backends", err)
    if not backends:
        raise err("backends", "at least one backend is required")
    for name, table in backends.items():
        if not isinstance(table, dict):
            raise err(f"backends.{name}", "must be a table")
        if not isinstance(table.get("driver"), str):
            raise err(f"backends.{name}.driver", "missing (the backend's driver name, e.g. 'simulator')")

    accounts: dict[str, AccountConfig] = {}
    tenants: dict[str, Tenant] = {}
    for tname, ttable in _table(data, "tenants", err).items():
        if not isinstance(ttable, dict):
            raise err(f"tenants.{tname}", "must be a table")
        account_id = ttable.get("account_id", _account_id_for(tname))
        if not (isinstance(account_id, str) and re.fullmatch(r"\d{12}", account_id)):
            raise err(f"tenants.{tname}.account_id", "must be a string of 12 digits")
        regions = ttable.get("regions")
        if not isinstance(regions, dict) or not regions:
            raise err(f"tenants.{tname}.regions", "at least one region table is required")
        keys = []
        for region, rtable in regions.items():
            prefix = f"tenants.{tname}.regions.{region}"
            accounts[f"{tname}/{region}"] = _account(tname, region, rtable, backends, prefix, err)
            keys.append(f"{tname}/{region}")
        project = ttable.get("keystone_project_id", "")
        if not isinstance(project, str):
            raise err(f"tenants.{tname}.keystone_project_id", "must be a string (a Keystone project id)")
        defaults = {key: ttable.get(key, "") for key in ("default_image", "default_flavor")}
        for key, value in defaults.items():
            if not isinstance(value, str):
                raise err(f"tenants.{tname}.{key}", "must be a string (a name the tenant's backend shows)")
        tenants[tname] = Tenant(
            name=tname, account_id=account_id, accounts=tuple(keys), keystone_project_id=project, **defaults
        )
    if not tenants:
        raise err("tenants", "at least one tenant is required")

    users = _users(data.get("users", []), tenants, err)
    keystone = _keystone(data.get("identity", {}), err)
    return Config(source, gateway, translator, accounts, tenants, users, keystone)


def _redis_url_problem(url: str) -> str | None:
    """What is wrong with a Redis URL, None if nothing (an empty one: the embedded Redis)."""
    if url == "" or url.split(":")[0] in ("redis", "rediss", "unix"):
        return None
    if redis_sentinel.is_sentinel_url(url):
        try:
            redis_sentinel.parse_url(url)
        except ValueError as exc:
            return f"a Sentinel URL {exc}"
        return None
    if redis_cluster.is_cluster_url(url):
        return redis_cluster.url_problem(url)
    return "must be a redis://, rediss://, unix://, redis+sentinel:// or redis-cluster:// URL"


_SENTINEL_KEYS: dict[str, tuple[tuple[type, ...], Check | None]] = {
    "sentinels": (
        (list,),
        lambda v: None if v and all(isinstance(x, str) for x in v) else 'must be a non-empty list of "HOST:PORT"',
    ),
    "service": ((str,), lambda v: None if v else 'must name the sentinels\' master (e.g. "mymaster")'),
    "db": ((int,), _non_negative),
    "password": ((str,), None),
    "sentinel_password": ((str,), None),
}


def _sentinel_table(table: Any, err: Callable[..., Exception]) -> str:
    """``[gateway.redis]``: a Sentinel deployment, as the ``redis+sentinel://`` URL that names it."""
    values = _scalars(table, "gateway.redis", _SENTINEL_KEYS, err)
    for key in ("sentinels", "service"):
        if key not in values:
            raise err(f"gateway.redis.{key}", "missing (a [gateway.redis] table names sentinels and their service)")
    try:
        sentinels = tuple(redis_sentinel.parse_address(a) for a in values["sentinels"])
    except ValueError as exc:
        raise err("gateway.redis.sentinels", str(exc)) from None
    secrets = (values.get("password", ""), values.get("sentinel_password", ""))
    target = redis_sentinel.SentinelTarget(sentinels, values["service"], values.get("db", 0), *secrets)
    try:
        return redis_sentinel.parse_url(target.url()).url()  # the same checks as a URL gets
    except ValueError as exc:
        raise err("gateway.redis", f"a Sentinel URL {exc}") from None


def _rate_limits(table: Any, err: Callable[..., Exception]) -> RateLimitSettings:
    """``[gateway.rate_limits]``: a rate of 0 (the default) turns its bucket off; a burst of 0 is one second's worth."""
    values = _scalars(table, "gateway.rate_limits", _RATE_LIMIT_KEYS, err)
    batching = {k: values[k] for k in ("batch", "batch_seconds") if k in values}
    return RateLimitSettings(
        per_key=Bucket(float(values.get("rate_per_key", 0)), values.get("burst_per_key", 0)),
        per_tenant=Bucket(float(values.get("rate_per_tenant", 0)), values.get("burst_per_tenant", 0)),
        **batching,
    )


_KEYSTONE_KEYS: dict[str, tuple[tuple[type, ...], Check | None]] = {
    "auth_url": ((str,), lambda v: None if re.match(r"^https?://", v) else "must be an http:// or https:// URL"),
    "username": ((str,), None),
    "password": ((str,), None),
    "project_name": ((str,), None),
    "user_domain_name": ((str,), None),
    "project_domain_name": ((str,), None),
    "cache_seconds": ((int, float), _non_negative),
    "timeout": ((int, float), _positive),
    "role_map": (
        (dict,),
        lambda v: (
            None
            if all(r in ("admin", "member", "reader") for r in v.values())
            else "roles must map to admin, member or reader"
        ),
    ),
}


def _keystone(table: Any, err: Callable[..., Exception]) -> KeystoneSettings | None:
    """``[identity.keystone]``: accept Keystone tokens from this Keystone (absent = access keys only)."""
    if not isinstance(table, dict):
        raise err("identity", "must be a table")
    unknown = set(table) - {"keystone"}
    if unknown:
        raise err(f"identity.{sorted(unknown)[0]}", "unknown section")
    if "keystone" not in table:
        return None
    values = _scalars(table["keystone"], "identity.keystone", _KEYSTONE_KEYS, err)
    for key in ("auth_url", "username", "password", "project_name"):
        if key not in values:
            raise err(f"identity.keystone.{key}", "missing")
    if "role_map" in values:
        values["role_map"] = {**DEFAULT_ROLE_MAP, **values["role_map"]}
    return KeystoneSettings(**values)


def _scalars(
    table: Any,
    section: str,
    schema: dict[str, tuple[tuple[type, ...], Check | None]],
    err: Callable[..., Exception],
) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise err(section, "must be a table")
    out = {}
    for key, value in table.items():
        if key not in schema:
            raise err(f"{section}.{key}", "unknown setting")
        types, check = schema[key]
        if isinstance(value, bool) or not isinstance(value, types):
            raise err(f"{section}.{key}", f"must be {' or '.join(t.__name__ for t in types)}")
        problem = check(value) if check else None
        if problem:
            raise err(f"{section}.{key}", problem)
        out[key] = value
    return out


def _table(data: Mapping[str, Any], key: str, err: Callable[..., Exception]) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise err(key, "must be a table")
    return value


def _account(
    tenant: str,
    region: str,
    table: Any,
    backends: dict[str, Any],
    prefix: str,
    err: Callable[..., Exception],
) -> AccountConfig:
    if not isinstance(table, dict):
        raise err(prefix, "must be a table")
    backend = table.get("backend")
    if backend not in backends:
        raise err(f"{prefix}.backend", f"unknown backend {backend!r} (defined: {', '.join(sorted(backends))})")
    zones = table.get("zones", [f"{region}a"])
    if not (isinstance(zones, list) and zones and all(isinstance(z, str) and z for z in zones)):
        raise err(f"{prefix}.zones", "must be a non-empty list of zone names")
    driver_name = backends[backend]["driver"]
    try:
        driver = load_driver(driver_name)
    except InvalidParameter as exc:
        raise err(f"backends.{backend}.driver", exc.message) from None
    options = {k: v for k, v in backends[backend].items() if k != "driver"}
    options.update({k: v for k, v in table.items() if k not in _REGION_RESERVED})
    problems = driver.validate_options(options)
    if problems:
        raise err(f"backends.{backend}", problems[0])
    return AccountConfig(
        key=f"{tenant}/{region}",
        tenant=tenant,
        region=region,
        backend=backend,
        driver=driver_name,
        zones=tuple(zones),
        options=options,
    )


def _users(items: Any, tenants: dict[str, Tenant], err: Callable[..., Exception]) -> tuple[User, ...]:
    if not isinstance(items, list):
        raise err("users", "must be an array of tables ([[users]])")
    users = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = f"users[{i}]"
        if not isinstance(item, dict):
            raise err(key, "must be a table")
        extra = set(item) - _USER_KEYS
        if extra:
            raise err(f"{key}.{sorted(extra)[0]}", "unknown setting")
        for required in ("access_key", "secret", "tenant"):
            if not isinstance(item.get(required), str) or not item[required]:
                raise err(f"{key}.{required}", "missing or not a string")
        if item["tenant"] not in tenants:
            raise err(f"{key}.tenant", f"unknown tenant {item['tenant']!r}")
        role = item.get("role", "member")
        if role not in ROLE_PERMISSIONS:
            raise err(f"{key}.role", f"must be one of {', '.join(ROLE_PERMISSIONS)}")
        if item["access_key"] in seen:
            raise err(f"{key}.access_key", "duplicate access key")
        seen.add(item["access_key"])
        users.append(
            User(
                access_key=item["access_key"],
                secret=item["secret"],
                tenant=item["tenant"],
                role=role,
                name=item.get("name", ""),
            )
        )
    return tuple(users)


def _account_id_for(tenant: str) -> str:
    """A stable 12-digit account id for a tenant that does not set one (EC2 OwnerId, STS Account)."""
    return str(int(hashlib.sha256(tenant.encode()).hexdigest(), 16) % 10**12).zfill(12)
