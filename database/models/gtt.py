"""Sandbox GTT (good-till-triggered) orders: price triggers kept until they fire or expire.

Prices are integer micro-rupees like the rest of the sandbox database (`*_micros`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import SandboxBase, UtcDateTime


class SandboxGtt(SandboxBase):
    """One GTT: a SINGLE trigger (one order) or an OCO pair (stoploss and target legs)."""

    __tablename__ = "sandbox_gtts"
    __table_args__ = (Index("ix_sandbox_gtts_status_user", "status", "user_id"),)

    trigger_id: Mapped[str] = mapped_column(String(20), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    trigger_type: Mapped[str] = mapped_column(String(8))  # SINGLE | OCO
    status: Mapped[str] = mapped_column(String(16))  # active|triggered|cancelled|expired|rejected
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(4))
    product: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[int] = mapped_column(Integer)
    price_type: Mapped[str] = mapped_column(String(8))  # LIMIT | MARKET
    price_micros: Mapped[int] = mapped_column(BigInteger)  # SINGLE's child limit price
    trigger_sl_micros: Mapped[int] = mapped_column(BigInteger)  # 0 when unused
    trigger_tg_micros: Mapped[int] = mapped_column(BigInteger)  # 0 when unused
    stoploss_micros: Mapped[int] = mapped_column(BigInteger)  # OCO stoploss leg's limit
    target_micros: Mapped[int] = mapped_column(BigInteger)  # OCO target leg's limit
    last_price_micros: Mapped[int] = mapped_column(BigInteger)  # LTP when placed/modified
    strategy: Mapped[str] = mapped_column(String(255))
    order_id: Mapped[str] = mapped_column(String(20), default="")  # the order it placed
    message: Mapped[str] = mapped_column(String(500), default="")  # why it was rejected
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    triggered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
