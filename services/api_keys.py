"""API keys: generated once, shown once, stored as a keyed digest plus an Argon2 hash.

Verifying a key finds its row with one indexed lookup on HMAC-SHA256(pepper, key). The Argon2
hash is checked on the first use only; afterwards a small in-memory cache remembers that this
exact stored hash was verified, so a request pays at most one indexed SELECT (well under a
millisecond), and none when the same key was verified within the last second. A revoked or
regenerated key stops working at once in this process and within a second in any other.

Creating and revoking are recorded in the audit trail by the key's prefix, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from database.engine import Databases
from database.models import ApiKey, User
from services.audit import AuditTrail
from services.clock import Clock
from services.errors import InvalidApiKey, NotFound
from services.passwords import hash_secret, verify_secret

INVALID_KEY_MESSAGE = "Invalid openalgo apikey"
_CACHE_SIZE = 4096
# A key verified less than this long ago is trusted without a database read. Revoking or
# regenerating in this process takes effect at once; another process sees it within this time.
OWNER_TTL_SECONDS = 1.0
_MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class ApiKeyOwner:
    """Who a verified key belongs to."""

    user_id: int
    username: str
    broker: str
    order_mode: str
    key_digest: str


@dataclass(frozen=True)
class ApiKeyInfo:
    prefix: str
    created_at: datetime


class ApiKeyService:
    def __init__(
        self, db: Databases, pepper: str, clock: Clock, audit: AuditTrail | None = None
    ) -> None:
        self._db = db
        self._audit = audit
        self._pepper = pepper.encode()
        self._pepper_text = pepper
        self._clock = clock
        self._verified: OrderedDict[str, str] = OrderedDict()  # digest -> verified key_hash
        self._recent: dict[str, tuple[ApiKeyOwner, float]] = {}  # digest -> (owner, until)
        self._lock = threading.Lock()

    def digest(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).hexdigest()

    def create(self, user_id: int, *, actor: str | None = None) -> str:
        """Create or regenerate the user's key; the old one stops working. Returns it once.
        `actor` (for the audit trail) defaults to the key's owner."""
        key = secrets.token_hex(32)
        digest = self.digest(key)
        key_hash = hash_secret(key, self._pepper_text)
        with self._db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("User not found.")
            username = user.username
            existing = session.scalar(select(ApiKey).where(ApiKey.user_id == user_id))
            replaced = None if existing is None else existing.key_prefix
            if existing is not None:
                self._forget(existing.key_digest)
                session.delete(existing)
                session.flush()
            session.add(
                ApiKey(
                    user_id=user_id,
                    key_digest=digest,
                    key_hash=key_hash,
                    key_prefix=key[:6],
                    created_at=self._clock.now(),
                )
            )
        # The prefixes are what the API key page shows: enough to tell keys apart, no more.
        details: dict[str, object] = {
            "regenerated": replaced is not None,
            "replaced_prefix": replaced,
        }
        self._record("apikey.created", user_id, key[:6], actor or username, details)
        return key

    def revoke(self, user_id: int, *, actor: str | None = None) -> bool:
        """Revoke the user's key; `actor` (for the audit trail) defaults to its owner."""
        with self._db.session() as session:
            existing = session.scalar(select(ApiKey).where(ApiKey.user_id == user_id))
            if existing is None:
                return False
            username = session.scalar(select(User.username).where(User.id == user_id)) or ""
            session.delete(existing)
        self._forget(existing.key_digest)
        self._record("apikey.revoked", user_id, existing.key_prefix, actor or username, None)
        return True

    def _record(
        self,
        action: str,
        user_id: int,
        prefix: str,
        actor: str,
        details: dict[str, object] | None,
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                action, actor=actor, user_id=user_id, subject=prefix, details=details
            )

    def info(self, user_id: int) -> ApiKeyInfo | None:
        with self._db.session() as session:
            row = session.scalar(select(ApiKey).where(ApiKey.user_id == user_id))
            return ApiKeyInfo(prefix=row.key_prefix, created_at=row.created_at) if row else None

    def verify(self, key: str) -> ApiKeyOwner:
        """Return the key's owner or raise InvalidApiKey (one message for every failure)."""
        if not key or len(key) > _MAX_KEY_LENGTH:
            raise InvalidApiKey(INVALID_KEY_MESSAGE)
        digest = self.digest(key)
        recent = self._recent.get(digest)
        if recent is not None and recent[1] > time.monotonic():
            return recent[0]
        with self._db.session() as session:
            row = session.execute(
                select(ApiKey.key_hash, User.id, User.username, User.broker, User.order_mode)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.key_digest == digest)
            ).first()
        if row is None:
            raise InvalidApiKey(INVALID_KEY_MESSAGE)
        key_hash, user_id, username, broker, order_mode = row
        if not self._already_verified(digest, key_hash):
            if not verify_secret(key_hash, key, self._pepper_text):
                raise InvalidApiKey(INVALID_KEY_MESSAGE)
            self._remember(digest, key_hash)
        owner = ApiKeyOwner(user_id, username, broker, order_mode, digest)
        if len(self._recent) > _CACHE_SIZE:
            self._recent.clear()
        self._recent[digest] = (owner, time.monotonic() + OWNER_TTL_SECONDS)
        return owner

    def forget_user(self, user_id: int) -> None:
        """Drop cached verifications of a user (after changing their broker or order mode)."""
        for digest, (owner, _until) in list(self._recent.items()):
            if owner.user_id == user_id:
                self._forget(digest)

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._verified.pop(digest, None)
            self._recent.pop(digest, None)

    def _already_verified(self, digest: str, key_hash: str) -> bool:
        with self._lock:
            cached = self._verified.get(digest)
            if cached is None:
                return False
            self._verified.move_to_end(digest)
            return hmac.compare_digest(cached, key_hash)

    def _remember(self, digest: str, key_hash: str) -> None:
        with self._lock:
            self._verified[digest] = key_hash
            self._verified.move_to_end(digest)
            while len(self._verified) > _CACHE_SIZE:
                self._verified.popitem(last=False)
