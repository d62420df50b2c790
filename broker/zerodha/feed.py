"""Kite's streaming quotes (KiteTicker, the official SDK's client) as a tick source for the hub.

KiteTicker runs on Twisted, whose reactor can run only once per process. So the reactor is
started once, in a daemon thread of its own, and stays up; each `KiteFeed` is one WebSocket
connection made on it (every call into Twisted goes through `reactor.callFromThread`) and
closed on it, so feeds can be opened and closed any number of times in one process. The SDK's
own reconnection is switched off: when the connection drops, `run()` raises SourceDropped and
the hub (services/feed/hub.py) opens a new feed and subscribes it to everything wanted again.

Modes: Dalal's LTP is Kite's `ltp`; Dalal's Quote and Depth are both Kite's `full`, because
Dalal's quote frame carries the best bid and ask, the open interest and the last trade time,
which Kite sends only in `full` (its `quote` mode has none of them). Order updates that Kite
pushes on the same connection are published on the desk's event bus as order events.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import queue
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kiteconnect import KiteTicker  # type: ignore[import-untyped]

from broker.zerodha import mapping
from broker.zerodha.redact import redact
from services.errors import DalalError
from services.events import ORDER
from services.feed.model import FeedMode, Key, Tick, epoch_ms
from services.feed.source import Emit, SourceDropped

if TYPE_CHECKING:
    from broker.zerodha.adapter import ZerodhaBroker
    from broker.zerodha.symbols import KiteMaster

log = logging.getLogger(__name__)

KITE_MODES = {
    FeedMode.LTP: mapping.KITE_MODE_LTP,
    FeedMode.QUOTE: mapping.KITE_MODE_FULL,
    FeedMode.DEPTH: mapping.KITE_MODE_FULL,
}

_reactor_lock = threading.Lock()
_reactor_thread: threading.Thread | None = None


def _reactor() -> Any:
    # Importing the module installs Twisted's default reactor; the module *is* the reactor.
    return importlib.import_module("twisted.internet.reactor")


def _ensure_reactor() -> Any:
    """Twisted's reactor, running in its own daemon thread (started on first use, once)."""
    global _reactor_thread
    reactor = _reactor()
    with _reactor_lock:
        if _reactor_thread is not None:
            if _reactor_thread.is_alive():
                return reactor
            raise SourceDropped(
                "Twisted's reactor stopped and cannot run twice in one process; restart the desk"
            )
        if not reactor.running:  # someone else may already run it (then they keep it running)
            _reactor_thread = threading.Thread(
                target=reactor.run,
                kwargs={"installSignalHandlers": False},
                name="kite-ticker-reactor",
                daemon=True,
            )
            _reactor_thread.start()
    return reactor


class _Ticker(KiteTicker):  # type: ignore[misc]
    """KiteTicker whose connection is made in the reactor's thread, with a TLS context that
    verifies Kite's certificate (the SDK's default context does not)."""

    def connect(
        self, threaded: bool = True, disable_ssl_verification: bool = False, proxy: Any = None
    ) -> Any:
        from autobahn.twisted.websocket import connectWS  # type: ignore[import-untyped]

        self._create_connection(
            self.socket_url,
            useragent=self._user_agent(),
            proxy=proxy,
            headers={"X-Kite-Version": "3"},
        )
        context = None
        if self.factory.isSecure:
            from twisted.internet.ssl import optionsForClientTLS

            context = optionsForClientTLS(urlsplit(self.root).hostname or "")
        return connectWS(self.factory, contextFactory=context, timeout=self.connect_timeout)


class KiteFeed:
    """One KiteTicker connection as a FeedSource (services/feed/source.py)."""

    name = "zerodha"
    connect_timeout = 10.0
    # Kite sends a heartbeat byte every second; this long without anything is a dead line.
    stall_seconds = 10.0

    def __init__(self, broker: ZerodhaBroker) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._opened = threading.Event()
        self._settled = threading.Event()
        self._closed = threading.Event()
        self._ticker: Any = None
        self._connector: Any = None
        self._reactor: Any = None
        self._secret = ""
        self._master: KiteMaster | None = None
        self._wanted_keys: dict[Key, FeedMode] = {}
        self._wanted: dict[int, str] = {}  # Kite token -> Kite mode (what should be subscribed)
        self._sent: dict[int, str] = {}  # what the connection has been told (reactor thread)
        self._keys: dict[int, Key] = {}
        self._last_message = time.monotonic()

    # ------------------------------------------------------------------ FeedSource

    def connect(self) -> None:
        if self._closed.is_set():
            raise SourceDropped("this connection was closed; the hub opens a new one")
        broker = self._broker
        try:
            credentials, session = broker.credentials, broker.session
            self._master = broker.kite_master()
        except DalalError as error:
            raise SourceDropped(error.message) from None
        self._secret = session.access_token
        self._resolve()
        ticker = _Ticker(
            credentials.api_key,
            session.access_token,
            root=broker.ticker_root,
            reconnect_max_tries=0,  # the hub reconnects (and re-subscribes), not the SDK
            connect_timeout=int(self.connect_timeout),
        )
        ticker.on_open = self._on_open
        ticker.on_close = self._on_close
        ticker.on_error = self._on_error
        ticker.on_message = self._on_message
        ticker.on_ticks = self._on_ticks
        ticker.on_order_update = self._on_order_update
        ticker.on_noreconnect = self._on_failed
        self._ticker = ticker
        self._reactor = _ensure_reactor()
        self._reactor.callFromThread(self._start)
        if not self._settled.wait(self.connect_timeout):
            self.close()
            raise SourceDropped(f"Kite's ticker did not answer within {self.connect_timeout:g} s")
        if not self._opened.is_set():
            reason = "closed"
            while not self._events.empty():
                kind, value = self._events.get_nowait()
                if kind == "closed":
                    reason = self._describe(value)
            raise SourceDropped(f"Kite's ticker refused the connection: {reason}")
        self._last_message = time.monotonic()

    def set_subscriptions(self, wanted: Mapping[Key, FeedMode]) -> None:
        with self._lock:
            self._wanted_keys = dict(wanted)
        self._resolve()
        reactor = self._reactor
        if reactor is not None and self._opened.is_set() and not self._closed.is_set():
            reactor.callFromThread(self._push)

    def run(self, emit: Emit) -> None:
        if not self._opened.is_set():
            raise SourceDropped("run() before connect()")
        while not self._closed.is_set():
            try:
                kind, value = self._events.get(timeout=0.5)
            except queue.Empty:
                if time.monotonic() - self._last_message > self.stall_seconds:
                    raise SourceDropped(
                        f"nothing from Kite's ticker for {self.stall_seconds:g} s"
                    ) from None
                continue
            if kind == "ticks":
                ticks = self._convert(value)
                if ticks:
                    emit(ticks)
            elif kind == "order":
                self._publish_order(value)
            elif kind == "closed":
                if self._closed.is_set():
                    return
                raise SourceDropped(f"Kite's ticker closed the connection: {self._describe(value)}")

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._events.put(("stop", None))
        reactor = self._reactor
        if reactor is not None:
            reactor.callFromThread(self._shutdown)

    # ------------------------------------------------------------------ any thread

    def _resolve(self) -> None:
        """Kite tokens and modes for the wanted instruments (those Kite lists)."""
        master = self._master
        if master is None:
            return
        with self._lock:
            wanted: dict[int, str] = {}
            keys: dict[int, Key] = {}
            for (exchange, symbol), mode in self._wanted_keys.items():
                instrument = master.get(symbol, exchange)
                if instrument is None:
                    continue
                token = int(instrument.token)
                keys[token] = (exchange, symbol)
                wanted[token] = KITE_MODES[mode]
            self._wanted, self._keys = wanted, keys

    def _describe(self, value: Any) -> str:
        code, reason = value
        text = f"{code}" + (f" {reason}" if reason else "")
        if self._secret:
            text = text.replace(self._secret, "***")
        return redact(text)

    def _convert(self, raw: list[dict[str, Any]]) -> list[Tick]:
        produced = epoch_ms()
        with self._lock:
            keys = self._keys
        ticks = []
        for item in raw:
            key = keys.get(int(item.get("instrument_token", 0)))
            if key is None:
                continue
            payloads = mapping.tick_payloads(item, produced, mapping.price_decimals(key[0]))
            if item.get("mode") != mapping.KITE_MODE_FULL:
                # Only `ltp` and `full` are ever asked for; a `quote` tick is Kite's default
                # before the mode change lands, and lacks the bid and ask: keep its price only.
                payloads = {1: payloads[1]}
            ticks.append(Tick(key[0], key[1], produced, payloads))
        return ticks

    def _publish_order(self, data: Mapping[str, Any]) -> None:
        broker = self._broker
        try:
            report = mapping.order_report(data, broker._dalal_name, broker._now())
        except (KeyError, ValueError, TypeError) as error:
            log.warning("unreadable order update from Kite's ticker: %s", type(error).__name__)
            return
        broker.desk.events.publish(ORDER, broker.user_id, report)

    # ------------------------------------------------------------------ the reactor's thread

    def _start(self) -> None:
        if self._closed.is_set():
            self._settled.set()
            return
        try:
            self._connector = self._ticker.connect()
        except Exception as error:
            self._events.put(("closed", (0, type(error).__name__)))
            self._settled.set()

    def _push(self) -> None:
        ticker = self._ticker
        if ticker is None or not ticker.is_connected() or self._closed.is_set():
            return
        with self._lock:
            wanted = dict(self._wanted)
        sent = self._sent
        gone = [token for token in sent if token not in wanted]
        if gone:
            ticker.unsubscribe(gone)
        new = [token for token in wanted if token not in sent]
        if new:
            ticker.subscribe(new)
        by_mode: dict[str, list[int]] = {}
        for token, mode in wanted.items():
            if sent.get(token) != mode:
                by_mode.setdefault(mode, []).append(token)
        for mode, tokens in by_mode.items():
            ticker.set_mode(mode, tokens)
        self._sent = wanted

    def _shutdown(self) -> None:
        ticker, connector = self._ticker, self._connector
        if ticker is None:
            return
        ticker.stop_retry()
        if ticker.is_connected():
            ticker.ws.sendClose(1000, "closing")
            if connector is not None:  # a server that never answers the close still goes
                self._reactor.callLater(2.0, connector.disconnect)
        elif connector is not None:
            connector.disconnect()

    def _on_open(self, ticker: Any) -> None:
        self._last_message = time.monotonic()
        if self._closed.is_set():
            ticker.ws.sendClose(1000, "closing")
            return
        self._opened.set()
        self._settled.set()
        self._push()

    def _on_close(self, ticker: Any, code: Any, reason: Any) -> None:
        ticker.stop_retry()
        self._events.put(("closed", (code, reason)))
        self._settled.set()

    def _on_failed(self, ticker: Any) -> None:
        # The connection could not be made at all (no WebSocket was opened, so no close).
        self._events.put(("closed", (0, "could not connect")))
        self._settled.set()

    def _on_error(self, ticker: Any, code: Any, reason: Any) -> None:
        if code == 0:  # an error Kite sent as a text message (the connection stays up)
            log.warning("Kite's ticker: %s", self._describe((code, reason)))

    def _on_message(self, ticker: Any, payload: bytes, is_binary: bool) -> None:
        self._last_message = time.monotonic()

    def _on_ticks(self, ticker: Any, ticks: list[dict[str, Any]]) -> None:
        if ticks:
            self._events.put(("ticks", ticks))

    def _on_order_update(self, ticker: Any, data: Any) -> None:
        if isinstance(data, Mapping):
            self._events.put(("order", dict(data)))
        elif isinstance(data, str | bytes):
            with contextlib.suppress(ValueError):
                self._events.put(("order", json.loads(data)))
