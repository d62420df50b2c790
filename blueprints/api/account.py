"""The account: order book, trade book, positions, holdings, funds, analyzer (API.md 4.3, 4.8)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from flask_restx import Namespace, Resource

from blueprints import desk
from blueprints.api import api
from blueprints.api.orders import order_status_row, trader_of, with_mode
from blueprints.api.request import authenticated_request, limited, success
from blueprints.api.schema import Field, request_model
from blueprints.api.serialize import money
from broker.base import TradingMode, broker_class
from services.clock import to_ist
from services.errors import InvalidRequest
from services.orders.model import OrderStatus, PositionReport, Side

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


def _percent(part: Decimal, whole: Decimal) -> float:
    return round(float(part / whole * 100), 2) if whole else 0.0


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
        data = {"orders": [order_status_row(order) for order in orders], "statistics": statistics}
        return with_mode({"data": data}, broker.mode, parsed)


@ns.route("/tradebook")
class TradeBook(AccountResource):
    @ns.expect(request_model(ns, "TradeBookRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Today's fills, each with its charges itemised."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        rows = []
        for trade in broker.trades():
            charges = trade.charges
            rows.append(
                {
                    "action": trade.side.value,
                    "symbol": trade.symbol,
                    "exchange": trade.exchange,
                    "orderid": trade.order_id,
                    "tradeid": trade.trade_id,
                    "product": trade.product.value,
                    "quantity": trade.quantity,
                    "average_price": money(trade.price),
                    "timestamp": to_ist(trade.traded_at).strftime("%Y-%m-%d %H:%M:%S"),
                    "trade_value": money(trade.value),
                    "charges": {
                        "brokerage": money(charges.brokerage),
                        "stt": money(charges.stt),
                        "exchange_charges": money(charges.exchange_charges),
                        "sebi_fees": money(charges.sebi_fees),
                        "stamp_duty": money(charges.stamp_duty),
                        "gst": money(charges.gst),
                        "dp_charges": money(charges.dp_charges),
                    },
                    "total_charges": money(charges.total),
                }
            )
        return with_mode({"data": rows}, broker.mode, parsed)


def _position_row(position: PositionReport) -> dict[str, Any]:
    invested = position.average_price * abs(position.net_quantity)
    total = position.realized_pnl + position.unrealized_pnl
    return {
        "symbol": position.symbol,
        "exchange": position.exchange,
        "product": position.product.value,
        "quantity": position.net_quantity,
        "average_price": money(position.average_price),
        "ltp": money(position.ltp),
        "pnl": money(total),
        "pnlpercent": _percent(position.unrealized_pnl, invested),
        "unrealized_pnl": money(position.unrealized_pnl),
        "today_realized_pnl": money(position.realized_pnl),
        "total_pnl_today": money(total),
        "buy_quantity": position.buy_quantity,
        "sell_quantity": position.sell_quantity,
        "buy_value": money(position.buy_value),
        "sell_value": money(position.sell_value),
        "lot_size": position.lot_size,
    }


def _totals(positions: list[PositionReport]) -> dict[str, float]:
    unrealized = sum((position.unrealized_pnl for position in positions), Decimal(0))
    realized = sum((position.realized_pnl for position in positions), Decimal(0))
    return {
        "total_pnl": money(unrealized + realized),
        "total_unrealized_pnl": money(unrealized),
        "total_today_realized_pnl": money(realized),
        "total_pnl_today": money(unrealized + realized),
    }


@ns.route("/positionbook")
class PositionBook(AccountResource):
    @ns.expect(request_model(ns, "PositionBookRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Open and today's closed positions with live P&L."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        positions = broker.positions()
        payload = {"data": [_position_row(p) for p in positions], **_totals(positions)}
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
            for row in map(_position_row, positions)
        ]
        return with_mode({"data": rows, **_totals(positions)}, broker.mode, parsed)


@ns.route("/holdings")
class Holdings(AccountResource):
    @ns.expect(request_model(ns, "HoldingsRequest", EMPTY), validate=False)
    def post(self) -> dict[str, Any]:
        """Settled delivery holdings with P&L."""
        owner, parsed = authenticated_request(EMPTY)
        broker = desk().orders.broker(trader_of(owner))
        holdings = broker.holdings()
        rows = [
            {
                "symbol": holding.symbol,
                "exchange": holding.exchange,
                "product": "CNC",
                "quantity": holding.quantity,
                "average_price": money(holding.average_price),
                "ltp": money(holding.ltp),
                "pnl": money(holding.pnl),
                "pnlpercent": _percent(holding.pnl, holding.invested),
            }
            for holding in holdings
        ]
        value = sum((holding.market_value for holding in holdings), Decimal(0))
        invested = sum((holding.invested for holding in holdings), Decimal(0))
        statistics = {
            "totalholdingvalue": money(value),
            "totalinvvalue": money(invested),
            "totalprofitandloss": money(value - invested),
            "totalpnlpercentage": _percent(value - invested, invested),
        }
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
        funds = broker.funds()
        data = {
            "availablecash": money(funds.available_cash),
            "collateral": money(funds.collateral),
            "m2mrealized": money(funds.realized_pnl),
            "m2munrealized": money(funds.unrealized_pnl),
            "utiliseddebits": money(funds.utilised),
            "total_realized_pnl": money(funds.realized_pnl),
            "today_realized_pnl": money(funds.today_realized_pnl),
            "totalpnl": money(funds.realized_pnl + funds.unrealized_pnl),
            "charges": money(funds.charges),
            "starting_capital": money(funds.starting_capital),
            "reset_count": funds.reset_count,
            "last_reset": to_ist(funds.last_reset).isoformat() if funds.last_reset else None,
        }
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
