"""Where ticks come from. A source is one upstream connection: the simulated market now, a
broker's streaming API later (each live adapter brings its own).

The hub (hub.py) drives a source: `connect()`, then `set_subscriptions()` with everything
wanted (again whenever that changes, and after every reconnect), then `run(emit)`, which
blocks while the connection lives and returns or raises when it drops; `close()` from any
thread ends it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from services.feed.model import FeedMode, Key, Tick, epoch_ms

if TYPE_CHECKING:
    from services.market.model import Depth, Instrument, Quote
    from services.market.service import MarketData

log = logging.getLogger(__name__)

type Emit = Callable[[list[Tick]], None]


class FeedSource(Protocol):
    name: str

    def connect(self) -> None: ...

    def set_subscriptions(self, wanted: Mapping[Key, FeedMode]) -> None: ...

    def run(self, emit: Emit) -> None: ...

    def close(self) -> None: ...


class SourceDropped(RuntimeError):
    """The upstream connection ended without being asked to."""


class SimulatedFeed:
    """Ticks from the simulated market: every subscribed instrument, `ticks_per_second` times
    a second, priced at the desk's clock (the same prices the paper exchange fills at)."""

    name = "simulated"

    def __init__(self, market: MarketData, ticks_per_second: float) -> None:
        self._market = market
        self._interval = 1.0 / ticks_per_second
        self._lock = threading.Lock()
        self._wanted: dict[Key, tuple[Instrument, FeedMode]] = {}
        self._closed = threading.Event()
        self._connected = False

    def connect(self) -> None:
        if self._closed.is_set():
            raise SourceDropped("this connection was closed; the hub opens a new one")
        self._market.source  # noqa: B018  # the simulator is built here, not on the first tick
        self._connected = True

    def set_subscriptions(self, wanted: Mapping[Key, FeedMode]) -> None:
        master = self._market.master
        resolved: dict[Key, tuple[Instrument, FeedMode]] = {}
        for (exchange, symbol), mode in wanted.items():
            instrument = master.get(symbol, exchange)
            if instrument is not None:
                resolved[(exchange, symbol)] = (instrument, mode)
        with self._lock:
            self._wanted = resolved

    def run(self, emit: Emit) -> None:
        if not self._connected:
            raise SourceDropped("run() before connect()")
        next_round = time.monotonic()
        while not self._closed.is_set():
            with self._lock:
                wanted = list(self._wanted.items())
            if wanted:
                emit(self._ticks(wanted))
            next_round += self._interval
            delay = next_round - time.monotonic()
            if delay < 0:  # fell behind (a busy machine): skip, never burst to catch up
                next_round = time.monotonic()
                delay = 0
            self._closed.wait(delay)

    def close(self) -> None:
        self._closed.set()

    # ------------------------------------------------------------------ pricing

    def _ticks(self, wanted: list[tuple[Key, tuple[Instrument, FeedMode]]]) -> list[Tick]:
        simulator = self._market.source
        now = self._market.clock.now()
        produced = epoch_ms()
        ltt = int(now.timestamp()) * 1000  # the simulated market trades once a second
        ticks: list[Tick] = []
        ltp_only = [item for item in wanted if item[1][1] is FeedMode.LTP]
        if ltp_only:
            try:
                prices = simulator.tick_prices([item[1][0] for item in ltp_only], now).tolist()
            except (ValueError, KeyError):  # an instrument the batch path does not price
                prices = [float(simulator.quote(item[1][0], now).ltp) for item in ltp_only]
            for ((exchange, symbol), _), price in zip(ltp_only, prices, strict=True):
                ltp = {"ltp": round(float(price), 2), "ltt": ltt, "timestamp": produced}
                ticks.append(Tick(exchange, symbol, produced, {1: ltp}))
        for (exchange, symbol), (instrument, mode) in wanted:
            if mode is FeedMode.LTP:
                continue
            try:
                if mode is FeedMode.DEPTH:
                    depth = simulator.depth(instrument, now)
                    payloads = _payloads(depth.quote, depth, ltt, produced)
                else:
                    payloads = _payloads(simulator.quote(instrument, now), None, ltt, produced)
            except (ValueError, KeyError):
                log.warning("no simulated price for %s:%s", exchange, symbol)
                continue
            ticks.append(Tick(exchange, symbol, produced, payloads))
        return ticks


def _number(value: Decimal) -> float:
    return round(float(value), 2)


def _payloads(
    quote: Quote, depth: Depth | None, ltt: int, produced: int
) -> dict[int, dict[str, Any]]:
    """The `data` objects of modes 1, 2 (and 3 when `depth` is given) for one quote."""
    ltp = _number(quote.ltp)
    change = quote.ltp - quote.prev_close
    percent = (change / quote.prev_close * 100) if quote.prev_close else Decimal(0)
    payloads: dict[int, dict[str, Any]] = {
        1: {"ltp": ltp, "ltt": ltt, "timestamp": produced},
    }
    quote_data: dict[str, Any] = {
        "ltp": ltp,
        "open": _number(quote.open),
        "high": _number(quote.high),
        "low": _number(quote.low),
        "close": _number(quote.prev_close),
        "volume": quote.volume,
        "last_trade_quantity": quote.last_quantity,
        "change": _number(change),
        "change_percent": _number(percent),
        "bid": _number(quote.bid),
        "ask": _number(quote.ask),
        "oi": quote.oi,
        "ltt": ltt,
        "timestamp": produced,
    }
    payloads[2] = quote_data
    if depth is not None:
        payloads[3] = {
            **quote_data,
            "depth": {
                "buy": [_level(level) for level in depth.buy],
                "sell": [_level(level) for level in depth.sell],
            },
            "total_buy_quantity": depth.total_buy_quantity,
            "total_sell_quantity": depth.total_sell_quantity,
        }
    return payloads


def _level(level: Any) -> dict[str, Any]:
    return {"price": _number(level.price), "quantity": level.quantity, "orders": level.orders}
