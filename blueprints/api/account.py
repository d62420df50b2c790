"""The account: order book, trade book, positions, holdings, funds, analyzer (API.md 4.3, 4.8)."""

from __future__ import annotations

from typing import Any, ClassVar

from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.orders import trader_of, with_mode
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, request_model
from blueprints.api.serialize import (
    funds_data,
    holding_row,
    holdings_statistics,
    order_row,
    position_row,
    positions_totals,
    trade_row,
)
from broker.base import TradingMode, broker_class
from services.action_center import SEMI_AUTO
from services.errors import InvalidRequest, PermissionDenied
from services.orders.model import OrderStatus, Side

ns = Namespace("account", description="Books, funds and the analyzer", path="/")
EMPTY: dict[str, Field] = {}
TOGGLE_SCHEMA = {
    "mode": Field(
        "bool",
        required=True,
        example=True,
        description="true = analyze (sandbox), false = live broker",
    )
}


class AccountResource(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]


@ns.route("/orderbook")
class OrderBook(AccountResource):
    @ns.expect(request_model(ns, "OrderBookRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Today's orders, newest first, with counts by status."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        orders = broker.orders()
        statuses = [order.status for order in orders]
        statistics = {
            "total_buy_orders": sum(1 for order in orders if order.side is Side.BUY),
            "total_sell_orders": sum(1 for order in orders if order.side is Side.SELL),
            "total_completed_orders": statuses.count(OrderStatus.COMPLETE),
            "total_open_orders": sum(1 for status in statuses if status.is_live),
            "total_rejected_orders": statuses.count(OrderStatus.REJECTED),
        }
        data = {"orders": [order_row(order) for order in orders], "statistics": statistics}
        return with_mode({"data": data}, broker.mode, parsed)


@ns.route("/tradebook")
class TradeBook(AccountResource):
    @ns.expect(request_model(ns, "TradeBookRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Today's fills, each with its charges itemised."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        rows = [trade_row(trade) for trade in broker.trades()]
        return with_mode({"data": rows}, broker.mode, parsed)


@ns.route("/positionbook")
class PositionBook(AccountResource):
    @ns.expect(request_model(ns, "PositionBookRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Open and today's closed positions with live P&L."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        positions = broker.positions()
        payload = {"data": [position_row(p) for p in positions], **positions_totals(positions)}
        return with_mode(payload, broker.mode, parsed)


@ns.route("/pnl/symbols")
class PnlBySymbol(AccountResource):
    @ns.expect(request_model(ns, "PnlSymbolsRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """P&L per symbol (analyze mode only)."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        if broker.mode is not TradingMode.ANALYZE:
            raise InvalidRequest("P&L by symbol is available in analyze (sandbox) mode only.")
        positions = broker.positions()
        rows = [
            {
                key: row[key]
                for key in (
                    "symbol",
                    "exchange",
                    "product",
                    "quantity",
                    "pnl",
                    "unrealized_pnl",
                    "today_realized_pnl",
                    "total_pnl_today",
                )
            }
            for row in map(position_row, positions)
        ]
        return with_mode({"data": rows, **positions_totals(positions)}, broker.mode, parsed)


@ns.route("/holdings")
class Holdings(AccountResource):
    @ns.expect(request_model(ns, "HoldingsRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Settled delivery holdings with P&L."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        holdings = broker.holdings()
        rows = [holding_row(holding) for holding in holdings]
        statistics = holdings_statistics(holdings)
        return with_mode(
            {"data": {"holdings": rows, "statistics": statistics}}, broker.mode, parsed
        )


@ns.route("/funds")
class Funds(AccountResource):
    @ns.expect(request_model(ns, "FundsRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Cash available to trade, margin in use, and realised/unrealised P&L."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        data = funds_data(broker.funds())
        return with_mode({"data": data}, broker.mode, parsed)


def _analyzer_data(broker_name: str, user_id: int) -> dict[str, Any]:
    analyze = broker_class(broker_name).mode is TradingMode.ANALYZE
    orders = desk().sandbox.orders(user_id) if analyze else []
    return {
        "analyze_mode": analyze,
        "mode": TradingMode.ANALYZE.value if analyze else TradingMode.LIVE.value,
        "total_logs": len(orders),
    }


@ns.route("/analyzer")
class Analyzer(AccountResource):
    @ns.expect(request_model(ns, "AnalyzerRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Whether orders go to the sandbox (analyze) or the live broker."""
        owner, parsed = authenticated_request(EMPTY)
        return success({"data": _analyzer_data(owner.broker, owner.user_id)}, parsed)


@ns.route("/analyzer/toggle")
class AnalyzerToggle(AccountResource):
    @ns.expect(request_model(ns, "AnalyzerToggleRequest", TOGGLE_SCHEMA), validate=False)
    def post(self) -> dict[str, Any]:
        """Switch between the sandbox and the live broker (API.md D7)."""
        owner, parsed = authenticated_request(TOGGLE_SCHEMA)
        if owner.order_mode == SEMI_AUTO:
            # SEBI's Research-Analyst rules: in semi-auto only the client, on the desk's own
            # pages, decides where orders go; an algorithm may not switch itself to live.
            raise PermissionDenied(
                "Operation analyzer/toggle is not allowed in Semi-Auto mode. This operation "
                "can only be performed by the client via the UI. Switch to Auto mode on the "
                "API key page to use it from the API."
            )
        if not parsed["mode"]:
            # No live broker adapter is connected to this account yet: stay in analyze mode.
            raise InvalidRequest(
                "No live broker is connected to this account, so it stays in analyze mode. "
                "Log in to a broker on the desk first.",
                errors={"mode": ["true (analyze) until a live broker is connected"]},
            )
        data = _analyzer_data(owner.broker, owner.user_id)
        data["message"] = "Analyzer mode switched to analyze"
        return success({"data": data}, parsed)


api.add_namespace(ns)
