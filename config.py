"""Dalal's settings: read once from the environment and `.env` into one frozen object.

A variable set in the process environment wins over the same key in `.env`. Nothing else in
Dalal reads `os.environ`; everything receives a `Settings`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_ENV_FILE = PROJECT_ROOT / ".env"
SAMPLE_ENV_FILE = PROJECT_ROOT / ".env.sample"

_RATE_LIMIT_ITEM = re.compile(
    r"^\s*\d+\s*(/|per)\s*(\d+\s*)?(second|minute|hour|day|month|year)s?\s*$", re.IGNORECASE
)
_SECRET_MIN_LENGTH = 32


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the key and what was expected."""


@dataclass(frozen=True)
class Settings:
    """Every tunable of a desk. Build with `load_settings()` or `Settings.from_mapping()`."""

    app_key: str = field(repr=False)
    api_key_pepper: str = field(repr=False)
    host: str = "127.0.0.1"
    port: int = 5000
    websocket_host: str = "127.0.0.1"
    websocket_port: int = 8765
    feed_ticks_per_second: int = 2
    websocket_slow_client_seconds: int = 10
    database_url: str = "sqlite:///db/dalal.db"
    sandbox_database_url: str = "sqlite:///db/sandbox.db"
    latency_database_url: str = "sqlite:///db/latency.db"
    logs_database_url: str = "sqlite:///db/logs.db"
    session_expiry_time: time = time(3, 0)
    session_cookie_secure: bool = False
    api_rate_limit: str = "500 per second"
    order_rate_limit: str = "500 per second"
    smart_order_rate_limit: str = "500 per second"
    login_rate_limit_min: str = "5 per minute"
    login_rate_limit_hour: str = "25 per hour"
    redis_url: str = ""
    default_broker: str = "sandbox"
    max_request_bytes: int = 1_048_576
    web_workers: int = 1
    web_threads: int = 16
    socketio_max_clients: int = 32
    log_level: str = "INFO"
    auto_migrate: bool = True
    market_mode: str = "always_open"
    market_seed: int = 7
    sandbox_starting_capital: Decimal = Decimal("10000000")
    sandbox_auto_reset: str = "never"
    audit_retention_days: int = 2555
    # Fernet keys for broker credentials, newest first ("" = derived from APP_KEY).
    broker_encryption_keys: str = field(default="", repr=False)
    # Where live brokers' APIs are ("<broker>.<kind>=URL,..."); empty: their published
    # addresses. Tests point the real SDKs at fakes on loopback this way.
    broker_endpoints: str = ""
    # Whose live broker session streams the desk's market data ("" = the simulated market).
    feed_broker_user: str = ""
    testing: bool = False

    def broker_endpoint(self, broker: str, kind: str, default: str) -> str:
        """A live broker's address of one kind (each adapter names its kinds, e.g. "api"),
        or the adapter's default."""
        wanted = f"{broker}.{kind}"
        for entry in self.broker_endpoints.split(","):
            name, _, url = entry.partition("=")
            if name.strip() == wanted and url.strip():
                return url.strip()
        return default

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_mapping(cls, values: Mapping[str, str | None]) -> Settings:
        """Build settings from `KEY=value` strings, validating each."""
        reader = _Reader(values)
        return cls(
            app_key=reader.secret("APP_KEY"),
            api_key_pepper=reader.secret("API_KEY_PEPPER"),
            host=reader.text("FLASK_HOST_IP", "127.0.0.1"),
            port=reader.port("FLASK_PORT", 5000),
            websocket_host=reader.text("WEBSOCKET_HOST", "127.0.0.1"),
            websocket_port=reader.port("WEBSOCKET_PORT", 8765),
            feed_ticks_per_second=reader.integer("FEED_TICKS_PER_SECOND", 2, minimum=1),
            websocket_slow_client_seconds=reader.integer(
                "WEBSOCKET_SLOW_CLIENT_SECONDS", 10, minimum=1
            ),
            database_url=reader.database_url("DATABASE_URL", "sqlite:///db/dalal.db"),
            sandbox_database_url=reader.database_url(
                "SANDBOX_DATABASE_URL", "sqlite:///db/sandbox.db"
            ),
            latency_database_url=reader.database_url(
                "LATENCY_DATABASE_URL", "sqlite:///db/latency.db"
            ),
            logs_database_url=reader.database_url("LOGS_DATABASE_URL", "sqlite:///db/logs.db"),
            session_expiry_time=reader.clock_time("SESSION_EXPIRY_TIME", time(3, 0)),
            session_cookie_secure=reader.boolean("SESSION_COOKIE_SECURE", False),
            api_rate_limit=reader.rate_limit("API_RATE_LIMIT", "500 per second"),
            order_rate_limit=reader.rate_limit("ORDER_RATE_LIMIT", "500 per second"),
            smart_order_rate_limit=reader.rate_limit("SMART_ORDER_RATE_LIMIT", "500 per second"),
            login_rate_limit_min=reader.rate_limit("LOGIN_RATE_LIMIT_MIN", "5 per minute"),
            login_rate_limit_hour=reader.rate_limit("LOGIN_RATE_LIMIT_HOUR", "25 per hour"),
            redis_url=reader.text("REDIS_URL", ""),
            default_broker=reader.text("DEFAULT_BROKER", "sandbox").lower(),
            max_request_bytes=reader.integer("MAX_REQUEST_BYTES", 1_048_576, minimum=1024),
            web_workers=reader.integer("WEB_WORKERS", 1, minimum=1),
            web_threads=reader.integer("WEB_THREADS", 16, minimum=1),
            socketio_max_clients=reader.integer("SOCKETIO_MAX_CLIENTS", 32, minimum=1),
            log_level=reader.choice(
                "LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
            ),
            auto_migrate=reader.boolean("AUTO_MIGRATE", True),
            sandbox_auto_reset=reader.choice(
                "SANDBOX_AUTO_RESET", "NEVER", ("NEVER", "DAILY", "WEEKLY", "MONTHLY")
            ).lower(),
            market_mode=reader.choice(
                "MARKET_MODE", "ALWAYS_OPEN", ("ALWAYS_OPEN", "CALENDAR")
            ).lower(),
            market_seed=reader.integer("MARKET_SEED", 7, minimum=0),
            sandbox_starting_capital=reader.money(
                "SANDBOX_STARTING_CAPITAL", Decimal("10000000"), minimum=Decimal(1000)
            ),
            audit_retention_days=reader.integer("AUDIT_RETENTION_DAYS", 2555, minimum=1),
            broker_encryption_keys=reader.text("BROKER_ENCRYPTION_KEYS", ""),
            broker_endpoints=reader.text("BROKER_ENDPOINTS", ""),
            feed_broker_user=reader.text("FEED_BROKER_USER", ""),
        )


def load_settings(
    env_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read `.env` (or `DALAL_ENV_FILE`) and overlay the process environment on it."""
    environ = os.environ if environ is None else environ
    path = env_file or Path(environ.get("DALAL_ENV_FILE") or DEFAULT_ENV_FILE)
    values: dict[str, str | None] = dict(dotenv_values(path)) if path.exists() else {}
    values.update(environ)
    return Settings.from_mapping(values)


class _Reader:
    """Typed access to string settings; every failure names the key and what was expected."""

    def __init__(self, values: Mapping[str, str | None]) -> None:
        self._values = values

    def _raw(self, key: str) -> str | None:
        value = self._values.get(key)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def text(self, key: str, default: str) -> str:
        return self._raw(key) or default

    def secret(self, key: str) -> str:
        value = self._raw(key)
        if value is None:
            raise ConfigError(
                f"{key} is not set. Run `make run` (or `python app.py init`) to create .env "
                "with fresh secrets, or set it in the environment."
            )
        if len(value) < _SECRET_MIN_LENGTH:
            raise ConfigError(f"{key} must be at least {_SECRET_MIN_LENGTH} characters long.")
        return value

    def integer(self, key: str, default: int, minimum: int | None = None) -> int:
        raw = self._raw(key)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{key} must be a whole number, got {raw!r}.") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{key} must be at least {minimum}, got {value}.")
        return value

    def money(self, key: str, default: Decimal, minimum: Decimal) -> Decimal:
        raw = self._raw(key)
        if raw is None:
            return default
        try:
            value = Decimal(raw.replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ConfigError(f"{key} must be an amount in rupees, got {raw!r}.") from None
        if not value.is_finite() or value < minimum:
            raise ConfigError(f"{key} must be at least {minimum} rupees, got {raw!r}.")
        return value.quantize(Decimal("0.01"))

    def port(self, key: str, default: int) -> int:
        value = self.integer(key, default, minimum=1)
        if value > 65535:
            raise ConfigError(f"{key} must be a TCP port between 1 and 65535, got {value}.")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        raw = self._raw(key)
        if raw is None:
            return default
        lowered = raw.lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key} must be true or false, got {raw!r}.")

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = (self._raw(key) or default).upper()
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}.")
        return value

    def clock_time(self, key: str, default: time) -> time:
        raw = self._raw(key)
        if raw is None:
            return default
        match = re.fullmatch(r"(\d{1,2}):(\d{2})", raw)
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise ConfigError(f"{key} must be a time of day as HH:MM (IST), got {raw!r}.")
        return time(int(match[1]), int(match[2]))

    def rate_limit(self, key: str, default: str) -> str:
        value = self._raw(key) or default
        parts = [part for part in value.split(";") if part.strip()]
        if not parts or not all(_RATE_LIMIT_ITEM.match(part) for part in parts):
            raise ConfigError(
                f"{key} must look like '10 per second' or '10 per second;40 per minute', "
                f"got {value!r}."
            )
        return value

    def database_url(self, key: str, default: str) -> str:
        value = self._raw(key) or default
        if "://" not in value:
            raise ConfigError(f"{key} must be a SQLAlchemy URL such as sqlite:///db/x.db.")
        return resolve_sqlite_path(value)


def resolve_sqlite_path(url: str) -> str:
    """Anchor a relative SQLite path at the project root, so the CLI works from any folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url == "sqlite:///:memory:":
        return url
    path = url[len(prefix) :]
    if path.startswith("/") or path.startswith(":memory:"):
        return url
    return prefix + str(PROJECT_ROOT / path)
