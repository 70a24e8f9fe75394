"""Circuit breakers: the state machine on a clock the test moves, and BackendCaller behind them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from gateway.config import ConfigError, parse
from translator.breaker import Breaker, BreakerSettings, CircuitOpen, State, shared_key
from translator.calls import BackendCaller, RetryPolicy
from translator.errors import BackendUnavailable, NotFound, TransientBackendError

SETTINGS = BreakerSettings(failures=3, window=10.0, cooldown=5.0)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(settings: BreakerSettings = SETTINGS) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker("t/r", settings, clock), clock


def test_opens_after_failures_within_window() -> None:
    b, clock = make()
    for _ in range(2):
        b.admit()
        assert b.failure() is False
    assert b.state is State.CLOSED
    b.admit()
    assert b.failure() is True
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpen) as raised:
        b.admit()
    assert isinstance(raised.value, BackendUnavailable) and raised.value.reason == "circuit_open"
    assert raised.value.retry_after == pytest.approx(5.0)
    clock.now += 2
    with pytest.raises(CircuitOpen) as raised:
        b.admit()
    assert raised.value.retry_after == pytest.approx(3.0)


def test_faults_older_than_window_do_not_count() -> None:
    b, clock = make()
    b.failure()
    b.failure()
    clock.now += 10.5
    assert b.failure() is False
    assert b.state is State.CLOSED
    b.failure()
    assert b.failure() is True


def test_an_answer_between_faults_starts_the_count_again() -> None:
    b, _ = make()
    for _ in range(5):  # a flaky cloud: faults, but never three in a row
        b.failure()
        b.failure()
        b.success()
    assert b.state is State.CLOSED
    b.failure()
    b.failure()
    assert b.failure() is True


def test_successes_and_client_errors_leave_closed_breaker_closed() -> None:
    b, _ = make()
    for _ in range(10):
        b.admit()
        b.success()
    assert b.state is State.CLOSED


def test_half_open_lets_one_probe_through_and_success_closes() -> None:
    b, clock = make()
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.admit() is True  # the probe
    assert b.state is State.HALF_OPEN
    with pytest.raises(CircuitOpen):
        b.admit()  # a second caller while the probe runs
    b.success()
    assert b.state is State.CLOSED
    assert b.admit() is False
    # counting starts afresh: two faults do not open it again
    b.failure()
    b.failure()
    assert b.state is State.CLOSED


def test_failed_probe_opens_for_another_cooldown() -> None:
    b, clock = make()
    for _ in range(3):
        b.failure()
    clock.now += 6.0
    assert b.admit() is True
    assert b.failure() is True
    assert b.state is State.OPEN
    clock.now += 4.9
    with pytest.raises(CircuitOpen):
        b.admit()
    clock.now += 0.2
    assert b.admit() is True


def test_neutral_outcome_releases_the_probe() -> None:
    b, clock = make()
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.admit() is True
    b.neutral()
    assert b.state is State.HALF_OPEN
    assert b.admit() is True


def test_open_for_only_opens_a_closed_breaker() -> None:
    b, clock = make()
    b.open_for(2.0)
    assert b.state is State.OPEN
    with pytest.raises(CircuitOpen) as raised:
        b.admit()
    assert raised.value.retry_after == pytest.approx(2.0)
    b.open_for(100.0)  # already open: its own end stands
    clock.now += 2.0
    assert b.admit() is True


# -- BackendCaller -------------------------------------------------------------------------------------------------
POLICY = RetryPolicy(attempts=3, initial_wait=0.0, max_wait=0.0, breaker=SETTINGS)


class Cloud:
    """A stand-in for a backend method: fails transiently while ``down``, counts the calls that reach it."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0
        self.error: Exception | None = None

    def __call__(self) -> str:
        self.calls += 1
        if self.error is not None:
            raise self.error
        if self.down:
            raise TransientBackendError("connection refused")
        return "ok"


def caller(clock: Callable[[], float], shared: redis.Redis | None = None) -> BackendCaller:
    return BackendCaller(POLICY, shared, clock)


def test_caller_stops_calling_a_cloud_that_is_down() -> None:
    clock, cloud = Clock(), Cloud()
    c = caller(clock)
    with pytest.raises(BackendUnavailable) as first:
        c.call("acct", "list", cloud)
    assert first.value.reason == "unavailable" and cloud.calls == 3
    with pytest.raises(CircuitOpen):  # the breaker opened: the rest is answered at once
        c.call("acct", "list", cloud)
    for _ in range(20):
        with pytest.raises(CircuitOpen):
            c.call("acct", "list", cloud)
    assert cloud.calls == 3
    # an account of its own is not affected
    other = Cloud()
    other.down = False
    assert c.call("acct2", "list", other) == "ok"
    # after the cool-down, one probe: the cloud is back, so the breaker closes
    cloud.down = False
    clock.now += SETTINGS.cooldown
    assert c.call("acct", "list", cloud) == "ok"
    assert c.breakers.get("acct").state is State.CLOSED
    assert cloud.calls == 4


def test_the_half_open_probe_is_the_accounts_check() -> None:
    """A call answered from a backend's memory (the EC2 backend's instance types) says nothing of the cloud: after a
    cool-down the account's check probes first, so a cloud still down keeps the breaker open."""
    clock, cloud = Clock(), Cloud()
    held: list[str] = []

    def memory() -> str:
        held.append("answered")
        return "held"

    c = BackendCaller(POLICY, None, clock, checks=lambda account: cloud)
    with pytest.raises(BackendUnavailable):
        c.call("acct", "list", cloud)
    clock.now += SETTINGS.cooldown
    with pytest.raises(CircuitOpen):  # the check failed: open again, and the call was not made
        c.call("acct", "list_flavors", memory)
    assert (c.breakers.get("acct").state, held, cloud.calls) == (State.OPEN, [], 4)
    cloud.down = False
    clock.now += SETTINGS.cooldown
    assert c.call("acct", "list_flavors", memory) == "held"
    assert (c.breakers.get("acct").state, held, cloud.calls) == (State.CLOSED, ["answered"], 5)


def test_failed_probe_is_not_retried() -> None:
    clock, cloud = Clock(), Cloud()
    c = caller(clock)
    with pytest.raises(BackendUnavailable):
        c.call("acct", "list", cloud)
    clock.now += SETTINGS.cooldown
    with pytest.raises(CircuitOpen):
        c.call("acct", "list", cloud)
    assert cloud.calls == 4  # the probe alone: its retry met the reopened breaker


def test_client_errors_count_as_answers() -> None:
    clock, cloud = Clock(), Cloud()
    cloud.error = NotFound("no such thing", kind="machine")
    c = caller(clock)
    for _ in range(10):
        with pytest.raises(NotFound):
            c.call("acct", "get", cloud)
    assert c.breakers.get("acct").state is State.CLOSED


def test_a_backend_that_says_unavailable_counts_as_a_fault() -> None:
    clock, cloud = Clock(), Cloud()
    cloud.error = BackendUnavailable("the account's credentials were refused", reason="credentials")
    c = caller(clock)
    for _ in range(SETTINGS.failures):
        with pytest.raises(BackendUnavailable) as raised:
            c.call("acct", "list", cloud)
        assert not isinstance(raised.value, CircuitOpen)
    with pytest.raises(CircuitOpen):
        c.call("acct", "list", cloud)
    assert cloud.calls == SETTINGS.failures  # not retried, and not called once open


def test_a_lack_of_capacity_is_an_answer() -> None:
    clock, cloud = Clock(), Cloud()
    cloud.error = BackendUnavailable("no capacity for this type", kind="machine", reason="capacity")
    c = caller(clock)
    for _ in range(10):
        with pytest.raises(BackendUnavailable):
            c.call("acct", "create_machines", cloud)
    assert c.breakers.get("acct").state is State.CLOSED


def test_breakers_off_with_zero_failures() -> None:
    clock, cloud = Clock(), Cloud()
    c = BackendCaller(RetryPolicy(attempts=1, breaker=BreakerSettings(failures=0)), None, clock)
    for _ in range(10):
        with pytest.raises(BackendUnavailable) as raised:
            c.call("acct", "list", cloud)
        assert raised.value.reason == "unavailable"
    assert cloud.calls == 10


def test_workers_share_an_opening_through_redis(redis_client: redis.Redis) -> None:
    clock = Clock()
    first, second = caller(clock, redis_client), caller(clock, redis_client)
    with pytest.raises(BackendUnavailable):
        first.call("acct", "list", Cloud())
    assert 0 < redis_client.pttl(shared_key("acct")) <= SETTINGS.cooldown * 1000
    cloud = Cloud()
    with pytest.raises(BackendUnavailable):  # its one fault finds the other worker's opening
        second.call("acct", "list", cloud)
    assert cloud.calls == 1  # its retry met the breaker the shared key opened
    assert second.breakers.get("acct").state is State.OPEN


# -- configuration -------------------------------------------------------------------------------------------------
MINIMAL = {
    "backends": {"sim": {"driver": "simulator"}},
    "tenants": {"t": {"regions": {"r": {"backend": "sim"}}}},
}


def test_config_keys_reach_the_breaker_and_defaults_hold() -> None:
    assert parse(MINIMAL).translator.retry.breaker == BreakerSettings(failures=5, window=10.0, cooldown=5.0)
    table = {"breaker_failures": 0, "breaker_window": 3, "breaker_cooldown": 1.5}
    assert parse({**MINIMAL, "translator": table}).translator.retry.breaker == BreakerSettings(0, 3.0, 1.5)


@pytest.mark.parametrize(
    ("key", "value"),
    [("breaker_failures", -1), ("breaker_failures", 2.5), ("breaker_window", 0), ("breaker_cooldown", "5s")],
)
def test_bad_config_values_are_refused(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as raised:
        parse({**MINIMAL, "translator": {key: value}})
    assert f"translator.{key}" in str(raised.value)
