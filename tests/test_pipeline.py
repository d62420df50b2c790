"""The order pipeline's record and publish steps, through the API."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app import create_app
from config import Settings
from database.engine import DatabaseName
from database.models import OrderLatency
from services.clock import IST, FixedClock
from tests.conftest import desk_env, desk_of, make_user


def test_an_order_is_timed_and_announced(tmp_path: Path) -> None:
    settings = Settings.from_mapping(desk_env(tmp_path, MARKET_MODE="CALENDAR"))
    app = create_app(settings, clock=FixedClock(datetime(2026, 11, 23, 11, 0, tzinfo=IST)))
    desk = desk_of(app)
    user = make_user(app)
    key = desk.api_keys.create(user.id)
    heard: list[tuple[int, Any]] = []
    announced = threading.Event()

    def hear(user_id: int, report: Any) -> None:
        heard.append((user_id, report))
        announced.set()

    # The sandbox announces from its own thread (once the desk hands it the bus), so wait.
    desk.events.subscribe("order", hear)

    response = app.test_client().post(
        "/api/v1/placeorder",
        json={"symbol": "SBIN", "exchange": "NSE", "action": "BUY", "quantity": 2,
              "product": "CNC"},
        headers={"X-API-KEY": key},
    )  # fmt: skip
    assert response.status_code == 200, response.json
    order_id = response.json["orderid"]
    assert announced.wait(10)
    assert [(user_id, report.order_id) for user_id, report in heard] == [(user.id, order_id)]

    desk.orders.flush()
    with desk.databases.session(DatabaseName.LATENCY) as session:
        rows = session.scalars(select(OrderLatency)).all()
        assert [(r.order_id, r.operation, r.broker, r.outcome) for r in rows] == [
            (order_id, "place", "sandbox", "complete")
        ]
        assert rows[0].total_us >= rows[0].broker_us > 0
    desk.close()
