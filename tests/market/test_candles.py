"""Candles agree with the ticks they aggregate, across intervals and modes."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from services.clock import IST, FixedClock
from services.market.calendar import MarketCalendar
from services.market.candles import CandleArrays, aggregate, round_to_tick, to_candles, to_price
from services.market.instrument_store import InstrumentMaster
from services.market.model import Candle, Exchange, Instrument, InstrumentType, Interval
from services.market.simulator import SimulatedMarket
from tests.market.conftest import NOW, TODAY, get

THURSDAY = date(2026, 11, 19)


def nearest_future(master: InstrumentMaster, underlying: str, exchange: Exchange) -> Instrument:
    futures = [item for item in master.derivatives_of(underlying, exchange)
               if item.instrument_type is InstrumentType.FUT]  # fmt: skip
    return min(futures, key=lambda item: item.expiry or TODAY)


def merge(candles: list[Candle]) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
    return (
        candles[0].open, max(c.high for c in candles), min(c.low for c in candles),
        candles[-1].close, sum(c.volume for c in candles),
    )  # fmt: skip


def ohlcv(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
    return candle.open, candle.high, candle.low, candle.close, candle.volume


@pytest.mark.parametrize("mode", ["always_open", "sessions"])
def test_minute_candles_are_the_ticks_inside_them(
    mode: str, market: SimulatedMarket, sessions_market: SimulatedMarket,
    master: InstrumentMaster,
) -> None:  # fmt: skip
    source = market if mode == "always_open" else sessions_market
    stock = get(master, "RELIANCE", "NSE")
    candles = source.history(stock, Interval.M1, THURSDAY, THURSDAY)
    # The first minute of the day, one in the middle and the last (whose last tick is the close).
    for candle in (candles[0], candles[len(candles) // 2], candles[-1]):
        seconds = [candle.start + timedelta(seconds=second) for second in range(60)]
        prices = [quote.ltp for quote in source.quotes([stock] * 60, seconds[0])[:1]]
        prices += [source.quote(stock, instant).ltp for instant in seconds[1:]]
        assert candle.open == prices[0]
        assert candle.high == max(prices) and candle.low == min(prices)
        assert candle.close == prices[-1]
        before = source.quote(stock, seconds[0] - timedelta(seconds=1)).volume
        after = source.quote(stock, seconds[-1]).volume
        if candle is not candles[0]:
            assert candle.volume == after - before


def test_future_minute_candles_follow_its_ticks_within_a_tick(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    future = nearest_future(master, "NIFTY", Exchange.NFO)
    candle = market.history(future, Interval.M1, THURSDAY, THURSDAY)[600]
    prices = market.tick_prices([future] * 1, candle.start).tolist()
    prices += [market.tick_prices([future], candle.start + timedelta(seconds=s))[0]
               for s in range(1, 60)]  # fmt: skip
    tick = 0.05 + 1e-9
    assert float(candle.open) == pytest.approx(prices[0], abs=1e-9)
    assert float(candle.close) == pytest.approx(prices[-1], abs=1e-9)
    assert float(candle.high) == pytest.approx(max(prices), abs=tick)
    assert float(candle.low) == pytest.approx(min(prices), abs=tick)
    assert candle.oi > 0


@pytest.mark.parametrize("interval", [Interval.M3, Interval.M5, Interval.M15, Interval.H1])
def test_longer_intervals_aggregate_the_minutes(
    interval: Interval, sessions_market: SimulatedMarket, master: InstrumentMaster
) -> None:
    stock = get(master, "SBIN", "NSE")
    minutes = sessions_market.history(stock, Interval.M1, THURSDAY, THURSDAY)
    longer = sessions_market.history(stock, interval, THURSDAY, THURSDAY)
    width = timedelta(seconds=interval.seconds)
    # NSE candles align to the 09:15 open: the 1h bars are 09:15, 10:15, ..., 15:15.
    assert longer[0].start == datetime(2026, 11, 19, 9, 15, tzinfo=IST)
    for candle in longer:
        inside = [m for m in minutes if candle.start <= m.start < candle.start + width]
        assert inside and merge(inside) == ohlcv(candle)
    assert sum(len([m for m in minutes if c.start <= m.start < c.start + width])
               for c in longer) == len(minutes) == 375  # fmt: skip


@pytest.mark.parametrize("symbol, exchange", [("NIFTY", "NSE_INDEX"), ("ITC", "NSE")])
def test_daily_candles_agree_with_the_day_minutes(
    symbol: str, exchange: str, market: SimulatedMarket, sessions_market: SimulatedMarket,
    master: InstrumentMaster,
) -> None:  # fmt: skip
    instrument = get(master, symbol, exchange)
    for source in (market, sessions_market):
        days = source.history(instrument, Interval.D, date(2026, 11, 10), date(2026, 11, 20))
        assert len(days) >= 6
        for daily in days[-3:]:
            day = daily.start.date()
            minutes = source.history(instrument, Interval.M1, day, day)
            assert merge(minutes) == ohlcv(daily)


def test_daily_candles_of_derivatives_agree_with_their_minutes(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    future = nearest_future(master, "CRUDEOIL", Exchange.MCX)
    chain = master.option_chain("CRUDEOIL", "MCX", future.expiry or TODAY)
    put = chain[len(chain) // 2][2]
    assert put is not None
    for contract in (future, put):
        daily = market.history(contract, Interval.D, THURSDAY, THURSDAY)[0]
        minutes = market.history(contract, Interval.M1, THURSDAY, THURSDAY)
        assert merge(minutes) == ohlcv(daily)
        assert daily.oi == minutes[-1].oi > 0


def test_history_is_ascending_unique_and_never_after_now(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    stock = get(master, "TCS", "NSE")
    for interval in (Interval.M1, Interval.M5, Interval.H1, Interval.D):
        candles = market.history(stock, interval, TODAY - timedelta(days=3), TODAY + timedelta(3))
        starts = [candle.start for candle in candles]
        assert starts == sorted(set(starts))
        assert starts[-1] <= NOW
        assert all(candle.low <= min(candle.open, candle.close) for candle in candles)
        assert all(candle.high >= max(candle.open, candle.close) for candle in candles)
    # Today's bars run up to the current tick: the last close is the quote.
    quote = market.quote(stock, NOW)
    last_minute = market.history(stock, Interval.M1, TODAY, TODAY)[-1]
    today = market.history(stock, Interval.D, TODAY, TODAY)[-1]
    assert last_minute.start == NOW.replace(second=0)
    assert last_minute.close == today.close == quote.ltp
    assert ohlcv(today) == (quote.open, quote.high, quote.low, quote.ltp, quote.volume)


def test_daily_history_reaches_back_to_2020(
    sessions_market: SimulatedMarket, master: InstrumentMaster
) -> None:
    candles = sessions_market.history(get(master, "NIFTY", "NSE_INDEX"), Interval.D,
                                      date(2019, 6, 1), TODAY)  # fmt: skip
    assert candles[0].start == datetime(2020, 1, 1, tzinfo=IST)
    assert 1650 < len(candles) < 1800  # about 250 sessions a year
    weekends = [candle.start.date() for candle in candles if candle.start.weekday() >= 5]
    assert weekends == [date(2025, 2, 1), date(2026, 2, 1)]  # the Union Budget sessions
    assert candles[-1].start.date() == date(2026, 11, 20)
    assert all(candle.start.date() != date(2026, 11, 10) for candle in candles)  # a holiday


def test_mcx_hourly_candles_restart_at_the_evening_session(
    sessions_market: SimulatedMarket, master: InstrumentMaster
) -> None:
    future = nearest_future(master, "GOLD", Exchange.MCX)
    hours = sessions_market.history(future, Interval.H1, THURSDAY, THURSDAY)
    starts = [candle.start.strftime("%H:%M") for candle in hours]
    assert starts[0] == "09:00" and "17:00" in starts and starts[-1] == "23:00"
    minutes = sessions_market.history(future, Interval.M1, THURSDAY, THURSDAY)
    assert minutes[-1].start.strftime("%H:%M") == "23:54"  # 23:55 close outside US DST


def test_history_arrays_match_history(market: SimulatedMarket, master: InstrumentMaster) -> None:
    stock = get(master, "INFY", "NSE")
    arrays = market.history_arrays(stock, Interval.M15, THURSDAY, THURSDAY)
    candles = market.history(stock, Interval.M15, THURSDAY, THURSDAY)
    assert len(arrays) == len(candles) == 96
    assert [float(candle.high) for candle in candles] == pytest.approx(arrays.high.tolist())
    assert [int(candle.start.timestamp()) for candle in candles] == arrays.start.tolist()


def test_an_expired_contract_has_no_history_after_expiry(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    future = nearest_future(master, "NIFTY", Exchange.NFO)
    assert future.expiry is not None
    later = FixedClock(datetime.combine(future.expiry + timedelta(days=5),
                                        datetime.min.time(), IST))  # fmt: skip
    source = SimulatedMarket(master, MarketCalendar(), later)
    candles = source.history(future, Interval.D, future.expiry - timedelta(days=3),
                             future.expiry + timedelta(days=4))  # fmt: skip
    assert candles[-1].start.date() == future.expiry


def test_rounding_keeps_prices_on_the_grid_and_positive() -> None:
    values = np.array([0.01, 0.024, 0.025, 100.074, 100.075, 2.5e5 + 0.0251])
    assert round_to_tick(values, 0.05).tolist() == pytest.approx(
        [0.05, 0.05, 0.05, 100.05, 100.10, 250000.05]
    )
    assert to_price(100.075, Decimal("0.05")) == Decimal("100.10")
    assert to_price(0.0, Decimal("0.05")) == Decimal("0.05")
    assert to_price(5432.6, Decimal("1")) == Decimal("5433")


def test_aggregate_takes_first_max_min_last_and_sums() -> None:
    minutes = CandleArrays(
        start=np.array([0, 60, 120, 180]),
        open=np.array([10.0, 11.0, 12.0, 13.0]),
        high=np.array([11.0, 15.0, 12.5, 13.5]),
        low=np.array([9.5, 10.5, 8.0, 12.5]),
        close=np.array([11.0, 12.0, 13.0, 13.2]),
        volume=np.array([5, 6, 7, 8]),
        oi=np.array([1, 2, 3, 4]),
    )
    merged = aggregate(minutes, np.array([0, 0, 0, 1]), np.array([0, 0, 0, 180]))
    assert merged.start.tolist() == [0, 180]
    assert merged.open.tolist() == [10.0, 13.0] and merged.close.tolist() == [13.0, 13.2]
    assert merged.high.tolist() == [15.0, 13.5] and merged.low.tolist() == [8.0, 12.5]
    assert merged.volume.tolist() == [18, 8] and merged.oi.tolist() == [3, 4]
    candles = to_candles(merged, Decimal("0.05"))
    assert candles[1].start == datetime(1970, 1, 1, 5, 33, tzinfo=IST)
    assert candles[0].high == Decimal("15.00") and candles[1].close == Decimal("13.20")
