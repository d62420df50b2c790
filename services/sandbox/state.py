"""The sandbox's books in memory: orders, trades, positions, holdings and one account per user.

These are mutable records guarded by the owning user's lock (see `engine.py`); reports are
frozen copies in the common order model. Amounts are exact `Decimal` rupees; the database
stores them as integer micro-rupees (`to_micros`/`from_micros`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal

from services.market.model import Instrument
from services.orders.model import (
    ZERO,
    ChargeBreakdown,
    FundsReport,
    HoldingReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    PriceType,
    Product,
    Side,
    TradeReport,
    Validity,
)

MICRO = Decimal(1_000_000)
# Averages (of orders, positions and holdings) are kept to six decimals; money to the paisa.
AVERAGE_QUANTUM = Decimal("0.000001")
PAISA = Decimal("0.01")


def to_micros(value: Decimal) -> int:
    """Exact integer micro-rupees; `value` never has more than six decimals here."""
    return int(value * MICRO)


def from_micros(value: int) -> Decimal:
    return Decimal(value) / MICRO


def paise(value: Decimal) -> Decimal:
    return value.quantize(PAISA, ROUND_HALF_UP)


def average(value: Decimal, quantity: int) -> Decimal:
    return (value / quantity).quantize(AVERAGE_QUANTUM, ROUND_HALF_UP) if quantity else ZERO


class OrderState:
    """One order as the engine mutates it; `generation` changes whenever its terms change."""

    __slots__ = (
        "algo_id",
        "blocked",
        "brokerage_paid",
        "day",
        "exchange",
        "filled",
        "filled_value",
        "generation",
        "instrument",
        "order_id",
        "placed_at",
        "price",
        "price_type",
        "product",
        "quantity",
        "reason",
        "side",
        "source",
        "status",
        "strategy",
        "symbol",
        "trigger",
        "updated_at",
        "user_id",
        "validity",
    )

    def __init__(
        self,
        order_id: str,
        user_id: int,
        symbol: str,
        exchange: str,
        instrument: Instrument | None,
        side: Side,
        quantity: int,
        price_type: PriceType,
        product: Product,
        price: Decimal,
        trigger: Decimal,
        validity: Validity,
        strategy: str,
        placed_at: datetime,
        day: date,
        source: str = "api",
        algo_id: str = "",
    ) -> None:
        self.order_id = order_id
        self.source = source
        self.algo_id = algo_id
        self.user_id = user_id
        self.symbol = symbol
        self.exchange = exchange
        self.instrument = instrument
        self.side = side
        self.quantity = quantity
        self.price_type = price_type
        self.product = product
        self.price = price
        self.trigger = trigger
        self.validity = validity
        self.strategy = strategy
        self.placed_at = placed_at
        self.updated_at = placed_at
        self.day = day
        self.filled = 0
        self.filled_value = ZERO
        self.status = OrderStatus.OPEN
        self.reason = ""
        self.blocked = ZERO
        self.brokerage_paid = ZERO
        self.generation = 0

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled

    def report(self) -> OrderReport:
        return OrderReport(
            order_id=self.order_id,
            symbol=self.symbol,
            exchange=self.exchange,
            side=self.side,
            quantity=self.quantity,
            filled_quantity=self.filled,
            average_price=average(self.filled_value, self.filled),
            price=self.price,
            trigger_price=self.trigger,
            price_type=self.price_type,
            product=self.product,
            status=self.status,
            placed_at=self.placed_at,
            updated_at=self.updated_at,
            strategy=self.strategy,
            rejection_reason=self.reason,
            validity=self.validity,
            source=self.source,
            algo_id=self.algo_id,
        )


@dataclass(slots=True)
class TradeState:
    trade_id: str
    order_id: str
    user_id: int
    symbol: str
    exchange: str
    side: Side
    quantity: int
    price: Decimal
    product: Product
    traded_at: datetime
    day: date
    charges: ChargeBreakdown
    realized: Decimal

    def report(self) -> TradeReport:
        return TradeReport(
            trade_id=self.trade_id,
            order_id=self.order_id,
            symbol=self.symbol,
            exchange=self.exchange,
            side=self.side,
            quantity=self.quantity,
            price=self.price,
            product=self.product,
            traded_at=self.traded_at,
            charges=self.charges,
        )


@dataclass(slots=True)
class PositionState:
    """Net quantity and the cost of the open quantity (weighted average), plus today's activity.

    `delivered` counts CNC units sold today out of holdings: they close against the holding's
    cost, so `net == buys - sells + delivered` over the position's life.
    """

    user_id: int
    instrument: Instrument
    product: Product
    day: date
    net: int = 0
    open_cost: Decimal = ZERO
    realized_today: Decimal = ZERO
    buy_quantity: int = 0
    sell_quantity: int = 0
    buy_value: Decimal = ZERO
    sell_value: Decimal = ZERO
    delivered: int = 0
    margin: Decimal = ZERO
    settle_on: date | None = None

    @property
    def average_price(self) -> Decimal:
        return average(self.open_cost, abs(self.net))

    @property
    def is_active(self) -> bool:
        """Open, or traded today (closed positions stay in the day's position book)."""
        return self.net != 0 or self.buy_quantity != 0 or self.sell_quantity != 0

    def report(self, ltp: Decimal) -> PositionReport:
        unrealized = (
            (ltp * self.net - self.open_cost * (1 if self.net > 0 else -1)) if self.net else ZERO
        )
        return PositionReport(
            symbol=self.instrument.symbol,
            exchange=self.instrument.exchange.value,
            product=self.product,
            net_quantity=self.net,
            average_price=self.average_price,
            ltp=ltp,
            realized_pnl=self.realized_today,
            unrealized_pnl=unrealized,
            buy_quantity=self.buy_quantity,
            sell_quantity=self.sell_quantity,
            buy_value=self.buy_value,
            sell_value=self.sell_value,
            lot_size=self.instrument.lot_size,
        )


@dataclass(slots=True)
class HoldingState:
    user_id: int
    symbol: str
    exchange: str
    quantity: int = 0
    cost: Decimal = ZERO

    def report(self, ltp: Decimal) -> HoldingReport:
        return HoldingReport(
            symbol=self.symbol,
            exchange=self.exchange,
            quantity=self.quantity,
            average_price=average(self.cost, self.quantity),
            ltp=ltp,
        )


type PositionKey = tuple[str, str, Product]  # symbol, exchange, product
type HoldingKey = tuple[str, str]  # symbol, exchange


@dataclass(slots=True)
class UserBook:
    """Everything one user owns in the sandbox, guarded by `lock`.

    Ledger (all exact): available = capital + realized - charges - holdings_cost
    - blocked_orders - blocked_positions, where holdings_cost is what the settled delivery
    holdings cost and the blocked amounts are the margins of live orders and open positions.
    """

    user_id: int
    capital: Decimal
    day: date
    created_at: datetime
    realized: Decimal = ZERO
    today_realized: Decimal = ZERO
    charges: Decimal = ZERO
    reset_count: int = 0
    last_reset: datetime | None = None
    blocked_orders: Decimal = ZERO
    blocked_positions: Decimal = ZERO
    holdings_cost: Decimal = ZERO
    orders: dict[str, OrderState] = field(default_factory=dict)  # today's and any still live
    trades: list[TradeState] = field(default_factory=list)  # today's
    positions: dict[PositionKey, PositionState] = field(default_factory=dict)
    holdings: dict[HoldingKey, HoldingState] = field(default_factory=dict)
    dp_charged: set[HoldingKey] = field(default_factory=set)  # scrips charged DP today
    lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def available(self) -> Decimal:
        return (
            self.capital
            + self.realized
            - self.charges
            - self.holdings_cost
            - self.blocked_orders
            - self.blocked_positions
        )

    @property
    def utilised(self) -> Decimal:
        return self.blocked_orders + self.blocked_positions

    def funds(self, unrealized: Decimal) -> FundsReport:
        return FundsReport(
            available_cash=self.available,
            utilised=self.utilised,
            realized_pnl=self.realized,
            unrealized_pnl=unrealized,
            collateral=ZERO,
            charges=self.charges,
            starting_capital=self.capital,
            today_realized_pnl=self.today_realized,
            reset_count=self.reset_count,
            last_reset=self.last_reset,
        )
