"""Redis behind Sentinel: the gateway asks the sentinels which server is the master and follows it on failover.

One URL names the deployment (it goes wherever a Redis URL goes: ``redis_url``, ``CLOUDGATE_REDIS_URL``)::

    redis+sentinel://[:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]

``password`` authenticates to the Redis servers, ``sentinel_password`` to the sentinels (most run without one).
A ``[gateway.redis]`` table (``sentinels``, ``service``, ``db``, ``password``, ``sentinel_password``) is written
as the same URL by gateway/config.py, so the rest of the gateway knows one form.

Failover, as a client sees it: a connection to the old master breaks (or, if it is still up and demoted,
answers READONLY, which redis-py turns into a connection error); the command is retried once on a new
connection, which asks the sentinels for the master again. Until they have promoted a replica that retry fails
too and the request gets the usual 503 with ``Retry-After``; the next request after the promotion reaches the
new master.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import redis
from redis.sentinel import Sentinel

SCHEMES = ("redis+sentinel",)
#: ``host:port``, ``[v6]:port``
_ADDRESS = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})$")
_SERVICE = re.compile(r"^[A-Za-z0-9_.-]+$")
#: the query settings a Sentinel URL takes
_QUERY_KEYS = {"sentinel_password"}


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """Where a Sentinel-managed Redis is: the sentinels to ask, the service (master name) and the database."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str = field(default="", repr=False)
    sentinel_password: str = field(default="", repr=False)

    def url(self) -> str:
        """The one URL that names this target (passwords percent-encoded)."""
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.sentinels)
        query = f"?sentinel_password={quote(self.sentinel_password, safe='')}" if self.sentinel_password else ""
        return f"redis+sentinel://{auth}{hosts}/{self.service}/{self.db}{query}"


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SCHEMES


def parse_url(url: str) -> SentinelTarget:
    """The target a ``redis+sentinel://`` URL names; ValueError saying what is wrong (never echoing a password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ValueError("must start with redis+sentinel://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    password = ""
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, password = auth.partition(":")
        if user:
            raise ValueError("takes a password only (redis+sentinel://:password@host:port/service), not a user name")
        password = unquote(password)
    sentinels = tuple(parse_address(a) for a in netloc.split(",")) if netloc else ()
    if not sentinels:
        raise ValueError("names no sentinel (redis+sentinel://host:port[,host:port...]/service)")
    parts = [p for p in path.split("/")]
    if parts and parts[-1] == "":
        parts.pop()
    if not parts or not parts[0]:
        raise ValueError("names no service (the sentinels' master name: redis+sentinel://host:port/mymaster)")
    if len(parts) > 2:
        raise ValueError("has too many path parts (expected /service or /service/db)")
    service = unquote(parts[0])
    if not _SERVICE.match(service):
        raise ValueError(f"service name {service!r} may hold only letters, digits, '.', '_' and '-'")
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise ValueError(f"database {parts[1]!r} is not a number")
        db = int(parts[1])
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = set(options) - _QUERY_KEYS
    if unknown:
        raise ValueError(f"unknown option {sorted(unknown)[0]!r} (known: {', '.join(sorted(_QUERY_KEYS))})")
    return SentinelTarget(sentinels, service, db, password, options.get("sentinel_password", ""))


def parse_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``HOST:PORT`` or ``[V6]:PORT``."""
    match = _ADDRESS.match(text.strip())
    if not match:
        raise ValueError(f"sentinel address {text!r} is not HOST:PORT")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise ValueError(f"sentinel address {text!r} has no valid port")
    return match["v6"] or match["host"], port


def connect(url: str, **options: Any) -> redis.Redis:
    """A client of the service's current master, pooled as ``redis.Redis.from_url`` would be with ``options``
    (timeouts, retry policy, pool size)."""
    target = parse_url(url)
    # The sentinels are asked with the same timeouts and retry policy (redis-py's default would back off for
    # seconds on each sentinel that is down before trying the next).
    asking = {k: v for k, v in options.items() if k in ("socket_timeout", "socket_connect_timeout", "retry")}
    if target.sentinel_password:
        asking["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=asking)
    return sentinel.master_for(target.service, db=target.db, password=target.password or None, **options)


def close(client: Any) -> None:
    """Close a client; one made by ``connect`` closes the sentinels' connections behind it too (a cluster
    client has no pool of its own: one per node)."""
    client.close()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    if manager is not None:
        manager.close()
