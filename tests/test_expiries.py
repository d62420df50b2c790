"""Expiry schedules against MARKET-FACTS §4 (current regime, holiday shifts) and their rules."""

from __future__ import annotations

import calendar as gregorian
from collections import Counter
from datetime import date, timedelta

import pytest

from services.market.calendar import MarketCalendar
from services.market.expiries import (
    FAMILIES,
    MCX_COMMODITIES,
    ContractExpiry,
    expiry_schedule,
    mcx_expiries,
)
from services.market.model import ExpiryKind

TODAY = date(2026, 11, 22)
W, M, Q, H = ExpiryKind.WEEKLY, ExpiryKind.MONTHLY, ExpiryKind.QUARTERLY, ExpiryKind.HALF_YEARLY
TUESDAY, THURSDAY = 1, 3

# family: (exchange, weekday, weeklies, monthlies, quarterlies, half-yearlies)
CYCLES = {
    "NIFTY": ("NFO", TUESDAY, 4, 3, 3, 8),
    "BANKNIFTY": ("NFO", TUESDAY, 0, 3, 3, 0),
    "FINNIFTY": ("NFO", TUESDAY, 0, 3, 0, 0),
    "MIDCPNIFTY": ("NFO", TUESDAY, 0, 3, 0, 0),
    "NIFTYNXT50": ("NFO", TUESDAY, 0, 3, 0, 0),
    "NSE_STOCK": ("NFO", TUESDAY, 0, 3, 0, 0),
    "SENSEX": ("BFO", THURSDAY, 4, 3, 0, 0),
    "BANKEX": ("BFO", THURSDAY, 0, 3, 0, 0),
    "BSE_STOCK": ("BFO", THURSDAY, 0, 3, 0, 0),
}


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


def schedule(family: str, today: date, calendar: MarketCalendar) -> list[tuple[date, ExpiryKind]]:
    return [(c.day, c.kind) for c in expiry_schedule(family, today, calendar)]


def last_weekday(year: int, month: int, weekday: int) -> date:
    """Independent oracle: the last `weekday` of a month from the stdlib calendar."""
    days = [week[weekday] for week in gregorian.monthcalendar(year, month) if week[weekday]]
    return date(year, month, days[-1])


def test_the_families() -> None:
    assert set(CYCLES) == FAMILIES
    expected = {"CRUDEOIL", "CRUDEOILM", "NATURALGAS", "GOLD", "GOLDM", "SILVER", "SILVERM"}
    assert expected | {"COPPER"} <= MCX_COMMODITIES


def test_nifty_on_2026_11_22(calendar: MarketCalendar) -> None:
    assert schedule("NIFTY", TODAY, calendar) == [
        (date(2026, 11, 23), M),  # Tue 11-24 is Guru Nanak Jayanti
        (date(2026, 12, 1), W), (date(2026, 12, 8), W), (date(2026, 12, 15), W),
        (date(2026, 12, 22), W),
        (date(2026, 12, 29), M), (date(2027, 1, 26), M),
        (date(2027, 3, 30), Q), (date(2027, 6, 29), Q), (date(2027, 9, 28), Q),
        (date(2027, 12, 28), H), (date(2028, 6, 27), H), (date(2028, 12, 26), H),
        (date(2029, 6, 26), H), (date(2029, 12, 25), H), (date(2030, 6, 25), H),
        (date(2030, 12, 31), H), (date(2031, 6, 24), H),
    ]  # fmt: skip


def test_banknifty_on_2026_11_22(calendar: MarketCalendar) -> None:
    assert schedule("BANKNIFTY", TODAY, calendar) == [
        (date(2026, 11, 23), M), (date(2026, 12, 29), M), (date(2027, 1, 26), M),
        (date(2027, 3, 30), Q), (date(2027, 6, 29), Q), (date(2027, 9, 28), Q),
    ]  # fmt: skip


@pytest.mark.parametrize("family", ["FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "NSE_STOCK"])
def test_nse_monthly_only_families_on_2026_11_22(calendar: MarketCalendar, family: str) -> None:
    assert schedule(family, TODAY, calendar) == [
        (date(2026, 11, 23), M), (date(2026, 12, 29), M), (date(2027, 1, 26), M),
    ]  # fmt: skip


def test_sensex_on_2026_11_22(calendar: MarketCalendar) -> None:
    assert schedule("SENSEX", TODAY, calendar) == [
        (date(2026, 11, 26), M),
        (date(2026, 12, 3), W), (date(2026, 12, 10), W), (date(2026, 12, 17), W),
        (date(2026, 12, 24), W),
        (date(2026, 12, 31), M), (date(2027, 1, 28), M),
    ]  # fmt: skip


@pytest.mark.parametrize("family", ["BANKEX", "BSE_STOCK"])
def test_bse_monthly_only_families_on_2026_11_22(calendar: MarketCalendar, family: str) -> None:
    assert schedule(family, TODAY, calendar) == [
        (date(2026, 11, 26), M), (date(2026, 12, 31), M), (date(2027, 1, 28), M),
    ]  # fmt: skip


# MARKET-FACTS §4.2: the two confirmed March 2026 shifts and the derived ones.
@pytest.mark.parametrize(
    ("family", "today", "expected"),
    [
        ("NIFTY", date(2026, 3, 1), ContractExpiry(date(2026, 3, 30), M)),
        ("SENSEX", date(2026, 3, 1), ContractExpiry(date(2026, 3, 25), M)),
        ("BANKNIFTY", date(2026, 11, 1), ContractExpiry(date(2026, 11, 23), M)),
        ("NIFTY", date(2026, 11, 1), ContractExpiry(date(2026, 11, 9), W)),
        ("BANKEX", date(2025, 12, 1), ContractExpiry(date(2025, 12, 24), M)),
        ("BSE_STOCK", date(2026, 5, 1), ContractExpiry(date(2026, 5, 27), M)),
        ("NIFTY", date(2025, 10, 14), ContractExpiry(date(2025, 10, 20), W)),
        ("NIFTY", date(2026, 3, 1), ContractExpiry(date(2026, 3, 2), W)),
        ("NIFTY", date(2026, 4, 7), ContractExpiry(date(2026, 4, 13), W)),
        ("NIFTY", date(2026, 10, 13), ContractExpiry(date(2026, 10, 19), W)),
        ("SENSEX", date(2025, 9, 26), ContractExpiry(date(2025, 10, 1), W)),
        ("SENSEX", date(2026, 1, 9), ContractExpiry(date(2026, 1, 14), W)),
    ],
)
def test_holiday_shifts_from_market_facts(
    calendar: MarketCalendar, family: str, today: date, expected: ContractExpiry
) -> None:
    listed = expiry_schedule(family, today, calendar)
    assert expected in listed
    nominal = expected.day + timedelta(days=(CYCLES[family][1] - expected.day.weekday()) % 7)
    assert nominal not in [contract.day for contract in listed]


def test_nse_and_bse_monthlies_of_2026(calendar: MarketCalendar) -> None:
    firsts = [date(2026, month, 1) for month in range(1, 13)]
    nse = [expiry_schedule("NSE_STOCK", first, calendar)[0].day for first in firsts]
    bse = [expiry_schedule("BSE_STOCK", first, calendar)[0].day for first in firsts]
    assert [day.day for day in nse] == [27, 24, 30, 28, 26, 30, 28, 25, 29, 27, 23, 29]
    assert [day.day for day in bse] == [29, 26, 25, 30, 27, 25, 30, 27, 24, 29, 26, 31]


def test_an_expiry_is_listed_on_its_own_day_and_gone_the_next(calendar: MarketCalendar) -> None:
    assert expiry_schedule("NIFTY", date(2026, 11, 23), calendar)[0] == ContractExpiry(
        date(2026, 11, 23), M
    )
    after = [c.day for c in expiry_schedule("NIFTY", date(2026, 11, 24), calendar)]
    assert date(2026, 11, 23) not in after
    assert after[0] == date(2026, 12, 1)


def test_unknown_family_is_rejected(calendar: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="NIFTYIT"):
        expiry_schedule("NIFTYIT", TODAY, calendar)


def shifted_from(calendar: MarketCalendar, exchange: str, day: date, nominal: date) -> bool:
    """Whether `day` is `nominal`, or the trading day before it with every day between closed."""
    closed_between = all(
        not calendar.is_trading_day(exchange, day + timedelta(days=offset))
        for offset in range(1, (nominal - day).days + 1)
    )
    return day <= nominal and closed_between and calendar.is_trading_day(exchange, day)


def check_schedule(calendar: MarketCalendar, family: str, today: date) -> None:
    exchange, weekday, *counts = CYCLES[family]
    listed = expiry_schedule(family, today, calendar)
    days = [contract.day for contract in listed]
    assert days == sorted(set(days)) and days[0] >= today
    kinds = Counter(contract.kind for contract in listed)
    assert [kinds[W], kinds[M], kinds[Q], kinds[H]] == counts
    months = [(c.day.year, c.day.month) for c in listed if c.kind != W]
    assert len(set(months)) == len(months)  # one month-end contract per month
    for contract in listed:
        if contract.kind == W:
            nominal = contract.day + timedelta(days=(weekday - contract.day.weekday()) % 7)
            assert nominal != last_weekday(nominal.year, nominal.month, weekday)
        else:
            nominal = last_weekday(contract.day.year, contract.day.month, weekday)
        if contract.day <= calendar.known_through:
            assert shifted_from(calendar, exchange, contract.day, nominal), (family, contract)
        else:
            assert contract.day == calendar.trading_day_on_or_before(exchange, nominal)
    assert all(c.day.month in (3, 6, 9, 12) for c in listed if c.kind == Q)
    assert all(c.day.month in (6, 12) for c in listed if c.kind == H)


@pytest.mark.parametrize("family", sorted(CYCLES))
def test_every_day_of_the_next_twelve_months(calendar: MarketCalendar, family: str) -> None:
    for offset in range(366):
        check_schedule(calendar, family, TODAY + timedelta(days=offset))


def test_weeklies_are_the_nearest_non_monthly_weeks(calendar: MarketCalendar) -> None:
    for offset in range(0, 366, 3):
        today = TODAY + timedelta(days=offset)
        for family in ("NIFTY", "SENSEX"):
            weekday = CYCLES[family][1]
            weeklies = [c.day for c in expiry_schedule(family, today, calendar) if c.kind == W]
            nominal = today + timedelta(days=(weekday - today.weekday()) % 7)
            expected: list[date] = []
            while len(expected) < 4:
                if nominal != last_weekday(nominal.year, nominal.month, weekday):
                    expected.append(nominal)
                nominal += timedelta(days=7)
            # Each listed weekly is its week's nominal day, moved back over any holiday.
            assert len(weeklies) == 4
            for day, nominal_day in zip(weeklies, expected, strict=True):
                assert day == calendar.trading_day_on_or_before(CYCLES[family][0], nominal_day)


def test_monthlies_are_consecutive_months(calendar: MarketCalendar) -> None:
    for offset in range(0, 366, 5):
        today = TODAY + timedelta(days=offset)
        monthlies = [c.day for c in expiry_schedule("NIFTY", today, calendar) if c.kind == M]
        indexes = [day.year * 12 + day.month for day in monthlies]
        assert indexes == list(range(indexes[0], indexes[0] + 3))
        assert indexes[0] in (today.year * 12 + today.month, today.year * 12 + today.month + 1)


@pytest.mark.parametrize(
    ("commodity", "expected"),
    [
        ("CRUDEOIL", [date(2026, 12, 18), date(2027, 1, 19), date(2027, 2, 19)]),  # 12-19 is Sat
        ("NATURALGAS", [date(2026, 11, 25), date(2026, 12, 24), date(2027, 1, 25)]),  # Christmas
        ("GOLD", [date(2026, 12, 4), date(2027, 2, 5), date(2027, 4, 5)]),
        ("SILVER", [date(2026, 12, 4), date(2027, 3, 5), date(2027, 5, 5)]),
        ("COPPER", [date(2026, 11, 30), date(2026, 12, 31), date(2027, 1, 29)]),
    ],
)
def test_mcx_expiries_on_2026_11_22(
    calendar: MarketCalendar, commodity: str, expected: list[date]
) -> None:
    assert mcx_expiries(commodity, TODAY, calendar) == expected


def test_mcx_expiries_fall_on_full_mcx_days(calendar: MarketCalendar) -> None:
    for commodity in sorted(MCX_COMMODITIES):
        for offset in range(0, 366, 7):
            today = TODAY + timedelta(days=offset)
            expiries = mcx_expiries(commodity, today, calendar)
            assert len(expiries) == 3 and expiries == sorted(set(expiries))
            assert expiries[0] >= today
            for expiry in expiries:
                kinds = [s.kind for s in calendar.sessions("MCX", expiry)]
                assert kinds == ["normal", "evening"], (commodity, expiry)


def test_mcx_expiry_day_is_still_listed(calendar: MarketCalendar) -> None:
    assert mcx_expiries("CRUDEOIL", date(2027, 1, 19), calendar)[0] == date(2027, 1, 19)
    assert mcx_expiries("CRUDEOIL", date(2027, 1, 20), calendar)[0] == date(2027, 2, 19)


def test_unknown_commodity_is_rejected(calendar: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="WHEAT"):
        mcx_expiries("WHEAT", TODAY, calendar)
