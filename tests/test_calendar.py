"""The exchange calendar against MARKET-FACTS §5 (holidays, special sessions, hours)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from services.clock import IST
from services.market.calendar import MarketCalendar
from services.market.model import Session

EQUITY_AND_FNO = ("NSE", "BSE", "NFO", "BFO", "NSE_INDEX", "BSE_INDEX")
CLOSED_ON_HOLIDAYS = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD")

# MARKET-FACTS §5.1, the weekday trading holidays.
HOLIDAYS_2025 = [
    date(2025, 2, 26), date(2025, 3, 14), date(2025, 3, 31), date(2025, 4, 10),
    date(2025, 4, 14), date(2025, 4, 18), date(2025, 5, 1), date(2025, 8, 15),
    date(2025, 8, 27), date(2025, 10, 2), date(2025, 10, 21), date(2025, 10, 22),
    date(2025, 11, 5), date(2025, 12, 25),
]  # fmt: skip
HOLIDAYS_2026 = [
    date(2026, 1, 15), date(2026, 1, 26), date(2026, 3, 3), date(2026, 3, 26),
    date(2026, 3, 31), date(2026, 4, 3), date(2026, 4, 14), date(2026, 5, 1),
    date(2026, 5, 28), date(2026, 6, 26), date(2026, 9, 14), date(2026, 10, 2),
    date(2026, 10, 20), date(2026, 11, 10), date(2026, 11, 24), date(2026, 12, 25),
]  # fmt: skip


@pytest.fixture(scope="module")
def calendar() -> MarketCalendar:
    return MarketCalendar()


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute, second), tzinfo=IST)


def spans(sessions: list[Session]) -> list[tuple[str, time, time]]:
    return [(s.kind, s.start.time(), s.end.time()) for s in sessions]


@pytest.mark.parametrize("day", HOLIDAYS_2025 + HOLIDAYS_2026)
def test_every_published_holiday_closes_equity_fno_and_currency(
    calendar: MarketCalendar, day: date
) -> None:
    for exchange in (*EQUITY_AND_FNO, "CDS", "BCD"):
        assert not calendar.is_trading_day(exchange, day), exchange
    # MCX keeps its evening session on exchange holidays (approximation, MARKET-FACTS §5.1).
    assert [s.kind for s in calendar.sessions("MCX", day)] == ["evening"]
    assert calendar.is_trading_day("MCX", day)


def test_trading_day_counts_match_the_published_lists(calendar: MarketCalendar) -> None:
    # 261 weekdays in each year, less the holidays, plus the weekend budget session.
    assert len(calendar.trading_days("NSE", date(2025, 1, 1), date(2025, 12, 31))) == 248
    assert len(calendar.trading_days("NSE", date(2026, 1, 1), date(2026, 12, 31))) == 246
    assert len(calendar.trading_days("CDS", date(2026, 1, 1), date(2026, 12, 31))) == 245


@pytest.mark.parametrize("day", [date(2026, 11, 20), date(2026, 11, 23), date(2025, 9, 5)])
def test_ordinary_weekdays_trade_everywhere(calendar: MarketCalendar, day: date) -> None:
    for exchange in (*EQUITY_AND_FNO, "CDS", "BCD", "MCX"):
        assert calendar.is_trading_day(exchange, day), exchange


@pytest.mark.parametrize("day", [date(2026, 11, 21), date(2026, 11, 22), date(2025, 6, 7)])
def test_weekends_are_closed_everywhere(calendar: MarketCalendar, day: date) -> None:
    for exchange in (*EQUITY_AND_FNO, "CDS", "BCD", "MCX"):
        assert not calendar.is_trading_day(exchange, day)
        assert calendar.sessions(exchange, day) == []
    assert calendar.timings(day) == []


def test_currency_segment_holiday_moved_to_the_eighth(calendar: MarketCalendar) -> None:
    assert not calendar.is_trading_day("CDS", date(2025, 9, 8))
    assert not calendar.is_trading_day("BCD", date(2025, 9, 8))
    assert calendar.is_trading_day("CDS", date(2025, 9, 5))
    assert calendar.is_trading_day("NSE", date(2025, 9, 8))
    assert [s.kind for s in calendar.sessions("MCX", date(2025, 9, 8))] == ["normal", "evening"]


@pytest.mark.parametrize("day", [date(2025, 2, 1), date(2026, 2, 1)])
def test_budget_weekend_sessions_trade_equity_and_fno_only(
    calendar: MarketCalendar, day: date
) -> None:
    assert day.weekday() in (5, 6)
    for exchange in EQUITY_AND_FNO:
        assert calendar.is_trading_day(exchange, day)
    for exchange in ("CDS", "BCD", "MCX"):
        assert not calendar.is_trading_day(exchange, day)
    assert spans(calendar.sessions("NSE", day)) == [
        ("pre_open", time(9, 0), time(9, 8)),
        ("normal", time(9, 15), time(15, 30)),
    ]


def test_fno_pre_open_starts_on_2025_12_08(calendar: MarketCalendar) -> None:
    assert [s.kind for s in calendar.sessions("NFO", date(2025, 2, 1))] == ["normal"]
    assert [s.kind for s in calendar.sessions("NFO", date(2025, 12, 5))] == ["normal"]
    assert [s.kind for s in calendar.sessions("NFO", date(2025, 12, 8))] == ["pre_open", "normal"]
    assert [s.kind for s in calendar.sessions("BFO", date(2026, 2, 1))] == ["pre_open", "normal"]


def test_nfo_closes_at_15_40_from_2026_08_03(calendar: MarketCalendar) -> None:
    before, after = date(2026, 7, 31), date(2026, 8, 3)
    assert calendar.sessions("NFO", before)[-1].end == at(before, 15, 30)
    assert calendar.sessions("NFO", after)[-1].end == at(after, 15, 40)
    assert calendar.is_open("NFO", at(after, 15, 35))
    assert not calendar.is_open("NFO", at(before, 15, 35))
    # BSE's post-auction timings are unknown; BFO and the cash market keep 15:30.
    assert not calendar.is_open("BFO", at(after, 15, 35))
    assert not calendar.is_open("NSE", at(after, 15, 35))


def test_muhurat_2025_is_one_hour_on_a_holiday(calendar: MarketCalendar) -> None:
    day = date(2025, 10, 21)
    assert not calendar.is_trading_day("NSE", day)
    assert spans(calendar.sessions("NSE", day)) == [("muhurat", time(13, 45), time(14, 45))]
    assert calendar.is_open("NFO", at(day, 14, 0))
    assert not calendar.is_open("NSE", at(day, 15, 0))
    assert calendar.sessions("CDS", day) == []


def test_muhurat_2026_is_on_a_sunday_evening(calendar: MarketCalendar) -> None:
    day = date(2026, 11, 8)
    assert spans(calendar.sessions("BSE", day)) == [("muhurat", time(18, 0), time(19, 15))]
    assert not calendar.is_trading_day("BSE", day)
    assert calendar.sessions("MCX", day) == []


def test_is_open_follows_the_sessions(calendar: MarketCalendar) -> None:
    day = date(2026, 11, 23)
    assert calendar.is_open("NSE", at(day, 9, 5))  # pre-open
    assert not calendar.is_open("NSE", at(day, 9, 10))  # between pre-open and open
    assert calendar.is_open("NSE", at(day, 9, 15))
    assert calendar.is_open("NSE", at(day, 15, 29, 59))
    assert not calendar.is_open("NSE", at(day, 15, 30))
    assert calendar.is_open("NSE_INDEX", datetime(2026, 11, 23, 4, 0, tzinfo=UTC))  # 09:30 IST
    assert calendar.is_open("CDS", at(day, 16, 59))
    assert calendar.is_open("MCX", at(day, 23, 54))
    assert not calendar.is_open("NSE", at(date(2026, 11, 24), 10, 0))


def test_is_open_rejects_naive_datetimes(calendar: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="aware"):
        calendar.is_open("NSE", datetime(2026, 11, 23, 10, 0))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("day", "close"),
    [
        (date(2026, 3, 6), time(23, 55)),  # US DST starts Sun 2026-03-08
        (date(2026, 3, 9), time(23, 30)),
        (date(2026, 10, 30), time(23, 30)),  # US DST ends Sun 2026-11-01
        (date(2026, 11, 2), time(23, 55)),
        (date(2025, 3, 7), time(23, 55)),  # 2025: 03-09 to 11-02
        (date(2025, 3, 10), time(23, 30)),
        (date(2025, 10, 31), time(23, 30)),
        (date(2025, 11, 3), time(23, 55)),
    ],
)
def test_mcx_evening_close_follows_us_daylight_saving(
    calendar: MarketCalendar, day: date, close: time
) -> None:
    assert spans(calendar.sessions("MCX", day)) == [
        ("normal", time(9, 0), time(17, 0)),
        ("evening", time(17, 0), close),
    ]


def test_mcx_keeps_only_the_evening_on_an_nse_holiday(calendar: MarketCalendar) -> None:
    day = date(2026, 1, 26)
    assert not calendar.is_open("MCX", at(day, 10, 0))
    assert calendar.is_open("MCX", at(day, 18, 0))


def test_indices_follow_their_cash_exchange(calendar: MarketCalendar) -> None:
    for day in (date(2026, 11, 23), date(2026, 11, 24), date(2026, 2, 1)):
        assert calendar.sessions("NSE_INDEX", day) == calendar.sessions("NSE", day)
        assert calendar.sessions("BSE_INDEX", day) == calendar.sessions("BSE", day)


def test_sessions_are_aware_ist_and_a_copy(calendar: MarketCalendar) -> None:
    sessions = calendar.sessions("NSE", date(2026, 11, 23))
    assert all(s.start.utcoffset() == timedelta(hours=5, minutes=30) for s in sessions)
    sessions.clear()
    assert len(calendar.sessions("NSE", date(2026, 11, 23))) == 2


def test_unknown_exchange_is_named_in_the_error(calendar: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="NYSE"):
        calendar.is_trading_day("NYSE", date(2026, 11, 23))
    with pytest.raises(ValueError, match="nse"):
        calendar.sessions("nse", date(2026, 11, 23))


@pytest.mark.parametrize(
    ("day", "days", "expected"),
    [
        (date(2026, 11, 20), 1, date(2026, 11, 23)),  # over a weekend
        (date(2026, 11, 23), 1, date(2026, 11, 25)),  # over Guru Nanak Jayanti
        (date(2026, 11, 20), 2, date(2026, 11, 25)),
        (date(2025, 10, 20), 1, date(2025, 10, 23)),  # over the Diwali pair (Muhurat day too)
        (date(2026, 4, 2), 1, date(2026, 4, 6)),  # over Good Friday and the weekend
        (date(2026, 1, 30), 1, date(2026, 2, 1)),  # the budget Sunday trades
        (date(2026, 12, 31), 1, date(2027, 1, 1)),  # unknown year: weekdays trade
    ],
)
def test_next_trading_day(calendar: MarketCalendar, day: date, days: int, expected: date) -> None:
    assert calendar.next_trading_day("NSE", day, days) == expected


def test_next_trading_day_needs_a_positive_count(calendar: MarketCalendar) -> None:
    with pytest.raises(ValueError, match="days"):
        calendar.next_trading_day("NSE", date(2026, 11, 23), 0)


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2026, 11, 23), date(2026, 11, 20)),
        (date(2026, 11, 25), date(2026, 11, 23)),
        (date(2026, 3, 4), date(2026, 3, 2)),
        (date(2026, 4, 6), date(2026, 4, 2)),
        (date(2025, 10, 23), date(2025, 10, 20)),
    ],
)
def test_previous_trading_day(calendar: MarketCalendar, day: date, expected: date) -> None:
    assert calendar.previous_trading_day("NFO", day) == expected


def test_trading_day_on_or_before(calendar: MarketCalendar) -> None:
    assert calendar.trading_day_on_or_before("NFO", date(2026, 11, 24)) == date(2026, 11, 23)
    assert calendar.trading_day_on_or_before("NFO", date(2026, 11, 23)) == date(2026, 11, 23)
    assert calendar.trading_day_on_or_before("BFO", date(2026, 3, 26)) == date(2026, 3, 25)
    assert calendar.trading_day_on_or_before("NSE", date(2026, 11, 22)) == date(2026, 11, 20)


def test_trading_days_is_inclusive(calendar: MarketCalendar) -> None:
    assert calendar.trading_days("NSE", date(2026, 11, 20), date(2026, 11, 27)) == [
        date(2026, 11, 20), date(2026, 11, 23), date(2026, 11, 25),
        date(2026, 11, 26), date(2026, 11, 27),
    ]  # fmt: skip
    assert calendar.trading_days("NSE", date(2026, 11, 27), date(2026, 11, 20)) == []


@pytest.mark.parametrize(
    ("exchange", "trade_day", "expected"),
    [
        ("NSE", date(2026, 11, 20), date(2026, 11, 23)),
        ("NSE", date(2026, 11, 23), date(2026, 11, 25)),
        ("NFO", date(2026, 1, 30), date(2026, 2, 2)),  # the budget Sunday does not settle
        ("NSE", date(2026, 2, 1), date(2026, 2, 2)),
        ("NSE", date(2025, 10, 21), date(2025, 10, 23)),  # Muhurat trades
        ("MCX", date(2026, 1, 23), date(2026, 1, 27)),  # evening-only Republic Day
        ("CDS", date(2025, 9, 5), date(2025, 9, 9)),
    ],
)
def test_settlement_is_the_next_settlement_day(
    calendar: MarketCalendar, exchange: str, trade_day: date, expected: date
) -> None:
    assert calendar.settlement_date(exchange, trade_day) == expected


def test_holidays_2026_rows(calendar: MarketCalendar) -> None:
    rows = calendar.holidays(2026)
    trading = [row for row in rows if row.holiday_type == "TRADING_HOLIDAY"]
    special = [row for row in rows if row.holiday_type == "SPECIAL_SESSION"]
    assert [row.day for row in trading] == HOLIDAYS_2026
    assert [row.day for row in special] == [date(2026, 2, 1), date(2026, 11, 8)]
    assert [row.day for row in rows] == sorted(row.day for row in rows)
    republic = trading[1]
    assert republic.description == "Republic Day"
    assert republic.closed_exchanges == CLOSED_ON_HOLIDAYS
    [mcx] = republic.open_exchanges
    assert (mcx.exchange, mcx.start, mcx.end) == (
        "MCX",
        at(republic.day, 17),
        at(republic.day, 23, 55),
    )
    budget = special[0]
    assert budget.closed_exchanges == ()
    assert [(w.exchange, w.start.time(), w.end.time()) for w in budget.open_exchanges] == [
        (exchange, time(9, 15), time(15, 30)) for exchange in ("NSE", "BSE", "NFO", "BFO")
    ]
    assert {w.end.time() for w in special[1].open_exchanges} == {time(19, 15)}


def test_holidays_2025_include_the_currency_day_and_the_muhurat(calendar: MarketCalendar) -> None:
    rows = calendar.holidays(2025)
    currency = next(row for row in rows if row.day == date(2025, 9, 8))
    assert currency.closed_exchanges == ("CDS", "BCD")
    assert currency.open_exchanges == ()
    diwali = [row.holiday_type for row in rows if row.day == date(2025, 10, 21)]
    assert diwali == ["TRADING_HOLIDAY", "SPECIAL_SESSION"]
    assert len(rows) == 15 + 2


def test_years_after_the_published_lists(calendar: MarketCalendar) -> None:
    assert calendar.known_through == date(2026, 12, 31)
    assert calendar.holidays(2027) == []
    # Not guessed: Republic Day 2027 is a Tuesday the calendar cannot know about yet.
    assert calendar.is_trading_day("NSE", date(2027, 1, 26))
    assert not calendar.is_trading_day("NSE", date(2027, 1, 30))


def test_timings_on_a_normal_day(calendar: MarketCalendar) -> None:
    day = date(2026, 11, 23)
    rows = {row.exchange: (row.start.time(), row.end.time()) for row in calendar.timings(day)}
    assert rows == {
        "NSE": (time(9, 15), time(15, 30)),
        "BSE": (time(9, 15), time(15, 30)),
        "NFO": (time(9, 15), time(15, 40)),
        "BFO": (time(9, 15), time(15, 30)),
        "CDS": (time(9, 0), time(17, 0)),
        "BCD": (time(9, 0), time(17, 0)),
        "MCX": (time(9, 0), time(23, 55)),
    }


def test_timings_on_a_holiday_list_only_mcx_evening(calendar: MarketCalendar) -> None:
    day = date(2026, 11, 24)
    assert [(r.exchange, r.start, r.end) for r in calendar.timings(day)] == [
        ("MCX", at(day, 17), at(day, 23, 55))
    ]


def write_year(directory: Path, year: int, body: str) -> None:
    (directory / f"{year}.toml").write_text(f"year = {year}\n{body}", encoding="utf-8")


def test_a_custom_data_directory(tmp_path: Path) -> None:
    write_year(
        tmp_path,
        2030,
        '[[holidays]]\ndate = 2030-01-01\ndescription = "Test"\nclosed = ["NSE"]\nsource = "t"\n',
    )
    calendar = MarketCalendar(tmp_path)
    assert calendar.known_through == date(2030, 12, 31)
    assert not calendar.is_trading_day("NSE", date(2030, 1, 1))
    assert calendar.is_trading_day("BSE", date(2030, 1, 1))
    assert [row.closed_exchanges for row in calendar.holidays(2030)] == [("NSE",)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[holidays]]\ndate = 2031-01-01\ndescription = "x"\nsource = "t"\n', "outside"),
        ('[[holidays]]\ndate = 2030-01-01\ndescription = "x"\nclosed = ["NYSE"]\n'
         'source = "t"\n', "NYSE"),
        ('[[special_sessions]]\ndate = 2030-01-05\ndescription = "x"\nkind = "muhurat"\n'
         'exchanges = ["NSE"]\nsource = "t"\n', "start and end"),
    ],
)  # fmt: skip
def test_bad_data_files_are_rejected(tmp_path: Path, body: str, message: str) -> None:
    write_year(tmp_path, 2030, body)
    with pytest.raises(ValueError, match=message):
        MarketCalendar(tmp_path)


def test_an_empty_data_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no calendar data"):
        MarketCalendar(tmp_path)
