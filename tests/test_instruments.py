"""The instrument master: symbols, lots, strikes, expiries, tokens, storage and the CLI."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from flask import Flask

from config import Settings
from database.engine import Databases
from database.migrate import upgrade_all
from services.market.calendar import MarketCalendar
from services.market.expiries import expiry_schedule, mcx_expiries
from services.market.instrument_store import (
    InstrumentMaster,
    InstrumentStore,
    ensure_master,
)
from services.market.master import (
    MINIMUM_CONTRACT_VALUE,
    build_master,
    expiry_code,
    load_equities,
    strike_text,
)
from services.market.model import Exchange, ExpiryKind, Instrument, InstrumentType
from services.market.reference import load_reference_levels
from tests.conftest import desk_env

TODAY = date(2026, 11, 22)  # a Sunday; the November monthlies expire on Mon 23 (NSE), Thu 26 (BSE)
MONTH = "(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)"
FUTURE = re.compile(rf"^(?P<name>[A-Z][A-Z0-9&-]*?)(?P<day>\d{{2}}){MONTH}(?P<year>\d{{2}})FUT$")
OPTION = re.compile(
    rf"^(?P<name>[A-Z][A-Z0-9&-]*?)(?P<day>\d{{2}}){MONTH}(?P<year>\d{{2}})"
    r"(?P<strike>\d+(\.\d*[1-9])?)(?P<kind>CE|PE)$"
)
# MARKET-FACTS §3.1-3.3: lot, freeze quantity, near strike step, long-dated step.
INDEX_FACTS = {
    "NIFTY": ("NFO", 65, 1800, 50, 1500),
    "BANKNIFTY": ("NFO", 30, 600, 100, None),
    "FINNIFTY": ("NFO", 60, 1800, 50, None),
    "MIDCPNIFTY": ("NFO", 120, 2800, 25, None),
    "NIFTYNXT50": ("NFO", 25, 600, 100, None),
    "SENSEX": ("BFO", 20, 1000, 100, 1000),
    "BANKEX": ("BFO", 30, 900, 100, None),
}
SENSEX_30 = {
    "ADANIPORTS", "ASIANPAINT", "AXISBANK", "BAJAJFINSV", "BAJFINANCE", "BEL", "BHARTIARTL",
    "ETERNAL", "HCLTECH", "HDFCBANK", "HINDUNILVR", "ICICIBANK", "INFY", "ITC", "KOTAKBANK", "LT",
    "M&M", "MARUTI", "NTPC", "POWERGRID", "RELIANCE", "SBIN", "SUNPHARMA", "TATASTEEL", "TCS",
    "TECHM", "TITAN", "TMPV", "TRENT", "ULTRACEMCO",
}  # fmt: skip


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


@pytest.fixture(scope="module")
def instruments(calendar: MarketCalendar) -> list[Instrument]:
    return build_master(TODAY, calendar)


@pytest.fixture(scope="module")
def master(instruments: list[Instrument]) -> InstrumentMaster:
    return InstrumentMaster(instruments, TODAY)


def _derivatives(master: InstrumentMaster, underlying: str, exchange: str) -> list[Instrument]:
    return list(master.derivatives_of(underlying, Exchange(exchange)))


def _isin_is_valid(isin: str) -> bool:
    """ISO 6166 check digit: letters to numbers, then the Luhn check over the digits."""
    if not re.fullmatch(r"IN[A-Z0-9]{9}\d", isin):
        return False
    digits = "".join(str(int(char, 36)) for char in isin)
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value // 10 + value % 10
    return total % 10 == 0


# Symbols -------------------------------------------------------------------------------------


def test_symbol_helpers_follow_api_section_3() -> None:
    assert expiry_code(date(2026, 12, 1)) == "01DEC26"
    assert expiry_code(date(2027, 6, 29)) == "29JUN27"
    assert strike_text(Decimal("24000.0000")) == "24000"
    assert strike_text(Decimal("292.50")) == "292.5"
    assert strike_text(Decimal("187.5")) == "187.5"


def test_every_derivative_symbol_spells_its_fields(instruments: list[Instrument]) -> None:
    checked = 0
    for instrument in instruments:
        if not instrument.is_derivative:
            continue
        assert instrument.expiry is not None and instrument.underlying is not None
        pattern = FUTURE if instrument.instrument_type is InstrumentType.FUT else OPTION
        match = pattern.match(instrument.symbol)
        assert match, instrument.symbol
        assert match["name"] == instrument.underlying == instrument.name
        assert instrument.symbol.startswith(instrument.underlying + expiry_code(instrument.expiry))
        if instrument.is_option:
            assert instrument.strike is not None
            assert Decimal(match["strike"]) == instrument.strike
            assert match["kind"] == instrument.instrument_type.value
        assert instrument.brsymbol == instrument.symbol
        assert instrument.brexchange == instrument.exchange.value
        checked += 1
    assert checked > 100_000


def test_known_contracts_exist(master: InstrumentMaster) -> None:
    # The NSE November monthly moved from Tue 24 (Guru Nanak Jayanti) to Mon 23 (MARKET-FACTS §4.2).
    november = master.get("NIFTY23NOV26FUT", "NFO")
    assert november is not None and november.expiry == date(2026, 11, 23)
    assert november.expiry_kind is ExpiryKind.MONTHLY
    assert master.get("NIFTY29DEC2626000CE", "NFO") is not None
    assert master.get("SENSEX26NOV2686500PE", "BFO") is not None
    assert master.get("CRUDEOIL18DEC26FUT", "MCX") is not None
    decimal_strike = master.get("ITC23NOV26402.5CE", "NFO")
    assert decimal_strike is not None and decimal_strike.strike == Decimal("402.5")


def test_no_weekly_futures(instruments: list[Instrument]) -> None:
    futures = [item for item in instruments if item.instrument_type is InstrumentType.FUT]
    assert futures
    assert all(item.expiry_kind is not ExpiryKind.WEEKLY for item in futures)


# Cash and indices ----------------------------------------------------------------------------


def test_cash_equities_on_both_exchanges(master: InstrumentMaster) -> None:
    equities = load_equities()
    assert len(equities) >= 100
    symbols = {equity.symbol for equity in equities}
    assert symbols >= SENSEX_30
    for symbol in symbols:
        for exchange in ("NSE", "BSE"):
            row = master.get(symbol, exchange)
            assert row is not None, (symbol, exchange)
            assert row.instrument_type is InstrumentType.EQ
            assert (row.lot_size, row.tick_size, row.expiry) == (1, Decimal("0.05"), None)
            assert not row.symbol.endswith("-EQ")
    mahindra = master.get("M&M", "NSE")
    assert mahindra is not None and mahindra.name == "Mahindra & Mahindra Ltd"


def test_isins_carry_a_valid_check_digit(instruments: list[Instrument]) -> None:
    with_isin = [item for item in instruments if item.isin is not None]
    assert len(with_isin) > 100
    bad = sorted({item.symbol for item in with_isin if not _isin_is_valid(item.isin or "")})
    assert bad == []
    reliance = next(item for item in with_isin if item.symbol == "RELIANCE")
    assert reliance.isin == "INE002A01018"


def test_indices(master: InstrumentMaster) -> None:
    nse = {"NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "INDIAVIX"}
    bse = {"SENSEX", "BANKEX", "SENSEX50"}
    for names, exchange in ((nse, "NSE_INDEX"), (bse, "BSE_INDEX")):
        for name in names:
            index = master.get(name, exchange)
            assert index is not None and index.instrument_type is InstrumentType.INDEX
    assert {item.symbol for item in master.by_exchange("BSE_INDEX")} >= bse


def test_every_spot_and_commodity_has_a_reference_level(instruments: list[Instrument]) -> None:
    levels = load_reference_levels()
    for item in instruments:
        if not item.is_derivative:
            assert (item.symbol, item.exchange.value) in levels, item.symbol
        elif item.exchange is Exchange.MCX:
            assert (item.underlying, "MCX") in levels
    nifty = levels[("NIFTY", "NSE_INDEX")]
    assert nifty.beta == 1.0 and 0.05 < nifty.volatility < 0.3
    assert levels[("RELIANCE", "BSE")].index == "SENSEX"
    assert levels[("RELIANCE", "NSE")].index == "NIFTY"


# Lots, freeze quantities, strikes -------------------------------------------------------------


@pytest.mark.parametrize("underlying", sorted(INDEX_FACTS))
def test_index_lots_freeze_and_steps(master: InstrumentMaster, underlying: str) -> None:
    exchange, lot, freeze, step, long_step = INDEX_FACTS[underlying]
    contracts = _derivatives(master, underlying, exchange)
    assert contracts
    assert {(item.lot_size, item.freeze_qty, item.tick_size) for item in contracts} == {
        (lot, freeze, Decimal("0.05"))
    }
    for expiry in master.expiries(underlying, exchange, "options"):
        strikes = [strike for strike, _, _ in master.option_chain(underlying, exchange, expiry)]
        steps = {later - earlier for earlier, later in pairwise(strikes)}
        kind = next(item.expiry_kind for item in contracts if item.expiry == expiry)
        long_dated = kind in (ExpiryKind.QUARTERLY, ExpiryKind.HALF_YEARLY)
        expected = long_step if long_dated and long_step else step
        assert steps == {Decimal(expected)}, (underlying, expiry)


@pytest.mark.parametrize("underlying", sorted(INDEX_FACTS))
def test_at_the_money_is_listed_for_every_index_expiry(
    master: InstrumentMaster, underlying: str
) -> None:
    exchange = INDEX_FACTS[underlying][0]
    index = master.underlying_of(_derivatives(master, underlying, exchange)[0])
    assert index is not None and index.symbol == underlying
    level = load_reference_levels()[(underlying, index.exchange.value)].price
    for expiry in master.expiries(underlying, exchange, "options"):
        chain = master.option_chain(underlying, exchange, expiry)
        strikes = [strike for strike, _, _ in chain]
        nearest = min(strikes, key=lambda strike: abs(strike - level))
        step = strikes[1] - strikes[0]
        assert abs(nearest - level) <= step / 2
        assert strikes[0] <= level * Decimal("0.76") and strikes[-1] >= level * Decimal("1.24")


def test_stock_lots_meet_the_minimum_contract_value(master: InstrumentMaster) -> None:
    levels = load_reference_levels()
    futures = [
        item
        for item in master.by_exchange("NFO")
        if item.instrument_type is InstrumentType.FUT and item.underlying_exchange is Exchange.NSE
    ]
    assert len({item.underlying for item in futures}) >= 90
    for future in futures:
        price = levels[(future.underlying or "", "NSE")].price
        assert price * future.lot_size >= MINIMUM_CONTRACT_VALUE
        # Not more than one rounding step above the minimum.
        assert price * future.lot_size < MINIMUM_CONTRACT_VALUE * 2
        assert future.freeze_qty is not None and future.freeze_qty % future.lot_size == 0
        assert future.freeze_qty >= future.lot_size


def test_stock_strikes_span_thirty_percent(master: InstrumentMaster) -> None:
    level = load_reference_levels()[("RELIANCE", "NSE")].price
    expiry = master.expiries("RELIANCE", "NFO", "options")[0]
    strikes = [strike for strike, _, _ in master.option_chain("RELIANCE", "NFO", expiry)]
    assert strikes[0] >= level * Decimal("0.70") and strikes[-1] <= level * Decimal("1.30")
    assert strikes[0] < level * Decimal("0.72") and strikes[-1] > level * Decimal("1.28")
    assert min(abs(strike - level) for strike in strikes) == 0


def test_mcx_contracts(master: InstrumentMaster, calendar: MarketCalendar) -> None:
    # CRUDEOIL: 100 barrels a lot (MARKET-FACTS §2.6); lots counted in quotation units.
    lots = {"CRUDEOIL": 100, "CRUDEOILM": 10, "NATURALGAS": 1250, "GOLD": 100, "GOLDM": 10,
            "SILVER": 30, "SILVERM": 5, "COPPER": 2500}  # fmt: skip
    for commodity, lot in lots.items():
        futures = master.expiries(commodity, "MCX", "futures")
        assert futures == mcx_expiries(commodity, TODAY, calendar)
        assert {item.lot_size for item in _derivatives(master, commodity, "MCX")} == {lot}
    with_options = {item.underlying for item in master.by_exchange("MCX") if item.is_option}
    assert with_options == {"CRUDEOIL", "NATURALGAS"}


# Expiries ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("underlying", "exchange", "family"),
    [(name, facts[0], name) for name, facts in INDEX_FACTS.items()]
    + [("RELIANCE", "NFO", "NSE_STOCK"), ("M&M", "NFO", "NSE_STOCK")],
)
def test_expiries_match_the_schedule(
    master: InstrumentMaster, calendar: MarketCalendar, underlying: str, exchange: str, family: str
) -> None:
    schedule = expiry_schedule(family, TODAY, calendar)
    assert master.expiries(underlying, exchange, "options") == [item.day for item in schedule]
    monthly_and_longer = [item.day for item in schedule if item.kind is not ExpiryKind.WEEKLY]
    assert master.expiries(underlying, exchange, "futures") == monthly_and_longer


def test_expiries_reject_an_unknown_type(master: InstrumentMaster) -> None:
    assert master.expiries("NIFTY", "NFO", "FUTURES")  # case-insensitive
    assert master.expiries("NOSUCH", "NFO", "options") == []
    with pytest.raises(ValueError, match="futures or options"):
        master.expiries("NIFTY", "NFO", "swaps")


# Lookups -------------------------------------------------------------------------------------


def test_every_derivative_has_its_underlying(master: InstrumentMaster) -> None:
    for item in master.all():
        underlying = master.underlying_of(item)
        mcx_future = item.exchange is Exchange.MCX and item.instrument_type is InstrumentType.FUT
        if not item.is_derivative or mcx_future:
            assert underlying is None
        elif item.exchange is Exchange.MCX:
            assert underlying is not None
            assert underlying.instrument_type is InstrumentType.FUT
            assert (underlying.underlying, underlying.expiry) == (item.underlying, item.expiry)
        else:
            assert underlying is not None, item.symbol
            assert underlying.symbol == item.underlying
            assert underlying.exchange is item.underlying_exchange
            assert not underlying.is_derivative


def test_option_chain_is_sorted_with_both_legs(master: InstrumentMaster) -> None:
    expiry = date(2026, 12, 29)
    chain = master.option_chain("NIFTY", "NFO", expiry)
    strikes = [strike for strike, _, _ in chain]
    assert strikes == sorted(strikes) and len(strikes) == len(set(strikes)) > 200
    for strike, call, put in chain:
        assert call is not None and put is not None
        assert (call.instrument_type, put.instrument_type) == (InstrumentType.CE, InstrumentType.PE)
        assert call.strike == put.strike == strike
        assert call.expiry == put.expiry == expiry
    assert master.option_chain("NIFTY", "NFO", date(2026, 12, 30)) == []


def test_derivatives_of_and_by_exchange(master: InstrumentMaster) -> None:
    contracts = master.derivatives_of("BANKEX", Exchange.BFO)
    assert contracts and {item.underlying for item in contracts} == {"BANKEX"}
    assert master.derivatives_of("BANKEX", Exchange.NFO) == ()
    assert all(item.exchange is Exchange.MCX for item in master.by_exchange("MCX"))
    assert master.by_exchange("NCDEX") == ()
    assert master.get("NIFTY", "NFO") is None


def test_master_size_and_tokens(instruments: list[Instrument], calendar: MarketCalendar) -> None:
    assert len(instruments) >= 100_000
    tokens = [item.token for item in instruments]
    assert len(set(tokens)) == len(tokens)
    assert all(token.isdigit() and int(token) < 2**53 for token in tokens)
    assert len({(item.symbol, item.exchange) for item in instruments}) == len(instruments)
    again = build_master(TODAY, calendar)
    assert [(item.symbol, item.token) for item in again] == [
        (item.symbol, item.token) for item in instruments
    ]
    # A day later, contracts listed both days keep their token.
    tomorrow = {
        (item.symbol, item.exchange): item.token
        for item in build_master(TODAY + timedelta(days=1), calendar)
    }
    shared = [item for item in instruments if (item.symbol, item.exchange) in tomorrow]
    assert len(shared) > 50_000
    assert all(tomorrow[(item.symbol, item.exchange)] == item.token for item in shared)


def test_counts_per_exchange(instruments: list[Instrument]) -> None:
    counts = Counter(item.exchange.value for item in instruments)
    assert counts["NFO"] > 80_000 and counts["BFO"] > 5_000 and counts["MCX"] > 300
    assert counts["NSE"] == counts["BSE"] >= 100


# Storage -------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[InstrumentStore]:
    settings = Settings.from_mapping(desk_env(tmp_path))
    upgrade_all(settings)
    databases = Databases.from_settings(settings)
    yield InstrumentStore(databases)
    databases.dispose()


def test_store_round_trip(store: InstrumentStore, instruments: list[Instrument]) -> None:
    assert store.load() is None
    assert store.replace_all(instruments, TODAY) == len(instruments)
    loaded = store.load()
    assert loaded is not None and loaded.built_on == TODAY
    assert list(loaded.all()) == instruments
    decimal_strike = loaded.get("ITC23NOV26402.5CE", "NFO")
    assert decimal_strike is not None and str(decimal_strike.strike) == "402.5"
    assert str(loaded.all()[0].tick_size) == "0.05"
    # Replacing swaps the whole table.
    assert store.replace_all(instruments[:10], TODAY + timedelta(days=1)) == 10
    smaller = store.load()
    assert smaller is not None and len(smaller) == 10
    assert smaller.built_on == TODAY + timedelta(days=1)


def test_ensure_master_builds_when_empty_and_rebuilds_when_stale(
    store: InstrumentStore, calendar: MarketCalendar, instruments: list[Instrument]
) -> None:
    built = ensure_master(store, calendar, TODAY)
    assert built.built_on == TODAY and len(built) == len(instruments)
    assert store.count() == len(instruments)

    # Stored today: kept as it is, even if it differs from a fresh build.
    store.replace_all(instruments[:5], TODAY)
    assert len(ensure_master(store, calendar, TODAY)) == 5

    # Built yesterday: the expiries rolled, so it is rebuilt and stored again.
    store.replace_all(instruments[:5], TODAY - timedelta(days=1))
    next_day = TODAY + timedelta(days=2)
    rebuilt = ensure_master(store, calendar, next_day)
    assert rebuilt.built_on == next_day and len(rebuilt) > 100_000
    # Tuesday 24th: the November NSE contracts (expired on the 23rd) are gone.
    assert rebuilt.get("NIFTY23NOV26FUT", "NFO") is None
    assert store.built_on() == next_day


# CLI -----------------------------------------------------------------------------------------


def test_master_contract_command_prints_counts(app: Flask, instruments: list[Instrument]) -> None:
    result = app.test_cli_runner().invoke(args=["master-contract"])
    assert result.exit_code == 0, result.output
    # The app's clock stands on Monday 2026-11-23, 10:00 IST.
    assert "for 2026-11-23" in result.output
    lines = dict(line.split(maxsplit=1) for line in result.output.splitlines()[:-1])
    assert set(lines) == {"NSE", "BSE", "NFO", "BFO", "MCX", "NSE_INDEX", "BSE_INDEX"}
    assert int(lines["NSE_INDEX"].replace(",", "")) == 12
    total = sum(int(count.replace(",", "")) for count in lines.values())
    assert f"Loaded {total:,} instruments" in result.output
    assert total > 100_000
