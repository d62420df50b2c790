"""The holdings page: settled delivery holdings with P&L, as the API's `holdings` shows them."""

from __future__ import annotations

from flask import render_template

from blueprints import login_required
from blueprints.api.serialize import holding_row, holdings_statistics
from blueprints.trading import read_or_alert, trader_broker, trading_blueprint
from services.orders.model import HoldingReport

bp = trading_blueprint("holdings", __name__)


@bp.get("/holdings")
@login_required
def index() -> str:
    problems: list[str] = []
    holdings: list[HoldingReport] = read_or_alert(lambda: trader_broker().holdings(), [], problems)
    return render_template(
        "trading/holdings.html",
        holdings=[holding_row(holding) for holding in holdings],
        statistics=holdings_statistics(holdings),
        problems=problems,
    )
