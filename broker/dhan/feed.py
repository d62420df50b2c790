"""Dhan's live market feed (v2) as a tick source for the desk's hub.

The feed is a WebSocket at `wss://api-feed.dhan.co?version=2&token=..&clientId=..&authType=2`.
Subscriptions are JSON: `{"RequestCode": 15|17|21, "InstrumentCount": n, "InstrumentList":
[{"ExchangeSegment": "NSE_EQ", "SecurityId": "1333"}, ...]}` (at most 100 a message; the
code plus one unsubscribes). Answers are binary, little-endian, each packet opening with an
8-byte header: response code (u8), message length (u16), exchange segment (u8), security ID
(u32). Packets (Dhan annexure "Feed Response Code", layouts as in the dhanhq SDK):

  2 ticker      LTP f32, LTT u32                                               16 bytes
  4 quote       LTP, LTQ u16, LTT, ATP, volume, total sell, total buy, OHLC     50 bytes
  5 OI          open interest u32                                              12 bytes
  6 prev close  previous close f32, previous OI u32                            16 bytes
  8 full        quote fields + OI, OI high/low, then 5 depth levels            162 bytes
                (bid qty u32, ask qty u32, bid orders u16, ask orders u16, bid f32, ask f32)
 50 disconnect  reason u16 (805 too many connections, 806 no data plan, 807 token expired,
                808 bad client ID, 809 authentication failed)               10 bytes

Times (LTT) are seconds since the epoch on IST wall clock, so 19800 s ahead of UTC.

Dalal's LTP mode subscribes Dhan's ticker; quote and depth subscribe Dhan's full packet, the
only one with the best bid/ask (Dhan's quote packet has none). Ticks carry the payloads of
every mode up to the subscribed one, shaped as the simulated feed's. The connection is this
module's own (the `websockets` sync client, one thread) rather than the SDK's asyncio loop,
so `close()` from any thread ends `run()` at once and the hub can reconnect it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import struct
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from broker.dhan.mapping import REQUEST_CODE_OF
from services.errors import DalalError
from services.feed.model import FeedMode, Key, Tick, epoch_ms
from services.feed.source import Emit, SourceDropped

if TYPE_CHECKING:
    from broker.dhan.adapter import DhanBroker

log = logging.getLogger(__name__)

IST_OFFSET_SECONDS = 19_800
BATCH = 100
DISCONNECT = 12
_AUTH_FAILURES = frozenset({807, 808, 809})
_REASONS = {
    805: "too many connections for this account",
    806: "the account has no Dhan data plan",
    807: "the access token expired",
    808: "the client ID is invalid",
    809: "authentication failed",
}
_SIZES = {1: 16, 2: 16, 4: 50, 5: 12, 6: 16, 7: 8, 8: 162, 50: 10}
_HEADER = struct.Struct("<BHBI")
_LTP = struct.Struct("<fI")
_QUOTE = struct.Struct("<fHIfIIIffff")
_FULL = struct.Struct("<fHIfIIIIIIffff")
_LEVEL = struct.Struct("<IIHHff")
_SECRET = re.compile(r"(token=)[^&\s'\"]+", re.IGNORECASE)


class _Redact(logging.Filter):
    """The feed's URL carries the access token: the WebSocket library's own log lines (the
    handshake at DEBUG) go through this logger and lose it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message.lower():
            record.msg, record.args = _SECRET.sub(r"\1***", message), None
        return True


_WIRE = logging.getLogger("broker.dhan.wire")
_WIRE.addFilter(_Redact())


@dataclass(frozen=True, slots=True)
class _Watch:
    key: Key
    mode: FeedMode
    segment: str  # NSE_EQ, ...
    security_id: str
    code: int  # the request code subscribed for it


@dataclass(slots=True)
class _Memory:
    """What Dhan sends once (previous close) or apart (OI) from the price packets."""

    prev_close: float = 0.0
    oi: int = 0


def _price(value: float) -> float:
    return round(float(value), 2)


class DhanFeed:
    name = "dhan"

    def __init__(self, broker: DhanBroker, *, open_timeout: float = 10.0) -> None:
        self._broker = broker
        self._open_timeout = open_timeout
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._socket: ClientConnection | None = None
        self._closed = threading.Event()
        self._wanted: dict[tuple[int, str], _Watch] = {}
        self._sent: dict[tuple[int, str], _Watch] = {}
        self._memory: dict[tuple[int, str], _Memory] = {}

    # ------------------------------------------------------------------ the connection

    def connect(self) -> None:
        if self._closed.is_set():
            raise SourceDropped("this connection was closed; the hub opens a new one")
        token = self._broker.feed_token()  # BrokerSessionExpired when there is no session
        query = urllib.parse.urlencode(
            {
                "version": "2",
                "token": token,
                "clientId": self._broker.credentials.client_id,
                "authType": "2",
            }
        )
        try:
            socket = connect(
                f"{self._broker.feed_url}?{query}",
                open_timeout=self._open_timeout,
                logger=_WIRE,
                max_size=2**22,
                legacy=True,  # this module owns the connection and closes it
            )
        except InvalidStatus as refused:
            status = refused.response.status_code
            if status in (401, 403):
                self._broker.end_session()
            raise SourceDropped(f"Dhan refused the market feed (HTTP {status})") from None
        except (InvalidHandshake, OSError, TimeoutError) as failed:
            raise SourceDropped(
                f"Dhan's market feed could not be reached ({type(failed).__name__})"
            ) from None
        with self._lock:
            if self._closed.is_set():
                socket.close()
                raise SourceDropped("closed while connecting")
            self._socket = socket
            self._sent = {}

    def set_subscriptions(self, wanted: Mapping[Key, FeedMode]) -> None:
        resolved: dict[tuple[int, str], _Watch] = {}
        for (exchange, symbol), mode in wanted.items():
            try:
                contract = self._broker.feed_contract(exchange, symbol)
            except DalalError as error:
                log.warning("Dhan feed: %s:%s not subscribed (%s)", exchange, symbol, error)
                continue
            if contract is None:
                log.info("Dhan feed: %s:%s is not in Dhan's scrip master", exchange, symbol)
                continue
            resolved[(contract.feed_segment, contract.security_id)] = _Watch(
                (exchange, symbol),
                mode,
                contract.segment,
                contract.security_id,
                REQUEST_CODE_OF[mode],
            )
        with self._lock:
            self._wanted = resolved
        self._sync()

    def _sync(self) -> None:
        """Send Dhan the difference between what is wanted and what this connection has."""
        with self._send_lock:
            with self._lock:
                socket, wanted, sent = self._socket, self._wanted, dict(self._sent)
            if socket is None:
                return
            stop: dict[int, list[_Watch]] = {}
            start: dict[int, list[_Watch]] = {}
            for ident, watch in sent.items():
                current = wanted.get(ident)
                if current is None or current.code != watch.code:
                    stop.setdefault(watch.code + 1, []).append(watch)
            for ident, watch in wanted.items():
                before = sent.get(ident)
                if before is None or before.code != watch.code:
                    start.setdefault(watch.code, []).append(watch)
            try:
                for code, watches in [*stop.items(), *start.items()]:
                    for first in range(0, len(watches), BATCH):
                        socket.send(json.dumps(_request(code, watches[first : first + BATCH])))
            except ConnectionClosed:
                return  # run() reports the drop
            with self._lock:
                if self._socket is socket:
                    self._sent = dict(wanted)

    def run(self, emit: Emit) -> None:
        with self._lock:
            socket = self._socket
        if socket is None:
            raise SourceDropped("run() before connect()")
        while True:
            try:
                message = socket.recv()
            except ConnectionClosed as ended:
                if self._closed.is_set():
                    return
                code = ended.rcvd.code if ended.rcvd is not None else 1006
                raise SourceDropped(f"Dhan's market feed closed (code {code})") from None
            if isinstance(message, str):
                continue  # Dhan speaks binary; nothing to read in text frames
            ticks = self._ticks(message)
            if ticks:
                emit(ticks)

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            socket, self._socket = self._socket, None
        if socket is None:
            return
        with contextlib.suppress(ConnectionClosed, OSError, RuntimeError):
            socket.send(json.dumps({"RequestCode": DISCONNECT}))  # Dhan's polite goodbye
        socket.close()

    # ------------------------------------------------------------------ packets

    def _ticks(self, data: bytes) -> list[Tick]:
        ticks: list[Tick] = []
        produced = epoch_ms()
        offset = 0
        while offset + _HEADER.size <= len(data):
            code, length, segment, security_id = _HEADER.unpack_from(data, offset)
            known = _SIZES.get(code, 0)
            size = length if length >= max(known, _HEADER.size) else known
            if not size or offset + size > len(data):
                break
            tick = self._packet(code, (segment, str(security_id)), data[offset : offset + size])
            if tick is not None:
                ticks.append(Tick(tick[0][0], tick[0][1], produced, _stamped(tick[1], produced)))
            offset += size
        return ticks

    def _packet(
        self, code: int, ident: tuple[int, str], packet: bytes
    ) -> tuple[Key, dict[int, dict[str, Any]]] | None:
        if code == 50:
            (reason,) = struct.unpack_from("<H", packet, _HEADER.size)
            if reason in _AUTH_FAILURES:
                self._broker.end_session()
            why = _REASONS.get(reason, f"reason {reason}")
            raise SourceDropped(f"Dhan ended the market feed: {why}")
        memory = self._memory.setdefault(ident, _Memory())
        if code == 6:
            memory.prev_close = _LTP.unpack_from(packet, _HEADER.size)[0]
            return None
        if code == 5:
            memory.oi = struct.unpack_from("<I", packet, _HEADER.size)[0]
            return None
        watch = self._wanted.get(ident)
        if watch is None:
            return None
        if code in (1, 2):
            ltp, ltt = _LTP.unpack_from(packet, _HEADER.size)
            return watch.key, {1: {"ltp": _price(ltp), "ltt": _ltt(ltt)}}
        if code == 4:
            return watch.key, _quote_payloads(_QUOTE.unpack_from(packet, _HEADER.size), memory)
        if code == 8:
            payloads = _full_payloads(packet, memory)
            return watch.key, {mode: data for mode, data in payloads.items() if mode <= watch.mode}
        return None  # market status and anything newer


def _request(code: int, watches: list[_Watch]) -> dict[str, Any]:
    return {
        "RequestCode": code,
        "InstrumentCount": len(watches),
        "InstrumentList": [
            {"ExchangeSegment": watch.segment, "SecurityId": watch.security_id} for watch in watches
        ],
    }


def _ltt(seconds: int) -> int:
    """Dhan's IST-wall-clock epoch seconds as true epoch milliseconds (0: never traded)."""
    return (seconds - IST_OFFSET_SECONDS) * 1000 if seconds else 0


def _stamped(payloads: dict[int, dict[str, Any]], produced: int) -> dict[int, dict[str, Any]]:
    for data in payloads.values():
        if not data.get("ltt"):
            data["ltt"] = produced
        data["timestamp"] = produced
    return payloads


def _quote_data(
    ltp: float,
    ltq: int,
    ltt: int,
    volume: int,
    ohlc: tuple[float, float, float, float],
    memory: _Memory,
) -> dict[str, Any]:
    open_, close, high, low = ohlc
    previous = memory.prev_close or close
    change = ltp - previous
    percent = change / previous * 100 if previous else 0.0
    return {
        "ltp": _price(ltp),
        "open": _price(open_),
        "high": _price(high),
        "low": _price(low),
        "close": _price(previous),
        "volume": volume,
        "last_trade_quantity": ltq,
        "change": _price(change),
        "change_percent": _price(percent),
        "bid": 0.0,
        "ask": 0.0,
        "oi": memory.oi,
        "ltt": _ltt(ltt),
    }


def _quote_payloads(fields: tuple[Any, ...], memory: _Memory) -> dict[int, dict[str, Any]]:
    ltp, ltq, ltt, _atp, volume, _sell, _buy, open_, close, high, low = fields
    quote = _quote_data(ltp, ltq, ltt, volume, (open_, close, high, low), memory)
    return {1: {"ltp": quote["ltp"], "ltt": quote["ltt"]}, 2: quote}


def _full_payloads(packet: bytes, memory: _Memory) -> dict[int, dict[str, Any]]:
    fields = _FULL.unpack_from(packet, _HEADER.size)
    ltp, ltq, ltt, _atp, volume, total_sell, total_buy, oi, _oi_high, _oi_low = fields[:10]
    open_, close, high, low = fields[10:]
    memory.oi = oi
    levels = [
        _LEVEL.unpack_from(packet, _HEADER.size + _FULL.size + level * _LEVEL.size)
        for level in range(5)
    ]
    buy = [
        {"price": _price(bid), "quantity": bid_qty, "orders": bid_orders}
        for bid_qty, _ask_qty, bid_orders, _ask_orders, bid, _ask in levels
    ]
    sell = [
        {"price": _price(ask), "quantity": ask_qty, "orders": ask_orders}
        for _bid_qty, ask_qty, _bid_orders, ask_orders, _bid, ask in levels
    ]
    quote = _quote_data(ltp, ltq, ltt, volume, (open_, close, high, low), memory)
    quote["bid"], quote["ask"] = buy[0]["price"], sell[0]["price"]
    return {
        1: {"ltp": quote["ltp"], "ltt": quote["ltt"]},
        2: quote,
        3: {
            **quote,
            "depth": {"buy": buy, "sell": sell},
            "total_buy_quantity": total_buy,
            "total_sell_quantity": total_sell,
        },
    }
