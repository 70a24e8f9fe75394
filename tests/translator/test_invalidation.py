"""Tracked reads over a real Redis: what one read stays trusted until another client changes a key it read (in a
command or inside a script), and nothing read before is trusted once the subscriber is lost or Redis flushed."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from translator.invalidation import Invalidations

SCRIPT = "return redis.call('HGET', KEYS[1], 'f')"


@pytest.fixture
def tracking(redis_client: redis.Redis) -> Iterator[Invalidations]:
    inv = Invalidations(redis_client)
    yield inv
    inv.close()


def settled(writer: redis.Redis, inv: Invalidations) -> None:
    """A round trip after the writes: Redis has sent out their invalidations before it answers anything else."""
    writer.ping()
    inv.poll()


def test_a_read_holds_until_another_client_changes_a_key_it_read(redis_client, tracking) -> None:
    redis_client.set("a", 1)
    redis_client.hset("h", "f", 1)
    sha = redis_client.script_load(SCRIPT)
    read = tracking.read([("GET", "a"), ("EVALSHA", sha, 1, "h")])
    assert read is not None
    mark, replies = read
    assert replies == [b"1", b"1"]

    redis_client.set("unread", 1)
    settled(redis_client, tracking)
    assert tracking.holds(mark, [b"a", b"h"])  # a key nobody read changed: nothing to say

    redis_client.hset("h", "f", 2)  # read inside the script
    settled(redis_client, tracking)
    assert tracking.holds(mark, [b"a"]) and not tracking.holds(mark, [b"h"])

    again = tracking.read([("EVALSHA", sha, 1, "h")])
    assert again is not None and again[1] == [b"2"] and tracking.holds(again[0], [b"a", b"h"])
    redis_client.set("a", 2)
    settled(redis_client, tracking)
    assert not tracking.holds(again[0], [b"a"])


def test_an_error_reply_is_returned_in_its_place(redis_client, tracking) -> None:
    read = tracking.read([("EVALSHA", "0" * 40, 1, "h"), ("GET", "a")])
    assert read is not None
    missing, value = read[1]
    assert isinstance(missing, redis.exceptions.NoScriptError) and value is None


def test_nothing_read_before_holds_once_the_subscriber_is_lost(redis_client, tracking) -> None:
    read = tracking.read([("GET", "a")])
    assert read is not None
    redis_client.client_kill_filter(_type="pubsub")
    settled(redis_client, tracking)
    assert not tracking.holds(read[0], [b"a"])

    # the next read subscribes again and tracks afresh
    fresh = tracking.read([("GET", "a")])
    assert fresh is not None and tracking.holds(fresh[0], [b"a"])
    redis_client.set("a", 3)
    settled(redis_client, tracking)
    assert not tracking.holds(fresh[0], [b"a"])


def test_nothing_read_before_holds_after_a_flush(redis_client, tracking) -> None:
    redis_client.set("a", 1)
    read = tracking.read([("GET", "a")])
    assert read is not None
    redis_client.flushall()
    settled(redis_client, tracking)
    assert not tracking.holds(read[0], [b"a"])


def test_past_the_keys_it_remembers_nothing_read_before_holds(redis_client) -> None:
    inv = Invalidations(redis_client, max_keys=3)
    try:
        read = inv.read([("MGET", *(f"k{i}" for i in range(5)))])
        assert read is not None
        for i in range(4):
            redis_client.set(f"k{i}", 1)
        settled(redis_client, inv)
        assert not inv.holds(read[0], [b"k4"])  # unchanged, but the changes overflowed what is remembered
    finally:
        inv.close()


def test_a_forked_child_trusts_nothing_its_parent_read(redis_client, tracking) -> None:
    read = tracking.read([("GET", "a")])
    assert read is not None
    pid = os.fork()
    if pid == 0:  # the child: its parent's mark must not hold, and it must not read the parent's subscriber
        tracking.poll()
        os._exit(0 if not tracking.holds(read[0], [b"a"]) and tracking._sub is None else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    tracking.poll()
    assert tracking.holds(read[0], [b"a"])  # the parent's own connections are untouched
    redis_client.set("a", 1)
    settled(redis_client, tracking)
    assert not tracking.holds(read[0], [b"a"])
