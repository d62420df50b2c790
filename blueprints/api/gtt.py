"""GTT orders (API.md 4.1 "GTT"): place, modify, cancel and list price triggers.

The desk keeps GTTs itself (services/sandbox/gtt.py); a fired GTT places its order through
the order pipeline as its owner. Every GTT request first runs the trigger check, so the book
a client reads is current even between heartbeats.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from decimal import Decimal
from typing import Any

from flask import Flask, current_app
from flask_restx import Namespace

from blueprints import desk
from blueprints.api import api
from blueprints.api.orders import (
    ACTION,
    EXCHANGE,
    PRODUCTS,
    QUANTITY,
    STRATEGY,
    SYMBOL,
    InfoResource,
    OrderResource,
    queued,
    refuse_in_semi_auto,
    trader_of,
    whole_quantity,
    with_mode,
)
from blueprints.api.request import authenticated_request
from blueprints.api.schema import Field, Parsed, request_model
from blueprints.api.serialize import money
from services.action_center import SEMI_AUTO
from services.api_keys import ApiKeyOwner
from services.clock import IST, to_ist
from services.desk import Desk
from services.errors import InvalidRequest
from services.orders.intents import GttOrder
from services.orders.model import PriceType, Product, Side
from services.sandbox.gtt import Gtt, GttBook, GttSpec, TriggerType, pipeline_placer

log = logging.getLogger(__name__)

ns = Namespace("gtt", description="GTT (good-till-triggered) orders", path="/")

EXTENSION = "dalal.gtt"
_LOCK = threading.Lock()
SEMI_AUTO_MODIFY = "Modify GTT order is not allowed in Semi-Auto mode. Switch to Auto mode."
SEMI_AUTO_CANCEL = "Cancel GTT order is not allowed in Semi-Auto mode. Switch to Auto mode."

TRIGGER = Field("decimal", default=Decimal(0), minimum=0, example=0)
GTT_SCHEMA = {
    "strategy": STRATEGY,
    "trigger_type": Field(
        "str", required=True, choices=("SINGLE", "OCO"), case_insensitive=True, example="SINGLE"
    ),
    "exchange": EXCHANGE,
    "symbol": SYMBOL,
    "action": ACTION,
    "product": Field(
        "str",
        required=True,
        choices=PRODUCTS,
        case_insensitive=True,
        example="CNC",
        description="CNC or NRML (MIS is intraday-only)",
    ),
    "quantity": QUANTITY,
    "pricetype": Field("str", default="LIMIT", choices=("LIMIT", "MARKET"), case_insensitive=True),
    "price": Field(
        "decimal", default=Decimal(0), minimum=0, description="SINGLE: the order's limit price"
    ),
    "triggerprice_sl": Field(
        "decimal", default=Decimal(0), minimum=0, description="Trigger below the last price"
    ),
    "triggerprice_tg": Field(
        "decimal", default=Decimal(0), minimum=0, description="Trigger above the last price"
    ),
    "stoploss": Field("decimal", default=Decimal(0), minimum=0, description="OCO: SL leg limit"),
    "target": Field("decimal", default=Decimal(0), minimum=0, description="OCO: target limit"),
    "expires_at": Field(
        "str",
        max_length=40,
        description="ISO date or date-time (IST when no zone); default one year",
        example="2027-11-22T15:30:00+05:30",
    ),
}
MODIFY_SCHEMA = {**GTT_SCHEMA, "trigger_id": Field("str", required=True, pattern=r"\d{1,20}")}
CANCEL_SCHEMA = {"strategy": STRATEGY, "trigger_id": Field("str", required=True)}
BOOK_SCHEMA = {
    "status": Field("str", default="active", choices=("ACTIVE",), case_insensitive=True),
}


def book_of(app: Flask) -> GttBook:
    """The app's GTT book: the desk's own if it has one, else one made here on first use."""
    found: GttBook | None = app.extensions.get(EXTENSION)
    if found is None:
        with _LOCK:
            found = app.extensions.get(EXTENSION)
            if found is None:
                the_desk: Desk = app.extensions["dalal"]
                own = getattr(the_desk, "gtt", None)
                found = (
                    own
                    if isinstance(own, GttBook)
                    else GttBook(
                        the_desk.databases,
                        the_desk.market,
                        the_desk.clock,
                        pipeline_placer(the_desk),
                    )
                )
                app.extensions[EXTENSION] = found
    return found


def check_gtts(app: Flask) -> list[Gtt]:
    """Fire every GTT whose trigger the price has reached (for the heartbeat)."""
    return book_of(app).check()


def _book() -> GttBook:
    book = book_of(current_app)
    try:
        book.check()
    except Exception:  # a failing check must not fail the request
        log.exception("GTT check before a request failed")
    return book


def _expires_at(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        message = f"expires_at must be an ISO date or date-time, got {text!r}"
        raise InvalidRequest(message, errors={"expires_at": [message]}) from None
    return value if value.tzinfo else value.replace(tzinfo=IST)


def _spec(parsed: Parsed) -> GttSpec:
    return GttSpec(
        trigger_type=TriggerType(parsed["trigger_type"]),
        symbol=parsed["symbol"].upper(),
        exchange=parsed["exchange"],
        side=Side(parsed["action"]),
        product=Product(parsed["product"]),
        quantity=whole_quantity(parsed["quantity"]),
        price_type=PriceType(parsed["pricetype"]),
        price=parsed["price"],
        trigger_sl=parsed["triggerprice_sl"],
        trigger_tg=parsed["triggerprice_tg"],
        stoploss=parsed["stoploss"],
        target=parsed["target"],
        strategy=parsed["strategy"] or "",
        expires_at=_expires_at(parsed["expires_at"]),
    )


def _respond(owner: ApiKeyOwner, payload: dict[str, Any], parsed: Parsed) -> dict[str, Any]:
    mode = desk().orders.broker(trader_of(owner)).mode
    return with_mode(payload, mode, parsed)


def _stamp(instant: datetime) -> str:
    return to_ist(instant).strftime("%Y-%m-%d %H:%M:%S")


def gtt_row(gtt: Gtt, last_price: Decimal) -> dict[str, Any]:
    """One gttorderbook entry (API.md 4.1): stoploss leg first, trigger prices ascending."""
    return {
        "trigger_id": gtt.trigger_id,
        "trigger_type": "single" if gtt.spec.trigger_type is TriggerType.SINGLE else "two-leg",
        "status": gtt.status.value,
        "symbol": gtt.spec.symbol,
        "exchange": gtt.spec.exchange,
        "trigger_prices": [money(price) for price in gtt.trigger_prices],
        "last_price": money(last_price),
        "legs": [
            {
                "action": leg.request.side.value,
                "quantity": leg.request.quantity,
                "price": money(leg.request.price),
                "pricetype": leg.request.price_type.value,
                "product": leg.request.product.value,
            }
            for leg in gtt.legs
        ],
        "strategy": gtt.spec.strategy,
        "created_at": _stamp(gtt.created_at),
        "updated_at": _stamp(gtt.updated_at),
        "expires_at": _stamp(gtt.expires_at),
    }


@ns.route("/placegttorder")
class PlaceGtt(OrderResource):
    @ns.expect(request_model(ns, "PlaceGttRequest", GTT_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Place a GTT: SINGLE (one trigger, one order) or OCO (stoploss and target legs)."""
        owner, parsed = authenticated_request(GTT_SCHEMA)
        spec = _spec(parsed)
        if owner.order_mode == SEMI_AUTO:
            held = queued(owner, GttOrder(_book().validate(spec)), parsed)
            if held is not None:
                return held
        gtt = _book().place(owner.user_id, spec)
        return _respond(owner, {"trigger_id": gtt.trigger_id}, parsed)


@ns.route("/modifygttorder")
class ModifyGtt(OrderResource):
    @ns.expect(request_model(ns, "ModifyGttRequest", MODIFY_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Replace an active GTT's terms (type, symbol, exchange and action are fixed)."""
        owner, parsed = authenticated_request(MODIFY_SCHEMA)
        refuse_in_semi_auto(
            owner, "Modify GTT order is not allowed in Semi-Auto mode. Switch to Auto mode."
        )
        gtt = _book().modify(owner.user_id, parsed["trigger_id"], _spec(parsed))
        return _respond(owner, {"trigger_id": gtt.trigger_id}, parsed)


@ns.route("/cancelgttorder")
class CancelGtt(OrderResource):
    @ns.expect(request_model(ns, "CancelGttRequest", CANCEL_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Cancel an active GTT (both legs of an OCO)."""
        owner, parsed = authenticated_request(CANCEL_SCHEMA)
        refuse_in_semi_auto(
            owner, "Cancel GTT order is not allowed in Semi-Auto mode. Switch to Auto mode."
        )
        gtt = _book().cancel(owner.user_id, parsed["trigger_id"])
        return _respond(owner, {"trigger_id": gtt.trigger_id}, parsed)


@ns.route("/gttorderbook")
class GttOrderBook(InfoResource):
    @ns.expect(request_model(ns, "GttOrderBookRequest", BOOK_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """The active GTTs of the account, oldest first."""
        owner, parsed = authenticated_request(BOOK_SCHEMA)
        book = _book()
        rows = [gtt_row(gtt, book.last_price(gtt)) for gtt in book.active(owner.user_id)]
        return _respond(owner, {"data": rows}, parsed)


api.add_namespace(ns)
