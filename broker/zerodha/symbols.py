"""Kite's instruments dump in Dalal's symbols, and the way back.

Kite names contracts its own way (`NIFTY25DECFUT`, monthly options `NIFTY25DEC26000CE`, weekly
ones `NIFTY25D0926000CE`, indices `NIFTY 50`). Dalal's names (OpenAlgo's: `NIFTY30DEC25FUT`,
`NIFTY30DEC2526000CE`, `NIFTY` on NSE_INDEX) are derived from the dump's own columns, never by
parsing Kite's tradingsymbol: `name` + `expiry` (+ `strike`) + `instrument_type` say it all.
Rows Dalal cannot name (exchanges it does not list, such as NCO, and instrument kinds it has no
symbol for) are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from services.market.master import MONTHS, future_symbol, option_symbol
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType

DEFAULT_TICK = Decimal("0.05")

# Kite's exchanges whose contracts Dalal lists under the same exchange name.
TRADED_EXCHANGES = frozenset({"NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX"})
CASH_EXCHANGES = frozenset({"NSE", "BSE"})
# Kite lists indices under segment INDICES on the exchange that computes them.
INDEX_EXCHANGES = {"NSE": Exchange.NSE_INDEX, "BSE": Exchange.BSE_INDEX, "MCX": Exchange.MCX_INDEX}
KITE_EXCHANGE_OF_INDEX = {dalal.value: kite for kite, dalal in INDEX_EXCHANGES.items()}

# Index names that are not simply Kite's name without spaces.
_INDEX_NAMES = {
    ("NSE", "NIFTY 50"): "NIFTY",
    ("NSE", "NIFTY BANK"): "BANKNIFTY",
    ("NSE", "NIFTY FIN SERVICE"): "FINNIFTY",
    ("NSE", "NIFTY MID SELECT"): "MIDCPNIFTY",
    ("NSE", "NIFTY NEXT 50"): "NIFTYNXT50",
    ("NSE", "INDIA VIX"): "INDIAVIX",
}
# Underlyings known to be indices even when a partial dump does not list the index itself.
_KNOWN_INDICES = {
    "NFO": frozenset({"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50"}),
    "BFO": frozenset({"SENSEX", "BANKEX", "SENSEX50"}),
}
# Cash-market series suffixes Dalal drops (`XYZ-BE` trades as `XYZ`); others are left out.
_EQUITY_SERIES = frozenset({"EQ", "BE", "BZ", "SM", "ST"})
_NOT_SYMBOL = re.compile(r"[^A-Z0-9&]")


def money(value: Any) -> Decimal:
    """A price from the SDK (float, int or text) as an exact Decimal: 801.35 -> 801.35."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float) and value.is_integer():
        return Decimal(int(value))
    return Decimal(str(value))


def index_symbol(kite_exchange: str, tradingsymbol: str) -> str:
    known = _INDEX_NAMES.get((kite_exchange, tradingsymbol))
    return known or _NOT_SYMBOL.sub("", tradingsymbol.upper())


@dataclass(frozen=True, slots=True)
class _Row:
    token: str
    tradingsymbol: str
    name: str
    expiry: date | None
    strike: Decimal
    tick_size: Decimal
    lot_size: int
    instrument_type: str
    segment: str
    exchange: str

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> _Row:
        expiry = row.get("expiry")
        tick = money(row.get("tick_size"))
        return cls(
            token=str(row["instrument_token"]),
            tradingsymbol=str(row["tradingsymbol"]),
            name=str(row.get("name") or "").strip(),
            expiry=expiry if isinstance(expiry, date) else None,
            strike=money(row.get("strike")),
            tick_size=tick if tick > 0 else DEFAULT_TICK,
            lot_size=max(1, int(row.get("lot_size") or 1)),
            instrument_type=str(row.get("instrument_type") or ""),
            segment=str(row.get("segment") or ""),
            exchange=str(row.get("exchange") or ""),
        )


def _is_monthly(row: _Row) -> bool:
    """Kite spells monthly contracts YYMMM (`NIFTY25DEC...`), weekly ones YYMDD
    (`NIFTY25D09...`): after the underlying's name come two year digits, then the month."""
    if not row.tradingsymbol.startswith(row.name):
        return True  # not Kite's usual spelling: no sign of a weekly contract
    after = row.tradingsymbol[len(row.name) :]
    return after[:2].isdigit() and after[2:5] in MONTHS


def _underlying_exchange(exchange: str, name: str, indices: Mapping[str, set[str]]) -> Exchange:
    if exchange == "NFO":
        is_index = name in indices["NSE"] or name in _KNOWN_INDICES["NFO"]
        return Exchange.NSE_INDEX if is_index else Exchange.NSE
    if exchange == "BFO":
        is_index = name in indices["BSE"] or name in _KNOWN_INDICES["BFO"]
        return Exchange.BSE_INDEX if is_index else Exchange.BSE
    return Exchange(exchange)


def _spot(row: _Row) -> Instrument | None:
    if row.segment == "INDICES":
        exchange = INDEX_EXCHANGES.get(row.exchange)
        if exchange is None:
            return None
        symbol, kind = index_symbol(row.exchange, row.tradingsymbol), InstrumentType.INDEX
    elif row.exchange in CASH_EXCHANGES and row.instrument_type == "EQ":
        base, _, series = row.tradingsymbol.partition("-")
        if series and series not in _EQUITY_SERIES:
            return None
        exchange, symbol, kind = Exchange(row.exchange), base, InstrumentType.EQ
    else:
        return None
    if not symbol:
        return None
    return Instrument(
        symbol=symbol,
        exchange=exchange,
        name=row.name or symbol,
        instrument_type=kind,
        token=row.token,
        lot_size=row.lot_size,
        tick_size=row.tick_size,
        brsymbol=row.tradingsymbol,
        brexchange=row.exchange,
    )


def _derivative(row: _Row, indices: Mapping[str, set[str]]) -> Instrument | None:
    if row.exchange not in TRADED_EXCHANGES - CASH_EXCHANGES or row.expiry is None:
        return None
    name = _NOT_SYMBOL.sub("", row.name.upper())
    if not name:
        return None
    kind = InstrumentType(row.instrument_type)
    if kind is InstrumentType.FUT:
        symbol, strike, expiry_kind = future_symbol(name, row.expiry), None, ExpiryKind.MONTHLY
    else:
        strike = row.strike
        symbol = option_symbol(name, row.expiry, strike, kind)
        expiry_kind = ExpiryKind.MONTHLY if _is_monthly(row) else ExpiryKind.WEEKLY
    return Instrument(
        symbol=symbol,
        exchange=Exchange(row.exchange),
        name=name,
        instrument_type=kind,
        token=row.token,
        lot_size=row.lot_size,
        tick_size=row.tick_size,
        expiry=row.expiry,
        expiry_kind=expiry_kind,
        strike=strike,
        underlying=name,
        underlying_exchange=_underlying_exchange(row.exchange, name, indices),
        brsymbol=row.tradingsymbol,
        brexchange=row.exchange,
    )


def to_instrument(row: _Row, indices: Mapping[str, set[str]]) -> Instrument | None:
    if row.instrument_type in ("FUT", "CE", "PE"):
        return _derivative(row, indices)
    return _spot(row)


@dataclass
class KiteMaster:
    """The day's instruments in Dalal's symbols, indexed both ways and by Kite's token."""

    instruments: list[Instrument]
    _by_key: dict[tuple[str, str], Instrument] = field(default_factory=dict, repr=False)
    _by_kite: dict[tuple[str, str], Instrument] = field(default_factory=dict, repr=False)
    _by_token: dict[int, Instrument] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, rows: Iterable[Mapping[str, Any]]) -> KiteMaster:
        parsed = [_Row.of(row) for row in rows]
        indices: dict[str, set[str]] = {"NSE": set(), "BSE": set(), "MCX": set()}
        for row in parsed:
            if row.segment == "INDICES" and row.exchange in indices:
                indices[row.exchange].add(index_symbol(row.exchange, row.tradingsymbol))
        # Plain names first, so `XYZ` wins over another series' `XYZ-BE` for the symbol XYZ.
        parsed.sort(key=lambda row: "-" in row.tradingsymbol)
        master = cls([])
        for row in parsed:
            instrument = to_instrument(row, indices)
            if instrument is None:
                continue
            key = (instrument.exchange.value, instrument.symbol)
            if key in master._by_key:
                continue
            master.instruments.append(instrument)
            master._by_key[key] = instrument
            master._by_kite[(row.exchange, row.tradingsymbol)] = instrument
            master._by_token[int(row.token)] = instrument
        return master

    def get(self, symbol: str, exchange: str) -> Instrument | None:
        return self._by_key.get((exchange, symbol))

    def by_kite(self, kite_exchange: str, tradingsymbol: str) -> Instrument | None:
        return self._by_kite.get((kite_exchange, tradingsymbol))

    def by_token(self, token: int) -> Instrument | None:
        return self._by_token.get(token)

    def all(self) -> Sequence[Instrument]:
        return self.instruments
