"""A five-level order book drawn around the last price, deterministic for a key.

The touch is one to three ticks wide (wider for illiquid contracts) with the last price inside
it; further levels step away by one tick, sometimes two. Sizes thin out away from the touch and
are whole lots for derivatives; order counts grow sub-linearly with the size, as many small
orders and a few large ones would.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from services.market.model import DepthLevel
from services.market.paths import uniforms

LEVELS = 5
SIZE_DECAY = 0.8  # each level away from the touch holds this fraction of the one before
_SPREAD, _POSITION, _LAST = 0, 1, 2
_STEPS, _SIZES, _ORDERS = 3, 3 + 2 * LEVELS, 3 + 4 * LEVELS  # buy levels, then sell levels
_DRAWS = 3 + 6 * LEVELS


@dataclass(frozen=True, slots=True)
class Book:
    """Both sides best first, plus the touch and the size of the last trade."""

    bid: Decimal
    ask: Decimal
    buy: tuple[DepthLevel, ...]
    sell: tuple[DepthLevel, ...]
    last_quantity: int


def _side(
    touch: int, direction: int, tick: Decimal, lot: int, touch_lots: float, draws: list[float]
) -> tuple[DepthLevel, ...]:
    """One side's levels from the touch outwards; bids that would reach zero are left out."""
    levels: list[DepthLevel] = []
    price = touch
    offset = 0 if direction < 0 else LEVELS
    for level in range(LEVELS):
        if level:
            price += direction * (2 if draws[_STEPS + offset + level] < 0.2 else 1)
        if price < 1:
            break
        size = touch_lots * SIZE_DECAY**level * (0.5 + draws[_SIZES + offset + level])
        lots = max(1, round(size))
        orders = round(lots**0.6 * (0.5 + draws[_ORDERS + offset + level]))
        levels.append(DepthLevel(tick * price, lots * lot, min(max(orders, 1), lots)))
    return tuple(levels)


def order_book(
    last_ticks: int, tick: Decimal, lot: int, touch_lots: float, illiquidity: float, key: int
) -> Book:
    """The book around a last price of `last_ticks` ticks.

    Args:
        touch_lots: typical lots resting at the best price.
        illiquidity: 1 for a liquid contract; larger values widen the spread in proportion.
        key: stable key of (instrument, instant), so the same second shows the same book.
    """
    draws = uniforms(key, np.arange(_DRAWS, dtype=np.int64)).tolist()
    base = 1 + (draws[_SPREAD] < 0.35) + (draws[_SPREAD] < 0.1)
    spread = max(1, round(base * illiquidity))
    below = min(int(draws[_POSITION] * (spread + 1)), spread)
    bid = max(last_ticks - below, 1)
    ask = bid + spread
    buy = _side(bid, -1, tick, lot, touch_lots, draws)
    sell = _side(ask, 1, tick, lot, touch_lots, draws)
    last_lots = max(1, round(touch_lots * 0.05 * (0.2 + 2.0 * draws[_LAST])))
    return Book(tick * bid, tick * ask, buy, sell, last_lots * lot)
