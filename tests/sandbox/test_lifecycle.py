"""The sandbox's day: T+1 settlement into holdings, MIS square-off, F&O expiry, day end."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from services.clock import IST, FixedClock
from services.market.expiries import expiry_instant
from services.market.instrument_store import InstrumentMaster
from services.market.model import Exchange, Instrument
from services.market.service import MarketData
from services.orders.model import OrderStatus, PriceType, Product, Side
from services.sandbox.charges import NO_CHARGES, dp_charge, exercise_charges, fill_charges
from services.sandbox.engine import SandboxEngine
from tests.sandbox.conftest import (
    FRIDAY_MORNING,
    MONDAY_MORNING,
    USER,
    EngineFactory,
    assert_reconciles,
    instrument,
    limit,
    order,
)

D = Decimal
SATURDAY = datetime(2026, 11, 21, 10, 0, tzinfo=IST)
TUESDAY = datetime(2026, 11, 24, 10, 0, tzinfo=IST)  # a trading holiday (MARKET-FACTS §5)
WEDNESDAY = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


def test_friday_delivery_buy_is_a_holding_on_monday(
    engine: SandboxEngine, clock: FixedClock, market: MarketData, master: InstrumentMaster
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    bought = engine.place(USER, order("SBIN", Side.BUY, 10, product=Product.CNC))
    cost = bought.average_price * 10
    assert engine.funds(USER).utilised == cost  # a delivery buy is paid in full
    clock.set(SATURDAY)
    engine.run_lifecycle()
    assert engine.holdings(USER) == []
    [carried] = engine.positions(USER)
    assert (carried.product, carried.net_quantity, carried.buy_quantity) == (Product.CNC, 10, 0)

    clock.set(MONDAY_MORNING)
    [holding] = engine.holdings(USER)
    assert (holding.symbol, holding.quantity, holding.average_price) == (
        "SBIN",
        10,
        bought.average_price,
    )
    assert engine.positions(USER) == []
    funds = engine.funds(USER)
    assert funds.utilised == 0
    assert funds.available_cash == D("10000000") - cost - funds.charges
    assert_reconciles(engine)

    # Selling a holding: its cost comes back, the difference is realised, DP is charged once.
    bid = market.source.depth(sbin, clock.now()).buy[0].price
    engine.place(USER, order("SBIN", Side.SELL, 4, product=Product.CNC))
    engine.place(USER, order("SBIN", Side.SELL, 2, product=Product.CNC))
    first, second = reversed(engine.trades(USER))
    expected = fill_charges(sbin, Product.CNC, Side.SELL, 4, bid)
    assert first.charges.dp_charges == dp_charge().dp_charges == D("15.34")
    assert first.charges.total == expected.total + D("15.34")
    assert second.charges.dp_charges == 0
    [position] = engine.positions(USER)
    assert (position.net_quantity, position.sell_quantity) == (0, 6)
    assert position.realized_pnl == (bid - bought.average_price) * 6
    [holding] = engine.holdings(USER)
    assert holding.quantity == 4
    assert_reconciles(engine)
    message = "Cannot sell 5 SBIN in CNC. Only 4 available in positions and holdings"
    try:
        engine.place(USER, order("SBIN", Side.SELL, 5, product=Product.CNC))
    except Exception as error:
        assert str(error).startswith(message)
    else:
        raise AssertionError("over-selling a holding must be refused")


def test_monday_buy_settles_on_wednesday_across_the_holiday(
    engine: SandboxEngine, clock: FixedClock
) -> None:
    clock.set(MONDAY_MORNING)
    engine.place(USER, order("SBIN", Side.BUY, 3, product=Product.CNC))
    clock.set(TUESDAY)
    engine.run_lifecycle()
    assert engine.holdings(USER) == []
    assert [p.net_quantity for p in engine.positions(USER)] == [3]
    clock.set(WEDNESDAY)
    engine.run_lifecycle()
    assert [h.quantity for h in engine.holdings(USER)] == [3]
    assert engine.positions(USER) == []


def test_mis_positions_are_squared_off_at_their_venue_cut_off(
    make_engine: EngineFactory,
    clock: FixedClock,
    calendar_market: MarketData,
    master: InstrumentMaster,
) -> None:
    market = calendar_market
    engine = make_engine(market_data=market)
    sbin = instrument(master, "SBIN", "NSE")
    engine.place(USER, order("SBIN", Side.BUY, 10))
    engine.place(USER, order("NIFTY23NOV26FUT", Side.SELL, 65, exchange="NFO"))
    resting = engine.place(USER, limit("SBIN", Side.BUY, 5, "900"))
    carried = engine.place(USER, order("SBIN", Side.BUY, 2, product=Product.CNC))
    assert carried.status is OrderStatus.COMPLETE

    cutoff = datetime(2026, 11, 20, 15, 20, tzinfo=IST)
    clock.set(cutoff)
    engine.run_lifecycle()
    assert engine.order(USER, resting.order_id).status is OrderStatus.CANCELLED
    squareoff = engine.orders(USER)[0]
    assert (squareoff.strategy, squareoff.side, squareoff.quantity) == ("Squareoff", Side.SELL, 10)
    assert squareoff.status is OrderStatus.COMPLETE
    bid = market.source.depth(sbin, cutoff).buy[0].price
    trade = engine.trades(USER)[0]
    assert (trade.price, trade.traded_at) == (bid, cutoff)
    assert trade.charges == fill_charges(sbin, Product.MIS, Side.SELL, 10, bid)
    nets = {(p.symbol, p.product): p.net_quantity for p in engine.positions(USER)}
    assert nets == {("SBIN", Product.MIS): 0, ("NIFTY23NOV26FUT", Product.MIS): -65,
                    ("SBIN", Product.CNC): 2}  # fmt: skip

    clock.set(datetime(2026, 11, 20, 15, 25, tzinfo=IST))
    engine.run_lifecycle()
    engine.run_lifecycle()  # idempotent: nothing more to do
    nets = {(p.symbol, p.product): p.net_quantity for p in engine.positions(USER)}
    assert nets[("NIFTY23NOV26FUT", Product.MIS)] == 0
    assert [o.strategy for o in engine.orders(USER)].count("Squareoff") == 2
    assert_reconciles(engine)


def _strikes(master: InstrumentMaster, spot: Decimal) -> tuple[Instrument, Instrument]:
    calls = [i for i in master.by_exchange("NFO") if i.symbol.startswith("NIFTY23NOV26")
             and i.symbol.endswith("CE") and i.strike is not None]  # fmt: skip
    itm = max((c for c in calls if c.strike is not None and c.strike <= spot - 300),
              key=lambda c: c.strike or 0)  # fmt: skip
    otm = min((c for c in calls if c.strike is not None and c.strike >= spot + 300),
              key=lambda c: c.strike or 0)  # fmt: skip
    return itm, otm


def test_expiry_settles_options_at_intrinsic_value_and_futures_at_the_final_price(
    engine: SandboxEngine, clock: FixedClock, market: MarketData, master: InstrumentMaster
) -> None:
    clock.set(MONDAY_MORNING)  # the November NIFTY contracts expire today (Tuesday's holiday)
    index = instrument(master, "NIFTY", "NSE_INDEX")
    itm, otm = _strikes(master, market.source.quote(index, clock.now()).ltp)
    bought = {
        symbol: engine.place(
            USER, order(symbol, Side.BUY, 65, exchange="NFO", product=Product.NRML)
        )
        for symbol in (itm.symbol, otm.symbol, "NIFTY23NOV26FUT")
    }
    resting = engine.place(USER, limit(itm.symbol, Side.BUY, 65, "0.05", exchange="NFO",
                                       product=Product.NRML))  # fmt: skip
    before = engine.funds(USER)

    clock.set(datetime(2026, 11, 23, 15, 31, tzinfo=IST))
    engine.run_lifecycle()
    final = market.source.quote(index, expiry_instant(Exchange.NFO, MONDAY_MORNING.date())).ltp
    assert itm.strike is not None and otm.strike is not None
    assert itm.strike < final < otm.strike
    intrinsic = final - itm.strike
    expected_realized = {
        itm.symbol: (intrinsic - bought[itm.symbol].average_price) * 65,
        otm.symbol: -bought[otm.symbol].average_price * 65,
        "NIFTY23NOV26FUT": (final - bought["NIFTY23NOV26FUT"].average_price) * 65,
    }
    positions = {p.symbol: p for p in engine.positions(USER)}
    for symbol, realized in expected_realized.items():
        assert positions[symbol].net_quantity == 0
        assert positions[symbol].realized_pnl == realized.quantize(D("0.01")), symbol
    settlements = {t.symbol: t for t in engine.trades(USER) if t.side is Side.SELL}
    assert settlements[itm.symbol].price == intrinsic
    assert settlements[itm.symbol].charges == exercise_charges(itm, 65, final)
    assert settlements[otm.symbol].price == 0
    assert settlements[otm.symbol].charges == NO_CHARGES
    assert settlements["NIFTY23NOV26FUT"].charges == NO_CHARGES
    assert engine.order(USER, resting.order_id).status is OrderStatus.CANCELLED
    assert {o.strategy for o in engine.orders(USER) if o.side is Side.SELL} == {"Expiry"}

    funds = engine.funds(USER)
    assert funds.utilised == 0
    total = sum(expected_realized.values(), D(0)).quantize(D("0.01"))
    assert funds.realized_pnl == total
    assert funds.charges == before.charges + exercise_charges(itm, 65, final).total
    assert_reconciles(engine)
    engine.run_lifecycle()
    assert len(engine.trades(USER)) == 6


def test_day_orders_expire_at_the_session_end_in_calendar_mode(
    make_engine: EngineFactory, calendar_market: MarketData
) -> None:
    clock = FixedClock(FRIDAY_MORNING)
    engine = make_engine(market_data=calendar_market, engine_clock=clock)
    placed = engine.place(USER, limit("SBIN", Side.BUY, 5, "900", product=Product.CNC))
    assert engine.funds(USER).utilised == D("4500.00")
    clock.set(datetime(2026, 11, 20, 15, 30, tzinfo=IST))
    engine.run_lifecycle()
    expired = engine.order(USER, placed.order_id)
    assert (expired.status, expired.rejection_reason) == (
        OrderStatus.CANCELLED,
        "Order expired at the end of the trading day",
    )
    assert engine.funds(USER).utilised == 0


def test_day_orders_expire_at_the_rollover_in_always_open_mode(
    engine: SandboxEngine, clock: FixedClock
) -> None:
    engine.place(USER, limit("SBIN", Side.BUY, 5, "900", product=Product.CNC))
    stop = engine.place(USER, order("SBIN", Side.BUY, 5, product=Product.CNC,
                                    price_type=PriceType.SL_M, trigger="1100"))  # fmt: skip
    assert stop.status is OrderStatus.TRIGGER_PENDING
    clock.set(SATURDAY)
    assert engine.orders(USER) == []  # a new day's order book
    assert engine.funds(USER).utilised == 0


def test_missed_square_off_happens_at_the_next_start(
    make_engine: EngineFactory,
    clock: FixedClock,
    calendar_market: MarketData,
    master: InstrumentMaster,
) -> None:
    market = calendar_market
    engine = make_engine(market_data=market)
    bought = engine.place(USER, order("SBIN", Side.BUY, 10))
    engine.close()
    clock.set(MONDAY_MORNING)  # the desk was down from Friday morning to Monday
    restarted = make_engine(market_data=market)
    restarted.run_lifecycle()
    cutoff = datetime(2026, 11, 20, 15, 20, tzinfo=IST)
    bid = market.source.depth(instrument(master, "SBIN", "NSE"), cutoff).buy[0].price
    funds = restarted.funds(USER)
    assert (funds.utilised, funds.today_realized_pnl) == (0, 0)  # Friday's P&L, not today's
    assert funds.realized_pnl == (bid - bought.average_price) * 10
    assert restarted.positions(USER) == []
    assert_reconciles(restarted)


def test_steps_that_ran_are_remembered_across_a_restart(
    make_engine: EngineFactory, clock: FixedClock, calendar_market: MarketData
) -> None:
    engine = make_engine(market_data=calendar_market)
    engine.place(USER, order("SBIN", Side.BUY, 10))
    clock.set(datetime(2026, 11, 20, 15, 26, tzinfo=IST))
    engine.run_lifecycle()
    done = {("squareoff", "2026-11-20:NSE"), ("squareoff", "2026-11-20:NFO")}
    assert done <= engine._lifecycle.runs
    orders = engine.orders(USER)
    engine.close()

    restarted = make_engine(market_data=calendar_market)
    due = restarted._lifecycle.due_steps(clock.now(), clock.now().date())
    assert not done & set(due)
    restarted.run_lifecycle()
    assert restarted.orders(USER) == orders


def test_always_open_mode_squares_mis_off_just_before_midnight(
    engine: SandboxEngine, clock: FixedClock
) -> None:
    # The demo market never closes: intraday trading works in the evening too.
    clock.set(datetime(2026, 11, 20, 20, 0, tzinfo=IST))
    placed = engine.place(USER, order("SBIN", Side.BUY, 10))
    assert placed.status is OrderStatus.COMPLETE
    clock.set(datetime(2026, 11, 20, 23, 49, tzinfo=IST))
    engine.run_lifecycle()
    assert engine.positions(USER)[0].net_quantity == 10
    clock.set(datetime(2026, 11, 20, 23, 50, tzinfo=IST))
    engine.run_lifecycle()
    assert [p.net_quantity for p in engine.positions(USER)] == [0]
    assert engine.orders(USER)[0].strategy == "Squareoff"
    assert_reconciles(engine)


def test_scheduled_weekly_reset(engine: SandboxEngine, clock: FixedClock) -> None:
    engine.place(USER, order("SBIN", Side.BUY, 10, product=Product.CNC))
    assert engine.reset_due("weekly") == []  # this week's books stay
    clock.set(MONDAY_MORNING)  # a new week
    assert engine.reset_due("weekly") == [USER]
    funds = engine.funds(USER)
    assert (funds.reset_count, funds.available_cash) == (1, funds.starting_capital)
    assert engine.orders(USER) == [] and engine.positions(USER) == []
    assert engine.reset_due("weekly") == []  # once per period
    with pytest.raises(ValueError, match="unknown reset schedule"):
        engine.reset_due("hourly")
