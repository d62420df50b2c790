"""The sandbox's books in the database: rows out (to the journal) and state back in (on start).

Every event (a placement, a fill, a cancellation, a lifecycle step for one user) gathers what
it touched in a `Changes` and turns it into journal operations at the end, under the user's
lock, so the rows are a consistent snapshot and the journal commits them in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Engine, Table, func, or_, select

from database.models.sandbox import (
    SandboxAccount,
    SandboxHolding,
    SandboxLifecycleRun,
    SandboxOrder,
    SandboxPosition,
    SandboxTrade,
)
from services.market.model import Exchange, Instrument, InstrumentType
from services.orders.model import (
    ChargeBreakdown,
    OrderStatus,
    PriceType,
    Product,
    Side,
    Validity,
)
from services.sandbox.journal import Unit
from services.sandbox.state import (
    MICRO,
    HoldingState,
    OrderState,
    PositionState,
    TradeState,
    UserBook,
    from_micros,
)

ACCOUNTS = cast(Table, SandboxAccount.__table__)
ORDERS = cast(Table, SandboxOrder.__table__)
TRADES = cast(Table, SandboxTrade.__table__)
POSITIONS = cast(Table, SandboxPosition.__table__)
HOLDINGS = cast(Table, SandboxHolding.__table__)
RUNS = cast(Table, SandboxLifecycleRun.__table__)
LIVE_STATUSES = (OrderStatus.OPEN.value, OrderStatus.TRIGGER_PENDING.value)
FINAL_STATUSES = frozenset({OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED})

# Events snapshot the mutable records as plain tuples (cheap, under the user's lock); the
# journal's writer turns the last snapshot of each row into column values (`TableSpec.convert`).
_order_snapshot = attrgetter(
    "order_id", "user_id", "day", "symbol", "exchange", "side", "quantity", "filled",
    "filled_value", "price", "trigger", "price_type", "product", "validity", "status",
    "strategy", "reason", "blocked", "placed_at", "updated_at",
)  # fmt: skip
_position_snapshot = attrgetter(
    "user_id", "instrument", "product", "net", "open_cost", "realized_today", "buy_quantity",
    "sell_quantity", "buy_value", "sell_value", "delivered", "margin", "day", "settle_on",
)  # fmt: skip
_account_snapshot = attrgetter(
    "user_id", "capital", "reset_count", "last_reset", "created_at", "realized",
    "today_realized", "charges", "day",
)  # fmt: skip


def _micros(value: Decimal) -> int:
    return int(value * MICRO) if value else 0


def _order_values(row: tuple[Any, ...] | OrderState) -> tuple[Any, ...]:
    s = _order_snapshot(row) if isinstance(row, OrderState) else row
    m = MICRO
    return (
        s[0], s[1], s[2], s[3], s[4], str(s[5]), s[6], s[7], int(s[8] * m), int(s[9] * m),
        int(s[10] * m), str(s[11]), str(s[12]), str(s[13]), str(s[14]), s[15], s[16][:500],
        int(s[17] * m), s[18], s[19],
    )  # fmt: skip


def _trade_values(trade: TradeState) -> tuple[Any, ...]:
    charges = trade.charges
    m = MICRO
    return (
        trade.trade_id, trade.order_id, trade.user_id, trade.day, trade.symbol, trade.exchange,
        str(trade.side), trade.quantity, int(trade.price * m), str(trade.product),
        trade.traded_at, int(trade.realized * m), int(charges.brokerage * m),
        int(charges.stt * m), int(charges.exchange_charges * m), int(charges.sebi_fees * m),
        int(charges.stamp_duty * m), int(charges.gst * m), int(charges.dp_charges * m),
    )  # fmt: skip


def _position_values(snapshot: tuple[tuple[Any, ...], datetime]) -> tuple[Any, ...]:
    s, now = snapshot
    instrument: Instrument = s[1]
    strike = instrument.strike
    underlying_exchange = instrument.underlying_exchange
    return (
        s[0], instrument.symbol, instrument.exchange.value, s[2].value, s[3], _micros(s[4]),
        _micros(s[5]), s[6], s[7], _micros(s[8]), _micros(s[9]), s[10], _micros(s[11]), s[12],
        s[13], instrument.instrument_type.value, instrument.lot_size,
        _micros(instrument.tick_size), instrument.expiry,
        None if strike is None else _micros(strike), instrument.underlying,
        None if underlying_exchange is None else underlying_exchange.value, now,
    )  # fmt: skip


def _holding_values(s: tuple[Any, ...]) -> tuple[Any, ...]:
    return (s[0], s[1], s[2], s[3], _micros(s[4]), s[5])


def _account_values(s: tuple[Any, ...]) -> tuple[Any, ...]:
    return (
        s[0], int(s[1] * 100), s[2], s[3], s[4], _micros(s[5]), _micros(s[6]), _micros(s[7]),
        s[8],
    )  # fmt: skip


def _identity(values: Any) -> tuple[Any, ...]:
    return cast(tuple[Any, ...], values)


@dataclass(frozen=True)
class TableSpec:
    """How the journal writes one table: its columns (in `convert`'s order) and row key."""

    table: Table
    columns: tuple[str, ...]
    keys: tuple[str, ...]  # conflict target of upserts; () for plain inserts
    convert: Callable[[Any], tuple[Any, ...]]


SPECS: dict[str, TableSpec] = {
    "orders": TableSpec(ORDERS, (
        "order_id", "user_id", "trading_day", "symbol", "exchange", "side", "quantity",
        "filled_quantity", "filled_value_micros", "price_micros", "trigger_price_micros",
        "price_type", "product", "validity", "status", "strategy", "rejection_reason",
        "blocked_margin_micros", "placed_at", "updated_at",
    ), ("order_id",), _order_values),
    "trades": TableSpec(TRADES, (
        "trade_id", "order_id", "user_id", "trading_day", "symbol", "exchange", "side",
        "quantity", "price_micros", "product", "traded_at", "realized_micros",
        "brokerage_micros", "stt_micros", "exchange_charges_micros", "sebi_fees_micros",
        "stamp_duty_micros", "gst_micros", "dp_charges_micros",
    ), (), _trade_values),
    "positions": TableSpec(POSITIONS, (
        "user_id", "symbol", "exchange", "product", "net_quantity", "open_cost_micros",
        "realized_today_micros", "buy_quantity", "sell_quantity", "buy_value_micros",
        "sell_value_micros", "delivered_quantity", "margin_micros", "day", "settle_on",
        "instrument_type", "lot_size", "tick_size_micros", "expiry", "strike_micros",
        "underlying", "underlying_exchange", "updated_at",
    ), ("user_id", "symbol", "exchange", "product"), _position_values),
    "holdings": TableSpec(HOLDINGS, (
        "user_id", "symbol", "exchange", "quantity", "cost_micros", "updated_at",
    ), ("user_id", "symbol", "exchange"), _holding_values),
    "accounts": TableSpec(ACCOUNTS, (
        "user_id", "starting_capital_paise", "reset_count", "last_reset_at", "created_at",
        "realized_micros", "today_realized_micros", "charges_micros", "day",
    ), ("user_id",), _account_values),
    "runs": TableSpec(RUNS, ("step", "run_key", "ran_at"), ("step", "run_key"), _identity),
}  # fmt: skip
USER_TABLES: tuple[str, ...] = ("orders", "trades", "positions", "holdings")


class Changes:
    """What one event touched; `operations()` snapshots it for the journal."""

    __slots__ = ("book", "holdings", "orders", "positions", "trades", "wipe")

    def __init__(self, book: UserBook, *, wipe: bool = False) -> None:
        self.book = book
        self.orders: dict[str, OrderState] = {}
        self.trades: list[TradeState] = []
        self.positions: dict[int, PositionState] = {}
        self.holdings: dict[int, HoldingState] = {}
        self.wipe = wipe

    @property
    def touched(self) -> bool:
        return bool(self.orders or self.trades or self.positions or self.holdings or self.wipe)

    def order(self, order: OrderState) -> None:
        self.orders[order.order_id] = order

    def position(self, position: PositionState) -> None:
        self.positions[id(position)] = position

    def holding(self, holding: HoldingState) -> None:
        self.holdings[id(holding)] = holding

    def operations(self, now: datetime) -> Unit:
        """The event's rows for the journal (see `journal.Unit`).

        Mutable records are snapshotted now; an order that reached a final state and a trade
        never change again, so they travel as themselves.
        """
        book = self.book
        user = book.user_id
        unit: Unit = ["delete_user", "", user, None] if self.wipe else []
        for order_id, order in self.orders.items():
            row = order if order.status in FINAL_STATUSES else _order_snapshot(order)
            unit += ("upsert", "orders", order_id, row)
        for trade in self.trades:
            unit += ("insert", "trades", None, trade)
        for position in self.positions.values():
            instrument = position.instrument
            key = (user, instrument.symbol, instrument.exchange, position.product)
            unit += ("upsert", "positions", key, (_position_snapshot(position), now))
        for holding in self.holdings.values():
            snapshot = (user, holding.symbol, holding.exchange, holding.quantity, holding.cost, now)
            unit += ("upsert", "holdings", snapshot[:3], snapshot)
        unit += ("upsert", "accounts", user, _account_snapshot(book))
        return unit


# ------------------------------------------------------------------------------ loading


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
