"""Which F&O and MCX contracts are listed on a day, and when each expires.

Index and stock derivatives follow the current regime (contracts expiring from 2025-09-01):
SEBI/HO/MRD/MRD-TPD-1/P/CIR/2025/76 lets each exchange pick one expiry weekday, NSE chose Tuesday
and BSE Thursday (NSE/FAOP/68747), and only NIFTY and SENSEX keep weeklies (MARKET-FACTS §4.1).
Earlier regimes (Thursday NIFTY, Tuesday or Friday SENSEX) are not modelled. An expiry on a
non-trading day moves to the previous trading day, repeatedly (MARKET-FACTS §4.2).

Contracts listed at once, per family (NSE contract specifications, MARKET-FACTS §4.1):

| family                                   | weekly | monthly | quarterly | half-yearly |
|------------------------------------------|--------|---------|-----------|-------------|
| NIFTY (Tuesday)                          | 4      | 3       | 3         | 8           |
| BANKNIFTY (Tuesday)                      | -      | 3       | 3         | -           |
| FINNIFTY, MIDCPNIFTY, NIFTYNXT50 (Tue)   | -      | 3       | -         | -           |
| NSE_STOCK (Tuesday)                      | -      | 3       | -         | -           |
| SENSEX (Thursday)                        | 4      | 3       | -         | -           |
| BANKEX, BSE_STOCK (Thursday)             | -      | 3       | -         | -           |

Weeklies exclude the monthly week; quarterlies (Mar/Jun/Sep/Dec) come after the last monthly and
half-yearlies (Jun/Dec) after the last quarterly. SENSEX long-dated contracts exist but their
counts are not in the facts, so none are listed.

MCX expiries are NOT sourced: each commodity gets a simple documented day-of-month rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import count, islice

from services.clock import IST
from services.market.calendar import MarketCalendar
from services.market.model import Exchange, ExpiryKind

TUESDAY = 1
THURSDAY = 3
_QUARTER_MONTHS = (3, 6, 9, 12)
_HALF_YEAR_MONTHS = (6, 12)


@dataclass(frozen=True, slots=True)
class ContractExpiry:
    """One listed expiry date and the cycle it belongs to."""

    day: date
    kind: ExpiryKind


@dataclass(frozen=True, slots=True)
class _Cycle:
    """How many contracts of each tenor a family lists, and on which weekday they expire."""

    exchange: str  # whose holidays shift the expiry
    weekday: int
    weeklies: int = 0
    monthlies: int = 3
    quarterlies: int = 0
    half_yearlies: int = 0


_CYCLES: dict[str, _Cycle] = {
    "NIFTY": _Cycle("NFO", TUESDAY, weeklies=4, quarterlies=3, half_yearlies=8),
    "BANKNIFTY": _Cycle("NFO", TUESDAY, quarterlies=3),
    "FINNIFTY": _Cycle("NFO", TUESDAY),
    "MIDCPNIFTY": _Cycle("NFO", TUESDAY),
    "NIFTYNXT50": _Cycle("NFO", TUESDAY),
    "NSE_STOCK": _Cycle("NFO", TUESDAY),
    "SENSEX": _Cycle("BFO", THURSDAY, weeklies=4),
    "BANKEX": _Cycle("BFO", THURSDAY),
    "BSE_STOCK": _Cycle("BFO", THURSDAY),
}
FAMILIES: frozenset[str] = frozenset(_CYCLES)


@dataclass(frozen=True, slots=True)
class _CommodityRule:
    """An MCX futures expiry: `day` of each listed month (None: the month's last day)."""

    day: int | None
    months: tuple[int, ...]


_EVERY_MONTH = tuple(range(1, 13))
# Unsourced approximations (no MCX contract specifications in MARKET-FACTS): energy contracts
# expire shortly before their NYMEX counterparts, bullion on the 5th of its contract months,
# base metals at month end.
_MCX_RULES: dict[str, _CommodityRule] = {
    "CRUDEOIL": _CommodityRule(19, _EVERY_MONTH),
    "CRUDEOILM": _CommodityRule(19, _EVERY_MONTH),
    "NATURALGAS": _CommodityRule(25, _EVERY_MONTH),
    "GOLD": _CommodityRule(5, (2, 4, 6, 8, 10, 12)),
    "GOLDM": _CommodityRule(5, (2, 4, 6, 8, 10, 12)),
    "SILVER": _CommodityRule(5, (3, 5, 7, 9, 12)),
    "SILVERM": _CommodityRule(5, (3, 5, 7, 9, 12)),
    "COPPER": _CommodityRule(None, _EVERY_MONTH),
}
MCX_COMMODITIES: frozenset[str] = frozenset(_MCX_RULES)
_MCX_LISTED = 3


def _months_from(year: int, month: int) -> Iterator[tuple[int, int]]:
    """(year, month) pairs from the given month onwards, without end."""
    for offset in count():
        yield year + (month - 1 + offset) // 12, (month - 1 + offset) % 12 + 1


def _last_day(year: int, month: int) -> date:
    next_month = date(year + month // 12, month % 12 + 1, 1)
    return next_month - timedelta(days=1)


def _last_weekday(year: int, month: int, weekday: int) -> date:
    """The last `weekday` (0 = Monday) of the month: the nominal monthly expiry."""
    last = _last_day(year, month)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _monthly_contracts(
    cycle: _Cycle, today: date, calendar: MarketCalendar
) -> Iterator[tuple[int, int, date]]:
    """(year, month, expiry) of every month-end contract still alive on `today`."""
    for year, month in _months_from(today.year, today.month):
        nominal = _last_weekday(year, month, cycle.weekday)
        expiry = calendar.trading_day_on_or_before(cycle.exchange, nominal)
        if expiry >= today:
            yield year, month, expiry


def _longer_tenors(cycle: _Cycle, today: date, calendar: MarketCalendar) -> list[ContractExpiry]:
    """The monthly, then quarterly, then half-yearly contracts, each tier after the one before."""
    contracts = _monthly_contracts(cycle, today, calendar)
    tiers = (
        (ExpiryKind.MONTHLY, cycle.monthlies, _EVERY_MONTH),
        (ExpiryKind.QUARTERLY, cycle.quarterlies, _QUARTER_MONTHS),
        (ExpiryKind.HALF_YEARLY, cycle.half_yearlies, _HALF_YEAR_MONTHS),
    )
    listed: list[ContractExpiry] = []
    for kind, wanted, months in tiers:
        # `contracts` is one shared iterator, so each tier starts after the previous tier's last.
        eligible = (expiry for _, month, expiry in contracts if month in months)
        listed.extend(ContractExpiry(expiry, kind) for expiry in islice(eligible, wanted))
    return listed


def _weeklies(cycle: _Cycle, today: date, calendar: MarketCalendar) -> list[ContractExpiry]:
    """The nearest weekly expiries, excluding each month's last week (the monthly contract)."""
    nominal = today + timedelta(days=(cycle.weekday - today.weekday()) % 7)
    listed: list[ContractExpiry] = []
    while len(listed) < cycle.weeklies:
        is_monthly = nominal == _last_weekday(nominal.year, nominal.month, cycle.weekday)
        expiry = calendar.trading_day_on_or_before(cycle.exchange, nominal)
        if not is_monthly and expiry >= today:
            listed.append(ContractExpiry(expiry, ExpiryKind.WEEKLY))
        nominal += timedelta(days=7)
    return listed


def expiry_schedule(family: str, today: date, calendar: MarketCalendar) -> list[ContractExpiry]:
    """Every contract of `family` listed on `today` (expiring today or later), by date."""
    cycle = _CYCLES.get(family)
    if cycle is None:
        raise ValueError(f"unknown derivatives family: {family!r}; known: {sorted(FAMILIES)}")
    by_day: dict[date, ContractExpiry] = {}
    # Longer tenors first, so a date both cycles reach keeps the longer contract's kind.
    for contract in [*_longer_tenors(cycle, today, calendar), *_weeklies(cycle, today, calendar)]:
        by_day.setdefault(contract.day, contract)
    return sorted(by_day.values(), key=lambda contract: contract.day)


def _mcx_day_on_or_before(day: date, calendar: MarketCalendar) -> date:
    """The nearest day at or before `day` with MCX's full (morning) session.

    Evening-only days are skipped too: they are bank holidays, when nothing can settle.
    """
    current = day
    while not any(s.kind == "normal" for s in calendar.sessions("MCX", current)):
        current -= timedelta(days=1)
    return current


def mcx_expiries(commodity: str, today: date, calendar: MarketCalendar) -> list[date]:
    """The expiries of the next three `commodity` futures alive on `today` (approximate rule)."""
    rule = _MCX_RULES.get(commodity)
    if rule is None:
        raise ValueError(f"unknown MCX commodity: {commodity!r}; known: {sorted(MCX_COMMODITIES)}")
    nominals = (
        _last_day(year, month) if rule.day is None else date(year, month, rule.day)
        for year, month in _months_from(today.year, today.month)
        if month in rule.months
    )
    expiries = (_mcx_day_on_or_before(nominal, calendar) for nominal in nominals)
    return list(islice((expiry for expiry in expiries if expiry >= today), _MCX_LISTED))


# When a contract's time value runs out on its expiry day (API.md 4.6): option greeks and the
# simulator both count time to expiry to these IST cut-offs.
EXPIRY_CUTOFF: dict[Exchange, time] = {
    Exchange.NFO: time(15, 30),
    Exchange.BFO: time(15, 30),
    Exchange.CDS: time(12, 30),
    Exchange.BCD: time(12, 30),
    Exchange.MCX: time(23, 30),
}


def expiry_instant(exchange: Exchange, expiry: date) -> datetime:
    """The aware instant a contract expiring on `expiry` on `exchange` stops trading."""
    return datetime.combine(expiry, EXPIRY_CUTOFF.get(exchange, time(15, 30)), tzinfo=IST)
