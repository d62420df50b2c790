"""Refusals, with the broker-like reasons the API passes on; a refused order stays on the book."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest

from services.clock import IST, FixedClock
from services.errors import InsufficientFunds, OrderRejected
from services.market.instrument_store import InstrumentMaster
from services.market.service import MarketData
from services.orders.model import OrderRequest, OrderStatus, PriceType, Product, Side, Validity
from services.sandbox.charges import fill_charges
from services.sandbox.engine import SandboxEngine
from services.sandbox.settings import SandboxSettings
from tests.sandbox.conftest import (
    FRIDAY_MORNING,
    USER,
    EngineFactory,
    instrument,
    limit,
    order,
)

D = Decimal
FUTURE = "NIFTY23NOV26FUT"


def _nearest_call(master: InstrumentMaster) -> str:
    calls = [i for i in master.by_exchange("NFO")
             if i.symbol.startswith("NIFTY23NOV26") and i.symbol.endswith("CE")]  # fmt: skip
    return sorted(calls, key=lambda i: abs((i.strike or 0) - 26000))[0].symbol


def _rejected(engine: SandboxEngine, request: OrderRequest) -> str:
    with pytest.raises(OrderRejected) as raised:
        engine.place(USER, request)
    latest = engine.orders(USER)[0]
    assert latest.status is OrderStatus.REJECTED
    assert latest.rejection_reason == raised.value.message
    return raised.value.message


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (order(FUTURE, Side.BUY, 10, exchange="NFO", product=Product.NRML),
         "Quantity must be in multiples of lot size 65"),
        (order(FUTURE, Side.BUY, 1820, exchange="NFO", product=Product.NRML),
         f"Quantity 1820 exceeds the freeze limit 1800 for {FUTURE}: split the order"),
        (limit("SBIN", Side.BUY, 1, "100.03"),
         "Price 100.03 is not a multiple of the tick size 0.05"),
        (order("SBIN", Side.BUY, 0), "Quantity must be greater than 0"),
        (order("NOPE", Side.BUY, 1), "Symbol NOPE not found on NSE"),
        (order("NIFTY", Side.BUY, 1, exchange="NSE_INDEX"),
         "NIFTY on NSE_INDEX is an index and cannot be traded"),
        (order("SBIN", Side.SELL, 5, product=Product.CNC),
         "Cannot sell SBIN in CNC. No positions or holdings available."),
        (order("SBIN", Side.BUY, 1, product=Product.NRML),
         "NRML is for F&O and commodity contracts; use CNC or MIS for SBIN on NSE"),
        (order(FUTURE, Side.BUY, 65, exchange="NFO", product=Product.CNC),
         f"CNC is for NSE and BSE cash equity; use NRML or MIS for {FUTURE} on NFO"),
        (order("SBIN", Side.BUY, 1, price_type=PriceType.LIMIT),
         "LIMIT orders need a price above 0"),
        (order("SBIN", Side.BUY, 1, price_type=PriceType.SL_M),
         "SL-M orders need a trigger price above 0"),
        (order("SBIN", Side.BUY, 1, price_type=PriceType.SL, price="900", trigger="901"),
         "Trigger price 901 must not be above the limit price 900 for a BUY SL order"),
        (order("SBIN", Side.SELL, 1, price_type=PriceType.SL, price="900", trigger="899"),
         "Trigger price 899 must not be below the limit price 900 for a SELL SL order"),
        (order("SBIN", Side.BUY, 1, price_type=PriceType.SL_M, trigger="1000",
               validity=Validity.IOC),
         "IOC validity is not allowed for SL and SL-M orders"),
    ],
)  # fmt: skip
def test_rejections(engine: SandboxEngine, request_: OrderRequest, message: str) -> None:
    assert _rejected(engine, request_) == message


def test_options_are_never_cnc(engine: SandboxEngine, master: InstrumentMaster) -> None:
    call = _nearest_call(master)
    request = order(call, Side.BUY, 65, exchange="NFO", product=Product.CNC)
    assert _rejected(engine, request) == "Options can be traded only as MIS or NRML, not CNC"


def test_price_band_is_twenty_percent_of_the_previous_close(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    previous = market.source.quote(instrument(master, "SBIN", "NSE"), clock.now()).prev_close
    tick = D("0.05")
    low = (previous * D("0.8") / tick).quantize(D(1), ROUND_CEILING) * tick
    high = (previous * D("1.2") / tick).quantize(D(1), ROUND_FLOOR) * tick
    message = _rejected(engine, limit("SBIN", Side.SELL, 1, str(high + tick)))
    assert message == f"Price {high + tick} is outside the price band {low} - {high} for SBIN"
    assert engine.place(USER, limit("SBIN", Side.SELL, 1, str(high))).status is OrderStatus.OPEN


def test_a_stop_already_triggered_is_refused(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    ltp = market.source.quote(instrument(master, "SBIN", "NSE"), clock.now()).ltp
    request = order("SBIN", Side.BUY, 1, price_type=PriceType.SL_M, trigger=ltp - 1)
    assert _rejected(engine, request) == (
        f"Trigger price {ltp - 1} must be above the last traded price {ltp} "
        "for a BUY stop-loss order"
    )


def test_insufficient_funds(
    make_engine: EngineFactory, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    engine = make_engine(settings=SandboxSettings(starting_capital=D("1000")))
    with pytest.raises(InsufficientFunds) as raised:
        engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    assert raised.value.message == (
        "Insufficient funds. Required margin: ₹1800.00, available: ₹1000.00"
    )
    # A market order needs its margin and its charges in cash.
    sbin = instrument(master, "SBIN", "NSE")
    ask = market.source.depth(sbin, clock.now()).sell[0].price
    charges = fill_charges(sbin, Product.MIS, Side.BUY, 10, ask).total
    needed = (ask * 10 / 5).quantize(D("0.01")) + charges
    with pytest.raises(InsufficientFunds) as raised:
        engine.place(USER, order("SBIN", Side.BUY, 10))
    assert raised.value.message == (
        f"Insufficient funds. Required margin: ₹{needed}, available: ₹1000.00"
    )
    assert [o.status for o in engine.orders(USER)] == [OrderStatus.REJECTED] * 2
    funds = engine.funds(USER)
    assert (funds.available_cash, funds.utilised, funds.charges) == (D("1000"), 0, 0)
    # What fits is accepted.
    assert engine.place(USER, limit("SBIN", Side.BUY, 5, "900")).status is OrderStatus.OPEN


def test_mis_is_refused_after_the_square_off_cut_off(
    make_engine: EngineFactory, clock: FixedClock, calendar_market: MarketData
) -> None:
    engine = make_engine(market_data=calendar_market)
    clock.set(datetime(2026, 11, 20, 15, 20, tzinfo=IST))
    assert _rejected(engine, order("SBIN", Side.BUY, 1)) == (
        "MIS orders cannot be placed after square-off time (15:20 IST) on NSE. "
        "Place MIS orders again from the next trading day."
    )
    assert engine.place(USER, order("SBIN", Side.BUY, 1, product=Product.CNC)).filled_quantity == 1
    # F&O squares off at 15:25: still open for MIS at 15:20.
    future = order(FUTURE, Side.BUY, 65, exchange="NFO")
    assert engine.place(USER, future).status is OrderStatus.COMPLETE
    clock.set(datetime(2026, 11, 20, 15, 25, tzinfo=IST))
    assert "(15:25 IST) on NFO" in _rejected(engine, future)


def test_calendar_mode_refuses_orders_when_the_market_is_closed(
    make_engine: EngineFactory, calendar_market: MarketData
) -> None:
    clock = FixedClock(datetime(2026, 11, 21, 10, 0, tzinfo=IST))  # a Saturday
    engine = make_engine(market_data=calendar_market, engine_clock=clock)
    request = order("SBIN", Side.BUY, 1, product=Product.CNC)
    assert _rejected(engine, request) == "Market is closed for NSE"
    clock.set(FRIDAY_MORNING - timedelta(hours=2))  # 08:00, before the pre-open
    assert _rejected(engine, request) == "Market is closed for NSE"
    clock.set(FRIDAY_MORNING)
    assert engine.place(USER, request).status is OrderStatus.COMPLETE


def test_expired_contracts_cannot_be_traded(engine: SandboxEngine, clock: FixedClock) -> None:
    clock.set(datetime(2026, 11, 23, 15, 30, tzinfo=IST))
    request = order(FUTURE, Side.BUY, 65, exchange="NFO", product=Product.NRML)
    assert _rejected(engine, request) == f"{FUTURE} expired on 2026-11-23"
