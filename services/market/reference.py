"""Reference price levels the simulated market and the strike grids are centred on.

The levels are late-2026 ballpark figures (roughly the late-2025 market carried forward), not
quotes: they only need to be realistic enough that lot sizes, strikes and simulated prices look
like the real market. Each row names the instrument it moves with in `index`: NSE stocks follow
NIFTY, BSE rows follow SENSEX, sectoral and BSE indices follow NIFTY or SENSEX, and the MCX mini
contracts (CRUDEOILM, GOLDM, SILVERM) follow their full-size commodity. Names in `index` are unique
across exchanges (NIFTY is on NSE_INDEX, SENSEX on BSE_INDEX, CRUDEOIL on MCX). INDIAVIX is an
index level (about 13) with a high volatility of volatility and no `index`, because it moves
against NIFTY rather than with it; the simulator decides how to model that.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

from services.market.model import Exchange

REFERENCE_LEVELS_CSV = Path(__file__).parent / "data" / "reference_levels.csv"


@dataclass(frozen=True, slots=True)
class ReferenceLevel:
    """A realistic recent level of one underlying and how it moves."""

    symbol: str
    exchange: Exchange
    price: Decimal  # a realistic recent level (late-2026 ballpark)
    volatility: float  # annualised: 0.13 for NIFTY, 0.2-0.45 for stocks
    beta: float  # to `index` (1.0 for indices)
    index: str | None  # the instrument it moves with, None for the market's own drivers


@cache
def _load_cached() -> dict[tuple[str, str], ReferenceLevel]:
    levels: dict[tuple[str, str], ReferenceLevel] = {}
    with REFERENCE_LEVELS_CSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            level = ReferenceLevel(
                symbol=row["symbol"],
                exchange=Exchange(row["exchange"]),
                price=Decimal(row["price"]),
                volatility=float(row["volatility"]),
                beta=float(row["beta"]),
                index=row["index"] or None,
            )
            levels[(level.symbol, level.exchange.value)] = level
    return levels


def load_reference_levels() -> dict[tuple[str, str], ReferenceLevel]:
    """Every reference level keyed by (symbol, exchange value), read once from the bundled CSV."""
    return dict(_load_cached())
