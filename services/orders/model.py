"""The common order model: what every source sends and every broker reports back.

Money is Decimal (rupees, on the instrument's tick grid for prices); quantities are whole
units (not lots); times are aware datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1


class Product(StrEnum):
    CNC = "CNC"  # cash delivery
    NRML = "NRML"  # F&O / commodity carry-forward
    MIS = "MIS"  # intraday, squared off the same day


class PriceType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    SL = "SL"  # stop-loss limit: becomes a LIMIT at `price` once `trigger_price` trades
    SL_M = "SL-M"  # stop-loss market: becomes a MARKET once `trigger_price` trades


class OrderStatus(StrEnum):
    OPEN = "open"
    TRIGGER_PENDING = "trigger pending"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    REJECTED = "rejected"

    @property
    def is_live(self) -> bool:
        return self in (OrderStatus.OPEN, OrderStatus.TRIGGER_PENDING)


class Source(StrEnum):
    """Where an order came from: stored with it, shown in the books, and what semi-auto
    mode looks at (everything but the trader's own clicks waits for approval)."""

    API = "api"
    UI = "ui"
    WEBHOOK = "webhook"
    STRATEGY = "strategy"
    TELEGRAM = "telegram"
    SYSTEM = "system"  # the desk's own: auto square-off, expiry settlement


class Validity(StrEnum):
    DAY = "DAY"
    IOC = "IOC"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A new order in the common model (after normalisation, before validation)."""

    symbol: str
    exchange: str
    side: Side
    quantity: int
    product: Product = Product.MIS
    price_type: PriceType = PriceType.MARKET
    price: Decimal = ZERO
    trigger_price: Decimal = ZERO
    disclosed_quantity: int = 0
    validity: Validity = Validity.DAY
    strategy: str = ""
    source: Source = Source.API
    # The algorithm's identifier (SEBI's algo tagging): the caller's own, e.g. one the
    # exchange assigned, or Dalal's stable one for (user, source, strategy) when empty.
    algo_id: str = ""


@dataclass(frozen=True, slots=True)
class ModifyRequest:
    """New terms for an open order; quantity is the new total quantity."""

    order_id: str
    quantity: int
    price_type: PriceType
    price: Decimal = ZERO
    trigger_price: Decimal = ZERO
    disclosed_quantity: int = 0


@dataclass(frozen=True, slots=True)
class ChargeBreakdown:
    """Charges of one fill, each rounded as the broker's contract note rounds it."""

    brokerage: Decimal = ZERO
    stt: Decimal = ZERO  # STT (securities) or CTT (commodities)
    exchange_charges: Decimal = ZERO
    sebi_fees: Decimal = ZERO
    stamp_duty: Decimal = ZERO
    gst: Decimal = ZERO
    dp_charges: Decimal = ZERO  # depository charge on delivery sells (GST included)

    @property
    def total(self) -> Decimal:
        return (
            self.brokerage
            + self.stt
            + self.exchange_charges
            + self.sebi_fees
            + self.stamp_duty
            + self.gst
            + self.dp_charges
        )


@dataclass(frozen=True, slots=True)
class OrderReport:
    order_id: str
    symbol: str
    exchange: str
    side: Side
    quantity: int
    filled_quantity: int
    average_price: Decimal
    price: Decimal
    trigger_price: Decimal
    price_type: PriceType
    product: Product
    status: OrderStatus
    placed_at: datetime
    updated_at: datetime
    strategy: str = ""
    rejection_reason: str = ""
    validity: Validity = Validity.DAY
    source: str = Source.API.value
    algo_id: str = ""

    @property
    def pending_quantity(self) -> int:
        return self.quantity - self.filled_quantity if self.status.is_live else 0


@dataclass(frozen=True, slots=True)
class TradeReport:
    trade_id: str
    order_id: str
    symbol: str
    exchange: str
    side: Side
    quantity: int
    price: Decimal
    product: Product
    traded_at: datetime
    charges: ChargeBreakdown = field(default_factory=ChargeBreakdown)

    @property
    def value(self) -> Decimal:
        return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class PositionReport:
    symbol: str
    exchange: str
    product: Product
    net_quantity: int
    average_price: Decimal  # of the open quantity; 0 when flat
    ltp: Decimal
    realized_pnl: Decimal  # today's, before charges
    unrealized_pnl: Decimal
    buy_quantity: int
    sell_quantity: int
    buy_value: Decimal
    sell_value: Decimal
    lot_size: int = 1


@dataclass(frozen=True, slots=True)
class HoldingReport:
    symbol: str
    exchange: str
    quantity: int
    average_price: Decimal
    ltp: Decimal

    @property
    def invested(self) -> Decimal:
        return self.average_price * self.quantity

    @property
    def market_value(self) -> Decimal:
        return self.ltp * self.quantity

    @property
    def pnl(self) -> Decimal:
        return self.market_value - self.invested


@dataclass(frozen=True, slots=True)
class FundsReport:
    """The account as API.md 4.3 `funds` shows it (sandbox extras included)."""

    available_cash: Decimal  # starting capital - blocked margin + realised P&L - charges
    utilised: Decimal  # margin blocked by open orders and positions
    realized_pnl: Decimal  # since the last reset
    unrealized_pnl: Decimal  # mark-to-market of open positions (not in available cash)
    collateral: Decimal
    charges: Decimal  # since the last reset
    starting_capital: Decimal
    today_realized_pnl: Decimal = ZERO
    reset_count: int = 0
    last_reset: datetime | None = None
