"""The main database: users, API keys, two-factor codes, desk settings, the Action Center
queue, risk limits and the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
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


class PendingOrder(MainBase):
    """An order (or a group: basket, split, smart, GTT) waiting in the Action Center.

    `payload` is the validated order intent as JSON (services/orders/intents.py); the summary
    columns are its first leg, for the queue's table. Money is integer micro-rupees.
    """

    __tablename__ = "pending_orders"
    __table_args__ = (Index("ix_pending_orders_user_status", "user_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    strategy: Mapped[str] = mapped_column(String(64))
    algo_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(String(64))
    exchange: Mapped[str] = mapped_column(String(16))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[int] = mapped_column(Integer)
    price_type: Mapped[str] = mapped_column(String(8))
    price_micros: Mapped[int] = mapped_column(BigInteger)
    legs: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    decided_by: Mapped[str] = mapped_column(String(64), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    # What approval did: JSON list of {"symbol", "orderid"} or {"symbol", "error"} per order.
    result: Mapped[str] = mapped_column(Text, default="")


class RiskLimit(MainBase):
    """A user's pre-trade rules; a NULL limit is not enforced. Money in integer paise."""

    __tablename__ = "risk_limits"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    max_order_value_paise: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_open_positions: Mapped[int | None] = mapped_column(Integer, default=None)
    max_daily_loss_paise: Mapped[int | None] = mapped_column(BigInteger, default=None)
    kill_switch: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class AuditEvent(MainBase):
    """One link of the append-only, hash-chained audit trail (services/audit.py).

    `hash` = SHA-256 over the previous hash and this record's canonical fields; `prev_hash`
    is unique, so two writers can never both extend the same link (the loser re-reads the
    tail and retries), whichever database and however many processes.
    """

    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True, default=None)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject: Mapped[str] = mapped_column(String(128), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class BrokerAccount(MainBase):
    """A user's account at a live broker: credentials and the day's session, sealed with
    Fernet (services/broker_accounts.py); nothing here is readable without the desk's key."""

    __tablename__ = "broker_accounts"
    __table_args__ = (UniqueConstraint("user_id", "broker"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    broker: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[str] = mapped_column(String(64), default="")
    api_key_sealed: Mapped[str] = mapped_column(Text, default="")
    api_secret_sealed: Mapped[str] = mapped_column(Text, default="")
    access_token_sealed: Mapped[str] = mapped_column(Text, default="")
    # Broker-specific session facts (e.g. Kite's public token), sealed JSON.
    session_extra_sealed: Mapped[str] = mapped_column(Text, default="")
    session_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
