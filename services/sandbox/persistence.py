"""The sandbox's books in the database: the tables, and each event's rows for the journal.

Every event (a placement, a fill, a cancellation, a lifecycle step for one user) gathers what
it touched in a `Changes` and turns it into journal operations at the end, under the user's
lock, so the rows are a consistent snapshot and the journal commits them in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any, cast

from sqlalchemy import Table

from database.models.sandbox import (
    SandboxAccount,
    SandboxHolding,
    SandboxLifecycleRun,
    SandboxOrder,
    SandboxPosition,
    SandboxTrade,
)
from services.market.model import Instrument
from services.orders.model import OrderStatus
from services.sandbox.journal import Unit
from services.sandbox.state import (
    MICRO,
    HoldingState,
    OrderState,
    PositionState,
    TradeState,
    UserBook,
    to_micros,
)

ACCOUNTS = cast(Table, SandboxAccount.__table__)
ORDERS = cast(Table, SandboxOrder.__table__)
TRADES = cast(Table, SandboxTrade.__table__)
POSITIONS = cast(Table, SandboxPosition.__table__)
HOLDINGS = cast(Table, SandboxHolding.__table__)
RUNS = cast(Table, SandboxLifecycleRun.__table__)
LIVE_STATUSES = (OrderStatus.OPEN.value, OrderStatus.TRIGGER_PENDING.value)
FINAL_STATUSES = frozenset({OrderStatus.COMPLETE, OrderStatus.CANCELLED, OrderStatus.REJECTED})


# Events snapshot the mutable records as tuples of plain values (cheap, under the user's lock);
# the journal's writer turns the last snapshot of each row into column values
# (`TableSpec.convert`). Snapshots hold no enums or other containers, so the garbage collector
# untracks them at once instead of promoting them while they wait in the journal.
def _order_snapshot(o: OrderState) -> tuple[Any, ...]:
    return (
        o.order_id, o.user_id, o.day, o.symbol, o.exchange, str(o.side), o.quantity, o.filled,
        o.filled_value, o.price, o.trigger, str(o.price_type), str(o.product), str(o.validity),
        str(o.status), o.strategy, o.reason, o.blocked, o.placed_at, o.updated_at, o.source,
        o.algo_id,
    )  # fmt: skip


_position_snapshot = attrgetter(
    "net", "open_cost", "realized_today", "buy_quantity", "sell_quantity", "buy_value",
    "sell_value", "delivered", "margin", "day", "settle_on",
)  # fmt: skip
_account_snapshot = attrgetter(
    "user_id", "capital", "reset_count", "last_reset", "created_at", "realized",
    "today_realized", "charges", "day",
)  # fmt: skip
_contract_columns: dict[tuple[str, str], tuple[Any, ...]] = {}


def contract_columns(instrument: Instrument) -> tuple[Any, ...]:
    """A position row's contract columns, computed once per contract."""
    key = (instrument.symbol, str(instrument.exchange))
    found = _contract_columns.get(key)
    if found is None:
        strike, underlying_exchange = instrument.strike, instrument.underlying_exchange
        found = (
            instrument.symbol, str(instrument.exchange), str(instrument.instrument_type),
            instrument.lot_size, to_micros(instrument.tick_size), instrument.expiry,
            None if strike is None else to_micros(strike), instrument.underlying,
            None if underlying_exchange is None else str(underlying_exchange),
        )  # fmt: skip
        _contract_columns[key] = found
    return found


def _micros(value: Decimal) -> int:
    return int(value * MICRO) if value else 0


def _order_values(row: tuple[Any, ...] | OrderState) -> tuple[Any, ...]:
    m = MICRO
    if isinstance(row, OrderState):  # final: read it directly, nothing changes it any more
        o = row
        return (
            o.order_id, o.user_id, o.day, o.symbol, o.exchange, str(o.side), o.quantity,
            o.filled, int(o.filled_value * m), int(o.price * m), int(o.trigger * m),
            str(o.price_type), str(o.product), str(o.validity), str(o.status), o.strategy,
            o.reason[:500], int(o.blocked * m), o.placed_at, o.updated_at, o.source, o.algo_id,
        )  # fmt: skip
    s = row
    return (
        s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], int(s[8] * m), int(s[9] * m),
        int(s[10] * m), s[11], s[12], s[13], s[14], s[15], s[16][:500], int(s[17] * m), s[18],
        s[19], s[20], s[21],
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


def _position_values(s: tuple[Any, ...]) -> tuple[Any, ...]:
    # (user, contract columns, product, *_position_snapshot, now)
    contract = s[1]
    m = MICRO
    return (
        s[0], contract[0], contract[1], s[2], s[3], int(s[4] * m), int(s[5] * m), s[6], s[7],
        int(s[8] * m), int(s[9] * m), s[10], int(s[11] * m), s[12], s[13], contract[2],
        contract[3], contract[4], contract[5], contract[6], contract[7], contract[8], s[14],
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
        "blocked_margin_micros", "placed_at", "updated_at", "source", "algo_id",
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
            contract = contract_columns(position.instrument)
            product = str(position.product)
            snapshot = (user, contract, product, *_position_snapshot(position), now)
            unit += ("upsert", "positions", (user, contract[0], contract[1], product), snapshot)
        for holding in self.holdings.values():
            snapshot = (user, holding.symbol, holding.exchange, holding.quantity, holding.cost, now)
            unit += ("upsert", "holdings", snapshot[:3], snapshot)
        unit += ("upsert", "accounts", user, _account_snapshot(book))
        return unit
