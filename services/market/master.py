"""Builds the bundled instrument master: cash, indices, index and stock F&O, MCX commodities.

Sources and rules (data under `data/instruments/`, levels from `reference.py`):

- Index lots, freeze quantities and strike steps are MARKET-FACTS §3.1-3.3, with their circulars
  in `index_derivatives.csv`. Long-dated (quarterly and half-yearly) NIFTY options use the wider
  1500-point step and SENSEX's 1000 (§3.3). Expiries come from `expiries.expiry_schedule`.
- Index strikes span the reference level ±25% and at least five strikes either side of the money,
  so the money is always listed while the simulated price stays near its level. The exchanges
  list fewer strikes at launch and add more as the market moves; ours are the listed set at the
  widest. BANKNIFTY's and NIFTYNXT50's extra 500-point far strikes are not modelled.

Approximations (no sourced data; each is a documented rule):

- Cash equities (`equities.csv`): the NIFTY 100 and SENSEX 30 approximately as constituted in
  late 2025 (no index-composition file was available, so later reshuffles are missing), plus 74
  further NSE F&O stocks, listed on NSE and BSE under the same symbol. ISINs are filled only
  where known reliably (the tests check their check digits); the rest are empty, not guessed.
- Stock lot sizes: NSE revises them every six months and we hold no list, so the lot is the
  SEBI minimum contract value (₹15 lakh, SEBI/HO/MRD/TPD-1/P/CIR/2024/132) at the reference
  price, rounded up to a multiple of 5 (under 100 units), 25 (under 1,000), 50 (under 10,000)
  or 500 units.
- Stock strike steps: NSE's scheme depends on the price band; ours is the largest of
  0.5, 1, 2.5, 5, 10, 20, 50, 100, 250, 500 not above 1% of the reference price (0.4-1% of the
  price, about what NSE lists), over ±30% of the reference price.
- Stock freeze quantity: NSE publishes it monthly; ours is the whole number of lots worth at
  most ₹5 crore at the reference price (about 30 lots), never less than one lot.
- MCX: lot sizes are counted in the units prices are quoted in (GOLD is quoted per 10 g and a
  lot is 1 kg, so its lot size is 100), so value = price times quantity as everywhere else
  (`commodities.csv` names each unit). Options (CRUDEOIL, NATURALGAS) share their future's
  expiry and strike ±30% around the level. MCX's per-order limits are not sourced, so MCX
  contracts have no freeze quantity. Expiries are `expiries.mcx_expiries` (also a rule).
- Tokens are our own: a BLAKE2b digest of exchange and symbol, stable across rebuilds.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from pathlib import Path

from services.market.calendar import MarketCalendar
from services.market.expiries import ContractExpiry, expiry_schedule, mcx_expiries
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType
from services.market.reference import ReferenceLevel, load_reference_levels

DATA_DIR = Path(__file__).parent / "data" / "instruments"

TICK = Decimal("0.05")
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
INDEX_STRIKE_SPAN = Decimal("0.25")
STOCK_STRIKE_SPAN = Decimal("0.30")
COMMODITY_STRIKE_SPAN = Decimal("0.30")
MINIMUM_STRIKES_EACH_SIDE = 5
# SEBI/HO/MRD/TPD-1/P/CIR/2024/132: a derivative contract is worth at least ₹15 lakh.
MINIMUM_CONTRACT_VALUE = Decimal(1_500_000)
STOCK_FREEZE_VALUE = Decimal(50_000_000)
STOCK_STRIKE_LADDER = tuple(
    Decimal(step) for step in ("0.5", "1", "2.5", "5", "10", "20", "50", "100", "250", "500")
)
LONG_DATED_KINDS = frozenset({ExpiryKind.QUARTERLY, ExpiryKind.HALF_YEARLY})

type _Levels = dict[tuple[str, str], ReferenceLevel]


@dataclass(frozen=True, slots=True)
class EquitySpec:
    symbol: str
    name: str
    isin: str | None
    fno: bool


@dataclass(frozen=True, slots=True)
class IndexDerivativeSpec:
    underlying: str
    spot_exchange: Exchange
    exchange: Exchange
    family: str
    lot_size: int
    freeze_qty: int
    strike_step: Decimal
    long_dated_step: Decimal | None


@dataclass(frozen=True, slots=True)
class CommoditySpec:
    symbol: str
    name: str
    lot_size: int
    tick_size: Decimal
    option_strike_step: Decimal | None
    option_tick_size: Decimal | None


def _rows(file_name: str) -> list[dict[str, str]]:
    with (DATA_DIR / file_name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_equities() -> list[EquitySpec]:
    """The bundled cash equities (NIFTY 100, SENSEX 30 and further F&O stocks)."""
    return [
        EquitySpec(row["symbol"], row["name"], row["isin"] or None, row["fno"] == "Y")
        for row in _rows("equities.csv")
    ]


def load_index_derivatives() -> list[IndexDerivativeSpec]:
    """Lot, freeze and strike step of each index with F&O (MARKET-FACTS §3)."""
    return [
        IndexDerivativeSpec(
            underlying=row["underlying"],
            spot_exchange=Exchange(row["spot_exchange"]),
            exchange=Exchange(row["exchange"]),
            family=row["family"],
            lot_size=int(row["lot_size"]),
            freeze_qty=int(row["freeze_qty"]),
            strike_step=Decimal(row["strike_step"]),
            long_dated_step=Decimal(row["long_dated_step"]) if row["long_dated_step"] else None,
        )
        for row in _rows("index_derivatives.csv")
    ]


def load_commodities() -> list[CommoditySpec]:
    """The MCX contracts, with lots in quotation units (see `commodities.csv`)."""
    return [
        CommoditySpec(
            symbol=row["symbol"],
            name=row["name"],
            lot_size=int(row["lot_size"]),
            tick_size=Decimal(row["tick_size"]),
            option_strike_step=_optional_decimal(row["option_strike_step"]),
            option_tick_size=_optional_decimal(row["option_tick_size"]),
        )
        for row in _rows("commodities.csv")
    ]


def _optional_decimal(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def expiry_code(day: date) -> str:
    """`DDMMMYY` as in the OpenAlgo symbols: 24NOV26 (locale-proof, unlike strftime's %b)."""
    return f"{day.day:02d}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def strike_text(strike: Decimal) -> str:
    """The strike as symbols spell it: whole numbers without decimals, else shortest (292.5)."""
    if strike == strike.to_integral_value():
        return str(int(strike))
    return format(strike.normalize(), "f")


def future_symbol(name: str, expiry: date) -> str:
    return f"{name}{expiry_code(expiry)}FUT"


def option_symbol(name: str, expiry: date, strike: Decimal, option_type: InstrumentType) -> str:
    return f"{name}{expiry_code(expiry)}{strike_text(strike)}{option_type.value}"


def instrument_token(exchange: str, symbol: str, attempt: int = 0) -> str:
    """A stable numeric token from exchange and symbol (hashlib: unsalted, unlike hash())."""
    text = f"{exchange}:{symbol}" if attempt == 0 else f"{exchange}:{symbol}#{attempt}"
    digest = hashlib.blake2b(text.encode(), digest_size=6).digest()
    # 48 bits: small enough to stay exact as a JavaScript number.
    return str(int.from_bytes(digest, "big"))


def strike_grid(
    reference: Decimal, step: Decimal, span: Decimal, minimum_each_side: int = 0
) -> list[Decimal]:
    """Multiples of `step` over reference ±span, and at least `minimum_each_side` around ATM."""
    money = int((reference / step).to_integral_value(ROUND_HALF_UP))
    low = int((reference * (1 - span) / step).to_integral_value(ROUND_CEILING))
    high = int((reference * (1 + span) / step).to_integral_value(ROUND_FLOOR))
    low = max(1, min(low, money - minimum_each_side))
    high = max(high, money + minimum_each_side)
    return [Decimal(strike_text(step * multiple)) for multiple in range(low, high + 1)]


def stock_strike_step(price: Decimal) -> Decimal:
    """The largest ladder step not above 1% of the price (approximates NSE's price bands)."""
    ceiling = price / 100
    fitting = [step for step in STOCK_STRIKE_LADDER if step <= ceiling]
    return fitting[-1] if fitting else STOCK_STRIKE_LADDER[0]


def stock_lot_size(price: Decimal) -> int:
    """Units worth at least the SEBI minimum contract value, rounded up to a round number."""
    units = int((MINIMUM_CONTRACT_VALUE / price).to_integral_value(ROUND_CEILING))
    multiple = 5 if units < 100 else 25 if units < 1_000 else 50 if units < 10_000 else 500
    return -(-units // multiple) * multiple


def stock_freeze_quantity(price: Decimal, lot_size: int) -> int:
    """Whole lots worth at most ₹5 crore at `price`, at least one lot (our documented rule)."""
    lots = int(STOCK_FREEZE_VALUE / (price * lot_size))
    return max(lots, 1) * lot_size


class _Tokens:
    """Issues each contract a token, re-hashing on the (rare) clash so tokens stay unique."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def issue(self, exchange: Exchange, symbol: str) -> str:
        attempt = 0
        token = instrument_token(exchange.value, symbol)
        while token in self._used:
            attempt += 1
            token = instrument_token(exchange.value, symbol, attempt)
        self._used.add(token)
        return token


@dataclass(frozen=True, slots=True)
class _Contract:
    """What a future and its options on one expiry have in common."""

    underlying: str
    underlying_exchange: Exchange
    exchange: Exchange
    expiry: date
    expiry_kind: ExpiryKind
    lot_size: int
    freeze_qty: int | None
    tick_size: Decimal = TICK


class _Builder:
    """Accumulates the master's instruments, issuing tokens as it goes."""

    def __init__(self) -> None:
        self.instruments: list[Instrument] = []
        self._tokens = _Tokens()

    def add_spot(self, symbol: str, exchange: Exchange, name: str, isin: str | None = None) -> None:
        kind = InstrumentType.INDEX if exchange.value.endswith("_INDEX") else InstrumentType.EQ
        self.instruments.append(
            Instrument(
                symbol=symbol,
                exchange=exchange,
                name=name,
                instrument_type=kind,
                token=self._tokens.issue(exchange, symbol),
                isin=isin,
                brsymbol=symbol,
                brexchange=exchange.value,
            )
        )

    def add_future(self, contract: _Contract) -> None:
        symbol = future_symbol(contract.underlying, contract.expiry)
        self._add(contract, symbol, InstrumentType.FUT, None)

    def add_options(self, contract: _Contract, strikes: list[Decimal]) -> None:
        for strike in strikes:
            for option_type in (InstrumentType.CE, InstrumentType.PE):
                symbol = option_symbol(contract.underlying, contract.expiry, strike, option_type)
                self._add(contract, symbol, option_type, strike)

    def _add(
        self, contract: _Contract, symbol: str, kind: InstrumentType, strike: Decimal | None
    ) -> None:
        self.instruments.append(
            Instrument(
                symbol=symbol,
                exchange=contract.exchange,
                name=contract.underlying,
                instrument_type=kind,
                token=self._tokens.issue(contract.exchange, symbol),
                lot_size=contract.lot_size,
                tick_size=contract.tick_size,
                freeze_qty=contract.freeze_qty,
                expiry=contract.expiry,
                expiry_kind=contract.expiry_kind,
                strike=strike,
                underlying=contract.underlying,
                underlying_exchange=contract.underlying_exchange,
                brsymbol=symbol,
                brexchange=contract.exchange.value,
            )
        )


def _level(levels: _Levels, symbol: str, exchange: str) -> Decimal:
    try:
        return levels[(symbol, exchange)].price
    except KeyError:
        raise ValueError(f"no reference level for {symbol} on {exchange}") from None


def _add_cash_and_indices(builder: _Builder, equities: list[EquitySpec]) -> None:
    for exchange in (Exchange.NSE, Exchange.BSE):
        for equity in equities:
            builder.add_spot(equity.symbol, exchange, equity.name, equity.isin)
    for row in _rows("indices.csv"):
        builder.add_spot(row["symbol"], Exchange(row["exchange"]), row["name"])


def _index_strike_step(spec: IndexDerivativeSpec, expiry: ContractExpiry) -> Decimal:
    if spec.long_dated_step is not None and expiry.kind in LONG_DATED_KINDS:
        return spec.long_dated_step
    return spec.strike_step


def _add_index_derivatives(
    builder: _Builder,
    today: date,
    calendar: MarketCalendar,
    levels: _Levels,
) -> None:
    for spec in load_index_derivatives():
        price = _level(levels, spec.underlying, spec.spot_exchange.value)
        for expiry in expiry_schedule(spec.family, today, calendar):
            contract = _Contract(
                spec.underlying, spec.spot_exchange, spec.exchange, expiry.day, expiry.kind,
                spec.lot_size, spec.freeze_qty,
            )  # fmt: skip
            # There are no weekly futures: only the monthly and longer cycles list a future.
            if expiry.kind is not ExpiryKind.WEEKLY:
                builder.add_future(contract)
            step = _index_strike_step(spec, expiry)
            builder.add_options(
                contract, strike_grid(price, step, INDEX_STRIKE_SPAN, MINIMUM_STRIKES_EACH_SIDE)
            )


def _add_stock_derivatives(
    builder: _Builder,
    equities: list[EquitySpec],
    expiries: list[ContractExpiry],
    levels: _Levels,
) -> None:
    for equity in (equity for equity in equities if equity.fno):
        price = _level(levels, equity.symbol, Exchange.NSE.value)
        lot = stock_lot_size(price)
        strikes = strike_grid(price, stock_strike_step(price), STOCK_STRIKE_SPAN)
        for expiry in expiries:
            contract = _Contract(
                equity.symbol, Exchange.NSE, Exchange.NFO, expiry.day, expiry.kind,
                lot, stock_freeze_quantity(price, lot),
            )  # fmt: skip
            builder.add_future(contract)
            builder.add_options(contract, strikes)


def _add_commodities(
    builder: _Builder,
    today: date,
    calendar: MarketCalendar,
    levels: _Levels,
) -> None:
    for spec in load_commodities():
        price = _level(levels, spec.symbol, Exchange.MCX.value)
        for expiry in mcx_expiries(spec.symbol, today, calendar):
            future = _Contract(
                spec.symbol, Exchange.MCX, Exchange.MCX, expiry, ExpiryKind.MONTHLY,
                spec.lot_size, None, spec.tick_size,
            )  # fmt: skip
            builder.add_future(future)
            if spec.option_strike_step is None or spec.option_tick_size is None:
                continue
            options = _Contract(
                spec.symbol, Exchange.MCX, Exchange.MCX, expiry, ExpiryKind.MONTHLY,
                spec.lot_size, None, spec.option_tick_size,
            )  # fmt: skip
            strikes = strike_grid(price, spec.option_strike_step, COMMODITY_STRIKE_SPAN)
            builder.add_options(options, strikes)


def build_master(today: date, calendar: MarketCalendar) -> list[Instrument]:
    """Every contract listed on `today`: cash, indices, index and stock F&O, MCX."""
    levels = load_reference_levels()
    equities = load_equities()
    builder = _Builder()
    _add_cash_and_indices(builder, equities)
    _add_index_derivatives(builder, today, calendar, levels)
    stock_expiries = expiry_schedule("NSE_STOCK", today, calendar)
    _add_stock_derivatives(builder, equities, stock_expiries, levels)
    _add_commodities(builder, today, calendar, levels)
    return builder.instruments
