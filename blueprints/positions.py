"""The positions page: today's positions with live P&L, Close one and Close all."""

from __future__ import annotations

from typing import Any

from flask import render_template

from blueprints import desk, login_required
from blueprints.api.serialize import position_row, positions_totals
from blueprints.trading import (
    UI_STRATEGY,
    ActionResult,
    current_trader,
    form_text,
    read_or_alert,
    run_action,
    trader_broker,
    trading_blueprint,
)
from services.errors import NotFound, TradingError
from services.orders.model import PositionReport, Source
from services.orders.squareoff import CloseResult, close_positions, open_positions

bp = trading_blueprint("positions", __name__)


@bp.get("/positions")
@login_required
def index() -> str:
    problems: list[str] = []
    positions: list[PositionReport] = read_or_alert(trader_broker().positions, [], problems)
    return render_template(
        "trading/positions.html",
        positions=[position_row(position) for position in positions],
        totals=positions_totals(positions),
        problems=problems,
    )


@bp.post("/positions/close")
@login_required
def close() -> Any:
    def action() -> ActionResult:
        symbol, exchange = form_text("symbol").upper(), form_text("exchange").upper()
        product = form_text("product").upper()
        found = open_positions(trader_broker().positions(), symbol, exchange, product)
        if not symbol or not exchange or not product or not found:
            raise NotFound(f"No open {product} position in {symbol} on {exchange} to close.")
        return _closed(found)

    return run_action("positions.index", action)


@bp.post("/positions/close-all")
@login_required
def close_all() -> Any:
    def action() -> ActionResult:
        found = open_positions(trader_broker().positions())
        if not found:
            return "No open positions to close", {"positions": []}
        return _closed(found)

    return run_action("positions.index", action)


def _closed(found: list[PositionReport]) -> ActionResult:
    """Square the positions off through the order pipeline; say what happened."""
    trader = current_trader()
    results = close_positions(desk().orders, desk().market, trader, found, UI_STRATEGY, Source.UI)
    failures = [result for result in results if not result.closed]
    rows = [position_row(position) for position in trader_broker(trader).positions()]
    if failures and len(failures) == len(results):
        raise TradingError(_failure_text(failures))
    message = _success_text(results)
    if failures:
        message += f"; {_failure_text(failures)}"
    return message, {"positions": rows}


def _name(result: CloseResult) -> str:
    position = result.position
    return f"{position.symbol} {position.exchange} {position.product.value}"


def _success_text(results: list[CloseResult]) -> str:
    closed = [result for result in results if result.closed]
    if len(closed) == 1:
        return f"Closed {_name(closed[0])} (order {', '.join(closed[0].order_ids)})"
    return f"Closed {len(closed)} positions"


def _failure_text(failures: list[CloseResult]) -> str:
    return "; ".join(f"could not close {_name(result)}: {result.error}" for result in failures)
