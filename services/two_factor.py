"""TOTP two-factor sign-in (RFC 6238 via pyotp) with single-use recovery codes.

Turning it on or off, and spending a recovery code, are recorded in the audit trail (never a
seed or a code).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import secrets
from dataclasses import dataclass

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import select
from sqlalchemy.orm import Session

from database.engine import Databases
from database.models import RecoveryCode, User
from services.audit import AuditTrail
from services.clock import Clock
from services.errors import AccountError, LoginFailed, NotFound
from services.passwords import verify_secret
from services.secretbox import SecretBox

ISSUER = "Dalal"
RECOVERY_CODE_COUNT = 10


@dataclass(frozen=True)
class Enrollment:
    """What the settings page shows while two-factor is being turned on."""

    secret: str
    provisioning_uri: str
    qr_svg: str


class TwoFactorService:
    def __init__(
        self,
        db: Databases,
        box: SecretBox,
        pepper: str,
        clock: Clock,
        audit: AuditTrail | None = None,
    ) -> None:
        self._db = db
        self._box = box
        self._pepper = pepper
        self._clock = clock
        self._audit = audit

    def begin(self, user_id: int) -> Enrollment:
        """Start (or restart) enrolment: a new seed, stored sealed, not yet enforced."""
        secret = pyotp.random_base32()
        with self._db.session() as session:
            user = self._user(session, user_id)
            if user.totp_enabled:
                raise AccountError("Two-factor sign-in is already on; turn it off first.")
            user.totp_secret_sealed = self._box.seal(secret)
            user.totp_last_step = None
            return self._enrollment(user.username, secret)

    def pending(self, user_id: int) -> Enrollment | None:
        with self._db.session() as session:
            user = self._user(session, user_id)
            if user.totp_enabled or not user.totp_secret_sealed:
                return None
            return self._enrollment(user.username, self._box.open(user.totp_secret_sealed))

    def confirm(self, user_id: int, code: str) -> list[str]:
        """Turn two-factor on once the authenticator shows a valid code; returns recovery codes."""
        with self._db.session() as session:
            user = self._user(session, user_id)
            if user.totp_enabled:
                raise AccountError("Two-factor sign-in is already on.")
            if not user.totp_secret_sealed:
                raise AccountError("Start two-factor set-up first.")
            if not self._accept_totp(user, code):
                raise LoginFailed("That code is not valid; check the time on your phone.")
            user.totp_enabled = True
            codes = self._replace_recovery_codes(user)
            username = user.username
        self._record("twofactor.enabled", user_id, username)
        return codes

    def disable(self, user_id: int, password: str, code: str) -> None:
        with self._db.session() as session:
            user = self._user(session, user_id)
            if not user.totp_enabled:
                raise AccountError("Two-factor sign-in is not on.")
            if not verify_secret(user.password_hash, password, self._pepper):
                raise LoginFailed("Current password is wrong.")
            if not (self._accept_totp(user, code) or self._accept_recovery(user, code)):
                raise LoginFailed("That code is not valid.")
            user.totp_enabled = False
            user.totp_secret_sealed = None
            user.totp_last_step = None
            user.recovery_codes.clear()
            username = user.username
        self._record("twofactor.disabled", user_id, username)

    def verify(self, user_id: int, code: str) -> bool:
        """Second step of sign-in: a current TOTP code or an unused recovery code."""
        with self._db.session() as session:
            user = self._user(session, user_id)
            if not user.totp_enabled:
                return True
            if self._accept_totp(user, code):
                return True
            if not self._accept_recovery(user, code):
                return False
            username = user.username
        self._record("twofactor.recovery_code_used", user_id, username)
        return True

    def _record(self, action: str, user_id: int, username: str) -> None:
        if self._audit is not None:
            self._audit.record(action, actor=username, user_id=user_id, subject=username)

    def remaining_recovery_codes(self, user_id: int) -> int:
        with self._db.session() as session:
            codes = session.scalars(
                select(RecoveryCode).where(
                    RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)
                )
            )
            return len(list(codes))

    def _accept_totp(self, user: User, code: str) -> bool:
        code = "".join(code.split())
        if not (code.isdigit() and len(code) == 6) or not user.totp_secret_sealed:
            return False
        totp = pyotp.TOTP(self._box.open(user.totp_secret_sealed))
        now = self._clock.now()
        current_step = int(now.timestamp()) // totp.interval
        # One step either side tolerates a phone clock a little off.
        for step in (current_step - 1, current_step, current_step + 1):
            if hmac.compare_digest(totp.at(step * totp.interval), code):
                if user.totp_last_step is not None and step <= user.totp_last_step:
                    return False  # replay of a code already used
                user.totp_last_step = step
                return True
        return False

    def _accept_recovery(self, user: User, code: str) -> bool:
        digest = self._recovery_digest(code)
        for stored in user.recovery_codes:
            if stored.used_at is None and hmac.compare_digest(stored.code_digest, digest):
                stored.used_at = self._clock.now()
                return True
        return False

    def _replace_recovery_codes(self, user: User) -> list[str]:
        codes = [
            f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODE_COUNT)
        ]
        user.recovery_codes.clear()
        for code in codes:
            user.recovery_codes.append(RecoveryCode(code_digest=self._recovery_digest(code)))
        return codes

    def _recovery_digest(self, code: str) -> str:
        normalised = "".join(code.lower().split())
        return hmac.new(self._pepper.encode(), normalised.encode(), hashlib.sha256).hexdigest()

    @staticmethod
    def _user(session: Session, user_id: int) -> User:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("User not found.")
        return user

    @staticmethod
    def _enrollment(username: str, secret: str) -> Enrollment:
        uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)
        image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
        buffer = io.BytesIO()
        image.save(buffer)
        return Enrollment(secret=secret, provisioning_uri=uri, qr_svg=buffer.getvalue().decode())
