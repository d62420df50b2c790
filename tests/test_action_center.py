"""The Action Center and order modes: semi-auto holds orders from every non-UI source until
the trader approves them; approval re-checks the risk rules; rejection and expiry send nothing.

Everything runs through the real REST API, pages, order pipeline and paper exchange; "the
broker" below is the sandbox, whose order book must stay empty until an approval.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.accounts import UserView
from services.action_center import PendingView, holds_for_approval
from services.clock import IST, FixedClock
from services.desk import Desk
from services.errors import Conflict, InvalidRequest, NotFound, RiskRejected
from services.events import ACTION_CENTER
from services.orders.intents import Basket, Execution, SingleOrder, SmartOrder, default_algo_id
from services.orders.model import OrderRequest, Product, Side, Source
from services.orders.pipeline import Trader
from services.risk import RiskLimits
from tests.conftest import csrf_token, desk_of, login

QUEUED = "Order queued for approval in Action Center"


@pytest.fixture
def desk(app: Flask) -> Desk:
    return desk_of(app)


@pytest.fixture
def semi_auto(desk: Desk, user: UserView) -> UserView:
    desk.action_center.set_mode(user.id, "semi_auto", actor=user.username)
    return user


def trader_of(desk: Desk, user: UserView) -> Trader:
    view = desk.accounts.get(user.id)
    assert view is not None
    return Trader(view.id, view.broker, view.order_mode, actor=view.username)


def api(client: FlaskClient, key: str, endpoint: str, **body: Any) -> tuple[int, dict[str, Any]]:
    response = client.post(f"/api/v1/{endpoint}", json={"apikey": key, **body})
    return response.status_code, response.get_json()


def broker_orders(desk: Desk, user: UserView) -> list[Any]:
    return desk.orders.broker(trader_of(desk, user)).orders()


def sbin(quantity: int = 5, source: Source = Source.API, **kw: Any) -> OrderRequest:
    return OrderRequest("SBIN", "NSE", Side.BUY, quantity, Product.MIS, source=source, **kw)


# -- which orders wait -------------------------------------------------------------------


def test_only_the_traders_own_clicks_skip_the_queue() -> None:
    for source in (Source.API, Source.WEBHOOK, Source.STRATEGY, Source.TELEGRAM):
        assert holds_for_approval("semi_auto", source)
        assert not holds_for_approval("auto", source)
    assert not holds_for_approval("semi_auto", Source.UI)


@pytest.mark.parametrize("source", [Source.WEBHOOK, Source.STRATEGY, Source.TELEGRAM])
def test_every_algorithmic_source_is_queued_and_reaches_the_broker_only_on_approval(
    desk: Desk, semi_auto: UserView, source: Source
) -> None:
    trader = trader_of(desk, semi_auto)
    request = desk.orders.check(sbin(source=source, strategy="breakout"))
    queued = desk.action_center.submit(trader, SingleOrder(request))
    assert isinstance(queued, PendingView)
    assert (queued.source, queued.strategy, queued.status) == (source.value, "breakout", "pending")
    assert broker_orders(desk, semi_auto) == []

    approved = desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    assert approved.status == "approved"
    [order] = broker_orders(desk, semi_auto)
    assert order.order_id == approved.results[0]["orderid"]
    # The algorithm's identity travels with the order into the books.
    assert (order.source, order.strategy) == (source.value, "breakout")
    assert order.algo_id == default_algo_id(semi_auto.id, source.value, "breakout")


def test_the_traders_own_order_is_sent_at_once_even_in_semi_auto(
    desk: Desk, semi_auto: UserView
) -> None:
    outcome = desk.action_center.submit(
        trader_of(desk, semi_auto), SingleOrder(sbin(source=Source.UI))
    )
    assert isinstance(outcome, Execution) and outcome.placed == 1
    assert desk.action_center.pending(semi_auto.id) == []
    assert len(broker_orders(desk, semi_auto)) == 1


QUEUEABLE_CALLS: list[tuple[str, dict[str, Any], str, int]] = [
    (
        "placeorder",
        {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 3, "strategy": "s1"},
        "order",
        1,
    ),
    (
        "placesmartorder",
        {
            "symbol": "SBIN",
            "exchange": "NSE",
            "action": "BUY",
            "quantity": 2,
            "position_size": 4,
            "strategy": "s2",
        },
        "smart",
        1,
    ),
    (
        "basketorder",
        {
            "strategy": "s3",
            "orders": [
                {"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 1},
                {"symbol": "INFY", "exchange": "NSE", "action": "SELL", "quantity": 2},
            ],
        },
        "basket",
        2,
    ),
    (
        "splitorder",
        {
            "symbol": "SBIN",
            "exchange": "NSE",
            "action": "BUY",
            "quantity": 10,
            "splitsize": 4,
            "strategy": "s4",
        },
        "order",
        1,
    ),
    (
        "optionsorder",
        {
            "underlying": "NIFTY",
            "exchange": "NSE_INDEX",
            "expiry_date": "29DEC26",
            "offset": "ATM",
            "option_type": "CE",
            "action": "BUY",
            "quantity": 65,
            "product": "NRML",
            "strategy": "s5",
        },
        "order",
        1,
    ),
    (
        "optionsmultiorder",
        {
            "underlying": "NIFTY",
            "exchange": "NSE_INDEX",
            "expiry_date": "29DEC26",
            "strategy": "s6",
            "legs": [
                {"offset": "OTM2", "option_type": "CE", "action": "BUY", "quantity": 65},
                {"offset": "ATM", "option_type": "CE", "action": "SELL", "quantity": 65},
            ],
        },
        "basket",
        2,
    ),
]


@pytest.mark.parametrize(("endpoint", "body", "kind", "legs"), QUEUEABLE_CALLS)
def test_every_queueable_api_call_is_held_and_placed_on_approval(
    desk: Desk,
    client: FlaskClient,
    api_key: str,
    semi_auto: UserView,
    endpoint: str,
    body: dict[str, Any],
    kind: str,
    legs: int,
) -> None:
    status, answer = api(client, api_key, endpoint, **body)
    assert status == 200, answer
    assert answer["status"] == "success" and answer["message"] == QUEUED
    assert answer["mode"] == "semi_auto" and isinstance(answer["pending_order_id"], int)
    assert broker_orders(desk, semi_auto) == []

    pending = desk.action_center.get(semi_auto.id, answer["pending_order_id"])
    assert (pending.kind, pending.legs, pending.source) == (kind, legs, "api")
    assert pending.strategy == body["strategy"]

    approved = desk.action_center.approve(semi_auto.id, pending.id, actor="trader")
    assert approved.status == "approved", approved
    placed = broker_orders(desk, semi_auto)
    assert placed and {order.order_id for order in placed} == {
        result["orderid"] for result in approved.results
    }
    assert {order.strategy for order in placed} == {body["strategy"]}
    if endpoint == "splitorder":
        assert sorted(order.quantity for order in placed) == [2, 4, 4]
    if endpoint == "placesmartorder":  # worked out at approval: flat -> +4
        assert [order.quantity for order in placed] == [4]


def test_a_queued_order_is_the_one_approved_options_strike_included(
    desk: Desk, client: FlaskClient, api_key: str, semi_auto: UserView
) -> None:
    body = dict(QUEUEABLE_CALLS[4][1])
    answer = api(client, api_key, "optionsorder", **body)[1]
    pending = desk.action_center.get(semi_auto.id, answer["pending_order_id"])
    assert pending.symbol.startswith("NIFTY") and pending.symbol.endswith("CE")
    desk.action_center.approve(semi_auto.id, pending.id, actor="trader")
    [order] = broker_orders(desk, semi_auto)
    assert order.symbol == pending.symbol and order.quantity == 65


def test_a_malformed_order_is_refused_at_once_and_never_queued(
    desk: Desk, client: FlaskClient, api_key: str, semi_auto: UserView
) -> None:
    cases = [
        {"symbol": "NOSUCHSYMBOL", "exchange": "NSE", "action": "BUY", "quantity": 1},
        {"symbol": "SBIN", "exchange": "NSE", "action": "HOLD", "quantity": 1},
        {"symbol": "NIFTY30DEC26FUT", "exchange": "NFO", "action": "BUY", "quantity": 7},
    ]
    for body in cases:
        status, answer = api(client, api_key, "placeorder", **body)
        assert status in (400, 404), answer
        assert answer["status"] == "error" and answer["message"]
    assert desk.action_center.pending(semi_auto.id) == []


def test_semi_auto_leaves_cancel_and_close_to_the_paper_exchange_but_not_the_live_toggle(
    desk: Desk, client: FlaskClient, api_key: str, semi_auto: UserView
) -> None:
    # Blocking modify/cancel/close applies to live brokers (API.md 1.7); in the sandbox they
    # work, and say so by their own answers.
    status, answer = api(client, api_key, "cancelallorder", strategy="x")
    assert status == 200 and answer["message"] == "No open orders to cancel"
    status, answer = api(client, api_key, "closeposition", strategy="x")
    assert status == 200 and answer["message"] == "No open positions to close"
    # An algorithm may never switch itself between the sandbox and live in semi-auto.
    status, answer = api(client, api_key, "analyzer/toggle", mode=False)
    assert status == 403 and "not allowed in Semi-Auto mode" in answer["message"]
    # And there is no API to leave semi-auto: the mode endpoint is a page route.
    response = client.post("/api/v1/ordermode", json={"apikey": api_key, "mode": "auto"})
    assert response.status_code == 404


# -- deciding ----------------------------------------------------------------------------


def test_approval_after_a_risk_limit_was_reached_is_refused_and_the_order_stays_pending(
    desk: Desk, semi_auto: UserView
) -> None:
    trader = trader_of(desk, semi_auto)
    queued = desk.action_center.queue(trader, SingleOrder(desk.orders.check(sbin(quantity=50))))
    # The limit is set after queueing: approval checks the rules as they stand now.
    desk.risk.update(
        semi_auto.id,
        RiskLimits(max_order_value=Decimal(1000), max_open_positions=None, max_daily_loss=None,
                   kill_switch=False),
        actor="trader",
    )  # fmt: skip
    with pytest.raises(RiskRejected) as refused:
        desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    assert refused.value.message.startswith("Approval refused: Order value")
    assert broker_orders(desk, semi_auto) == []
    assert desk.action_center.get(semi_auto.id, queued.id).status == "pending"

    # The trader can still reject it; nothing ever reached the broker.
    rejected = desk.action_center.reject(semi_auto.id, queued.id, actor="trader", reason="too big")
    assert (rejected.status, rejected.reason) == ("rejected", "too big")
    assert broker_orders(desk, semi_auto) == []


def test_the_kill_switch_refuses_approval_over_the_api_too(
    desk: Desk, client: FlaskClient, api_key: str, semi_auto: UserView
) -> None:
    answer = api(client, api_key, "placeorder", symbol="SBIN", exchange="NSE", action="BUY",
                 quantity=1)[1]  # fmt: skip
    desk.risk.update(semi_auto.id, RiskLimits(None, None, None, kill_switch=True), actor="t")
    assert login(client).status_code == 302
    token = csrf_token(client.get("/action-center").data)
    response = client.post(
        f"/action-center/{answer['pending_order_id']}/approve",
        data={"csrf_token": token},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 422
    assert "Kill switch is on" in response.get_json()["message"]
    assert broker_orders(desk, semi_auto) == []


def test_reject_needs_a_reason_and_sends_nothing(desk: Desk, semi_auto: UserView) -> None:
    trader = trader_of(desk, semi_auto)
    queued = desk.action_center.queue(trader, SingleOrder(desk.orders.check(sbin())))
    with pytest.raises(InvalidRequest, match="reason"):
        desk.action_center.reject(semi_auto.id, queued.id, actor="trader", reason="   ")
    desk.action_center.reject(semi_auto.id, queued.id, actor="trader", reason="not today")
    with pytest.raises(Conflict, match="already rejected"):
        desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    assert broker_orders(desk, semi_auto) == []
    [decided] = desk.action_center.history(semi_auto.id)
    assert (decided.id, decided.status, decided.decided_by) == (queued.id, "rejected", "trader")


def test_an_order_is_approved_once_however_often_approve_is_pressed(
    desk: Desk, semi_auto: UserView
) -> None:
    queued = desk.action_center.queue(
        trader_of(desk, semi_auto), SingleOrder(desk.orders.check(sbin()))
    )
    desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    with pytest.raises(Conflict):
        desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    assert len(broker_orders(desk, semi_auto)) == 1


def test_another_users_pending_order_is_not_found(
    app: Flask, desk: Desk, semi_auto: UserView
) -> None:
    queued = desk.action_center.queue(
        trader_of(desk, semi_auto), SingleOrder(desk.orders.check(sbin()))
    )
    other = desk.accounts.create_user("other", "o@example.com", "Nifty-Straddle-2026")
    with pytest.raises(NotFound, match="not found"):
        desk.action_center.approve(other.id, queued.id, actor="other")
    assert desk.action_center.get(semi_auto.id, queued.id).status == "pending"


def test_pending_orders_expire_when_the_trading_day_ends(
    desk: Desk, clock: FixedClock, semi_auto: UserView
) -> None:
    trader = trader_of(desk, semi_auto)
    queued = desk.action_center.queue(trader, SingleOrder(desk.orders.check(sbin())))
    # Queued at 10:00 IST on a Monday: NSE's day ends at 15:30 IST.
    assert queued.expires_at.astimezone(IST).strftime("%H:%M") == "15:30"
    clock.advance(timedelta(hours=5, minutes=29))
    assert [item.id for item in desk.action_center.pending(semi_auto.id)] == [queued.id]
    clock.advance(timedelta(minutes=2))
    assert desk.action_center.pending(semi_auto.id) == []
    assert desk.action_center.pending_count(semi_auto.id) == 0
    expired = desk.action_center.get(semi_auto.id, queued.id)
    assert (expired.status, expired.decided_by) == ("expired", "system")
    with pytest.raises(Conflict, match="expired"):
        desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    assert broker_orders(desk, semi_auto) == []


def test_approve_all_places_each_and_reject_all_keeps_the_reason(
    desk: Desk, semi_auto: UserView
) -> None:
    trader = trader_of(desk, semi_auto)
    for quantity in (1, 2, 3):
        desk.action_center.queue(trader, SingleOrder(desk.orders.check(sbin(quantity))))
    batch = desk.action_center.approve_all(semi_auto.id, actor="trader")
    assert len(batch.decided) == 3 and batch.refused == ()
    assert sorted(order.quantity for order in broker_orders(desk, semi_auto)) == [1, 2, 3]

    desk.action_center.queue(trader, SmartOrder(desk.orders.check(sbin(1)), target=0))
    desk.action_center.queue(trader, Basket((SingleOrder(desk.orders.check(sbin(2))),)))
    batch = desk.action_center.reject_all(semi_auto.id, actor="trader", reason="market closed")
    assert [item.reason for item in batch.decided] == ["market closed"] * 2
    assert len(broker_orders(desk, semi_auto)) == 3


def test_every_change_to_the_queue_is_announced(desk: Desk, semi_auto: UserView) -> None:
    seen: list[tuple[int, dict[str, Any]]] = []
    desk.events.subscribe(ACTION_CENTER, lambda user_id, payload: seen.append((user_id, payload)))
    queued = desk.action_center.queue(
        trader_of(desk, semi_auto), SingleOrder(desk.orders.check(sbin()))
    )
    assert seen[-1][0] == semi_auto.id
    assert seen[-1][1]["pending_count"] == 1 and seen[-1][1]["pending"][0]["id"] == queued.id
    desk.action_center.approve(semi_auto.id, queued.id, actor="trader")
    payload = seen[-1][1]
    assert payload["pending_count"] == 0 and payload["decided"][0]["status"] == "approved"
    json.dumps(payload)  # what Socket.IO sends must be JSON as it is


# -- the pages, the CLI and the audit trail -----------------------------------------------


def test_the_mode_switch_on_the_api_key_page_and_the_queue_page(
    desk: Desk, client: FlaskClient, api_key: str, user: UserView
) -> None:
    assert login(client).status_code == 302
    page = client.get("/apikey")
    assert b"Order mode" in page.data and b'value="auto" checked' in page.data
    response = client.post(
        "/apikey/mode", data={"csrf_token": csrf_token(page.data), "mode": "semi_auto"}
    )
    assert response.status_code == 302
    assert desk.accounts.get(user.id).order_mode == "semi_auto"  # type: ignore[union-attr]

    answer = api(client, api_key, "placeorder", symbol="SBIN", exchange="NSE", action="BUY",
                 quantity=2, strategy="momentum")[1]  # fmt: skip
    assert answer["mode"] == "semi_auto"
    pending_id = answer["pending_order_id"]
    page = client.get("/action-center")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-pending-id="{pending_id}"' in text and "momentum" in text
    assert f"Approve order {pending_id}" in text
    assert "1 pending" in client.get("/").get_data(as_text=True)

    token = csrf_token(page.data)
    response = client.post(
        f"/action-center/{pending_id}/reject",
        data={"csrf_token": token, "reason": ""},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 400 and "reason" in response.get_json()["message"]
    response = client.post(
        f"/action-center/{pending_id}/approve",
        data={"csrf_token": token},
        headers={"Accept": "application/json"},
    )
    body = response.get_json()
    assert response.status_code == 200 and body["status"] == "success", body
    assert body["action_center"]["pending_count"] == 0
    [order] = broker_orders(desk, user)
    assert order.order_id in body["message"]
    orders_page = client.get("/orders").get_data(as_text=True)
    assert f"api · momentum · {order.algo_id}" in orders_page

    # JSON switch back (API.md 1.7: POST /apikey/mode {"mode": ...}), with the CSRF header.
    response = client.post("/apikey/mode", json={"mode": "auto"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200 and response.get_json()["mode"] == "auto"
    response = client.post("/apikey/mode", json={"mode": "manual"}, headers={"X-CSRFToken": token})
    assert response.status_code == 400 and "auto" in response.get_json()["message"]
    assert desk.accounts.get(user.id).order_mode == "auto"  # type: ignore[union-attr]


def test_the_mode_command_switches_and_refuses_nonsense(app: Flask, user: UserView) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["order-mode", user.username, "semi_auto"])
    assert result.exit_code == 0 and "semi-auto" in result.output
    assert desk_of(app).accounts.get(user.id).order_mode == "semi_auto"  # type: ignore[union-attr]
    result = runner.invoke(args=["order-mode", user.username, "sometimes"])
    assert result.exit_code != 0 and "auto" in result.output
    result = runner.invoke(args=["order-mode", "nobody", "auto"])
    assert result.exit_code == 1 and "nobody" in result.output


def test_decisions_and_mode_changes_are_in_the_audit_trail(desk: Desk, semi_auto: UserView) -> None:
    trader = trader_of(desk, semi_auto)
    first = desk.action_center.queue(trader, SingleOrder(desk.orders.check(sbin())))
    second = desk.action_center.queue(trader, SingleOrder(desk.orders.check(sbin(2))))
    desk.action_center.approve(semi_auto.id, first.id, actor="trader")
    desk.action_center.reject(semi_auto.id, second.id, actor="trader", reason="no")
    desk.audit.flush()
    actions = [record.action for record in reversed(desk.audit.events(user_id=semi_auto.id))]
    expected = [
        "account.order_mode_changed",
        "approval.queued",
        "approval.queued",
        "order.placed",
        "approval.approved",
        "approval.rejected",
    ]
    assert [action for action in actions if action in set(expected)] == expected
    assert desk.audit.verify().intact
