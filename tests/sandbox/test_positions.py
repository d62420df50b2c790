"""Positions by the weighted-average method, realised P&L, charges and the funds ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.market.instrument_store import InstrumentMaster
from services.orders.model import OrderStatus, Product, Side
from services.sandbox.charges import fill_charges
from services.sandbox.engine import SandboxEngine
from services.sandbox.ledger import trade_position
from services.sandbox.state import PositionState
from tests.sandbox.conftest import USER, assert_reconciles, instrument, limit

D = Decimal


def _position(master: InstrumentMaster) -> PositionState:
    return PositionState(USER, instrument(master, "SBIN", "NSE"), Product.MIS, date(2026, 11, 20))


def test_adding_averages_and_closing_realises(master: InstrumentMaster) -> None:
    position = _position(master)
    assert trade_position(position, Side.BUY, 10, D("100")) == 0
    assert trade_position(position, Side.BUY, 30, D("104")) == 0
    assert (position.net, position.average_price) == (40, D("103"))
    # Partial close: (110 - 103) x 15; the average of what is left does not move.
    assert trade_position(position, Side.SELL, 15, D("110")) == D("105.00")
    assert (position.net, position.average_price, position.open_cost) == (25, D("103"), D("2575"))
    # Through zero: 25 close at (95 - 103) x 25 = -200, 10 open short at 95.
    assert trade_position(position, Side.SELL, 35, D("95")) == D("-200.00")
    assert (position.net, position.average_price) == (-10, D("95"))
    assert position.realized_today == D("-95.00")
    # Covering the short: (95 - 90) x 10.
    assert trade_position(position, Side.BUY, 10, D("90")) == D("50.00")
    assert (position.net, position.open_cost, position.realized_today) == (0, 0, D("-45.00"))
    assert (position.buy_quantity, position.sell_quantity) == (50, 50)
    assert (position.buy_value, position.sell_value) == (D("5020"), D("4975"))
    # Day P&L of a flat position is sell value - buy value.
    assert position.sell_value - position.buy_value == position.realized_today


def test_uneven_partial_close_rounds_realised_to_the_paisa(master: InstrumentMaster) -> None:
    position = _position(master)
    trade_position(position, Side.BUY, 3, D("100.05"))
    trade_position(position, Side.BUY, 4, D("100.10"))  # cost 700.55, average 100.078571...
    realized = trade_position(position, Side.SELL, 2, D("101"))
    # Released cost 700.55 x 2 / 7 = 200.157143 (six decimals); 202 - 200.157143 = 1.842857.
    assert realized == D("1.84")
    assert position.open_cost == D("700.55") - D("200.157143")


def test_buy_partial_sell_and_reversal_in_the_engine(
    engine: SandboxEngine, master: InstrumentMaster
) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    fills = [(Side.BUY, 10, "900"), (Side.BUY, 10, "910"), (Side.SELL, 15, "1000"),
             (Side.SELL, 10, "1010")]  # fmt: skip
    for side, quantity, price in fills:
        placed = engine.place(USER, limit("SBIN", side, quantity, price))
        assert placed.status is OrderStatus.OPEN  # away from the market: it rests
        assert engine.on_price(sbin, D(price)) == 1
        assert engine.order(USER, placed.order_id).status is OrderStatus.COMPLETE

    [position] = engine.positions(USER)
    assert (position.net_quantity, position.average_price) == (-5, D("1010"))
    # Realised: (1000 - 905) x 15 + (1010 - 905) x 5.
    assert position.realized_pnl == D("1950.00")
    assert (position.buy_quantity, position.buy_value) == (20, D("18100"))
    assert (position.sell_quantity, position.sell_value) == (25, D("25100"))
    assert position.unrealized_pnl == D("5050") - 5 * position.ltp

    trades = engine.trades(USER)
    assert [t.price for t in reversed(trades)] == [D("900"), D("910"), D("1000"), D("1010")]
    expected_charges = D(0)
    for trade in trades:
        expected = fill_charges(sbin, Product.MIS, trade.side, trade.quantity, trade.price)
        assert trade.charges == expected
        expected_charges += expected.total
    funds = engine.funds(USER)
    assert funds.charges == expected_charges
    assert funds.realized_pnl == funds.today_realized_pnl == D("1950.00")
    assert funds.utilised == D("1010.00")  # short 5 at 1010, MIS at 5x leverage
    assert funds.available_cash == D("10000000") + D("1950") - expected_charges - D("1010")
    assert funds.unrealized_pnl == position.unrealized_pnl
    assert_reconciles(engine)


def test_open_orders_block_margin_until_cancelled(engine: SandboxEngine) -> None:
    placed = engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    assert engine.funds(USER).utilised == D("1800.00")  # 900 x 10 / 5
    engine.cancel(USER, placed.order_id)
    funds = engine.funds(USER)
    assert (funds.utilised, funds.available_cash) == (0, D("10000000"))


def test_reset_wipes_the_books(engine: SandboxEngine, master: InstrumentMaster) -> None:
    sbin = instrument(master, "SBIN", "NSE")
    engine.place(USER, limit("SBIN", Side.BUY, 10, "900"))
    engine.on_price(sbin, D("900"))
    engine.place(USER, limit("SBIN", Side.BUY, 10, "901"))
    funds = engine.reset(USER)
    assert (funds.available_cash, funds.utilised, funds.charges) == (D("10000000"), 0, 0)
    assert (funds.reset_count, funds.last_reset) == (1, engine.funds(USER).last_reset)
    assert engine.orders(USER) == engine.trades(USER) == engine.positions(USER) == []
    assert engine.on_price(sbin, D("850")) == 0  # the wiped open order no longer rests
