"""The main database: users, their API keys, two-factor recovery codes and desk-wide settings."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from database.base import MainBase, UtcDateTime, utc_now


class User(MainBase):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Bumped on password change or reset: sessions carry it and die when it no longer matches.
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The TOTP seed, sealed with a key derived from APP_KEY (services/secretbox.py); never clear.
    totp_secret_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    # Last accepted TOTP time step: a code is accepted once, not replayed within its window.
    totp_last_step: Mapped[int | None] = mapped_column(Integer, default=None)
    broker: Mapped[str] = mapped_column(String(32), default="sandbox")
    order_mode: Mapped[str] = mapped_column(String(16), default="auto")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    password_changed_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)

    api_key: Mapped[ApiKey | None] = relationship(
        back_populates="user", cascade="all, delete-orphan", uselist=False
    )
    recovery_codes: Mapped[list[RecoveryCode]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class ApiKey(MainBase):
    """One key per user, stored only as a keyed digest (the index) and an Argon2 hash."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    # HMAC-SHA256(pepper, key): finds the row in one indexed lookup without trying every hash.
    key_digest: Mapped[str] = mapped_column(String(64), unique=True)
    key_hash: Mapped[str] = mapped_column(String(255))
    # The first characters, shown on the API key page so a trader can tell keys apart.
    key_prefix: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)

    user: Mapped[User] = relationship(back_populates="api_key")


class RecoveryCode(MainBase):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_digest: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)

    user: Mapped[User] = relationship(back_populates="recovery_codes")


class DeskSetting(MainBase):
    """Desk-wide facts as key/value rows (e.g. `setup_completed`, written once)."""

    __tablename__ = "desk_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
