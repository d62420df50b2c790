"""Domain objects to the JSON shapes of API.md (numbers rounded as D12 says).

The REST API and the pages' live updates (`blueprints/realtime.py`) share these shapes, so a
page shows the same numbers whether it asked or was told.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.clock import IST, to_ist
from services.market.model import Candle, Depth, Instrument, Quote
from services.orders.model import (
    ChargeBreakdown,
    FundsReport,
    HoldingReport,
    OrderReport,
    PositionReport,
    PriceType,
    TradeReport,
)

_CENT = Decimal("0.01")


def money(value: Decimal) -> float:
    """A price or amount as a JSON number with at most two decimals."""
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


def percent(part: Decimal, whole: Decimal) -> float:
    return round(float(part / whole * 100), 2) if whole else 0.0


def expiry_text(day: date | None) -> str:
    """`DD-MMM-YY` upper-case, as the master contract shows expiries (API.md 3)."""
    return day.strftime("%d-%b-%y").upper() if day else ""


def instrument_row(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "brsymbol": instrument.brsymbol or instrument.symbol,
        "name": instrument.name,
        "exchange": instrument.exchange.value,
        "brexchange": instrument.brexchange or instrument.exchange.value,
        "token": instrument.token,
        "expiry": expiry_text(instrument.expiry),
        "strike": float(instrument.strike) if instrument.strike is not None else 0.0,
        "lotsize": instrument.lot_size,
        "instrumenttype": instrument.instrument_type.value,
        "tick_size": float(instrument.tick_size),
        "freeze_qty": instrument.freeze_qty,
    }


def quote_data(quote: Quote) -> dict[str, Any]:
    return {
        "open": money(quote.open),
        "high": money(quote.high),
        "low": money(quote.low),
        "ltp": money(quote.ltp),
        "ask": money(quote.ask),
        "bid": money(quote.bid),
        "prev_close": money(quote.prev_close),
        "volume": quote.volume,
        "oi": quote.oi,
    }


def depth_data(depth: Depth, levels: int = 5) -> dict[str, Any]:
    def side(rows: Any) -> list[dict[str, Any]]:
        out = [{"price": money(row.price), "quantity": row.quantity} for row in rows[:levels]]
        # Always five levels, padded with zeros (API.md 4.4).
        return out + [{"price": 0.0, "quantity": 0}] * (levels - len(out))

    quote = depth.quote
    return {
        "open": money(quote.open),
        "high": money(quote.high),
        "low": money(quote.low),
        "ltp": money(quote.ltp),
        "ltq": quote.last_quantity,
        "prev_close": money(quote.prev_close),
        "volume": quote.volume,
        "oi": quote.oi,
        "totalbuyqty": depth.total_buy_quantity,
        "totalsellqty": depth.total_sell_quantity,
        "asks": side(depth.sell),
        "bids": side(depth.buy),
    }


def candle_timestamp(candle: Candle, daily: bool) -> int:
    """Epoch seconds: the bar's true open instant intraday; 00:00 UTC of the IST date for D."""
    if daily:
        day = candle.start.astimezone(IST).date()
        return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    return int(candle.start.timestamp())


def candle_row(candle: Candle, daily: bool) -> dict[str, Any]:
    return {
        "timestamp": candle_timestamp(candle, daily),
        "open": money(candle.open),
        "high": money(candle.high),
        "low": money(candle.low),
        "close": money(candle.close),
        "volume": candle.volume,
        "oi": candle.oi,
    }


def _clock_text(instant: datetime) -> str:
    return to_ist(instant).strftime("%Y-%m-%d %H:%M:%S")


def order_row(report: OrderReport) -> dict[str, Any]:
    """One order as `orderbook` and `orderstatus` show it."""
    return {
        "action": report.side.value,
        "average_price": money(report.average_price),
        "exchange": report.exchange,
        "order_status": report.status.value,
        "orderid": report.order_id,
        "price": money(report.price) if report.price_type is not PriceType.MARKET else 0.0,
        "pricetype": report.price_type.value,
        "product": report.product.value,
        "quantity": report.quantity,
        "filled_quantity": report.filled_quantity,
        "pending_quantity": report.pending_quantity,
        "symbol": report.symbol,
        "strategy": report.strategy,
        "source": report.source,
        "algo_id": report.algo_id,
        "rejection_reason": report.rejection_reason,
        "timestamp": _clock_text(report.placed_at),
        "trigger_price": money(report.trigger_price),
    }


def charges_data(charges: ChargeBreakdown) -> dict[str, float]:
    """Every statutory and broker charge of a fill, itemised as the trade book shows them."""
    return {
        "brokerage": money(charges.brokerage),
        "stt": money(charges.stt),
        "exchange_charges": money(charges.exchange_charges),
        "sebi_fees": money(charges.sebi_fees),
        "stamp_duty": money(charges.stamp_duty),
        "gst": money(charges.gst),
        "dp_charges": money(charges.dp_charges),
    }


def trade_row(trade: TradeReport) -> dict[str, Any]:
    """One fill as `tradebook` shows it, charges itemised."""
    charges = trade.charges
    return {
        "action": trade.side.value,
        "symbol": trade.symbol,
        "exchange": trade.exchange,
        "orderid": trade.order_id,
        "tradeid": trade.trade_id,
        "product": trade.product.value,
        "quantity": trade.quantity,
        "average_price": money(trade.price),
        "timestamp": _clock_text(trade.traded_at),
        "trade_value": money(trade.value),
        "charges": charges_data(charges),
        "total_charges": money(charges.total),
    }


def position_row(position: PositionReport) -> dict[str, Any]:
    """One position as `positionbook` shows it."""
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
        "pnlpercent": percent(position.unrealized_pnl, invested),
        "unrealized_pnl": money(position.unrealized_pnl),
        "today_realized_pnl": money(position.realized_pnl),
        "total_pnl_today": money(total),
        "buy_quantity": position.buy_quantity,
        "sell_quantity": position.sell_quantity,
        "buy_value": money(position.buy_value),
        "sell_value": money(position.sell_value),
        "lot_size": position.lot_size,
    }


def positions_totals(positions: list[PositionReport]) -> dict[str, float]:
    """The P&L totals `positionbook` adds to its rows."""
    unrealized = sum((position.unrealized_pnl for position in positions), Decimal(0))
    realized = sum((position.realized_pnl for position in positions), Decimal(0))
    return {
        "total_pnl": money(unrealized + realized),
        "total_unrealized_pnl": money(unrealized),
        "total_today_realized_pnl": money(realized),
        "total_pnl_today": money(unrealized + realized),
    }


def holding_row(holding: HoldingReport) -> dict[str, Any]:
    """One settled holding as `holdings` shows it."""
    return {
        "symbol": holding.symbol,
        "exchange": holding.exchange,
        "product": "CNC",
        "quantity": holding.quantity,
        "average_price": money(holding.average_price),
        "ltp": money(holding.ltp),
        "pnl": money(holding.pnl),
        "pnlpercent": percent(holding.pnl, holding.invested),
    }


def holdings_statistics(holdings: list[HoldingReport]) -> dict[str, float]:
    value = sum((holding.market_value for holding in holdings), Decimal(0))
    invested = sum((holding.invested for holding in holdings), Decimal(0))
    return {
        "totalholdingvalue": money(value),
        "totalinvvalue": money(invested),
        "totalprofitandloss": money(value - invested),
        "totalpnlpercentage": percent(value - invested, invested),
    }


def funds_data(funds: FundsReport) -> dict[str, Any]:
    """The account as `funds` shows it."""
    return {
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
