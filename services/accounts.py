"""User accounts: the first-run admin, login by password, password changes and resets.

Each change is recorded in the audit trail once it is committed (never a password, not even
hashed). Sign-in attempts are recorded by the sign-in page, which knows the client.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from database.engine import Databases
from database.models import DeskSetting, User
from services.audit import AuditTrail
from services.clock import Clock
from services.errors import (
    AccountError,
    InvalidRequest,
    LoginFailed,
    NotFound,
    SetupClosed,
    UserExists,
)
from services.passwords import check_strength, hash_secret, needs_rehash, verify_secret

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")
SETUP_COMPLETED = "setup_completed"


@dataclass(frozen=True)
class UserView:
    """A user as the rest of the desk sees it: no hashes, no secrets."""

    id: int
    username: str
    email: str
    is_admin: bool
    totp_enabled: bool
    session_version: int
    broker: str
    order_mode: str

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            id=user.id,
            username=user.username,
            email=user.email,
            is_admin=user.is_admin,
            totp_enabled=user.totp_enabled,
            session_version=user.session_version,
            broker=user.broker,
            order_mode=user.order_mode,
        )


class AccountService:
    def __init__(
        self,
        db: Databases,
        pepper: str,
        clock: Clock,
        default_broker: str,
        audit: AuditTrail | None = None,
    ) -> None:
        self._db = db
        self._pepper = pepper
        self._clock = clock
        self._default_broker = default_broker
        self._audit = audit
        # Computed once: hashing a throwaway password keeps "no such user" as slow as
        # "wrong password", so response time does not reveal which usernames exist.
        self._dummy_hash = hash_secret("not-a-real-password", pepper)

    def setup_needed(self) -> bool:
        with self._db.session() as session:
            return session.get(DeskSetting, SETUP_COMPLETED) is None

    def user_count(self) -> int:
        with self._db.session() as session:
            return session.scalar(select(func.count(User.id))) or 0

    def create_first_admin(self, username: str, email: str, password: str) -> UserView:
        """Create the admin on an empty desk; closed for good once it has succeeded."""
        username, email = self._validated_identity(username, email)
        check_strength(password, username)
        password_hash = hash_secret(password, self._pepper)
        try:
            with self._db.session() as session:
                if session.get(DeskSetting, SETUP_COMPLETED) is not None:
                    raise SetupClosed("Dalal is already set up; sign in instead.")
                # The primary key makes a second, racing setup fail instead of adding an admin.
                session.add(DeskSetting(key=SETUP_COMPLETED, value=username))
                session.flush()
                user = self._new_user(username, email, password_hash, is_admin=True)
                session.add(user)
                session.flush()
                view = UserView.of(user)
        except IntegrityError:
            raise SetupClosed("Dalal is already set up; sign in instead.") from None
        self._created(view, actor=view.username, first_admin=True)
        return view

    def create_user(
        self,
        username: str,
        email: str,
        password: str,
        *,
        is_admin: bool = False,
        actor: str = "system",
    ) -> UserView:
        username, email = self._validated_identity(username, email)
        check_strength(password, username)
        password_hash = hash_secret(password, self._pepper)
        try:
            with self._db.session() as session:
                if self._find(session, username) is not None:
                    raise UserExists(f"User {username!r} already exists.")
                user = self._new_user(username, email, password_hash, is_admin=is_admin)
                session.add(user)
                # Headless set-up (CLI) also counts as set-up: /setup closes behind it.
                if session.get(DeskSetting, SETUP_COMPLETED) is None:
                    session.add(DeskSetting(key=SETUP_COMPLETED, value=username))
                session.flush()
                view = UserView.of(user)
        except IntegrityError:
            raise UserExists(f"User {username!r} already exists.") from None
        self._created(view, actor=actor)
        return view

    def authenticate(self, username: str, password: str) -> UserView:
        """Check a password. The error never says whether the user exists."""
        with self._db.session() as session:
            user = self._find(session, username.strip())
            if user is None:
                verify_secret(self._dummy_hash, password, self._pepper)
                raise LoginFailed("Wrong username or password.")
            if not verify_secret(user.password_hash, password, self._pepper):
                raise LoginFailed("Wrong username or password.")
            if needs_rehash(user.password_hash):
                user.password_hash = hash_secret(password, self._pepper)
            return UserView.of(user)

    def get(self, user_id: int) -> UserView | None:
        with self._db.session() as session:
            user = session.get(User, user_id)
            return UserView.of(user) if user else None

    def get_by_username(self, username: str) -> UserView:
        with self._db.session() as session:
            user = self._find(session, username.strip())
            if user is None:
                raise NotFound(f"No user named {username!r}.")
            return UserView.of(user)

    def change_password(self, user_id: int, current: str, new: str) -> UserView:
        with self._db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("User not found.")
            if not verify_secret(user.password_hash, current, self._pepper):
                raise LoginFailed("Current password is wrong.")
            view = self._set_password(user, new)
        self._record("account.password_changed", view, actor=view.username)
        return view

    def reset_password(self, username: str, new: str, *, actor: str = "cli") -> UserView:
        """Operator reset (CLI): no current password, every open session ends."""
        with self._db.session() as session:
            user = self._find(session, username.strip())
            if user is None:
                raise NotFound(f"No user named {username!r}.")
            view = self._set_password(user, new)
        self._record("account.password_reset", view, actor=actor)
        return view

    def update_email(self, user_id: int, email: str) -> UserView:
        normalised = self._validated_email(email)
        with self._db.session() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFound("User not found.")
            previous, user.email = user.email, normalised
            view = UserView.of(user)
        if previous != normalised:
            self._record(
                "account.email_changed",
                view,
                actor=view.username,
                details={"from": previous, "to": normalised},
            )
        return view

    def _created(self, view: UserView, *, actor: str, first_admin: bool = False) -> None:
        details = {"admin": view.is_admin, "email": view.email, "broker": view.broker}
        if first_admin:
            details["first_admin"] = True
        self._record("user.created", view, actor=actor, details=details)

    def _record(
        self,
        action: str,
        view: UserView,
        *,
        actor: str,
        details: dict[str, object] | None = None,
    ) -> None:
        if self._audit is not None:
            self._audit.record(
                action, actor=actor, user_id=view.id, subject=view.username, details=details
            )

    def _set_password(self, user: User, new: str) -> UserView:
        check_strength(new, user.username)
        user.password_hash = hash_secret(new, self._pepper)
        user.session_version += 1
        user.password_changed_at = self._clock.now()
        return UserView.of(user)

    def _new_user(self, username: str, email: str, password_hash: str, *, is_admin: bool) -> User:
        now = self._clock.now()
        return User(
            username=username,
            email=email,
            password_hash=password_hash,
            is_admin=is_admin,
            session_version=1,
            totp_enabled=False,
            broker=self._default_broker,
            order_mode="auto",
            created_at=now,
            password_changed_at=now,
        )

    @staticmethod
    def _find(session: Session, username: str) -> User | None:
        return session.scalar(select(User).where(func.lower(User.username) == username.lower()))

    def _validated_identity(self, username: str, email: str) -> tuple[str, str]:
        username = username.strip()
        if not USERNAME_PATTERN.match(username):
            raise InvalidRequest(
                "Username must be 3-32 characters: letters, digits, '.', '_' or '-', "
                "starting with a letter or digit.",
                errors={"username": ["3-32 characters: letters, digits, '.', '_', '-'"]},
            )
        return username, self._validated_email(email)

    @staticmethod
    def _validated_email(email: str) -> str:
        try:
            # No DNS lookup: desks run offline.
            return validate_email(email.strip(), check_deliverability=False).normalized
        except EmailNotValidError as e:
            raise AccountError(f"Email address is not valid: {e}") from None
