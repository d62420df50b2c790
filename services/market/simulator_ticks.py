"""Vectorised last prices for a fixed list of instruments (the tick feed and the benchmark).

The list's layout is worked out once: which track each instrument follows and, for options,
groups sharing a track and expiry, so one call prices the whole master with a handful of
numpy passes: one path value per track, then every future by carry and every option through
black76.price_many with the day's smile volatilities (computed once per trading day).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from typing import TYPE_CHECKING

import numpy as np

from services.market import black76
from services.market.candles import round_to_tick
from services.market.model import Instrument
from services.market.path_store import Moment
from services.market.paths import FloatArray, TrackSpec
from services.market.smile import smile_volatility_many
from services.market.tracks import Plan, PlanKind, years_between

if TYPE_CHECKING:
    from services.market.simulator import SimulatedMarket


class TickBatch:
    """One list of instruments, laid out for pricing at many instants."""

    def __init__(self, plans: Sequence[Plan]) -> None:
        self.instruments = tuple(plan.instrument for plan in plans)
        positions: dict[str, int] = {}
        self.tracks: list[TrackSpec] = []
        for plan in plans:
            if plan.track.identity not in positions:
                positions[plan.track.identity] = len(self.tracks)
                self.tracks.append(plan.track)
        self.track_of = np.array([positions[plan.track.identity] for plan in plans], dtype=np.int64)
        self.tick = np.array([float(plan.tick) for plan in plans])
        self.forward_epoch = np.array([plan.forward_epoch for plan in plans])
        self.expiry_epoch = np.array([plan.expiry_epoch for plan in plans])
        self.futures = np.array(
            [row for row, plan in enumerate(plans) if plan.kind is PlanKind.FUTURE], dtype=np.int64
        )
        options = [row for row, plan in enumerate(plans) if plan.kind is PlanKind.OPTION]
        # Grouped by (track, forward, expiry): each group reads one smile at one forward.
        options.sort(key=lambda row: _group(plans[row]))
        self.options = np.array(options, dtype=np.int64)
        self.strike = np.array([plans[row].strike for row in options])
        self.is_call = np.array([plans[row].is_call for row in options], dtype=np.bool_)
        self.groups: list[tuple[slice, Plan]] = []
        begin = 0
        for _key, members in groupby(options, key=lambda row: _group(plans[row])):
            size = len(list(members))
            self.groups.append((slice(begin, begin + size), plans[options[begin]]))
            begin += size
        # (track days, volatilities), swapped as one object so threads never mix two days.
        self._volatility: tuple[tuple[int, ...], FloatArray] = ((), np.zeros(0))

    def matches(self, instruments: Sequence[Instrument]) -> bool:
        """Whether `instruments` is this list (identity first, so the check is cheap)."""
        return len(instruments) == len(self.instruments) and tuple(instruments) == self.instruments

    def prices(self, market: SimulatedMarket, epoch: int) -> FloatArray:
        """Every instrument's last price at `epoch`, on its tick grid."""
        store = market.store
        moments = [store.moment(track, epoch) for track in self.tracks]
        spot = np.exp([store.log_price(track, moment) for track, moment in zip(
            self.tracks, moments, strict=True)])  # fmt: skip
        stamps = np.array([float(moment.epoch) for moment in moments])[self.track_of]
        values = spot[self.track_of]
        carry = np.exp(
            market.rate * years_between(self.forward_epoch[self.futures], stamps[self.futures])
        )
        values[self.futures] *= carry
        if len(self.options):
            values[self.options] = self._option_prices(market, values, stamps, moments)
        return round_to_tick(values, self.tick)

    def _option_prices(
        self, market: SimulatedMarket, spot: FloatArray, stamps: FloatArray, moments: list[Moment]
    ) -> FloatArray:
        rows = self.options
        days = tuple(moment.day for moment in moments)
        known_days, volatility = self._volatility
        if days != known_days:
            volatility = self._volatilities(market, days)
            self._volatility = (days, volatility)
        forward = spot[rows] * np.exp(
            market.rate * years_between(self.forward_epoch[rows], stamps[rows])
        )
        years = years_between(self.expiry_epoch[rows], stamps[rows])
        return black76.price_many(
            self.is_call, forward, self.strike, years, market.rate, volatility
        )

    def _volatilities(self, market: SimulatedMarket, days: tuple[int, ...]) -> FloatArray:
        """Each option's smile volatility for the day, one smile read per group."""
        volatility = np.empty(len(self.options))
        for block, plan in self.groups:
            day = days[int(self.track_of[self.options[block.start]])]
            forward, years = market.opening_forward(plan, day)
            if plan.smile is None:
                raise ValueError(f"{plan.instrument.symbol} has no smile to price it with")
            volatility[block] = smile_volatility_many(
                plan.smile, forward, self.strike[block], years
            )
        return volatility


def _group(plan: Plan) -> tuple[str, float, float]:
    return plan.track.identity, plan.forward_epoch, plan.expiry_epoch
