"""The order book page: today's orders, live, with Modify, Cancel and Cancel all."""

from __future__ import annotations

from typing import Any

from flask import render_template

from blueprints import desk, login_required
from blueprints.api.serialize import order_row
from blueprints.trading import (
    ActionResult,
    current_trader,
    form_choice,
    form_price,
    form_quantity,
    read_or_alert,
    run_action,
    trader_broker,
    trading_blueprint,
)
from services.orders.model import ModifyRequest, OrderReport, PriceType

bp = trading_blueprint("orderbook", __name__)

PRICE_TYPES = tuple(price_type.value for price_type in PriceType)


@bp.get("/orders")
@login_required
def index() -> str:
    problems: list[str] = []
    orders: list[OrderReport] = read_or_alert(lambda: trader_broker().orders(), [], problems)
    return render_template(
        "trading/orders.html",
        orders=[order_row(order) for order in orders],
        open_count=sum(1 for order in orders if order.status.is_live),
        price_types=PRICE_TYPES,
        problems=problems,
    )


@bp.post("/orders/<order_id>/cancel")
@login_required
def cancel(order_id: str) -> Any:
    def action() -> ActionResult:
        report = desk().orders.cancel(current_trader(), order_id).report
        return f"Order {report.order_id} cancelled", {"order": order_row(report)}

    return run_action("orderbook.index", action)


@bp.post("/orders/<order_id>/modify")
@login_required
def modify(order_id: str) -> Any:
    def action() -> ActionResult:
        request = ModifyRequest(
            order_id=order_id,
            quantity=form_quantity(),
            price_type=PriceType(form_choice("pricetype", "Price type", PRICE_TYPES)),
            price=form_price("price", "Price"),
            trigger_price=form_price("trigger_price", "Trigger price"),
        )
        report = desk().orders.modify(current_trader(), request).report
        return f"Order {report.order_id} modified", {"order": order_row(report)}

    return run_action("orderbook.index", action)


@bp.post("/orders/cancel-all")
@login_required
def cancel_all() -> Any:
    def action() -> ActionResult:
        trader = current_trader()
        cancelled, failed, _ = desk().orders.cancel_all(trader)
        if not cancelled and not failed:
            message = "No open orders to cancel"
        else:
            message = f"Cancelled {len(cancelled)} orders" + (
                f"; {len(failed)} could not be cancelled: "
                + "; ".join(f"{order_id}: {why}" for order_id, why in failed)
                if failed
                else ""
            )
        broker = trader_broker(trader)
        orders = [order_row(broker.order(order_id)) for order_id in cancelled]
        return message, {"orders": orders}

    return run_action("orderbook.index", action)
