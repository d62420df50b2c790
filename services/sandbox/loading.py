"""The sandbox's books rebuilt from its database when the engine starts.

Accounts, holdings, every position row still open or active on its day, today's orders (and
any order still live from an earlier day, which the rollover then expires) and today's trades;
plus the lifecycle steps already run and the highest ids used per day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, or_, select

from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import ChargeBreakdown, OrderStatus, PriceType, Product, Side, Validity
from services.sandbox.persistence import (
    ACCOUNTS,
    HOLDINGS,
    LIVE_STATUSES,
    ORDERS,
    POSITIONS,
    RUNS,
    TRADES,
)
from services.sandbox.state import (
    HoldingState,
    OrderState,
    PositionState,
    TradeState,
    UserBook,
    from_micros,
)


@dataclass
class LoadedState:
    books: dict[int, UserBook]
    runs: set[tuple[str, str]]
    last_order_number: dict[str, int]  # YYMMDD prefix -> highest 8-digit number used
    last_trade_number: dict[str, int]


def stored_instrument(row: Any) -> Instrument:
    """A contract rebuilt from a position row (for contracts gone from today's master)."""
    return Instrument(
        symbol=row.symbol,
        exchange=Exchange(row.exchange),
        name=row.underlying or row.symbol,
        instrument_type=InstrumentType(row.instrument_type),
        token="",
        lot_size=row.lot_size,
        tick_size=from_micros(row.tick_size_micros),
        expiry=row.expiry,
        strike=None if row.strike_micros is None else from_micros(row.strike_micros),
        underlying=row.underlying,
        underlying_exchange=None
        if row.underlying_exchange is None
        else Exchange(row.underlying_exchange),
    )


def load_state(
    engine: Engine,
    lookup: Callable[[str, str], Instrument | None],
    today: date,
) -> LoadedState:
    """Every account, open position, holding, today's (and any live) order and today's trades."""
    books: dict[int, UserBook] = {}
    with engine.connect() as connection:
        for row in connection.execute(select(ACCOUNTS)):
            books[row.user_id] = _book(row, today)
        for row in connection.execute(select(HOLDINGS).where(HOLDINGS.c.quantity != 0)):
            book = books[row.user_id]
            holding = HoldingState(
                row.user_id, row.symbol, row.exchange, row.quantity, from_micros(row.cost_micros)
            )
            book.holdings[(row.symbol, row.exchange)] = holding
            book.holdings_cost += holding.cost
        for row in connection.execute(select(POSITIONS)):
            _load_position(books[row.user_id], row, lookup)
        live = ORDERS.c.status.in_(LIVE_STATUSES)
        query = (
            select(ORDERS)
            .where(or_(ORDERS.c.trading_day == today, live))
            .order_by(ORDERS.c.placed_at, ORDERS.c.order_id)
        )
        for row in connection.execute(query):
            _load_order(books[row.user_id], row, lookup)
        query = (
            select(TRADES)
            .where(TRADES.c.trading_day == today)
            .order_by(TRADES.c.traded_at, TRADES.c.trade_id)
        )
        for row in connection.execute(query):
            _load_trade(books[row.user_id], row)
        runs = {
            (row.step, row.run_key)
            for row in connection.execute(select(RUNS.c.step, RUNS.c.run_key))
        }
        orders_max = _last_numbers(connection, ORDERS.c.order_id)
        trades_max = _last_numbers(connection, TRADES.c.trade_id)
    return LoadedState(books, runs, orders_max, trades_max)


def _book(row: Any, today: date) -> UserBook:
    return UserBook(
        user_id=row.user_id,
        capital=Decimal(row.starting_capital_paise) / 100,
        day=row.day or today,
        created_at=row.created_at,
        realized=from_micros(row.realized_micros),
        today_realized=from_micros(row.today_realized_micros),
        charges=from_micros(row.charges_micros),
        reset_count=row.reset_count,
        last_reset=row.last_reset_at,
    )


def _load_position(
    book: UserBook, row: Any, lookup: Callable[[str, str], Instrument | None]
) -> None:
    instrument = lookup(row.symbol, row.exchange) or stored_instrument(row)
    position = PositionState(
        user_id=row.user_id,
        instrument=instrument,
        product=Product(row.product),
        day=row.day,
        net=row.net_quantity,
        open_cost=from_micros(row.open_cost_micros),
        realized_today=from_micros(row.realized_today_micros),
        buy_quantity=row.buy_quantity,
        sell_quantity=row.sell_quantity,
        buy_value=from_micros(row.buy_value_micros),
        sell_value=from_micros(row.sell_value_micros),
        delivered=row.delivered_quantity,
        margin=from_micros(row.margin_micros),
        settle_on=row.settle_on,
    )
    if not position.is_active and position.day < book.day:
        return  # flat and untouched since an earlier day: nothing to show or carry
    book.positions[(row.symbol, row.exchange, position.product)] = position
    book.blocked_positions += position.margin


def _load_order(book: UserBook, row: Any, lookup: Callable[[str, str], Instrument | None]) -> None:
    order = OrderState(
        order_id=row.order_id,
        user_id=row.user_id,
        symbol=row.symbol,
        exchange=row.exchange,
        instrument=lookup(row.symbol, row.exchange),
        side=Side(row.side),
        quantity=row.quantity,
        price_type=PriceType(row.price_type),
        product=Product(row.product),
        price=from_micros(row.price_micros),
        trigger=from_micros(row.trigger_price_micros),
        validity=Validity(row.validity),
        strategy=row.strategy,
        placed_at=row.placed_at,
        day=row.trading_day,
        source=row.source,
        algo_id=row.algo_id,
    )
    order.updated_at = row.updated_at
    order.filled = row.filled_quantity
    order.filled_value = from_micros(row.filled_value_micros)
    order.status = OrderStatus(row.status)
    order.reason = row.rejection_reason
    order.blocked = from_micros(row.blocked_margin_micros)
    book.orders[order.order_id] = order
    book.blocked_orders += order.blocked


def _load_trade(book: UserBook, row: Any) -> None:
    charges = ChargeBreakdown(
        brokerage=from_micros(row.brokerage_micros),
        stt=from_micros(row.stt_micros),
        exchange_charges=from_micros(row.exchange_charges_micros),
        sebi_fees=from_micros(row.sebi_fees_micros),
        stamp_duty=from_micros(row.stamp_duty_micros),
        gst=from_micros(row.gst_micros),
        dp_charges=from_micros(row.dp_charges_micros),
    )
    trade = TradeState(
        trade_id=row.trade_id,
        order_id=row.order_id,
        user_id=row.user_id,
        symbol=row.symbol,
        exchange=row.exchange,
        side=Side(row.side),
        quantity=row.quantity,
        price=from_micros(row.price_micros),
        product=Product(row.product),
        traded_at=row.traded_at,
        day=row.trading_day,
        charges=charges,
        realized=from_micros(row.realized_micros),
    )
    book.trades.append(trade)
    order = book.orders.get(trade.order_id)
    if order is not None:
        order.brokerage_paid += charges.brokerage
    if charges.dp_charges:
        book.dp_charged.add((trade.symbol, trade.exchange))


def _last_numbers(connection: Any, column: Any) -> dict[str, int]:
    """Per id prefix (YYMMDD), the highest running number used, so ids never repeat."""
    prefix = func.substr(column, 1, 6)
    query = select(prefix, func.max(column)).group_by(prefix)
    return {str(found_prefix): int(str(top)[6:]) for found_prefix, top in connection.execute(query)}
