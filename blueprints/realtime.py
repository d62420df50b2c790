"""Live updates for the trader's pages over Socket.IO, at /socket.io/.

A socket is admitted only with a signed-in page session (the pages' own cookie) and joins its
user's room, `user:<id>`. The desk's event bus is bridged to those rooms: each topic becomes
one Socket.IO event carrying the REST API's shape (blueprints/api/serialize.py), so a page
shows the same numbers whether it asked or was told:

    order_update          an `orderbook` row            (topic "order")
    trade_update          a `tradebook` row             (topic "trade")
    position_update       a `positionbook` row          (topic "position")
    funds_update          the `funds` data              (topic "funds")
    action_center_update  the Action Center's own dict  (topic "action_center")

A page may also ask for an instrument's prices (the chart, the ticket): it emits
`subscribe_ticks` {symbol, exchange} (and `unsubscribe_ticks` when done); the socket joins the
instrument's room, `tick:<EXCHANGE>:<SYMBOL>`, and the desk's tick hub (`desk.feed`) is asked
for the instrument for as long as any socket wants it (released on disconnect at the latest).
A hub consumer turns each tick into one `tick` event {symbol, exchange, ltp, ltt, timestamp,
...} to that room. Nothing else a page sends is handled.

Under gunicorn's threaded worker an open socket holds a thread. So every new connection is
checked before Engine.IO takes it (`_Gate`): without a signed-in session it gets 401, and past
SOCKETIO_MAX_CLIENTS (the threads server.py adds for sockets) 503, so no number of open pages
can take the threads the API needs.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import socketio as python_socketio
from flask import Flask
from flask_login import current_user

from blueprints.api.serialize import funds_data, order_row, position_row, trade_row
from extensions import socketio
from services.desk import Desk
from services.events import ACTION_CENTER, FUNDS, ORDER, POSITION, TRADE, Subscriber
from services.feed.model import FeedMode, Key, Tick

Shape = Callable[[Any], dict[str, Any]]

EVENTS: dict[str, tuple[str, Shape]] = {
    ORDER: ("order_update", order_row),
    TRADE: ("trade_update", trade_row),
    POSITION: ("position_update", position_row),
    FUNDS: ("funds_update", funds_data),
    ACTION_CENTER: ("action_center_update", dict),
}
# Pages send nothing but the handshake and tick subscriptions: a small frame limit bounds what a
# client can make the server buffer (the library's default is a megabyte).
MAX_MESSAGE_BYTES = 64 * 1024
PATH = "/socket.io/"  # Flask-SocketIO's default
MAX_TICK_SUBSCRIPTIONS = 50  # instruments one page may follow at once

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def room_of(user_id: int) -> str:
    return f"user:{user_id}"


def init_realtime(app: Flask) -> None:
    """Serve Socket.IO on `app` and bridge its desk's event bus to it (once per app)."""
    desk: Desk = app.extensions["dalal"]
    redis_url = desk.settings.redis_url
    socketio.init_app(
        app,
        # With REDIS_URL several workers share the rooms: an event published in one worker
        # reaches a page connected to another.
        client_manager=python_socketio.RedisManager(redis_url) if redis_url else None,
        max_http_buffer_size=MAX_MESSAGE_BYTES,
    )
    # init_app made a server for this app; bind the handlers to it, not to the extension.
    # Flask-SocketIO's own handlers look clients up on its latest server, which, in a process
    # holding several apps (the tests), is another app's: a connect would go unchecked.
    server = socketio.server
    server.on("connect", functools.partial(_connect, app, server))
    gate = _Gate(app, app.wsgi_app, server, desk.settings.socketio_max_clients)
    app.wsgi_app = gate  # type: ignore[method-assign]
    for topic, (event, shape) in EVENTS.items():
        desk.events.subscribe(topic, _forwarder(server, event, shape))
    ticks = _TickRooms(desk, server)
    server.on("subscribe_ticks", ticks.subscribe)
    server.on("unsubscribe_ticks", ticks.unsubscribe)
    server.on("disconnect", ticks.disconnect)


def tick_room(key: Key) -> str:
    exchange, symbol = key
    return f"tick:{exchange}:{symbol}"


def signed_in_user(app: Flask, environ: dict[str, Any]) -> int | None:
    """The user of the request's page session, as any page would find them (None: nobody)."""
    with app.request_context(environ):
        if not current_user.is_authenticated:
            return None
        user_id: int = current_user.view.id
        return user_id


def _connect(app: Flask, server: Any, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
    """Admit a socket only for a signed-in user, into that user's room."""
    user_id = signed_in_user(app, environ)
    if user_id is None:
        return False
    server.enter_room(sid, room_of(user_id))
    return True


class _Gate:
    """Checks each new Engine.IO connection (a request with no `sid`) before it is served."""

    def __init__(self, app: Flask, inner: WSGIApp, server: Any, limit: int) -> None:
        self._app, self._inner, self._server, self._limit = app, inner, server, limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path: str = environ.get("PATH_INFO") or ""
        if path.startswith(PATH) and "sid" not in parse_qs(environ.get("QUERY_STRING", "")):
            if signed_in_user(self._app, environ) is None:
                return _refuse(start_response, "401 Unauthorized", "Sign in first.")
            if self._open() >= self._limit:
                message = "Too many pages have live updates open; close one and reload."
                return _refuse(start_response, "503 Service Unavailable", message)
        return self._inner(environ, start_response)

    def _open(self) -> int:
        # Engine.IO drops closed sockets from its table lazily (within its ping timeout).
        return sum(1 for socket in list(self._server.eio.sockets.values()) if not socket.closed)


def _refuse(start_response: Callable[..., Any], status: str, message: str) -> list[bytes]:
    body = message.encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body)))])  # fmt: skip
    return [body]


def _forwarder(server: Any, event: str, shape: Shape) -> Subscriber:
    def forward(user_id: int, payload: Any) -> None:
        room = room_of(user_id)
        if _watched(server, room):
            server.emit(event, shape(payload), to=room)

    return forward


def _watched(server: Any, room: str) -> bool:
    """Whether a page may be listening: spares the serialising when none of the user's is open."""
    manager = server.manager
    if isinstance(manager, python_socketio.PubSubManager):
        return True  # the page may be connected to another worker
    return bool(manager.rooms.get("/", {}).get(room))


class _TickRooms:
    """Sockets following instruments' prices: rooms, hub references and the tick forwarder."""

    def __init__(self, desk: Desk, server: Any) -> None:
        self._desk, self._server = desk, server
        self._lock = threading.Lock()
        self._followed: dict[str, set[Key]] = {}  # sid -> instruments
        self._consuming = False  # the hub (and the market it needs) is built on first use

    def subscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        key = self._key(data)
        if key is None:
            return {"status": "error", "message": "Send {symbol, exchange} of a listed contract."}
        with self._lock:
            followed = self._followed.setdefault(sid, set())
            if key in followed:
                return {"status": "success", "room": tick_room(key)}
            if len(followed) >= MAX_TICK_SUBSCRIPTIONS:
                message = f"At most {MAX_TICK_SUBSCRIPTIONS} instruments per page."
                return {"status": "error", "message": message}
            followed.add(key)
            consume, self._consuming = not self._consuming, True
        if consume:
            self._desk.feed.add_consumer(self.forward)
        self._server.enter_room(sid, tick_room(key))
        self._desk.feed.acquire(key, FeedMode.LTP)
        return {"status": "success", "room": tick_room(key)}

    def unsubscribe(self, sid: str, data: Any = None) -> dict[str, Any]:
        key = self._key(data)
        with self._lock:
            followed = self._followed.get(sid, set())
            if key is None or key not in followed:
                return {"status": "error", "message": "Not subscribed to that instrument."}
            followed.discard(key)
        self._server.leave_room(sid, tick_room(key))
        self._desk.feed.release(key, FeedMode.LTP)
        return {"status": "success"}

    def disconnect(self, sid: str, *_reason: Any) -> None:
        with self._lock:
            followed = self._followed.pop(sid, set())
        for key in followed:
            self._desk.feed.release(key, FeedMode.LTP)

    def forward(self, ticks: list[Tick]) -> None:
        """A hub consumer (the feed's thread): one `tick` event per followed instrument."""
        # Every desk process's hub gets every tick (through the Redis relay when there are
        # several), so each tells only its own sockets: no copy through the message queue.
        local = self._server.manager.rooms.get("/", {})
        for tick in ticks:
            room = tick_room(tick.key)
            if local.get(room):
                payload = tick.payloads.get(FeedMode.QUOTE) or tick.payloads[FeedMode.LTP]
                event = {"symbol": tick.symbol, "exchange": tick.exchange, **payload}
                self._server.emit("tick", event, to=room, ignore_queue=True)

    def _key(self, data: Any) -> Key | None:
        if not isinstance(data, dict):
            return None
        symbol, exchange = data.get("symbol"), data.get("exchange")
        if not isinstance(symbol, str) or not isinstance(exchange, str):
            return None
        if not 0 < len(symbol) <= 64 or not 0 < len(exchange) <= 16:
            return None
        return self._desk.feed_key(symbol.strip().upper(), exchange.strip().upper())
