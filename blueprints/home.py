"""The dashboard: funds, open positions, today's orders, broker and order mode, the day's P&L."""

from __future__ import annotations

from typing import Any

from flask import render_template
from flask_login import current_user

from blueprints import desk, login_required
from blueprints.api.serialize import order_row, position_row
from blueprints.funds import funds_view
from blueprints.trading import read_or_alert, trader_broker, trading_blueprint
from services.action_center import pending_count
from services.orders.model import OrderReport, PositionReport
from services.pnl_history import PnlPoint, pnl_history

bp = trading_blueprint("home", __name__)

# The chart library draws times in UTC: points are shifted by IST's offset to read as IST.
IST_OFFSET_SECONDS = 19_800


@bp.get("/")
@login_required
def index() -> str:
    user = current_user.view
    broker = trader_broker()
    problems: list[str] = []
    positions: list[PositionReport] = read_or_alert(broker.positions, [], problems)
    orders: list[OrderReport] = read_or_alert(broker.orders, [], problems)
    return render_template(
        "home.html",
        user=user,
        broker=broker,
        broker_status=broker.session_status(),
        funds=funds_view(problems),
        positions=[position_row(position) for position in positions if position.net_quantity],
        orders=[order_row(order) for order in orders],
        pending=pending_count(desk(), user.id),
        pnl_points=[_chart_point(point) for point in pnl_history(desk()).today(user.id)],
        api_key=desk().api_keys.info(user.id),
        settings=desk().settings,
        problems=problems,
    )


def _chart_point(point: PnlPoint) -> dict[str, Any]:
    return {"time": int(point.at.timestamp()) + IST_OFFSET_SECONDS, "value": float(point.pnl)}
