"""A fake Dhan on loopback: DhanHQ API v2, its consent login, the scrip master and the live
market feed, shaped after Dhan's published docs (https://dhanhq.co/docs/v2/) and the
requests the official `dhanhq` SDK makes.

One threaded HTTP server answers the API (`/v2/...`), the auth host (`/app/...`,
`/login/...`) and the scrip master (`/api-data/api-scrip-master.csv`); a WebSocket server
streams the market feed in Dhan's binary packets. State is kept: MARKET orders fill at once
at the fake's LTP (marketable LIMITs too), positions, trades and funds follow, an order
without the margin for it is accepted and then REJECTED by "RMS" as Dhan does.

Faults for tests: `fail_next(n, status, path=..., method=...)` answers the next n matching
requests with that status and Dhan's error body (the request is not executed);
`delay_next(seconds, ...)` holds the next matching answer; `expire_tokens()` makes every
issued access token invalid (401 DH-901, and feed disconnect 807); `drop_feed()` cuts every
market-feed connection without a close frame.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from services.broker_accounts import BrokerCredentials
from services.clock import IST

CENT = Decimal("0.01")
IST_OFFSET = 19_800

SCRIP_HEADER = (
    "SEM_EXM_EXCH_ID,SEM_SEGMENT,SEM_SMST_SECURITY_ID,SEM_INSTRUMENT_NAME,SEM_EXPIRY_CODE,"
    "SEM_TRADING_SYMBOL,SEM_LOT_UNITS,SEM_CUSTOM_SYMBOL,SEM_EXPIRY_DATE,SEM_STRIKE_PRICE,"
    "SEM_OPTION_TYPE,SEM_TICK_SIZE,SEM_EXPIRY_FLAG,SEM_EXCH_INSTRUMENT_TYPE,SEM_SERIES,"
    "SM_SYMBOL_NAME"
)
EXPIRY = "2026-12-29 14:30:00"
# The redirect URL "registered with the app" (Dhan keeps it in the app's settings and sends
# every login there): the desk's callback at its default address unless a test sets another.
DEFAULT_REDIRECT = "http://127.0.0.1:5000/settings/broker/dhan/callback"


@dataclass
class Scrip:
    row: str  # the scrip-master CSV line
    segment: str
    security_id: str
    kind: str
    lot: int
    ltp: Decimal
    prev_close: Decimal
    oi: int = 0


def _scrips() -> dict[str, Scrip]:
    def scrip(
        row: str, segment: str, kind: str, lot: int, ltp: str, prev: str, oi: int = 0
    ) -> Scrip:
        security_id = row.split(",")[2]
        return Scrip(row, segment, security_id, kind, lot, Decimal(ltp), Decimal(prev), oi)

    found = [
        scrip("NSE,E,3045,EQUITY,,SBIN,1.0,State Bank of India,,-0.01000,XX,5.0000,NA,ES,EQ,"
              "STATE BANK OF INDIA", "NSE_EQ", "EQUITY", 1, "812.35", "805.10"),
        scrip("NSE,E,1594,EQUITY,,INFY,1.0,Infosys,,-0.01000,XX,10.0000,NA,ES,EQ,"
              "INFOSYS LIMITED", "NSE_EQ", "EQUITY", 1, "1520.40", "1511.90"),
        scrip("NSE,I,13,INDEX,,NIFTY,1.0,Nifty 50,,-0.01000,XX,5.0000,NA,INDEX,,NIFTY",
              "IDX_I", "INDEX", 1, "26150.25", "26080.75"),
        scrip("NSE,I,21,INDEX,,INDIA VIX,1.0,India VIX,,-0.01000,XX,0.2500,NA,INDEX,,INDIA VIX",
              "IDX_I", "INDEX", 1, "12.3400", "12.1000"),
        scrip(f"NSE,D,52175,FUTIDX,0,NIFTY-Dec2026-FUT,65.0,NIFTY DEC FUT,{EXPIRY},-0.01000,XX,"
              "10.0000,M,FUTIDX,,NIFTY", "NSE_FNO", "FUTIDX", 65, "26210.50", "26140.00",
              1_250_000),
        scrip(f"NSE,D,60001,OPTIDX,0,NIFTY-Dec2026-26000-CE,65.0,NIFTY 29 DEC 26000 CALL,"
              f"{EXPIRY},26000.00000,CE,5.0000,M,OPTIDX,,NIFTY", "NSE_FNO", "OPTIDX", 65,
              "182.35", "176.80", 3_400_000),
        scrip(f"NSE,D,60002,OPTIDX,0,NIFTY-Dec2026-26000-PE,65.0,NIFTY 29 DEC 26000 PUT,"
              f"{EXPIRY},26000.00000,PE,5.0000,M,OPTIDX,,NIFTY", "NSE_FNO", "OPTIDX", 65,
              "95.60", "101.25", 2_100_000),
    ]  # fmt: skip
    return {item.security_id: item for item in found}


ERROR_TYPES = {
    "DH-901": "Invalid_Authentication",
    "DH-904": "Rate_Limit",
    "DH-905": "Input_Exception",
    "DH-906": "Order_Error",
    "DH-907": "Data_Error",
    "DH-908": "Internal_Server_Error",
}
STATUS_CODES = {401: "DH-901", 429: "DH-904", 400: "DH-905", 500: "DH-908", 502: "DH-908",
                503: "DH-908", 504: "DH-908"}  # fmt: skip
MESSAGES = {
    "DH-901": "Client ID or user generated access token is invalid or expired.",
    "DH-904": "Too many requests on server from single user breaching rate limits.",
    "DH-908": "Internal Server Error",
}
MARGIN_RATE = {"CNC": Decimal(1), "MARGIN": Decimal(1), "INTRADAY": Decimal("0.2")}


def _error(status: int, code: str, message: str = "") -> Response:
    body = {
        "errorType": ERROR_TYPES.get(code, "Others"),
        "errorCode": code,
        "errorMessage": message or MESSAGES.get(code, "Error"),
    }
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _num(value: Decimal) -> float:
    return float(value)


def _columns() -> dict[str, list[Any]]:
    names = ("open", "high", "low", "close", "volume", "timestamp", "open_interest")
    return {name: [] for name in names}


class _Quiet(WSGIRequestHandler):
    """No access log (request lines carry one-time login codes); and Dhan's auth headers
    (`app_id`, `app_secret`), which WSGI servers drop for their underscores, kept aside."""

    def make_environ(self) -> Any:
        environ = super().make_environ()
        for key, value in self.headers.items():
            if "_" in key:
                environ[f"dhan.header.{key.lower()}"] = value
        return environ

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


class _Mute(logging.Logger):
    """The fake's own WebSocket server logs nothing (its handshake lines carry tokens)."""

    def isEnabledFor(self, level: int) -> bool:
        return False

    def handle(self, record: logging.LogRecord) -> None:
        pass


_SILENT = _Mute("tests.fakes.dhan")


@dataclass
class _Fault:
    remaining: int
    status: int
    path: str | None
    method: str | None


@dataclass
class _Delay:
    remaining: int
    seconds: float
    path: str | None
    method: str | None


@dataclass
class _Position:
    buy_qty: int = 0
    buy_value: Decimal = Decimal(0)
    sell_qty: int = 0
    sell_value: Decimal = Decimal(0)


@dataclass
class _FeedClient:
    connection: ServerConnection
    subscriptions: dict[tuple[str, str], int] = field(default_factory=dict)


class FakeDhan:
    def __init__(
        self, now: Callable[[], datetime] | None = None, redirect_url: str = DEFAULT_REDIRECT
    ) -> None:
        self.now = now or (lambda: datetime.now(IST))
        self.redirect_url = redirect_url
        self.app_id = "app-" + secrets.token_hex(6)
        self.app_secret = "sec-" + secrets.token_hex(16)
        self.client_id = "1100012345"
        self.lock = threading.RLock()
        self.scrips = _scrips()
        self.tokens: dict[str, datetime] = {}
        self.consents: set[str] = set()
        self.token_ids: dict[str, str] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: dict[tuple[str, str, str], _Position] = {}
        self.holdings = [
            {"securityId": "1594", "tradingSymbol": "INFY", "isin": "INE009A01021",
             "totalQty": 10, "dpQty": 10, "t1Qty": 0, "availableQty": 10, "collateralQty": 0,
             "avgCostPrice": 1480.25, "exchange": "ALL"},
        ]  # fmt: skip
        self.sod_limit = Decimal("1000000.00")
        self.requests: list[tuple[str, str]] = []
        self.place_attempts = 0  # POST /v2/orders that reached the fake (faults included)
        self.orders_placed = 0  # orders the fake accepted into its book
        self.feed_connections = 0
        self.feed_clients: list[_FeedClient] = []
        self.tick_interval = 0.05
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._order_numbers = 52_260_000_000
        self._trade_numbers = 10_000
        self._http: BaseWSGIServer | None = None
        self._ws: Server | None = None
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def start(
        cls, *, now: Callable[[], datetime] | None = None, redirect_url: str = DEFAULT_REDIRECT
    ) -> FakeDhan:
        fake = cls(now, redirect_url)
        fake._http = make_server("127.0.0.1", 0, fake._wsgi, threaded=True, request_handler=_Quiet)
        fake._ws = serve(fake._feed, "127.0.0.1", 0, logger=_SILENT, compression=None)
        for target in (fake._http.serve_forever, fake._ws.serve_forever):
            thread = threading.Thread(target=target, daemon=True, name="fake-dhan")
            thread.start()
            fake._threads.append(thread)
        return fake

    def stop(self) -> None:
        if self._ws is not None:
            self.drop_feed()
            self._ws.shutdown()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        for thread in self._threads:
            thread.join(5)

    @property
    def http_port(self) -> int:
        assert self._http is not None
        return int(self._http.server_port)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v2"

    @property
    def auth_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/api-data/api-scrip-master.csv"

    @property
    def feed_url(self) -> str:
        assert self._ws is not None
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}"

    @property
    def credentials(self) -> BrokerCredentials:
        """What the trader enters on Settings -> Broker for this fake's app."""
        return BrokerCredentials(self.app_id, self.app_secret, self.client_id)

    @property
    def endpoints(self) -> str:
        """The desk's BROKER_ENDPOINTS value pointing every Dhan address here."""
        return (
            f"dhan.api={self.api_url},dhan.auth={self.auth_url},"
            f"dhan.feed={self.feed_url},dhan.master={self.master_url}"
        )

    # ------------------------------------------------------------------ faults

    def fail_next(
        self, n: int = 1, status: int = 503, path: str | None = None, method: str | None = None
    ) -> None:
        with self.lock:
            self._faults.append(_Fault(n, status, path, method))

    def delay_next(
        self, seconds: float, path: str | None = None, method: str | None = None, n: int = 1
    ) -> None:
        with self.lock:
            self._delays.append(_Delay(n, seconds, path, method))

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def drop_feed(self) -> None:
        """Cut every feed connection as a network failure would (no close frame)."""
        with self.lock:
            clients, self.feed_clients = self.feed_clients, []
        for client in clients:
            with contextlib.suppress(OSError):
                client.connection.socket.shutdown(socket.SHUT_RDWR)

    def feed_subscriptions(self) -> dict[tuple[str, str], int]:
        """(segment, security ID) -> request code of the newest live feed connection."""
        with self.lock:
            return dict(self.feed_clients[-1].subscriptions) if self.feed_clients else {}

    def issue_token(self, lifetime: timedelta = timedelta(hours=24)) -> str:
        """A fresh access token (as web.dhan.co would generate one)."""
        expires = self.now() + lifetime
        claims = {"iss": "dhan", "exp": int(expires.timestamp()),
                  "dhanClientId": self.client_id, "tokenConsumerType": "SELF"}  # fmt: skip
        token = ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({"typ": "JWT", "alg": "HS512"}, claims)
        )
        token += "." + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = expires
        return token

    def set_ltp(self, security_id: str, price: str) -> None:
        with self.lock:
            self.scrips[security_id].ltp = Decimal(price)

    def _matches(self, rule: _Fault | _Delay, method: str, path: str) -> bool:
        return (rule.path is None or path.startswith(rule.path)) and (
            rule.method is None or rule.method == method
        )

    def _take(self, rules: list[Any], method: str, path: str) -> Any:
        with self.lock:
            for rule in rules:
                if rule.remaining > 0 and self._matches(rule, method, path):
                    rule.remaining -= 1
                    return rule
        return None

    # ------------------------------------------------------------------ HTTP

    def _wsgi(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        return self._answer(request)(environ, start_response)

    def _answer(self, request: Request) -> Response:
        method, path = request.method, request.path
        with self.lock:
            self.requests.append((method, path))
            if method == "POST" and path.rstrip("/") == "/v2/orders":
                self.place_attempts += 1
        delay = self._take(self._delays, method, path)
        if delay is not None:
            time.sleep(delay.seconds)
        fault = self._take(self._faults, method, path)
        if fault is not None:
            return _error(fault.status, STATUS_CODES.get(fault.status, "DH-908"))
        if path.startswith(("/app/", "/login/")):
            return self._auth(request)
        if path == "/api-data/api-scrip-master.csv":
            lines = [SCRIP_HEADER, *(scrip.row for scrip in self.scrips.values())]
            return Response("\n".join(lines) + "\n", mimetype="text/csv")
        if not path.startswith("/v2/"):
            return _json({"message": "not found"}, 404)
        token = request.headers.get("access-token", "")
        client = request.headers.get("client-id", self.client_id)
        with self.lock:
            valid = self.tokens.get(token)
        if valid is None or valid <= self.now() or client != self.client_id:
            return _error(401, "DH-901")
        return self._api(request, method, path.removeprefix("/v2").rstrip("/"))

    def _auth(self, request: Request) -> Response:
        path = request.path
        if path == "/login/consentApp-login":
            consent = request.args.get("consentAppId", "")
            with self.lock:
                known = consent in self.consents
                self.consents.discard(consent)
                token_id = secrets.token_urlsafe(16)
                if known:
                    self.token_ids[token_id] = consent
            if not known:
                return Response("Unknown or used consent", status=400)
            separator = "&" if "?" in self.redirect_url else "?"
            location = f"{self.redirect_url}{separator}{urlencode({'tokenId': token_id})}"
            return Response("", status=302, headers={"Location": location})
        if (
            request.environ.get("dhan.header.app_id") != self.app_id
            or request.environ.get("dhan.header.app_secret") != self.app_secret
        ):
            return _error(401, "DH-901", "Invalid app_id or app_secret")
        if path == "/app/generate-consent" and request.method == "POST":
            if request.args.get("client_id") != self.client_id:
                return _error(400, "DH-905", "Invalid client_id")
            consent = secrets.token_hex(12)
            with self.lock:
                self.consents.add(consent)
            return _json(
                {"consentAppId": consent, "consentAppStatus": "GENERATED", "status": "success"}
            )
        if path == "/app/consumeApp-consent":
            with self.lock:
                consent = self.token_ids.pop(request.args.get("tokenId", ""), None)
            if consent is None:
                return _error(400, "DH-905", "Invalid or expired tokenId")
            token = self.issue_token()
            expires = self.tokens[token].astimezone(IST)
            return _json(
                {
                    "dhanClientId": self.client_id,
                    "dhanClientName": "TEST TRADER",
                    "dhanClientUcc": "ABCDE1234F",
                    "givenPowerOfAttorney": False,
                    "accessToken": token,
                    "expiryTime": expires.strftime("%Y-%m-%dT%H:%M:%S"),
                }
            )
        return _json({"message": "not found"}, 404)

    def _api(self, request: Request, method: str, path: str) -> Response:
        body: dict[str, Any] = request.get_json(silent=True) or {}
        with self.lock:
            if path == "/orders" and method == "POST":
                return self._place(body)
            if path == "/orders" and method == "GET":
                return _json([self._order_view(order) for order in self.orders.values()])
            if path.startswith("/orders/"):
                return self._one_order(method, path.removeprefix("/orders/"), body)
            if path.startswith("/trades"):
                wanted = path.removeprefix("/trades").strip("/")
                return _json([t for t in self.trades if not wanted or t["orderId"] == wanted])
            if path == "/positions":
                return _json(self._positions())
            if path == "/holdings":
                return _json(self.holdings)
            if path == "/fundlimit":
                return _json(self._funds())
            if path == "/profile":
                return _json(self._profile(request.headers.get("access-token", "")))
            if path.startswith("/marketfeed/"):
                return self._marketfeed(path.removeprefix("/marketfeed/"), body)
            if path == "/charts/historical":
                return self._daily(body)
            if path == "/charts/intraday":
                return self._intraday(body)
        return _json({"message": "not found"}, 404)

    # ------------------------------------------------------------------ orders

    def _stamp(self) -> str:
        return self.now().astimezone(IST).strftime("%Y-%m-%d %H:%M:%S")

    def _place(self, body: dict[str, Any]) -> Response:
        scrip = self.scrips.get(str(body.get("securityId", "")))
        if body.get("dhanClientId") != self.client_id:
            return _error(400, "DH-905", "Invalid dhanClientId")
        if scrip is None or scrip.segment != body.get("exchangeSegment"):
            return _error(400, "DH-905", "Invalid SecurityId")
        if scrip.segment == "IDX_I":
            return _error(400, "DH-905", "Index cannot be traded")
        problem = self._terms_problem(body, scrip)
        if problem:
            return _error(400, "DH-905", problem)
        self._order_numbers += 1
        order_id = str(self._order_numbers)
        stamp = self._stamp()
        order = {
            "dhanClientId": self.client_id,
            "orderId": order_id,
            "correlationId": body.get("correlationId", ""),
            "orderStatus": "PENDING",
            "transactionType": body["transactionType"],
            "exchangeSegment": scrip.segment,
            "productType": body["productType"],
            "orderType": body["orderType"],
            "validity": body.get("validity", "DAY"),
            "tradingSymbol": scrip.row.split(",")[5],
            "securityId": scrip.security_id,
            "quantity": int(body["quantity"]),
            "disclosedQuantity": int(body.get("disclosedQuantity") or 0),
            "price": float(body.get("price") or 0),
            "triggerPrice": float(body.get("triggerPrice") or 0),
            "afterMarketOrder": False,
            "legName": "",
            "createTime": stamp,
            "updateTime": stamp,
            "exchangeTime": stamp,
            "omsErrorCode": None,
            "omsErrorDescription": None,
            "filledQty": 0,
            "averageTradedPrice": 0.0,
        }
        self.orders[order_id] = order
        self.orders_placed += 1
        required = self._margin(order, scrip)
        if order["transactionType"] == "BUY" and required > self._available():
            order["orderStatus"] = "REJECTED"
            order["omsErrorCode"] = "RMS"
            order["omsErrorDescription"] = (
                f"RMS:Margin Exceeds, Required:{required}, Available:{self._available()}"
            )
        else:
            self._maybe_fill(order, scrip)
        return _json({"orderId": order_id, "orderStatus": "TRANSIT"})

    def _terms_problem(self, body: dict[str, Any], scrip: Scrip) -> str:
        quantity = int(body.get("quantity") or 0)
        if body.get("transactionType") not in ("BUY", "SELL"):
            return "Invalid transactionType"
        if body.get("productType") not in MARGIN_RATE:
            return "Invalid productType"
        if quantity <= 0 or quantity % scrip.lot:
            return f"Quantity should be a multiple of lot size {scrip.lot}"
        kind = body.get("orderType")
        if kind not in ("MARKET", "LIMIT", "STOP_LOSS", "STOP_LOSS_MARKET"):
            return "Invalid orderType"
        if kind in ("LIMIT", "STOP_LOSS") and float(body.get("price") or 0) <= 0:
            return "Price is required for LIMIT orders"
        if kind in ("STOP_LOSS", "STOP_LOSS_MARKET") and float(body.get("triggerPrice") or 0) <= 0:
            return "Trigger price is required for stop-loss orders"
        return ""

    def _margin(self, order: dict[str, Any], scrip: Scrip) -> Decimal:
        price = Decimal(str(order["price"])) if order["price"] else scrip.ltp
        value = price * order["quantity"]
        return (value * MARGIN_RATE[order["productType"]]).quantize(CENT, ROUND_HALF_UP)

    def _maybe_fill(self, order: dict[str, Any], scrip: Scrip) -> None:
        kind, side, ltp = order["orderType"], order["transactionType"], scrip.ltp
        price = Decimal(str(order["price"]))
        if kind == "LIMIT":
            marketable = price >= ltp if side == "BUY" else price <= ltp
            if not marketable:
                return
        elif kind != "MARKET":
            return  # stops wait for their trigger (the fake never moves: they stay pending)
        quantity = order["quantity"] - order["filledQty"]
        order["filledQty"] = order["quantity"]
        order["averageTradedPrice"] = float(ltp)
        order["orderStatus"] = "TRADED"
        order["updateTime"] = order["exchangeTime"] = self._stamp()
        self._trade_numbers += 1
        self.trades.append(
            {
                "dhanClientId": self.client_id,
                "orderId": order["orderId"],
                "exchangeOrderId": "1100000" + order["orderId"][-6:],
                "exchangeTradeId": str(self._trade_numbers),
                "transactionType": side,
                "exchangeSegment": scrip.segment,
                "productType": order["productType"],
                "orderType": kind,
                "tradingSymbol": order["tradingSymbol"],
                "customSymbol": order["tradingSymbol"],
                "securityId": scrip.security_id,
                "tradedQuantity": quantity,
                "tradedPrice": float(ltp),
                "createTime": order["createTime"],
                "updateTime": order["updateTime"],
                "exchangeTime": order["exchangeTime"],
                "drvExpiryDate": None,
                "drvOptionType": None,
                "drvStrikePrice": 0.0,
            }
        )
        position = self.positions.setdefault(
            (scrip.segment, scrip.security_id, order["productType"]), _Position()
        )
        if side == "BUY":
            position.buy_qty += quantity
            position.buy_value += ltp * quantity
        else:
            position.sell_qty += quantity
            position.sell_value += ltp * quantity

    def _order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        remaining = order["quantity"] - order["filledQty"]
        live = order["orderStatus"] in ("PENDING", "TRANSIT", "PART_TRADED")
        return {**order, "remainingQuantity": remaining if live else 0}

    def _one_order(self, method: str, order_id: str, body: dict[str, Any]) -> Response:
        order = self.orders.get(order_id)
        if order is None:
            return _error(400, "DH-907", f"No order found for orderId {order_id}")
        if method == "GET":
            return _json(self._order_view(order))
        live = order["orderStatus"] in ("PENDING", "TRANSIT", "PART_TRADED")
        if method == "DELETE":
            if not live:
                return _error(400, "DH-906", f"Order is {order['orderStatus']}; cannot cancel")
            order["orderStatus"] = "CANCELLED"
            order["updateTime"] = self._stamp()
            return _json({"orderId": order_id, "orderStatus": "CANCELLED"})
        if method == "PUT":
            if not live:
                return _error(400, "DH-906", f"Order is {order['orderStatus']}; cannot modify")
            scrip = self.scrips[order["securityId"]]
            merged = {**order, **{k: body[k] for k in ("orderType", "quantity", "price",
                                                       "triggerPrice") if k in body}}  # fmt: skip
            problem = self._terms_problem(merged, scrip)
            if problem:
                return _error(400, "DH-905", problem)
            order.update(
                orderType=merged["orderType"],
                quantity=int(merged["quantity"]),
                price=float(merged["price"] or 0),
                triggerPrice=float(merged["triggerPrice"] or 0),
                disclosedQuantity=int(body.get("disclosedQuantity") or 0),
                validity=body.get("validity") or order["validity"],
                updateTime=self._stamp(),
            )
            self._maybe_fill(order, scrip)
            return _json({"orderId": order_id, "orderStatus": order["orderStatus"]})
        return _json({"message": "method not allowed"}, 405)

    # ------------------------------------------------------------------ books

    def _position_rows(self) -> list[tuple[Scrip, str, _Position]]:
        return [
            (self.scrips[security_id], product, position)
            for (_segment, security_id, product), position in self.positions.items()
        ]

    def _positions(self) -> list[dict[str, Any]]:
        rows = []
        for scrip, product, position in self._position_rows():
            net = position.buy_qty - position.sell_qty
            buy_avg = (
                (position.buy_value / position.buy_qty).quantize(CENT)
                if position.buy_qty
                else Decimal(0)
            )
            sell_avg = (
                (position.sell_value / position.sell_qty).quantize(CENT)
                if position.sell_qty
                else Decimal(0)
            )
            matched = min(position.buy_qty, position.sell_qty)
            realized = (sell_avg - buy_avg) * matched if matched else Decimal(0)
            if net > 0:
                unrealized, cost = (scrip.ltp - buy_avg) * net, buy_avg
            elif net < 0:
                unrealized, cost = (sell_avg - scrip.ltp) * -net, sell_avg
            else:
                unrealized, cost = Decimal(0), Decimal(0)
            rows.append(
                {
                    "dhanClientId": self.client_id,
                    "tradingSymbol": scrip.row.split(",")[5],
                    "securityId": scrip.security_id,
                    "positionType": "LONG" if net > 0 else "SHORT" if net < 0 else "CLOSED",
                    "exchangeSegment": scrip.segment,
                    "productType": product,
                    "buyAvg": _num(buy_avg),
                    "costPrice": _num(cost),
                    "buyQty": position.buy_qty,
                    "sellAvg": _num(sell_avg),
                    "sellQty": position.sell_qty,
                    "netQty": net,
                    "realizedProfit": _num(realized),
                    "unrealizedProfit": _num(unrealized),
                    "rbiReferenceRate": 1.0,
                    "multiplier": 1,
                    "carryForwardBuyQty": 0,
                    "carryForwardSellQty": 0,
                    "carryForwardBuyValue": 0.0,
                    "carryForwardSellValue": 0.0,
                    "dayBuyQty": position.buy_qty,
                    "daySellQty": position.sell_qty,
                    "dayBuyValue": _num(position.buy_value),
                    "daySellValue": _num(position.sell_value),
                    "drvExpiryDate": None,
                    "drvOptionType": None,
                    "drvStrikePrice": 0.0,
                    "crossCurrency": False,
                }
            )
        return rows

    def _utilised(self) -> Decimal:
        used = Decimal(0)
        for scrip, product, position in self._position_rows():
            net = position.buy_qty - position.sell_qty
            price = position.buy_value / position.buy_qty if net > 0 else scrip.ltp
            used += abs(net) * price * MARGIN_RATE[product]
        for order in self.orders.values():
            if order["orderStatus"] == "PENDING" and order["transactionType"] == "BUY":
                used += self._margin(order, self.scrips[order["securityId"]])
        return used.quantize(CENT, ROUND_HALF_UP)

    def _realized(self) -> Decimal:
        return sum((Decimal(str(row["realizedProfit"])) for row in self._positions()), Decimal(0))

    def _available(self) -> Decimal:
        return self.sod_limit - self._utilised() + self._realized()

    def _funds(self) -> dict[str, Any]:
        return {
            "dhanClientId": self.client_id,
            "availabelBalance": _num(self._available()),
            "sodLimit": _num(self.sod_limit),
            "collateralAmount": 0.0,
            "receiveableAmount": 0.0,
            "utilizedAmount": _num(self._utilised()),
            "blockedPayoutAmount": 0.0,
            "withdrawableBalance": _num(self._available()),
        }

    def _profile(self, token: str) -> dict[str, Any]:
        expires = self.tokens[token].astimezone(IST)
        return {
            "dhanClientId": self.client_id,
            "tokenValidity": expires.strftime("%d/%m/%Y %H:%M"),
            "activeSegment": "Equity, Derivative, Currency, Commodity",
            "ddpi": "Active",
            "mtf": "Active",
            "dataPlan": "Active",
            "dataValidity": "2027-01-01 09:00:00.0",
        }

    # ------------------------------------------------------------------ market data

    def _depth(self, scrip: Scrip) -> dict[str, list[dict[str, Any]]]:
        tick = Decimal("0.05")
        return {
            "buy": [{"quantity": 100 * (level + 1), "orders": level + 1,
                     "price": _num(scrip.ltp - tick * (level + 1))} for level in range(5)],
            "sell": [{"quantity": 120 * (level + 1), "orders": level + 2,
                      "price": _num(scrip.ltp + tick * (level + 1))} for level in range(5)],
        }  # fmt: skip

    def _ohlc(self, scrip: Scrip) -> dict[str, float]:
        return {
            "open": _num(scrip.prev_close + Decimal("2.50")),
            "close": _num(scrip.prev_close),
            "high": _num(scrip.ltp + Decimal("4.10")),
            "low": _num(scrip.prev_close - Decimal("3.20")),
        }

    def _marketfeed(self, kind: str, body: dict[str, Any]) -> Response:
        data: dict[str, dict[str, Any]] = {}
        for segment, ids in body.items():
            if segment == "dhanClientId" or not isinstance(ids, list):
                continue
            for raw in ids:
                scrip = self.scrips.get(str(raw))
                if scrip is None or scrip.segment != segment:
                    continue
                entry: dict[str, Any] = {"last_price": _num(scrip.ltp)}
                if kind in ("ohlc", "quote"):
                    entry["ohlc"] = self._ohlc(scrip)
                if kind == "quote":
                    entry.update(
                        average_price=_num(scrip.ltp - Decimal("1.05")),
                        buy_quantity=1500,
                        sell_quantity=1800,
                        depth=self._depth(scrip),
                        last_quantity=25,
                        last_trade_time=self.now().astimezone(IST).strftime("%d/%m/%Y %H:%M:%S"),
                        lower_circuit_limit=_num(scrip.prev_close * Decimal("0.9")),
                        upper_circuit_limit=_num(scrip.prev_close * Decimal("1.1")),
                        net_change=_num(scrip.ltp - scrip.prev_close),
                        oi=scrip.oi,
                        oi_day_high=scrip.oi,
                        oi_day_low=scrip.oi,
                        volume=123_456,
                    )
                data.setdefault(segment, {})[str(scrip.security_id)] = entry
        if kind not in ("ltp", "ohlc", "quote"):
            return _json({"message": "not found"}, 404)
        return _json({"data": data, "status": "success"})

    def _chart_scrip(self, body: dict[str, Any]) -> Scrip | None:
        scrip = self.scrips.get(str(body.get("securityId", "")))
        if scrip is None or scrip.segment != body.get("exchangeSegment"):
            return None
        return scrip

    def _daily(self, body: dict[str, Any]) -> Response:
        scrip = self._chart_scrip(body)
        if scrip is None:
            return _error(400, "DH-905", "Invalid SecurityId")
        first = date.fromisoformat(str(body["fromDate"])[:10])
        last = date.fromisoformat(str(body["toDate"])[:10])  # exclusive, as Dhan's
        columns = _columns()
        day, number = first, 0
        while day < last:
            if day.weekday() < 5:
                base = scrip.prev_close + Decimal(number)
                midnight = datetime(day.year, day.month, day.day, tzinfo=IST)
                self._candle(columns, int(midnight.timestamp()), base, 1000 + number, scrip.oi)
                number += 1
            day += timedelta(days=1)
        return _json(columns)

    def _intraday(self, body: dict[str, Any]) -> Response:
        scrip = self._chart_scrip(body)
        if scrip is None:
            return _error(400, "DH-905", "Invalid SecurityId")
        minutes = int(body.get("interval") or 1)
        if minutes not in (1, 5, 15, 25, 60):
            return _error(400, "DH-905", "Invalid interval")
        first = datetime.fromisoformat(str(body["fromDate"])).replace(tzinfo=IST)
        last = datetime.fromisoformat(str(body["toDate"])).replace(tzinfo=IST)
        columns = _columns()
        day = first.date()
        while day <= last.date():
            if day.weekday() < 5:
                moment = datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST)
                close = datetime(day.year, day.month, day.day, 15, 30, tzinfo=IST)
                number = 0
                while moment < close:
                    if first <= moment <= last:
                        base = scrip.ltp + Decimal("0.05") * (number % 7)
                        self._candle(columns, int(moment.timestamp()), base, 10 + number, scrip.oi)
                    moment += timedelta(minutes=minutes)
                    number += 1
            day += timedelta(days=1)
        return _json(columns)

    @staticmethod
    def _candle(
        columns: dict[str, list[Any]], stamp: int, base: Decimal, volume: int, oi: int
    ) -> None:
        columns["open"].append(_num(base))
        columns["high"].append(_num(base + Decimal("0.30")))
        columns["low"].append(_num(base - Decimal("0.20")))
        columns["close"].append(_num(base + Decimal("0.10")))
        columns["volume"].append(volume)
        columns["timestamp"].append(stamp)
        columns["open_interest"].append(oi)

    # ------------------------------------------------------------------ the market feed

    def _feed(self, connection: ServerConnection) -> None:
        query = parse_qs(urlsplit(connection.request.path if connection.request else "").query)
        token = (query.get("token") or [""])[0]
        with self.lock:
            expires = self.tokens.get(token)
            self.feed_connections += 1
        client_ok = (query.get("clientId") or [""])[0] == self.client_id
        if expires is None or expires <= self.now() or not client_ok:
            connection.send(struct.pack("<BHBIH", 50, 10, 0, 0, 807 if client_ok else 808))
            connection.close()
            return
        client = _FeedClient(connection)
        with self.lock:
            self.feed_clients.append(client)
        try:
            while True:
                try:
                    message = connection.recv(timeout=self.tick_interval)
                except TimeoutError:
                    self._send_ticks(client)
                    continue
                self._feed_request(client, message)
        except (ConnectionClosed, OSError):
            pass
        finally:
            with self.lock:
                if client in self.feed_clients:
                    self.feed_clients.remove(client)

    def _feed_request(self, client: _FeedClient, message: str | bytes) -> None:
        try:
            request = json.loads(message)
        except ValueError:
            return
        code = int(request.get("RequestCode", 0))
        if code == 12:
            client.connection.close()
            return
        for item in request.get("InstrumentList") or []:
            ident = (str(item.get("ExchangeSegment")), str(item.get("SecurityId")))
            with self.lock:
                if code in (15, 17, 21):
                    client.subscriptions[ident] = code
                elif code in (16, 18, 22) and client.subscriptions.get(ident) == code - 1:
                    del client.subscriptions[ident]
            scrip = self.scrips.get(ident[1])
            if code in (17, 21) and scrip is not None:
                client.connection.send(self._packet(6, scrip))

    def _send_ticks(self, client: _FeedClient) -> None:
        with self.lock:
            wanted = list(client.subscriptions.items())
        for (_segment, security_id), code in wanted:
            scrip = self.scrips.get(security_id)
            if scrip is None:
                continue
            response = {15: 2, 17: 4, 21: 8}[code]
            client.connection.send(self._packet(response, scrip))
            if code == 17 and scrip.segment.endswith("FNO"):
                client.connection.send(self._packet(5, scrip))

    def _packet(self, code: int, scrip: Scrip) -> bytes:
        segment = {"IDX_I": 0, "NSE_EQ": 1, "NSE_FNO": 2, "BSE_EQ": 4}[scrip.segment]
        security_id = int(scrip.security_id)
        ltt = int(self.now().timestamp()) + IST_OFFSET  # Dhan's IST wall-clock epoch
        ltp = float(scrip.ltp)
        ohlc = self._ohlc(scrip)
        ohlc_fields = (ohlc["open"], 0.0, ohlc["high"], ohlc["low"])  # day close: after hours
        if code == 2:
            payload = struct.pack("<fI", ltp, ltt)
        elif code == 5:
            payload = struct.pack("<I", scrip.oi)
        elif code == 6:
            payload = struct.pack("<fI", float(scrip.prev_close), scrip.oi)
        elif code == 4:
            trade = (ltp, 25, ltt, ltp - 1.05, 123_456, 1800, 1500)  # LTP LTQ LTT ATP vol sell buy
            payload = struct.pack("<fHIfIIIffff", *trade, *ohlc_fields)
        else:
            depth = self._depth(scrip)
            levels = b"".join(
                struct.pack("<IIHHff", bid["quantity"], ask["quantity"], bid["orders"],
                            ask["orders"], bid["price"], ask["price"])
                for bid, ask in zip(depth["buy"], depth["sell"], strict=True)
            )  # fmt: skip
            trade = (ltp, 25, ltt, ltp - 1.05, 123_456, 1800, 1500)
            interest = (scrip.oi, scrip.oi, scrip.oi)  # OI, day's highest, day's lowest
            payload = struct.pack("<fHIfIIIIIIffff", *trade, *interest, *ohlc_fields) + levels
        header = struct.pack("<BHBI", code, 8 + len(payload), segment, security_id)
        return header + payload
