"""Market data: quotes, multiquotes, depth, history, intervals and the ticker (API.md 4.4).

Served by the desk's market-data source (the simulated market for the sandbox), so none of
these needs a broker session.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from flask import Response, make_response
from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, request_model
from blueprints.api.serialize import candle_row, depth_data, quote_data
from broker.base import Broker, TradingMode, broker_for
from services.api_keys import ApiKeyOwner
from services.clock import IST, to_ist
from services.errors import InvalidRequest, NotFound
from services.market.model import Interval

ns = Namespace("market data", description="Quotes, depth and history (API.md 4.4)", path="/")

SYMBOL = Field("str", required=True, description="Symbol in OpenAlgo format", example="RELIANCE")
EXCHANGE = Field("str", required=True, description="Exchange code", example="NSE")
INTERVALS = tuple(interval.value for interval in Interval)
MAX_INTRADAY_DAYS = 366

QUOTE_SCHEMA = {"symbol": SYMBOL, "exchange": EXCHANGE}
MULTIQUOTE_SCHEMA = {
    "symbols": Field(
        "list",
        required=True,
        items=QUOTE_SCHEMA,
        min_items=1,
        max_items=500,
        description="The instruments to quote",
        example=[
            {"symbol": "RELIANCE", "exchange": "NSE"},
            {"symbol": "NIFTY", "exchange": "NSE_INDEX"},
        ],
    )
}
HISTORY_SCHEMA = {
    "symbol": SYMBOL,
    "exchange": EXCHANGE,
    "interval": Field("str", required=True, choices=INTERVALS, example="5m"),
    "start_date": Field("date", required=True, example="2026-11-02"),
    "end_date": Field("date", required=True, example="2026-11-20"),
    "source": Field("str", default="api", choices=("api", "db"), example="api"),
}


class MarketResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


def data_broker(owner: ApiKeyOwner) -> Broker:
    """Who serves market data: the user's broker (the sandbox's simulated market in analyze
    mode, the live broker's own feed when trading live)."""
    return broker_for(owner.broker, owner.user_id, desk())


@ns.route("/quotes")
class Quotes(MarketResource):
    @ns.expect(request_model(ns, "QuotesRequest", QUOTE_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Last price, OHLC, bid/ask, volume and OI of one instrument."""
        owner, parsed = authenticated_request(QUOTE_SCHEMA)
        broker = data_broker(owner)
        instrument = broker.instrument(parsed["symbol"], parsed["exchange"])
        return success({"data": quote_data(broker.quote(instrument))}, parsed)


@ns.route("/multiquotes")
class MultiQuotes(MarketResource):
    @ns.expect(request_model(ns, "MultiQuotesRequest", MULTIQUOTE_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Quotes of many instruments; unknown ones get an `error` entry, not a failure."""
        owner, parsed = authenticated_request(MULTIQUOTE_SCHEMA)
        broker = data_broker(owner)
        if broker.mode is TradingMode.LIVE:
            return success({"results": _live_quotes(broker, parsed["symbols"])}, parsed)
        market = desk().market
        results: list[dict[str, Any]] = []
        found = []
        for item in parsed["symbols"]:
            instrument = market.master.get(item["symbol"].upper(), item["exchange"])
            entry: dict[str, Any] = {"symbol": item["symbol"], "exchange": item["exchange"]}
            if instrument is None:
                entry["error"] = f"Symbol {item['symbol']} not found in exchange {item['exchange']}"
            else:
                found.append((entry, instrument))
            results.append(entry)
        quotes = market.source.quotes([instrument for _entry, instrument in found])
        for (entry, _instrument), quote in zip(found, quotes, strict=True):
            entry["data"] = quote_data(quote)
        return success({"results": results}, parsed)


@ns.route("/depth")
class MarketDepth(MarketResource):
    @ns.expect(request_model(ns, "DepthRequest", QUOTE_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Five levels of bids and asks around the last price."""
        owner, parsed = authenticated_request(QUOTE_SCHEMA)
        broker = data_broker(owner)
        instrument = broker.instrument(parsed["symbol"], parsed["exchange"])
        return success({"data": depth_data(broker.depth(instrument))}, parsed)


@ns.route("/history")
class History(MarketResource):
    @ns.expect(request_model(ns, "HistoryRequest", HISTORY_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Candles, oldest first; `timestamp` in epoch seconds (00:00 UTC of the date for D)."""
        owner, parsed = authenticated_request(HISTORY_SCHEMA)
        interval = Interval(parsed["interval"])
        start, end = _date_range(parsed["start_date"], parsed["end_date"], interval)
        broker = data_broker(owner)
        instrument = broker.instrument(parsed["symbol"], parsed["exchange"])
        candles = broker.history(instrument, interval, start, end)
        daily = interval is Interval.D
        return success({"data": [candle_row(candle, daily) for candle in candles]}, parsed)


def _live_quotes(broker: Broker, symbols: list[dict[str, Any]]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for item in symbols:
        entry: dict[str, Any] = {"symbol": item["symbol"], "exchange": item["exchange"]}
        try:
            instrument = broker.instrument(item["symbol"], item["exchange"])
            entry["data"] = quote_data(broker.quote(instrument))
        except NotFound:
            entry["error"] = f"Symbol {item['symbol']} not found in exchange {item['exchange']}"
        results.append(entry)
    return results


def _date_range(start: date, end: date, interval: Interval) -> tuple[date, date]:
    if end < start:
        raise InvalidRequest(
            "end_date is before start_date.", errors={"end_date": ["on or after start_date"]}
        )
    if interval is not Interval.D and (end - start).days > MAX_INTRADAY_DAYS:
        raise InvalidRequest(
            f"Intraday history is served {MAX_INTRADAY_DAYS} days at a time; split the range.",
            errors={"end_date": [f"within {MAX_INTRADAY_DAYS} days of start_date"]},
        )
    return start, end


@ns.route("/intervals")
class Intervals(MarketResource):
    @ns.expect(request_model(ns, "IntervalsRequest", {}), validate=False)
    def post(self) -> dict[str, Any]:
        """The history intervals this desk's data source serves."""
        _owner, parsed = authenticated_request({})
        minutes = [i.value for i in Interval if i.value.endswith("m")]
        hours = [i.value for i in Interval if i.value.endswith("h")]
        data = {
            "seconds": [],
            "minutes": minutes,
            "hours": hours,
            "days": ["D"],
            "weeks": [],
            "months": [],
        }
        return success({"data": data}, parsed)


TICKER_SCHEMA = {
    "interval": Field("str", default="D", choices=INTERVALS, example="D"),
    "from": Field(
        "str",
        required=True,
        example="2026-11-02",
        description="YYYY-MM-DD or epoch seconds/milliseconds",
    ),
    "to": Field(
        "str",
        required=True,
        example="2026-11-20",
        description="YYYY-MM-DD or epoch seconds/milliseconds",
    ),
    "format": Field("str", default="json", choices=("json", "txt"), example="json"),
}


@ns.route("/ticker/<string:ticker>")
@ns.param("ticker", "EXCHANGE:SYMBOL, e.g. NSE:RELIANCE")
class Ticker(MarketResource):
    @ns.doc(
        params={name: spec.description or spec.expected() for name, spec in TICKER_SCHEMA.items()}
    )
    def get(self, ticker: str) -> Any:
        """History for charting tools: JSON, or CSV lines with `format=txt`."""
        _owner, parsed = authenticated_request(TICKER_SCHEMA)
        exchange, _, symbol = ticker.partition(":")
        if not symbol:
            raise InvalidRequest(
                "Ticker must be EXCHANGE:SYMBOL, e.g. NSE:RELIANCE.",
                errors={"ticker": ["EXCHANGE:SYMBOL"]},
            )
        interval = Interval(parsed["interval"])
        start = _ticker_date(parsed["from"], "from")
        end = _ticker_date(parsed["to"], "to")
        start, end = _date_range(start, end, interval)
        market = desk().market
        instrument = market.instrument(symbol, exchange.upper())
        candles = market.source.history(instrument, interval, start, end)
        daily = interval is Interval.D
        if parsed["format"] == "txt":
            return _ticker_text(instrument.symbol, candles, daily)
        rows = [candle_row(candle, daily) for candle in candles]
        for row in rows:
            row.pop("oi")
        return success({"data": rows}, parsed)


def _ticker_date(text: str, name: str) -> date:
    value = text.strip()
    try:
        if value.isdigit() and len(value) in (10, 13):
            seconds = int(value) / (1000 if len(value) == 13 else 1)
            return datetime.fromtimestamp(seconds, UTC).astimezone(IST).date()
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=IST).date()
    except (ValueError, OverflowError):
        raise InvalidRequest(
            f"'{name}' must be YYYY-MM-DD or a 10/13-digit epoch, got {text!r}.",
            errors={name: ["YYYY-MM-DD or epoch seconds/milliseconds"]},
        ) from None


def _ticker_text(symbol: str, candles: list[Any], daily: bool) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["Ticker", "Date", "Open", "High", "Low", "Close", "Volume"]
    writer.writerow(header if daily else [*header[:2], "Time", *header[2:]])
    for candle in candles:
        local = to_ist(candle.start)
        stamp = [local.strftime("%Y-%m-%d")] + ([] if daily else [local.strftime("%H:%M:%S")])
        writer.writerow(
            [symbol, *stamp, candle.open, candle.high, candle.low, candle.close, candle.volume]
        )
    response = make_response(buffer.getvalue())
    response.headers["Content-Type"] = "text/plain; charset=utf-8"
    return response


api.add_namespace(ns)
