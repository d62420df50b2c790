"""The order ticket's JSON endpoints: instrument search, a margin and charges preview, placing.

Thin over the REST API's own pieces: the same request declaration (`PLACE_SCHEMA`), the same
order pipeline and validation, the same margin model as `/api/v1/margin`, the sandbox's own
charges. The page session authenticates (401 JSON when signed out) and CSRFProtect checks the
X-CSRFToken header on every POST; every error answers in the API's JSON shape, so the ticket
shows the server's message verbatim and puts field errors next to their fields.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from blueprints import desk
from blueprints.api.order_tools import margin_item, margin_required
from blueprints.api.orders import PLACE_SCHEMA, PRICE_TYPES, order_request
from blueprints.api.request import enforce_rate_limit, json_body
from blueprints.api.schema import Parsed, parse
from blueprints.api.serialize import charges_data, instrument_row, money
from blueprints.errors import api_error_response
from blueprints.trading import current_trader
from services.errors import AuthenticationRequired, DalalError
from services.market.model import Exchange, Instrument
from services.orders.model import OrderRequest, Source
from services.sandbox.charges import fill_charges

bp = Blueprint("ticket", __name__, url_prefix="/ticket")

STRATEGY = "ui"  # the tag of every order placed from the pages
TRADABLE = frozenset(exchange.value for exchange in Exchange if not exchange.endswith("_INDEX"))
SUGGESTIONS = 12
SEARCH_SCAN = 60  # matches scanned for SUGGESTIONS tradable ones (indices are skipped)
_EXCHANGE_ORDER = [exchange.value for exchange in Exchange]
NAVIGATION = (
    ("home.index", "Dashboard", ("home",)),
    ("orderbook.index", "Orders", ("orderbook",)),
    ("tradebook.index", "Trades", ("tradebook",)),
    ("positions.index", "Positions", ("positions",)),
    ("holdings.index", "Holdings", ("holdings",)),
    ("funds.index", "Funds", ("funds",)),
    ("market.index", "Market", ("market", "charts")),
    ("sandbox_pages.index", "Sandbox", ("sandbox_pages",)),
    ("action_center.index", "Action Center", ("action_center",)),
    ("apikey.show", "API key", ("apikey",)),
    ("logs.index", "API logs", ("logs",)),
    ("audit.index", "Audit", ("audit",)),
    ("settings.index", "Settings", ("settings", "risk", "broker_pages", "latency")),
    ("api.doc", "API docs", ()),
)  # (endpoint, link text, blueprints whose pages it marks current)


def signed_in[F: Callable[..., Any]](view: F) -> F:
    """Like login_required, but a signed-out page gets a 401 JSON error, not the login page."""

    @functools.wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            raise AuthenticationRequired("You are signed out. Sign in again, then retry.")
        return view(*args, **kwargs)

    return checked  # type: ignore[return-value]


@bp.errorhandler(Exception)
def _error(exc: Exception) -> Response:
    if isinstance(exc, CSRFError):
        exc = DalalError("This page's security token is missing or expired. Reload the page.")
        exc.status, exc.code = 400, "csrf_failed"
    return api_error_response(exc)


@bp.get("/search")
@signed_in
def search() -> Response:
    """Tradable contracts matching the typed text, best first."""
    query = request.args.get("q", "").strip()[:100]
    found = desk().market.master.search(query, limit=SEARCH_SCAN) if query else []
    tradable = [item for item in found if item.exchange.value in TRADABLE][:SUGGESTIONS]
    return jsonify({"status": "success", "data": [_described(item) for item in tradable]})


@bp.get("/instrument")
@signed_in
def instrument() -> Response:
    """One contract (for a ticket opened prefilled), with its last price."""
    symbol = request.args.get("symbol", "").strip().upper()
    exchange = request.args.get("exchange", "").strip().upper()
    market = desk().market
    found = market.instrument(symbol, exchange)
    data = {**_described(found), "ltp": money(market.source.quote(found).ltp)}
    return jsonify({"status": "success", "data": data})


@bp.post("/preview")
@signed_in
def preview() -> Response:
    """Margin the sandbox would block and the charges of a fill at the order's price."""
    parsed = _parsed()
    order = desk().orders.check(order_request(parsed))
    position = {**parsed.values, "price": order.price}
    instrument, product, side, quantity, price, _underlying = margin_item(position)
    required = margin_required([position])
    charges = fill_charges(instrument, product, side, quantity, price)
    data = {
        **_described(instrument),
        "quantity": quantity,
        "price": money(price),
        "value": money(price * quantity),
        "margin": {
            "total": money(required.total),
            "span": money(required.span),
            "exposure": money(required.exposure),
            "premium": money(required.premium),
        },
        "charges": {**charges_data(charges), "total": money(charges.total)},
    }
    return jsonify({"status": "success", "data": data})


@bp.post("/place")
@signed_in
def place() -> Response:
    """Send the order through the order pipeline, as the signed-in trader."""
    enforce_rate_limit("order_rate_limit")
    # The trader's own click: never held for approval, even in semi-auto mode.
    order: OrderRequest = replace(order_request(_parsed()), source=Source.UI)
    trader = current_trader()
    outcome = desk().orders.place(trader, order)
    report = outcome.report
    return jsonify(
        {
            "status": "success",
            "orderid": report.order_id,
            "order_status": report.status.value,
            "mode": outcome.mode.value,
        }
    )


def _parsed() -> Parsed:
    body = json_body()
    body["strategy"] = STRATEGY
    return parse(body, PLACE_SCHEMA)


def _described(instrument: Instrument) -> dict[str, Any]:
    row = instrument_row(instrument)
    row["derivative"] = instrument.is_derivative
    row["label"] = f"{instrument.symbol} {instrument.exchange.value}"
    return row


@bp.app_context_processor
def _layout() -> dict[str, Any]:
    """What base.html needs on every page: the navigation (links to pages that exist) and the
    ticket's choices."""
    views = current_app.view_functions
    current = request.blueprint or ""
    navigation = [
        (endpoint, text, current in sections)
        for endpoint, text, sections in NAVIGATION
        if endpoint in views
    ]
    return {
        "navigation": navigation,
        "ticket_exchanges": sorted(TRADABLE, key=_EXCHANGE_ORDER.index),
        "ticket_price_types": PRICE_TYPES,
        "ticket_products": ("MIS", "CNC", "NRML"),  # the usual first
    }
