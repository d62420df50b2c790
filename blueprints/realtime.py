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

Pages only listen: the server handles no events from them.

Under gunicorn's threaded worker an open socket holds a thread. So every new connection is
checked before Engine.IO takes it (`_Gate`): without a signed-in session it gets 401, and past
SOCKETIO_MAX_CLIENTS (the threads server.py adds for sockets) 503, so no number of open pages
can take the threads the API needs.
"""

from __future__ import annotations

import functools
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

Shape = Callable[[Any], dict[str, Any]]

EVENTS: dict[str, tuple[str, Shape]] = {
    ORDER: ("order_update", order_row),
    TRADE: ("trade_update", trade_row),
    POSITION: ("position_update", position_row),
    FUNDS: ("funds_update", funds_data),
    ACTION_CENTER: ("action_center_update", dict),
}
# Pages send nothing but the handshake: a small frame limit bounds what a client can make the
# server buffer (the library's default is a megabyte).
MAX_MESSAGE_BYTES = 64 * 1024
PATH = "/socket.io/"  # Flask-SocketIO's default

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
