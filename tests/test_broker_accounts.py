"""Live-broker credentials and sessions sealed at rest, key rotation, the latency monitor."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from flask import Flask

from config import Settings
from services.accounts import UserView
from services.broker_accounts import (
    BrokerAccounts,
    BrokerCredentials,
    derived_key,
    fernet_keys,
)
from services.broker_latency import BrokerLatency, CallSample, percentile
from services.clock import FixedClock
from services.errors import InvalidRequest
from tests.conftest import desk_of

SECRET = "s3cr3t-api-secret-value"
TOKEN = "access-token-0123456789abcdef"


def database_bytes(settings: Settings) -> bytes:
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_credentials_and_tokens_are_sealed_and_read_back(
    app: Flask, settings: Settings, user: UserView, clock: FixedClock
) -> None:
    accounts = desk_of(app).broker_accounts
    accounts.save_credentials(user.id, "zerodha", BrokerCredentials("kitekey1", SECRET, "AB1234"))
    accounts.save_session(user.id, "zerodha", TOKEN, clock.now() + timedelta(hours=3))
    assert accounts.credentials(user.id, "zerodha") == BrokerCredentials(
        "kitekey1", SECRET, "AB1234"
    )
    found = accounts.session(user.id, "zerodha")
    assert found is not None and found.access_token == TOKEN
    raw = database_bytes(settings)
    assert SECRET.encode() not in raw and TOKEN.encode() not in raw and b"kitekey1" not in raw
    # Nothing secret in a repr (tracebacks, logs).
    assert SECRET not in repr(accounts.credentials(user.id, "zerodha")) and TOKEN not in repr(found)

    clock.advance(timedelta(hours=3))
    assert accounts.session(user.id, "zerodha") is None  # expired at its cut-off
    summary = accounts.summary(user.id, "zerodha")
    assert summary.has_credentials and summary.client_id == "AB1234"


def test_a_blank_secret_keeps_the_stored_one_and_new_credentials_end_the_session(
    app: Flask, user: UserView, clock: FixedClock
) -> None:
    accounts = desk_of(app).broker_accounts
    accounts.save_credentials(user.id, "dhan", BrokerCredentials("app", SECRET, "100"))
    accounts.save_session(user.id, "dhan", TOKEN, clock.now() + timedelta(hours=1))
    accounts.save_credentials(user.id, "dhan", BrokerCredentials("app2", "", "100"))
    assert accounts.credentials(user.id, "dhan") == BrokerCredentials("app2", SECRET, "100")
    assert accounts.session(user.id, "dhan") is None


def test_keys_rotate_without_losing_anything(app: Flask, user: UserView, clock: FixedClock) -> None:
    desk = desk_of(app)
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = BrokerAccounts(desk.databases, clock, [old])
    before.save_credentials(user.id, "zerodha", BrokerCredentials("k", SECRET, "C1"))
    before.save_session(user.id, "zerodha", TOKEN, clock.now() + timedelta(hours=1))

    both = BrokerAccounts(desk.databases, clock, [new, old])
    assert both.credentials(user.id, "zerodha") == BrokerCredentials("k", SECRET, "C1")
    assert both.rotate() == 1
    after = BrokerAccounts(desk.databases, clock, [new])  # the old key is gone
    assert after.credentials(user.id, "zerodha") == BrokerCredentials("k", SECRET, "C1")
    session = after.session(user.id, "zerodha")
    assert session is not None and session.access_token == TOKEN
    with pytest.raises(InvalidRequest, match="cannot be opened"):
        BrokerAccounts(desk.databases, clock, [old]).credentials(user.id, "zerodha")


def test_the_default_key_comes_from_app_key_and_bad_keys_are_refused(app: Flask) -> None:
    assert fernet_keys("", "a" * 64) == [derived_key("a" * 64)]
    Fernet(derived_key("a" * 64).encode())  # a usable Fernet key
    assert fernet_keys(" k1 , k2 ,", "x") == ["k1", "k2"]
    with pytest.raises(ValueError, match="Fernet keys"):
        BrokerAccounts(desk_of(app).databases, FixedClock(desk_of(app).clock.now()), ["nope"])


def test_the_latency_monitor_reports_percentiles_per_broker_and_operation(
    app: Flask, clock: FixedClock
) -> None:
    monitor = BrokerLatency(desk_of(app).databases, clock)
    for elapsed in range(1, 101):  # 1..100 ms
        monitor.record(CallSample(1, "zerodha", "place_order", "ok", 1, elapsed * 1000))
    monitor.record(CallSample(1, "zerodha", "quote", "broker_rate_limited", 5, 250_000))
    rows = {(row.broker, row.operation): row for row in monitor.summary()}
    place = rows[("zerodha", "place_order")]
    assert (place.calls, place.errors) == (100, 0)
    assert (place.p50_ms, place.p90_ms, place.p99_ms, place.max_ms) == (50, 90, 99, 100)
    quote = rows[("zerodha", "quote")]
    assert (quote.calls, quote.errors, quote.p99_ms) == (1, 1, 250)
    assert monitor.summary(clock.now() + timedelta(seconds=1)) == []
    assert percentile([], 0.5) == 0 and percentile([7], 0.99) == 7


def test_the_rotate_command_reseals_under_the_newest_key(tmp_path: Path, clock: FixedClock) -> None:
    from app import create_app
    from tests.conftest import desk_env, make_user

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = desk_env(tmp_path)
    first = create_app(Settings.from_mapping({**env, "BROKER_ENCRYPTION_KEYS": old}), clock=clock)
    user = make_user(first)
    desk_of(first).broker_accounts.save_credentials(
        user.id, "zerodha", BrokerCredentials("k", SECRET, "C1")
    )
    desk_of(first).close()

    both = create_app(Settings.from_mapping({**env, "BROKER_ENCRYPTION_KEYS": f"{new},{old}"}))
    result = both.test_cli_runner().invoke(args=["broker", "rotate-keys"])
    assert result.exit_code == 0 and "Re-sealed 1 broker account" in result.output
    desk_of(both).close()
    after = create_app(Settings.from_mapping({**env, "BROKER_ENCRYPTION_KEYS": new}))
    assert desk_of(after).broker_accounts.credentials(user.id, "zerodha") == BrokerCredentials(
        "k", SECRET, "C1"
    )
    desk_of(after).close()
