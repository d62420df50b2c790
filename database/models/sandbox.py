"""The sandbox database: the paper-trading exchange's own books.

Money and prices are stored exactly as integers of micro-rupees (`*_micros`, 1 = ₹0.000001):
SQLite has no exact decimal type, and one scale for every amount (prices on a 0.0025 tick,
averages, paise) keeps the conversions in one place (`services.sandbox.state`). The engine
writes these tables with SQLAlchemy Core through its write-behind journal; the ORM classes
below exist for the schema (and Alembic), not for the hot path.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from database.base import SandboxBase, UtcDateTime, utc_now


class SandboxAccount(SandboxBase):
    """A user's paper account: capital in integer paise, its P&L ledger and reset history."""

    __tablename__ = "sandbox_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The main database's users.id; a separate database, so no foreign key across files.
    user_id: Mapped[int] = mapped_column(Integer, unique=True)
    starting_capital_paise: Mapped[int] = mapped_column(BigInteger)
    reset_count: Mapped[int] = mapped_column(Integer, default=0)
    last_reset_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    # Realised P&L and charges since the last reset; today's realised P&L for `day`.
    realized_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    today_realized_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    charges_micros: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    day: Mapped[date | None] = mapped_column(Date, default=None)


class SandboxOrder(SandboxBase):
    """One paper order, rejected ones included (they show in the order book)."""

    __tablename__ = "sandbox_orders"
    __table_args__ = (Index("ix_sandbox_orders_user_day", "user_id", "trading_day"),)

    order_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    trading_day: Mapped[date] = mapped_column(Date)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    filled_quantity: Mapped[int] = mapped_column(Integer)
    filled_value_micros: Mapped[int] = mapped_column(BigInteger)
    price_micros: Mapped[int] = mapped_column(BigInteger)
    trigger_price_micros: Mapped[int] = mapped_column(BigInteger)
    price_type: Mapped[str] = mapped_column(String(8))
    product: Mapped[str] = mapped_column(String(8))
    validity: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20))
    strategy: Mapped[str] = mapped_column(String(255))
    # Who sent it (api, ui, webhook, strategy, telegram) and the algorithm's ID (SEBI tagging).
    source: Mapped[str] = mapped_column(String(16), default="api", server_default="api")
    algo_id: Mapped[str] = mapped_column(String(32), default="", server_default="")
    rejection_reason: Mapped[str] = mapped_column(String(500))
    blocked_margin_micros: Mapped[int] = mapped_column(BigInteger)
    placed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxTrade(SandboxBase):
    """One fill, with its charges itemised and the P&L it realised."""

    __tablename__ = "sandbox_trades"
    __table_args__ = (Index("ix_sandbox_trades_user_day", "user_id", "trading_day"),)

    trade_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(20), index=True)
    user_id: Mapped[int] = mapped_column(Integer)
    trading_day: Mapped[date] = mapped_column(Date)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price_micros: Mapped[int] = mapped_column(BigInteger)
    product: Mapped[str] = mapped_column(String(8))
    traded_at: Mapped[datetime] = mapped_column(UtcDateTime)
    realized_micros: Mapped[int] = mapped_column(BigInteger)
    brokerage_micros: Mapped[int] = mapped_column(BigInteger)
    stt_micros: Mapped[int] = mapped_column(BigInteger)
    exchange_charges_micros: Mapped[int] = mapped_column(BigInteger)
    sebi_fees_micros: Mapped[int] = mapped_column(BigInteger)
    stamp_duty_micros: Mapped[int] = mapped_column(BigInteger)
    gst_micros: Mapped[int] = mapped_column(BigInteger)
    dp_charges_micros: Mapped[int] = mapped_column(BigInteger)


class SandboxPosition(SandboxBase):
    """A user's position in one contract and product: carried quantity plus today's activity.

    The contract's terms are copied in, so an expired contract (gone from the next day's
    instrument master) can still be settled after a restart.
    """

    __tablename__ = "sandbox_positions"
    __table_args__ = (UniqueConstraint("user_id", "symbol", "exchange", "product"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    product: Mapped[str] = mapped_column(String(8))
    net_quantity: Mapped[int] = mapped_column(Integer)
    open_cost_micros: Mapped[int] = mapped_column(BigInteger)  # cost of the open quantity
    realized_today_micros: Mapped[int] = mapped_column(BigInteger)
    buy_quantity: Mapped[int] = mapped_column(Integer)
    sell_quantity: Mapped[int] = mapped_column(Integer)
    buy_value_micros: Mapped[int] = mapped_column(BigInteger)
    sell_value_micros: Mapped[int] = mapped_column(BigInteger)
    delivered_quantity: Mapped[int] = mapped_column(Integer)  # CNC sold out of holdings today
    margin_micros: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[date] = mapped_column(Date)  # the trading day the activity columns belong to
    settle_on: Mapped[date | None] = mapped_column(Date)  # CNC: when it becomes a holding
    instrument_type: Mapped[str] = mapped_column(String(8))
    lot_size: Mapped[int] = mapped_column(Integer)
    tick_size_micros: Mapped[int] = mapped_column(BigInteger)
    expiry: Mapped[date | None] = mapped_column(Date)
    strike_micros: Mapped[int | None] = mapped_column(BigInteger)
    underlying: Mapped[str | None] = mapped_column(String(64))
    underlying_exchange: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxHolding(SandboxBase):
    """Settled delivery (CNC) shares: quantity and what they cost."""

    __tablename__ = "sandbox_holdings"
    __table_args__ = (UniqueConstraint("user_id", "symbol", "exchange"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[int] = mapped_column(Integer)
    cost_micros: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SandboxLifecycleRun(SandboxBase):
    """A lifecycle step that ran (square-off, expiry, day end), so a restart never repeats it."""

    __tablename__ = "sandbox_lifecycle_runs"
    __table_args__ = (UniqueConstraint("step", "run_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    step: Mapped[str] = mapped_column(String(32))
    run_key: Mapped[str] = mapped_column(String(64))
    ran_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
