"""Shared fixtures: a desk on temporary SQLite files, a frozen IST clock, form helpers."""

from __future__ import annotations

import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import PROJECT_ROOT, Settings
from services.accounts import UserView
from services.clock import IST, FixedClock
from services.desk import Desk

STRONG_PASSWORD = "Nifty-Straddle-2026"
OTHER_STRONG_PASSWORD = "BankNifty#Iron9Fly"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def desk_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment of a desk living in tmp_path (also used for subprocess tests)."""
    env = {
        "APP_KEY": secrets.token_hex(32),
        "API_KEY_PEPPER": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{tmp_path}/dalal.db",
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp_path}/sandbox.db",
        "LATENCY_DATABASE_URL": f"sqlite:///{tmp_path}/latency.db",
        "LOGS_DATABASE_URL": f"sqlite:///{tmp_path}/logs.db",
    }
    env.update(overrides)
    return env


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_mapping(desk_env(tmp_path)).with_overrides(testing=True)


@pytest.fixture
def clock() -> FixedClock:
    # A Monday morning in Mumbai.
    return FixedClock(datetime(2026, 11, 23, 10, 0, tzinfo=IST))


@pytest.fixture
def app(settings: Settings, clock: FixedClock) -> Iterator[Flask]:
    flask_app = create_app(settings, clock=clock)
    yield flask_app
    desk_of(flask_app).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def desk_of(app: Flask) -> Desk:
    found: Desk = app.extensions["dalal"]
    return found


def csrf_token(html: bytes | str) -> str:
    text = html.decode() if isinstance(html, bytes) else html
    match = _CSRF.search(text)
    assert match, "page has no CSRF token"
    return match.group(1)


def make_user(
    app: Flask,
    username: str = "trader",
    password: str = STRONG_PASSWORD,
    *,
    admin: bool = False,
) -> UserView:
    return desk_of(app).accounts.create_user(
        username, f"{username}@example.com", password, is_admin=admin
    )


def login(client: FlaskClient, username: str = "trader", password: str = STRONG_PASSWORD):  # type: ignore[no-untyped-def]
    token = csrf_token(client.get("/login").data)
    return client.post(
        "/login", data={"csrf_token": token, "username": username, "password": password}
    )


def post_form(client: FlaskClient, page: str, action: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    """Load `page` for its CSRF token, then submit `data` to `action`."""
    token = csrf_token(client.get(page).data)
    return client.post(action, data={"csrf_token": token, **data})


@pytest.fixture
def user(app: Flask) -> UserView:
    return make_user(app, admin=True)


@pytest.fixture
def api_key(app: Flask, user: UserView) -> str:
    return desk_of(app).api_keys.create(user.id)


def run_flask_cli(
    env: dict[str, str], *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run `flask --app app ARGS` as an operator would: a real process, no standard input."""
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=check,
    )


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A real redis-server of this test's own on a loopback port (empty, not persisted)."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `make test` installs it (Debian package redis-server)"
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = subprocess.Popen(
        [binary, *options, "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(10)
