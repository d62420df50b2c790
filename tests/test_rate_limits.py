"""Moving-window rate limits: exact counts, honest retry-after, per caller, no leaks."""

from __future__ import annotations

import threading

import pytest

from services.errors import RateLimited
from services.rate_limits import Limit, MemoryCounter, RateLimits, SharedCounter, parse_limits


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_parse_from_the_settings_notation() -> None:
    assert parse_limits("10 per second;40 per minute") == (Limit(10, 1), Limit(40, 60))
    assert parse_limits("25 per hour") == (Limit(25, 3600),)


def test_window_moves_with_time_and_tells_when_a_slot_frees() -> None:
    clock = FakeTime()
    counter = MemoryCounter(clock)
    limit = Limit(3, 10)
    for offset in (0.0, 2.0, 4.0):
        clock.now = 1000.0 + offset
        assert counter.hit((limit,), "a") == 0.0
    clock.now = 1005.0
    assert counter.hit((limit,), "a") == pytest.approx(5.0)  # the first hit leaves at 1010
    clock.now = 1010.0
    assert counter.hit((limit,), "a") == 0.0  # exactly one slot freed
    assert counter.hit((limit,), "a") == pytest.approx(2.0)  # the next leaves at 1012


def test_refused_requests_are_not_counted() -> None:
    clock = FakeTime()
    counter = MemoryCounter(clock)
    limit = Limit(1, 1)
    assert counter.hit((limit,), "a") == 0.0
    for _ in range(100):
        assert counter.hit((limit,), "a") > 0
    clock.now += 1.0
    assert counter.hit((limit,), "a") == 0.0


def test_callers_and_limit_names_are_counted_apart() -> None:
    limits = RateLimits(MemoryCounter(FakeTime()))
    limits.check("1 per minute", "orders", "key:a")
    limits.check("1 per minute", "orders", "key:b")
    limits.check("1 per minute", "smart", "key:a")
    with pytest.raises(RateLimited) as refused:
        limits.check("1 per minute", "orders", "key:a")
    assert refused.value.retry_after == 60
    assert refused.value.status == 429


def test_compound_limit_refuses_on_the_tighter_window_and_counts_nothing() -> None:
    clock = FakeTime()
    limits = RateLimits(MemoryCounter(clock))
    both = "2 per second;4 per minute"
    for second in (0, 0, 1, 1):
        clock.now = 1000.0 + second
        limits.check(both, "api", "k")
    clock.now = 1002.0
    with pytest.raises(RateLimited) as refused:
        limits.check(both, "api", "k")
    assert refused.value.retry_after == 58  # the minute window frees at 1060
    with pytest.raises(RateLimited):
        limits.check(both, "api", "k")
    clock.now = 1060.0  # two of the four have left the minute; no refused call was counted
    limits.check(both, "api", "k")
    limits.check(both, "api", "k")
    with pytest.raises(RateLimited):
        limits.check(both, "api", "k")


def test_failure_only_limits_check_without_counting() -> None:
    limits = RateLimits(MemoryCounter(FakeTime()))
    for _ in range(10):
        limits.ensure_allowed("2 per minute", "login", "ip")  # successes are never counted
    limits.count("2 per minute", "login", "ip")
    limits.count("2 per minute", "login", "ip")
    with pytest.raises(RateLimited):
        limits.ensure_allowed("2 per minute", "login", "ip")


def test_idle_windows_are_dropped() -> None:
    clock = FakeTime()
    counter = MemoryCounter(clock)
    for caller in range(5000):
        counter.hit((Limit(5, 1),), f"caller-{caller}")
    clock.now += 2
    for _ in range(5000):
        counter.hit((Limit(5, 1),), "steady")
    assert counter.hit((Limit(5, 1),), "steady") > 0
    assert len(counter._windows) == 1


def test_concurrent_callers_never_exceed_the_limit() -> None:
    limits = RateLimits(MemoryCounter())
    allowed = []
    barrier = threading.Barrier(8)

    def caller() -> None:
        barrier.wait()
        for _ in range(100):
            try:
                limits.check("150 per minute", "api", "shared")
                allowed.append(1)
            except RateLimited:
                pass

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 150


def test_shared_counter_follows_the_same_rules() -> None:
    # The shared counter's logic over the `limits` storage; Redis is the same storage API.
    limits = RateLimits(SharedCounter("memory://"))
    limits.check("2 per minute", "api", "k")
    limits.check("2 per minute", "api", "k")
    with pytest.raises(RateLimited) as refused:
        limits.check("2 per minute", "api", "k")
    assert 1 <= refused.value.retry_after <= 60
    limits.check("2 per minute", "api", "other")
    limits.ensure_allowed("1 per minute", "login", "ip")
    limits.count("1 per minute", "login", "ip")
    with pytest.raises(RateLimited):
        limits.ensure_allowed("1 per minute", "login", "ip")


def test_shared_counter_over_a_real_redis_counts_across_desks(redis_url: str) -> None:
    # Two desk processes each build their own limiter on the same Redis: one budget.
    first, second = RateLimits(SharedCounter(redis_url)), RateLimits(SharedCounter(redis_url))
    first.check("3 per minute", "orders", "key:a")
    second.check("3 per minute", "orders", "key:a")
    first.check("3 per minute", "orders", "key:a")
    with pytest.raises(RateLimited) as refused:
        second.check("3 per minute", "orders", "key:a")
    assert 1 <= refused.value.retry_after <= 60
    second.check("3 per minute", "orders", "key:b")  # another key has its own budget
