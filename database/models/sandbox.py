"""The sandbox database: the paper-trading exchange's own books."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import Mapped, mapped_column

from database.base import SandboxBase, UtcDateTime, utc_now


class SandboxAccount(SandboxBase):
    """A user's paper account: capital in integer paise and its reset history."""

    __tablename__ = "sandbox_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The main database's users.id; a separate database, so no foreign key across files.
    user_id: Mapped[int] = mapped_column(Integer, unique=True)
    starting_capital_paise: Mapped[int] = mapped_column(BigInteger)
    reset_count: Mapped[int] = mapped_column(Integer, default=0)
    last_reset_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
