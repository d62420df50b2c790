"""Option analytics over the market: strikes by offset, chains with labels, greeks, synthetics.

Conventions follow shared API.md 4.6: ATM is the listed strike nearest the underlying's LTP;
for calls ITM strikes are below ATM and OTM above (puts the other way round); greeks are
Black-76 on the put-call-parity forward, IV in percent, vega per 1 % vol, theta per day.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from services.errors import InvalidRequest, NotFound
from services.market import black76
from services.market.expiries import expiry_instant
from services.market.master import MONTHS, expiry_code, option_symbol
from services.market.model import Depth, Exchange, Greeks, Instrument, InstrumentType, Quote
from services.market.service import MarketData, check_exchange

# Where options on an underlying are listed (API.md 3, "Underlying-exchange → options-exchange").
OPTIONS_EXCHANGE = {
    "NSE": Exchange.NFO,
    "NSE_INDEX": Exchange.NFO,
    "BSE": Exchange.BFO,
    "BSE_INDEX": Exchange.BFO,
    "NFO": Exchange.NFO,
    "BFO": Exchange.BFO,
    "MCX": Exchange.MCX,
    "CDS": Exchange.CDS,
}

_EMBEDDED_EXPIRY = re.compile(r"^([A-Z&-]+?)(\d{2}[A-Z]{3}\d{2})(?:FUT)?$")
_OFFSET = re.compile(r"^(ATM|ITM([1-9]|[1-4]\d|50)|OTM([1-9]|[1-4]\d|50))$")


@dataclass(frozen=True)
class Underlying:
    name: str
    options_exchange: Exchange
    expiry: date
    ltp: Decimal
    prev_close: Decimal


@dataclass(frozen=True)
class OptionPick:
    option: Instrument
    underlying: Underlying
    atm_strike: Decimal
    offset: str


@dataclass(frozen=True)
class ChainSide:
    option: Instrument
    label: str
    depth: Depth
    implied_volatility: float | None = None
    greeks: Greeks | None = None

    @property
    def quote(self) -> Quote:
        return self.depth.quote

    @property
    def bid_quantity(self) -> int:
        return self.depth.buy[0].quantity if self.depth.buy else 0

    @property
    def ask_quantity(self) -> int:
        return self.depth.sell[0].quantity if self.depth.sell else 0


@dataclass(frozen=True)
class ChainRow:
    strike: Decimal
    call: ChainSide | None
    put: ChainSide | None


@dataclass(frozen=True)
class OptionChain:
    underlying: Underlying
    atm_strike: Decimal
    expiry_at: datetime
    forward: float | None
    rows: list[ChainRow]


@dataclass(frozen=True)
class OptionGreeks:
    option: Instrument
    underlying_name: str
    spot: Decimal
    option_price: Decimal
    expiry_at: datetime
    days_to_expiry: float
    interest_rate: float
    implied_volatility: float | None
    greeks: Greeks | None


def parse_expiry(text: str) -> date:
    """`DDMMMYY` as option helpers take it (e.g. 24NOV26)."""
    match = re.fullmatch(r"(\d{2})([A-Z]{3})(\d{2})", text.strip().upper())
    try:
        if match is None or match[2] not in MONTHS:
            raise ValueError(text)
        return date(2000 + int(match[3]), MONTHS.index(match[2]) + 1, int(match[1]))
    except ValueError:
        raise InvalidRequest(
            f"expiry_date {text!r} is not a date as DDMMMYY (e.g. 24NOV26).",
            errors={"expiry_date": ["a date as DDMMMYY, e.g. 24NOV26"]},
        ) from None


def check_offset(offset: str) -> str:
    normalised = offset.strip().upper()
    if not _OFFSET.match(normalised):
        raise InvalidRequest(
            f"offset {offset!r} must be ATM, ITM1..ITM50 or OTM1..OTM50.",
            errors={"offset": ["ATM, ITM1..ITM50 or OTM1..OTM50"]},
        )
    return normalised


class OptionsAnalytics:
    def __init__(self, market: MarketData) -> None:
        self._market = market

    def underlying(self, underlying: str, exchange: str, expiry_text: str | None) -> Underlying:
        """Resolve `NIFTY` (+expiry) or `NIFTY24NOV26FUT` on any exchange to its quote source."""
        check_exchange(exchange)
        name, expiry = underlying.strip().upper(), None
        embedded = _EMBEDDED_EXPIRY.match(name)
        if embedded:
            name, expiry = embedded[1], parse_expiry(embedded[2])
        if expiry_text:
            expiry = parse_expiry(expiry_text)
        if expiry is None:
            raise InvalidRequest(
                "Expiry date required. Provide via expiry_date parameter or embed in "
                "underlying (e.g., NIFTY28OCT25FUT).",
                errors={"expiry_date": ["a date as DDMMMYY"]},
            )
        options_exchange = OPTIONS_EXCHANGE.get(exchange)
        if options_exchange is None:
            raise InvalidRequest(f"Exchange {exchange} has no options.")
        source = self._quote_source(name, exchange, options_exchange, expiry)
        quote = self._market.source.quote(source)
        return Underlying(name, options_exchange, expiry, quote.ltp, quote.prev_close)

    def _quote_source(
        self, name: str, exchange: str, options_exchange: Exchange, expiry: date
    ) -> Instrument:
        master = self._market.master
        direct = master.get(name, exchange)
        if direct is not None and not direct.is_derivative:
            return direct
        for _strike, call, put in master.option_chain(name, options_exchange, expiry):
            listed = call or put
            if listed is not None:
                found = master.underlying_of(listed)
                if found is not None:
                    return found
        raise NotFound(
            f"No options on {name} expiring {expiry_code(expiry)} in {options_exchange}. "
            "Check the expiry with /expiry."
        )

    def pick(
        self,
        underlying: str,
        exchange: str,
        expiry_text: str | None,
        offset: str,
        option_type: str,
        strike_interval: Decimal | None = None,
    ) -> OptionPick:
        """The option at `offset` from ATM (listed strikes, or a fixed `strike_interval`)."""
        resolved = self.underlying(underlying, exchange, expiry_text)
        return self.pick_for(resolved, offset, option_type, strike_interval)

    def pick_for(
        self,
        resolved: Underlying,
        offset: str,
        option_type: str,
        strike_interval: Decimal | None = None,
    ) -> OptionPick:
        """`pick` against an underlying already resolved (one LTP snapshot for many legs)."""
        offset = check_offset(offset)
        kind = option_type.strip().upper()
        strikes = self._strikes(resolved)
        atm = _nearest(strikes, resolved.ltp)
        steps = 0 if offset == "ATM" else int(offset[3:])
        # ITM for calls is below ATM, for puts above; OTM the opposite.
        direction = -1 if (offset.startswith("ITM")) == (kind == "CE") else 1
        if strike_interval is not None:
            atm = (resolved.ltp / strike_interval).to_integral_value() * strike_interval
            strike = atm + direction * steps * strike_interval
        else:
            index = strikes.index(atm) + direction * steps
            if not 0 <= index < len(strikes):
                raise NotFound(f"No listed strike {offset} from ATM {atm}: the chain ends.")
            strike = strikes[index]
        symbol = option_symbol(resolved.name, resolved.expiry, strike, InstrumentType(kind))
        option = self._market.master.get(symbol, resolved.options_exchange)
        if option is None:
            raise NotFound(
                f"Option symbol {symbol} not found in {resolved.options_exchange}. Symbol may "
                "not exist or master contract needs update."
            )
        return OptionPick(option=option, underlying=resolved, atm_strike=atm, offset=offset)

    def _strikes(self, resolved: Underlying) -> list[Decimal]:
        chain = self._market.master.option_chain(
            resolved.name, resolved.options_exchange, resolved.expiry
        )
        if not chain:
            raise NotFound(
                f"No options on {resolved.name} expiring {expiry_code(resolved.expiry)} in "
                f"{resolved.options_exchange}."
            )
        return [strike for strike, _call, _put in chain]

    def chain(
        self,
        underlying: str,
        exchange: str,
        expiry_text: str,
        strike_count: int | None,
        with_greeks: bool,
        interest_rate: float,
    ) -> OptionChain:
        resolved = self.underlying(underlying, exchange, expiry_text)
        listed = self._market.master.option_chain(
            resolved.name, resolved.options_exchange, resolved.expiry
        )
        strikes = [strike for strike, _c, _p in listed]
        if not strikes:
            raise NotFound(f"No options on {resolved.name} for that expiry.")
        atm = _nearest(strikes, resolved.ltp)
        centre = strikes.index(atm)
        if strike_count is not None:
            listed = listed[max(0, centre - strike_count) : centre + strike_count + 1]
        expiry_at = expiry_instant(resolved.options_exchange, resolved.expiry)
        depths = self._depths_of(listed)
        pricing = _ChainPricing(
            atm_index=centre,
            strikes=strikes,
            depths=depths,
            spot=float(resolved.ltp),
            forward=self._parity_forward(listed, atm, depths, expiry_at, interest_rate),
            years=black76.years_to_expiry(self._market.clock.now(), expiry_at),
            rate=interest_rate,
            with_greeks=with_greeks,
        )
        rows = [
            ChainRow(strike, pricing.side(call, "CE", strike), pricing.side(put, "PE", strike))
            for strike, call, put in listed
        ]
        forward = pricing.forward if with_greeks else None
        return OptionChain(resolved, atm, expiry_at, forward, rows)

    def _depths_of(
        self, listed: list[tuple[Decimal, Instrument | None, Instrument | None]]
    ) -> dict[str, Depth]:
        options = [option for _s, call, put in listed for option in (call, put) if option]
        source = self._market.source
        return {option.symbol: source.depth(option) for option in options}

    def _parity_forward(
        self,
        listed: list[tuple[Decimal, Instrument | None, Instrument | None]],
        atm: Decimal,
        depths: dict[str, Depth],
        expiry_at: datetime,
        rate: float,
    ) -> float | None:
        for strike, call, put in listed:
            if strike == atm and call and put:
                years = black76.years_to_expiry(self._market.clock.now(), expiry_at)
                return black76.forward_from_parity(
                    float(depths[call.symbol].quote.ltp),
                    float(depths[put.symbol].quote.ltp),
                    float(strike),
                    years,
                    rate,
                )
        return None

    def synthetic_future(
        self, underlying: str, exchange: str, expiry_text: str
    ) -> tuple[Underlying, Decimal, Decimal]:
        """(underlying, ATM strike, ATM strike + CE ltp - PE ltp)."""
        resolved = self.underlying(underlying, exchange, expiry_text)
        listed = self._market.master.option_chain(
            resolved.name, resolved.options_exchange, resolved.expiry
        )
        strikes = [strike for strike, _c, _p in listed]
        if not strikes:
            raise NotFound(
                f"No options on {resolved.name} expiring {expiry_code(resolved.expiry)} in "
                f"{resolved.options_exchange}. Check the expiry with /expiry."
            )
        atm = _nearest(strikes, resolved.ltp)
        for strike, call, put in listed:
            if strike == atm and call and put:
                call_quote, put_quote = self._market.source.quotes([call, put])
                return resolved, atm, atm + call_quote.ltp - put_quote.ltp
        raise NotFound(f"The ATM strike {atm} lacks a call or a put.")

    def option_greeks(
        self, symbol: str, exchange: str, interest_rate: float, forward_price: Decimal | None
    ) -> OptionGreeks:
        option = self._market.instrument(symbol, exchange)
        if not option.is_option or option.expiry is None or option.strike is None:
            raise InvalidRequest(f"{symbol} on {exchange} is not an option.")
        underlying = self._market.master.underlying_of(option)
        if underlying is None:
            raise NotFound(f"The underlying of {symbol} is not in the instrument master.")
        spot_quote, option_quote = self._market.source.quotes([underlying, option])
        expiry_at = expiry_instant(option.exchange, option.expiry)
        now = self._market.clock.now()
        years = black76.years_to_expiry(now, expiry_at)
        spot = float(spot_quote.ltp)
        # Options on futures (MCX) are quoted off the future itself: no carry to add.
        forward = (
            float(forward_price)
            if forward_price
            else (spot if underlying.is_derivative else spot * math.exp(interest_rate * years))
        )
        kind = black76.OptionKind(option.instrument_type.value)
        volatility = black76.implied_volatility(
            kind, float(option_quote.ltp), forward, float(option.strike), years, interest_rate
        )
        greeks = None
        if volatility is not None:
            greeks = black76.greeks(
                kind, forward, float(option.strike), years, interest_rate, volatility, spot
            )
        return OptionGreeks(
            option=option,
            underlying_name=option.underlying or underlying.symbol,
            spot=spot_quote.ltp,
            option_price=option_quote.ltp,
            expiry_at=expiry_at,
            days_to_expiry=max(0.0, (expiry_at - now).total_seconds() / 86_400),
            interest_rate=interest_rate,
            implied_volatility=volatility,
            greeks=greeks,
        )


@dataclass(frozen=True)
class _ChainPricing:
    """What every leg of one chain is labelled and priced against."""

    atm_index: int
    strikes: list[Decimal]
    depths: dict[str, Depth]
    spot: float
    forward: float | None
    years: float
    rate: float
    with_greeks: bool

    def side(self, option: Instrument | None, kind: str, strike: Decimal) -> ChainSide | None:
        if option is None:
            return None
        depth = self.depths[option.symbol]
        label = _label(kind, self.strikes.index(strike) - self.atm_index)
        if not self.with_greeks or self.forward is None:
            return ChainSide(option, label, depth)
        option_kind = black76.OptionKind(kind)
        volatility = black76.implied_volatility(
            option_kind, float(depth.quote.ltp), self.forward, float(strike), self.years, self.rate
        )
        if volatility is None:
            return ChainSide(option, label, depth)
        # Indian chains quote delta and gamma to the index, not to the forward.
        greeks = black76.greeks(
            option_kind, self.forward, float(strike), self.years, self.rate, volatility, self.spot
        )
        return ChainSide(option, label, depth, volatility, greeks)


def _nearest(strikes: list[Decimal], price: Decimal) -> Decimal:
    # Ties go to the lower strike, so the answer never depends on list order.
    return min(strikes, key=lambda strike: (abs(strike - price), strike))


def _label(kind: str, steps_from_atm: int) -> str:
    if steps_from_atm == 0:
        return "ATM"
    below = steps_from_atm < 0
    in_the_money = below if kind == "CE" else not below
    return f"{'ITM' if in_the_money else 'OTM'}{abs(steps_from_atm)}"
