"""The simulated market: determinism, realism rules, derivatives, depth and calendar mode."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from services.clock import IST, FixedClock
from services.market import black76
from services.market.calendar import MarketCalendar
from services.market.instrument_store import InstrumentMaster
from services.market.model import Exchange, Instrument, InstrumentType, Interval
from services.market.reference import load_reference_levels
from services.market.simulator import SimulatedMarket
from tests.market.conftest import NOW, TODAY, get

FRIDAY_CLOSE = datetime(2026, 11, 20, 15, 29, 59, tzinfo=IST)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def first_future(master: InstrumentMaster, underlying: str, exchange: str) -> Instrument:
    futures = [
        contract
        for contract in master.derivatives_of(underlying, Exchange(exchange))
        if contract.instrument_type is InstrumentType.FUT
    ]
    return min(futures, key=lambda contract: contract.expiry or TODAY)


def cutoff(day: date | None, hour: int, minute: int, second: int = 0) -> datetime:
    """An instant on an expiry day, IST."""
    assert day is not None
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=IST)


SAMPLE = [
    ("NIFTY", "NSE_INDEX"),
    ("RELIANCE", "NSE"),
    ("RELIANCE", "BSE"),
    ("SENSEX", "BSE_INDEX"),
    ("INFY", "NSE"),
]


def test_same_seed_gives_the_same_prices_in_two_markets(
    master: InstrumentMaster, calendar: MarketCalendar
) -> None:
    first = SimulatedMarket(master, calendar, FixedClock(NOW), seed=11)
    second = SimulatedMarket(master, calendar, FixedClock(NOW), seed=11)
    instruments = [get(master, *pair) for pair in SAMPLE]
    instruments.append(first_future(master, "NIFTY", "NFO"))
    for instant in (NOW, NOW - timedelta(days=40, seconds=123)):
        assert first.quotes(instruments, instant) == second.quotes(instruments, instant)
    assert np.array_equal(first.tick_prices(instruments, NOW), second.tick_prices(instruments, NOW))


def test_same_seed_gives_the_same_price_in_another_process(market: SimulatedMarket) -> None:
    """Keys are BLAKE2b digests, not Python's salted hash(): a fresh interpreter agrees."""
    script = (
        "from datetime import date, datetime\n"
        "from services.clock import IST, FixedClock\n"
        "from services.market.calendar import MarketCalendar\n"
        "from services.market.instrument_store import InstrumentMaster\n"
        "from services.market.model import Exchange, Instrument, InstrumentType\n"
        "from services.market.simulator import SimulatedMarket\n"
        "stock = Instrument('RELIANCE', Exchange.NSE, 'Reliance', InstrumentType.EQ, '1')\n"
        "now = datetime(2026, 11, 22, 14, 30, 17, tzinfo=IST)\n"
        "master = InstrumentMaster([stock], date(2026, 11, 22))\n"
        "market = SimulatedMarket(master, MarketCalendar(), FixedClock(now))\n"
        "print(market.quote(stock).ltp)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, capture_output=True, text=True,
        check=True, env={"PYTHONHASHSEED": "12345", "PYTHONPATH": str(PROJECT_ROOT)},
    )  # fmt: skip
    stock = Instrument("RELIANCE", Exchange.NSE, "Reliance", InstrumentType.EQ, "1")
    assert Decimal(result.stdout.strip()) == market.quote(stock).ltp


def test_different_seeds_give_different_paths(
    master: InstrumentMaster, calendar: MarketCalendar, market: SimulatedMarket
) -> None:
    other = SimulatedMarket(master, calendar, FixedClock(NOW), seed=8)
    instruments = [get(master, *pair) for pair in SAMPLE]
    assert not np.array_equal(market.tick_prices(instruments, NOW),
                              other.tick_prices(instruments, NOW))  # fmt: skip


def test_nse_and_bse_listings_of_a_stock_share_one_price(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    nse, bse = market.quotes([get(master, "TCS", "NSE"), get(master, "TCS", "BSE")], NOW)
    assert nse.ltp == bse.ltp and nse.high == bse.high and nse.prev_close == bse.prev_close


def test_every_spot_price_stays_near_its_reference_level(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    levels = load_reference_levels()
    spots = [item for item in master.all() if not item.is_derivative]
    prices = market.tick_prices(spots, NOW)
    for instrument, price in zip(spots, prices, strict=True):
        reference = float(levels[(instrument.symbol, instrument.exchange.value)].price)
        assert 0.75 < price / reference < 1.33, instrument.symbol


def test_prices_are_positive_and_quotes_are_coherent(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    chain = master.option_chain("NIFTY", "NFO", first_future(master, "NIFTY", "NFO").expiry
                                or TODAY)  # fmt: skip
    contracts = [get(master, *pair) for pair in SAMPLE] + [row[1] for row in chain if row[1]]
    for quote in market.quotes(contracts, NOW):
        assert quote.ltp > 0 and quote.low > 0
        assert quote.low <= quote.ltp <= quote.high
        assert quote.low <= quote.open <= quote.high
        assert quote.timestamp.tzinfo is not None and quote.timestamp <= NOW


def test_circuit_band_caps_every_day(market: SimulatedMarket, master: InstrumentMaster) -> None:
    # IDEA (60% volatility) gets the 10% band; RELIANCE the 20% one.
    for symbol, band in (("IDEA", Decimal("0.10")), ("RELIANCE", Decimal("0.20"))):
        candles = market.history(get(master, symbol, "NSE"), Interval.D, date(2024, 1, 1), TODAY)
        assert len(candles) > 600
        for previous, candle in itertools.pairwise(candles):
            tick = Decimal("0.05")
            assert candle.high <= previous.close * (1 + band) + tick, (symbol, candle.start)
            assert candle.low >= previous.close * (1 - band) - tick, (symbol, candle.start)


def test_a_stock_moves_with_its_index(market: SimulatedMarket, master: InstrumentMaster) -> None:
    def returns(symbol: str, exchange: str) -> np.ndarray:
        candles = market.history(get(master, symbol, exchange), Interval.D,
                                 date(2025, 11, 1), date(2026, 11, 1))  # fmt: skip
        return np.diff(np.log([float(candle.close) for candle in candles]))

    nifty = returns("NIFTY", "NSE_INDEX")
    assert np.corrcoef(nifty, returns("HDFCBANK", "NSE"))[0, 1] > 0.3
    assert np.corrcoef(nifty, returns("BANKNIFTY", "NSE_INDEX"))[0, 1] > 0.5
    assert np.corrcoef(nifty, returns("INDIAVIX", "NSE_INDEX"))[0, 1] < -0.2


def test_daily_volatility_matches_the_reference(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    candles = market.history(get(master, "NIFTY", "NSE_INDEX"), Interval.D,
                             date(2024, 11, 1), date(2026, 11, 1))  # fmt: skip
    closes = np.log([float(candle.close) for candle in candles])
    realised = float(np.diff(closes).std()) * math.sqrt(365)  # always open: 365 sessions a year
    assert 0.08 < realised < 0.18  # NIFTY's reference volatility is 0.13


def test_futures_carry_above_spot_and_converge_at_expiry(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    future = first_future(master, "NIFTY", "NFO")
    nifty = get(master, "NIFTY", "NSE_INDEX")
    spot, quote = market.quotes([nifty, future], NOW)
    assert quote.ltp > spot.ltp
    years = black76.years_to_expiry(NOW, cutoff(future.expiry, 15, 30))
    assert float(quote.ltp) == pytest.approx(float(spot.ltp) * math.exp(0.065 * years), rel=1e-4)
    assert market.forward_of(future, NOW) == pytest.approx(float(quote.ltp), abs=0.05)
    spot, quote = market.quotes([nifty, future], cutoff(future.expiry, 15, 29, 59))
    assert abs(quote.ltp - spot.ltp) <= Decimal("0.10")


def test_option_prices_respect_put_call_parity(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    monthly = master.expiries("NIFTY", "NFO", "futures")[0]
    future = get(master, f"NIFTY{monthly.strftime('%d%b%y').upper()}FUT", "NFO")
    forward = market.forward_of(future, NOW)
    years = black76.years_to_expiry(NOW, cutoff(monthly, 15, 30))
    discount = math.exp(-market.rate * years)
    rows = [row for row in master.option_chain("NIFTY", "NFO", monthly)
            if abs(float(row[0]) / forward - 1) < 0.05]  # fmt: skip
    assert len(rows) >= 10
    for strike, call, put in rows:
        assert call is not None and put is not None
        call_quote, put_quote = market.quotes([call, put], NOW)
        parity = discount * (forward - float(strike))
        assert float(call_quote.ltp - put_quote.ltp) == pytest.approx(parity, abs=0.101)


def test_option_price_is_black76_at_the_reported_volatility(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    expiry = master.expiries("CRUDEOIL", "MCX", "options")[0]
    chain = master.option_chain("CRUDEOIL", "MCX", expiry)
    strike, call, put = chain[len(chain) // 2]
    assert call is not None and put is not None
    moment = market.quote(call, NOW).timestamp
    years = black76.years_to_expiry(moment, cutoff(expiry, 23, 30))
    for contract, kind in ((call, black76.OptionKind.CALL), (put, black76.OptionKind.PUT)):
        volatility = market.volatility_of(contract, NOW)
        assert 0.2 < volatility < 0.6  # CRUDEOIL's reference volatility is 0.35
        expected = black76.price(kind, market.forward_of(contract, NOW), float(strike), years,
                                 market.rate, volatility)  # fmt: skip
        assert float(market.quote(contract, NOW).ltp) == pytest.approx(expected, abs=0.051)


def test_smile_is_richer_for_out_of_the_money_index_puts(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    expiry = master.expiries("NIFTY", "NFO", "options")[1]
    chain = master.option_chain("NIFTY", "NFO", expiry)
    low_put = chain[len(chain) // 4][2]
    assert low_put is not None
    forward = market.forward_of(low_put, NOW)
    at_money = min(chain, key=lambda row: abs(float(row[0]) - forward))[2]
    assert at_money is not None
    assert market.volatility_of(low_put, NOW) > market.volatility_of(at_money, NOW)


def test_depth_is_sorted_with_the_bid_below_the_ask(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    future = first_future(master, "BANKNIFTY", "NFO")
    chain = master.option_chain("BANKNIFTY", "NFO", future.expiry or TODAY)
    option = chain[len(chain) // 2][1]
    assert option is not None
    for instrument in (get(master, "SBIN", "NSE"), future, option):
        for second in range(3):
            depth = market.depth(instrument, NOW + timedelta(seconds=second))
            bids = [level.price for level in depth.buy]
            asks = [level.price for level in depth.sell]
            assert len(asks) == 5 and 1 <= len(bids) <= 5
            assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
            assert bids[0] < asks[0]
            assert depth.quote.bid == bids[0] and depth.quote.ask == asks[0]
            assert bids[0] <= depth.quote.ltp <= asks[0]
            for level in (*depth.buy, *depth.sell):
                assert level.quantity % instrument.lot_size == 0 and level.quantity > 0
                assert 1 <= level.orders <= level.quantity
            # Sizes thin out away from the touch.
            assert depth.sell[0].quantity > depth.sell[-1].quantity / 2


def test_indices_have_no_book(market: SimulatedMarket, master: InstrumentMaster) -> None:
    depth = market.depth(get(master, "NIFTY", "NSE_INDEX"), NOW)
    assert depth.buy == () and depth.sell == () and depth.quote.volume == 0


def test_volume_grows_and_open_interest_peaks_near_the_money(
    market: SimulatedMarket, master: InstrumentMaster
) -> None:
    stock = get(master, "SBIN", "NSE")
    volumes = [market.quote(stock, NOW.replace(hour=hour)).volume for hour in (1, 9, 15, 23)]
    assert volumes == sorted(volumes) and volumes[0] > 0
    future = first_future(master, "NIFTY", "NFO")
    assert market.quote(future, NOW).oi % future.lot_size == 0 and market.quote(future, NOW).oi
    chain = master.option_chain("NIFTY", "NFO", future.expiry or TODAY)
    forward = market.forward_of(future, NOW)
    nearest = min(chain, key=lambda row: abs(float(row[0]) - forward))
    at_money, far = nearest[1], chain[0][1]
    assert at_money is not None and far is not None
    assert market.quote(at_money, NOW).oi > 5 * market.quote(far, NOW).oi


def test_tick_prices_agree_with_quotes(market: SimulatedMarket, master: InstrumentMaster) -> None:
    mcx_option = next(item for item in master.by_exchange("MCX") if item.is_option)
    bfo_option = next(item for item in master.by_exchange("BFO") if item.is_option)
    instruments = [get(master, *pair) for pair in SAMPLE] + [
        first_future(master, "NIFTY", "NFO"), first_future(master, "GOLD", "MCX"),
        mcx_option, bfo_option, *master.by_exchange("NFO")[:200:7],
    ]  # fmt: skip
    for instant in (NOW, NOW + timedelta(seconds=1), NOW - timedelta(days=3, hours=5)):
        prices = market.tick_prices(instruments, instant)
        expected = [float(quote.ltp) for quote in market.quotes(instruments, instant)]
        assert prices.tolist() == pytest.approx(expected, abs=1e-9)


def test_calendar_mode_stands_still_outside_sessions(
    sessions_market: SimulatedMarket, master: InstrumentMaster
) -> None:
    stock = get(master, "HDFCBANK", "NSE")
    friday = sessions_market.quote(stock, FRIDAY_CLOSE)
    weekend = [datetime(2026, 11, day, hour, tzinfo=IST) for day in (21, 22) for hour in (3, 12)]
    for instant in [*weekend, datetime(2026, 11, 20, 18, tzinfo=IST)]:
        quote = sessions_market.quote(stock, instant)
        assert quote == friday
        assert quote.timestamp == FRIDAY_CLOSE
    monday_pre_open = sessions_market.quote(stock, datetime(2026, 11, 23, 9, 10, tzinfo=IST))
    assert monday_pre_open.ltp == friday.ltp
    opened = sessions_market.quote(stock, datetime(2026, 11, 23, 9, 15, tzinfo=IST))
    assert opened.prev_close == friday.ltp
    daily = sessions_market.history(stock, Interval.D, date(2026, 11, 16), TODAY)
    assert daily[-1].start.date() == date(2026, 11, 20) and daily[-1].close == friday.ltp


def test_calendar_mode_moves_only_inside_sessions(
    sessions_market: SimulatedMarket, master: InstrumentMaster
) -> None:
    stock = get(master, "INFY", "NSE")
    thursday = date(2026, 11, 19)
    inside = [datetime.combine(thursday, datetime.min.time(), IST).replace(hour=10, second=s)
              for s in range(0, 50, 5)]  # fmt: skip
    moving = {quote.ltp for quote in sessions_market.quotes([stock] * 1, inside[0])}
    moving |= {sessions_market.quote(stock, instant).ltp for instant in inside}
    assert len(moving) > 1
    evening = sessions_market.quote(stock, inside[0].replace(hour=21))
    assert evening.timestamp == inside[0].replace(hour=15, minute=29, second=59)


def test_a_derivative_without_a_reference_level_is_a_clear_error(
    master: InstrumentMaster, calendar: MarketCalendar
) -> None:
    levels = {key: level for key, level in load_reference_levels().items() if key[0] != "SBIN"}
    market = SimulatedMarket(master, calendar, FixedClock(NOW), reference=levels)
    future = first_future(master, "SBIN", "NFO")
    with pytest.raises(ValueError, match="SBIN"):
        market.quote(future)
    with pytest.raises(ValueError, match="SBIN"):
        market.quote(get(master, "SBIN", "NSE"))
    stray = Instrument("NOSUCH", Exchange.NSE, "No such", InstrumentType.EQ, "9")
    with pytest.raises(ValueError, match="NOSUCH"):
        market.quote(stray)


def test_volatility_of_refuses_a_future(market: SimulatedMarket, master: InstrumentMaster) -> None:
    with pytest.raises(ValueError, match="not an option"):
        market.volatility_of(first_future(master, "NIFTY", "NFO"), NOW)
    with pytest.raises(ValueError, match="not a derivative"):
        market.forward_of(get(master, "NIFTY", "NSE_INDEX"), NOW)


@pytest.mark.parametrize("mode", ["always_open", "sessions"])
def test_spot_fast_quote_equals_the_candle_path(
    mode: str, market: SimulatedMarket, sessions_market: SimulatedMarket, master: InstrumentMaster
) -> None:
    source = market if mode == "always_open" else sessions_market
    for symbol in ("SBIN", "RELIANCE", "INFY"):
        stock = get(master, symbol, "NSE")
        plan = source.plan(stock)
        for offset in (0, 59, 61, 3_599, 20_000):
            at = FRIDAY_CLOSE - timedelta(seconds=offset)
            quote = source.quote(stock, at)
            moment = source._store.moment(plan.track, int(at.timestamp()))
            minutes = source.day_minutes(plan, moment.day, moment.point).rounded(float(plan.tick))
            tick = plan.tick
            assert quote.ltp == (Decimal(str(minutes.close[-1])) / tick).quantize(1) * tick
            assert quote.high == (Decimal(str(minutes.high.max())) / tick).quantize(1) * tick
            assert quote.low == (Decimal(str(minutes.low.min())) / tick).quantize(1) * tick
            assert quote.open == (Decimal(str(minutes.open[0])) / tick).quantize(1) * tick
            assert quote.volume == int(minutes.volume.sum())
