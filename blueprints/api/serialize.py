"""Domain objects to the JSON shapes of API.md (numbers rounded as D12 says)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.clock import IST
from services.market.model import Candle, Depth, Instrument, Quote

_CENT = Decimal("0.01")


def money(value: Decimal) -> float:
    """A price or amount as a JSON number with at most two decimals."""
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


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
