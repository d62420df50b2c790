"""What flows through the feed: subscription modes, instrument keys and ticks."""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

type Key = tuple[str, str]  # (exchange, symbol), e.g. ("NSE", "SBIN") or ("NSE_INDEX", "NIFTY")


class FeedMode(IntEnum):
    """OpenAlgo's subscription modes: each includes everything the lower ones carry."""

    LTP = 1
    QUOTE = 2
    DEPTH = 3

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, value: Any, default: FeedMode | None = None) -> FeedMode:
        """1/2/3 or "LTP"/"Quote"/"Depth" (any case); ValueError naming what is allowed."""
        if value is None and default is not None:
            return default
        if isinstance(value, bool):
            raise ValueError(_MODE_HELP)
        if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
            number = int(value)
            if number in (1, 2, 3):
                return cls(number)
        elif isinstance(value, str):
            found = _BY_LABEL.get(value.strip().lower())
            if found is not None:
                return found
        raise ValueError(_MODE_HELP)


_LABELS = {FeedMode.LTP: "LTP", FeedMode.QUOTE: "Quote", FeedMode.DEPTH: "Depth"}
_BY_LABEL = {label.lower(): mode for mode, label in _LABELS.items()}
_MODE_HELP = 'mode must be 1, 2 or 3 (or "LTP", "Quote", "Depth")'


@dataclass(frozen=True, slots=True)
class Tick:
    """One update of one instrument, with the `data` payload of every mode up to its own.

    `payloads[m]` is the JSON-ready `data` object of a mode-m market_data frame; a client
    subscribed at a lower mode than the tick gets the lower payload (OpenAlgo re-tags it).
    """

    exchange: str
    symbol: str
    produced_ms: int  # the server's epoch milliseconds when the tick was produced
    payloads: dict[int, dict[str, Any]]

    @property
    def key(self) -> Key:
        return (self.exchange, self.symbol)


def epoch_ms() -> int:
    return time.time_ns() // 1_000_000
