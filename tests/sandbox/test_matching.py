"""Matching: MARKET walks the simulated depth, LIMIT takes what is within its price and rests,
resting orders fill on later prices, stops trigger; modify and cancel."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

from services.clock import FixedClock
from services.errors import NotFound, OrderRejected
from services.market.instrument_store import InstrumentMaster
from services.market.service import MarketData
from services.orders.model import ModifyRequest, OrderStatus, PriceType, Side, Validity
from services.sandbox.engine import SandboxEngine
from services.sandbox.state import AVERAGE_QUANTUM
from tests.sandbox.conftest import USER, assert_reconciles, instrument, limit, order

D = Decimal


def _average(fills: list[tuple[Decimal, int]]) -> Decimal:
    value = sum((price * quantity for price, quantity in fills), D(0))
    quantity = sum(quantity for _, quantity in fills)
    return (value / quantity).quantize(AVERAGE_QUANTUM, ROUND_HALF_UP)


def test_market_order_walks_the_depth_of_its_second(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    asks = market.source.depth(sbin, clock.now()).sell
    quantity = asks[0].quantity + asks[1].quantity + 7
    report = engine.place(USER, order("SBIN", Side.BUY, quantity))
    expected = [(asks[0].price, asks[0].quantity), (asks[1].price, asks[1].quantity),
                (asks[2].price, 7)]  # fmt: skip
    assert report.status is OrderStatus.COMPLETE
    assert report.filled_quantity == quantity
    assert report.average_price == _average(expected)
    assert [(t.price, t.quantity) for t in reversed(engine.trades(USER))] == expected

    # The same second's liquidity is shared: the next buyer starts where the first stopped.
    second = engine.place(USER, order("SBIN", Side.BUY, 5))
    assert second.average_price == asks[2].price
    # A new second brings a fresh book.
    clock.advance(timedelta(seconds=1))
    third = engine.place(USER, order("SBIN", Side.BUY, 5))
    assert third.average_price == market.source.depth(sbin, clock.now()).sell[0].price
    assert_reconciles(engine)


def test_market_order_beyond_five_levels_is_partly_cancelled(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    bids = market.source.depth(sbin, clock.now()).buy
    available = sum(level.quantity for level in bids)
    report = engine.place(USER, order("SBIN", Side.SELL, available + 100))
    assert report.status is OrderStatus.CANCELLED
    assert report.filled_quantity == available
    assert report.average_price == _average([(lvl.price, lvl.quantity) for lvl in bids])
    assert report.rejection_reason == (
        f"Market protection: 100 of {available + 100} cancelled, "
        "no more liquidity within the 5 best levels"
    )
    [position] = engine.positions(USER)
    assert position.net_quantity == -available
    # Nothing is left in this second: a further market order fills nothing.
    empty = engine.place(USER, order("SBIN", Side.SELL, 1))
    assert (empty.status, empty.filled_quantity) == (OrderStatus.CANCELLED, 0)
    assert_reconciles(engine)


def test_marketable_limit_fills_within_its_price_and_rests_the_rest(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    asks = market.source.depth(sbin, clock.now()).sell
    quantity = asks[0].quantity + asks[1].quantity + 50
    report = engine.place(USER, limit("SBIN", Side.BUY, quantity, str(asks[1].price)))
    assert report.status is OrderStatus.OPEN
    assert report.filled_quantity == asks[0].quantity + asks[1].quantity
    assert report.average_price == _average(
        [(asks[0].price, asks[0].quantity), (asks[1].price, asks[1].quantity)]
    )
    assert report.pending_quantity == 50
    # The open remainder blocks MIS margin at its limit (5x leverage).
    position_margin = (report.average_price * report.filled_quantity / 5).quantize(D("0.01"))
    funds = engine.funds(USER)
    blocked = (asks[1].price * 50 / 5).quantize(D("0.01"))
    assert abs(funds.utilised - (position_margin + blocked)) <= D("0.01")
    assert_reconciles(engine)


def test_ioc_limit_cancels_what_does_not_fill_now(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    asks = market.source.depth(sbin, clock.now()).sell
    request = limit("SBIN", Side.BUY, asks[0].quantity + 10, str(asks[0].price),
                    validity=Validity.IOC)  # fmt: skip
    report = engine.place(USER, request)
    assert (report.status, report.filled_quantity) == (OrderStatus.CANCELLED, asks[0].quantity)
    assert report.rejection_reason == f"IOC: 10 of {asks[0].quantity + 10} unfilled and cancelled"
    assert engine.funds(USER).utilised > 0  # the position, not the cancelled remainder


def test_resting_limit_fills_on_the_tick_that_crosses_it(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    start = clock.now()
    ask = market.source.depth(sbin, start).sell[0].price
    path = [market.source.quote(sbin, start + timedelta(seconds=s)).ltp for s in range(1, 301)]
    low = min(path)
    assert low < ask, "the path should dip below the ask within five minutes"
    crossing = path.index(low) + 1  # first second the last price reaches the limit

    placed = engine.place(USER, limit("SBIN", Side.BUY, 10, str(low)))
    assert placed.status is OrderStatus.OPEN
    for second in range(1, crossing + 1):
        clock.set(start + timedelta(seconds=second))
        made = engine.on_tick()
        assert made == (1 if second == crossing else 0), second
    filled = engine.order(USER, placed.order_id)
    assert (filled.status, filled.average_price) == (OrderStatus.COMPLETE, low)
    [trade] = engine.trades(USER)
    assert trade.traded_at == start + timedelta(seconds=crossing)


def test_stop_loss_market_triggers_at_the_trigger(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    ltp = market.source.quote(sbin, clock.now()).ltp
    engine.place(USER, order("SBIN", Side.BUY, 10))
    trigger = ltp - D("5")
    stop = engine.place(USER, order("SBIN", Side.SELL, 10, price_type=PriceType.SL_M,
                                    trigger=trigger))  # fmt: skip
    assert stop.status is OrderStatus.TRIGGER_PENDING
    assert engine.on_price(sbin, trigger + D("0.05")) == 0
    assert engine.on_price(sbin, trigger - D("0.10")) == 1
    done = engine.order(USER, stop.order_id)
    assert (done.status, done.average_price) == (OrderStatus.COMPLETE, trigger - D("0.10"))
    [position] = engine.positions(USER)
    assert position.net_quantity == 0
    assert_reconciles(engine)


def test_stop_loss_limit_fills_within_its_limit_or_rests(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    ltp = market.source.quote(sbin, clock.now()).ltp
    trigger, price = ltp + D("2"), ltp + D("3")
    first = engine.place(USER, order("SBIN", Side.BUY, 5, price_type=PriceType.SL,
                                     price=price, trigger=trigger))  # fmt: skip
    second = engine.place(USER, order("SBIN", Side.BUY, 5, price_type=PriceType.SL,
                                      price=price, trigger=trigger))  # fmt: skip
    # The price jumps through the limit: both trigger, neither can fill, both rest as limits.
    assert engine.on_price(sbin, ltp + D("5")) == 0
    assert engine.order(USER, first.order_id).status is OrderStatus.OPEN
    # Back within the limit: they fill at their limit (resting orders are passive).
    assert engine.on_price(sbin, ltp + D("2.5")) == 2
    assert engine.order(USER, second.order_id).average_price == price
    # A stop triggered by a price inside its limit fills at that price.
    third = engine.place(USER, order("SBIN", Side.SELL, 5, price_type=PriceType.SL,
                                     price=ltp - D("3"), trigger=ltp - D("2")))  # fmt: skip
    assert engine.on_price(sbin, ltp - D("2.5")) == 1
    assert engine.order(USER, third.order_id).average_price == ltp - D("2.5")


def test_modify_changes_terms_and_margin(engine: SandboxEngine, master: InstrumentMaster) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    placed = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    changed = engine.modify(USER, ModifyRequest(placed.order_id, 20, PriceType.LIMIT, D("895")))
    assert (changed.quantity, changed.price, changed.status) == (20, D("895"), OrderStatus.OPEN)
    assert engine.funds(USER).utilised == D("3580.00")  # 895 x 20 / 5
    assert engine.on_price(sbin, D("898")) == 0  # would have filled the old 900 limit
    assert engine.on_price(sbin, D("895")) == 1
    assert engine.order(USER, placed.order_id).status is OrderStatus.COMPLETE
    with pytest.raises(OrderRejected, match=r"is complete; only open or trigger pending"):
        engine.modify(USER, ModifyRequest(placed.order_id, 20, PriceType.LIMIT, D("906")))


@pytest.mark.parametrize(
    ("kind", "price", "trigger", "message"),
    [
        (PriceType.MARKET, "900", "0", "MARKET orders do not accept a price"),
        (PriceType.MARKET, "0", "900", "MARKET orders do not accept a trigger_price"),
        (PriceType.LIMIT, "900", "899", "LIMIT orders do not accept a trigger_price"),
        (PriceType.SL_M, "900", "899", "SL-M orders do not accept a price"),
        (PriceType.LIMIT, "900.03", "0", "Price 900.03 is not a multiple of the tick size 0.05"),
    ],
)
def test_modify_validates_like_a_broker(
    engine: SandboxEngine, kind: PriceType, price: str, trigger: str, message: str
) -> None:
    placed = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    with pytest.raises(OrderRejected) as raised:
        engine.modify(USER, ModifyRequest(placed.order_id, 10, kind, D(price), D(trigger)))
    assert raised.value.message == message
    unchanged = engine.order(USER, placed.order_id)
    assert (unchanged.price, unchanged.status) == (D("900"), OrderStatus.OPEN)


def test_modify_into_the_market_fills_now(
    engine: SandboxEngine, market: MarketData, master: InstrumentMaster, clock: FixedClock
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    ask = market.source.depth(sbin, clock.now()).sell[0]
    placed = engine.place(USER, limit("SBIN", Side.BUY, 5, "900"))
    changed = engine.modify(USER, ModifyRequest(placed.order_id, 5, PriceType.LIMIT, ask.price))
    assert (changed.status, changed.average_price) == (OrderStatus.COMPLETE, ask.price)
    assert engine.funds(USER).utilised == (ask.price * 5 / 5).quantize(D("0.01"))


def test_cancel_and_cancel_all(engine: SandboxEngine) -> None:
    first = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    other = engine.place(USER, limit("SBIN", Side.SELL, 10, "1100"))
    cancelled = engine.cancel(USER, first.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected) as raised:
        engine.cancel(USER, first.order_id)
    assert raised.value.message == (
        f"Order {first.order_id} is cancelled; only open or trigger pending orders can be cancelled"
    )
    with pytest.raises(NotFound, match="Order 123 not found"):
        engine.cancel(USER, "123")
    done, failed = engine.cancel_all(USER)
    assert (done, failed) == ([other.order_id], [])
    assert engine.funds(USER).utilised == 0
    assert [o.order_id for o in engine.orders(USER)] == [other.order_id, first.order_id]
