"""Redis Cluster as the gateway's store: ``redis-cluster://[[user]:password@]host:port[,host:port...]``.

The hosts are seeds: the client asks any of them for the slot map and then talks to every master itself,
following the map as it changes (a failover, a resharding). Every key the gateway writes together carries a
hash tag (per tenant, per account, per account and kind, or the job queue's), so each script, transaction
and multi-key command touches one slot; pipelines that span slots are split by node by redis-py.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry

log = logging.getLogger("cloudgate")

SCHEME = "redis-cluster"
#: seconds between attempts to read the slot map while no seed answers (a worker starting during an outage)
_RECONNECT_PAUSE = 1.0
_NODE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>\d{1,5})$")


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """What a ``redis-cluster://`` URL says: the seed nodes and the credentials every node shares."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None


def is_cluster_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() == SCHEME


def parse_url(url: str) -> ClusterUrl:
    """The URL's seeds and credentials; ValueError saying what is wrong (never echoing a password)."""
    scheme, sep, rest = url.partition("://")
    if scheme.lower() != SCHEME or not sep:
        raise ValueError(f"must start with {SCHEME}://")
    if "?" in rest or "#" in rest:
        raise ValueError("must have no query or fragment (timeouts are [gateway] settings)")
    netloc, _, path = rest.partition("/")
    if path not in ("", "0"):
        raise ValueError("must name no database (a cluster has only database 0)")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if username and password is None:  # user@host: the user's password is missing, not empty
            raise ValueError("names a user without a password (use user:password@ or :password@)")
    nodes = []
    for node in hosts.split(","):
        found = _NODE.match(node.strip())
        if found is None:
            raise ValueError(f"seed {node.strip()!r} is not HOST:PORT")
        port = int(found["port"])
        if not 0 < port < 65536:
            raise ValueError(f"seed {node.strip()!r} has no valid port")
        nodes.append((found["v6"] or found["host"], port))
    return ClusterUrl(tuple(nodes), username, password)


def url_problem(url: str) -> str | None:
    """What is wrong with a ``redis-cluster://`` URL, for the config's one-line error; None when it is fine."""
    try:
        parse_url(url)
    except ValueError as exc:
        return f"{SCHEME}:// URL {exc}"
    return None


#: what redis-py's cluster client says when the caller misused it (keys of several slots in one transaction or
#: blocking command, a command it cannot route): a bug to surface as one, never to answer as a Redis outage
_MISUSE = ("same slot", "same key slot", "is blocked", "Invalid args", "No way to dispatch", "not implemented")


@contextlib.contextmanager
def _as_redis_errors() -> Iterator[None]:
    """The cluster client's own failures (no node answers, a slot nobody serves) are not ``RedisError``s; every
    caller treats Redis faults as ``RedisError`` (a 503, a job runner that tries again), so they become one.
    Misuse stays as it is."""
    try:
        yield
    except RedisClusterException as exc:
        if any(words in str(exc) for words in _MISUSE):
            raise
        raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc


class _Pipeline(ClusterPipeline):
    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _as_redis_errors():
            return super().execute_command(*args, **kwargs)

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        with _as_redis_errors():
            return super().execute(raise_on_error)


class GatewayCluster(RedisCluster):
    """redis-py's cluster client whose every failure to reach the cluster is a ``redis.RedisError``."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        with _as_redis_errors():
            return super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)
        pipe.__class__ = _Pipeline  # the same object with its faults translated (it adds no state)
        return pipe

    def close(self) -> None:
        """Close every connection but keep the slot map, as one server's client closes its pool: a thread still
        at work while its worker stops connects again (redis-py's ``close`` forgets the nodes, and such a thread
        would fail on a client with none)."""
        self.disconnect_connection_pools()


def connect_cluster(url: str, connect_timeout: float, socket_timeout: float, wait: float | None = None) -> RedisCluster:
    """A cluster client with the bounded waits of the single-server one (gateway/app.py ``connect_redis``).

    A command that meets a refused connection or a timeout is tried once more, at once, after the client
    has read the slot map again (the master it used may have just been replaced); still failing, it raises
    and the request answers 503. The client follows ``MOVED``/``ASK`` redirections itself, as it must.

    redis-py reads the slot map as it makes the client: while no seed answers, this waits (a worker starting
    during an outage boots once the cluster is back, or gunicorn's worker timeout replaces it) rather than
    failing, since a worker that fails to boot makes gunicorn stop the whole gateway.
    """
    parsed = parse_url(url)
    options: dict[str, Any] = {
        "startup_nodes": [ClusterNode(host, port) for host, port in parsed.nodes],
        "username": parsed.username,
        "password": parsed.password,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 1),
        "health_check_interval": 30,
        "max_connections": 64,
    }
    deadline = None if wait is None else time.monotonic() + wait
    warned = False
    while True:
        try:
            return GatewayCluster(**options)
        except RedisClusterException as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise redis.ConnectionError(f"Redis Cluster: {exc}") from exc
            if not warned:
                log.warning("Redis Cluster unreachable (%s): waiting for it", exc)
                warned = True
            time.sleep(_RECONNECT_PAUSE)
