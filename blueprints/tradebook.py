"""The trade book page: today's fills with their charges itemised, as the API shows them."""

from __future__ import annotations

from decimal import Decimal

from flask import render_template

from blueprints import login_required
from blueprints.api.serialize import money, trade_row
from blueprints.trading import read_or_alert, trader_broker, trading_blueprint
from services.orders.model import TradeReport

bp = trading_blueprint("tradebook", __name__)

CHARGE_COLUMNS = (
    ("brokerage", "Brokerage"),
    ("stt", "STT/CTT"),
    ("exchange_charges", "Exchange"),
    ("sebi_fees", "SEBI"),
    ("stamp_duty", "Stamp"),
    ("gst", "GST"),
    ("dp_charges", "DP"),
)


@bp.get("/trades")
@login_required
def index() -> str:
    problems: list[str] = []
    trades: list[TradeReport] = read_or_alert(lambda: trader_broker().trades(), [], problems)
    return render_template(
        "trading/trades.html",
        trades=[trade_row(trade) for trade in trades],
        totals=_totals(trades),
        charge_columns=CHARGE_COLUMNS,
        problems=problems,
    )


def _totals(trades: list[TradeReport]) -> dict[str, float]:
    """The day's turnover and each charge summed exactly, then rounded as the rows are."""
    sums = {key: Decimal(0) for key, _ in CHARGE_COLUMNS}
    for trade in trades:
        for key in sums:
            sums[key] += getattr(trade.charges, key)
    total = sum((trade.charges.total for trade in trades), Decimal(0))
    turnover = sum((trade.value for trade in trades), Decimal(0))
    return {
        **{key: money(value) for key, value in sums.items()},
        "total_charges": money(total),
        "trade_value": money(turnover),
    }
