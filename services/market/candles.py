"""OHLCV candles as numpy columns: rounding to the tick grid, aggregation, domain Candles.

The simulator produces one-minute columns; every longer interval is aggregated from them
(first open, highest high, lowest low, last close, summed volume, last open interest), so a
5-minute or daily candle always agrees with the minutes inside it. Intraday buckets align to
each session's open (09:15, 09:20, ... on NSE; midnight in the always-open mode), as Indian
brokers draw them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from services.clock import IST
from services.market.model import Candle, Interval

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def round_to_tick(values: FloatArray, tick: float | FloatArray) -> FloatArray:
    """Nearest multiple of `tick` (halves up), never below one tick: prices stay positive."""
    ticks = np.maximum(np.floor(values / tick + 0.5), 1.0)
    result: FloatArray = ticks * tick
    return result


def to_price(value: float, tick: Decimal) -> Decimal:
    """One float price as a Decimal on the tick grid (halves up, at least one tick)."""
    ticks = max(int(np.floor(value / float(tick) + 0.5)), 1)
    return tick * ticks


@dataclass(frozen=True, slots=True)
class CandleArrays:
    """Candles as columns, oldest first; prices already on the instrument's tick grid."""

    start: IntArray  # epoch seconds of each candle's first instant
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: IntArray
    oi: IntArray

    def __len__(self) -> int:
        return len(self.start)

    @staticmethod
    def empty() -> CandleArrays:
        none = np.zeros(0, dtype=np.float64)
        count = np.zeros(0, dtype=np.int64)
        return CandleArrays(count, none, none, none, none, count, count)

    @staticmethod
    def concatenate(parts: list[CandleArrays]) -> CandleArrays:
        if not parts:
            return CandleArrays.empty()
        return CandleArrays(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in _COLUMNS)
        )

    def rounded(self, tick: float) -> CandleArrays:
        """The same candles with prices on the tick grid."""
        return CandleArrays(
            self.start, round_to_tick(self.open, tick), round_to_tick(self.high, tick),
            round_to_tick(self.low, tick), round_to_tick(self.close, tick), self.volume, self.oi,
        )  # fmt: skip


_COLUMNS = ("start", "open", "high", "low", "close", "volume", "oi")


def aggregate(minutes: CandleArrays, groups: IntArray, starts: IntArray) -> CandleArrays:
    """Merge consecutive rows sharing a group id into one candle starting at `starts`."""
    if len(minutes) == 0:
        return minutes
    first = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1])))
    last = np.concatenate((first[1:] - 1, [len(groups) - 1]))
    return CandleArrays(
        start=starts[first],
        open=minutes.open[first],
        high=np.maximum.reduceat(minutes.high, first),
        low=np.minimum.reduceat(minutes.low, first),
        close=minutes.close[last],
        volume=np.add.reduceat(minutes.volume, first),
        oi=minutes.oi[last],
    )


def intraday_buckets(
    interval: Interval, day_numbers: IntArray, sessions: IntArray, positions: IntArray,
    minute_starts: IntArray,
) -> tuple[IntArray, IntArray]:  # fmt: skip
    """Group ids and aligned start instants of `interval` buckets for one-minute rows.

    `positions` is each minute's offset from its session's open, so buckets restart at every
    session (an MCX evening session starts its own hourly candles).
    """
    width = interval.seconds // 60
    bucket = positions // width
    groups = (day_numbers * 64 + sessions) * 100_000 + bucket
    starts = minute_starts - (positions % width) * 60
    return groups, starts


def day_start_epoch(day: date) -> int:
    """Epoch second of 00:00 IST on `day`: a daily candle's start."""
    return int(datetime(day.year, day.month, day.day, tzinfo=IST).timestamp())


def to_candles(arrays: CandleArrays, tick: Decimal) -> list[Candle]:
    """Domain candles with Decimal prices (each distinct price is converted once)."""
    if len(arrays) == 0:
        return []
    step = float(tick)
    columns = [
        np.rint(getattr(arrays, name) / step).astype(np.int64)
        for name in ("open", "high", "low", "close")
    ]
    price = {ticks: tick * ticks for ticks in np.unique(np.concatenate(columns)).tolist()}
    opens, highs, lows, closes = (column.tolist() for column in columns)
    # IST has no daylight saving, so an offset from the first start is exact and much
    # cheaper than a time-zone conversion per candle.
    origin = int(arrays.start[0])
    first = datetime.fromtimestamp(origin, IST)
    offsets = (arrays.start - origin).tolist()
    rows = zip(offsets, opens, highs, lows, closes, arrays.volume.tolist(), arrays.oi.tolist(),
               strict=True)  # fmt: skip
    candles = [
        Candle(first + timedelta(seconds=offset), price[up], price[top], price[bottom],
               price[down], volume, interest)
        for offset, up, top, bottom, down, volume, interest in rows
    ]  # fmt: skip
    return candles
