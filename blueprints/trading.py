"""What the trader's pages share: who trades, number formats, and how an action answers.

Actions are ordinary POST forms with a CSRF token. The pages' script submits them with fetch()
and asks for JSON (`Accept: application/json`), so the page updates in place; without a script
the same form posts, redirects back and shows a flash message. Either way a DalalError becomes
a message the trader can act on, never an error page.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, request, url_for
from flask_login import current_user

from blueprints import desk
from blueprints.api.serialize import funds_data
from blueprints.market_pages import MINUS, format_number
from broker.base import Broker
from services.errors import DalalError, InvalidRequest
from services.orders.pipeline import Trader

UI_STRATEGY = "ui"  # the strategy tag of orders made from the pages
# Where an action may send the trader back to (never a URL taken from the request).
RETURN_PAGES = {
    "home.index": "/",
    "orderbook.index": "/orders",
    "positions.index": "/positions",
    "sandbox_pages.index": "/sandbox",
}

ActionResult = tuple[str, dict[str, Any]]  # (message, extra JSON for the page's script)


def current_trader() -> Trader:
    view = current_user.view
    return Trader(
        user_id=view.id, broker=view.broker, order_mode=view.order_mode, actor=view.username
    )


def trader_broker(trader: Trader | None = None) -> Broker:
    return desk().orders.broker(trader or current_trader())


# ---------------------------------------------------------------------------------- formats


def rupees(value: Decimal | float | int | None) -> str:
    """An amount with two decimals and Indian grouping (1,00,00,000.00)."""
    return format_number(value, 2)


def signed_rupees(value: Decimal | float | int | None) -> str:
    """A P&L: the sign spelled out, so colour is never the only cue."""
    text = format_number(value, 2)
    if value is None or text.startswith(MINUS) or Decimal(str(value)) == 0:
        return text
    return "+" + text


def whole(value: int | None) -> str:
    """A quantity: a plain integer with a real minus sign (quantities are not grouped)."""
    if value is None:
        return "—"
    return f"{MINUS}{-value}" if value < 0 else str(value)


def trend(value: Decimal | float | int | None) -> str:
    """The CSS class of a P&L: up, down or flat."""
    if not value:
        return "flat"
    return "up" if value > 0 else "down"


def percent_rate(rate: Decimal) -> str:
    """A fraction of turnover as a percentage without trailing zeros (0.0003 -> 0.03%)."""
    text = f"{(rate * 100).normalize():f}"
    return f"{text}%"


def page_formatters() -> dict[str, Any]:
    return {
        "rupees": rupees,
        "signed_rupees": signed_rupees,
        "whole": whole,
        "trend": trend,
        "percent_rate": percent_rate,
    }


def trading_blueprint(name: str, import_name: str, url_prefix: str | None = None) -> Blueprint:
    """A page blueprint with the shared number formats in its templates."""
    blueprint = Blueprint(name, import_name, url_prefix=url_prefix)
    blueprint.context_processor(page_formatters)
    return blueprint


# ---------------------------------------------------------------------------------- parsing


def form_text(name: str, default: str = "") -> str:
    return (request.form.get(name) or default).strip()


def form_quantity(name: str = "quantity", label: str = "Quantity") -> int:
    text = form_text(name)
    if not text.isdigit() or int(text) < 1:
        raise InvalidRequest(
            f"{label} must be a whole number of at least 1 (got {text or 'nothing'}).",
            errors={name: ["a whole number, at least 1"]},
        )
    return int(text)


def form_price(name: str, label: str) -> Decimal:
    text = form_text(name, "0") or "0"
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise InvalidRequest(
            f"{label} must be a number of rupees, 0 or more (got {text}).",
            errors={name: ["a number, 0 or more"]},
        )
    return value


def form_choice(name: str, label: str, choices: tuple[str, ...]) -> str:
    value = form_text(name).upper()
    if value not in choices:
        raise InvalidRequest(
            f"{label} must be one of {', '.join(choices)}.", errors={name: list(choices)}
        )
    return value


# ---------------------------------------------------------------------------------- answers


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _back(default: str) -> str:
    endpoint = form_text("next")
    return url_for(endpoint) if endpoint in RETURN_PAGES else url_for(default)


def run_action(default_page: str, action: Callable[[], ActionResult]) -> Response | Any:
    """Run a page action; answer JSON to the pages' script, else flash and redirect back."""
    try:
        message, extra = action()
    except DalalError as e:
        if wants_json():
            body: dict[str, Any] = {"status": "error", "message": e.message}
            if e.errors:
                body["errors"] = e.errors
            response = jsonify(body)
            response.status_code = e.status if 400 <= e.status < 500 else 422
            return response
        flash(e.message, "error")
        return redirect(_back(default_page), 303)
    if wants_json():
        funds = _funds_or_none()
        return jsonify({"status": "success", "message": message, **extra, "funds": funds})
    flash(message, "success")
    return redirect(_back(default_page), 303)


def _funds_or_none() -> dict[str, Any] | None:
    """The account after an action, so the page shows it at once (the push may come later)."""
    try:
        return funds_data(trader_broker().funds())
    except DalalError:
        return None


def read_or_alert[T](read: Callable[[], T], fallback: T, problems: list[str]) -> T:
    """Read from the broker; on a DalalError note the message for the page and use `fallback`."""
    try:
        return read()
    except DalalError as e:
        problems.append(e.message)
        return fallback
