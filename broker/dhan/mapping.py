"""Dhan's vocabulary and Dalal's common model, both ways.

Dhan (API v2, https://dhanhq.co/docs/v2/) names instruments by security ID and exchange
segment (NSE_EQ, NSE_FNO, IDX_I, ...), lists them in its scrip master CSV, and answers in
JSON with float prices and IST wall-clock times. Everything here is pure: no I/O, so the
rules can be read (and tested) on their own.

- Products: CNC <-> CNC, NRML <-> MARGIN, MIS <-> INTRADAY (Dhan's MTF is delivery, its
  CO/BO intraday).
- Order types: MARKET, LIMIT, SL <-> STOP_LOSS, SL-M <-> STOP_LOSS_MARKET; validity DAY/IOC.
- Statuses: TRANSIT, PENDING, PART_TRADED -> open (a pending stop with nothing filled is
  "trigger pending"), TRADED -> complete, CANCELLED and EXPIRED -> cancelled, REJECTED.
- Money: Decimal(str(x)) of what Dhan sent, never float arithmetic.
- Times: Dhan's "YYYY-MM-DD HH:MM:SS" (and "DD/MM/YYYY HH:MM:SS") are IST wall clock.
- Symbols: the scrip master's rows become Dalal (OpenAlgo) symbols: SBIN on NSE, NIFTY on
  NSE_INDEX, NIFTY30DEC25FUT and NIFTY30DEC2526000CE on NFO; the instrument's token is Dhan's
  security ID and brsymbol/brexchange are Dhan's trading symbol and segment.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.clock import IST
from services.errors import (
    BrokerError,
    BrokerNotConfigured,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
    DalalError,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
)
from services.feed.model import FeedMode
from services.market.master import future_symbol, option_symbol, strike_text
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType
from services.orders.model import (
    ZERO,
    HoldingReport,
    OrderReport,
    OrderStatus,
    PositionReport,
    PriceType,
    Product,
    Side,
    TradeReport,
    Validity,
)

# ---------------------------------------------------------------------- enums both ways

PRODUCT_TO_DHAN: dict[Product, str] = {
    Product.CNC: "CNC",
    Product.NRML: "MARGIN",
    Product.MIS: "INTRADAY",
}
PRODUCT_FROM_DHAN: dict[str, Product] = {
    "CNC": Product.CNC,
    "MTF": Product.CNC,
    "MARGIN": Product.NRML,
    "INTRADAY": Product.MIS,
    "CO": Product.MIS,
    "BO": Product.MIS,
}
PRICE_TYPE_TO_DHAN: dict[PriceType, str] = {
    PriceType.MARKET: "MARKET",
    PriceType.LIMIT: "LIMIT",
    PriceType.SL: "STOP_LOSS",
    PriceType.SL_M: "STOP_LOSS_MARKET",
}
PRICE_TYPE_FROM_DHAN: dict[str, PriceType] = {
    dhan: ours for ours, dhan in PRICE_TYPE_TO_DHAN.items()
}
VALIDITY_FROM_DHAN: dict[str, Validity] = {"DAY": Validity.DAY, "IOC": Validity.IOC}

_STATUS: dict[str, OrderStatus] = {
    "TRADED": OrderStatus.COMPLETE,
    "CLOSED": OrderStatus.COMPLETE,  # super orders: both legs placed
    "CANCELLED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}
_STOPS = frozenset({PriceType.SL, PriceType.SL_M})

# Dalal exchange -> Dhan exchange segment (both index exchanges share IDX_I).
SEGMENT_OF: dict[Exchange, str] = {
    Exchange.NSE: "NSE_EQ",
    Exchange.BSE: "BSE_EQ",
    Exchange.NFO: "NSE_FNO",
    Exchange.BFO: "BSE_FNO",
    Exchange.CDS: "NSE_CURRENCY",
    Exchange.BCD: "BSE_CURRENCY",
    Exchange.MCX: "MCX_COMM",
    Exchange.NSE_INDEX: "IDX_I",
    Exchange.BSE_INDEX: "IDX_I",
}
# Where a segment's instruments live when the scrip master cannot say (IDX_I: NSE's).
EXCHANGE_OF_SEGMENT: dict[str, Exchange] = {
    "NSE_EQ": Exchange.NSE,
    "BSE_EQ": Exchange.BSE,
    "NSE_FNO": Exchange.NFO,
    "BSE_FNO": Exchange.BFO,
    "NSE_CURRENCY": Exchange.CDS,
    "BSE_CURRENCY": Exchange.BCD,
    "MCX_COMM": Exchange.MCX,
    "IDX_I": Exchange.NSE_INDEX,
}
# The market feed's numeric segment codes (Dhan annexure "Exchange Segment").
FEED_SEGMENT_CODE: dict[str, int] = {
    "IDX_I": 0,
    "NSE_EQ": 1,
    "NSE_FNO": 2,
    "NSE_CURRENCY": 3,
    "BSE_EQ": 4,
    "MCX_COMM": 5,
    "BSE_CURRENCY": 7,
    "BSE_FNO": 8,
}

# Feed subscription request codes (Dhan annexure "Feed Request Code"); unsubscribe is +1.
TICKER, QUOTE, FULL = 15, 17, 21
# Dalal's LTP mode is Dhan's ticker; quote and depth both take Dhan's full packet, the only
# one that carries the best bid and ask (Dhan's quote packet has neither) and open interest.
REQUEST_CODE_OF: dict[FeedMode, int] = {
    FeedMode.LTP: TICKER,
    FeedMode.QUOTE: FULL,
    FeedMode.DEPTH: FULL,
}


def money(value: Any) -> Decimal:
    """An amount Dhan sent (float, int or text) as an exact Decimal; blanks are zero."""
    if value is None or value == "":
        return ZERO
    try:
        exact = Decimal(str(value))
    except InvalidOperation:
        return ZERO
    return exact if exact else ZERO  # no "-0.0" in the books


def whole(value: Any) -> int:
    """A quantity Dhan sent (sometimes "75.0") as an int; blanks are zero."""
    if value is None or value == "":
        return 0
    return int(money(value))


_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M")


def ist_time(text: Any) -> datetime | None:
    """Dhan's wall-clock IST text as an aware datetime (None when blank or Dhan's 1980 zero)."""
    if not isinstance(text, str) or not text.strip():
        return None
    cleaned = text.strip().split(".")[0]
    for pattern in _TIME_FORMATS:
        try:
            parsed = datetime.strptime(cleaned, pattern)  # noqa: DTZ007  (IST wall clock)
        except ValueError:
            continue
        if parsed.year < 2000:  # "01/01/1980 00:00:00": Dhan's way of saying "never"
            return None
        return parsed.replace(tzinfo=IST)
    return None


def order_status(dhan_status: str, price_type: PriceType, filled: int) -> OrderStatus:
    status = dhan_status.upper()
    if status in _STATUS:
        return _STATUS[status]
    if status in ("PENDING", "TRANSIT") and price_type in _STOPS and filled == 0:
        return OrderStatus.TRIGGER_PENDING
    return OrderStatus.OPEN  # TRANSIT, PENDING, PART_TRADED and anything new: still working


# ---------------------------------------------------------------------- the scrip master


@dataclass(frozen=True, slots=True)
class DhanContract:
    """One row of Dhan's scrip master in the common model, with Dhan's own handles."""

    instrument: Instrument
    segment: str  # NSE_EQ, NSE_FNO, IDX_I, ...
    security_id: str
    kind: str  # Dhan's instrument name: EQUITY, INDEX, FUTIDX, OPTIDX, FUTSTK, ...

    @property
    def feed_segment(self) -> int:
        return FEED_SEGMENT_CODE[self.segment]


@dataclass
class ScripIndex:
    """The scrip master, looked up either way: by Dalal symbol or by Dhan security ID."""

    contracts: list[DhanContract] = field(default_factory=list)
    by_symbol: dict[tuple[str, str], DhanContract] = field(default_factory=dict)
    by_id: dict[tuple[str, str], DhanContract] = field(default_factory=dict)

    def add(self, contract: DhanContract, *, preferred: bool = True) -> None:
        instrument = contract.instrument
        key = (instrument.exchange.value, instrument.symbol)
        if key in self.by_symbol and not preferred:
            return
        self.by_symbol[key] = contract
        self.by_id[(contract.segment, contract.security_id)] = contract

    def finish(self) -> None:
        self.contracts = list(self.by_symbol.values())

    def find(self, symbol: str, exchange: str) -> DhanContract | None:
        return self.by_symbol.get((exchange, symbol))

    def by_security(self, segment: str, security_id: Any) -> DhanContract | None:
        return self.by_id.get((segment, str(security_id)))

    def __len__(self) -> int:
        return len(self.contracts)


# The scrip master's (exchange, segment letter) -> Dalal exchange (Dhan's segment: SEGMENT_OF)
_VENUES: dict[tuple[str, str], Exchange] = {
    ("NSE", "E"): Exchange.NSE,
    ("BSE", "E"): Exchange.BSE,
    ("NSE", "I"): Exchange.NSE_INDEX,
    ("BSE", "I"): Exchange.BSE_INDEX,
    ("NSE", "D"): Exchange.NFO,
    ("BSE", "D"): Exchange.BFO,
    ("NSE", "C"): Exchange.CDS,
    ("BSE", "C"): Exchange.BCD,
    ("MCX", "M"): Exchange.MCX,
}
_FUTURES = frozenset({"FUTIDX", "FUTSTK", "FUTCOM", "FUTCUR"})
_OPTIONS = frozenset({"OPTIDX", "OPTSTK", "OPTFUT", "OPTCUR"})
# Dhan's index names that differ from the common symbols once spaces are dropped.
_INDEX_ALIASES = {
    "NIFTY50": "NIFTY",
    "NIFTYBANK": "BANKNIFTY",
    "NIFTYFINSERVICE": "FINNIFTY",
    "NIFTYFINANCIALSERVICES": "FINNIFTY",
    "NIFTYMIDSELECT": "MIDCPNIFTY",
    "NIFTYMIDCAPSELECT": "MIDCPNIFTY",
    "NIFTYNEXT50": "NIFTYNXT50",
}
_EXPIRY_KINDS = {"M": ExpiryKind.MONTHLY, "W": ExpiryKind.WEEKLY}
DEFAULT_TICK = Decimal("0.05")


def index_symbol(trading_symbol: str) -> str:
    """Dhan's index trading symbol ("INDIA VIX", "NIFTY 50") as the common one."""
    squeezed = trading_symbol.upper().replace(" ", "").replace("-", "")
    return _INDEX_ALIASES.get(squeezed, squeezed)


def _tick(text: str) -> Decimal:
    """The compact scrip master states the tick in paise (5.0000 is 0.05 rupees)."""
    paise = money(text)
    return (paise / 100).normalize() if paise > 0 else DEFAULT_TICK


def _expiry(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _underlying_exchange(kind: str, exchange_id: str) -> Exchange:
    if kind in ("FUTIDX", "OPTIDX"):
        return Exchange.BSE_INDEX if exchange_id == "BSE" else Exchange.NSE_INDEX
    if kind in ("FUTSTK", "OPTSTK"):
        return Exchange.BSE if exchange_id == "BSE" else Exchange.NSE
    if kind in ("FUTCUR", "OPTCUR"):
        return Exchange.BCD if exchange_id == "BSE" else Exchange.CDS
    return Exchange.MCX


def contract_from_row(row: Mapping[str, str]) -> DhanContract | None:
    """One compact scrip-master row as a contract (None for what Dalal does not trade)."""
    exchange_id = (row.get("SEM_EXM_EXCH_ID") or "").strip().upper()
    exchange = _VENUES.get((exchange_id, (row.get("SEM_SEGMENT") or "").strip().upper()))
    security_id = (row.get("SEM_SMST_SECURITY_ID") or "").strip()
    trading_symbol = (row.get("SEM_TRADING_SYMBOL") or "").strip()
    if exchange is None or not security_id or not trading_symbol:
        return None
    segment = SEGMENT_OF[exchange]
    kind = (row.get("SEM_INSTRUMENT_NAME") or "").strip().upper()
    lot = max(whole(row.get("SEM_LOT_UNITS")), 1)
    tick = _tick(row.get("SEM_TICK_SIZE") or "")
    name = (row.get("SM_SYMBOL_NAME") or row.get("SEM_CUSTOM_SYMBOL") or trading_symbol).strip()
    common: dict[str, Any] = {
        "exchange": exchange,
        "token": security_id,
        "lot_size": lot,
        "tick_size": tick,
        "brsymbol": trading_symbol,
        "brexchange": segment,
    }
    if segment == "IDX_I":
        symbol = index_symbol(trading_symbol)
        instrument = Instrument(
            symbol=symbol, name=name, instrument_type=InstrumentType.INDEX, **common
        )
    elif kind in _FUTURES or kind in _OPTIONS:
        instrument_or_none = _derivative(row, kind, exchange_id, trading_symbol, common)
        if instrument_or_none is None:
            return None
        instrument = instrument_or_none
    elif exchange in (Exchange.NSE, Exchange.BSE):
        instrument = Instrument(
            symbol=trading_symbol.upper(), name=name, instrument_type=InstrumentType.EQ, **common
        )
    else:
        return None
    return DhanContract(instrument, segment, security_id, kind or "EQUITY")


def _derivative(
    row: Mapping[str, str], kind: str, exchange_id: str, trading_symbol: str, common: dict[str, Any]
) -> Instrument | None:
    expiry = _expiry(row.get("SEM_EXPIRY_DATE") or "")
    if expiry is None:
        return None
    if kind in _FUTURES:
        base = trading_symbol.rsplit("-", 2)[0].upper()
        symbol = future_symbol(base, expiry)
        instrument_type = InstrumentType.FUT
        strike: Decimal | None = None
    else:
        option_type = (row.get("SEM_OPTION_TYPE") or "").strip().upper()
        if option_type not in ("CE", "PE"):
            return None
        base = trading_symbol.rsplit("-", 3)[0].upper()
        strike = money(row.get("SEM_STRIKE_PRICE"))
        if strike <= 0:
            return None
        instrument_type = InstrumentType(option_type)
        symbol = option_symbol(base, expiry, strike, instrument_type)
        strike = Decimal(strike_text(strike))
    return Instrument(
        symbol=symbol,
        name=base,
        instrument_type=instrument_type,
        expiry=expiry,
        expiry_kind=_EXPIRY_KINDS.get((row.get("SEM_EXPIRY_FLAG") or "").strip().upper()),
        strike=strike,
        underlying=base,
        underlying_exchange=_underlying_exchange(kind, exchange_id),
        **common,
    )


def parse_scrip_master(lines: Iterable[str]) -> ScripIndex:
    """Dhan's compact scrip master (api-scrip-master.csv) as an index of contracts."""
    index = ScripIndex()
    series: dict[tuple[str, str], str] = {}
    for row in csv.DictReader(lines):
        contract = contract_from_row(row)
        if contract is None:
            continue
        key = (contract.instrument.exchange.value, contract.instrument.symbol)
        row_series = (row.get("SEM_SERIES") or "").strip().upper()
        # A symbol listed in several series keeps its EQ row (the one traded by default).
        preferred = key not in series or (row_series == "EQ" and series[key] != "EQ")
        if preferred:
            series[key] = row_series
        index.add(contract, preferred=preferred)
    index.finish()
    return index


# ---------------------------------------------------------------------- books


def _where(
    index: ScripIndex | None, segment: str, security_id: Any, fallback: str
) -> tuple[str, str, int]:
    """(symbol, exchange, lot size) of a Dhan row: from the scrip master, else Dhan's names."""
    contract = index.by_security(segment, security_id) if index is not None else None
    if contract is not None:
        instrument = contract.instrument
        return instrument.symbol, instrument.exchange.value, instrument.lot_size
    exchange = EXCHANGE_OF_SEGMENT.get(segment)
    return fallback, exchange.value if exchange else segment, 1


def order_report(row: Mapping[str, Any], index: ScripIndex | None, now: datetime) -> OrderReport:
    """One order of Dhan's order book (GET /orders, /orders/{id}) in the common model."""
    segment = str(row.get("exchangeSegment") or "")
    symbol, exchange, _ = _where(
        index, segment, row.get("securityId"), str(row.get("tradingSymbol") or "")
    )
    price_type = PRICE_TYPE_FROM_DHAN.get(str(row.get("orderType") or ""), PriceType.LIMIT)
    filled = whole(row.get("filledQty"))
    status = order_status(str(row.get("orderStatus") or ""), price_type, filled)
    placed = ist_time(row.get("createTime")) or now
    reason = ""
    if status is OrderStatus.REJECTED:
        reason = str(row.get("omsErrorDescription") or "Rejected by Dhan")
    return OrderReport(
        order_id=str(row.get("orderId") or ""),
        symbol=symbol,
        exchange=exchange,
        side=Side(str(row.get("transactionType") or "BUY").upper()),
        quantity=whole(row.get("quantity")),
        filled_quantity=filled,
        average_price=money(row.get("averageTradedPrice")),
        price=money(row.get("price")),
        trigger_price=money(row.get("triggerPrice")),
        price_type=price_type,
        product=PRODUCT_FROM_DHAN.get(str(row.get("productType") or ""), Product.MIS),
        status=status,
        placed_at=placed,
        updated_at=ist_time(row.get("updateTime")) or ist_time(row.get("exchangeTime")) or placed,
        rejection_reason=reason,
        validity=VALIDITY_FROM_DHAN.get(str(row.get("validity") or ""), Validity.DAY),
    )


def trade_report(row: Mapping[str, Any], index: ScripIndex | None, now: datetime) -> TradeReport:
    """One fill of Dhan's trade book (GET /trades)."""
    segment = str(row.get("exchangeSegment") or "")
    symbol, exchange, _ = _where(
        index, segment, row.get("securityId"), str(row.get("tradingSymbol") or "")
    )
    when = (
        ist_time(row.get("exchangeTime"))
        or ist_time(row.get("updateTime"))
        or ist_time(row.get("createTime"))
        or now
    )
    return TradeReport(
        trade_id=str(row.get("exchangeTradeId") or row.get("orderId") or ""),
        order_id=str(row.get("orderId") or ""),
        symbol=symbol,
        exchange=exchange,
        side=Side(str(row.get("transactionType") or "BUY").upper()),
        quantity=whole(row.get("tradedQuantity")),
        price=money(row.get("tradedPrice")),
        product=PRODUCT_FROM_DHAN.get(str(row.get("productType") or ""), Product.MIS),
        traded_at=when,
    )


def implied_ltp(row: Mapping[str, Any]) -> Decimal:
    """The last price Dhan's unrealised P&L implies (positions carry no LTP of their own)."""
    net = whole(row.get("netQty"))
    if net == 0:
        return ZERO
    multiplier = money(row.get("multiplier")) or Decimal(1)
    return position_average(row) + money(row.get("unrealizedProfit")) / (net * multiplier)


def position_average(row: Mapping[str, Any]) -> Decimal:
    net = whole(row.get("netQty"))
    if net == 0:
        return ZERO
    cost = money(row.get("costPrice"))
    if cost > 0:
        return cost
    return money(row.get("buyAvg") if net > 0 else row.get("sellAvg"))


def position_report(
    row: Mapping[str, Any], index: ScripIndex | None, ltp: Decimal | None
) -> PositionReport:
    """One row of Dhan's position book (GET /positions)."""
    segment = str(row.get("exchangeSegment") or "")
    symbol, exchange, lot = _where(
        index, segment, row.get("securityId"), str(row.get("tradingSymbol") or "")
    )
    buy_quantity = whole(row.get("buyQty"))
    sell_quantity = whole(row.get("sellQty"))
    return PositionReport(
        symbol=symbol,
        exchange=exchange,
        product=PRODUCT_FROM_DHAN.get(str(row.get("productType") or ""), Product.MIS),
        net_quantity=whole(row.get("netQty")),
        average_price=position_average(row),
        ltp=ltp if ltp is not None else implied_ltp(row),
        realized_pnl=money(row.get("realizedProfit")),
        unrealized_pnl=money(row.get("unrealizedProfit")),
        buy_quantity=buy_quantity,
        sell_quantity=sell_quantity,
        buy_value=money(row.get("buyAvg")) * buy_quantity,
        sell_value=money(row.get("sellAvg")) * sell_quantity,
        lot_size=lot,
    )


def holding_contract(row: Mapping[str, Any], index: ScripIndex | None) -> DhanContract | None:
    """The cash contract a holding is quoted on: NSE's when listed there, else BSE's."""
    if index is None:
        return None
    exchange = str(row.get("exchange") or "").upper()
    order = ("BSE_EQ", "NSE_EQ") if exchange == "BSE" else ("NSE_EQ", "BSE_EQ")
    for segment in order:
        found = index.by_security(segment, row.get("securityId"))
        if found is not None:
            return found
    return None


def holding_report(
    row: Mapping[str, Any], contract: DhanContract | None, ltp: Decimal | None
) -> HoldingReport:
    """One row of Dhan's holdings (GET /holdings); the LTP comes from a market quote."""
    if contract is not None:
        symbol, exchange = contract.instrument.symbol, contract.instrument.exchange.value
    else:
        symbol = str(row.get("tradingSymbol") or "")
        exchange = "BSE" if str(row.get("exchange") or "").upper() == "BSE" else "NSE"
    average = money(row.get("avgCostPrice"))
    if ltp is None:
        ltp = money(row.get("lastTradedPrice")) or average
    return HoldingReport(
        symbol=symbol,
        exchange=exchange,
        quantity=whole(row.get("totalQty")),
        average_price=average,
        ltp=ltp,
    )


# ---------------------------------------------------------------------- errors

_SESSION_CODES = frozenset({"901", "807", "808", "809"})
_RATE_CODES = frozenset({"904", "805"})
_DOWN_CODES = frozenset({"908", "909", "800"})
_ORDER_OPERATIONS = frozenset({"place_order", "modify_order", "cancel_order"})
_FUNDS_WORDS = ("insufficient", "margin", "fund")


def dalal_error(
    http_status: int | None,
    code: str,
    message: str,
    *,
    operation: str,
    expired_message: str,
    reached: bool,
) -> DalalError:
    """What a failed Dhan call means, from its HTTP status and Dhan's error code.

    `reached` is False when no HTTP answer came back at all (a timeout or a refused
    connection): the broker could not be reached, which a read may retry.
    """
    number = code.upper().removeprefix("DH-").strip()
    text = message.strip() or "no reason given"
    if not reached:
        return BrokerUnavailable(f"Dhan could not be reached: {text}")
    if number in _SESSION_CODES or http_status == 401:
        return BrokerSessionExpired(expired_message)
    if number in _RATE_CODES or http_status == 429:
        return BrokerRateLimited(f"Dhan is rate limiting this account: {text}")
    if number in _DOWN_CODES or (http_status is not None and http_status >= 500):
        return BrokerUnavailable(f"Dhan is unavailable: {text}")
    if number == "810":
        return BrokerNotConfigured(f"Dhan does not know this client ID: {text}")
    ordering = operation in _ORDER_OPERATIONS
    if number == "907" or http_status == 404:
        return NotFound(f"Dhan: {text}")
    if number == "906" or (ordering and number in ("902", "903", "905", "")):
        if any(word in text.lower() for word in _FUNDS_WORDS):
            return InsufficientFunds(f"Dhan rejected the order: {text}")
        return OrderRejected(f"Dhan rejected the order: {text}")
    if number in ("905", "814", "811", "812", "813") or http_status == 400:
        return InvalidRequest(f"Dhan: {text}")
    return BrokerError(f"Dhan: {text}")
