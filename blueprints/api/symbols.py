"""The instrument master over the API: symbol, search, expiry, instruments (API.md 4.5)."""

from __future__ import annotations

import csv
import io
from typing import Any, ClassVar

from flask import Response, make_response
from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, request_model
from blueprints.api.serialize import expiry_text, instrument_row
from services.market.service import VALID_EXCHANGES, check_exchange

ns = Namespace("symbols", description="Instrument master (API.md 4.5)", path="/")

EXCHANGE = Field("str", required=True, choices=VALID_EXCHANGES, example="NSE")
SYMBOL_SCHEMA = {"symbol": Field("str", required=True, example="RELIANCE"), "exchange": EXCHANGE}
SEARCH_SCHEMA = {
    "query": Field(
        "str",
        required=True,
        max_length=100,
        example="NIFTY 26000 DEC CE",
        description="Space-separated terms; each must prefix part of the contract",
    ),
    "exchange": Field("str", choices=VALID_EXCHANGES, example="NFO"),
}
EXPIRY_SCHEMA = {
    "symbol": Field("str", required=True, example="NIFTY", description="The underlying"),
    "exchange": Field(
        "str", required=True, choices=("NFO", "BFO", "MCX", "CDS", "BCD"), example="NFO"
    ),
    "instrumenttype": Field(
        "str", required=True, choices=("futures", "options"), example="options"
    ),
}
INSTRUMENTS_SCHEMA = {
    "exchange": Field("str", choices=VALID_EXCHANGES, example="NSE_INDEX"),
    "format": Field("str", default="json", choices=("json", "csv"), example="json"),
}
CSV_COLUMNS = (
    "symbol",
    "brsymbol",
    "name",
    "exchange",
    "brexchange",
    "token",
    "expiry",
    "strike",
    "lotsize",
    "instrumenttype",
    "tick_size",
)


class SymbolResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


@ns.route("/symbol")
class Symbol(SymbolResource):
    @ns.expect(request_model(ns, "SymbolRequest", SYMBOL_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """One contract of the master: lot size, tick size, expiry, strike, freeze quantity."""
        _owner, parsed = authenticated_request(SYMBOL_SCHEMA)
        instrument = desk().market.instrument(parsed["symbol"], parsed["exchange"])
        return success({"data": instrument_row(instrument)}, parsed)


@ns.route("/search")
class Search(SymbolResource):
    @ns.expect(request_model(ns, "SearchRequest", SEARCH_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Multi-term search over every contract, best matches first."""
        _owner, parsed = authenticated_request(SEARCH_SCHEMA)
        found = desk().market.master.search(parsed["query"], parsed["exchange"], limit=100)
        message = f"Found {len(found)} matching symbols" if found else "No matching symbols found"
        return success({"message": message, "data": [instrument_row(i) for i in found]}, parsed)


@ns.route("/expiry")
class Expiry(SymbolResource):
    @ns.expect(request_model(ns, "ExpiryRequest", EXPIRY_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Listed expiries of an underlying's futures or options, nearest first."""
        _owner, parsed = authenticated_request(EXPIRY_SCHEMA)
        symbol, exchange, kind = (
            parsed["symbol"].upper(),
            parsed["exchange"],
            parsed["instrumenttype"],
        )
        days = desk().market.master.expiries(symbol, exchange, kind)
        message = f"Found {len(days)} expiry dates for {symbol} {kind} in {exchange}"
        return success({"message": message, "data": [expiry_text(day) for day in days]}, parsed)


@ns.route("/instruments")
class Instruments(SymbolResource):
    @ns.doc(params={"exchange": "One exchange (all when omitted)", "format": "json or csv"})
    def get(self) -> Any:
        """Download the instrument master, as JSON or CSV."""
        _owner, parsed = authenticated_request(INSTRUMENTS_SCHEMA)
        exchange = parsed["exchange"]
        master = desk().market.master
        if exchange:
            check_exchange(exchange)
        instruments = master.by_exchange(exchange) if exchange else master.all()
        rows = [instrument_row(instrument) for instrument in instruments]
        if parsed["format"] == "csv":
            return _csv_download(rows, exchange or "all")
        return success({"message": f"Found {len(rows)} instruments", "data": rows}, parsed)


def _csv_download(rows: list[dict[str, Any]], name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    response = make_response(buffer.getvalue())
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="instruments_{name}.csv"'
    return response


api.add_namespace(ns)
