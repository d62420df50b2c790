"""Password hashing (Argon2id over a peppered HMAC) and password strength rules."""

from __future__ import annotations

import hashlib
import hmac
import string

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from services.errors import WeakPassword

MIN_LENGTH = 10
MAX_LENGTH = 256

# The passwords people reach for first; refused whatever their length.
_COMMON = frozenset(
    {
        "password", "password1", "password123", "passw0rd", "p@ssw0rd", "p@ssword1",
        "qwerty123", "qwertyuiop", "1234567890", "12345678910", "iloveyou1", "letmein123",
        "welcome123", "admin12345", "administrator", "changeme123", "trustno1!", "sunshine1",
        "football1", "baseball1", "monkey1234", "dragon1234", "nifty50nifty", "sensex1234",
        "trading123", "zerodha123", "openalgo123", "dalal12345", "abcdefghij", "abc1234567",
    }
)  # fmt: skip

_hasher = PasswordHasher()  # Argon2id with the library's current recommended cost.


def _peppered(secret: str, pepper: str) -> bytes:
    # HMAC first, so the pepper never concatenates ambiguously and long inputs stay bounded.
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).digest()


def hash_secret(secret: str, pepper: str) -> str:
    return _hasher.hash(_peppered(secret, pepper))


def verify_secret(stored_hash: str, secret: str, pepper: str) -> bool:
    try:
        return _hasher.verify(stored_hash, _peppered(secret, pepper))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


def check_strength(password: str, username: str = "") -> None:
    """Raise WeakPassword naming every rule the password breaks."""
    problems = strength_problems(password, username)
    if problems:
        raise WeakPassword("Password is too weak: " + "; ".join(problems) + ".")


def strength_problems(password: str, username: str = "") -> list[str]:
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"use at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        problems.append(f"use at most {MAX_LENGTH} characters")
    classes = sum(
        any(ch in group for ch in password)
        for group in (string.ascii_lowercase, string.ascii_uppercase, string.digits)
    ) + any(not ch.isalnum() for ch in password)
    # A long passphrase is strong without symbol soup; a short one needs variety.
    if len(password) < 16 and classes < 3:
        problems.append(
            "mix at least three of lower-case, upper-case, digits and symbols "
            "(or use 16+ characters)"
        )
    if len(set(password)) < 5:
        problems.append("use more than four different characters")
    if password.lower() in _COMMON:
        problems.append("it is a commonly used password")
    if username and len(username) >= 3 and username.lower() in password.lower():
        problems.append("it must not contain the username")
    return problems
