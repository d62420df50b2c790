"""Time in Dalal: aware datetimes, market rules in IST, and an injectable clock for tests."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; tests use it to reach 03:00 IST or expiry day."""

    def __init__(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._instant = instant

    def now(self) -> datetime:
        return self._instant

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._instant = instant

    def advance(self, delta: timedelta) -> None:
        self._instant += delta


def to_ist(instant: datetime) -> datetime:
    return instant.astimezone(IST)


def latest_cutoff(instant: datetime, cutoff: time) -> datetime:
    """The most recent daily IST cutoff (e.g. 03:00) at or before `instant`."""
    local = to_ist(instant)
    candidate = local.replace(hour=cutoff.hour, minute=cutoff.minute, second=0, microsecond=0)
    if candidate > local:
        candidate -= timedelta(days=1)
    return candidate


def next_cutoff(instant: datetime, cutoff: time) -> datetime:
    """The next daily IST cutoff strictly after `instant`."""
    return latest_cutoff(instant, cutoff) + timedelta(days=1)
