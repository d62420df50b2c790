"""The market-data WebSocket server, speaking OpenAlgo's protocol (API.md section 5).

It runs its own asyncio event loop in one thread of the desk process. The hub hands every
tick batch over to that loop; there each tick becomes one JSON frame per subscribed mode and
lands in each subscriber's outbox. A client's writer task drains its outbox at whatever pace
the client reads, so a slow or dead client never holds up the others:

- market data is conflated per (instrument, mode): a lagging client gets the newest value,
  never a growing backlog, so an outbox is bounded by the client's subscriptions;
- a client whose socket accepts nothing for `slow_client_seconds` is disconnected (4408);
- control frames (acks, errors, order updates, feed status) are never dropped; a client
  with more than MAX_CONTROL of them waiting is disconnected the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from services.errors import DalalError
from services.feed.hub import FeedHub, FeedStatus
from services.feed.model import FeedMode, Key, Tick, epoch_ms
from services.feed.protocol import (
    ClientError,
    order_update_frame,
    parse_instruments,
)

if TYPE_CHECKING:
    from services.api_keys import ApiKeyOwner
    from services.orders.model import OrderReport

log = logging.getLogger(__name__)

PING_INTERVAL = 20.0  # protocol pings; no pong within PING_TIMEOUT closes the connection
PING_TIMEOUT = 20.0
MAX_CONTROL = 1024  # control frames waiting for one client before it counts as too slow
MAX_BAD_MESSAGES = 20  # unparseable messages in a row before the connection is closed (1008)
MAX_MESSAGE_BYTES = 64 * 1024
SUPPORTED_DEPTHS = (5,)
_JSON_HELP = 'Messages must be JSON objects, e.g. {"action":"ping"}.'
_ACTIONS = (
    "use authenticate, subscribe, unsubscribe, unsubscribe_all, subscribe_orders, "
    "unsubscribe_orders, get_broker_info, get_supported_brokers or ping."
)

CLOSE_AUTH_REQUIRED = 4401
CLOSE_AUTH_FAILED = 4403
CLOSE_TOO_SLOW = 4408


def _dumps(value: Mapping[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


type Handler = Callable[["_Client", "ApiKeyOwner", dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclass(eq=False)
class _Client:
    connection: ServerConnection
    owner: ApiKeyOwner | None = None
    subscriptions: dict[Key, set[FeedMode]] = field(default_factory=dict)
    orders: bool = False
    market: dict[tuple[Key, FeedMode], str] = field(default_factory=dict)
    control: deque[str | _Close] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    bad_messages: int = 0

    def push_market(self, slot: tuple[Key, FeedMode], frame: str) -> None:
        self.market[slot] = frame  # an existing slot keeps its place: the newest value wins
        self.wake.set()

    def push(self, item: str | _Close) -> None:
        self.control.append(item)
        self.wake.set()


@dataclass(frozen=True)
class FeedServerSettings:
    host: str
    port: int
    slow_client_seconds: float = 10.0
    auth_grace_seconds: float = 15.0  # an unauthenticated connection is closed after this
    supported_brokers: tuple[str, ...] = ("sandbox",)


class MarketFeedServer:
    def __init__(
        self,
        settings: FeedServerSettings,
        hub: FeedHub,
        verify_key: Callable[[str], ApiKeyOwner],
        resolve: Callable[[str, str], Key | None],
    ) -> None:
        """`verify_key` raises DalalError for a bad key; `resolve(symbol, exchange)` gives the
        instrument's key, or None when there is no such instrument."""
        self._settings = settings
        self._hub = hub
        self._verify_key = verify_key
        self._resolve = resolve
        self._clients: set[_Client] = set()
        self._index: dict[Key, dict[_Client, set[FeedMode]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.port = settings.port
        self.sent_frames = 0
        hub.add_consumer(self.on_ticks)
        hub.add_status_listener(self.on_status)

    # ------------------------------------------------------------------ lifecycle

    def start(self, timeout: float = 10.0) -> None:
        """Listen, or raise OSError naming the address (e.g. the port is taken)."""
        ready = threading.Event()
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready)), name="feed-websocket", daemon=True
        )
        self._thread.start()
        ready.wait(timeout)
        if self._failure is not None:
            raise OSError(
                f"market-data WebSocket cannot listen on "
                f"{self._settings.host}:{self._settings.port}: {self._failure}"
            )

    def stop(self, timeout: float = 5.0) -> None:
        loop, stopped = self._loop, self._stopped
        if loop is not None and stopped is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_settle, stopped)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def client_count(self) -> int:
        return len(self._clients)

    async def _main(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = self._loop.create_future()
        try:
            server = await serve(
                self._handle,
                self._settings.host,
                self._settings.port,
                ping_interval=PING_INTERVAL,
                ping_timeout=PING_TIMEOUT,
                compression=None,  # per-frame deflate costs more CPU than loopback bandwidth
                max_size=MAX_MESSAGE_BYTES,
            )
        except OSError as error:
            self._failure = error
            ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self._stopped

    # ------------------------------------------------------------------ from other threads

    def on_ticks(self, ticks: list[Tick]) -> None:
        """The hub's consumer (source thread): hand the batch to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed() and self._clients:
            loop.call_soon_threadsafe(self._fan_out, ticks)

    def on_status(self, status: FeedStatus) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._broadcast_status, status)

    def on_order(self, user_id: int, report: OrderReport) -> None:
        """EventBus subscriber for topic "order" (any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._order_update, user_id, report)

    # ------------------------------------------------------------------ in the event loop

    def _fan_out(self, ticks: list[Tick]) -> None:
        index = self._index
        for tick in ticks:
            subscribers = index.get(tick.key)
            if not subscribers:
                continue
            frames: dict[FeedMode, str] = {}
            for client, modes in subscribers.items():
                for mode in modes:
                    frame = frames.get(mode)
                    if frame is None:
                        payload = tick.payloads.get(mode)
                        if payload is None:  # the source has not caught up with a new mode
                            continue
                        frame = frames[mode] = _dumps(
                            {
                                "type": "market_data",
                                "symbol": tick.symbol,
                                "exchange": tick.exchange,
                                "mode": int(mode),
                                "data": payload,
                                "broker": client.owner.broker if client.owner else "",
                            }
                        )
                    client.push_market((tick.key, mode), frame)

    def _broadcast_status(self, status: FeedStatus) -> None:
        for client in self._clients:
            if client.owner is not None:
                client.push(
                    _dumps(
                        {
                            "type": "feed_status",
                            "status": "connected" if status.connected else "disconnected",
                            "message": status.message,
                            "broker": client.owner.broker,
                        }
                    )
                )

    def _order_update(self, user_id: int, report: OrderReport) -> None:
        for client in self._clients:
            owner = client.owner
            if client.orders and owner is not None and owner.user_id == user_id:
                client.push(_dumps(order_update_frame(owner, report)))

    async def _handle(self, connection: ServerConnection) -> None:
        client = _Client(connection)
        self._clients.add(client)
        writer = asyncio.create_task(self._write(client))
        try:
            await self._read(client)
            # The reader asked for a close (bad key, auth timeout...): the writer sends what
            # is queued, the error first, then closes.
            await asyncio.wait_for(asyncio.shield(writer), 5.0)
        except (ConnectionClosed, TimeoutError):
            pass
        finally:
            self._clients.discard(client)
            self._forget(client)
            writer.cancel()

    async def _read(self, client: _Client) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.auth_grace_seconds
        while True:
            try:
                if client.owner is None:
                    message = await asyncio.wait_for(
                        client.connection.recv(), max(0.0, deadline - loop.time())
                    )
                else:
                    message = await client.connection.recv()
            except TimeoutError:
                client.push(_Close(CLOSE_AUTH_REQUIRED, "auth timeout"))
                return
            if isinstance(message, bytes):
                client.push(_Close(1003, "text frames only"))
                return
            if not await self._on_message(client, message):
                return

    async def _on_message(self, client: _Client, text: str) -> bool:
        """Answer one message; False when the connection is to be closed."""
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise ValueError("a JSON object")
        except ValueError:
            client.bad_messages += 1
            client.push(_error("INVALID_JSON", _JSON_HELP))
            if client.bad_messages >= MAX_BAD_MESSAGES:
                client.push(_Close(1008, "too many invalid messages"))
                return False
            return True
        client.bad_messages = 0
        action = str(message.get("action") or message.get("type") or "").strip().lower()
        try:
            if action in ("authenticate", "auth"):
                return await self._authenticate(client, message)
            if action == "ping":
                client.push(_dumps(_pong(message)))
            elif action == "get_supported_brokers":
                brokers = list(self._settings.supported_brokers)
                client.push(_dumps({"type": "supported_brokers", "status": "success",
                                    "brokers": brokers, "count": len(brokers)}))  # fmt: skip
            elif client.owner is None:
                raise ClientError("NOT_AUTHENTICATED", "You must authenticate first")
            else:
                handler = self._handlers.get(action)
                if handler is None:
                    raise ClientError("INVALID_ACTION", f"Unknown action {action!r}; {_ACTIONS}")
                frame = handler(client, client.owner, message)
                client.push(_dumps(_with_request_id(frame, message.get("request_id"))))
        except ClientError as error:
            client.push(_error(error.code, error.message))
        return True

    @property
    def _handlers(self) -> dict[str, Handler]:
        return {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "unsubscribe_all": self._unsubscribe_all,
            "subscribe_orders": self._orders,
            "unsubscribe_orders": self._orders,
            "get_broker_info": self._broker_info,
        }

    def _unsubscribe_all(
        self, client: _Client, owner: ApiKeyOwner, message: dict[str, Any]
    ) -> dict[str, Any]:
        self._forget(client)
        return {"type": "unsubscribe", "status": "success",
                "message": "Unsubscribed from all instruments",
                "successful": [], "failed": [], "broker": owner.broker}  # fmt: skip

    def _orders(
        self, client: _Client, owner: ApiKeyOwner, message: dict[str, Any]
    ) -> dict[str, Any]:
        action = str(message.get("action") or message.get("type")).strip().lower()
        client.orders = action == "subscribe_orders"
        verb = "Subscribed to" if client.orders else "Unsubscribed from"
        return {"type": action, "status": "success", "message": f"{verb} order updates"}

    def _broker_info(
        self, client: _Client, owner: ApiKeyOwner, message: dict[str, Any]
    ) -> dict[str, Any]:
        connected = self._hub.status.connected
        return {"type": "broker_info", "status": "success", "broker": owner.broker,
                "adapter_status": "connected" if connected else "disconnected",
                "user_id": owner.username}  # fmt: skip

    async def _authenticate(self, client: _Client, message: dict[str, Any]) -> bool:
        key = message.get("api_key") or message.get("apikey")
        if not isinstance(key, str) or not key.strip():
            client.push(_error("AUTHENTICATION_ERROR", "API key is required"))
            client.push(_Close(CLOSE_AUTH_REQUIRED, "api key required"))
            return False
        loop = asyncio.get_running_loop()
        try:  # a database read on a first use: off the event loop
            owner = await loop.run_in_executor(None, self._verify_key, key.strip())
        except DalalError:
            client.push(_error("AUTHENTICATION_ERROR", "Invalid API key"))
            client.push(_Close(CLOSE_AUTH_FAILED, "invalid api key"))
            return False
        if client.owner is not None and client.owner.user_id != owner.user_id:
            self._forget(client)  # another user's key: the old subscriptions are not theirs
            client.orders = False
        client.owner = owner
        client.push(
            _dumps(
                {
                    "type": "auth",
                    "status": "success",
                    "message": "Authentication successful",
                    "broker": owner.broker,
                    "user_id": owner.username,
                    "supported_features": {"ltp": True, "quote": True, "depth": True},
                }
            )
        )
        return True

    def _subscribe(
        self, client: _Client, owner: ApiKeyOwner, message: dict[str, Any]
    ) -> dict[str, Any]:
        try:
            mode = FeedMode.parse(message.get("mode"), FeedMode.QUOTE)
        except ValueError as error:
            raise ClientError("INVALID_MODE", str(error)) from None
        depth = message.get("depth", 5)
        if mode is FeedMode.DEPTH and str(depth) not in {str(d) for d in SUPPORTED_DEPTHS}:
            raise ClientError(
                "UNSUPPORTED_DEPTH_LEVEL",
                f"depth {depth!r} is not available; supported depths: {list(SUPPORTED_DEPTHS)}",
            )
        results: list[dict[str, Any]] = []
        for item in parse_instruments(message):
            if isinstance(item, ClientError):
                results.append(_item_error("", "", item.message, owner))
                continue
            symbol, exchange = item
            key = self._resolve(symbol, exchange)
            if key is None:
                results.append(
                    _item_error(symbol, exchange, f"No instrument {symbol} on {exchange}", owner)
                )
                continue
            modes = client.subscriptions.setdefault(key, set())
            if mode not in modes:
                modes.add(mode)
                self._index.setdefault(key, {})[client] = modes
                self._hub.acquire(key, mode)
            results.append(
                {**_item_ok(key, owner), "mode": mode.label, "depth": SUPPORTED_DEPTHS[0]}
            )
        return {"type": "subscribe", "status": _overall(results), "subscriptions": results,
                "message": "Subscription processing complete",
                "broker": owner.broker}  # fmt: skip

    def _unsubscribe(
        self, client: _Client, owner: ApiKeyOwner, message: dict[str, Any]
    ) -> dict[str, Any]:
        """Per item: mode defaults to Quote (2), as in OpenAlgo's protocol."""
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        entries = message.get("symbols")
        items: list[Any] = entries if isinstance(entries, list) else [message]
        for entry in items:
            found = parse_instruments({"symbols": [entry]})[0]
            if isinstance(found, ClientError):
                failed.append(_item_error("", "", found.message, owner))
                continue
            symbol, exchange = found
            try:
                mode = FeedMode.parse(entry.get("mode", message.get("mode")), FeedMode.QUOTE)
            except ValueError as error:
                failed.append(_item_error(symbol, exchange, str(error), owner))
                continue
            key = self._resolve(symbol, exchange) or (exchange, symbol)
            if self._drop(client, key, mode):
                successful.append(_item_ok(key, owner))
            else:
                failed.append(
                    _item_error(
                        symbol,
                        exchange,
                        f"Not subscribed to {symbol} on {exchange} in {mode.label} mode",
                        owner,
                    )
                )
        status = "success" if not failed else ("partial" if successful else "error")
        return {"type": "unsubscribe", "status": status,
                "message": "Unsubscription processing complete",
                "successful": successful, "failed": failed,
                "broker": owner.broker}  # fmt: skip

    def _drop(self, client: _Client, key: Key, mode: FeedMode) -> bool:
        modes = client.subscriptions.get(key)
        if not modes or mode not in modes:
            return False
        modes.discard(mode)
        client.market.pop((key, mode), None)
        if not modes:
            del client.subscriptions[key]
            subscribers = self._index.get(key)
            if subscribers is not None:
                subscribers.pop(client, None)
                if not subscribers:
                    del self._index[key]
        self._hub.release(key, mode)
        return True

    def _forget(self, client: _Client) -> None:
        for key, modes in list(client.subscriptions.items()):
            for mode in list(modes):
                self._drop(client, key, mode)

    async def _write(self, client: _Client) -> None:
        connection = client.connection
        slow = self._settings.slow_client_seconds
        while True:
            await client.wake.wait()
            client.wake.clear()
            while True:
                if len(client.control) > MAX_CONTROL:
                    client.control.clear()
                    client.control.append(_Close(CLOSE_TOO_SLOW, "client too slow"))
                if client.control:
                    item = client.control.popleft()
                    if isinstance(item, _Close):
                        await _close(connection, item)
                        return
                    frame = item
                elif client.market:
                    slot = next(iter(client.market))
                    frame = client.market.pop(slot)
                else:
                    break
                try:
                    await asyncio.wait_for(connection.send(frame), slow)
                except TimeoutError:
                    log.info("closing a feed client that read nothing for %s s", slow)
                    await _close(connection, _Close(CLOSE_TOO_SLOW, "client too slow"))
                    return
                except ConnectionClosed:
                    return
                self.sent_frames += 1


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _close(connection: ServerConnection, close: _Close) -> None:
    try:
        await asyncio.wait_for(connection.close(close.code, close.reason), 2.0)
    except (TimeoutError, ConnectionClosed):
        connection.transport.abort()  # the peer reads nothing: drop it without a handshake


def _item_ok(key: Key, owner: ApiKeyOwner) -> dict[str, Any]:
    return {"symbol": key[1], "exchange": key[0], "status": "success", "broker": owner.broker}


def _item_error(symbol: str, exchange: str, message: str, owner: ApiKeyOwner) -> dict[str, Any]:
    return {"symbol": symbol, "exchange": exchange, "status": "error", "message": message,
            "broker": owner.broker}  # fmt: skip


def _error(code: str, message: str) -> str:
    return _dumps({"status": "error", "code": code, "message": message})


def _pong(message: dict[str, Any]) -> dict[str, Any]:
    pong: dict[str, Any] = {"type": "pong", "status": "success", "server_timestamp": epoch_ms()}
    if "timestamp" in message:
        pong["client_timestamp"] = message["timestamp"]
    if "_pingId" in message:
        pong["_pingId"] = message["_pingId"]
    return pong


def _with_request_id(frame: dict[str, Any], request_id: Any) -> dict[str, Any]:
    if request_id is not None:
        frame["request_id"] = request_id
    return frame


def _overall(results: list[dict[str, Any]]) -> str:
    good = sum(1 for result in results if result["status"] == "success")
    if good == len(results) and results:
        return "success"
    return "partial" if good else "error"
