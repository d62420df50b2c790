"""A fake Kite Connect on loopback, for the real `kiteconnect` SDK to talk to.

Shaped after Kite Connect v3's published API and the SDK's own request code: form-encoded
requests, the `{"status": "success", "data": ...}` envelope, errors as
`{"status": "error", "message": ..., "error_type": "TokenException"}` with Kite's HTTP codes,
the instruments dump as CSV, timestamps as IST wall-clock text ("2026-11-23 10:00:00"), the
login redirect with a one-time `request_token` and the SHA-256 checksum, and the ticker: a
WebSocket taking `{"a": "subscribe"|"unsubscribe"|"mode", "v": ...}` text messages and sending
binary tick packets (ltp 8 bytes, quote 44, full 184 with five levels of depth; indices 8, 28,
32), prices in paise (CDS in 1e-7 rupees), a one-byte heartbeat every second and order updates
as `{"type": "order", "data": {...}}` text messages.

It holds state: MARKET orders fill at once at the fake's last price, LIMIT orders when
marketable, stops when their trigger trades (`set_ltp`); positions and margins follow the
fills. Faults are injected with `fail_next`, `delay_next`, `expire_tokens` and `drop_ticker`.

Nothing here logs a request: the access token travels in query strings (logout, ticker).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from services.broker_accounts import BrokerCredentials
from services.clock import IST

MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKLY_MONTH = "123456789OND"  # Kite's one-letter month in weekly option symbols
SEGMENT_CODES = {"NSE": 1, "NFO": 2, "CDS": 3, "BSE": 4, "BFO": 5, "BCD": 6, "MCX": 7,
                 "INDICES": 9, "NCO": 12}  # fmt: skip
MARGIN_RATES = {"MIS": Decimal("0.2"), "CNC": Decimal(1), "NRML": Decimal(1)}
CENT = Decimal("0.01")
OPENING_BALANCE = Decimal("1000000.00")
ERRORS = {
    429: ("NetworkException", "Too many requests"),
    500: ("GeneralException", "Something went wrong"),
    502: ("DataException", "Unable to reach the OMS"),
    503: ("NetworkException", "Service unavailable"),
    504: ("NetworkException", "Gateway timed out"),
}
_QUIET = logging.getLogger("tests.fakes.kite.ws")
_QUIET.disabled = True  # the ticker's URL carries the access token: log nothing


def _tuesdays(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    days = [first + timedelta(days=offset) for offset in range(31)]
    return [day for day in days if day.month == month and day.weekday() == 1]


def _next_month(today: date) -> tuple[int, int]:
    return (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)


def _text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


@dataclass
class FakeInstrument:
    exchange_token: int
    tradingsymbol: str
    name: str
    instrument_type: str
    segment: str
    exchange: str
    ltp: Decimal
    close: Decimal
    tick_size: Decimal = Decimal("0.05")
    lot_size: int = 1
    expiry: date | None = None
    strike: Decimal = Decimal(0)
    volume: int = 0
    oi: int = 0

    @property
    def token(self) -> int:
        code = SEGMENT_CODES["INDICES" if self.segment == "INDICES" else self.exchange]
        return (self.exchange_token << 8) | code

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        return self.segment == "INDICES"

    @property
    def scale(self) -> int:
        """Kite's integer price units per rupee on the ticker."""
        return {"CDS": 10_000_000, "BCD": 10_000}.get(self.exchange, 100)

    def depth(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.is_index:
            return [], []
        step = self.tick_size
        buy = [{"price": self.ltp - step * (i + 1), "quantity": 100 * (i + 1), "orders": i + 1}
               for i in range(5)]  # fmt: skip
        sell = [{"price": self.ltp + step * (i + 1), "quantity": 150 * (i + 1), "orders": i + 2}
                for i in range(5)]  # fmt: skip
        return buy, sell

    def ohlc(self) -> dict[str, Decimal]:
        return {"open": self.close + 2, "high": max(self.ltp, self.close) + 5,
                "low": min(self.ltp, self.close) - 5, "close": self.close}  # fmt: skip


def default_instruments(today: date) -> list[FakeInstrument]:
    """A handful of Kite's contracts around `today`: two shares, two indices, a NIFTY future
    and monthly and weekly options (Tuesday expiries next month), a USDINR future, and an NSE
    commodity (NCO) future Dalal has no exchange for."""
    year, month = _next_month(today)
    tuesdays = _tuesdays(year, month)
    weekly, monthly = tuesdays[0], tuesdays[-1]
    yy, mon = f"{monthly.year % 100:02d}", MONTHS[monthly.month - 1]
    week = f"{weekly.year % 100:02d}{WEEKLY_MONTH[weekly.month - 1]}{weekly.day:02d}"
    return [
        FakeInstrument(3045, "SBIN", "STATE BANK OF INDIA", "EQ", "NSE", "NSE",
                       Decimal("801.35"), Decimal("795.10"), volume=1_250_000),
        FakeInstrument(1594, "INFY", "INFOSYS", "EQ", "NSE", "NSE",
                       Decimal("1589.40"), Decimal("1601.00"), volume=830_000),
        FakeInstrument(1001, "NIFTY 50", "NIFTY 50", "EQ", "INDICES", "NSE",
                       Decimal("26012.55"), Decimal("25950.20"), tick_size=Decimal(0), lot_size=0),
        FakeInstrument(1, "SENSEX", "SENSEX", "EQ", "INDICES", "BSE",
                       Decimal("85120.40"), Decimal("84990.00"), tick_size=Decimal(0), lot_size=0),
        FakeInstrument(51714, f"NIFTY{yy}{mon}FUT", "NIFTY", "FUT", "NFO-FUT", "NFO",
                       Decimal("26105.10"), Decimal("26040.00"), tick_size=Decimal("0.1"),
                       lot_size=75, expiry=monthly, volume=95_000, oi=12_500_000),
        FakeInstrument(41822, f"NIFTY{yy}{mon}26000CE", "NIFTY", "CE", "NFO-OPT", "NFO",
                       Decimal("312.45"), Decimal("298.00"), lot_size=75, expiry=monthly,
                       strike=Decimal(26000), volume=450_000, oi=3_100_000),
        FakeInstrument(41907, f"NIFTY{week}26000PE", "NIFTY", "PE", "NFO-OPT", "NFO",
                       Decimal("88.20"), Decimal("95.65"), lot_size=75, expiry=weekly,
                       strike=Decimal(26000), volume=920_000, oi=5_600_000),
        FakeInstrument(7012, f"USDINR{yy}{mon}FUT", "USDINR", "FUT", "CDS-FUT", "CDS",
                       Decimal("88.1225"), Decimal("88.0500"), tick_size=Decimal("0.0025"),
                       expiry=monthly - timedelta(days=2), volume=40_000, oi=900_000),
        FakeInstrument(880, f"ALUMINI{yy}{mon}FUT", "ALUMINI", "FUT", "NCO-FUT", "NCO",
                       Decimal("248.10"), Decimal("247.00"), lot_size=1, expiry=monthly),
    ]  # fmt: skip


@dataclass
class _Order:
    order_id: str
    variety: str
    instrument: FakeInstrument
    side: str
    quantity: int
    product: str
    order_type: str
    price: Decimal
    trigger_price: Decimal
    validity: str
    disclosed_quantity: int
    tag: str | None
    placed_at: datetime
    status: str = "PUT ORDER REQ RECEIVED"
    filled: int = 0
    average: Decimal = Decimal(0)
    status_message: str | None = None
    updated_at: datetime | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def live(self) -> bool:
        return self.status in ("OPEN", "TRIGGER PENDING")

    def row(self) -> dict[str, Any]:
        updated = self.updated_at or self.placed_at
        return {
            "placed_by": FakeKite.user_id,
            "order_id": self.order_id,
            "exchange_order_id": f"1100000{self.order_id[-8:]}",
            "parent_order_id": None,
            "status": self.status,
            "status_message": self.status_message,
            "status_message_raw": self.status_message,
            "order_timestamp": _stamp(self.placed_at),
            "exchange_update_timestamp": _stamp(updated),
            "exchange_timestamp": _stamp(self.placed_at) if self.status != "REJECTED" else None,
            "variety": self.variety,
            "modified": len(self.history) > 5,
            "exchange": self.instrument.exchange,
            "tradingsymbol": self.instrument.tradingsymbol,
            "instrument_token": self.instrument.token,
            "order_type": self.order_type,
            "transaction_type": self.side,
            "validity": self.validity,
            "validity_ttl": 0,
            "product": self.product,
            "quantity": self.quantity,
            "disclosed_quantity": self.disclosed_quantity,
            "price": self.price,
            "trigger_price": self.trigger_price,
            "average_price": self.average,
            "filled_quantity": self.filled,
            "pending_quantity": self.quantity - self.filled if self.live else 0,
            "cancelled_quantity": self.quantity - self.filled if self.status == "CANCELLED" else 0,
            "market_protection": 0,
            "meta": {},
            "tag": self.tag,
            "tags": [self.tag] if self.tag else [],
            "guid": f"fake-{self.order_id}",
        }


@dataclass
class _Position:
    instrument: FakeInstrument
    product: str
    buy_quantity: int = 0
    buy_value: Decimal = Decimal(0)
    sell_quantity: int = 0
    sell_value: Decimal = Decimal(0)

    def row(self) -> dict[str, Any]:
        ltp = self.instrument.ltp
        buy_avg = (self.buy_value / self.buy_quantity) if self.buy_quantity else Decimal(0)
        sell_avg = (self.sell_value / self.sell_quantity) if self.sell_quantity else Decimal(0)
        net = self.buy_quantity - self.sell_quantity
        closed = min(self.buy_quantity, self.sell_quantity)
        realised = closed * (sell_avg - buy_avg)
        if net > 0:
            average, unrealised = buy_avg, net * (ltp - buy_avg)
        elif net < 0:
            average, unrealised = sell_avg, -net * (sell_avg - ltp)
        else:
            average, unrealised = Decimal(0), Decimal(0)
        return {
            "tradingsymbol": self.instrument.tradingsymbol,
            "exchange": self.instrument.exchange,
            "instrument_token": self.instrument.token,
            "product": self.product,
            "quantity": net,
            "overnight_quantity": 0,
            "multiplier": 1,
            "average_price": _round(average),
            "close_price": self.instrument.close,
            "last_price": ltp,
            "value": self.sell_value - self.buy_value,
            "pnl": _round(realised + unrealised),
            "m2m": _round(realised + unrealised),
            "unrealised": _round(unrealised),
            "realised": _round(realised),
            "buy_quantity": self.buy_quantity,
            "buy_price": _round(buy_avg),
            "buy_value": self.buy_value,
            "buy_m2m": self.buy_value,
            "sell_quantity": self.sell_quantity,
            "sell_price": _round(sell_avg),
            "sell_value": self.sell_value,
            "sell_m2m": self.sell_value,
            "day_buy_quantity": self.buy_quantity,
            "day_buy_price": _round(buy_avg),
            "day_buy_value": self.buy_value,
            "day_sell_quantity": self.sell_quantity,
            "day_sell_price": _round(sell_avg),
            "day_sell_value": self.sell_value,
        }

    def margin(self) -> Decimal:
        row = self.row()
        return abs(row["quantity"]) * row["average_price"] * MARGIN_RATES[self.product]


@dataclass
class _Fault:
    remaining: int
    status: int
    delay: float
    path: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path == path) and (
            self.method is None or self.method == method
        )


@dataclass
class TickerClient:
    number: int
    connection: ServerConnection
    access_token: str
    modes: dict[int, str] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    outbox: list[str] = field(default_factory=list)


class _KiteError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


def _stamp(moment: datetime) -> str:
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _input(message: str) -> _KiteError:
    return _KiteError(400, "InputException", message)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # query strings carry tokens: never print them

    def _serve(self) -> None:
        self.server.fake._serve(self)

    do_GET = do_POST = do_PUT = do_DELETE = _serve


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKite


# The redirect URL registered with the fake's Kite Connect app: a desk's callback at its
# default address (Kite sends every login of an app to the one URL registered for it).
DEFAULT_REDIRECT = "http://127.0.0.1:5000/settings/broker/zerodha/callback"


class FakeKite:
    api_key = "kitefakeapikey01"
    api_secret = "kitefakesecret-do-not-log-0123456789"
    user_id = "AB1234"
    tick_interval = 0.1

    def __init__(self, today: date, clock: Callable[[], datetime]) -> None:
        self.today = today
        self.clock = clock
        self.redirect_url = DEFAULT_REDIRECT
        self.instruments = default_instruments(today)
        self._lock = threading.RLock()
        self._request_tokens: set[str] = set()
        self._access_tokens: set[str] = set()
        self._faults: list[_Fault] = []
        self._orders: dict[str, _Order] = {}
        self._trades: list[dict[str, Any]] = []
        self._positions: dict[tuple[str, str], _Position] = {}
        self._next_id = 0
        self.requests: list[tuple[str, str]] = []
        self.orders_placed = 0
        self.ticker_clients: list[TickerClient] = []
        self._ticker_number = 0
        self.holdings = [
            {"tradingsymbol": "INFY", "exchange": "NSE", "quantity": 8, "t1_quantity": 2,
             "average_price": Decimal("1450.50")},
        ]  # fmt: skip
        self._http: _HttpServer | None = None
        self._ws: Server | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life

    @classmethod
    def start(
        cls, *, today: date | None = None, clock: Callable[[], datetime] | None = None
    ) -> FakeKite:
        now = clock or (lambda: datetime.now(IST))
        fake = cls(today or now().astimezone(IST).date(), now)
        http = _HttpServer(("127.0.0.1", 0), _Handler)
        http.fake = fake
        fake._http = http
        fake._ws = serve(
            fake._ticker_session, "127.0.0.1", 0, process_request=fake._ticker_handshake,
            logger=_QUIET, compression=None,
        )  # fmt: skip
        for target, name in ((http.serve_forever, "fake-kite-http"),
                             (fake._ws.serve_forever, "fake-kite-ticker")):  # fmt: skip
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            fake._threads.append(thread)
        return fake

    def stop(self) -> None:
        self.drop_ticker()
        if self._ws is not None:
            self._ws.shutdown()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(5)

    @property
    def api_url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def login_url(self) -> str:
        return f"{self.api_url}/connect/login"

    @property
    def ticker_url(self) -> str:
        assert self._ws is not None
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}"

    @property
    def credentials(self) -> BrokerCredentials:
        """What the trader enters on Settings -> Broker for this fake's app."""
        return BrokerCredentials(self.api_key, self.api_secret, self.user_id)

    @property
    def endpoints(self) -> str:
        """BROKER_ENDPOINTS pointing the desk's Zerodha adapter at this fake."""
        return (f"zerodha.api={self.api_url},zerodha.login={self.login_url},"
                f"zerodha.ticker={self.ticker_url}")  # fmt: skip

    # ------------------------------------------------------------------ controls

    def fail_next(
        self, n: int = 1, status: int = 429, path: str | None = None, method: str | None = None
    ) -> None:
        """Answer the next `n` matching requests with Kite's error for `status`."""
        with self._lock:
            self._faults.append(_Fault(n, status, 0.0, path, method))

    def delay_next(
        self, seconds: float, path: str | None = None, method: str | None = None, n: int = 1
    ) -> None:
        """Hold the next `n` matching requests for `seconds` before answering them."""
        with self._lock:
            self._faults.append(_Fault(n, 0, seconds, path, method))

    def expire_tokens(self) -> None:
        """Every access token stops working, as at Kite's 06:00 cut-off."""
        with self._lock:
            self._access_tokens.clear()

    def drop_ticker(self) -> None:
        """Cut every ticker connection, as a network failure would."""
        with self._lock:
            clients = list(self.ticker_clients)
        for client in clients:
            client.connection.close_socket()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for seen in self.requests if seen == (method, path))

    def instrument(self, tradingsymbol: str) -> FakeInstrument:
        return next(i for i in self.instruments if i.tradingsymbol == tradingsymbol)

    def set_ltp(self, tradingsymbol: str, price: str | Decimal) -> None:
        """Move a contract's price; resting orders that it reaches fill (or trigger)."""
        with self._lock:
            self.instrument(tradingsymbol).ltp = Decimal(price)
            for order in list(self._orders.values()):
                if order.live and order.instrument.tradingsymbol == tradingsymbol:
                    self._work(order)

    def issued_tokens(self) -> set[str]:
        with self._lock:
            return set(self._access_tokens)

    # ------------------------------------------------------------------ HTTP

    def _serve(self, handler: _Handler) -> None:
        method = handler.command
        url = urlsplit(handler.path)
        path = url.path
        query = parse_qs(url.query)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        form = parse_qs(body) if body else {}
        params = {key: values[-1] for key, values in {**query, **form}.items()}
        with self._lock:
            self.requests.append((method, path))
            fault = next((f for f in self._faults if f.matches(method, path)), None)
            if fault is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        try:
            if fault is not None and fault.status:
                error_type, message = ERRORS.get(fault.status, ("GeneralException", "Error"))
                raise _KiteError(fault.status, error_type, message)
            if path == "/connect/login" and method == "GET":
                self._login_page(handler, params)
                return
            with self._lock:
                data = self._route(handler, method, path, params, query)
        except _KiteError as error:
            self._send_json(handler, error.status, {
                "status": "error", "message": error.message, "data": None,
                "error_type": error.error_type,
            })  # fmt: skip
            return
        except (BrokenPipeError, ConnectionResetError):
            return
        if isinstance(data, bytes):
            self._send(handler, 200, "text/csv", data)
        else:
            self._send_json(handler, 200, {"status": "success", "data": data})

    def _send_json(self, handler: _Handler, status: int, body: Any) -> None:
        text = json.dumps(body, default=_json_default).encode()
        self._send(handler, status, "application/json", text)

    @staticmethod
    def _send(handler: _Handler, status: int, content_type: str, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout it was told to have)

    def _login_page(self, handler: _Handler, params: dict[str, str]) -> None:
        if params.get("api_key") != self.api_key or not self.redirect_url:
            self._send(handler, 400, "text/html", b"<h1>Invalid api_key</h1>")
            return
        request_token = secrets.token_hex(16)
        with self._lock:
            self._request_tokens.add(request_token)
        separator = "&" if "?" in self.redirect_url else "?"
        query = urlencode({"action": "login", "type": "login", "status": "success",
                           "request_token": request_token})  # fmt: skip
        handler.send_response(302)
        handler.send_header("Location", f"{self.redirect_url}{separator}{query}")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    def _authorised(self, handler: _Handler) -> None:
        header = handler.headers.get("Authorization") or ""
        api_key, _, token = header.removeprefix("token ").partition(":")
        if handler.headers.get("X-Kite-Version") != "3":
            raise _input("Kite version 3 is required (X-Kite-Version)")
        if api_key != self.api_key or token not in self._access_tokens:
            raise _KiteError(403, "TokenException", "Incorrect `api_key` or `access_token`.")

    def _route(  # noqa: C901  (one dispatch table, flat on purpose)
        self,
        handler: _Handler,
        method: str,
        path: str,
        params: dict[str, str],
        query: dict[str, list[str]],
    ) -> Any:
        parts = [part for part in path.split("/") if part]
        if path == "/session/token" and method == "POST":
            return self._session(params)
        if path == "/session/token" and method == "DELETE":
            if params.get("access_token") in self._access_tokens:
                self._access_tokens.discard(params["access_token"])
            return True
        if parts[:1] == ["instruments"] and len(parts) <= 2:
            return self._dump(parts[1] if len(parts) == 2 else None)
        self._authorised(handler)
        if path == "/user/profile":
            return {"user_id": self.user_id, "user_name": "Fake Trader", "broker": "ZERODHA",
                    "email": "fake@example.com", "exchanges": ["NSE", "NFO", "BSE", "CDS"],
                    "products": ["CNC", "NRML", "MIS"],
                    "order_types": ["MARKET", "LIMIT", "SL", "SL-M"]}  # fmt: skip
        if path == "/user/margins":
            return self._margins()
        if path == "/orders" and method == "GET":
            return [order.row() for order in self._orders.values()]
        if parts[:1] == ["orders"] and len(parts) == 2 and method == "GET":
            return list(self._order(parts[1]).history)
        if parts[:1] == ["orders"] and len(parts) == 3 and parts[2] == "trades":
            return [trade for trade in self._trades if trade["order_id"] == parts[1]]
        if parts[:1] == ["orders"] and len(parts) == 2 and method == "POST":
            return {"order_id": self._place(parts[1], params)}
        if parts[:1] == ["orders"] and len(parts) == 3 and method == "PUT":
            return {"order_id": self._modify(parts[1], parts[2], params)}
        if parts[:1] == ["orders"] and len(parts) == 3 and method == "DELETE":
            return {"order_id": self._cancel(parts[1], parts[2])}
        if path == "/trades":
            return list(self._trades)
        if path == "/portfolio/positions":
            rows = [position.row() for position in self._positions.values()]
            return {"net": rows, "day": rows}
        if path == "/portfolio/holdings":
            return self._holdings()
        if path in ("/quote", "/quote/ltp", "/quote/ohlc"):
            return self._quotes(path, query.get("i", []))
        if parts[:2] == ["instruments", "historical"] and len(parts) == 4:
            return self._history(parts[2], parts[3], params)
        raise _KiteError(404, "GeneralException", "Route not found")

    # ------------------------------------------------------------------ session

    def _session(self, params: dict[str, str]) -> dict[str, Any]:
        request_token = params.get("request_token", "")
        if params.get("api_key") != self.api_key:
            raise _KiteError(403, "TokenException", "Invalid `api_key`.")
        if request_token not in self._request_tokens:
            raise _KiteError(403, "TokenException", "Token is invalid or has expired.")
        expected = hashlib.sha256(
            (self.api_key + request_token + self.api_secret).encode()
        ).hexdigest()
        if params.get("checksum") != expected:
            raise _KiteError(403, "TokenException", "Invalid `checksum`.")
        self._request_tokens.discard(request_token)
        access_token = secrets.token_hex(16)
        self._access_tokens.add(access_token)
        return {
            "user_type": "individual", "email": "fake@example.com", "user_name": "Fake Trader",
            "user_shortname": "Fake", "broker": "ZERODHA", "exchanges": ["NSE", "NFO"],
            "products": ["CNC", "NRML", "MIS"], "order_types": ["MARKET", "LIMIT"],
            "avatar_url": None, "user_id": self.user_id, "api_key": self.api_key,
            "access_token": access_token, "public_token": secrets.token_hex(8),
            "refresh_token": "", "enctoken": "", "login_time": _stamp(self.clock()),
            "meta": {"demat_consent": "consent"},
        }  # fmt: skip

    # ------------------------------------------------------------------ instruments

    def _dump(self, exchange: str | None) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["instrument_token", "exchange_token", "tradingsymbol", "name",
                         "last_price", "expiry", "strike", "tick_size", "lot_size",
                         "instrument_type", "segment", "exchange"])  # fmt: skip
        for item in self.instruments:
            if exchange and item.exchange != exchange:
                continue
            writer.writerow([
                item.token, item.exchange_token, item.tradingsymbol, item.name, "0",
                item.expiry.isoformat() if item.expiry else "", f"{item.strike:.1f}",
                str(item.tick_size), item.lot_size, item.instrument_type, item.segment,
                item.exchange,
            ])  # fmt: skip
        return out.getvalue().encode()

    def _by_key(self, key: str) -> FakeInstrument | None:
        return next((item for item in self.instruments if item.key == key), None)

    # ------------------------------------------------------------------ orders

    def _order(self, order_id: str) -> _Order:
        order = self._orders.get(order_id)
        if order is None:
            raise _input("Couldn't find that `order_id`.")
        return order

    def _place(self, variety: str, params: dict[str, str]) -> str:
        if variety not in ("regular", "amo"):
            raise _input(f"Invalid variety `{variety}`.")
        instrument = self._by_key(f"{params.get('exchange')}:{params.get('tradingsymbol')}")
        if instrument is None or instrument.is_index:
            raise _input("Invalid `tradingsymbol`.")
        side, order_type = params.get("transaction_type"), params.get("order_type")
        if side not in ("BUY", "SELL"):
            raise _input("Invalid `transaction_type`.")
        if order_type not in ("MARKET", "LIMIT", "SL", "SL-M"):
            raise _input("Invalid `order_type`.")
        if params.get("product") not in MARGIN_RATES:
            raise _input("Invalid `product`.")
        quantity = int(params.get("quantity") or 0)
        if quantity <= 0 or quantity % instrument.lot_size:
            raise _input(f"Quantity should be a multiple of lot size {instrument.lot_size}.")
        price = Decimal(params.get("price") or 0)
        trigger = Decimal(params.get("trigger_price") or 0)
        if order_type in ("LIMIT", "SL") and price <= 0:
            raise _input("Price is required for a LIMIT order.")
        if order_type in ("SL", "SL-M") and trigger <= 0:
            raise _input("Trigger price is required for a stop-loss order.")
        self._next_id += 1
        now = self.clock()
        order = _Order(
            order_id=f"{now.astimezone(IST):%y%m%d}{self._next_id:09d}",
            variety=variety, instrument=instrument, side=side, quantity=quantity,
            product=params["product"], order_type=order_type, price=price,
            trigger_price=trigger, validity=params.get("validity") or "DAY",
            disclosed_quantity=int(params.get("disclosed_quantity") or 0),
            tag=params.get("tag"), placed_at=now,
        )  # fmt: skip
        self._orders[order.order_id] = order
        self.orders_placed += 1
        for status in ("PUT ORDER REQ RECEIVED", "VALIDATION PENDING", "OPEN PENDING"):
            self._set_status(order, status, announce=False)
        required = self._required(order)
        available = self._available()
        if order.side == "BUY" and required > available:
            order.status_message = (f"Insufficient funds. Required margin is {required:.2f} but "
                                    f"available margin is {available:.2f}.")  # fmt: skip
            self._set_status(order, "REJECTED")
            return order.order_id
        self._set_status(order, "TRIGGER PENDING" if order_type in ("SL", "SL-M") else "OPEN")
        self._work(order)
        return order.order_id

    def _modify(self, variety: str, order_id: str, params: dict[str, str]) -> str:
        order = self._order(order_id)
        if not order.live:
            raise _input(f"Order cannot be modified as it is {order.status.lower()}.")
        if "quantity" in params:
            quantity = int(params["quantity"])
            if quantity <= 0 or quantity % order.instrument.lot_size:
                raise _input(
                    f"Quantity should be a multiple of lot size {order.instrument.lot_size}."
                )
            order.quantity = quantity
        if "order_type" in params:
            order.order_type = params["order_type"]
        if "price" in params:
            order.price = Decimal(params["price"])
        if "trigger_price" in params:
            order.trigger_price = Decimal(params["trigger_price"])
        if "disclosed_quantity" in params:
            order.disclosed_quantity = int(params["disclosed_quantity"])
        self._set_status(order, "MODIFY VALIDATION PENDING", announce=False)
        stop = order.order_type in ("SL", "SL-M") and order.status != "OPEN"
        self._set_status(order, "TRIGGER PENDING" if stop else "OPEN")
        self._work(order)
        return order.order_id

    def _cancel(self, variety: str, order_id: str) -> str:
        order = self._order(order_id)
        if not order.live:
            raise _input(f"Order cannot be cancelled as it is {order.status.lower()}.")
        self._set_status(order, "CANCEL PENDING", announce=False)
        self._set_status(order, "CANCELLED")
        return order.order_id

    def _required(self, order: _Order) -> Decimal:
        price = order.price or order.instrument.ltp
        return _round(price * order.quantity * MARGIN_RATES[order.product])

    def _set_status(self, order: _Order, status: str, *, announce: bool = True) -> None:
        order.status = status
        order.updated_at = self.clock()
        row = order.row()
        order.history.append(row)
        if announce:
            self._announce(row)

    def _work(self, order: _Order) -> None:
        """Fill or trigger an open order if the last price allows it."""
        ltp, buy = order.instrument.ltp, order.side == "BUY"
        if order.status == "TRIGGER PENDING":
            if (buy and ltp < order.trigger_price) or (not buy and ltp > order.trigger_price):
                return
            order.order_type = "LIMIT" if order.order_type == "SL" else "MARKET"
            self._set_status(order, "OPEN", announce=False)
        if order.status != "OPEN":
            return
        marketable = order.order_type == "MARKET" or (
            order.price >= ltp if buy else order.price <= ltp
        )
        if marketable:
            self._fill(order, ltp)
        elif order.validity == "IOC":
            self._set_status(order, "CANCELLED")

    def _fill(self, order: _Order, price: Decimal) -> None:
        quantity = order.quantity - order.filled
        order.average = price
        order.filled = order.quantity
        key = (order.instrument.key, order.product)
        position = self._positions.setdefault(key, _Position(order.instrument, order.product))
        if order.side == "BUY":
            position.buy_quantity += quantity
            position.buy_value += price * quantity
        else:
            position.sell_quantity += quantity
            position.sell_value += price * quantity
        now = self.clock()
        self._trades.append({
            "trade_id": f"{50000000 + len(self._trades) + 1}",
            "order_id": order.order_id,
            "exchange": order.instrument.exchange,
            "tradingsymbol": order.instrument.tradingsymbol,
            "instrument_token": order.instrument.token,
            "product": order.product,
            "average_price": price,
            "quantity": quantity,
            "exchange_order_id": order.row()["exchange_order_id"],
            "transaction_type": order.side,
            "fill_timestamp": _stamp(now),
            "order_timestamp": now.astimezone(IST).strftime("%H:%M:%S"),
            "exchange_timestamp": _stamp(now),
        })  # fmt: skip
        self._set_status(order, "COMPLETE")

    # ------------------------------------------------------------------ books

    def _used(self) -> tuple[Decimal, Decimal, Decimal]:
        """(margin blocked, realised P&L, unrealised P&L) of the account now."""
        blocked = sum((p.margin() for p in self._positions.values()), Decimal(0))
        blocked += sum(
            (self._required(o) for o in self._orders.values() if o.live and o.side == "BUY"),
            Decimal(0),
        )
        rows = [position.row() for position in self._positions.values()]
        realised = sum((row["realised"] for row in rows), Decimal(0))
        unrealised = sum((row["unrealised"] for row in rows), Decimal(0))
        return _round(blocked), realised, unrealised

    def _available(self) -> Decimal:
        blocked, realised, _ = self._used()
        return OPENING_BALANCE - blocked + realised

    def _margins(self) -> dict[str, Any]:
        blocked, realised, unrealised = self._used()
        net = OPENING_BALANCE - blocked + realised
        zero = Decimal(0)
        return {
            "equity": {
                "enabled": True, "net": net,
                "available": {"adhoc_margin": zero, "cash": OPENING_BALANCE,
                              "opening_balance": OPENING_BALANCE, "live_balance": net,
                              "collateral": Decimal("25000.00"), "intraday_payin": zero},
                "utilised": {"debits": blocked, "exposure": zero, "m2m_realised": realised,
                             "m2m_unrealised": unrealised, "option_premium": zero,
                             "payout": zero, "span": blocked, "holding_sales": zero,
                             "turnover": zero, "liquid_collateral": zero,
                             "stock_collateral": Decimal("25000.00"), "delivery": zero},
            },
            "commodity": {
                "enabled": True, "net": Decimal("5000.00"),
                "available": {"adhoc_margin": zero, "cash": Decimal("5000.00"),
                              "opening_balance": Decimal("5000.00"),
                              "live_balance": Decimal("5000.00"), "collateral": zero,
                              "intraday_payin": zero},
                "utilised": {"debits": zero, "exposure": zero, "m2m_realised": zero,
                             "m2m_unrealised": zero, "option_premium": zero, "payout": zero,
                             "span": zero, "holding_sales": zero, "turnover": zero,
                             "liquid_collateral": zero, "stock_collateral": zero,
                             "delivery": zero},
            },
        }  # fmt: skip

    def _holdings(self) -> list[dict[str, Any]]:
        rows = []
        for holding in self.holdings:
            instrument = self._by_key(f"{holding['exchange']}:{holding['tradingsymbol']}")
            assert instrument is not None
            quantity = holding["quantity"] + holding["t1_quantity"]
            rows.append({
                **holding, "instrument_token": instrument.token, "isin": "INE009A01021",
                "product": "CNC", "price": 0, "used_quantity": 0, "realised_quantity": 8,
                "authorised_quantity": 0, "opening_quantity": 8, "collateral_quantity": 0,
                "collateral_type": "", "discrepancy": False, "last_price": instrument.ltp,
                "close_price": instrument.close,
                "pnl": (instrument.ltp - holding["average_price"]) * quantity,
                "day_change": instrument.ltp - instrument.close, "day_change_percentage": 0,
            })  # fmt: skip
        return rows

    # ------------------------------------------------------------------ market data

    def _quotes(self, path: str, keys: list[str]) -> dict[str, Any]:
        now = _stamp(self.clock())
        data: dict[str, Any] = {}
        for key in keys:
            item = self._by_key(key)
            if item is None:
                continue  # Kite leaves out what it does not know
            if path == "/quote/ltp":
                data[key] = {"instrument_token": item.token, "last_price": item.ltp}
                continue
            row: dict[str, Any] = {
                "instrument_token": item.token, "timestamp": now, "last_price": item.ltp,
                "net_change": item.ltp - item.close, "ohlc": item.ohlc(),
            }  # fmt: skip
            if path == "/quote" and not item.is_index:
                buy, sell = item.depth()
                row.update({
                    "last_trade_time": now, "last_quantity": 5, "buy_quantity": 75_000,
                    "sell_quantity": 82_000, "volume": item.volume,
                    "average_price": item.close, "oi": item.oi, "oi_day_high": item.oi,
                    "oi_day_low": item.oi, "lower_circuit_limit": _round(item.close * 9 / 10),
                    "upper_circuit_limit": _round(item.close * 11 / 10),
                    "depth": {"buy": buy, "sell": sell},
                })  # fmt: skip
            data[key] = row
        return data

    def _history(self, token: str, interval: str, params: dict[str, str]) -> dict[str, Any]:
        steps = {"minute": 1, "3minute": 3, "5minute": 5, "10minute": 10, "15minute": 15,
                 "30minute": 30, "60minute": 60, "day": 0}  # fmt: skip
        if interval not in steps:
            raise _input("invalid interval")
        item = next((i for i in self.instruments if str(i.token) == token), None)
        if item is None:
            raise _input("invalid token")
        try:
            first = datetime.strptime(params["from"], "%Y-%m-%d %H:%M:%S").date()  # noqa: DTZ007
            last = datetime.strptime(params["to"], "%Y-%m-%d %H:%M:%S").date()  # noqa: DTZ007
        except (KeyError, ValueError):
            raise _input("invalid from or to date") from None
        with_oi = params.get("oi") == "1"
        candles = []
        for number, start in enumerate(self._candle_starts(first, last, steps[interval])):
            base = item.close + Decimal(number) * item.tick_size * 2
            row: list[Any] = [start.strftime("%Y-%m-%dT%H:%M:%S%z"), base, base + 3, base - 2,
                              base + 1, 1000 + number]  # fmt: skip
            if with_oi:
                row.append(item.oi + number)
            candles.append(row)
        return {"candles": candles}

    @staticmethod
    def _candle_starts(first: date, last: date, minutes: int) -> Iterator[datetime]:
        day = first
        while day <= last:
            if day.weekday() < 5:
                if minutes == 0:
                    yield datetime(day.year, day.month, day.day, tzinfo=IST)
                else:
                    moment = datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST)
                    close = moment.replace(hour=15, minute=30)
                    while moment < close:
                        yield moment
                        moment += timedelta(minutes=minutes)
            day += timedelta(days=1)

    # ------------------------------------------------------------------ ticker

    def _ticker_handshake(self, connection: ServerConnection, request: Request) -> Response | None:
        query = parse_qs(urlsplit(request.path).query)
        api_key = (query.get("api_key") or [""])[0]
        token = (query.get("access_token") or [""])[0]
        with self._lock:
            valid = api_key == self.api_key and token in self._access_tokens
        if not valid:
            return connection.respond(HTTPStatus.FORBIDDEN, "Invalid api_key or access_token\n")
        return None

    def _ticker_session(self, connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path if connection.request else "").query)
        with self._lock:
            self._ticker_number += 1
            client = TickerClient(
                self._ticker_number, connection, (query.get("access_token") or [""])[0]
            )
            self.ticker_clients.append(client)
        next_tick = next_beat = time.monotonic()
        try:
            while True:
                try:
                    message = connection.recv(timeout=self.tick_interval / 2)
                except TimeoutError:
                    message = None
                if isinstance(message, str):
                    self._ticker_message(client, message)
                with self._lock:
                    outbox, client.outbox = client.outbox, []
                for text in outbox:
                    connection.send(text)
                now = time.monotonic()
                if now >= next_beat:
                    connection.send(b"\x00")
                    next_beat = now + 1.0
                if now >= next_tick:
                    packet = self._tick_packet(client)
                    if packet:
                        connection.send(packet)
                    next_tick = now + self.tick_interval
        except (ConnectionClosed, OSError):
            pass
        finally:
            with self._lock:
                if client in self.ticker_clients:
                    self.ticker_clients.remove(client)

    def _ticker_message(self, client: TickerClient, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        with self._lock:
            client.messages.append(message)
            action, value = message.get("a"), message.get("v")
            if action == "subscribe":
                for token in value:
                    client.modes.setdefault(int(token), "quote")
            elif action == "unsubscribe":
                for token in value:
                    client.modes.pop(int(token), None)
            elif action == "mode":
                mode, tokens = value
                for token in tokens:
                    client.modes[int(token)] = mode

    def _announce(self, row: dict[str, Any]) -> None:
        text = json.dumps({"type": "order", "id": "", "data": row}, default=_json_default)
        for client in self.ticker_clients:
            client.outbox.append(text)

    def _tick_packet(self, client: TickerClient) -> bytes:
        with self._lock:
            wanted = [(item, client.modes[item.token]) for item in self.instruments
                      if item.token in client.modes]  # fmt: skip
            packets = [self._packet(item, mode) for item, mode in wanted]
        if not packets:
            return b""
        body = b"".join(struct.pack(">H", len(packet)) + packet for packet in packets)
        return struct.pack(">H", len(packets)) + body

    def _packet(self, item: FakeInstrument, mode: str) -> bytes:
        scale = item.scale

        def units(price: Decimal) -> int:
            return int(price * scale)

        ltp = units(item.ltp)
        if mode == "ltp":
            return struct.pack(">II", item.token, ltp)
        ohlc = item.ohlc()
        stamp = int(self.clock().timestamp())
        if item.is_index:
            head = struct.pack(">IIIIIIi", item.token, ltp, units(ohlc["high"]),
                               units(ohlc["low"]), units(ohlc["open"]), units(ohlc["close"]),
                               units(item.ltp - item.close))  # fmt: skip
            return head if mode == "quote" else head + struct.pack(">I", stamp)
        quote = struct.pack(">IIIIIIIIIII", item.token, ltp, 5, units(item.close), item.volume,
                            75_000, 82_000, units(ohlc["open"]), units(ohlc["high"]),
                            units(ohlc["low"]), units(ohlc["close"]))  # fmt: skip
        if mode == "quote":
            return quote
        full = quote + struct.pack(">IIIII", stamp, item.oi, item.oi, item.oi, stamp)
        buy, sell = item.depth()
        for level in buy + sell:
            full += struct.pack(">IIHxx", level["quantity"], units(level["price"]),
                                level["orders"])  # fmt: skip
        return full
