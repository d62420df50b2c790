"""Candlestick charts of any instrument: history from the market-data source, live ticks on top.

The page draws with lightweight-charts (served by the desk from static/vendor); its candles come
from `/charts/<exchange>/<symbol>/candles`, the REST API's `history` rows over a lookback that
suits the interval, and it follows the instrument's ticks over Socket.IO (blueprints/realtime.py).
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, jsonify, render_template, request

from blueprints import desk, login_required
from blueprints.api.serialize import candle_row, money
from services.clock import to_ist
from services.errors import InvalidRequest
from services.market.model import Interval

bp = Blueprint("charts", __name__, url_prefix="/charts")

# Calendar days of history per interval: a few hundred to a couple of thousand bars each.
LOOKBACK_DAYS = {
    Interval.M1: 2,
    Interval.M3: 7,
    Interval.M5: 14,
    Interval.M10: 21,
    Interval.M15: 30,
    Interval.M30: 60,
    Interval.H1: 120,
    Interval.D: 730,
}
DEFAULT_INTERVAL = Interval.M5


def chosen_interval(text: str | None) -> Interval:
    if not text:
        return DEFAULT_INTERVAL
    try:
        return Interval(text)
    except ValueError:
        choices = ", ".join(interval.value for interval in Interval)
        raise InvalidRequest(
            f"Unknown interval {text!r}; choose one of {choices}.",
            errors={"interval": [f"one of {choices}"]},
        ) from None


@bp.get("/<exchange>/<symbol>")
@login_required
def show(exchange: str, symbol: str) -> str:
    market = desk().market
    instrument = market.instrument(symbol, exchange.strip().upper())
    interval = chosen_interval(request.args.get("interval"))
    quote = market.source.quote(instrument)
    return render_template(
        "charts/show.html",
        instrument=instrument,
        interval=interval,
        intervals=list(Interval),
        ltp=money(quote.ltp),
    )


@bp.get("/<exchange>/<symbol>/candles")
@login_required
def candles(exchange: str, symbol: str) -> Response:
    """Candles oldest first, `timestamp` in epoch seconds as the REST API's `history` gives."""
    market = desk().market
    instrument = market.instrument(symbol, exchange.strip().upper())
    interval = chosen_interval(request.args.get("interval"))
    today = to_ist(market.clock.now()).date()
    start = today - timedelta(days=LOOKBACK_DAYS[interval])
    found = market.source.history(instrument, interval, start, today)
    daily = interval is Interval.D
    return jsonify(
        {
            "status": "success",
            "symbol": instrument.symbol,
            "exchange": instrument.exchange.value,
            "interval": interval.value,
            "seconds": interval.seconds,
            "data": [candle_row(candle, daily) for candle in found],
        }
    )
