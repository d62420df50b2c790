"""Order management and order information (API.md 4.1-4.2), thin over the order pipeline."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, Parsed, request_model
from blueprints.api.serialize import order_row
from broker.base import TradingMode
from services.action_center import QUEUED_MESSAGE, SEMI_AUTO, holds_for_approval
from services.api_keys import ApiKeyOwner
from services.errors import InvalidRequest, PermissionDenied
from services.orders.intents import Intent, SingleOrder
from services.orders.model import (
    ModifyRequest,
    OrderRequest,
    PriceType,
    Product,
    Side,
)
from services.orders.pipeline import Trader
from services.orders.squareoff import CloseResult, close_positions, open_positions

ns = Namespace("orders", description="Place, modify, cancel and inspect orders", path="/")

PRICE_TYPES = tuple(price_type.value for price_type in PriceType)
PRODUCTS = tuple(product.value for product in Product)
STRATEGY = Field("str", default="", max_length=64, example="Python", description="A tag of yours")
ALGO_ID = Field(
    "str",
    default="",
    max_length=32,
    example="",
    description="Your algorithm's ID (e.g. the one the exchange assigned); "
    "Dalal assigns a stable one per strategy when empty",
)
EXCHANGE = Field(
    "str",
    required=True,
    example="NSE",
    case_insensitive=True,
    choices=("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"),
)
SYMBOL = Field("str", required=True, example="SBIN", max_length=64)
ACTION = Field("str", required=True, choices=("BUY", "SELL"), case_insensitive=True)
QUANTITY = Field("decimal", required=True, minimum=1, example=1, description="Units (not lots)")
PRICE = Field("decimal", default=Decimal(0), minimum=0, example=0)

PLACE_SCHEMA = {
    "strategy": STRATEGY,
    "algo_id": ALGO_ID,
    "exchange": EXCHANGE,
    "symbol": SYMBOL,
    "action": ACTION,
    "quantity": QUANTITY,
    "pricetype": Field("str", default="MARKET", choices=PRICE_TYPES, case_insensitive=True),
    "product": Field("str", default="MIS", choices=PRODUCTS, case_insensitive=True),
    "price": PRICE,
    "trigger_price": PRICE,
    "disclosed_quantity": Field("int", default=0, minimum=0),
    "underlying_ltp": Field("decimal", description="Accepted and ignored (set by optionsorder)"),
}
MODIFY_SCHEMA = {
    "strategy": STRATEGY,
    "orderid": Field("str", required=True, example="26112312345678"),
    "exchange": Field("str", example="NSE"),
    "symbol": Field("str", example="SBIN"),
    "action": Field("str", choices=("BUY", "SELL"), case_insensitive=True),
    "product": Field("str", choices=PRODUCTS, case_insensitive=True),
    "pricetype": Field("str", required=True, choices=PRICE_TYPES, case_insensitive=True),
    "price": PRICE,
    "quantity": QUANTITY,
    "disclosed_quantity": Field("int", default=0, minimum=0),
    "trigger_price": PRICE,
}
ORDER_ID_SCHEMA = {"strategy": STRATEGY, "orderid": Field("str", required=True)}
STRATEGY_SCHEMA = {"strategy": STRATEGY}
CLOSE_SCHEMA = {
    "strategy": STRATEGY,
    "symbol": Field("str", description="Close only this symbol"),
    "exchange": Field(
        "str",
        description="Close only on this exchange",
        case_insensitive=True,
        choices=("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"),
    ),
    "product": Field(
        "str", choices=PRODUCTS, case_insensitive=True, description="Close only this product"
    ),
}
OPEN_POSITION_SCHEMA = {
    "strategy": STRATEGY,
    "symbol": SYMBOL,
    "exchange": EXCHANGE,
    "product": Field("str", required=True, choices=PRODUCTS, case_insensitive=True),
}


def trader_of(owner: ApiKeyOwner) -> Trader:
    return Trader(
        user_id=owner.user_id,
        broker=owner.broker,
        order_mode=owner.order_mode,
        actor=owner.username,
    )


def queued(owner: ApiKeyOwner, intent: Intent, parsed: Parsed) -> dict[str, Any] | None:
    """In semi-auto mode, store the (validated) intent for approval and answer as API.md 1.7
    says; None in auto mode, where the caller goes on to execute it."""
    if not holds_for_approval(owner.order_mode, intent.first.source):
        return None
    pending = desk().action_center.queue(trader_of(owner), intent)
    payload = {"message": QUEUED_MESSAGE, "mode": "semi_auto", "pending_order_id": pending.id}
    return success(payload, parsed)


def refuse_in_semi_auto(owner: ApiKeyOwner, message: str) -> None:
    """Changing or closing orders is the trader's to do in semi-auto mode on a live broker
    (API.md 1.7); the sandbox allows it, as paper trading needs no approval."""
    if owner.order_mode != SEMI_AUTO:
        return
    if desk().orders.broker(trader_of(owner)).mode is TradingMode.LIVE:
        raise PermissionDenied(message)


def whole_quantity(value: Decimal, field: str = "quantity") -> int:
    if value != value.to_integral_value():
        raise InvalidRequest(
            f"Fractional quantity ({value}) is not allowed for non-crypto exchanges.",
            errors={field: [f"Fractional quantity ({value}) is not allowed"]},
        )
    return int(value)


def order_request(parsed: Parsed) -> OrderRequest:
    return OrderRequest(
        symbol=parsed["symbol"].upper(),
        exchange=parsed["exchange"],
        side=Side(parsed["action"]),
        quantity=whole_quantity(parsed["quantity"]),
        product=Product(parsed["product"]),
        price_type=PriceType(parsed["pricetype"]),
        price=parsed["price"],
        trigger_price=parsed["trigger_price"],
        disclosed_quantity=parsed["disclosed_quantity"],
        strategy=parsed["strategy"] or "",
        algo_id=parsed["algo_id"] or "",
    )


def with_mode(payload: dict[str, Any], mode: TradingMode, parsed: Parsed) -> dict[str, Any]:
    """Every order/account response says who served it (API.md D6)."""
    return success({**payload, "mode": mode.value}, parsed)


class OrderResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("order_rate_limit")]


class InfoResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


@ns.route("/placeorder")
class PlaceOrder(OrderResource):
    @ns.expect(request_model(ns, "PlaceOrderRequest", PLACE_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Place an order. Success means the broker accepted it; check /orderstatus for fills."""
        owner, parsed = authenticated_request(PLACE_SCHEMA)
        request = order_request(parsed)
        if owner.order_mode == SEMI_AUTO:
            desk().orders.check(request)  # a malformed order is refused now, never queued
            held = queued(owner, SingleOrder(request), parsed)
            if held is not None:
                return held
        outcome = desk().orders.place(trader_of(owner), request)
        return with_mode({"orderid": outcome.report.order_id}, outcome.mode, parsed)


@ns.route("/modifyorder")
class ModifyOrder(OrderResource):
    @ns.expect(request_model(ns, "ModifyOrderRequest", MODIFY_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Change the quantity, price or type of an open order."""
        owner, parsed = authenticated_request(MODIFY_SCHEMA)
        refuse_in_semi_auto(
            owner,
            "Modify order operation is not allowed in Semi-Auto mode. "
            "Please switch to Auto mode to modify orders.",
        )
        request = ModifyRequest(
            order_id=parsed["orderid"],
            quantity=whole_quantity(parsed["quantity"]),
            price_type=PriceType(parsed["pricetype"]),
            price=parsed["price"],
            trigger_price=parsed["trigger_price"],
            disclosed_quantity=parsed["disclosed_quantity"],
        )
        outcome = desk().orders.modify(trader_of(owner), request)
        return with_mode({"orderid": outcome.report.order_id}, outcome.mode, parsed)


@ns.route("/cancelorder")
class CancelOrder(OrderResource):
    @ns.expect(request_model(ns, "CancelOrderRequest", ORDER_ID_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Cancel one open order."""
        owner, parsed = authenticated_request(ORDER_ID_SCHEMA)
        refuse_in_semi_auto(
            owner,
            "Cancel order operation is not allowed in Semi-Auto mode. "
            "Please switch to Auto mode to cancel orders.",
        )
        outcome = desk().orders.cancel(trader_of(owner), parsed["orderid"])
        return with_mode({"orderid": outcome.report.order_id}, outcome.mode, parsed)


@ns.route("/cancelallorder")
class CancelAllOrders(InfoResource):
    @ns.expect(request_model(ns, "CancelAllRequest", STRATEGY_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Cancel every open and trigger-pending order of the account."""
        owner, parsed = authenticated_request(STRATEGY_SCHEMA)
        refuse_in_semi_auto(
            owner,
            "Cancel all orders operation is not allowed in Semi-Auto mode. "
            "Please switch to Auto mode to cancel orders.",
        )
        cancelled, failed, mode = desk().orders.cancel_all(trader_of(owner))
        message = f"Canceled {len(cancelled)} orders. Failed to cancel {len(failed)} orders."
        if not cancelled and not failed:
            message = "No open orders to cancel"
        payload = {
            "message": message,
            "canceled_orders": cancelled,
            "failed_cancellations": [{"orderid": oid, "reason": why} for oid, why in failed],
        }
        return with_mode(payload, mode, parsed)


@ns.route("/closeposition")
class ClosePosition(InfoResource):
    @ns.expect(request_model(ns, "ClosePositionRequest", CLOSE_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Square off open positions with MARKET orders (optionally one symbol/exchange/product)."""
        owner, parsed = authenticated_request(CLOSE_SCHEMA)
        refuse_in_semi_auto(
            owner,
            "Close position operation is not allowed in Semi-Auto mode. "
            "Please switch to Auto mode to close positions.",
        )
        trader = trader_of(owner)
        pipeline = desk().orders
        broker = pipeline.broker(trader)
        positions = open_positions(
            broker.positions(), parsed["symbol"], parsed["exchange"], parsed["product"]
        )
        results = [
            _close_entry(result)
            for result in close_positions(pipeline, desk().market, trader, positions)
        ]
        closed = sum(1 for result in results if result["status"] == "success")
        failed = len(results) - closed
        message = f"Closed {closed} positions" + (f"; {failed} failed" if failed else "")
        if not results:
            message = "No open positions to close"
        payload = {
            "message": message,
            "closed_positions": closed,
            "failed_closures": failed,
            "results": results,
        }
        return with_mode(payload, broker.mode, parsed)


def _close_entry(result: CloseResult) -> dict[str, Any]:
    position = result.position
    entry: dict[str, Any] = {
        "symbol": position.symbol,
        "exchange": position.exchange,
        "product": position.product.value,
        "quantity": abs(position.net_quantity),
    }
    if result.error is not None:
        return {
            **entry,
            "status": "error",
            "message": result.error,
            "orderids": [*result.order_ids],
        }
    return {**entry, "status": "success", "orderids": [*result.order_ids]}


@ns.route("/orderstatus")
class OrderStatus(InfoResource):
    @ns.expect(request_model(ns, "OrderStatusRequest", ORDER_ID_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """One order's status, fills and average price."""
        owner, parsed = authenticated_request(ORDER_ID_SCHEMA)
        broker = desk().orders.broker(trader_of(owner))
        report = broker.order(parsed["orderid"])
        return with_mode({"data": order_row(report)}, broker.mode, parsed)


@ns.route("/openposition")
class OpenPosition(InfoResource):
    @ns.expect(request_model(ns, "OpenPositionRequest", OPEN_POSITION_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """The net quantity held in one symbol and product (0 when flat)."""
        owner, parsed = authenticated_request(OPEN_POSITION_SCHEMA)
        broker = desk().orders.broker(trader_of(owner))
        symbol, exchange = parsed["symbol"].upper(), parsed["exchange"]
        quantity = sum(
            position.net_quantity
            for position in broker.positions()
            if (position.symbol, position.exchange, position.product.value)
            == (symbol, exchange, parsed["product"])
        )
        return with_mode({"quantity": quantity}, broker.mode, parsed)


api.add_namespace(ns)
