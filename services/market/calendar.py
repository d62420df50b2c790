"""The Indian exchange calendar: trading days, sessions, settlement days and holiday rows.

Holidays and special sessions come from the bundled per-year TOML files in `data/calendar`,
transcribed from the exchanges' circulars (MARKET-FACTS §5); every entry names its source. No
maintained library covers NSE/BSE adequately (exchange_calendars has no XNSE and misses weekend
sessions; pandas_market_calendars reports every 2027 weekday as open without warning).

Outside the years covered by the files (2027 is not published yet) the calendar knows nothing:
weekends are closed and every weekday is assumed to trade. `known_through` says where the
published lists end, so callers can warn rather than trust a guess.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from services.clock import IST
from services.market.model import ExchangeWindow, HolidayRecord, Session

BUNDLED_DATA_DIR = Path(__file__).parent / "data" / "calendar"

# Where each accepted exchange code trades: an index follows its cash exchange.
_VENUE_OF = {
    "NSE": "NSE", "NSE_INDEX": "NSE", "BSE": "BSE", "BSE_INDEX": "BSE",
    "NFO": "NFO", "BFO": "BFO", "CDS": "CDS", "BCD": "BCD", "MCX": "MCX", "MCX_INDEX": "MCX",
}  # fmt: skip
# The venues in the order /market/timings and /market/holidays list them.
VENUES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")

# NSE/FAOP/71092: pre-open 09:00-09:08 for F&O from 2025-12-08.
FNO_PRE_OPEN_FROM = date(2025, 12, 8)
# NSE/FAOP/74467: with the closing auction, NSE F&O closes at 15:40 from 2026-08-03.
NFO_LATE_CLOSE_FROM = date(2026, 8, 3)

_PRE_OPEN = ("pre_open", time(9, 0), time(9, 8))
_EQUITY_NORMAL = ("normal", time(9, 15), time(15, 30))
_WEEKDAYS_OFF = (5, 6)  # Saturday, Sunday


@dataclass(frozen=True, slots=True)
class _Holiday:
    """A day some venues close fully (`closed`) or keep only their evening session."""

    day: date
    description: str
    closed: frozenset[str]
    evening_only: frozenset[str]
    source: str


@dataclass(frozen=True, slots=True)
class _SpecialSession:
    """A session outside the normal calendar: a weekend budget day or a Muhurat hour."""

    day: date
    description: str
    exchanges: frozenset[str]
    kind: str  # "full": the venue's regular sessions; "muhurat": one short session
    start: time | None
    end: time | None
    settlement: bool
    verified: bool
    source: str


def _venue(exchange: str) -> str:
    try:
        return _VENUE_OF[exchange]
    except KeyError:
        raise ValueError(f"unknown exchange for the market calendar: {exchange!r}") from None


def us_daylight_saving(day: date) -> bool:
    """US DST (second Sunday of March to first Sunday of November) moves MCX's close to 23:30."""
    march_first = date(day.year, 3, 1)
    dst_start = march_first + timedelta(days=(6 - march_first.weekday()) % 7 + 7)
    november_first = date(day.year, 11, 1)
    dst_end = november_first + timedelta(days=(6 - november_first.weekday()) % 7)
    return dst_start <= day < dst_end


def _regular_sessions(venue: str, day: date) -> list[tuple[str, time, time]]:
    """The venue's sessions on an ordinary trading day (IST wall-clock times)."""
    if venue in ("NSE", "BSE"):
        return [_PRE_OPEN, _EQUITY_NORMAL]
    if venue in ("NFO", "BFO"):
        close = time(15, 40) if venue == "NFO" and day >= NFO_LATE_CLOSE_FROM else time(15, 30)
        pre_open = [_PRE_OPEN] if day >= FNO_PRE_OPEN_FROM else []
        return [*pre_open, ("normal", time(9, 15), close)]
    if venue in ("CDS", "BCD"):
        return [("normal", time(9, 0), time(17, 0))]
    evening_close = time(23, 30) if us_daylight_saving(day) else time(23, 55)
    return [("normal", time(9, 0), time(17, 0)), ("evening", time(17, 0), evening_close)]


def _at(day: date, moment: time) -> datetime:
    return datetime.combine(day, moment, tzinfo=IST)


def _venues(raw: Any, where: str) -> frozenset[str]:
    names = frozenset(str(name) for name in raw)
    unknown = names - set(VENUES)
    if unknown:
        raise ValueError(f"{where}: unknown exchanges {sorted(unknown)}")
    return names


def _parse_holiday(entry: dict[str, Any], where: str) -> _Holiday:
    return _Holiday(
        day=entry["date"],
        description=str(entry["description"]),
        closed=_venues(entry.get("closed", []), where),
        evening_only=_venues(entry.get("evening_only", []), where),
        source=str(entry["source"]),
    )


def _parse_special(entry: dict[str, Any], where: str) -> _SpecialSession:
    kind = str(entry["kind"])
    if kind not in ("full", "muhurat"):
        raise ValueError(f"{where}: special session kind must be full or muhurat, not {kind!r}")
    if kind == "muhurat" and ("start" not in entry or "end" not in entry):
        raise ValueError(f"{where}: a muhurat session needs start and end times")
    return _SpecialSession(
        day=entry["date"],
        description=str(entry["description"]),
        exchanges=_venues(entry["exchanges"], where),
        kind=kind,
        start=entry.get("start"),
        end=entry.get("end"),
        settlement=bool(entry.get("settlement", False)),
        verified=bool(entry.get("verified", True)),
        source=str(entry["source"]),
    )


def _load(data_dir: Path) -> tuple[list[int], list[_Holiday], list[_SpecialSession]]:
    """Read every `<year>.toml` under `data_dir`."""
    years: list[int] = []
    holidays: list[_Holiday] = []
    specials: list[_SpecialSession] = []
    for path in sorted(data_dir.glob("*.toml")):
        with path.open("rb") as handle:
            document = tomllib.load(handle)
        year = int(document["year"])
        years.append(year)
        file_holidays = [
            _parse_holiday(entry, f"{path.name} holidays[{index}]")
            for index, entry in enumerate(document.get("holidays", []))
        ]
        file_specials = [
            _parse_special(entry, f"{path.name} special_sessions[{index}]")
            for index, entry in enumerate(document.get("special_sessions", []))
        ]
        days = [holiday.day for holiday in file_holidays] + [s.day for s in file_specials]
        for day in days:
            if day.year != year:
                raise ValueError(f"{path.name}: {day} is outside year {year}")
        holidays.extend(file_holidays)
        specials.extend(file_specials)
    if not years:
        raise ValueError(f"no calendar data files in {data_dir}")
    return years, holidays, specials


class MarketCalendar:
    """Trading days and sessions per exchange, from the bundled (or given) holiday files."""

    def __init__(self, data_dir: Path | None = None) -> None:
        years, holidays, specials = _load(data_dir or BUNDLED_DATA_DIR)
        self._known_from = date(min(years), 1, 1)
        self._known_through = date(max(years), 12, 31)
        self._holidays = sorted(holidays, key=lambda holiday: holiday.day)
        self._specials = sorted(specials, key=lambda special: special.day)
        # Per-venue sets so the per-day checks called in loops are set lookups.
        self._closed: dict[str, set[date]] = {venue: set() for venue in VENUES}
        self._evening_only: dict[str, set[date]] = {venue: set() for venue in VENUES}
        for holiday in self._holidays:
            for venue in holiday.closed:
                self._closed[venue].add(holiday.day)
            for venue in holiday.evening_only:
                self._evening_only[venue].add(holiday.day)
        self._special: dict[tuple[str, date], _SpecialSession] = {
            (venue, special.day): special
            for special in self._specials
            for venue in special.exchanges
        }
        self._session_cache: dict[tuple[str, date], list[Session]] = {}

    @property
    def known_from(self) -> date:
        """First day covered by the bundled holiday lists."""
        return self._known_from

    @property
    def known_through(self) -> date:
        """Last day covered by published holiday lists; later weekdays are assumed to trade."""
        return self._known_through

    def is_trading_day(self, exchange: str, day: date) -> bool:
        """Whether the exchange holds a regular session that day (a Muhurat hour alone is not)."""
        return self._is_trading(_venue(exchange), day)

    def sessions(self, exchange: str, day: date) -> list[Session]:
        """The day's sessions, earliest first; [] on holidays and weekends."""
        key = (_venue(exchange), day)
        cached = self._session_cache.get(key)
        if cached is None:
            cached = self._build_sessions(*key)
            self._session_cache[key] = cached
        return list(cached)

    def is_open(self, exchange: str, instant: datetime) -> bool:
        """Whether `instant` falls inside any session (pre-open included), start inclusive."""
        if instant.tzinfo is None:
            raise ValueError("is_open needs an aware datetime")
        local = instant.astimezone(IST)
        return any(s.start <= local < s.end for s in self.sessions(exchange, local.date()))

    def next_trading_day(self, exchange: str, day: date, days: int = 1) -> date:
        """The `days`-th trading day after `day`."""
        if days < 1:
            raise ValueError(f"days must be at least 1, not {days}")
        venue = _venue(exchange)
        current = day
        while days:
            current += timedelta(days=1)
            if self._is_trading(venue, current):
                days -= 1
        return current

    def previous_trading_day(self, exchange: str, day: date) -> date:
        """The last trading day strictly before `day`."""
        return self.trading_day_on_or_before(exchange, day - timedelta(days=1))

    def trading_day_on_or_before(self, exchange: str, day: date) -> date:
        """`day` if it trades, else the trading day before it (the expiry-shift rule)."""
        venue = _venue(exchange)
        current = day
        while not self._is_trading(venue, current):
            current -= timedelta(days=1)
        return current

    def trading_days(self, exchange: str, start: date, end: date) -> list[date]:
        """Every trading day from `start` to `end`, both included."""
        venue = _venue(exchange)
        count = (end - start).days + 1
        days = (start + timedelta(days=offset) for offset in range(max(count, 0)))
        return [day for day in days if self._is_trading(venue, day)]

    def settlement_date(self, exchange: str, trade_day: date) -> date:
        """T+1: the first settlement day after `trade_day` (weekend sessions do not settle)."""
        venue = _venue(exchange)
        current = trade_day + timedelta(days=1)
        while not self._is_settlement_day(venue, current):
            current += timedelta(days=1)
        return current

    def holidays(self, year: int) -> list[HolidayRecord]:
        """Rows for /market/holidays: weekday holidays and special sessions, by date."""
        rows: list[HolidayRecord] = []
        for holiday in self._holidays:
            if holiday.day.year == year and holiday.day.weekday() not in _WEEKDAYS_OFF:
                rows.append(self._holiday_row(holiday))
        for special in self._specials:
            if special.day.year == year:
                rows.append(self._special_row(special))
        # Stable sort: on a Muhurat day the holiday row comes before its special session.
        return sorted(rows, key=lambda row: row.day)

    def timings(self, day: date) -> list[ExchangeWindow]:
        """Rows for /market/timings: each venue's window that day; [] when all are closed."""
        windows = (self._window(venue, day) for venue in VENUES)
        return [window for window in windows if window is not None]

    def _is_trading(self, venue: str, day: date) -> bool:
        special = self._special.get((venue, day))
        if special is not None:
            return special.kind == "full"
        if day.weekday() in _WEEKDAYS_OFF:
            return False
        return day not in self._closed[venue]

    def _is_settlement_day(self, venue: str, day: date) -> bool:
        # Clearing follows the banks: no settlement on weekends (even with a special session),
        # on days a venue keeps only its evening session, or on declared settlement holidays.
        if not self._is_trading(venue, day) or day.weekday() in _WEEKDAYS_OFF:
            return False
        special = self._special.get((venue, day))
        if special is not None and not special.settlement:
            return False
        return day not in self._evening_only[venue]

    def _build_sessions(self, venue: str, day: date) -> list[Session]:
        special = self._special.get((venue, day))
        if special is not None and special.start is not None and special.end is not None:
            # Only a Muhurat entry carries its own times (checked on load).
            return [Session("muhurat", _at(day, special.start), _at(day, special.end))]
        if not self._is_trading(venue, day):
            return []
        regular = _regular_sessions(venue, day)
        if special is None and day in self._evening_only[venue]:
            regular = [session for session in regular if session[0] == "evening"]
        return [Session(kind, _at(day, start), _at(day, end)) for kind, start, end in regular]

    def _window(self, venue: str, day: date) -> ExchangeWindow | None:
        """The venue's span that day from its first main session to its close (no pre-open)."""
        spans = [s for s in self.sessions(venue, day) if s.kind != "pre_open"]
        if not spans:
            return None
        return ExchangeWindow(venue, spans[0].start, spans[-1].end)

    def _holiday_row(self, holiday: _Holiday) -> HolidayRecord:
        open_windows = (self._window(venue, holiday.day) for venue in VENUES)
        return HolidayRecord(
            day=holiday.day,
            description=holiday.description,
            holiday_type="TRADING_HOLIDAY",
            closed_exchanges=tuple(venue for venue in VENUES if venue in holiday.closed),
            open_exchanges=tuple(
                window
                for window in open_windows
                if window is not None and window.exchange in holiday.evening_only
            ),
        )

    def _special_row(self, special: _SpecialSession) -> HolidayRecord:
        windows = (self._window(venue, special.day) for venue in VENUES)
        return HolidayRecord(
            day=special.day,
            description=special.description,
            holiday_type="SPECIAL_SESSION",
            closed_exchanges=(),
            open_exchanges=tuple(
                window
                for window in windows
                if window is not None and window.exchange in special.exchanges
            ),
        )
