"""Per-instrument matching state: the simulated depth of each second and the resting orders.

Liquidity: a MARKET (or marketable LIMIT) order walks the five simulated levels of the second
it arrives in, and what it takes is remembered for that (instrument, second), so two large
orders in one second share the depth instead of both taking it. A new second brings a fresh
book, as the simulator draws one per second.

Resting orders sit in four heaps with lazy deletion (an entry is stale once its order is no
longer live or its terms changed, i.e. its `generation` moved on):

- buy limits, highest price first; fill when the last price trades at or below the limit;
- sell limits, lowest price first; fill when the last price trades at or above the limit;
- buy stops, lowest trigger first; trigger when the last price reaches the trigger or above;
- sell stops, highest trigger first; trigger at the trigger or below.

A price that crosses nothing costs four comparisons of heap tops.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from services.market.model import Depth, DepthLevel, Instrument
from services.sandbox.state import OrderState

PRICE_SCALE = 10_000  # prices are on ticks of at least 0.0025: whole units of 0.0001
KEPT_SECONDS = 4  # depth snapshots (and the liquidity taken from them) kept per instrument

_sequence = itertools.count()


def price_key(price: Decimal) -> int:
    return int(price * PRICE_SCALE)


class Hit(Enum):
    LIMIT = "limit"  # a resting limit crossed: fills at its own price
    STOP = "stop"  # a stop triggered: becomes a market (SL-M) or limit (SL) order


@dataclass(frozen=True, slots=True)
class PlannedFill:
    level: int
    price: Decimal
    quantity: int


class DepthSnapshot:
    """One second's depth and how much of each level the sandbox's orders already took."""

    __slots__ = ("depth", "taken_asks", "taken_bids")

    def __init__(self, depth: Depth) -> None:
        self.depth = depth
        self.taken_asks = [0] * len(depth.sell)
        self.taken_bids = [0] * len(depth.buy)

    def plan(self, buying: bool, quantity: int, limit: Decimal | None) -> list[PlannedFill]:
        """Fills level by level, best first, within `limit` (None: any price); not taken yet."""
        levels: tuple[DepthLevel, ...] = self.depth.sell if buying else self.depth.buy
        taken = self.taken_asks if buying else self.taken_bids
        fills: list[PlannedFill] = []
        left = quantity
        for index, level in enumerate(levels):
            if left == 0:
                break
            if limit is not None and (level.price > limit if buying else level.price < limit):
                break
            free = level.quantity - taken[index]
            if free <= 0:
                continue
            size = min(free, left)
            fills.append(PlannedFill(index, level.price, size))
            left -= size
        return fills

    def take(self, buying: bool, fills: list[PlannedFill]) -> None:
        taken = self.taken_asks if buying else self.taken_bids
        for fill in fills:
            taken[fill.level] += fill.quantity


class InstrumentBook:
    """Depth snapshots and resting orders of one instrument, guarded by `lock`.

    Lock order: a user's lock, then an instrument's, never the other way round.
    """

    __slots__ = ("_asks", "_bids", "_buy_stops", "_sell_stops", "instrument", "lock", "snapshots")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.lock = threading.Lock()
        self.snapshots: dict[int, DepthSnapshot] = {}
        self._bids: list[tuple[int, int, int, OrderState]] = []
        self._asks: list[tuple[int, int, int, OrderState]] = []
        self._buy_stops: list[tuple[int, int, int, OrderState]] = []
        self._sell_stops: list[tuple[int, int, int, OrderState]] = []

    def snapshot(self, second: int, load: Callable[[], Depth]) -> DepthSnapshot:
        """The depth of `second` (drawn once); call with the lock held."""
        found = self.snapshots.get(second)
        if found is None:
            found = DepthSnapshot(load())
            if len(self.snapshots) >= KEPT_SECONDS:
                del self.snapshots[min(self.snapshots)]
            self.snapshots[second] = found
        return found

    @property
    def has_resting(self) -> bool:
        return bool(self._bids or self._asks or self._buy_stops or self._sell_stops)

    def rest_limit(self, order: OrderState, buying: bool) -> None:
        key = price_key(order.price)
        entry = (-key if buying else key, next(_sequence), order.generation, order)
        heapq.heappush(self._bids if buying else self._asks, entry)

    def rest_stop(self, order: OrderState, buying: bool) -> None:
        key = price_key(order.trigger)
        entry = (key if buying else -key, next(_sequence), order.generation, order)
        heapq.heappush(self._buy_stops if buying else self._sell_stops, entry)

    def crossed(self, key: int) -> list[tuple[OrderState, int, Hit]]:
        """Pop every live resting order the last price `key` fills or triggers."""
        hits: list[tuple[OrderState, int, Hit]] = []
        bids, asks = self._bids, self._asks
        if bids and -bids[0][0] >= key:
            _pop_while(bids, lambda top: -top >= key, Hit.LIMIT, hits)
        if asks and asks[0][0] <= key:
            _pop_while(asks, lambda top: top <= key, Hit.LIMIT, hits)
        stops = self._buy_stops
        if stops and stops[0][0] <= key:
            _pop_while(stops, lambda top: top <= key, Hit.STOP, hits)
        stops = self._sell_stops
        if stops and -stops[0][0] >= key:
            _pop_while(stops, lambda top: -top >= key, Hit.STOP, hits)
        return hits

    def resting_count(self) -> int:
        """Live entries (stale ones excluded); for tests and diagnostics."""
        heaps = (self._bids, self._asks, self._buy_stops, self._sell_stops)
        return sum(1 for heap in heaps for entry in heap if _is_current(entry))

    def compact(self) -> None:
        """Drop stale entries (after mass cancellations or a day's end)."""
        for heap in (self._bids, self._asks, self._buy_stops, self._sell_stops):
            live = [entry for entry in heap if _is_current(entry)]
            heapq.heapify(live)
            heap[:] = live


def _is_current(entry: tuple[int, int, int, OrderState]) -> bool:
    order = entry[3]
    return order.generation == entry[2] and order.status.is_live


def _pop_while(
    heap: list[tuple[int, int, int, OrderState]],
    crosses: Callable[[int], bool],
    hit: Hit,
    hits: list[tuple[OrderState, int, Hit]],
) -> None:
    while heap and crosses(heap[0][0]):
        entry = heapq.heappop(heap)
        if _is_current(entry):
            hits.append((entry[3], entry[2], hit))
