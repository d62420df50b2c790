"""The tick hub: one upstream subscription per instrument, however many consumers want it.

Consumers (the WebSocket feed server, Socket.IO, the paper exchange's matcher, running
strategies) ask for (instrument, mode) with `acquire()` and give it back with `release()`;
the hub counts references and keeps the source subscribed to the highest mode still wanted
per instrument. Every tick batch goes to every consumer, in the source's thread: consumers
must hand the work over (the WebSocket server does so to its event loop) and never block.

The hub also keeps the source alive: when the connection drops it reconnects with back-off,
re-subscribes every active instrument and tells the status listeners, so clients keep their
subscriptions across the gap.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from services.feed.model import FeedMode, Key, Tick
from services.feed.source import FeedSource, SourceDropped

log = logging.getLogger(__name__)

type TickConsumer = Callable[[list[Tick]], None]

# Seconds between reconnection attempts: quick at first, then no faster than every 30 s.
BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A connection that lived this long counts as healthy: the back-off starts over after it.
HEALTHY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class FeedStatus:
    connected: bool
    source: str
    message: str


type StatusListener = Callable[[FeedStatus], None]


class FeedHub:
    def __init__(
        self, open_source: Callable[[], FeedSource], backoff: tuple[float, ...] = BACKOFF
    ) -> None:
        self._open_source = open_source
        self._backoff = backoff
        self._lock = threading.Lock()
        self._references: Counter[tuple[Key, FeedMode]] = Counter()
        self._consumers: list[TickConsumer] = []
        self._listeners: list[StatusListener] = []
        self._demand_listeners: list[Callable[[], None]] = []
        # Instruments other desk processes want (the Redis relay fills this in the process
        # that runs the source), merged into what this hub subscribes to.
        self._remote: dict[Key, FeedMode] = {}
        self._source: FeedSource | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = FeedStatus(False, "", "not started")
        self.reconnects = 0

    # ------------------------------------------------------------------ consumers

    def add_consumer(self, consumer: TickConsumer) -> None:
        with self._lock:
            self._consumers.append(consumer)

    def add_status_listener(self, listener: StatusListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def add_demand_listener(self, listener: Callable[[], None]) -> None:
        """Called (without arguments) whenever the set of wanted instruments changes."""
        with self._lock:
            self._demand_listeners.append(listener)

    def set_remote_demand(self, wanted: dict[Key, FeedMode]) -> None:
        with self._lock:
            changed = wanted != self._remote
            self._remote = dict(wanted)
        if changed:
            self._push_subscriptions()

    def acquire(self, key: Key, mode: FeedMode) -> None:
        with self._lock:
            self._references[(key, mode)] += 1
            changed = self._references[(key, mode)] == 1
        if changed:
            self._push_subscriptions()

    def release(self, key: Key, mode: FeedMode) -> None:
        with self._lock:
            count = self._references[(key, mode)]
            if count <= 0:
                return
            if count == 1:
                del self._references[(key, mode)]
            else:
                self._references[(key, mode)] = count - 1
            changed = count == 1
        if changed:
            self._push_subscriptions()

    def wanted(self, *, local_only: bool = False) -> dict[Key, FeedMode]:
        """Each wanted instrument at the highest mode any consumer asked for (with what
        other processes want, unless `local_only`)."""
        with self._lock:
            found: dict[Key, FeedMode] = {} if local_only else dict(self._remote)
            for key, mode in self._references:
                if mode > found.get(key, 0):
                    found[key] = mode
            return found

    def references(self, key: Key, mode: FeedMode) -> int:
        with self._lock:
            return self._references[(key, mode)]

    # ------------------------------------------------------------------ the source

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._supervise, name="feed-hub", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        with self._lock:
            source = self._source
        if source is not None:
            source.close()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def drop_source(self) -> None:
        """End the current upstream connection, as a network failure would (operators use it
        to force a fresh connection; the hub reconnects and re-subscribes at once)."""
        with self._lock:
            source = self._source
        if source is not None:
            source.close()

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            source = self._open_source()
            started = time.monotonic()
            try:
                source.connect()
                with self._lock:
                    self._source = source
                source.set_subscriptions(self.wanted())
                self._announce(FeedStatus(True, source.name, "market data connected"))
                source.run(self._dispatch)
                if not self._stopping.is_set():
                    raise SourceDropped("the market-data connection closed")
            except Exception as error:
                if self._stopping.is_set():
                    break
                log.warning("market-data source %s failed: %s", source.name, error)
                if time.monotonic() - started >= HEALTHY_SECONDS:
                    failures = 0
                delay = self._backoff[min(failures, len(self._backoff) - 1)]
                failures += 1
                self.reconnects += 1
                self._announce(
                    FeedStatus(False, source.name, f"market data lost; reconnecting in {delay:g} s")
                )
                self._stopping.wait(delay)
            finally:
                with self._lock:
                    self._source = None
                source.close()
        self._announce(FeedStatus(False, "", "market data stopped"))

    def _push_subscriptions(self) -> None:
        with self._lock:
            source = self._source
            listeners = list(self._demand_listeners)
        if source is not None:
            source.set_subscriptions(self.wanted())
        for listener in listeners:
            listener()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def dispatch(self, ticks: list[Tick]) -> None:
        """Hand ticks that arrived from elsewhere (another process's source) to consumers."""
        self._dispatch(ticks)

    def announce(self, status: FeedStatus) -> None:
        """Tell status listeners about a source running elsewhere."""
        self._announce(status)

    def _dispatch(self, ticks: list[Tick]) -> None:
        with self._lock:
            consumers = list(self._consumers)
        for consumer in consumers:
            try:
                consumer(ticks)
            except Exception:
                log.exception("tick consumer failed")

    def _announce(self, status: FeedStatus) -> None:
        self.status = status
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(status)
            except Exception:
                log.exception("feed status listener failed")
