"""The Redis client the translator is handed: one server's (``redis.Redis``, Sentinel's master included) or a
Redis Cluster's, which is not a subclass of it but offers the same commands, pipelines and scripts."""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.cluster import RedisCluster

RedisClient: TypeAlias = redis.Redis | RedisCluster


def is_cluster(client: Any) -> bool:
    """Whether keys written together must share a slot and one transaction may not span slots."""
    return isinstance(client, RedisCluster)
