"""Seeded, deterministic price paths of the simulated market: keys, noise and daily closes.

A *track* is one simulated price series (a stock on NSE and BSE shares one, as does a commodity
with all its futures). Its daily series runs from EPOCH: an Ornstein-Uhlenbeck deviation (mean
reversion keeps the price near its reference level) with occasional jumps, plus `beta` times
the deviation of the track it moves with (its index), squashed into about ±25% of a trend
line that rises to the reference level at ANCHOR and stays flat after it; cash equities are
clamped to their circuit band. Each day's intraday path is in `day_paths`.

Randomness comes from a counter-based hash (SplitMix64's finaliser over key + counter), keyed
by stable BLAKE2b digests of (seed, track, purpose, day), never Python's salted hash(): any
point of any path can be computed alone, in any process, without the ones before it.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

EPOCH = date(2019, 12, 31)  # day 0 of every daily series; its state seeds 2020-01-01
ANCHOR = date(2026, 11, 20)  # the reference levels describe the market here: trends end here
SQUASH = 0.25  # log deviations from the trend line are squashed into ±SQUASH (-22%, +28%)
IDIOSYNCRATIC_FLOOR = 0.1  # an own share of volatility even for a track equal to its parent
JUMPS_PER_YEAR = 3.0
JUMP_SIZE = 3.0  # jump standard deviation, in daily volatilities
GAP_SIZE = 0.3  # opening gap standard deviation, in daily volatilities (calendar mode)
_CHUNK = 256  # days per closed-form Ornstein-Uhlenbeck block (keeps exp() finite)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX_ONE = np.uint64(0xBF58476D1CE4E5B9)
_MIX_TWO = np.uint64(0x94D049BB133111EB)


def stable_key(*parts: object) -> int:
    """A 64-bit key from the parts' text, identical in every process (BLAKE2b, unsalted)."""
    text = "\x1f".join(map(str, parts))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def hashed(key: int, counters: NDArray[np.int64]) -> NDArray[np.uint64]:
    """Well-mixed 64-bit values for each counter under `key` (SplitMix64's finaliser)."""
    mixed = np.asarray(counters).astype(np.uint64) * _GOLDEN
    mixed += np.uint64(key)
    mixed ^= mixed >> np.uint64(30)
    mixed *= _MIX_ONE
    mixed ^= mixed >> np.uint64(27)
    mixed *= _MIX_TWO
    mixed ^= mixed >> np.uint64(31)
    return mixed


def uniforms(key: int, counters: NDArray[np.int64]) -> FloatArray:
    """Uniforms in (0, 1), one per counter."""
    return ((hashed(key, counters) >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def normals(key: int, counters: NDArray[np.int64]) -> FloatArray:
    """Standard normals, one per counter (Box-Muller on the two 32-bit halves)."""
    bits = hashed(key, counters)
    first = ((bits >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0**-32
    second = ((bits & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * 2.0**-32
    return np.sqrt(-2.0 * np.log(first)) * np.cos(2.0 * math.pi * second)


@dataclass(frozen=True, slots=True)
class TrackSpec:
    """What one simulated price series is made of."""

    identity: str
    key: int  # stable_key(seed, identity)
    venue: str  # the exchange whose sessions the path lives in
    log_reference: float
    volatility: float  # annualised
    beta: float  # to the parent
    parent: TrackSpec | None
    band: float | None  # circuit band as a fraction of the previous close (cash equities)
    trend: float  # annual log growth of the trend line up to ANCHOR

    @property
    def own_volatility(self) -> float:
        """Volatility left after the parent's share (beta^2 sigma_parent^2) is taken out."""
        if self.parent is None:
            return self.volatility
        systematic = (self.beta * self.parent.volatility) ** 2
        floor = (IDIOSYNCRATIC_FLOOR * self.volatility) ** 2
        return math.sqrt(max(self.volatility**2 - systematic, floor))

    @property
    def spread(self) -> float:
        """The long-run standard deviation of the log deviation from the trend line."""
        return min(max(0.35 * self.volatility, 0.04), 0.10)

    @property
    def reversion(self) -> float:
        """Mean-reversion speed per year that gives `spread` at this volatility."""
        return min(self.volatility**2 / (2.0 * self.spread**2), 50.0)


@dataclass(frozen=True, slots=True)
class DailySeries:
    """One track's daily values for every calendar day since EPOCH (index = days since EPOCH)."""

    trading: NDArray[np.bool_]
    deviation: FloatArray  # pre-squash log deviation, including the parent's share
    gap: FloatArray  # the opening gap (also handed to children, scaled by beta)
    log_open: FloatArray
    log_close: FloatArray  # non-trading days repeat the last trading close
    jump: FloatArray  # own jump of the day (log), placed intraday
    previous: IntArray  # index of the previous trading day (0 for the first)
    activity: FloatArray  # volume multiplier of the day
    day_variance: float  # variance of one trading day's log return


def ornstein_uhlenbeck(start: float, decay: FloatArray, innovations: FloatArray) -> FloatArray:
    """x_i = exp(-decay_i) x_(i-1) + innovation_i, in closed form per block of days."""
    values = np.empty(len(decay), dtype=np.float64)
    state = start
    for begin in range(0, len(decay), _CHUNK):
        block = slice(begin, begin + _CHUNK)
        growth = np.exp(np.cumsum(decay[block]))
        values[block] = (state + np.cumsum(innovations[block] * growth)) / growth
        state = float(values[block][-1])
    return values


def _last_trading_index(trading: NDArray[np.bool_]) -> IntArray:
    """For each day, the index of the last trading day on or before it (day 0 counts)."""
    index = np.arange(len(trading), dtype=np.int64)
    marked = np.where(trading, index, 0)
    marked[0] = 0
    return np.maximum.accumulate(marked)


def _clamp_to_band(log_close: FloatArray, trading: NDArray[np.bool_], band: float) -> FloatArray:
    """Cap each trading day's move at the circuit band (rarely binds, so check first)."""
    days = np.flatnonzero(trading)
    closes = log_close[days]
    low, high = math.log1p(-band), math.log1p(band)
    moves = np.diff(closes)
    if len(moves) == 0 or (moves.min() >= low and moves.max() <= high):
        return log_close
    for position in range(1, len(closes)):
        previous = closes[position - 1]
        closes[position] = min(max(closes[position], previous + low), previous + high)
    clamped = log_close.copy()
    clamped[days] = closes
    return clamped


def _jumps(spec: TrackSpec, index: IntArray, step: FloatArray) -> FloatArray:
    occurs = uniforms(stable_key(spec.key, "jump"), index) < JUMPS_PER_YEAR * step
    sizes = normals(stable_key(spec.key, "jump-size"), index) * JUMP_SIZE
    return np.where(occurs, sizes * spec.own_volatility * np.sqrt(step), 0.0)


def _own_moves(
    spec: TrackSpec, index: IntArray, step: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The track's own (idiosyncratic) deviation, jumps and opening gaps per day."""
    own = spec.own_volatility
    shocks = normals(stable_key(spec.key, "daily"), index) * own * np.sqrt(step)
    jump = _jumps(spec, index, step)
    stationary = spec.spread * own / spec.volatility
    start = float(normals(stable_key(spec.key, "initial"), index[:1])[0]) * stationary
    deviation = ornstein_uhlenbeck(start, spec.reversion * step, shocks + jump)
    gap = normals(stable_key(spec.key, "gap"), index) * GAP_SIZE * own * np.sqrt(step)
    return deviation, jump, gap


def _closes(
    spec: TrackSpec, trading: NDArray[np.bool_], deviation: FloatArray
) -> tuple[FloatArray, IntArray]:
    """Log closes (held over non-trading days, banded) and each day's last trading day."""
    index = np.arange(len(trading), dtype=np.int64)
    years = (index - (ANCHOR - EPOCH).days) / 365.25
    trend = spec.trend * np.minimum(years, 0.0)
    raw = spec.log_reference + trend + SQUASH * np.tanh(deviation / SQUASH)
    last = _last_trading_index(trading)
    log_close = raw[last]
    if spec.band is not None:
        log_close = _clamp_to_band(log_close, trading, spec.band)
    return log_close, last


def build_daily_series(
    spec: TrackSpec,
    trading: NDArray[np.bool_],
    year_fraction: float,
    parent: DailySeries | None,
    gaps: bool,
) -> DailySeries:
    """Daily opens and closes of a track over len(trading) days from EPOCH."""
    trading = trading.copy()
    trading[0] = True  # the seed day
    index = np.arange(len(trading), dtype=np.int64)
    step = np.where(trading, year_fraction, 0.0)
    step[0] = 0.0
    deviation, jump, gap = _own_moves(spec, index, step)
    if not gaps:
        gap[:] = 0.0
    if parent is not None:
        deviation = deviation + spec.beta * parent.deviation[: len(index)]
        gap = gap + spec.beta * parent.gap[: len(index)]
    log_close, last = _closes(spec, trading, deviation)
    previous = np.concatenate(([0], last[:-1]))
    log_open = log_close[previous] + gap
    if spec.band is not None:
        band = (math.log1p(-spec.band), math.log1p(spec.band))
        log_open = np.clip(log_open, log_close[previous] + band[0], log_close[previous] + band[1])
    daily_deviation = spec.volatility * math.sqrt(year_fraction)
    noise = np.exp(0.3 * normals(stable_key(spec.key, "activity"), index))
    activity = noise * (1.0 + 2.0 * np.abs(jump) / daily_deviation)
    return DailySeries(
        trading=trading, deviation=deviation, gap=gap, log_open=log_open, log_close=log_close,
        jump=jump, previous=previous, activity=activity, day_variance=daily_deviation**2,
    )  # fmt: skip
