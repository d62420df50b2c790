"""The simulated market: seeded, deterministic quotes, depth, candles and ticks for the master.

Every price comes from a *track* (services.market.paths): cash equities, indices and MCX
commodities move on their own seeded paths; futures are carried from their track at
F = S e^{rT}; options are Black-76 on that forward, with the underlying's smile read once per
day at the day's opening forward (sticky strike within the day). Quotes are the day's
one-minute candles up to the instant, so a quote, the history and the tick feed always agree.
Volume and open interest are smooth deterministic functions of moneyness and time to expiry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np
from numpy.typing import NDArray

from services.clock import IST, Clock
from services.market import black76
from services.market.book import Book, order_book
from services.market.calendar import MarketCalendar
from services.market.candles import (
    CandleArrays,
    aggregate,
    day_start_epoch,
    intraday_buckets,
    round_to_tick,
    to_candles,
    to_price,
)
from services.market.model import (
    Candle,
    Depth,
    Instrument,
    InstrumentLookup,
    InstrumentType,
    Interval,
    Quote,
)
from services.market.path_store import Moment, PathStore, day_index, day_of
from services.market.paths import FloatArray, IntArray, normals, stable_key, uniforms
from services.market.reference import load_reference_levels
from services.market.simulator_ticks import TickBatch
from services.market.smile import smile_volatility_many
from services.market.tracks import (
    BoundedCache,
    Plan,
    PlanKind,
    ReferenceLike,
    TrackBook,
    years_between,
)

FUTURE_TURNOVER_SHARE = 0.3  # a future trades this share of its track's daily turnover
OPTION_TURNOVER_SHARE = 1.5  # an at-the-money option, before the moneyness bell
FUTURE_OPEN_INTEREST = 0.8  # open interest in days of turnover
OPTION_OPEN_INTEREST = 3.0
TOUCH_SHARE = 0.0005  # lots resting at the best price, as a share of the day's volume
MAXIMUM_TICK_BATCHES = 4


def _epoch(instant: datetime) -> int:
    if instant.tzinfo is None:
        raise ValueError("the simulated market needs aware datetimes")
    return math.floor(instant.timestamp())


@dataclass(frozen=True, slots=True)
class _RunningExtremes:
    """A day's opening log price, running log highs/lows by minute and cumulative units."""

    open: float
    highs: list[float]
    lows: list[float]
    units: IntArray


class SimulatedMarket:
    """The built-in market-data source (see module docstring)."""

    def __init__(
        self,
        instruments: InstrumentLookup,
        calendar: MarketCalendar,
        clock: Clock,
        *,
        seed: int = 7,
        always_open: bool = True,
        rate: float = 0.065,
        reference: Mapping[tuple[str, str], ReferenceLike] | None = None,
    ) -> None:
        if reference is None:
            reference = load_reference_levels()
        self.rate = rate
        self._clock = clock
        self._tracks = TrackBook(instruments, reference, seed)
        self._store = PathStore(calendar, clock, always_open)
        self._extremes: dict[tuple[int, int], _RunningExtremes] = {}
        self._volatilities: BoundedCache[tuple[int, int], float] = BoundedCache(200_000)
        self._bands: BoundedCache[tuple[int, int], tuple[Decimal, Decimal]] = BoundedCache(50_000)
        self._batches: list[TickBatch] = []  # the few lists tick_prices is called with

    @property
    def store(self) -> PathStore:
        """The tracks' paths (the tick batch reads them directly)."""
        return self._store

    def plan(self, instrument: Instrument) -> Plan:
        """How `instrument` is priced; ValueError when no reference level reaches it."""
        return self._tracks.plan(instrument)

    def price_band(
        self, instrument: Instrument, at: datetime | None = None
    ) -> tuple[Decimal, Decimal] | None:
        """Today's circuit limits (lower, upper) of a cash equity; None where there is no band."""
        plan = self._tracks.plan(instrument)
        band = plan.track.band
        # Circuit bands are a cash-equity rule; derivatives share the track, not the band.
        if band is None or plan.kind is not PlanKind.SPOT:
            return None
        day = self._store.moment(plan.track, _epoch(at or self._clock.now())).day
        # Every order is checked against the band: it depends only on the day, so it is
        # worked out once per instrument and day.
        found = self._bands.get((plan.key, day))
        if found is None:
            prev_close = self._previous_close(plan, day)
            tick = instrument.tick_size
            # Limits sit on the tick grid inside the band, as the exchange publishes them.
            lower = (prev_close * (1 - Decimal(str(band))) / tick).to_integral_value(ROUND_CEILING)
            upper = (prev_close * (1 + Decimal(str(band))) / tick).to_integral_value(ROUND_FLOOR)
            found = self._bands.put((plan.key, day), (lower * tick, upper * tick))
        return found

    # ---------------------------------------------------------------- quotes and depth

    def quote(self, instrument: Instrument, at: datetime | None = None) -> Quote:
        """The quote at `at` (default now): today's candles up to the last tick."""
        quote, _book = self._quote_and_book(instrument, at)
        return quote

    def quotes(self, instruments: Sequence[Instrument], at: datetime | None = None) -> list[Quote]:
        """Quotes of several instruments at one instant."""
        instant = at or self._clock.now()
        return [self.quote(instrument, instant) for instrument in instruments]

    def depth(self, instrument: Instrument, at: datetime | None = None) -> Depth:
        """Five levels a side around the last price (none for an index, which is not traded)."""
        quote, book = self._quote_and_book(instrument, at)
        return Depth(quote=quote, buy=book.buy, sell=book.sell)

    def _quote_and_book(self, instrument: Instrument, at: datetime | None) -> tuple[Quote, Book]:
        plan = self.plan(instrument)
        moment = self._store.moment(plan.track, _epoch(at or self._clock.now()))
        if plan.kind is PlanKind.SPOT:
            return self._spot_quote_and_book(plan, moment)
        minutes = self.day_minutes(plan, moment.day, moment.point).rounded(float(plan.tick))
        last = float(minutes.close[-1])
        book = self._book(plan, moment, last, int(minutes.volume.sum()))
        quote = Quote(
            symbol=instrument.symbol, exchange=instrument.exchange,
            ltp=to_price(last, plan.tick), open=to_price(float(minutes.open[0]), plan.tick),
            high=to_price(float(minutes.high.max()), plan.tick),
            low=to_price(float(minutes.low.min()), plan.tick),
            prev_close=self._previous_close(plan, moment.day), bid=book.bid, ask=book.ask,
            volume=int(minutes.volume.sum()), oi=int(minutes.oi[-1]),
            timestamp=datetime.fromtimestamp(moment.epoch, IST),
            last_quantity=book.last_quantity,
        )  # fmt: skip
        return quote, book

    def _spot_quote_and_book(self, plan: Plan, moment: Moment) -> tuple[Quote, Book]:
        """The same quote as the candle path, from running extremes: no per-call array work.

        The paper exchange asks for a fresh book every second for every traded contract, so
        this path keeps it to a few scalar operations (tests/market check it agrees exactly).
        """
        day, point = moment.day, moment.point
        running = self._running_extremes(plan, day)
        minute, second = divmod(point, 60)
        row = self._store.minute(plan.track, day, minute)[: second + 1]
        high = max(float(row.max()), running.highs[minute - 1] if minute else -math.inf)
        low = min(float(row.min()), running.lows[minute - 1] if minute else math.inf)
        units = running.units
        before = int(units[minute - 1]) if minute else 0
        minute_lots = (int(units[minute]) - before) // plan.lot
        volume = before + minute_lots * (second + 1) // 60 * plan.lot
        tick = float(plan.tick)
        last = float(round_to_tick(np.exp(np.array([row[-1]])), tick)[0])
        book = self._book(plan, moment, last, volume)

        def price(log_value: float) -> Decimal:
            return to_price(float(round_to_tick(np.exp(np.array([log_value])), tick)[0]), plan.tick)

        quote = Quote(
            symbol=plan.instrument.symbol, exchange=plan.instrument.exchange,
            ltp=to_price(last, plan.tick), open=price(running.open), high=price(high),
            low=price(low), prev_close=self._previous_close(plan, day), bid=book.bid,
            ask=book.ask, volume=volume, oi=0,
            timestamp=datetime.fromtimestamp(moment.epoch, IST), last_quantity=book.last_quantity,
        )  # fmt: skip
        return quote, book

    def _running_extremes(self, plan: Plan, day: int) -> _RunningExtremes:
        key = (plan.track.key, day)
        found = self._extremes.get(key)
        if found is None:
            detail = self._store.detail(plan.track, day)
            found = _RunningExtremes(
                open=float(detail.opens[0]),
                highs=np.maximum.accumulate(detail.highs).tolist(),
                lows=np.minimum.accumulate(detail.lows).tolist(),
                units=self._cumulative_units(plan, day),
            )
            if len(self._extremes) > 4096:
                self._extremes.clear()
            self._extremes[key] = found
        return found

    def _book(self, plan: Plan, moment: Moment, last: float, volume: int) -> Book:
        tick = plan.tick
        if plan.instrument.instrument_type is InstrumentType.INDEX:
            zero = tick * 0
            return Book(zero, zero, (), (), 0)
        day_lots = self._day_lots(plan, moment.day)
        illiquidity = 1.0
        if plan.kind is not PlanKind.SPOT:
            forward, years = self.opening_forward(plan, moment.day)
            bell = float(self._bell(plan, forward, years))
            illiquidity += min(years, 2.0) + 3.0 * (1.0 - bell)
        touch = max(day_lots * TOUCH_SHARE, volume / plan.lot * TOUCH_SHARE, 1.0)
        ticks = max(round(last / float(tick)), 1)
        key = stable_key(plan.key, "book", moment.epoch)
        return order_book(ticks, tick, plan.lot, touch, illiquidity, key)

    def _previous_close(self, plan: Plan, day: int) -> Decimal:
        """The instrument's value at the previous session's last tick."""
        previous = int(self._store.series(plan.track, day).previous[day])
        if previous < 1:
            previous = day
        closing = self._store.closing_moment(plan.track, previous)
        spot = np.array([math.exp(self._store.day_path(plan.track, previous).boundary[-1])])
        value = self.values(plan, previous, spot, np.array([float(closing.epoch)]))
        return to_price(float(value[0]), plan.tick)

    # ---------------------------------------------------------------- prices of derivatives

    def values(self, plan: Plan, day: int, spot: FloatArray, epochs: FloatArray) -> FloatArray:
        """The instrument's value at each (spot, instant) of one trading day (not rounded)."""
        if plan.kind is PlanKind.SPOT:
            return spot
        forward = spot * np.exp(self.rate * years_between(plan.forward_epoch, epochs))
        if plan.kind is PlanKind.FUTURE:
            return forward
        years = years_between(plan.expiry_epoch, epochs)
        is_call = np.full(len(spot), plan.is_call)
        volatility = np.full(len(spot), self.day_volatility(plan, day))
        return black76.price_many(
            is_call, forward, np.full(len(spot), plan.strike), years, self.rate, volatility
        )

    def opening_forward(self, plan: Plan, day: int) -> tuple[float, float]:
        """(forward, years to expiry) at the day's first point: what the day's smile reads."""
        path = self._store.day_path(plan.track, day)
        opening = float(path.layout.starts[0])
        spot = math.exp(float(np.clip(path.boundary[0], path.low, path.high)))
        carry = float(years_between(plan.forward_epoch, np.array([opening]))[0])
        years = float(years_between(plan.expiry_epoch, np.array([opening]))[0])
        return spot * math.exp(self.rate * carry), years

    def day_volatility(self, plan: Plan, day: int) -> float:
        """The smile volatility an option is priced with all day (sticky strike)."""
        key = (plan.key, day)
        found = self._volatilities.get(key)
        if found is None:
            if plan.smile is None:
                raise ValueError(f"{plan.instrument.symbol} is not an option")
            forward, years = self.opening_forward(plan, day)
            strikes = np.array([plan.strike])
            found = float(smile_volatility_many(plan.smile, forward, strikes, years)[0])
            self._volatilities.put(key, found)
        return found

    def volatility_of(self, option: Instrument, at: datetime | None = None) -> float:
        """The smile volatility the option is priced with at `at` (default now)."""
        plan = self.plan(option)
        if plan.kind is not PlanKind.OPTION:
            raise ValueError(f"{option.symbol} is not an option")
        moment = self._store.moment(plan.track, _epoch(at or self._clock.now()))
        return self.day_volatility(plan, moment.day)

    def forward_of(self, derivative: Instrument, at: datetime | None = None) -> float:
        """The forward a future trades at, or an option is priced on, at `at` (default now)."""
        plan = self.plan(derivative)
        if plan.kind is PlanKind.SPOT:
            raise ValueError(f"{derivative.symbol} is not a derivative")
        moment = self._store.moment(plan.track, _epoch(at or self._clock.now()))
        spot = math.exp(self._store.log_price(plan.track, moment))
        years = float(years_between(plan.forward_epoch, np.array([float(moment.epoch)]))[0])
        return spot * math.exp(self.rate * years)

    # ---------------------------------------------------------------- volume and interest

    def _bell(
        self, plan: Plan, forward: float | FloatArray, years: float | FloatArray
    ) -> FloatArray:
        """An option's activity by moneyness: 1 at the money, fading over ~1.5 deviations."""
        if plan.kind is not PlanKind.OPTION:
            return np.ones_like(np.asarray(forward, dtype=np.float64))
        width = np.maximum(plan.track.volatility * np.sqrt(years), 0.01) * 1.5
        moneyness = np.log(plan.strike / forward)
        result: FloatArray = np.exp(-0.5 * (moneyness / width) ** 2)
        return result

    def _day_lots(self, plan: Plan, day: int) -> float:
        """Lots (units for cash) traded over the whole day."""
        if plan.instrument.instrument_type is InstrumentType.INDEX:
            return 0.0
        series = self._store.series(plan.track, day)
        noise = math.exp(0.25 * float(normals(stable_key(plan.key, "volume"), np.array([day]))[0]))
        turnover = plan.liquidity * float(series.activity[day]) * noise
        if plan.kind is PlanKind.SPOT:
            return turnover / math.exp(float(series.log_close[day]))
        forward, years = self.opening_forward(plan, day)
        share = FUTURE_TURNOVER_SHARE / (1.0 + 6.0 * years)
        if plan.kind is PlanKind.OPTION:
            share = (
                OPTION_TURNOVER_SHARE
                / (1.0 + 6.0 * years)
                * float(self._bell(plan, forward, years))
            )
        return turnover * share / (plan.lot * forward)

    def _cumulative_units(self, plan: Plan, day: int) -> IntArray:
        """Units traded by the end of each minute of the day (whole lots)."""
        share = self._store.day_path(plan.track, day).volume_share
        lots = np.floor(self._day_lots(plan, day) * share).astype(np.int64)
        result: IntArray = lots * plan.lot
        return result

    def _open_interest(self, plan: Plan, spot: FloatArray, epochs: FloatArray) -> IntArray:
        """Open interest (units) at each instant: more near the money and nearer expiry."""
        if plan.kind is PlanKind.SPOT:
            return np.zeros(len(spot), dtype=np.int64)
        forward = spot * np.exp(self.rate * years_between(plan.forward_epoch, epochs))
        years = years_between(plan.expiry_epoch, epochs)
        factor = 0.7 + 0.6 * float(uniforms(stable_key(plan.key, "oi"), np.zeros(1, np.int64))[0])
        days = FUTURE_OPEN_INTEREST * np.ones_like(forward)
        if plan.kind is PlanKind.OPTION:
            days = OPTION_OPEN_INTEREST * self._bell(plan, forward, years)
        lots = plan.liquidity * factor * days / (1.0 + 6.0 * years) / (plan.lot * forward)
        result: IntArray = np.rint(lots).astype(np.int64) * plan.lot
        return result

    # ---------------------------------------------------------------- candles

    def day_minutes(self, plan: Plan, day: int, through: int | None = None) -> CandleArrays:
        """One-minute candles of a trading day (not rounded), up to point `through` if given."""
        path = self._store.day_path(plan.track, day)
        detail = self._store.detail(plan.track, day)
        count = path.minutes if through is None else through // 60 + 1
        opens, highs = detail.opens[:count].copy(), detail.highs[:count].copy()
        lows, closes = detail.lows[:count].copy(), detail.closes[:count].copy()
        starts = path.layout.minute_starts()[:count]
        ends = (starts + 59).astype(np.float64)
        units = self._cumulative_units(plan, day)[:count].copy()
        if through is not None:
            minute, second = divmod(through, 60)
            row = self._store.minute(plan.track, day, minute)[: second + 1]
            highs[-1], lows[-1], closes[-1] = row.max(), row.min(), row[-1]
            ends[-1] = starts[-1] + second
            before = int(units[-2]) if count > 1 else 0
            # The minute's lots accrue second by second, in whole lots.
            minute_lots = (int(units[-1]) - before) // plan.lot
            units[-1] = before + minute_lots * (second + 1) // 60 * plan.lot
        volume = np.diff(units, prepend=0)
        spot_close = np.exp(closes)
        prices = self._derivative_candles(
            plan, day, np.exp(opens), np.exp(highs), np.exp(lows), spot_close, starts, ends
        )
        return CandleArrays(starts, *prices, volume, self._open_interest(plan, spot_close, ends))

    def _derivative_candles(
        self, plan: Plan, day: int, opens: FloatArray, highs: FloatArray, lows: FloatArray,
        closes: FloatArray, starts: IntArray, ends: FloatArray,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:  # fmt: skip
        """Spot candles mapped through the instrument's value: a put's high is at the spot low."""
        if plan.kind is PlanKind.SPOT:
            return opens, highs, lows, closes
        opened = starts.astype(np.float64)
        first = self.values(plan, day, opens, opened)
        last = self.values(plan, day, closes, ends)
        upper = self.values(plan, day, highs, opened)
        lower = self.values(plan, day, lows, opened)
        if plan.kind is PlanKind.OPTION and not plan.is_call:
            upper, lower = lower, upper
        high = np.maximum(np.maximum(upper, first), last)
        low = np.minimum(np.minimum(lower, first), last)
        return first, high, low, last

    def history_arrays(
        self, instrument: Instrument, interval: Interval, start: date, end: date
    ) -> CandleArrays:
        """Candles as numpy columns (rounded to the tick), oldest first, none after now."""
        plan = self.plan(instrument)
        now = self._store.moment(plan.track, _epoch(self._clock.now()))
        first = max(day_index(start), 1)
        last = min(day_index(end), now.day)
        if instrument.expiry is not None:
            last = min(last, day_index(instrument.expiry))
        if last < first:
            return CandleArrays.empty()
        trading = self._store.series(plan.track, last).trading[first : last + 1]
        days = (first + np.flatnonzero(trading)).tolist()
        if interval is Interval.D and plan.kind is PlanKind.SPOT:
            daily = [self._spot_day(plan, day, now) for day in days]
            return CandleArrays.concatenate(daily).rounded(float(plan.tick))
        parts = [self.day_minutes(plan, day, now.point if day == now.day else None) for day in days]
        minutes = CandleArrays.concatenate(parts)
        if interval is Interval.M1:
            return minutes.rounded(float(plan.tick))
        numbers = np.repeat(np.array(days, dtype=np.int64), [len(part) for part in parts])
        if interval is Interval.D:
            starts = np.array([day_start_epoch(day_of(day)) for day in numbers.tolist()])
            return aggregate(minutes, numbers, starts).rounded(float(plan.tick))
        sessions, positions = self._session_positions(plan, days, parts)
        groups, starts = intraday_buckets(interval, numbers, sessions, positions, minutes.start)
        return aggregate(minutes, groups, starts).rounded(float(plan.tick))

    def _session_positions(
        self, plan: Plan, days: list[int], parts: list[CandleArrays]
    ) -> tuple[IntArray, IntArray]:
        sessions, positions = [], []
        for day, part in zip(days, parts, strict=True):
            layout = self._store.layout(plan.track.venue, day)
            sessions.append(layout.session_of_minute()[: len(part)])
            positions.append(layout.minutes_into_session()[: len(part)])
        return np.concatenate(sessions), np.concatenate(positions)

    def _spot_day(self, plan: Plan, day: int, now: Moment) -> CandleArrays:
        """A cash or index daily candle; whole past days skip drawing every second."""
        if day == now.day:
            minutes = self.day_minutes(plan, day, now.point)
            numbers = np.zeros(len(minutes), dtype=np.int64)
            return aggregate(minutes, numbers, np.full(len(minutes), day_start_epoch(day_of(day))))
        path = self._store.day_path(plan.track, day)
        high, low = self._store.day_range(plan.track, day)
        ends = np.exp(np.clip(path.boundary[[0, -1]], path.low, path.high))
        volume = self._cumulative_units(plan, day)[-1:]
        return CandleArrays(
            np.array([day_start_epoch(day_of(day))]), ends[:1], np.array([math.exp(high)]),
            np.array([math.exp(low)]), ends[1:], volume, np.zeros(1, dtype=np.int64),
        )  # fmt: skip

    def history(
        self, instrument: Instrument, interval: Interval, start: date, end: date
    ) -> list[Candle]:
        """Candles for the inclusive IST days `start`..`end`, ascending, never beyond now."""
        arrays = self.history_arrays(instrument, interval, start, end)
        return to_candles(arrays, instrument.tick_size)

    # ---------------------------------------------------------------- ticks

    def tick_prices(self, instruments: Sequence[Instrument], at: datetime) -> NDArray[np.float64]:
        """Last prices (on the tick grid) of many instruments at one instant, vectorised."""
        batches = list(self._batches)
        batch = next((known for known in batches if known.matches(instruments)), None)
        if batch is None:
            batch = TickBatch([self.plan(item) for item in instruments])
            self._batches = [batch, *batches[: MAXIMUM_TICK_BATCHES - 1]]
        return batch.prices(self, _epoch(at))
