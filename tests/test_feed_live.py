"""FEED_BROKER_USER: the desk's tick hub streams from a live broker session (the fake Kite's
binary ticker through the Zerodha adapter) while it is logged in, else the simulated market."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from flask import Flask

from app import create_app
from broker.base import broker_for
from config import Settings
from services.broker_accounts import select_broker
from services.feed.model import FeedMode, Tick
from tests.conftest import desk_env, desk_of, free_port, make_user
from tests.fakes.kite import FakeKite

SBIN = ("NSE", "SBIN")


@pytest.fixture
def kite() -> Iterator[FakeKite]:
    fake = FakeKite.start()
    yield fake
    fake.stop()


def build(tmp_path: Path, kite: FakeKite) -> Flask:
    env = desk_env(
        tmp_path,
        BROKER_ENDPOINTS=kite.endpoints,
        FEED_BROKER_USER="trader",
        WEBSOCKET_PORT=str(free_port()),
    )
    return create_app(Settings.from_mapping(env))


def log_in_to_kite(app: Flask, kite: FakeKite) -> None:
    desk = desk_of(app)
    user = make_user(app)
    desk.broker_accounts.save_credentials(user.id, "zerodha", kite.credentials)
    broker = broker_for("zerodha", user.id, desk)
    redirect = httpx.get(broker.login_url(kite.redirect_url), follow_redirects=False)
    broker.complete_login(dict(parse_qsl(urlsplit(redirect.headers["location"]).query)))
    select_broker(desk, user.id, "zerodha", actor="trader")


def first_tick(app: Flask) -> Tick:
    desk = desk_of(app)
    got: list[Tick] = []
    arrived = threading.Event()

    def collect(ticks: list[Tick]) -> None:
        got.extend(tick for tick in ticks if tick.key == SBIN)
        if got:
            arrived.set()

    desk.feed.add_consumer(collect)
    desk.feed.acquire(SBIN, FeedMode.LTP)
    assert arrived.wait(15), "no tick for SBIN"
    return got[0]


def test_a_logged_in_live_session_streams_the_desks_market_data(
    tmp_path: Path, kite: FakeKite
) -> None:
    app = build(tmp_path, kite)
    try:
        log_in_to_kite(app, kite)
        desk_of(app).start_background()
        tick = first_tick(app)
        assert desk_of(app).feed_is_live
        assert tick.payloads[1]["ltp"] > 0
        deadline = time.monotonic() + 5
        while not kite.ticker_clients and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kite.ticker_clients, "the desk never connected to the broker's ticker"
    finally:
        desk_of(app).close()


def test_without_a_session_the_simulated_market_streams(tmp_path: Path, kite: FakeKite) -> None:
    app = build(tmp_path, kite)
    try:
        make_user(app)  # FEED_BROKER_USER exists but has no live broker
        desk_of(app).start_background()
        first_tick(app)
        assert not desk_of(app).feed_is_live
        assert not kite.ticker_clients
    finally:
        desk_of(app).close()
