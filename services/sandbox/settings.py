"""The sandbox engine's settings and its daily timetable (square-off cut-offs, session ends).

MIS auto square-off follows Zerodha's published times (MARKET-FACTS §6): equity 15:20,
equity/index F&O 15:25, currency 16:45, commodities 25 minutes before MCX closes (23:05 or
23:30 depending on US daylight saving). In always-open mode (the demo market that never
closes) every venue squares MIS off at 23:50 IST, just before the day rolls over at midnight,
so intraday trading works at any hour of the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from services.clock import IST
from services.market.calendar import MarketCalendar, us_daylight_saving
from services.sandbox.margins import MarginSettings

DEFAULT_SQUAREOFF_TIMES: tuple[tuple[str, time], ...] = (
    ("NSE", time(15, 20)),
    ("BSE", time(15, 20)),
    ("NFO", time(15, 25)),
    ("BFO", time(15, 25)),
    ("CDS", time(16, 45)),
    ("BCD", time(16, 45)),
)
COMMODITY_VENUES = frozenset({"MCX"})
ALWAYS_OPEN_SQUAREOFF = time(23, 50)
VENUES = ("NSE", "BSE", "NFO", "BFO", "CDS", "BCD", "MCX")


@dataclass(frozen=True)
class SandboxSettings:
    """What a paper account starts with and how strictly orders are checked.

    Price bands (a documented rule, not the exchanges' dynamic bands): a cash-equity LIMIT or
    SL price must lie within `equity_price_band` of the previous close, a future's within
    `futures_price_band`; an option's between one tick and its previous close plus
    `option_price_band` of the underlying's price (an option cannot gain more than its
    underlying moves).
    """

    starting_capital: Decimal = Decimal("10000000")  # ₹1,00,00,000
    margins: MarginSettings = field(default_factory=MarginSettings)
    squareoff_times: tuple[tuple[str, time], ...] = DEFAULT_SQUAREOFF_TIMES
    commodity_squareoff_before_close: timedelta = timedelta(minutes=25)
    equity_price_band: Decimal = Decimal("0.20")
    futures_price_band: Decimal = Decimal("0.40")
    option_price_band: Decimal = Decimal("0.10")


class Timetable:
    """Per-venue cut-offs of one day, cached (they are read on every MIS order)."""

    def __init__(
        self, settings: SandboxSettings, calendar: MarketCalendar, *, always_open: bool = False
    ) -> None:
        self._calendar = calendar
        self._always_open = always_open
        self._times = dict(settings.squareoff_times)
        self._before_close = settings.commodity_squareoff_before_close
        self._cutoffs: dict[tuple[str, date], datetime] = {}

    def squareoff_cutoff(self, venue: str, day: date) -> datetime:
        """When MIS positions on `venue` are squared off on `day` (aware, IST)."""
        key = (venue, day)
        found = self._cutoffs.get(key)
        if found is None:
            if self._always_open:
                found = datetime.combine(day, ALWAYS_OPEN_SQUAREOFF, tzinfo=IST)
            elif venue in COMMODITY_VENUES:
                found = self.commodity_close(day) - self._before_close
            else:
                found = datetime.combine(day, self._times.get(venue, time(15, 20)), tzinfo=IST)
            self._cutoffs[key] = found
        return found

    def commodity_close(self, day: date) -> datetime:
        """MCX's close that day; on a day without sessions, the close it would have."""
        sessions = self._calendar.sessions("MCX", day)
        if sessions:
            return sessions[-1].end
        close = time(23, 30) if us_daylight_saving(day) else time(23, 55)
        return datetime.combine(day, close, tzinfo=IST)

    def session_end(self, venue: str, day: date) -> datetime | None:
        """The end of the venue's last session that day, None when it does not trade."""
        sessions = self._calendar.sessions(venue, day)
        return sessions[-1].end if sessions else None
