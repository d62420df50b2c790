"""Zerodha through Kite Connect, on Zerodha's official SDK (`kiteconnect`).

Login is Kite's redirect flow: the trader logs in on Kite, Kite sends the browser to the
redirect URL registered with the Kite Connect app (set it to the desk's callback,
`/broker/zerodha/callback`) with a one-time `request_token`, and `complete_login` trades it for
the day's access token (checksum = SHA-256 of api_key + request_token + api_secret). Kite's
tokens die at 06:00 IST the next morning.

Every call goes through `LiveBroker.call` (pacing under Kite's 10 requests a second, latency,
retries by its rule); Kite's tighter per-endpoint limits (quotes 1/s, candles 3/s) are paced
here too. Kite's own names are mapped to Dalal's through the day's instruments dump
(`symbols.KiteMaster`, downloaded once a day per API address and shared by every user); plain
NSE/BSE shares need no dump, their names are the same on both sides.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

import requests
from kiteconnect import KiteConnect  # type: ignore[import-untyped]
from kiteconnect import exceptions as kite_errors

from broker.base import Capability, CredentialField, SessionStatus, register
from broker.live import LiveBroker, pacer_for
from broker.zerodha import mapping, redact
from broker.zerodha.symbols import CASH_EXCHANGES, KiteMaster
from services.clock import IST
from services.errors import (
    BrokerError,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
    DalalError,
    InsufficientFunds,
    InvalidRequest,
    NotFound,
    OrderRejected,
    PermissionDenied,
)
from services.market.model import Candle, Depth, Instrument, Interval, Quote
from services.orders.model import (
    FundsReport,
    HoldingReport,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    PositionReport,
    TradeReport,
)

if TYPE_CHECKING:
    from broker.zerodha.feed import KiteFeed
    from services.desk import Desk

log = logging.getLogger(__name__)
redact.install()

API_ROOT = "https://api.kite.trade"
LOGIN_ROOT = "https://kite.zerodha.com/connect/login"
TICKER_ROOT = "wss://ws.kite.trade"
# Kite's published per-endpoint limits (requests a second), tighter than the overall 10/s.
QUOTE_RATE = 1.0
HISTORY_RATE = 3.0

_NO_FUNDS = re.compile(r"insufficient (funds|margin)|margin (exceeds|shortfall)", re.IGNORECASE)


def _rejection(message: str) -> OrderRejected:
    return InsufficientFunds(message) if _NO_FUNDS.search(message) else OrderRejected(message)


@register
class ZerodhaBroker(LiveBroker):
    name = "zerodha"
    display_name = "Zerodha (Kite Connect)"
    capabilities = frozenset({Capability.ORDERS, Capability.MARKET_DATA})
    credential_fields = (
        CredentialField("api_key", "API key"),
        CredentialField("api_secret", "API secret", secret=True),
        CredentialField("client_id", "Client ID"),
    )
    session_cutoff = time(6, 0)  # Kite's access tokens expire at 06:00 IST the next morning
    calls_per_second = 9.0  # Kite allows 10 a second per API key
    # Kite counts MCX and currency quantities in lots; Dalal counts units everywhere.
    untradable = dict.fromkeys(
        ("MCX", "CDS", "BCD"),
        "Kite counts their quantity in lots. Place them on Kite directly.",
    )
    # Seconds the SDK waits for Kite's answer (its own default) before the call times out.
    request_timeout: ClassVar[float] = 7.0

    # The day's instruments dump per API address: (IST day, master). Shared by every user.
    _masters: ClassVar[dict[str, tuple[date, KiteMaster]]] = {}
    _masters_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, user_id: int, desk: Desk) -> None:
        super().__init__(user_id, desk)
        self._kite: Any = None

    # ------------------------------------------------------------------ addresses

    def _endpoint(self, kind: str, default: str) -> str:
        return self.desk.settings.broker_endpoint(self.name, kind, default)

    @property
    def api_root(self) -> str:
        return self._endpoint("api", API_ROOT)

    @property
    def login_root(self) -> str:
        return self._endpoint("login", LOGIN_ROOT)

    @property
    def ticker_root(self) -> str:
        return self._endpoint("ticker", TICKER_ROOT)

    def _now(self) -> datetime:
        return self.desk.clock.now().astimezone(IST)

    # ------------------------------------------------------------------ the SDK and its errors

    def _sdk(self, access_token: str | None) -> Any:
        return KiteConnect(
            self.credentials.api_key,
            access_token=access_token,
            root=self.api_root,
            timeout=self.request_timeout,
        )

    def _client(self) -> Any:
        """The SDK logged in with today's session (BrokerSessionExpired when there is none)."""
        if self._kite is None:
            self._kite = self._sdk(self.session.access_token)
        return self._kite

    def translate_error(self, error: Exception) -> DalalError:
        name = self.display_name
        # requests' own messages can quote the URL (and Kite's logout puts the token in it):
        # describe the failure instead of repeating it.
        if isinstance(error, requests.Timeout):
            return BrokerUnavailable(f"{name} did not answer within {self.request_timeout:g} s.")
        if isinstance(error, requests.ConnectionError):
            return BrokerUnavailable(f"{name} could not be reached.")
        if isinstance(error, requests.RequestException):
            return BrokerUnavailable(f"{name}: the request failed ({type(error).__name__}).")
        if not isinstance(error, kite_errors.KiteException):
            return BrokerError(f"{name}: unexpected answer ({type(error).__name__}).")
        message = str(error) or "no reason given"
        code = int(getattr(error, "code", 500) or 500)
        if isinstance(error, kite_errors.TokenException):
            return BrokerSessionExpired(self.expired_message())
        if code == 429:
            return BrokerRateLimited(f"{name} is limiting this desk's requests: {message}")
        final = (kite_errors.OrderException, kite_errors.InputException)
        if isinstance(error, kite_errors.NetworkException | kite_errors.DataException) or (
            code >= 500 and not isinstance(error, final)
        ):
            return BrokerUnavailable(f"{name} is unavailable ({code}): {message}")
        if code == 404:
            return NotFound(message)
        if isinstance(error, kite_errors.PermissionException):
            return PermissionDenied(f"{name}: {message}")
        if isinstance(error, kite_errors.InputException):
            return InvalidRequest(message)
        # OrderException, and Kite's types the SDK does not know (MarginException,
        # HoldingException...), which it raises as GeneralException with Kite's 4xx code.
        return _rejection(message)

    def _order_call[T](self, operation: str, send: Callable[[], T], *, idempotent: bool) -> T:
        """An order operation: Kite's input errors are the order's rejection."""
        try:
            return self.call(operation, send, idempotent=idempotent)
        except InvalidRequest as error:
            raise _rejection(error.message) from None

    # ------------------------------------------------------------------ login and session

    def login_url(self, redirect_url: str) -> str:
        # Kite ignores any redirect given here: it sends the trader to the redirect URL
        # registered with the Kite Connect app, which must be `redirect_url`.
        api_key = quote(self.credentials.api_key, safe="")
        return f"{self.login_root}?v=3&api_key={api_key}"

    def complete_login(self, params: Mapping[str, str]) -> SessionStatus:
        status = (params.get("status") or "").strip().lower()
        request_token = (params.get("request_token") or "").strip()
        if status != "success" or not request_token:
            raise InvalidRequest(
                f"{self.display_name} did not complete the login"
                f"{f' (status {status})' if status else ''}; log in to Zerodha again."
            )
        credentials = self.credentials
        kite = self._sdk(None)
        try:
            data = self.call(
                "login",
                lambda: kite.generate_session(request_token, api_secret=credentials.api_secret),
                idempotent=False,  # a request token works once
            )
        except BrokerSessionExpired:
            raise InvalidRequest(
                f"{self.display_name} did not accept the login: the request token has expired "
                "or was used, or the API secret is wrong. Log in to Zerodha again."
            ) from None
        user_id = str(data.get("user_id") or "")
        expected = credentials.client_id.strip()
        if expected and user_id and user_id.upper() != expected.upper():
            raise InvalidRequest(
                f"Logged in to Zerodha as {user_id}, but this desk is set up for client ID "
                f"{expected}. Log in with that account, or change the client ID in Settings."
            )
        access_token = str(data.get("access_token") or "")
        if not access_token:
            raise BrokerError(f"{self.display_name} returned no access token.")
        self.start_session(
            access_token, {"public_token": str(data.get("public_token") or ""), "user_id": user_id}
        )
        self._kite = None
        return self.session_status()

    def logout(self) -> None:
        found = self._accounts.session(self.user_id, self.name)
        if found is not None:
            try:
                kite = self._sdk(found.access_token)
                self.call("logout", kite.invalidate_access_token, idempotent=True)
            except DalalError as error:  # best effort: the token is forgotten here regardless
                log.warning("Zerodha logout for user %s: %s", self.user_id, error.message)
        self._kite = None
        super().logout()

    # ------------------------------------------------------------------ names

    def _cached_master(self) -> KiteMaster | None:
        with self._masters_lock:
            found = self._masters.get(self.api_root)
        if found is not None and found[0] == self._now().date():
            return found[1]
        return None

    def kite_master(self) -> KiteMaster:
        """Today's instruments dump in Dalal's symbols (downloaded once a day per address)."""
        root, today = self.api_root, self._now().date()
        with self._masters_lock:  # held across the download: one download, others wait for it
            found = self._masters.get(root)
            if found is not None and found[0] == today:
                return found[1]
            has_session = self._accounts.session(self.user_id, self.name) is not None
            kite = self._client() if has_session else self._sdk(None)
            rows = self.call("master_contract", kite.instruments, idempotent=True)
            master = KiteMaster.build(rows)
            self._masters[root] = (today, master)
            return master

    def instrument(self, symbol: str, exchange: str) -> Instrument:
        """A contract of today's Kite master (what a live order is validated against)."""
        found = self.kite_master().get(symbol.strip().upper(), exchange.strip().upper())
        if found is None:
            raise NotFound(f"{self.display_name} lists no {symbol} on {exchange}.")
        return found

    def _master_or_none(self) -> KiteMaster | None:
        try:
            return self.kite_master()
        except DalalError as error:
            log.warning("Zerodha instruments dump unavailable: %s", error.message)
            return None

    def _dalal_name(self, kite_exchange: str, tradingsymbol: str) -> tuple[str, str]:
        """Dalal's (exchange, symbol) of a Kite contract (Kite's own when the dump lacks it)."""
        master = self._cached_master()
        if master is None:
            if kite_exchange in CASH_EXCHANGES and "-" not in tradingsymbol:
                return kite_exchange, tradingsymbol
            master = self._master_or_none()
        found = master.by_kite(kite_exchange, tradingsymbol) if master else None
        if found is None:
            return kite_exchange, tradingsymbol
        return found.exchange.value, found.symbol

    def _kite_name(self, symbol: str, exchange: str) -> tuple[str, str, Instrument | None]:
        """Kite's (exchange, tradingsymbol) of a Dalal contract, and Kite's instrument."""
        master = self._cached_master()
        if master is None and exchange in CASH_EXCHANGES:
            return exchange, symbol, None
        master = master or self.kite_master()
        found = master.get(symbol, exchange)
        if found is None:
            if exchange in CASH_EXCHANGES:
                return exchange, symbol, None
            raise NotFound(f"{symbol} is not in Zerodha's instrument list for {exchange} today.")
        return found.brexchange, found.brsymbol, found

    def _lot_size(self, symbol: str, exchange: str) -> int:
        if exchange in CASH_EXCHANGES:
            return 1
        master = self._cached_master() or self._master_or_none()
        found = master.get(symbol, exchange) if master else None
        return found.lot_size if found else 1

    # ------------------------------------------------------------------ orders

    def place_order(self, request: OrderRequest) -> OrderReport:
        if request.exchange.endswith("_INDEX"):
            raise OrderRejected(
                f"{request.symbol} on {request.exchange} is an index and cannot be traded"
            )
        self.ensure_tradable(request.exchange)
        try:
            kite_exchange, tradingsymbol, _ = self._kite_name(request.symbol, request.exchange)
        except NotFound as error:
            raise OrderRejected(error.message) from None
        params = mapping.order_params(request, kite_exchange, tradingsymbol)
        kite = self._client()
        # Never resent on a timeout or 5xx: the order may have reached the exchange.
        order_id = str(
            self._order_call("place_order", lambda: kite.place_order(**params), idempotent=False)
        )
        return self._placed(order_id, request)

    def _placed(self, order_id: str, request: OrderRequest) -> OrderReport:
        """The order Kite just accepted, as its history shows it (or as sent, if not yet)."""
        kite, now = self._client(), self._now()
        try:
            rows = self.call("order_history", lambda: kite.order_history(order_id), idempotent=True)
        except DalalError as error:
            log.warning("order %s placed at Zerodha; status not readable yet: %s",
                        order_id, error.message)  # fmt: skip
            rows = []
        if not rows:
            return mapping.pending_report(order_id, request, now)
        report = mapping.order_report(rows[-1], lambda *_: (request.exchange, request.symbol), now)
        report = replace(
            report,
            strategy=request.strategy or report.strategy,
            source=request.source.value,
            algo_id=request.algo_id,
        )
        if report.status is OrderStatus.REJECTED:
            raise _rejection(report.rejection_reason or f"Zerodha rejected order {order_id}.")
        return report

    def _history(self, order_id: str) -> list[dict[str, Any]]:
        kite = self._client()
        try:
            rows: list[dict[str, Any]] = self.call(
                "order_history", lambda: kite.order_history(order_id), idempotent=True
            )
        except InvalidRequest:
            raise NotFound(f"Order {order_id} not found") from None
        if not rows:
            raise NotFound(f"Order {order_id} not found")
        return rows

    def order(self, order_id: str) -> OrderReport:
        return mapping.order_report(self._history(order_id)[-1], self._dalal_name, self._now())

    def _live(self, order_id: str, doing: str) -> dict[str, Any]:
        current = self._history(order_id)[-1]
        status = mapping.order_status(str(current.get("status") or ""))
        if not status.is_live:
            raise OrderRejected(
                f"Order {order_id} is {status.value}; only open or trigger pending orders can "
                f"be {doing}"
            )
        return current

    def modify_order(self, request: ModifyRequest) -> OrderReport:
        current = self._live(request.order_id, "modified")
        self.ensure_tradable(str(current.get("exchange", "")))
        params = mapping.modify_params(request)
        variety = current.get("variety") or mapping.VARIETY
        kite = self._client()
        # New terms are absolute (total quantity, prices), so sending them twice is harmless.
        self._order_call(
            "modify_order",
            lambda: kite.modify_order(variety=variety, order_id=request.order_id, **params),
            idempotent=True,
        )
        return self.order(request.order_id)

    def cancel_order(self, order_id: str) -> OrderReport:
        current = self._live(order_id, "cancelled")
        return self._cancel(order_id, current)

    def _cancel(self, order_id: str, current: Mapping[str, Any]) -> OrderReport:
        kite = self._client()
        variety = current.get("variety") or mapping.VARIETY
        parent = current.get("parent_order_id") or None
        try:
            self._order_call(
                "cancel_order",
                lambda: kite.cancel_order(variety, order_id, parent_order_id=parent),
                idempotent=True,
            )
        except OrderRejected:
            # A retried cancel finds the order already cancelled by the first attempt.
            after = self.order(order_id)
            if after.status is OrderStatus.CANCELLED:
                return after
            raise
        return self.order(order_id)

    def cancel_all_orders(self) -> tuple[list[str], list[tuple[str, str]]]:
        kite = self._client()
        rows = self.call("orders", kite.orders, idempotent=True)
        cancelled: list[str] = []
        failed: list[tuple[str, str]] = []
        for row in rows:
            if not mapping.order_status(str(row.get("status") or "")).is_live:
                continue
            order_id = str(row["order_id"])
            try:
                self._cancel(order_id, row)
            except BrokerSessionExpired:
                raise
            except DalalError as error:
                failed.append((order_id, error.message))
            else:
                cancelled.append(order_id)
        return cancelled, failed

    # ------------------------------------------------------------------ books

    def orders(self) -> list[OrderReport]:
        kite, now = self._client(), self._now()
        rows = self.call("orders", kite.orders, idempotent=True)
        return [mapping.order_report(row, self._dalal_name, now) for row in rows]

    def trades(self) -> list[TradeReport]:
        kite, now = self._client(), self._now()
        rows = self.call("trades", kite.trades, idempotent=True)
        return [mapping.trade_report(row, self._dalal_name, now) for row in rows]

    def positions(self) -> list[PositionReport]:
        kite = self._client()
        book = self.call("positions", kite.positions, idempotent=True)
        return [
            mapping.position_report(row, self._dalal_name, self._lot_size)
            for row in book.get("net") or []
        ]

    def holdings(self) -> list[HoldingReport]:
        kite = self._client()
        rows = self.call("holdings", kite.holdings, idempotent=True)
        return [mapping.holding_report(row, self._dalal_name) for row in rows]

    def funds(self) -> FundsReport:
        kite = self._client()
        margins = self.call("funds", kite.margins, idempotent=True)
        book = self.call("positions", kite.positions, idempotent=True)
        return mapping.funds_report(margins, book)

    # ------------------------------------------------------------------ market data

    def _quote_row(self, instrument: Instrument) -> dict[str, Any]:
        kite_exchange, tradingsymbol, _ = self._kite_name(
            instrument.symbol, instrument.exchange.value
        )
        key = f"{kite_exchange}:{tradingsymbol}"
        kite = self._client()

        def send() -> dict[str, Any]:
            pacer_for(f"{self.name}.quote", QUOTE_RATE).wait()
            found: dict[str, Any] = kite.quote([key])
            return found

        data = self.call("quote", send, idempotent=True)
        row: dict[str, Any] | None = data.get(key)
        if row is None:
            raise NotFound(
                f"Zerodha has no quote for {instrument.symbol} on {instrument.exchange.value}"
            )
        return row

    def quote(self, instrument: Instrument) -> Quote:
        return mapping.quote_of(instrument, self._quote_row(instrument), self._now())

    def depth(self, instrument: Instrument) -> Depth:
        return mapping.depth_of(instrument, self._quote_row(instrument), self._now())

    def history(
        self, instrument: Instrument, interval: Interval, start: date, end: date
    ) -> list[Candle]:
        found = self.kite_master().get(instrument.symbol, instrument.exchange.value)
        if found is None:
            raise NotFound(
                f"{instrument.symbol} is not in Zerodha's instrument list for "
                f"{instrument.exchange.value} today."
            )
        kite, token = self._client(), int(found.token)
        kite_interval = mapping.INTERVALS[interval]
        candles: dict[datetime, Candle] = {}
        for first, last in mapping.history_windows(interval, start, end):

            def send(first: str = first, last: str = last) -> list[dict[str, Any]]:
                pacer_for(f"{self.name}.history", HISTORY_RATE).wait()
                rows: list[dict[str, Any]] = kite.historical_data(
                    token, first, last, kite_interval, oi=found.is_derivative
                )
                return rows

            for row in self.call("history", send, idempotent=True):
                candle = mapping.candle_of(row)
                if start <= candle.start.date() <= end:
                    candles[candle.start] = candle
        return [candles[moment] for moment in sorted(candles)]

    def master_contract(self) -> Sequence[Instrument]:
        return self.kite_master().all()

    def feed(self) -> KiteFeed:
        from broker.zerodha.feed import KiteFeed

        return KiteFeed(self)
