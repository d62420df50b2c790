"""Orders built from orders: smart, basket, split, options (single and multi-leg), margin.

Each is a thin resource over the order pipeline (API.md 4.1, 4.3 and decisions D9-D10).
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, ClassVar

from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.orders import (
    ACTION,
    ALGO_ID,
    EXCHANGE,
    PLACE_SCHEMA,
    PRICE,
    PRICE_TYPES,
    PRODUCTS,
    STRATEGY,
    SYMBOL,
    order_request,
    queued,
    trader_of,
    whole_quantity,
    with_mode,
)
from blueprints.api.request import authenticated_request, limited
from blueprints.api.schema import Field, Parsed, request_model
from blueprints.api.serialize import money
from broker.base import TradingMode
from services.action_center import SEMI_AUTO
from services.errors import DalalError, InvalidRequest
from services.market.analytics import OptionsAnalytics
from services.market.model import Instrument
from services.orders.intents import (
    Basket,
    LegResult,
    SingleOrder,
    SmartOrder,
    buys_first,
    place_split,
    split_quantities,
)
from services.orders.model import OrderRequest, PriceType, Product, Side
from services.orders.pipeline import Trader
from services.sandbox.margins import (
    BasketItem,
    MarginRequirement,
    MarginSettings,
    basket_margin,
)

ns = Namespace("order tools", description="Smart, basket, split and options orders", path="/")

SMART_SCHEMA = {
    **PLACE_SCHEMA,
    "quantity": Field("decimal", required=True, minimum=0, example=1),
    "position_size": Field(
        "decimal", required=True, example=10, description="The net position wanted (signed units)"
    ),
}
LEG = {
    "exchange": EXCHANGE,
    "symbol": SYMBOL,
    "action": ACTION,
    "quantity": Field("decimal", required=True, minimum=1, example=1),
    "pricetype": Field("str", default="MARKET", choices=PRICE_TYPES, case_insensitive=True),
    "product": Field("str", default="MIS", choices=PRODUCTS, case_insensitive=True),
    "price": PRICE,
    "trigger_price": PRICE,
    "disclosed_quantity": Field("int", default=0, minimum=0),
}
BASKET_SCHEMA = {
    "strategy": STRATEGY,
    "algo_id": ALGO_ID,
    "orders": Field("list", required=True, items=LEG, min_items=1, max_items=100),
}
SPLIT_SCHEMA = {**PLACE_SCHEMA, "splitsize": Field("int", required=True, minimum=1, example=20)}
OPTION_LEG = {
    "offset": Field("str", required=True, example="ATM", description="ATM, ITMn or OTMn"),
    "option_type": Field("str", required=True, choices=("CE", "PE"), case_insensitive=True),
    "action": ACTION,
    "quantity": Field("decimal", required=True, minimum=1, example=65),
    "splitsize": Field("int", default=0, minimum=0),
    "expiry_date": Field("str", example="29DEC26", description="Per-leg expiry (DDMMMYY)"),
    "pricetype": Field("str", default="MARKET", choices=PRICE_TYPES, case_insensitive=True),
    "product": Field("str", default="MIS", choices=("MIS", "NRML"), case_insensitive=True),
    "price": PRICE,
    "trigger_price": PRICE,
    "disclosed_quantity": Field("int", default=0, minimum=0),
}
OPTIONS_ORDER_SCHEMA = {
    "strategy": STRATEGY,
    "algo_id": ALGO_ID,
    "underlying": Field("str", required=True, example="NIFTY"),
    "exchange": Field("str", required=True, example="NSE_INDEX"),
    "expiry_date": Field("str", example="29DEC26"),
    "strike_int": Field("decimal", minimum=1, example=50),
    **{name: spec for name, spec in OPTION_LEG.items() if name != "expiry_date"},
}
MULTI_SCHEMA = {
    "strategy": STRATEGY,
    "algo_id": ALGO_ID,
    "underlying": Field("str", required=True, example="NIFTY"),
    "exchange": Field("str", required=True, example="NSE_INDEX"),
    "expiry_date": Field("str", example="29DEC26"),
    "strike_int": Field("decimal", minimum=1, example=50),
    "legs": Field("list", required=True, items=OPTION_LEG, min_items=1, max_items=20),
}
MARGIN_ITEM = {
    "symbol": SYMBOL,
    "exchange": EXCHANGE,
    "action": ACTION,
    "quantity": Field("decimal", required=True, minimum=1, example=65),
    "product": Field("str", required=True, choices=PRODUCTS, case_insensitive=True),
    "pricetype": Field("str", required=True, choices=PRICE_TYPES, case_insensitive=True),
    "price": PRICE,
    "trigger_price": PRICE,
}
MARGIN_SCHEMA = {
    "positions": Field("list", required=True, items=MARGIN_ITEM, min_items=1, max_items=50)
}


class ToolResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("order_rate_limit")]


class SmartResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("smart_order_rate_limit")]


class ApiClassResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


def leg_request(leg: dict[str, Any], strategy: str, algo_id: str = "") -> OrderRequest:
    return OrderRequest(
        symbol=leg["symbol"].upper(),
        exchange=leg["exchange"],
        side=Side(leg["action"]),
        quantity=whole_quantity(leg["quantity"]),
        product=Product(leg["product"]),
        price_type=PriceType(leg["pricetype"]),
        price=leg["price"],
        trigger_price=leg["trigger_price"],
        disclosed_quantity=leg["disclosed_quantity"],
        strategy=strategy,
        algo_id=algo_id,
    )


def leg_outcome(result: LegResult) -> dict[str, Any]:
    """One placed order as the API reports it inside a batch."""
    if result.error is not None:
        return {"status": "error", "message": result.error}
    return {"status": "success", "orderid": result.order_id}


def split_results(results: list[LegResult]) -> list[dict[str, Any]]:
    return [
        {"order_num": number, "quantity": result.quantity, **leg_outcome(result)}
        for number, result in enumerate(results, start=1)
    ]


@ns.route("/placesmartorder")
class PlaceSmartOrder(SmartResource):
    @ns.expect(request_model(ns, "SmartOrderRequest", SMART_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Trade only the difference between the current and the wanted net position."""
        owner, parsed = authenticated_request(SMART_SCHEMA)
        request = order_request(parsed)
        target = whole_quantity(parsed["position_size"], "position_size")
        if owner.order_mode == SEMI_AUTO:
            # What it would trade depends on the position at approval; check the contract
            # and the size now (the target, or a fresh trade's quantity).
            size = abs(target) or request.quantity
            if size:
                desk().orders.check(replace(request, quantity=size))
            else:
                desk().market.instrument(request.symbol, request.exchange)
            held = queued(owner, SmartOrder(request, target), parsed)
            if held is not None:
                return held
        trader = trader_of(owner)
        outcome = desk().orders.smart.place(trader, request, target)
        mode = desk().orders.broker(trader).mode
        if outcome.report is None:
            return with_mode({"message": outcome.message}, mode, parsed)
        return with_mode({"orderid": outcome.report.order_id}, mode, parsed)


@ns.route("/basketorder")
class BasketOrder(ApiClassResource):
    @ns.expect(request_model(ns, "BasketOrderRequest", BASKET_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Validate every leg, then place BUY legs before SELL legs; results in request order."""
        owner, parsed = authenticated_request(BASKET_SCHEMA)
        strategy, algo_id = parsed["strategy"] or "", parsed["algo_id"] or ""
        requests = [leg_request(leg, strategy, algo_id) for leg in parsed["orders"]]
        pipeline = desk().orders
        for index, request in enumerate(requests):
            try:
                pipeline.check(request)
            except InvalidRequest as e:
                field = next(iter(e.errors), "order")
                raise InvalidRequest(
                    f"Basket leg {index + 1} ({request.symbol}): {e.message} Nothing was placed.",
                    errors={f"orders[{index}].{field}": [e.message]},
                ) from None
        basket = Basket(tuple(SingleOrder(request) for request in requests))
        held = queued(owner, basket, parsed)
        if held is not None:
            return held
        trader = trader_of(owner)
        results = [
            {
                "symbol": request.symbol,
                "exchange": request.exchange,
                "product": request.product.value,
                **leg_outcome(placed[0]),
            }
            for request, placed in zip(requests, basket.execute_legs(desk(), trader), strict=True)
        ]
        return with_mode({"results": results}, pipeline.broker(trader).mode, parsed)


def vetted_split(request: OrderRequest, size: int) -> SingleOrder:
    """A split order checked now (count of children, the first child against the master)."""
    first = split_quantities(request.quantity, size)[0]
    desk().orders.check(replace(request, quantity=first))
    return SingleOrder(request, size)


@ns.route("/splitorder")
class SplitOrder(ApiClassResource):
    @ns.expect(request_model(ns, "SplitOrderRequest", SPLIT_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Place `quantity` as child orders of `splitsize` (e.g. to stay under the freeze limit)."""
        owner, parsed = authenticated_request(SPLIT_SCHEMA)
        request = order_request(parsed)
        split = vetted_split(request, parsed["splitsize"])
        held = queued(owner, split, parsed)
        if held is not None:
            return held
        trader = trader_of(owner)
        results = split_results(place_split(desk(), trader, request, parsed["splitsize"]))
        payload = {
            "total_quantity": request.quantity,
            "split_size": parsed["splitsize"],
            "results": results,
        }
        return with_mode(payload, desk().orders.broker(trader).mode, parsed)


def option_request(
    option: Instrument, leg: dict[str, Any], strategy: str, algo_id: str = ""
) -> OrderRequest:
    return OrderRequest(
        symbol=option.symbol,
        exchange=option.exchange.value,
        side=Side(leg["action"]),
        quantity=whole_quantity(leg["quantity"]),
        product=Product(leg["product"]),
        price_type=PriceType(leg["pricetype"]),
        price=leg["price"],
        trigger_price=leg["trigger_price"],
        disclosed_quantity=leg["disclosed_quantity"],
        strategy=strategy,
        algo_id=algo_id,
    )


@ns.route("/optionsorder")
class OptionsOrder(ToolResource):
    @ns.expect(request_model(ns, "OptionsOrderRequest", OPTIONS_ORDER_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Resolve ATM/ITMn/OTMn against the underlying's price and place that option."""
        owner, parsed = authenticated_request(OPTIONS_ORDER_SCHEMA)
        pick = OptionsAnalytics(desk().market).pick(
            parsed["underlying"],
            parsed["exchange"],
            parsed["expiry_date"],
            parsed["offset"],
            parsed["option_type"],
            parsed["strike_int"],
        )
        request = option_request(
            pick.option, parsed.values, parsed["strategy"] or "", parsed["algo_id"] or ""
        )
        if owner.order_mode == SEMI_AUTO:
            # The contract is resolved now: the trader approves the strike they see.
            size = parsed["splitsize"]
            intent = vetted_split(request, size) if size else SingleOrder(request)
            if not size:
                desk().orders.check(request)
            held = queued(owner, intent, parsed)
            if held is not None:
                return held
        trader = trader_of(owner)
        resolved = {
            "symbol": pick.option.symbol,
            "exchange": pick.option.exchange.value,
            "underlying": pick.underlying.name,
            "underlying_ltp": money(pick.underlying.ltp),
            "offset": pick.offset,
            "option_type": pick.option.instrument_type.value,
        }
        mode = desk().orders.broker(trader).mode
        if parsed["splitsize"]:
            results = split_results(place_split(desk(), trader, request, parsed["splitsize"]))
            payload = {
                **resolved,
                "total_quantity": request.quantity,
                "split_size": parsed["splitsize"],
                "results": results,
            }
            return with_mode(payload, mode, parsed)
        outcome = desk().orders.place(trader, request)
        return with_mode({"orderid": outcome.report.order_id, **resolved}, mode, parsed)


@ns.route("/optionsmultiorder")
class OptionsMultiOrder(ToolResource):
    @ns.expect(request_model(ns, "OptionsMultiOrderRequest", MULTI_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Several option legs off one underlying snapshot; BUY legs go before SELL legs."""
        owner, parsed = authenticated_request(MULTI_SCHEMA)
        analytics = OptionsAnalytics(desk().market)
        base = analytics.underlying(
            parsed["underlying"],
            parsed["exchange"],
            parsed["expiry_date"] or _first_leg_expiry(parsed),
        )
        legs = parsed["legs"]
        if owner.order_mode == SEMI_AUTO:
            # Every leg resolved and checked now (any failure refuses the whole order), so
            # the trader approves the strikes they see.
            orders = []
            for index, leg in enumerate(legs):
                try:
                    request = _leg_request(analytics, base, leg, parsed)
                    size = leg["splitsize"]
                    orders.append(vetted_split(request, size) if size else SingleOrder(request))
                    if not size:
                        desk().orders.check(request)
                except DalalError as e:
                    raise InvalidRequest(
                        f"Leg {index + 1}: {e.message} Nothing was queued.",
                        errors={f"legs[{index}]": [e.message]},
                    ) from None
            held = queued(owner, Basket(tuple(orders)), parsed)
            if held is not None:
                return held
        trader = trader_of(owner)
        results: list[dict[str, Any]] = [{} for _ in legs]
        for index in buys_first([Side(leg["action"]) for leg in legs]):
            results[index] = _multi_leg(analytics, base, legs[index], index, parsed, trader)
        mode = desk().orders.broker(trader).mode
        payload = {"underlying": base.name, "underlying_ltp": money(base.ltp), "results": results}
        return with_mode(payload, mode, parsed)


def _first_leg_expiry(parsed: Parsed) -> str | None:
    return next((leg["expiry_date"] for leg in parsed["legs"] if leg["expiry_date"]), None)


def _leg_request(
    analytics: OptionsAnalytics, base: Any, leg: dict[str, Any], parsed: Parsed
) -> OrderRequest:
    """The option one leg asks for (ATM/ITMn/OTMn of its expiry), as an order."""
    resolved = base
    if leg["expiry_date"]:
        # A calendar or diagonal leg: its own expiry, the same underlying price.
        expiry = analytics.underlying(base.name, parsed["exchange"], leg["expiry_date"]).expiry
        resolved = replace(base, expiry=expiry)
    pick = analytics.pick_for(resolved, leg["offset"], leg["option_type"], parsed["strike_int"])
    return option_request(pick.option, leg, parsed["strategy"] or "", parsed["algo_id"] or "")


def _multi_leg(
    analytics: OptionsAnalytics,
    base: Any,
    leg: dict[str, Any],
    index: int,
    parsed: Parsed,
    trader: Trader,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "leg": index + 1,
        "action": leg["action"],
        "offset": leg["offset"],
        "option_type": leg["option_type"],
    }
    try:
        request = _leg_request(analytics, base, leg, parsed)
        entry["symbol"] = request.symbol
        if leg["splitsize"]:
            placed = place_split(desk(), trader, request, leg["splitsize"])
            return {**entry, "results": split_results(placed), "status": "success"}
        outcome = desk().orders.place(trader, request)
        return {
            **entry,
            "status": "success",
            "orderid": outcome.report.order_id,
            "mode": outcome.mode.value,
        }
    except DalalError as e:
        return {**entry, "status": "error", "message": e.message}


def margin_item(position: dict[str, Any]) -> BasketItem:
    """One parsed MARGIN_ITEM as the margin model takes it (price 0: at the last price)."""
    market = desk().market
    instrument = market.instrument(position["symbol"], position["exchange"])
    quote = market.source.quote(instrument)
    underlying = market.master.underlying_of(instrument)
    underlying_price = market.source.quote(underlying).ltp if underlying else quote.ltp
    price = position["price"] if position["price"] > 0 else quote.ltp
    return (
        instrument,
        Product(position["product"]),
        Side(position["action"]),
        whole_quantity(position["quantity"]),
        price,
        underlying_price,
    )


def margin_required(positions: list[dict[str, Any]]) -> MarginRequirement:
    """What the sandbox would block for these orders (the API's /margin and the order ticket)."""
    items = [margin_item(position) for position in positions]
    try:
        # Leg by leg, no spread credit: the same figure the engine blocks for these orders.
        return basket_margin(items, MarginSettings(hedge_benefit=False))
    except ValueError as e:
        raise InvalidRequest(f"Cannot compute margin: {e}") from None


@ns.route("/margin")
class Margin(ApiClassResource):
    @ns.expect(request_model(ns, "MarginRequest", MARGIN_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """The margin a basket would block in the sandbox (the engine's own margin model)."""
        _owner, parsed = authenticated_request(MARGIN_SCHEMA)
        required = margin_required(parsed["positions"])
        data = {
            "total_margin_required": money(required.total),
            "span_margin": money(required.span),
            "exposure_margin": money(required.exposure),
            "premium": money(required.premium),
            "margin_benefit": money(Decimal(0)),
        }
        return with_mode({"data": data}, TradingMode.ANALYZE, parsed)


api.add_namespace(ns)
