"""The market in the browser: a watch list, an instrument's quote, depth and history, chains.

Server-rendered from the desk's market-data source (the simulated market when no broker is
connected); live updates will come over Socket.IO, so nothing here polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Blueprint, render_template, request

from blueprints import desk, login_required
from services.clock import to_ist
from services.errors import InvalidRequest, NotFound
from services.market.analytics import OPTIONS_EXCHANGE, OptionsAnalytics, parse_expiry
from services.market.master import expiry_code
from services.market.model import Candle, Instrument, InstrumentType, Interval, Quote
from services.market.service import MarketData

bp = Blueprint("market", __name__, url_prefix="/market")

WATCHED_INDICES = (
    ("NIFTY", "NSE_INDEX"), ("BANKNIFTY", "NSE_INDEX"), ("FINNIFTY", "NSE_INDEX"),
    ("MIDCPNIFTY", "NSE_INDEX"), ("NIFTYNXT50", "NSE_INDEX"), ("INDIAVIX", "NSE_INDEX"),
    ("SENSEX", "BSE_INDEX"), ("BANKEX", "BSE_INDEX"),
)  # fmt: skip
WATCHED_STOCKS = tuple(
    (symbol, "NSE") for symbol in ("RELIANCE", "HDFCBANK", "ICICIBANK", "INFY", "TCS", "SBIN")
)
CHAIN_UNDERLYINGS = (
    ("NIFTY", "NSE_INDEX"), ("BANKNIFTY", "NSE_INDEX"), ("FINNIFTY", "NSE_INDEX"),
    ("MIDCPNIFTY", "NSE_INDEX"), ("SENSEX", "BSE_INDEX"), ("BANKEX", "BSE_INDEX"),
)  # fmt: skip
SEARCH_LIMIT = 50
HISTORY_CANDLES = 10
HISTORY_LOOKBACK_DAYS = 31  # enough calendar days for ten sessions, holidays included
DEFAULT_STRIKES = 10
MAX_STRIKES = 50
MINUS = "\u2212"  # a real minus sign: reads as clearly as the plus next to it
_OFF = frozenset({"0", "false", "no", "off"})


# ------------------------------------------------------------------------------ formatting


def group_indian(digits: str) -> str:
    """`1234567` as `12,34,567`: thousands, then lakhs and crores in pairs."""
    head, tail = digits[:-3], digits[-3:]
    groups: list[str] = []
    while len(head) > 2:
        head, pair = head[:-2], head[-2:]
        groups.insert(0, pair)
    return ",".join([part for part in (head, *groups) if part] + [tail])


def format_number(value: Decimal | float | int | None, places: int = 2) -> str:
    """A price or amount with `places` decimals and Indian grouping; a dash when missing."""
    if value is None:
        return "—"
    exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    whole, _, fraction = f"{abs(exact):f}".partition(".")
    sign = MINUS if exact < 0 else ""
    return sign + group_indian(whole) + (f".{fraction}" if fraction else "")


def format_quantity(value: int | None) -> str:
    """Volumes, open interest and book sizes: whole numbers, a dash for none."""
    return format_number(value, 0) if value else "—"


def format_signed(value: Decimal | float | None, places: int = 2) -> str:
    """A change with its sign spelled out (+12.35, minus 0.40), so colour is never the only cue."""
    if value is None:
        return "—"
    text = format_number(value, places)
    return text if text.startswith(MINUS) or Decimal(str(value)) == 0 else "+" + text


@dataclass(frozen=True)
class Move:
    """How far a price moved from the previous close."""

    change: Decimal
    percent: Decimal | None

    @property
    def direction(self) -> str:
        return "up" if self.change > 0 else "down" if self.change < 0 else "flat"


def move(ltp: Decimal, prev_close: Decimal) -> Move:
    percent = (ltp - prev_close) * 100 / prev_close if prev_close else None
    return Move(ltp - prev_close, percent)


@bp.context_processor
def _formatters() -> dict[str, Any]:
    return {
        "price": format_number,
        "quantity": format_quantity,
        "signed": format_signed,
        "move": move,
    }


# ------------------------------------------------------------------------------ pages


@dataclass(frozen=True)
class WatchRow:
    instrument: Instrument
    quote: Quote


@bp.get("")
@login_required
def index() -> str:
    market = desk().market
    watched = [_listed(market, WATCHED_INDICES), _listed(market, WATCHED_STOCKS)]
    quotes = iter(market.source.quotes([item for group in watched for item in group]))
    indices, stocks = ([WatchRow(item, next(quotes)) for item in group] for group in watched)
    query = request.args.get("q", "").strip()[:60]
    matches = market.master.search(query, limit=SEARCH_LIMIT) if query else []
    return render_template(
        "market/index.html",
        indices=indices,
        stocks=stocks,
        query=query,
        matches=matches,
        quoted_at=max((row.quote.timestamp for row in indices + stocks), default=None),
        **_source_status(market),
    )


@bp.get("/<exchange>/<symbol>")
@login_required
def instrument(exchange: str, symbol: str) -> str:
    market = desk().market
    found = market.instrument(symbol, exchange.strip().upper())
    depth = market.source.depth(found)
    return render_template(
        "market/instrument.html",
        instrument=found,
        quote=depth.quote,
        depth=depth,
        levels=list(zip(_padded(depth.buy), _padded(depth.sell), strict=True)),
        candles=_recent_candles(market, found),
        today=to_ist(market.clock.now()).date(),
        underlying=market.master.underlying_of(found),
        chain_link=_chain_link(market, found),
        **_source_status(market),
    )


@dataclass(frozen=True)
class ChainRequest:
    """The chain page's query, checked against the instrument master."""

    underlying: str
    exchange: str
    expiries: list[date]
    expiry: date
    strikes: int
    greeks: bool


@bp.get("/chain")
@login_required
def chain() -> str:
    market = desk().market
    asked = _chain_request(market)
    option_chain = OptionsAnalytics(market).chain(
        asked.underlying,
        asked.exchange,
        expiry_code(asked.expiry),
        asked.strikes,
        asked.greeks,
        market.settings.interest_rate,
    )
    spot = market.master.get(asked.underlying, asked.exchange)
    sides = [side for row in option_chain.rows for side in (row.call, row.put) if side]
    return render_template(
        "market/chain.html",
        chain=option_chain,
        asked=asked,
        expiry=expiry_code(asked.expiry),
        expiries=[(expiry_code(day), day) for day in asked.expiries],
        spot=spot if spot is not None and not spot.is_derivative else None,
        days_to_expiry=(option_chain.expiry_at - market.clock.now()).total_seconds() / 86_400,
        quoted_at=sides[0].quote.timestamp if sides else None,
        shortcuts=[pair for pair in CHAIN_UNDERLYINGS if market.master.get(*pair) is not None],
        **_source_status(market),
    )


# ------------------------------------------------------------------------------ helpers


def _listed(market: MarketData, pairs: tuple[tuple[str, str], ...]) -> list[Instrument]:
    """The watched instruments this master lists (a trimmed master may lack some)."""
    found = (market.master.get(symbol, exchange) for symbol, exchange in pairs)
    return [item for item in found if item is not None]


def _source_status(market: MarketData) -> dict[str, Any]:
    always_open = desk().settings.market_mode == "always_open"
    return {
        "source_label": "Simulated market — "
        + ("always open" if always_open else "follows the NSE calendar"),
        "nse_open": always_open or market.calendar.is_open("NSE", market.clock.now()),
    }


def _padded[T](levels: tuple[T, ...]) -> list[T | None]:
    """Five rows a side, blank where the book is thinner (an index has no book at all)."""
    return [*levels[:5], *([None] * (5 - len(levels[:5])))]


def _recent_candles(market: MarketData, instrument: Instrument) -> list[tuple[date, Candle]]:
    """The last ten daily candles by IST date, newest first (today's, still forming, included)."""
    today = to_ist(market.clock.now()).date()
    start = today - timedelta(days=HISTORY_LOOKBACK_DAYS)
    candles = market.source.history(instrument, Interval.D, start, today)
    return [(to_ist(candle.start).date(), candle) for candle in candles[-HISTORY_CANDLES:][::-1]]


def _chain_link(market: MarketData, instrument: Instrument) -> dict[str, str] | None:
    """Query arguments of the chain page this instrument belongs to, when it has options."""
    if instrument.is_option and instrument.underlying and instrument.expiry:
        exchange = (instrument.underlying_exchange or instrument.exchange).value
        code = expiry_code(instrument.expiry)
        return {"underlying": instrument.underlying, "exchange": exchange, "expiry": code}
    if instrument.instrument_type not in (InstrumentType.INDEX, InstrumentType.EQ):
        return None
    options_exchange = OPTIONS_EXCHANGE.get(instrument.exchange.value)
    if options_exchange is None:
        return None
    if not market.master.expiries(instrument.symbol, options_exchange, "options"):
        return None
    return {"underlying": instrument.symbol, "exchange": instrument.exchange.value}


def _chain_request(market: MarketData) -> ChainRequest:
    underlying = request.args.get("underlying", "").strip().upper()[:40] or "NIFTY"
    exchange = request.args.get("exchange", "").strip().upper()[:20] or "NSE_INDEX"
    options_exchange = OPTIONS_EXCHANGE.get(exchange)
    if options_exchange is None:
        raise InvalidRequest(
            f"Exchange {exchange!r} has no option chains; use NSE_INDEX, NSE, BSE_INDEX or BSE."
        )
    expiries = market.master.expiries(underlying, options_exchange, "options")
    if not expiries:
        raise NotFound(f"No options on {underlying} ({exchange}) in the instrument master.")
    return ChainRequest(
        underlying=underlying,
        exchange=exchange,
        expiries=expiries,
        expiry=_chosen_expiry(request.args.get("expiry", ""), underlying, expiries),
        strikes=_strike_count(request.args.get("strikes", "")),
        greeks=request.args.get("greeks", "1").strip().lower() not in _OFF,
    )


def _chosen_expiry(text: str, underlying: str, expiries: list[date]) -> date:
    """The asked-for expiry (DDMMMYY), or the nearest listed one when none was asked for."""
    text = text.strip().upper()
    if not text:
        return expiries[0]
    try:
        wanted = parse_expiry(text)
    except InvalidRequest:
        raise InvalidRequest(
            f"Expiry {text[:20]!r} is not a date written DDMMMYY (e.g. {expiry_code(expiries[0])})."
        ) from None
    if wanted not in expiries:
        raise NotFound(
            f"No {underlying} options expire on {expiry_code(wanted)}; the nearest listed "
            f"expiry is {expiry_code(expiries[0])}."
        )
    return wanted


def _strike_count(text: str) -> int:
    """Strikes each side of ATM: 10 unless asked, at most 50."""
    if not text.strip():
        return DEFAULT_STRIKES
    try:
        count = int(text)
    except ValueError:
        raise InvalidRequest(
            f"Strikes {text[:20]!r} is not a whole number from 1 to {MAX_STRIKES}."
        ) from None
    return max(1, min(MAX_STRIKES, count))
