"""Rate limits: moving windows per (limit name, caller), in memory or shared through Redis.

Limits are written as in the settings, e.g. "500 per second" or "10 per second;40 per minute".
`check()` raises RateLimited (with the seconds until a slot frees) when any window is full.

The in-memory counter is exact (one timestamp per counted request, pruned as the window moves),
needs no timer threads and takes one lock per call, so it costs a few microseconds on the order
path. With `REDIS_URL` set, several desk processes share the counts through the `limits`
package's Redis storage.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from services.errors import RateLimited

# Idle windows are dropped every this many calls, so callers that went away cost no memory.
_SWEEP_EVERY = 10_000


@dataclass(frozen=True, slots=True)
class Limit:
    amount: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.amount} per {self.seconds} seconds"


@functools.cache
def parse_limits(text: str) -> tuple[Limit, ...]:
    """'10 per second;40 per minute' → (Limit(10, 1), Limit(40, 60))."""
    return tuple(Limit(item.amount, item.get_expiry()) for item in parse_many(text))


class Counter(Protocol):
    def hit(self, limits: tuple[Limit, ...], key: str) -> float:
        """Count one request in every window, or in none when one is full.

        Returns 0.0 when counted, else the seconds until every window has room.
        """
        ...

    def wait_time(self, limits: tuple[Limit, ...], key: str) -> float:
        """Seconds until one more request would be allowed (0.0 now), counting nothing."""
        ...


class MemoryCounter:
    """Exact moving windows in this process; a check and its count are one atomic step."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._windows: dict[tuple[Limit, str], deque[float]] = {}
        self._calls = 0

    def hit(self, limits: tuple[Limit, ...], key: str) -> float:
        with self._lock:
            now = self._now()
            windows = [self._window(limit, key, now) for limit in limits]
            wait = self._wait(limits, windows, now)
            if wait == 0.0:
                for window in windows:
                    window.append(now)
            return wait

    def wait_time(self, limits: tuple[Limit, ...], key: str) -> float:
        with self._lock:
            now = self._now()
            windows = [self._window(limit, key, now) for limit in limits]
            return self._wait(limits, windows, now)

    @staticmethod
    def _wait(limits: tuple[Limit, ...], windows: list[deque[float]], now: float) -> float:
        wait = 0.0
        for limit, window in zip(limits, windows, strict=True):
            if len(window) >= limit.amount:
                # The window has room again once enough of its oldest requests have left it.
                leaves = window[len(window) - limit.amount] + limit.seconds
                wait = max(wait, leaves - now)
        return wait

    def _window(self, limit: Limit, key: str, now: float) -> deque[float]:
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        window = self._windows.get((limit, key))
        if window is None:
            window = self._windows[(limit, key)] = deque()
        start = now - limit.seconds
        while window and window[0] <= start:
            window.popleft()
        return window

    def _sweep(self, now: float) -> None:
        stale = [
            name
            for name, window in self._windows.items()
            if not window or window[-1] <= now - name[0].seconds
        ]
        for name in stale:
            del self._windows[name]


class SharedCounter:
    """Moving windows kept in Redis, shared by every desk process using the same server.

    Checking and counting are two steps here, so processes racing at the very edge of a
    window may let one request more through than the limit; the in-process counter is exact.
    """

    def __init__(self, url: str) -> None:
        self._strategy = MovingWindowRateLimiter(storage_from_string(url))

    def hit(self, limits: tuple[Limit, ...], key: str) -> float:
        wait = self.wait_time(limits, key)
        if wait == 0.0:
            for limit in limits:
                self._strategy.hit(_item(limit), key)
        return wait

    def wait_time(self, limits: tuple[Limit, ...], key: str) -> float:
        wait = 0.0
        for limit in limits:
            item = _item(limit)
            if not self._strategy.test(item, key):
                reset_at, _remaining = self._strategy.get_window_stats(item, key)
                wait = max(wait, reset_at - time.time(), 0.001)
        return wait


@functools.cache
def _item(limit: Limit) -> RateLimitItem:
    return parse_many(f"{limit.amount} per {limit.seconds} seconds")[0]


class RateLimits:
    """The desk's limits: `check(text, name, caller)` counts a request or raises RateLimited."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter

    @classmethod
    def from_url(cls, redis_url: str | None) -> RateLimits:
        return cls(SharedCounter(redis_url) if redis_url else MemoryCounter())

    def check(self, text: str, name: str, caller: str) -> None:
        """Count one request of `caller` against every limit in `text`, or raise RateLimited
        (counting nothing) when any of them is full."""
        wait = self._counter.hit(parse_limits(text), f"{name}/{caller}")
        if wait > 0:
            raise _refusal(wait)

    def ensure_allowed(self, text: str, name: str, caller: str) -> None:
        """Raise RateLimited when `caller` has no room left under `text`; count nothing.

        For limits that count only failures (sign-in): check first, `count()` after a failure.
        """
        wait = self._counter.wait_time(parse_limits(text), f"{name}/{caller}")
        if wait > 0:
            raise _refusal(wait)

    def count(self, text: str, name: str, caller: str) -> None:
        self._counter.hit(parse_limits(text), f"{name}/{caller}")


def _refusal(wait: float) -> RateLimited:
    return RateLimited(
        "Rate limit exceeded. Please slow down your requests.",
        retry_after=max(1, math.ceil(wait)),
    )
