"""Kite Connect's fields and the common model, both ways.

Every price the SDK hands over is a float parsed from Kite's JSON; it becomes a Decimal through
its shortest text (`Decimal(str(801.35)) == Decimal("801.35")`), never by binary expansion.
Kite's timestamps are IST wall-clock times ("2025-12-01 09:15:02", or naive datetimes the SDK
parsed from them); they become aware IST datetimes here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from broker.zerodha.symbols import money
from services.clock import IST
from services.market.model import Candle, Depth, DepthLevel, Exchange, Instrument, Interval, Quote
from services.orders.model import (
    FundsReport,
    HoldingReport,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    PositionReport,
    PriceType,
    Product,
    Side,
    TradeReport,
    Validity,
)

type Namer = Callable[[str, str], tuple[str, str]]  # (Kite exchange, tradingsymbol) -> Dalal's

VARIETY = "regular"  # Dalal places plain orders; AMO, cover and iceberg orders are not offered

PRODUCTS_TO_KITE = {Product.CNC: "CNC", Product.NRML: "NRML", Product.MIS: "MIS"}
# Kite's other products, as the nearest Dalal one: cover and bracket orders are intraday,
# margin trading (MTF) is a delivery position.
PRODUCTS_FROM_KITE = {
    "CNC": Product.CNC, "NRML": Product.NRML, "MIS": Product.MIS,
    "CO": Product.MIS, "BO": Product.MIS, "MTF": Product.CNC,
}  # fmt: skip
PRICE_TYPES_TO_KITE = {
    PriceType.MARKET: "MARKET",
    PriceType.LIMIT: "LIMIT",
    PriceType.SL: "SL",
    PriceType.SL_M: "SL-M",
}
PRICE_TYPES_FROM_KITE = {kite: dalal for dalal, kite in PRICE_TYPES_TO_KITE.items()}
VALIDITY_TO_KITE = {Validity.DAY: "DAY", Validity.IOC: "IOC"}
VALIDITY_FROM_KITE = {"DAY": Validity.DAY, "IOC": Validity.IOC, "TTL": Validity.DAY}

# Kite's order statuses. Everything not final is still working at the exchange (or about to
# be): the transient states of placing, modifying and cancelling count as open, and so does a
# status Kite adds later, so a live order is never shown as finished by mistake.
_FINAL_STATUSES = {
    "COMPLETE": OrderStatus.COMPLETE,
    "CANCELLED": OrderStatus.CANCELLED,
    "CANCELLED AMO": OrderStatus.CANCELLED,
    "LAPSED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
TRANSIENT_STATUSES = frozenset({
    "PUT ORDER REQ RECEIVED", "VALIDATION PENDING", "OPEN PENDING", "MODIFY VALIDATION PENDING",
    "MODIFY PENDING", "MODIFIED", "CANCEL PENDING", "TRIGGER PENDING", "AMO REQ RECEIVED",
})  # fmt: skip

INTERVALS = {
    Interval.M1: "minute", Interval.M3: "3minute", Interval.M5: "5minute",
    Interval.M10: "10minute", Interval.M15: "15minute", Interval.M30: "30minute",
    Interval.H1: "60minute", Interval.D: "day",
}  # fmt: skip
# Kite's longest span (days) per historical request, by interval.
HISTORY_SPAN_DAYS = {
    Interval.M1: 60, Interval.M3: 100, Interval.M5: 100, Interval.M10: 100,
    Interval.M15: 200, Interval.M30: 200, Interval.H1: 400, Interval.D: 2000,
}  # fmt: skip

_TAG = re.compile(r"[^A-Za-z0-9]")
_MAX_TAG = 20


def order_status(kite_status: str) -> OrderStatus:
    status = (kite_status or "").strip().upper()
    if status == "TRIGGER PENDING":
        return OrderStatus.TRIGGER_PENDING
    return _FINAL_STATUSES.get(status, OrderStatus.OPEN)


def ist(value: Any, fallback: datetime) -> datetime:
    """Kite's time (naive IST datetime or "YYYY-MM-DD HH:MM:SS" text) as an aware IST one."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=IST) if value.tzinfo is None else value.astimezone(IST)
    if isinstance(value, str) and len(value) >= 19:
        try:
            parsed = datetime.fromisoformat(value.replace(" ", "T", 1))
        except ValueError:
            return fallback
        return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)
    return fallback


def _int(value: Any) -> int:
    return int(value or 0)


# ------------------------------------------------------------------ orders out


def order_tag(strategy: str) -> str:
    """Kite's `tag`: up to 20 letters and digits (the strategy name, squeezed)."""
    return _TAG.sub("", strategy)[:_MAX_TAG]


def order_params(request: OrderRequest, kite_exchange: str, tradingsymbol: str) -> dict[str, Any]:
    """The keyword arguments of `KiteConnect.place_order` for one Dalal order."""
    params: dict[str, Any] = {
        "variety": VARIETY,
        "exchange": kite_exchange,
        "tradingsymbol": tradingsymbol,
        "transaction_type": request.side.value,
        "quantity": request.quantity,
        "product": PRODUCTS_TO_KITE[request.product],
        "order_type": PRICE_TYPES_TO_KITE[request.price_type],
        "validity": VALIDITY_TO_KITE[request.validity],
    }
    if request.price_type in (PriceType.LIMIT, PriceType.SL):
        params["price"] = str(request.price)
    if request.price_type in (PriceType.SL, PriceType.SL_M):
        params["trigger_price"] = str(request.trigger_price)
    if request.price_type in (PriceType.MARKET, PriceType.SL_M):
        params["market_protection"] = -1  # Kite's automatic protection for market orders
    if request.disclosed_quantity:
        params["disclosed_quantity"] = request.disclosed_quantity
    tag = order_tag(request.strategy)
    if tag:
        params["tag"] = tag
    if request.algo_id.isdigit():  # only an exchange-assigned (numeric) algo ID means anything
        params["algo_id"] = request.algo_id
    return params


def modify_params(request: ModifyRequest) -> dict[str, Any]:
    params: dict[str, Any] = {
        "quantity": request.quantity,
        "order_type": PRICE_TYPES_TO_KITE[request.price_type],
    }
    if request.price_type in (PriceType.LIMIT, PriceType.SL):
        params["price"] = str(request.price)
    if request.price_type in (PriceType.SL, PriceType.SL_M):
        params["trigger_price"] = str(request.trigger_price)
    if request.disclosed_quantity:
        params["disclosed_quantity"] = request.disclosed_quantity
    return params


# ------------------------------------------------------------------ books in


def order_report(row: Mapping[str, Any], name: Namer, now: datetime) -> OrderReport:
    exchange, symbol = name(str(row.get("exchange", "")), str(row.get("tradingsymbol", "")))
    status = order_status(str(row.get("status") or ""))
    placed = ist(row.get("order_timestamp"), now)
    updated = ist(row.get("exchange_update_timestamp") or row.get("exchange_timestamp"), placed)
    reason = str(row.get("status_message") or "") if status is OrderStatus.REJECTED else ""
    return OrderReport(
        order_id=str(row["order_id"]),
        symbol=symbol,
        exchange=exchange,
        side=Side(str(row.get("transaction_type", "BUY")).upper()),
        quantity=_int(row.get("quantity")),
        filled_quantity=_int(row.get("filled_quantity")),
        average_price=money(row.get("average_price")),
        price=money(row.get("price")),
        trigger_price=money(row.get("trigger_price")),
        price_type=PRICE_TYPES_FROM_KITE.get(str(row.get("order_type")), PriceType.LIMIT),
        product=PRODUCTS_FROM_KITE.get(str(row.get("product")), Product.MIS),
        status=status,
        placed_at=placed,
        updated_at=max(updated, placed),
        strategy=str(row.get("tag") or ""),
        rejection_reason=reason,
        validity=VALIDITY_FROM_KITE.get(str(row.get("validity")), Validity.DAY),
    )


def pending_report(order_id: str, request: OrderRequest, now: datetime) -> OrderReport:
    """An order Kite accepted but whose history is not readable yet: open, as sent."""
    return OrderReport(
        order_id=order_id,
        symbol=request.symbol,
        exchange=request.exchange,
        side=request.side,
        quantity=request.quantity,
        filled_quantity=0,
        average_price=Decimal(0),
        price=request.price,
        trigger_price=request.trigger_price,
        price_type=request.price_type,
        product=request.product,
        status=OrderStatus.TRIGGER_PENDING
        if request.price_type in (PriceType.SL, PriceType.SL_M)
        else OrderStatus.OPEN,
        placed_at=now,
        updated_at=now,
        strategy=request.strategy,
        validity=request.validity,
        source=request.source.value,
        algo_id=request.algo_id,
    )


def trade_report(row: Mapping[str, Any], name: Namer, now: datetime) -> TradeReport:
    exchange, symbol = name(str(row.get("exchange", "")), str(row.get("tradingsymbol", "")))
    return TradeReport(
        trade_id=str(row["trade_id"]),
        order_id=str(row.get("order_id", "")),
        symbol=symbol,
        exchange=exchange,
        side=Side(str(row.get("transaction_type", "BUY")).upper()),
        quantity=_int(row.get("quantity")),
        price=money(row.get("average_price")),
        product=PRODUCTS_FROM_KITE.get(str(row.get("product")), Product.MIS),
        traded_at=ist(row.get("fill_timestamp") or row.get("exchange_timestamp"), now),
    )


def position_report(
    row: Mapping[str, Any], name: Namer, lot_size: Callable[[str, str], int]
) -> PositionReport:
    exchange, symbol = name(str(row.get("exchange", "")), str(row.get("tradingsymbol", "")))
    net = _int(row.get("quantity"))
    return PositionReport(
        symbol=symbol,
        exchange=exchange,
        product=PRODUCTS_FROM_KITE.get(str(row.get("product")), Product.MIS),
        net_quantity=net,
        average_price=money(row.get("average_price")) if net else Decimal(0),
        ltp=money(row.get("last_price")),
        realized_pnl=money(row.get("realised")),
        unrealized_pnl=money(row.get("unrealised")),
        buy_quantity=_int(row.get("buy_quantity")),
        sell_quantity=_int(row.get("sell_quantity")),
        buy_value=money(row.get("buy_value")),
        sell_value=money(row.get("sell_value")),
        lot_size=lot_size(symbol, exchange),
    )


def holding_report(row: Mapping[str, Any], name: Namer) -> HoldingReport:
    exchange, symbol = name(str(row.get("exchange", "")), str(row.get("tradingsymbol", "")))
    return HoldingReport(
        symbol=symbol,
        exchange=exchange,
        # Shares bought yesterday (T1) are the trader's too, only not yet in the demat account.
        quantity=_int(row.get("quantity")) + _int(row.get("t1_quantity")),
        average_price=money(row.get("average_price")),
        ltp=money(row.get("last_price")),
    )


def funds_report(margins: Mapping[str, Any], positions: Mapping[str, Any]) -> FundsReport:
    """Kite's margins (equity and commodity segments together) and the day's P&L from the
    position book (Kite's margin fields for booked profit are not signed as P&L)."""
    segments = [value for value in margins.values() if isinstance(value, Mapping)]

    def total(section: str, field: str) -> Decimal:
        return sum(
            (money((segment.get(section) or {}).get(field)) for segment in segments), Decimal(0)
        )

    net_rows = positions.get("net") or []
    day_rows = positions.get("day") or []
    realized = sum((money(row.get("realised")) for row in net_rows), Decimal(0))
    return FundsReport(
        available_cash=sum((money(segment.get("net")) for segment in segments), Decimal(0)),
        utilised=total("utilised", "debits"),
        realized_pnl=realized,
        unrealized_pnl=sum((money(row.get("unrealised")) for row in net_rows), Decimal(0)),
        collateral=total("available", "collateral"),
        charges=Decimal(0),  # Kite reports charges per contract note, not in the margins
        starting_capital=total("available", "opening_balance"),
        today_realized_pnl=sum((money(row.get("realised")) for row in day_rows), Decimal(0)),
    )


# ------------------------------------------------------------------ market data in


def _levels(rows: Sequence[Mapping[str, Any]] | None) -> tuple[DepthLevel, ...]:
    levels = []
    for row in rows or ():
        price, quantity = money(row.get("price")), _int(row.get("quantity"))
        if price == 0 and quantity == 0:
            continue  # Kite pads an empty side with zero levels
        levels.append(DepthLevel(price, quantity, _int(row.get("orders"))))
    return tuple(levels)


def quote_of(instrument: Instrument, row: Mapping[str, Any], now: datetime) -> Quote:
    ohlc = row.get("ohlc") or {}
    depth = row.get("depth") or {}
    buy, sell = _levels(depth.get("buy")), _levels(depth.get("sell"))
    return Quote(
        symbol=instrument.symbol,
        exchange=instrument.exchange,
        ltp=money(row.get("last_price")),
        open=money(ohlc.get("open")),
        high=money(ohlc.get("high")),
        low=money(ohlc.get("low")),
        prev_close=money(ohlc.get("close")),
        bid=buy[0].price if buy else Decimal(0),
        ask=sell[0].price if sell else Decimal(0),
        volume=_int(row.get("volume")),
        oi=_int(row.get("oi")),
        timestamp=ist(row.get("timestamp"), now),
        last_quantity=_int(row.get("last_quantity")),
    )


def depth_of(instrument: Instrument, row: Mapping[str, Any], now: datetime) -> Depth:
    depth = row.get("depth") or {}
    return Depth(
        quote=quote_of(instrument, row, now),
        buy=_levels(depth.get("buy")),
        sell=_levels(depth.get("sell")),
    )


def candle_of(row: Mapping[str, Any]) -> Candle:
    start = row["date"]
    if not isinstance(start, datetime):
        raise ValueError(f"candle without a time: {row!r}")
    return Candle(
        start=start.replace(tzinfo=IST) if start.tzinfo is None else start.astimezone(IST),
        open=money(row.get("open")),
        high=money(row.get("high")),
        low=money(row.get("low")),
        close=money(row.get("close")),
        volume=_int(row.get("volume")),
        oi=_int(row.get("oi")),
    )


def history_windows(interval: Interval, start: date, end: date) -> list[tuple[str, str]]:
    """Kite's from/to pairs covering start..end (IST days), each within Kite's longest span."""
    span = timedelta(days=HISTORY_SPAN_DAYS[interval])
    windows: list[tuple[str, str]] = []
    day = start
    while day <= end:
        last = min(end, day + span - timedelta(days=1))
        windows.append((f"{day.isoformat()} 00:00:00", f"{last.isoformat()} 23:59:59"))
        day = last + timedelta(days=1)
    return windows


# ------------------------------------------------------------------ streaming ticks in

KITE_MODE_LTP = "ltp"
KITE_MODE_QUOTE = "quote"
KITE_MODE_FULL = "full"


def _epoch_ms(value: Any, fallback: int) -> int:
    # The SDK builds tick times with datetime.fromtimestamp (naive, this machine's zone), so
    # .timestamp() on them gives back the exchange's epoch seconds exactly.
    if isinstance(value, datetime):
        return int(value.timestamp()) * 1000
    return fallback


def price_decimals(exchange: str) -> int:
    """Currency derivatives quote to 4 decimals (Kite's CDS/BCD divisors); the rest to 2."""
    return 4 if exchange in (Exchange.CDS.value, Exchange.BCD.value) else 2


def tick_payloads(
    raw: Mapping[str, Any], produced: int, decimals: int
) -> dict[int, dict[str, Any]]:
    """A KiteTicker tick as the `data` of Dalal's market_data frames, mode by mode (the same
    fields the simulated feed sends: services/feed/source.py)."""

    def number(value: Any) -> float:
        return round(float(value or 0), decimals)

    ltp = number(raw.get("last_price"))
    ltt = _epoch_ms(raw.get("last_trade_time") or raw.get("exchange_timestamp"), produced)
    payloads: dict[int, dict[str, Any]] = {1: {"ltp": ltp, "ltt": ltt, "timestamp": produced}}
    if raw.get("mode") == KITE_MODE_LTP:
        return payloads
    ohlc = raw.get("ohlc") or {}
    close = number(ohlc.get("close"))
    depth = raw.get("depth") or {}
    buy, sell = depth.get("buy") or [], depth.get("sell") or []
    quote = {
        "ltp": ltp,
        "open": number(ohlc.get("open")),
        "high": number(ohlc.get("high")),
        "low": number(ohlc.get("low")),
        "close": close,
        "volume": _int(raw.get("volume_traded")),
        "last_trade_quantity": _int(raw.get("last_traded_quantity")),
        "change": number(ltp - close) if close else 0.0,
        "change_percent": round((ltp - close) / close * 100, 2) if close else 0.0,
        "bid": number(buy[0]["price"]) if buy else 0.0,
        "ask": number(sell[0]["price"]) if sell else 0.0,
        "oi": _int(raw.get("oi")),
        "ltt": ltt,
        "timestamp": produced,
    }
    payloads[2] = quote
    if raw.get("mode") == KITE_MODE_FULL:
        levels = {
            side: [
                {
                    "price": number(level["price"]),
                    "quantity": _int(level["quantity"]),
                    "orders": _int(level["orders"]),
                }
                for level in rows
                if level.get("price") or level.get("quantity")
            ]
            for side, rows in (("buy", buy), ("sell", sell))
        }
        payloads[3] = {
            **quote,
            "depth": levels,
            "total_buy_quantity": _int(raw.get("total_buy_quantity")),
            "total_sell_quantity": _int(raw.get("total_sell_quantity")),
        }
    return payloads
