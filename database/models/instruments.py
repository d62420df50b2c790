"""The instrument master's table in the main database, rebuilt whole once a trading day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import Date, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from database.base import MainBase


class InstrumentRow(MainBase):
    """One contract (`services.market.model.Instrument` is the domain object it stores)."""

    __tablename__ = "instruments"
    __table_args__ = (
        UniqueConstraint("symbol", "exchange", name="uq_instruments_symbol_exchange"),
        # derivatives_of / expiries / option_chain look contracts up by underlying.
        Index("ix_instruments_underlying_exchange", "underlying", "exchange"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    instrument_type: Mapped[str] = mapped_column(String(8))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    lot_size: Mapped[int] = mapped_column(Integer)
    tick_size: Mapped[Decimal] = mapped_column(Numeric(10, 4))
    freeze_qty: Mapped[int | None] = mapped_column(Integer)
    expiry: Mapped[date | None] = mapped_column(Date)
    expiry_kind: Mapped[str | None] = mapped_column(String(16))
    strike: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    underlying: Mapped[str | None] = mapped_column(String(64))
    underlying_exchange: Mapped[str | None] = mapped_column(String(16))
    isin: Mapped[str | None] = mapped_column(String(12))
    brsymbol: Mapped[str] = mapped_column(String(64))
    brexchange: Mapped[str] = mapped_column(String(16))
