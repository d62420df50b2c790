"""The logs database: every REST API request, with secrets redacted before they get here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from database.base import LogsBase, UtcDateTime, utc_now


class ApiLog(LogsBase):
    __tablename__ = "api_logs"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255), index=True)
    query: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[int] = mapped_column(Integer, index=True)
    duration_us: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int | None] = mapped_column(Integer, default=None, index=True)
    username: Mapped[str | None] = mapped_column(String(64), default=None)
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    request_body: Mapped[str] = mapped_column(Text, default="")
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
