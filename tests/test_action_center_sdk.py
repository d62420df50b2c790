"""Semi-auto end to end: the real `openalgo` SDK against `python app.py serve`, the mode set
with the CLI, the order approved on the Action Center page over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from openalgo import api as OpenAlgo

from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk, served_desk

pytestmark = pytest.mark.slow
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


desk = served_desk("semi-auto-desk")


@pytest.fixture(scope="module")
def client(desk: RunningDesk) -> OpenAlgo:
    return OpenAlgo(api_key=desk.admin_key(STRONG_PASSWORD), host=desk.url, timeout=60)


@pytest.fixture(scope="module")
def page(desk: RunningDesk, client: OpenAlgo) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=desk.url, timeout=30) as session:
        token = _CSRF.search(session.get("/login").text)
        assert token
        signed_in = session.post(
            "/login",
            data={"csrf_token": token.group(1), "username": "admin", "password": STRONG_PASSWORD},
        )
        assert signed_in.status_code == 302
        yield session


def csrf(session: httpx.Client, path: str) -> str:
    found = _CSRF.search(session.get(path).text)
    assert found
    return found.group(1)


def test_an_sdk_order_waits_for_approval_then_fills(
    desk: RunningDesk, client: OpenAlgo, page: httpx.Client
) -> None:
    assert "semi-auto" in desk.cli("order-mode", "admin", "semi_auto")
    queued = client.placeorder(
        strategy="gap-fill", symbol="SBIN", action="BUY", exchange="NSE",
        price_type="MARKET", product="MIS", quantity=4,
    )  # fmt: skip
    assert queued == {
        "status": "success",
        "message": "Order queued for approval in Action Center",
        "mode": "semi_auto",
        "pending_order_id": queued["pending_order_id"],
    }
    assert client.orderbook()["data"]["orders"] == []

    pending_id = queued["pending_order_id"]
    assert f'data-pending-id="{pending_id}"' in page.get("/action-center").text
    approved = page.post(
        f"/action-center/{pending_id}/approve",
        data={"csrf_token": csrf(page, "/action-center")},
        headers={"Accept": "application/json"},
    )
    assert approved.status_code == 200 and approved.json()["status"] == "success"

    [order] = client.orderbook()["data"]["orders"]
    assert (order["symbol"], order["quantity"], order["strategy"]) == ("SBIN", 4, "gap-fill")
    assert order["source"] == "api" and order["algo_id"].startswith("DL")
    assert client.orderstatus(order_id=order["orderid"], strategy="gap-fill")["status"] == "success"


def test_a_rejected_sdk_order_never_reaches_the_exchange(
    desk: RunningDesk, client: OpenAlgo, page: httpx.Client
) -> None:
    before = len(client.orderbook()["data"]["orders"])
    queued = client.basketorder(
        strategy="pairs",
        orders=[
            {"symbol": "INFY", "exchange": "NSE", "action": "BUY", "quantity": 1,
             "pricetype": "MARKET", "product": "MIS"},
            {"symbol": "TCS", "exchange": "NSE", "action": "SELL", "quantity": 1,
             "pricetype": "MARKET", "product": "MIS"},
        ],
    )  # fmt: skip
    assert queued["mode"] == "semi_auto"
    rejected = page.post(
        f"/action-center/{queued['pending_order_id']}/reject",
        data={"csrf_token": csrf(page, "/action-center"), "reason": "spread too wide"},
        headers={"Accept": "application/json"},
    )
    assert rejected.status_code == 200, rejected.text
    assert len(client.orderbook()["data"]["orders"]) == before
    history = page.get("/action-center").text
    assert "spread too wide" in history and "rejected" in history


def test_the_api_cannot_leave_semi_auto(client: OpenAlgo, desk: RunningDesk) -> None:
    toggled = client.analyzertoggle(mode=False)
    assert toggled["status"] == "error" and "Semi-Auto" in toggled["message"]
    assert "auto mode" in desk.cli("order-mode", "admin", "auto")
    placed = client.placeorder(
        strategy="gap-fill", symbol="SBIN", action="SELL", exchange="NSE",
        price_type="MARKET", product="MIS", quantity=4,
    )  # fmt: skip
    assert placed["status"] == "success" and "orderid" in placed
