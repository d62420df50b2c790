"""Each trading day's intraday path of a track, down to one point per second (log prices).

- A minute-level Brownian bridge from the day's open to its close, in variance time with a
  U-shaped intraday volatility profile (busier at the open and the close), carrying the day's
  jump as a step and `beta` times its parent's shape, so stocks move with their index within
  the day too.
- Within each minute, a one-second bridge between the minute's endpoints: 60 points, the last
  minute's last point being the close. Any minute can be drawn alone, bit-identical to the
  same minute drawn with the whole day, so ticks, quotes and candles always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import numpy as np

from services.market.paths import (
    DailySeries,
    FloatArray,
    IntArray,
    TrackSpec,
    hashed,
    normals,
    stable_key,
    uniforms,
)

OPEN_BOOST, CLOSE_BOOST, BOOST_WIDTH = 2.5, 1.5, 0.06  # U-shaped intraday volatility
SECONDS = 60  # points per minute
_SQRT_TWELVE = math.sqrt(12.0)


def second_increments(key: int, minutes: IntArray) -> FloatArray:
    """(60, len(minutes)) one-second steps (one column per minute) summing to unit variance.

    Uniform steps (four 16-bit draws per hash) are plenty for sub-minute noise, which the
    central limit theorem makes Gaussian within a minute, and they need no exp/log: the same
    minute computed alone or with the whole day gives bit-identical points. Columns, not
    rows, because numpy sums down axis 0 several times faster.
    """
    counters = minutes[:, None] * (SECONDS // 4) + np.arange(SECONDS // 4)[None, :]
    # An explicit little-endian view: the same four 16-bit draws on every platform.
    draws = hashed(key, counters).astype("<u8").view("<u2").reshape(len(minutes), SECONDS)
    scale = _SQRT_TWELVE / math.sqrt(SECONDS)
    steps = draws.T.astype(np.float64, order="C")
    steps *= scale / 65536.0
    steps += (0.5 / 65536.0 - 0.5) * scale
    return steps


@dataclass(frozen=True, slots=True)
class DayLayout:
    """A day's trading sessions as (start epoch second, minutes) pairs; points are seconds."""

    starts: tuple[int, ...]
    minutes: tuple[int, ...]

    @property
    def total_minutes(self) -> int:
        return sum(self.minutes)

    def point_at(self, epoch_second: int) -> int | None:
        """The last point at or before `epoch_second`; None before the first session opens."""
        passed = 0
        for start, minutes in zip(self.starts, self.minutes, strict=True):
            if epoch_second < start:
                return passed * SECONDS - 1 if passed else None
            if epoch_second < start + minutes * SECONDS:
                return passed * SECONDS + (epoch_second - start)
            passed += minutes
        return passed * SECONDS - 1

    def minute_starts(self) -> IntArray:
        """Epoch second at which each minute of the day starts."""
        pieces = [start + SECONDS * np.arange(minutes, dtype=np.int64)
                  for start, minutes in zip(self.starts, self.minutes, strict=True)]  # fmt: skip
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def minutes_into_session(self) -> IntArray:
        """Each minute's position inside its own session (candles align to session opens)."""
        pieces = [np.arange(minutes, dtype=np.int64) for minutes in self.minutes]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def session_of_minute(self) -> IntArray:
        """Which session (0, 1, ...) each minute of the day belongs to."""
        pieces = [np.full(minutes, number, dtype=np.int64)
                  for number, minutes in enumerate(self.minutes)]  # fmt: skip
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)

    def epoch_of_point(self, point: int) -> int:
        """Epoch second of a point of the day."""
        minute, second = divmod(point, SECONDS)
        for start, minutes in zip(self.starts, self.minutes, strict=True):
            if minute < minutes:
                return start + minute * SECONDS + second
            minute -= minutes
        raise ValueError(f"point {point} is past the day's last session")


@cache
def intraday_profile(minutes: int) -> FloatArray:
    """U-shaped weights (mean one) over a day's minutes: busier at the open and the close.

    Cached per session length, so the array is read-only.
    """
    position = (np.arange(minutes) + 0.5) / minutes
    weights = 1.0 + OPEN_BOOST * np.exp(-position / BOOST_WIDTH)
    weights += CLOSE_BOOST * np.exp(-(1.0 - position) / BOOST_WIDTH)
    result: FloatArray = weights / weights.mean()
    result.flags.writeable = False
    return result


@dataclass(frozen=True, slots=True)
class DayPath:
    """One track's minute-level path on one trading day (log prices)."""

    day: int  # days since EPOCH
    layout: DayLayout
    boundary: FloatArray  # (M+1,) at each minute's first point, then the close (last point)
    shape: FloatArray  # (M+1,) departure from the open-to-close line, 0 at both ends
    scale: FloatArray  # (M,) standard deviation of each minute's move
    volume_share: FloatArray  # (M,) cumulative share of the day's volume after each minute
    low: float  # circuit band in log price (-inf, inf without one)
    high: float
    second_key: int

    @property
    def minutes(self) -> int:
        return len(self.scale)


def _day_shape(
    spec: TrackSpec, series: DailySeries, day: int, share: FloatArray, own_scale: FloatArray
) -> FloatArray:
    """A variance-time Brownian bridge (0 at both ends) plus the day's jump as a step."""
    minutes = len(own_scale)
    steps = normals(stable_key(spec.key, "minute", day), np.arange(minutes, dtype=np.int64))
    walk = np.concatenate(([0.0], np.cumsum(own_scale * steps)))
    shape: FloatArray = walk - share * walk[-1]
    jump = float(series.jump[day])
    if jump != 0.0 and minutes > 1:
        where = stable_key(spec.key, "jump-minute", day) % (minutes - 1) + 1
        shape += np.where(np.arange(minutes + 1) >= where, jump, 0.0) - share * jump
    return shape


def build_day_path(
    spec: TrackSpec, series: DailySeries, day: int, layout: DayLayout, parent: DayPath | None
) -> DayPath:
    """The minute-level bridge from the day's open to its close."""
    minutes = layout.total_minutes
    weights = intraday_profile(minutes)
    share = np.concatenate(([0.0], np.cumsum(weights)))
    share /= share[-1]
    inherits = parent is not None and parent.layout == layout
    own_fraction = (spec.own_volatility / spec.volatility) ** 2 if inherits else 1.0
    minute_variance = series.day_variance * weights / minutes
    shape = _day_shape(spec, series, day, share, np.sqrt(own_fraction * minute_variance))
    if parent is not None and inherits:
        shape += spec.beta * parent.shape
    log_open, log_close = float(series.log_open[day]), float(series.log_close[day])
    boundary = log_open + share * (log_close - log_open) + shape
    boundary[0], boundary[-1] = log_open, log_close
    flow = weights**0.8 * (0.6 + 0.8 * uniforms(stable_key(spec.key, "volume", day),
                                                np.arange(minutes, dtype=np.int64)))  # fmt: skip
    volume_share = np.cumsum(flow) / flow.sum()
    volume_share[-1] = 1.0
    log_prev_close = float(series.log_close[series.previous[day]])
    low, high = -math.inf, math.inf
    if spec.band is not None:
        low, high = log_prev_close + math.log1p(-spec.band), log_prev_close + math.log1p(spec.band)
    return DayPath(
        day=day, layout=layout, boundary=boundary, shape=shape,
        scale=np.sqrt(minute_variance), volume_share=volume_share, low=low, high=high,
        second_key=stable_key(spec.key, "second", day),
    )  # fmt: skip


def minute_rows(path: DayPath, minutes: IntArray) -> FloatArray:
    """(60, len(minutes)) log prices at every second of the given minutes, a column each.

    Each minute is a one-second bridge between its endpoints; the day's last minute has 59
    steps so that its last point is the close.
    """
    count = len(minutes)
    last_minute = path.minutes - 1
    spans = np.where(minutes == last_minute, SECONDS - 1, SECONDS)
    walk = second_increments(path.second_key, minutes)
    for second in range(1, SECONDS):
        # Row by row: the same additions as np.cumsum(axis=0), several times faster.
        walk[second] += walk[second - 1]
    scale = path.scale[minutes]
    start = path.boundary[minutes]
    # point_j = start + j/span * (stop - start - scale * W_span) + scale * W_j, with W_0 = 0.
    slope = path.boundary[minutes + 1] - start - scale * walk[spans - 1, np.arange(count)]
    fraction = np.arange(SECONDS, dtype=np.float64)[:, None] / spans[None, :]
    points: FloatArray = fraction * slope[None, :]
    points[1:] += scale[None, :] * walk[: SECONDS - 1]
    points += start[None, :]
    points[SECONDS - 1, minutes == last_minute] = path.boundary[-1]
    if path.low > -math.inf or path.high < math.inf:
        np.clip(points, path.low, path.high, out=points)
    return points


@dataclass(frozen=True, slots=True)
class DayDetail:
    """Per-minute open, high, low and close (log) of a day: what candles and day ranges need."""

    opens: FloatArray
    highs: FloatArray
    lows: FloatArray
    closes: FloatArray


def build_day_detail(path: DayPath) -> DayDetail:
    points = minute_rows(path, np.arange(path.minutes, dtype=np.int64))
    return DayDetail(
        opens=points[0].copy(), highs=points.max(axis=0), lows=points.min(axis=0),
        closes=points[-1].copy(),
    )  # fmt: skip


# How far one minute's one-second bridge can stray from the line between its endpoints, in
# units of the minute's scale: each step is at most SQRT(12)/2/SQRT(60) and a bridge over 60
# steps moves at most 30 of them net.
_BRIDGE_BOUND = _SQRT_TWELVE / 2.0 / math.sqrt(SECONDS) * SECONDS / 2.0


def day_range(path: DayPath) -> tuple[float, float]:
    """The day's highest and lowest point (log), exactly, without drawing every second.

    Only minutes whose bound (higher endpoint plus the bridge's largest possible excursion)
    can beat the best endpoint are drawn; that is a few dozen minutes out of hundreds.
    """
    ends = np.clip(path.boundary, path.low, path.high)
    reach = path.scale * _BRIDGE_BOUND
    upper = np.maximum(ends[:-1], ends[1:]) + reach
    lower = np.minimum(ends[:-1], ends[1:]) - reach
    high, low = float(ends.max()), float(ends.min())
    candidates = np.flatnonzero((upper >= high) | (lower <= low)).astype(np.int64)
    if len(candidates):
        points = minute_rows(path, candidates)
        high, low = max(high, float(points.max())), min(low, float(points.min()))
    return high, low
