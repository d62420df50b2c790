"""The funds page: cash available, margin in use and the day's P&L, updated live."""

from __future__ import annotations

from typing import Any

from flask import render_template

from blueprints import login_required
from blueprints.api.serialize import funds_data, money
from blueprints.trading import read_or_alert, trader_broker, trading_blueprint
from services.pnl_history import day_pnl

bp = trading_blueprint("funds", __name__)


def funds_view(problems: list[str]) -> dict[str, Any] | None:
    """The API's funds data plus the day's P&L; None (a problem noted) if the broker fails."""
    report = read_or_alert(lambda: trader_broker().funds(), None, problems)
    if report is None:
        return None
    return {**funds_data(report), "pnl_today": money(day_pnl(report))}


@bp.get("/funds")
@login_required
def index() -> str:
    problems: list[str] = []
    return render_template("trading/funds.html", funds=funds_view(problems), problems=problems)
