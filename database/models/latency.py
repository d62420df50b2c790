"""The latency database: order round trips through the pipeline and every broker API call."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from database.base import LatencyBase, UtcDateTime, utc_now


class OrderLatency(LatencyBase):
    __tablename__ = "order_latency"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    user_id: Mapped[int] = mapped_column(Integer, index=True)
    broker: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(64), default=None)
    # Whole microseconds: exact, and integer arithmetic for percentiles.
    validate_us: Mapped[int] = mapped_column(Integer, default=0)
    broker_us: Mapped[int] = mapped_column(Integer, default=0)
    total_us: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str] = mapped_column(String(16))


class BrokerCall(LatencyBase):
    """One call to a broker's API (broker/live.py times every one): the latency monitor."""

    __tablename__ = "broker_calls"
    __table_args__ = (Index("ix_broker_calls_broker_operation", "broker", "operation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    user_id: Mapped[int] = mapped_column(Integer)
    broker: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24))  # "ok" or the error code
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    elapsed_us: Mapped[int] = mapped_column(Integer)
