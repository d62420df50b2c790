"""Settings -> Broker end to end against the fake Kite Connect: credentials (sealed, never
shown back), the login redirect and callback, trading live through the REST API, and an
expired token ending in a clear error and the re-login banner, not a crash."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from config import Settings
from services.accounts import UserView
from tests.conftest import csrf_token, desk_env, desk_of, login, make_user
from tests.fakes.kite import FakeKite


@pytest.fixture
def kite() -> Iterator[FakeKite]:
    fake = FakeKite.start()
    yield fake
    fake.stop()


@pytest.fixture
def live_app(tmp_path: Path, kite: FakeKite) -> Iterator[Flask]:
    settings = Settings.from_mapping(desk_env(tmp_path, BROKER_ENDPOINTS=kite.endpoints))
    app = create_app(settings.with_overrides(testing=True))
    yield app
    desk_of(app).close()


@pytest.fixture
def trader(live_app: Flask) -> UserView:
    return make_user(live_app)


@pytest.fixture
def signed_in(live_app: Flask, trader: UserView) -> FlaskClient:
    client = live_app.test_client()
    assert login(client).status_code == 302
    return client


def form(client: FlaskClient) -> str:
    return csrf_token(client.get("/settings/broker").data)


def connect_zerodha(client: FlaskClient, kite: FakeKite) -> None:
    token = form(client)
    saved = client.post(
        "/settings/broker/zerodha/credentials",
        data={"csrf_token": token, "api_key": kite.api_key, "api_secret": kite.api_secret,
              "client_id": kite.user_id},
    )  # fmt: skip
    assert saved.status_code == 302
    started = client.post("/settings/broker/zerodha/login", data={"csrf_token": form(client)})
    assert started.status_code == 303
    assert started.headers["Location"].startswith(kite.login_url)
    # The broker's login page sends the trader back to the desk's callback.
    at_broker = httpx.get(started.headers["Location"], follow_redirects=False)
    back = urlsplit(at_broker.headers["location"])
    assert back.path == "/settings/broker/zerodha/callback"
    done = client.get(f"{back.path}?{back.query}")
    assert done.status_code == 302, done.get_data(as_text=True)


def test_credentials_are_stored_sealed_and_never_shown_back(
    live_app: Flask, signed_in: FlaskClient, kite: FakeKite, trader: UserView
) -> None:
    page = signed_in.get("/settings/broker").get_data(as_text=True)
    assert "Zerodha (Kite Connect)" in page and "Dhan" in page
    missing = signed_in.post(
        "/settings/broker/zerodha/credentials",
        data={"csrf_token": form(signed_in), "api_key": kite.api_key, "client_id": "AB1234"},
    )
    assert missing.status_code == 400 and "API secret" in missing.get_data(as_text=True)
    connect_zerodha(signed_in, kite)
    page = signed_in.get("/settings/broker").get_data(as_text=True)
    assert kite.api_secret not in page and kite.api_key not in page
    assert "Logged in until 06:00 IST" in page
    session = desk_of(live_app).broker_accounts.session(trader.id, "zerodha")
    assert session is not None and session.access_token not in page


def test_trading_live_through_the_api_and_an_expired_token(
    live_app: Flask, signed_in: FlaskClient, kite: FakeKite, trader: UserView
) -> None:
    connect_zerodha(signed_in, kite)
    chosen = signed_in.post(
        "/settings/broker/use", data={"csrf_token": form(signed_in), "broker": "zerodha"}
    )
    assert chosen.status_code == 302
    key = desk_of(live_app).api_keys.create(trader.id)
    client = live_app.test_client()
    placed = client.post(
        "/api/v1/placeorder",
        json={"apikey": key, "symbol": "SBIN", "exchange": "NSE", "action": "BUY",
              "quantity": 1, "pricetype": "MARKET", "product": "MIS", "strategy": "live"},
    )  # fmt: skip
    body = placed.get_json()
    assert placed.status_code == 200 and body["mode"] == "live", body
    assert kite.orders_placed == 1
    book = client.post("/api/v1/orderbook", json={"apikey": key}).get_json()
    assert [order["orderid"] for order in book["data"]["orders"]] == [body["orderid"]]

    # The broker stops accepting the token (revoked, or past 06:00): a clear answer...
    kite.expire_tokens()
    refused = client.post("/api/v1/orderbook", json={"apikey": key})
    answer = refused.get_json()
    assert refused.status_code == 403 and answer["code"] == "broker_session_expired"
    assert "log in to Zerodha" in answer["message"]
    # ... and every page offers the login again.
    page = signed_in.get("/").get_data(as_text=True)
    assert re.search(
        r'data-field="broker-banner"[^>]*>\s*Broker session expired at 06:00 IST', page
    )
    assert "Log in to the broker" in page


def test_the_latency_page_lists_each_operation(
    live_app: Flask, signed_in: FlaskClient, kite: FakeKite
) -> None:
    connect_zerodha(signed_in, kite)
    signed_in.post(
        "/settings/broker/use", data={"csrf_token": form(signed_in), "broker": "zerodha"}
    )
    assert signed_in.get("/positions").status_code == 200
    page = signed_in.get("/settings/latency").get_data(as_text=True)
    assert 'data-broker="zerodha"' in page and 'data-operation="positions"' in page
    assert signed_in.get("/settings/latency?window=forever").status_code == 400


def test_semi_auto_on_a_live_broker_holds_orders_and_blocks_changes(
    live_app: Flask, signed_in: FlaskClient, kite: FakeKite, trader: UserView
) -> None:
    connect_zerodha(signed_in, kite)
    use = {"csrf_token": form(signed_in), "broker": "zerodha"}
    assert signed_in.post("/settings/broker/use", data=use).status_code == 302
    desk = desk_of(live_app)
    desk.action_center.set_mode(trader.id, "semi_auto", actor=trader.username)
    key = desk.api_keys.create(trader.id)
    client = live_app.test_client()
    order = {"apikey": key, "symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1}
    held = client.post("/api/v1/placeorder", json=order).get_json()
    assert held["mode"] == "semi_auto" and kite.orders_placed == 0
    # API.md 1.7: against a live broker, changing or closing is the trader's alone.
    for endpoint, body, words in (
        ("cancelorder", {"orderid": "1"}, "Cancel order operation is not allowed"),
        ("modifyorder", {"orderid": "1", "pricetype": "MARKET", "quantity": 1}, "Modify order"),
        ("cancelallorder", {}, "Cancel all orders operation is not allowed"),
        ("closeposition", {}, "Close position operation is not allowed"),
    ):
        refused = client.post(f"/api/v1/{endpoint}", json={"apikey": key, **body})
        assert refused.status_code == 403 and words in refused.get_json()["message"]
    approved = desk.action_center.approve(trader.id, held["pending_order_id"], actor="trader")
    assert approved.status == "approved" and kite.orders_placed == 1
