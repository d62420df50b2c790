"""Live-broker credentials and sessions, sealed at rest.

API keys, secrets and access tokens are encrypted with Fernet before they reach the database.
The keys come from the environment: `BROKER_ENCRYPTION_KEYS`, a comma-separated list of Fernet
keys, newest first (values sealed under an older key still open, and `rotate()` re-seals them
under the newest), or, when unset, a key derived from APP_KEY. Nothing here is ever logged or
returned to a page: callers get the clear values only to hand them to the broker's SDK.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.engine import Databases
from database.models import BrokerAccount, User
from services.clock import Clock
from services.errors import InvalidRequest

if TYPE_CHECKING:
    from services.desk import Desk


@dataclass(frozen=True)
class BrokerCredentials:
    api_key: str
    api_secret: str
    client_id: str

    def __repr__(self) -> str:  # never print a secret, even in a traceback
        return f"BrokerCredentials(client_id={self.client_id!r}, api_key=***, api_secret=***)"


@dataclass(frozen=True)
class BrokerSession:
    access_token: str
    expires_at: datetime
    extra: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"BrokerSession(expires_at={self.expires_at.isoformat()}, access_token=***)"


@dataclass(frozen=True)
class AccountSummary:
    """What a page may show about a broker account: never a secret."""

    broker: str
    client_id: str
    has_credentials: bool
    session_expires_at: datetime | None


def derived_key(app_key: str) -> str:
    """The default Fernet key: derived from APP_KEY for broker secrets only."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"dalal-broker-v1", info=b"broker-accounts"
    ).derive(app_key.encode())
    return base64.urlsafe_b64encode(raw).decode()


def fernet_keys(configured: str, app_key: str) -> list[str]:
    keys = [key.strip() for key in configured.split(",") if key.strip()]
    return keys or [derived_key(app_key)]


class BrokerAccounts:
    def __init__(self, databases: Databases, clock: Clock, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])
        except ValueError:
            raise ValueError(
                "BROKER_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64 bytes each)"
            ) from None
        self._db = databases
        self._clock = clock

    # ------------------------------------------------------------------ sealing

    def _seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode() if text else ""

    def _open(self, sealed: str) -> str:
        if not sealed:
            return ""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise InvalidRequest(
                "Stored broker credentials cannot be opened with the configured keys "
                "(BROKER_ENCRYPTION_KEYS changed?). Enter them again under Settings -> Broker."
            ) from None

    # ------------------------------------------------------------------ credentials

    def save_credentials(self, user_id: int, broker: str, credentials: BrokerCredentials) -> None:
        """Store (or replace) the credentials; a new API key ends the current session."""
        with self._db.session() as session:
            row = self._row(session, user_id, broker)
            if row is None:
                row = BrokerAccount(user_id=user_id, broker=broker)
                session.add(row)
            row.client_id = credentials.client_id.strip()
            row.api_key_sealed = self._seal(credentials.api_key.strip())
            if credentials.api_secret:  # blank on the form keeps the stored secret
                row.api_secret_sealed = self._seal(credentials.api_secret.strip())
            row.access_token_sealed = ""
            row.session_extra_sealed = ""
            row.session_expires_at = None
            row.updated_at = self._clock.now()

    def credentials(self, user_id: int, broker: str) -> BrokerCredentials | None:
        with self._db.session() as session:
            row = self._row(session, user_id, broker)
            if row is None or not row.api_key_sealed:
                return None
            return BrokerCredentials(
                api_key=self._open(row.api_key_sealed),
                api_secret=self._open(row.api_secret_sealed),
                client_id=row.client_id,
            )

    def summary(self, user_id: int, broker: str) -> AccountSummary:
        with self._db.session() as session:
            row = self._row(session, user_id, broker)
            if row is None:
                return AccountSummary(broker, "", False, None)
            return AccountSummary(
                broker, row.client_id, bool(row.api_key_sealed), row.session_expires_at
            )

    # ------------------------------------------------------------------ sessions

    def save_session(
        self,
        user_id: int,
        broker: str,
        access_token: str,
        expires_at: datetime,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        with self._db.session() as session:
            row = self._row(session, user_id, broker)
            if row is None:
                row = BrokerAccount(user_id=user_id, broker=broker)
                session.add(row)
            row.access_token_sealed = self._seal(access_token)
            row.session_extra_sealed = self._seal(json.dumps(dict(extra or {})))
            row.session_expires_at = expires_at
            row.updated_at = self._clock.now()

    def session(self, user_id: int, broker: str) -> BrokerSession | None:
        """Today's session, or None when there is none or it has expired."""
        with self._db.session() as session:
            row = self._row(session, user_id, broker)
            if row is None or not row.access_token_sealed or row.session_expires_at is None:
                return None
            if row.session_expires_at <= self._clock.now():
                return None
            extra = self._open(row.session_extra_sealed)
            return BrokerSession(
                access_token=self._open(row.access_token_sealed),
                expires_at=row.session_expires_at,
                extra=json.loads(extra) if extra else {},
            )

    def end_session(self, user_id: int, broker: str, at: datetime | None = None) -> None:
        """Forget the access token (logout, or the broker said it is no longer valid)."""
        with self._db.session() as session:
            row = self._row(session, user_id, broker)
            if row is not None:
                row.access_token_sealed = ""
                row.session_extra_sealed = ""
                row.session_expires_at = at or self._clock.now()

    def rotate(self) -> int:
        """Re-seal every stored value under the newest key; returns the accounts touched."""
        count = 0
        with self._db.session() as session:
            for row in session.scalars(select(BrokerAccount)):
                for column in (
                    "api_key_sealed",
                    "api_secret_sealed",
                    "access_token_sealed",
                    "session_extra_sealed",
                ):
                    sealed = getattr(row, column)
                    if sealed:
                        setattr(row, column, self._fernet.rotate(sealed.encode()).decode())
                count += 1
        return count

    @staticmethod
    def _row(session: Session, user_id: int, broker: str) -> BrokerAccount | None:
        return session.scalar(
            select(BrokerAccount).where(
                BrokerAccount.user_id == user_id, BrokerAccount.broker == broker
            )
        )


def select_broker(desk: Desk, user_id: int, name: str, *, actor: str) -> str:
    """Route the user's orders to `name` (the sandbox, or a live broker with credentials)."""
    from broker.base import TradingMode, registered_brokers

    brokers = registered_brokers()
    chosen = brokers.get(name)
    if chosen is None:
        raise InvalidRequest(
            f"Choose one of: {', '.join(sorted(brokers))}.", errors={"broker": sorted(brokers)}
        )
    if chosen.mode is TradingMode.LIVE and desk.broker_accounts.credentials(user_id, name) is None:
        raise InvalidRequest(
            f"Enter your {chosen.display_name} credentials first.", errors={"broker": [name]}
        )
    with desk.databases.session() as session:
        user = session.get(User, user_id)
        if user is None:
            raise InvalidRequest(f"User {user_id} not found.")
        before, user.broker = user.broker, name
    desk.api_keys.forget_user(user_id)  # cached key verifications carry the broker
    if before != name:
        desk.audit.record(
            "account.broker_changed",
            actor=actor,
            user_id=user_id,
            details={"from": before, "to": name},
        )
    return name
