"""Broker-like ids: the IST trading date as YYMMDD followed by an 8-digit running number.

Numbers continue from the highest id stored for the day, so ids stay unique across restarts
(one engine per sandbox database; the sandbox is a desk singleton).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import date

LIMIT = 100_000_000


class IdSequence:
    def __init__(self, last_used: dict[str, int]) -> None:
        self._last = dict(last_used)
        self._counters: dict[date, tuple[str, Iterator[int]]] = {}
        self._lock = threading.Lock()

    def next(self, day: date) -> str:
        found = self._counters.get(day)
        if found is None:
            with self._lock:
                found = self._counters.get(day)
                if found is None:
                    prefix = day.strftime("%y%m%d")
                    found = (prefix, itertools.count(self._last.get(prefix, 0) + 1))
                    self._counters[day] = found
        prefix, counter = found
        number = next(counter)  # atomic: itertools.count is safe across threads
        if number >= LIMIT:
            raise RuntimeError(f"more than {LIMIT - 1} sandbox ids on {prefix}")
        return f"{prefix}{number:08d}"


class IdSource:
    """Order ids and trade ids, each its own sequence, prefixed with the IST trading day."""

    def __init__(self, orders: dict[str, int], trades: dict[str, int]) -> None:
        self._orders = IdSequence(orders)
        self._trades = IdSequence(trades)

    def order_id(self, day: date) -> str:
        return self._orders.next(day)

    def trade_id(self, day: date) -> str:
        return self._trades.next(day)
