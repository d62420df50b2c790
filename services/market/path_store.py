"""Where each track's paths live: built on demand from the calendar, kept in bounded caches.

In calendar mode a day has points only inside the exchange's continuous sessions (normal and
evening; no pre-open or Muhurat), and an instant outside them sees the last point before it.
In always-open mode every calendar day is one session from 00:00 to 24:00 IST.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from services.clock import IST, Clock
from services.market.calendar import MarketCalendar
from services.market.candles import day_start_epoch
from services.market.day_paths import (
    DayDetail,
    DayLayout,
    DayPath,
    build_day_detail,
    build_day_path,
    day_range,
    minute_rows,
)
from services.market.paths import EPOCH, DailySeries, FloatArray, TrackSpec, build_daily_series
from services.market.tracks import BoundedCache

TRADING_KINDS = frozenset({"normal", "evening"})
HORIZON_DAYS = 400  # daily series run this far past today, so a day's request rarely rebuilds
CALENDAR_YEAR_FRACTION = 1.0 / 252.0  # one trading session's share of a year
ALWAYS_OPEN_YEAR_FRACTION = 1.0 / 365.0


@dataclass(frozen=True, slots=True)
class Moment:
    """The last point of a track at or before an instant: the tick a quote shows."""

    day: int  # days since EPOCH
    point: int  # seconds into the day's sessions
    epoch: int  # epoch second of that point


def day_index(day: date) -> int:
    return (day - EPOCH).days


def day_of(index: int) -> date:
    return EPOCH + timedelta(days=index)


class PathStore:
    """Daily series, session layouts and day paths of every track, computed once and cached."""

    def __init__(self, calendar: MarketCalendar, clock: Clock, always_open: bool) -> None:
        self._calendar = calendar
        self._clock = clock
        self.always_open = always_open
        self._year_fraction = ALWAYS_OPEN_YEAR_FRACTION if always_open else CALENDAR_YEAR_FRACTION
        self._series: dict[str, DailySeries] = {}
        self._masks: dict[str, NDArray[np.bool_]] = {}
        self._layouts: dict[tuple[str, int], DayLayout] = {}
        self._lock = threading.Lock()
        self._paths: BoundedCache[tuple[str, int], DayPath] = BoundedCache(2048)
        self._details: BoundedCache[tuple[str, int], DayDetail] = BoundedCache(512)
        self._rows: BoundedCache[tuple[str, int, int], FloatArray] = BoundedCache(16384)
        self._ranges: BoundedCache[tuple[str, int], tuple[float, float]] = BoundedCache(500_000)

    def layout(self, venue: str, day: int) -> DayLayout:
        """The day's continuous sessions on `venue` (no minutes on a holiday)."""
        key = (venue, day)
        found = self._layouts.get(key)
        if found is None:
            found = self._build_layout(venue, day)
            with self._lock:
                self._layouts[key] = found
        return found

    def _build_layout(self, venue: str, day: int) -> DayLayout:
        if self.always_open:
            return DayLayout((day_start_epoch(day_of(day)),), (1440,))
        listed = self._calendar.sessions(venue, day_of(day))
        sessions = [session for session in listed if session.kind in TRADING_KINDS]
        starts = tuple(int(session.start.timestamp()) for session in sessions)
        minutes = tuple(int((s.end - s.start).total_seconds()) // 60 for s in sessions)
        return DayLayout(starts, minutes)

    def _trading_mask(self, venue: str, count: int) -> NDArray[np.bool_]:
        found = self._masks.get(venue)
        if found is None or len(found) < count:
            if self.always_open:
                found = np.ones(count, dtype=np.bool_)
            else:
                minutes = [self.layout(venue, day).total_minutes for day in range(count)]
                found = np.array(minutes) > 0
            with self._lock:
                self._masks[venue] = found
        return found[:count]

    def series(self, track: TrackSpec, day: int) -> DailySeries:
        """The track's daily series, reaching at least `day`."""
        found = self._series.get(track.identity)
        if found is None or len(found.trading) <= day:
            today = day_index(self._clock.now().astimezone(IST).date())
            count = max(day + 1, today + HORIZON_DAYS)
            parent = self.series(track.parent, count - 1) if track.parent else None
            trading = self._trading_mask(track.venue, count)
            found = build_daily_series(
                track, trading, self._year_fraction, parent, gaps=not self.always_open
            )
            with self._lock:
                self._series[track.identity] = found
        return found

    def day_path(self, track: TrackSpec, day: int) -> DayPath:
        key = (track.identity, day)
        found = self._paths.get(key)
        if found is None:
            parent = self.day_path(track.parent, day) if track.parent else None
            series = self.series(track, day)
            found = build_day_path(track, series, day, self.layout(track.venue, day), parent)
            self._paths.put(key, found)
        return found

    def detail(self, track: TrackSpec, day: int) -> DayDetail:
        key = (track.identity, day)
        found = self._details.get(key)
        if found is None:
            found = self._details.put(key, build_day_detail(self.day_path(track, day)))
        return found

    def day_range(self, track: TrackSpec, day: int) -> tuple[float, float]:
        """(high, low) of the whole day, log."""
        key = (track.identity, day)
        found = self._ranges.get(key)
        if found is None:
            found = self._ranges.put(key, day_range(self.day_path(track, day)))
        return found

    def minute(self, track: TrackSpec, day: int, minute: int) -> FloatArray:
        """The 60 log prices of one minute."""
        key = (track.identity, day, minute)
        found = self._rows.get(key)
        if found is None:
            points = minute_rows(self.day_path(track, day), np.array([minute], dtype=np.int64))
            found = self._rows.put(key, points[:, 0].copy())
        return found

    def moment(self, track: TrackSpec, epoch: int) -> Moment:
        """The last point at or before `epoch`: prices stand still outside sessions."""
        day = day_index(datetime.fromtimestamp(epoch, IST).date())
        if day < 1:
            return self._first_moment(track)
        series = self.series(track, day)
        if series.trading[day]:
            layout = self.layout(track.venue, day)
            point = layout.point_at(epoch)
            if point is not None:
                return Moment(day, point, layout.epoch_of_point(point))
        previous = int(series.previous[day])
        if previous < 1:
            return self._first_moment(track)
        return self.closing_moment(track, previous)

    def closing_moment(self, track: TrackSpec, day: int) -> Moment:
        """The day's last point (its close)."""
        layout = self.layout(track.venue, day)
        last = layout.total_minutes * 60 - 1
        return Moment(day, last, layout.epoch_of_point(last))

    def _first_moment(self, track: TrackSpec) -> Moment:
        series = self.series(track, 1)
        day = int(np.flatnonzero(series.trading[1:])[0]) + 1
        return Moment(day, 0, self.layout(track.venue, day).starts[0])

    def log_price(self, track: TrackSpec, moment: Moment) -> float:
        minute, second = divmod(moment.point, 60)
        return float(self.minute(track, moment.day, minute)[second])
