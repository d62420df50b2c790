"""The engine announces what it changed on the event bus: orders, trades, positions, funds.

Announcements come from a relay thread, so every test waits for them (with a deadline); the
reports announced must equal what the engine reports when asked afterwards.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from services.clock import IST, FixedClock
from services.errors import OrderRejected
from services.events import FUNDS, ORDER, POSITION, TRADE, EventBus
from services.market.instrument_store import InstrumentMaster
from services.market.service import MarketData
from services.orders.model import FundsReport, OrderStatus, PriceType, Product, Side
from tests.sandbox.conftest import USER, EngineFactory, instrument, limit, order

D = Decimal
WAIT_SECONDS = 10.0


class Heard:
    """Everything published on a bus, in order, with waits that give up at a deadline."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[tuple[str, int, Any]] = []
        self._changed = threading.Condition()
        for topic in (ORDER, TRADE, POSITION, FUNDS):
            bus.subscribe(topic, functools.partial(self._hear, topic))

    def _hear(self, topic: str, user_id: int, payload: Any) -> None:
        with self._changed:
            self.events.append((topic, user_id, payload))
            self._changed.notify_all()

    def wait(self, done: Callable[[list[tuple[str, int, Any]]], bool]) -> list[Any]:
        with self._changed:
            assert self._changed.wait_for(lambda: done(self.events), WAIT_SECONDS), self.events
            return list(self.events)

    def until_funds(self, expected: FundsReport | None = None) -> list[tuple[str, int, Any]]:
        """Wait for a funds announcement (`expected`, if given): each announcement ends with one.

        Events queued together are announced together, so several orders placed in a row may
        end in one funds announcement: wait for the funds after the last of them.
        """
        return self.wait(
            lambda events: any(
                kind == FUNDS and expected in (None, payload) for kind, _user, payload in events
            )
        )

    def clear(self) -> None:
        with self._changed:
            self.events.clear()


def payloads(events: list[tuple[str, int, Any]], topic: str) -> list[Any]:
    return [payload for kind, _user, payload in events if kind == topic]


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def heard(bus: EventBus) -> Heard:
    return Heard(bus)


def test_a_market_order_announces_itself_its_trades_position_and_funds(
    make_engine: EngineFactory, bus: EventBus, heard: Heard
) -> None:
    engine = make_engine(events=bus)
    placed = engine.place(USER, order("SBIN", Side.BUY, 10))
    events = heard.until_funds()
    assert {user for _kind, user, _payload in events} == {USER}
    assert payloads(events, ORDER) == [engine.order(USER, placed.order_id)]
    assert payloads(events, ORDER)[0].status is OrderStatus.COMPLETE
    trades = sorted(payloads(events, TRADE), key=lambda trade: trade.trade_id)
    assert trades == sorted(engine.trades(USER), key=lambda trade: trade.trade_id)
    assert sum(trade.quantity for trade in trades) == 10
    assert payloads(events, POSITION) == engine.positions(USER)
    assert payloads(events, POSITION)[0].net_quantity == 10
    assert payloads(events, FUNDS) == [engine.funds(USER)]


def test_a_resting_limit_filled_by_a_tick_announces_the_order_too(
    make_engine: EngineFactory, bus: EventBus, heard: Heard, master: InstrumentMaster
) -> None:
    engine = make_engine(events=bus)
    sbin = instrument(master, "SBIN", "NSE")
    placed = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    events = heard.until_funds()
    assert [report.status for report in payloads(events, ORDER)] == [OrderStatus.OPEN]
    assert payloads(events, FUNDS)[0].utilised == D("1800.00")  # its margin blocked
    heard.clear()

    assert engine.on_price(sbin, D("895")) == 1
    events = heard.until_funds()
    assert [kind for kind, _user, _payload in events] == [ORDER, TRADE, POSITION, FUNDS]
    (filled,) = payloads(events, ORDER)
    assert filled == engine.order(USER, placed.order_id)
    assert (filled.status, filled.filled_quantity) == (OrderStatus.COMPLETE, 10)
    (trade,) = payloads(events, TRADE)
    assert (trade.order_id, trade.quantity, trade.price) == (placed.order_id, 10, D("900"))
    assert payloads(events, POSITION) == engine.positions(USER)
    assert payloads(events, FUNDS) == [engine.funds(USER)]


def test_a_triggered_stop_that_rests_announces_its_new_state(
    make_engine: EngineFactory, bus: EventBus, heard: Heard, master: InstrumentMaster,
    market: MarketData, clock: FixedClock,
) -> None:  # fmt: skip
    engine = make_engine(events=bus)
    sbin = instrument(master, "SBIN", "NSE")
    ltp = market.source.quote(sbin, clock.now()).ltp
    stop = order("SBIN", Side.BUY, 5, price_type=PriceType.SL, price=ltp + 3, trigger=ltp + 2)
    placed = engine.place(USER, stop)
    heard.until_funds()
    heard.clear()

    assert engine.on_price(sbin, ltp + 5) == 0  # triggered above its limit: rests as a limit
    events = heard.until_funds()
    (triggered,) = payloads(events, ORDER)
    assert (triggered.order_id, triggered.status) == (placed.order_id, OrderStatus.OPEN)
    assert payloads(events, TRADE) == payloads(events, POSITION) == []


def test_a_rejected_order_is_announced(
    make_engine: EngineFactory, bus: EventBus, heard: Heard
) -> None:
    # The caller gets an error, and the order book shows the rejected order: so does the page.
    engine = make_engine(events=bus)
    with pytest.raises(OrderRejected):
        engine.place(USER, limit("SBIN", Side.BUY, 10, "1"))  # far outside the price band
    (rejected,) = payloads(heard.until_funds(), ORDER)
    assert rejected.status is OrderStatus.REJECTED
    assert rejected == engine.orders(USER)[0]


def test_the_square_off_announces_cancellations_closing_fills_and_flat_positions(
    make_engine: EngineFactory, bus: EventBus, heard: Heard, calendar_market: MarketData,
    clock: FixedClock,
) -> None:  # fmt: skip
    engine = make_engine(market_data=calendar_market, events=bus)
    engine.place(USER, order("SBIN", Side.BUY, 10))
    resting = engine.place(USER, limit("SBIN", Side.BUY, 5, "900"))
    heard.until_funds(engine.funds(USER))
    heard.clear()

    clock.set(datetime(2026, 11, 20, 15, 20, tzinfo=IST))
    engine.run_lifecycle()
    events = heard.until_funds()
    orders = {report.order_id: report for report in payloads(events, ORDER)}
    assert orders[resting.order_id].status is OrderStatus.CANCELLED
    (squareoff,) = [report for report in orders.values() if report.strategy == "Squareoff"]
    assert (squareoff.side, squareoff.status) == (Side.SELL, OrderStatus.COMPLETE)
    (trade,) = payloads(events, TRADE)
    assert (trade.order_id, trade.quantity) == (squareoff.order_id, 10)
    positions = {(p.symbol, p.product): p.net_quantity for p in payloads(events, POSITION)}
    assert positions == {("SBIN", Product.MIS): 0}
    assert payloads(events, FUNDS)[-1] == engine.funds(USER)


def test_a_stuck_subscriber_never_holds_up_the_fill_path(
    make_engine: EngineFactory, bus: EventBus, heard: Heard, master: InstrumentMaster
) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck(_user_id: int, _payload: Any) -> None:  # a channel whose peer stopped reading
        entered.set()
        release.wait(WAIT_SECONDS)

    bus.subscribe(FUNDS, stuck)
    engine = make_engine(events=bus)
    sbin = instrument(master, "SBIN", "NSE")
    resting = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    assert entered.wait(WAIT_SECONDS)

    def trade_on() -> None:  # ticks, orders and reads while the subscriber is stuck
        assert engine.on_price(sbin, D("895")) == 1
        engine.place(USER, order("SBIN", Side.BUY, 1))
        engine.funds(USER)

    worker = threading.Thread(target=trade_on)
    worker.start()
    worker.join(WAIT_SECONDS)
    stalled = worker.is_alive()
    release.set()
    assert not stalled, "the fill path waited for a subscriber"
    # Nothing was lost: once the subscriber lets go, the rest is announced.
    events = heard.wait(lambda events: any(e[2].status is OrderStatus.COMPLETE
                                           for e in events if e[0] == ORDER))  # fmt: skip
    assert resting.order_id in {report.order_id for report in payloads(events, ORDER)}


def test_closing_the_engine_announces_what_is_queued(
    make_engine: EngineFactory, bus: EventBus, heard: Heard
) -> None:
    engine = make_engine(events=bus)
    engine.place(USER, order("SBIN", Side.BUY, 10))
    engine.close()
    assert payloads(heard.events, FUNDS), "announcements queued before close() were dropped"


def test_an_engine_without_a_bus_announces_nothing(
    make_engine: EngineFactory, bus: EventBus, heard: Heard
) -> None:
    engine = make_engine()
    engine.place(USER, order("SBIN", Side.BUY, 10))
    engine.close()
    assert heard.events == []


def test_a_cancellation_announces_the_order_and_the_released_margin(
    make_engine: EngineFactory, bus: EventBus, heard: Heard
) -> None:
    engine = make_engine(events=bus)
    placed = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    heard.until_funds()
    heard.clear()

    engine.cancel(USER, placed.order_id)
    events = heard.until_funds()
    (cancelled,) = payloads(events, ORDER)
    assert (cancelled.order_id, cancelled.status) == (placed.order_id, OrderStatus.CANCELLED)
    assert payloads(events, FUNDS)[0].utilised == 0
