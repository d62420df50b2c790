"""Dhan (DhanHQ API v2) on its official `dhanhq` SDK, in Dalal's common model.

Sessions. A trader registers an app at Dhan (App ID and App secret, valid a year; Dhan asks
for the redirect URL there, so it is not sent with each login) and logs in through Dhan's
consent flow: `login_url` asks Dhan for a consent (POST auth/app/generate-consent) and
sends the browser to Dhan's login page; Dhan redirects back with a `tokenId`, which
`complete_login` exchanges for an access token (GET auth/app/consumeApp-consent). Tokens
live about 24 hours from issue (no fixed daily cut-off), so the session ends at the expiry
Dhan states. A token generated on web.dhan.co can be given instead (`access_token`); it is
checked against GET /profile first. The SDK's own `DhanLogin` is not used for this: it opens
a browser and prints on the desk's host and sets no timeouts; the two calls go through the
standard library's HTTP client instead (httpx is a test-only dependency here).

Calls. Everything else goes through the SDK, whose base URL (`DhanHTTP.base_url`) and
timeout are set on each client instance from the desk's settings. The SDK returns
`{"status": "failure", "remarks": {...}}` rather than raising; `_checked` turns that into
Dalal's errors inside `LiveBroker.call`, so the retry rules apply (429 always; timeouts and
5xx only for reads and cancels; an order placement never). The HTTP status is taken from the
SDK's own `requests` session through a response hook, because the SDK drops it.

Dhan's published limits are 25 order calls, 20 other calls, 5 chart calls and 1 market-quote
call per second; this desk allows itself 16 (orders and the rest together), 4 and 1.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from dhanhq import DhanContext, dhanhq

from broker.base import Capability, CredentialField, SessionStatus, register
from broker.dhan import mapping
from broker.dhan.mapping import DhanContract, ScripIndex
from broker.live import LiveBroker, pacer_for
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
)
from services.market.model import (
    Candle,
    Depth,
    DepthLevel,
    Instrument,
    InstrumentType,
    Interval,
    Quote,
)
from services.orders.model import (
    ZERO,
    FundsReport,
    HoldingReport,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    OrderStatus,
    PositionReport,
    PriceType,
    TradeReport,
)

if TYPE_CHECKING:
    from services.desk import Desk
    from services.feed.source import FeedSource

log = logging.getLogger(__name__)

DEFAULT_API = "https://api.dhan.co/v2"
DEFAULT_AUTH = "https://auth.dhan.co"
DEFAULT_FEED = "wss://api-feed.dhan.co"
DEFAULT_MASTER = "https://images.dhan.co/api-data/api-scrip-master.csv"

TOKEN_LIFETIME = timedelta(hours=24)
INTRADAY_DAYS_PER_REQUEST = 90  # Dhan serves at most 90 days of minute candles at a time
# Dalal interval -> (Dhan's minute interval, how many of its candles make one of ours)
_INTRADAY: dict[Interval, tuple[int, int]] = {
    Interval.M1: (1, 1),
    Interval.M3: (1, 3),
    Interval.M5: (5, 1),
    Interval.M10: (5, 2),
    Interval.M15: (15, 1),
    Interval.M30: (15, 2),
    Interval.H1: (60, 1),
}

_MASTERS: dict[str, tuple[date, ScripIndex]] = {}
_MASTERS_LOCK = threading.Lock()


def _jwt_expiry(token: str) -> datetime | None:
    """The `exp` claim of a JWT access token (read, not verified: only Dhan can do that)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return datetime.fromtimestamp(int(claims["exp"]), IST)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def _http_url(url: str) -> str:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise InvalidRequest(f"Dhan endpoints must be http(s) URLs, not {scheme!r}.")
    return url


@register
class DhanBroker(LiveBroker):
    name = "dhan"
    display_name = "Dhan"
    capabilities = frozenset({Capability.ORDERS, Capability.MARKET_DATA})
    credential_fields = (
        CredentialField("api_key", "App ID (API key)"),
        CredentialField("api_secret", "App secret", secret=True),
        CredentialField("client_id", "Dhan client ID"),
    )
    session_cutoff = None  # a token lives ~24 h from issue; its own expiry ends the session
    calls_per_second = 16.0
    # Whether Dhan counts these quantities in lots or units is not yet proven against Dhan.
    untradable = dict.fromkeys(
        ("MCX", "CDS", "BCD"),
        "their quantity unit is not yet verified. Place them on Dhan directly.",
    )
    chart_calls_per_second: ClassVar[float] = 4.0
    quote_calls_per_second: ClassVar[float] = 1.0
    http_timeout_seconds: ClassVar[float] = 10.0
    master_timeout_seconds: ClassVar[float] = 120.0

    def __init__(self, user_id: int, desk: Desk) -> None:
        super().__init__(user_id, desk)
        self._wire = threading.local()
        self._clients: dict[str, Any] = {}

    # ------------------------------------------------------------------ addresses

    def _endpoint(self, kind: str, default: str) -> str:
        return self.desk.settings.broker_endpoint(self.name, kind, default).rstrip("/")

    @property
    def api_url(self) -> str:
        return self._endpoint("api", DEFAULT_API)

    @property
    def auth_url(self) -> str:
        return self._endpoint("auth", DEFAULT_AUTH)

    @property
    def feed_url(self) -> str:
        return self._endpoint("feed", DEFAULT_FEED)

    @property
    def master_url(self) -> str:
        """Dhan publishes its scrip master beside the API (images.dhan.co). A desk whose API
        address is moved (to a fake, a proxy) fetches it from that host, at the same path,
        unless `dhan.master` names it outright."""
        api = self.api_url
        default = DEFAULT_MASTER
        if api != DEFAULT_API:
            parts = urllib.parse.urlsplit(api)
            default = f"{parts.scheme}://{parts.netloc}{urllib.parse.urlsplit(DEFAULT_MASTER).path}"
        return self._endpoint("master", default)

    # ------------------------------------------------------------------ sessions

    def session_expiry(self, now: datetime) -> datetime:
        """Dhan has no daily cut-off: a token lasts 24 hours unless Dhan says otherwise."""
        return now + TOKEN_LIFETIME

    def _begin(self, token: str, stated: datetime | None, extra: dict[str, str]) -> None:
        """Store the session until the token's own `exp` (an instant, unlike the wall-clock
        expiry Dhan states beside it, read as IST), else that, else 24 hours from now."""
        now = self.desk.clock.now()
        expires_at = _jwt_expiry(token) or stated
        if expires_at is None or expires_at <= now:
            expires_at = now + TOKEN_LIFETIME
        self.start_session(token, extra, expires_at)

    def expired_message(self) -> str:
        return "Dhan session expired (access tokens last 24 hours); log in to Dhan again."

    def login_url(self, redirect_url: str) -> str:
        """Dhan's login page for a fresh consent. Dhan returns the browser to the redirect
        URL registered with the app (it must be `redirect_url`; Dhan takes no other)."""
        credentials = self.credentials
        found = self.call(
            "generate_consent",
            lambda: self._auth_call(
                "POST", "/app/generate-consent", {"client_id": credentials.client_id}
            ),
            idempotent=True,
        )
        consent = str(found.get("consentAppId") or "")
        if not consent:
            raise BrokerError("Dhan gave no consent for this login; try again.")
        query = urllib.parse.urlencode({"consentAppId": consent})
        return f"{self.auth_url}/login/consentApp-login?{query}"

    def complete_login(self, params: Mapping[str, str]) -> SessionStatus:
        lowered = {key.lower(): value for key, value in params.items()}
        token_id = (lowered.get("tokenid") or lowered.get("token_id") or "").strip()
        pasted = (lowered.get("access_token") or "").strip()
        if token_id:
            self._consume_consent(token_id)
        elif pasted:
            self._adopt_token(pasted)
        else:
            raise InvalidRequest("Dhan's redirect carried no tokenId; start the login again.")
        return self.session_status()

    def _consume_consent(self, token_id: str) -> None:
        credentials = self.credentials
        found = self.call(
            "consume_consent",
            lambda: self._auth_call("GET", "/app/consumeApp-consent", {"tokenId": token_id}),
            idempotent=False,  # a token ID is good for one exchange only
        )
        token = str(found.get("accessToken") or "")
        if not token:
            raise BrokerError("Dhan returned no access token for this login.")
        signed_in = str(found.get("dhanClientId") or "")
        if signed_in and credentials.client_id and signed_in != credentials.client_id:
            raise InvalidRequest(
                f"That login was for Dhan client {signed_in}, not {credentials.client_id}; "
                "log in with the account these credentials belong to."
            )
        self._begin(token, mapping.ist_time(found.get("expiryTime")), {"client_id": signed_in})

    def _adopt_token(self, token: str) -> None:
        """Accept an access token generated on web.dhan.co once Dhan vouches for it."""
        client = self._client_for(token)

        def verify() -> Any:
            self._wire.status = None
            try:
                return self._checked(client.dhan_http.get("/profile"), "profile")
            except BrokerSessionExpired:
                raise InvalidRequest(
                    "Dhan did not accept that access token (expired, or for another client ID)."
                ) from None

        profile = self.call("profile", verify, idempotent=True)
        found = profile if isinstance(profile, dict) else {}
        signed_in = str(found.get("dhanClientId") or "")
        expected = self.credentials.client_id
        if signed_in and expected and signed_in != expected:
            raise InvalidRequest(f"That access token is for Dhan client {signed_in}.")
        expires = mapping.ist_time(found.get("tokenValidity"))
        self._begin(token, expires, {"client_id": signed_in or expected})

    def _auth_call(self, method: str, path: str, query: Mapping[str, str]) -> dict[str, Any]:
        """One call to Dhan's auth host with the app's ID and secret in the headers."""
        credentials = self.credentials
        url = _http_url(f"{self.auth_url}{path}?{urllib.parse.urlencode(query)}")
        request = urllib.request.Request(  # noqa: S310  (scheme checked above)
            url,
            data=b"" if method == "POST" else None,
            method=method,
            headers={
                "app_id": credentials.api_key,
                "app_secret": credentials.api_secret,
                "Accept": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(  # noqa: S310  (scheme checked above)
                request, timeout=self.http_timeout_seconds
            ) as answer:
                body = answer.read()
        except urllib.error.HTTPError as refused:
            raise self._auth_error(refused.code, refused.read()) from None
        except (urllib.error.URLError, TimeoutError, OSError) as failed:
            reason = getattr(failed, "reason", failed)
            raise BrokerUnavailable(
                f"Dhan's login service could not be reached: {reason}"
            ) from None
        try:
            found = json.loads(body)
        except ValueError:
            raise BrokerError("Dhan's login service sent an unreadable answer.") from None
        if not isinstance(found, dict):
            raise BrokerError("Dhan's login service sent an unexpected answer.")
        return found

    def _auth_error(self, status: int, body: bytes) -> DalalError:
        try:
            found = json.loads(body)
        except ValueError:
            found = {}
        found = found if isinstance(found, dict) else {}
        message = str(found.get("errorMessage") or found.get("message") or f"HTTP {status}")
        if status == 429:
            return BrokerRateLimited(f"Dhan's login service is rate limiting: {message}")
        if status >= 500:
            return BrokerUnavailable(f"Dhan's login service is unavailable: {message}")
        return InvalidRequest(
            f"Dhan refused the login ({message}). Check the App ID, App secret and client ID "
            "under Settings -> Broker, then log in again."
        )

    # ------------------------------------------------------------------ calling the SDK

    def _client_for(self, token: str) -> Any:
        """An SDK client for `token`, pointed at this desk's Dhan API address."""
        found = self._clients.get(token)
        if found is None:
            context = DhanContext(self.credentials.client_id, token)
            http = context.get_dhan_http()
            http.base_url = self.api_url
            http.timeout = self.http_timeout_seconds
            http.session.hooks["response"].append(self._remember_status)
            found = self._clients[token] = dhanhq(context)
        return found

    def _remember_status(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self._wire.status = response.status_code

    def translate_error(self, error: Exception) -> DalalError:
        if isinstance(error, (TimeoutError, ConnectionError, OSError)):
            return BrokerUnavailable(f"Dhan could not be reached: {error}")
        return BrokerError(f"Dhan: unexpected failure ({type(error).__name__})")

    def _checked(self, response: Any, operation: str) -> Any:
        """The `data` of an SDK answer, or the Dalal error its failure means (raised)."""
        if not isinstance(response, dict):
            raise BrokerError("Dhan: the SDK returned an unexpected answer.")
        if response.get("status") == "success":
            return response.get("data")
        status: int | None = getattr(self._wire, "status", None)
        remarks = response.get("remarks")
        if status is not None and 200 <= status < 300:  # Dhan said yes, unreadably
            if operation in ("place_order", "modify_order", "cancel_order"):
                return None  # done at Dhan; reading the order back tells the rest
            raise BrokerUnavailable(f"Dhan sent an unreadable answer ({remarks}).")
        if isinstance(remarks, dict):
            code = str(remarks.get("error_code") or "")
            message = str(remarks.get("error_message") or remarks.get("error_type") or "")
        else:
            code, message = "", str(remarks or "")
        raise mapping.dalal_error(
            status,
            code,
            message,
            operation=operation,
            expired_message=self.expired_message(),
            reached=status is not None,
        )

    def _request(
        self,
        operation: str,
        send: Callable[[Any], Any],
        *,
        idempotent: bool,
        limit: tuple[str, float] | None = None,
    ) -> Any:
        """One SDK call through `call()`: paced (also by `limit`, a (family, calls a second)
        for Dhan's stricter quote and chart limits), timed, retried by the rules, checked."""

        def attempt() -> Any:
            if limit is not None:
                family, rate = limit
                pacer_for(f"{self.name}.{family}", rate).wait()
            client = self._client_for(self.session.access_token)
            self._wire.status = None
            return self._checked(send(client), operation)

        return self.call(operation, attempt, idempotent=idempotent)

    # ------------------------------------------------------------------ the scrip master

    def master_contract(self) -> Sequence[Instrument]:
        return [contract.instrument for contract in self._scrips().contracts]

    def _scrips(self) -> ScripIndex:
        """Dhan's scrip master, downloaded once a day (IST) per desk process."""
        url = self.master_url
        today = self.desk.clock.now().astimezone(IST).date()
        with _MASTERS_LOCK:
            cached = _MASTERS.get(url)
            if cached is not None and cached[0] == today:
                return cached[1]
            try:
                index = self.call(
                    "master_contract", lambda: self._download_master(url), idempotent=True
                )
            except DalalError:
                if cached is None:
                    raise
                log.warning("Dhan's scrip master could not be refreshed; using %s's", cached[0])
                return cached[1]
            _MASTERS[url] = (today, index)
            return index

    def _download_master(self, url: str) -> ScripIndex:
        request = urllib.request.Request(_http_url(url), headers={"Accept": "text/csv"})  # noqa: S310
        try:
            with urllib.request.urlopen(  # noqa: S310  (scheme checked above)
                request, timeout=self.master_timeout_seconds
            ) as answer:
                body = answer.read()
        except urllib.error.HTTPError as refused:
            raise mapping.dalal_error(
                refused.code,
                "",
                f"the scrip master answered HTTP {refused.code}",
                operation="master_contract",
                expired_message=self.expired_message(),
                reached=True,
            ) from None
        except (urllib.error.URLError, TimeoutError, OSError) as failed:
            reason = getattr(failed, "reason", failed)
            raise BrokerUnavailable(f"Dhan's scrip master could not be fetched: {reason}") from None
        text = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8-sig", newline="")
        index = mapping.parse_scrip_master(text)
        if not len(index):
            raise BrokerError("Dhan's scrip master listed no instruments Dalal can trade.")
        return index

    def _known_scrips(self) -> ScripIndex | None:
        """The scrip master for naming the books; None (Dhan's own names) when unavailable."""
        try:
            return self._scrips()
        except DalalError as error:
            log.warning("Dhan's scrip master is unavailable (%s); showing Dhan's names", error)
            return None

    def _contract(self, symbol: str, exchange: str) -> DhanContract:
        found = self._scrips().find(symbol, exchange)
        if found is None:
            raise InvalidRequest(f"{symbol} on {exchange} is not in Dhan's scrip master.")
        return found

    # ------------------------------------------------------------------ orders

    def place_order(self, request: OrderRequest) -> OrderReport:
        self.ensure_tradable(request.exchange)
        contract = self._contract(request.symbol, request.exchange)
        if contract.instrument.instrument_type is InstrumentType.INDEX:
            raise OrderRejected(f"{request.symbol} is an index and cannot be traded.")
        limit_price = request.price_type in (PriceType.LIMIT, PriceType.SL)
        stop = request.price_type in (PriceType.SL, PriceType.SL_M)

        def send(client: Any) -> Any:
            return client.place_order(
                security_id=contract.security_id,
                exchange_segment=contract.segment,
                transaction_type=request.side.value,
                quantity=request.quantity,
                order_type=mapping.PRICE_TYPE_TO_DHAN[request.price_type],
                product_type=mapping.PRODUCT_TO_DHAN[request.product],
                price=float(request.price) if limit_price else 0.0,
                trigger_price=float(request.trigger_price) if stop else 0.0,
                disclosed_quantity=request.disclosed_quantity,
                validity=request.validity.value,
            )

        placed = self._request("place_order", send, idempotent=False)
        order_id = str((placed or {}).get("orderId") or "")
        if not order_id:
            raise BrokerError("Dhan accepted the order but returned no order ID; check the book.")
        try:
            report = self.order(order_id)
        except DalalError as error:  # placed: the book will tell the rest
            log.warning("Dhan order %s placed; reading it back failed: %s", order_id, error)
            report = self._provisional(order_id, request, str(placed.get("orderStatus") or ""))
        if report.status is OrderStatus.REJECTED:
            reason = report.rejection_reason or "no reason given"
            funds = any(word in reason.lower() for word in ("margin", "fund", "insufficient"))
            kind = InsufficientFunds if funds else OrderRejected
            raise kind(f"Dhan rejected order {order_id}: {reason}")
        return report

    def _provisional(self, order_id: str, request: OrderRequest, status: str) -> OrderReport:
        now = self.desk.clock.now()
        return OrderReport(
            order_id=order_id,
            symbol=request.symbol,
            exchange=request.exchange,
            side=request.side,
            quantity=request.quantity,
            filled_quantity=0,
            average_price=ZERO,
            price=request.price,
            trigger_price=request.trigger_price,
            price_type=request.price_type,
            product=request.product,
            status=mapping.order_status(status or "TRANSIT", request.price_type, 0),
            placed_at=now,
            updated_at=now,
            strategy=request.strategy,
            validity=request.validity,
            source=request.source.value,
            algo_id=request.algo_id,
        )

    def modify_order(self, request: ModifyRequest) -> OrderReport:
        current = self.order(request.order_id)
        self.ensure_tradable(current.exchange)
        if not current.status.is_live:
            raise OrderRejected(
                f"Order {request.order_id} is {current.status.value}; it cannot be modified."
            )
        limit_price = request.price_type in (PriceType.LIMIT, PriceType.SL)
        stop = request.price_type in (PriceType.SL, PriceType.SL_M)

        def send(client: Any) -> Any:
            return client.modify_order(
                order_id=request.order_id,
                order_type=mapping.PRICE_TYPE_TO_DHAN[request.price_type],
                leg_name="",
                quantity=request.quantity,
                price=float(request.price) if limit_price else 0.0,
                trigger_price=float(request.trigger_price) if stop else 0.0,
                disclosed_quantity=request.disclosed_quantity,
                validity=current.validity.value,
            )

        # New terms are absolute (total quantity, prices), so sending them twice is harmless.
        self._request("modify_order", send, idempotent=True)
        try:
            return self.order(request.order_id)
        except DalalError:
            return replace(
                current,
                quantity=request.quantity,
                price_type=request.price_type,
                price=request.price,
                trigger_price=request.trigger_price,
            )

    def cancel_order(self, order_id: str) -> OrderReport:
        try:
            self._request(
                "cancel_order", lambda client: client.cancel_order(order_id), idempotent=True
            )
        except OrderRejected:
            # A resent cancel finds the order already cancelled: that is success.
            current = self.order(order_id)
            if current.status is OrderStatus.CANCELLED:
                return current
            raise
        return self.order(order_id)

    def cancel_all_orders(self) -> tuple[list[str], list[tuple[str, str]]]:
        cancelled: list[str] = []
        failed: list[tuple[str, str]] = []
        for report in self.orders():
            if not report.status.is_live:
                continue
            try:
                self.cancel_order(report.order_id)
            except BrokerSessionExpired:
                raise
            except DalalError as error:
                failed.append((report.order_id, error.message))
            else:
                cancelled.append(report.order_id)
        return cancelled, failed

    # ------------------------------------------------------------------ the books

    def _rows(self, operation: str, send: Callable[[Any], Any]) -> list[dict[str, Any]]:
        found = self._request(operation, send, idempotent=True)
        if isinstance(found, dict):
            return [found]
        return [row for row in (found or []) if isinstance(row, dict)]

    def orders(self) -> list[OrderReport]:
        rows = self._rows("orders", lambda client: client.get_order_list())
        scrips, now = self._known_scrips(), self.desk.clock.now()
        return [mapping.order_report(row, scrips, now) for row in rows]

    def order(self, order_id: str) -> OrderReport:
        rows = self._rows("order", lambda client: client.get_order_by_id(order_id))
        if not rows:
            raise NotFound(f"Order {order_id} not found at Dhan.")
        return mapping.order_report(rows[0], self._known_scrips(), self.desk.clock.now())

    def trades(self) -> list[TradeReport]:
        rows = self._rows("trades", lambda client: client.get_trade_book())
        scrips, now = self._known_scrips(), self.desk.clock.now()
        return [mapping.trade_report(row, scrips, now) for row in rows]

    def positions(self) -> list[PositionReport]:
        rows = self._rows("positions", lambda client: client.get_positions())
        scrips = self._known_scrips()
        contracts = [
            scrips.by_security(str(row.get("exchangeSegment") or ""), row.get("securityId"))
            if scrips is not None
            else None
            for row in rows
        ]
        prices = self._last_prices(
            contract
            for contract, row in zip(contracts, rows, strict=True)
            if mapping.whole(row.get("netQty")) != 0
        )
        return [
            mapping.position_report(row, scrips, self._price_of(contract, prices))
            for contract, row in zip(contracts, rows, strict=True)
        ]

    def holdings(self) -> list[HoldingReport]:
        rows = self._rows("holdings", lambda client: client.get_holdings())
        scrips = self._known_scrips()
        contracts = [mapping.holding_contract(row, scrips) for row in rows]
        prices = self._last_prices(contracts)
        return [
            mapping.holding_report(row, contract, self._price_of(contract, prices))
            for contract, row in zip(contracts, rows, strict=True)
        ]

    @staticmethod
    def _price_of(
        contract: DhanContract | None, prices: Mapping[tuple[str, str], Decimal]
    ) -> Decimal | None:
        if contract is None:
            return None
        return prices.get((contract.segment, contract.security_id))

    def _last_prices(
        self, contracts: Iterable[DhanContract | None]
    ) -> dict[tuple[str, str], Decimal]:
        """Last prices of many contracts in one market-quote call; {} if it fails (the books
        then fall back on what Dhan's rows imply)."""
        wanted: dict[str, list[int]] = {}
        for contract in contracts:
            if contract is not None:
                wanted.setdefault(contract.segment, []).append(int(contract.security_id))
        if not wanted:
            return {}
        try:
            body = self._request(
                "ltp",
                lambda client: client.ticker_data(wanted),
                idempotent=True,
                limit=("quotes", self.quote_calls_per_second),
            )
        except (BrokerError, InvalidRequest, NotFound) as error:
            log.warning("Dhan last prices unavailable: %s", error)
            return {}
        prices: dict[tuple[str, str], Decimal] = {}
        for segment, entries in self._quote_data(body).items():
            if not isinstance(entries, dict):
                continue
            for security_id, entry in entries.items():
                if isinstance(entry, dict) and "last_price" in entry:
                    prices[(segment, str(security_id))] = mapping.money(entry["last_price"])
        return prices

    def funds(self) -> FundsReport:
        found = self._request("funds", lambda client: client.get_fund_limits(), idempotent=True)
        limits = found if isinstance(found, dict) else {}
        rows = self._rows("positions", lambda client: client.get_positions())
        realized = sum((mapping.money(row.get("realizedProfit")) for row in rows), ZERO)
        unrealized = sum((mapping.money(row.get("unrealizedProfit")) for row in rows), ZERO)
        # Dhan spells it "availabelBalance" (sic); accept the correction should it come.
        available = limits.get("availabelBalance", limits.get("availableBalance"))
        return FundsReport(
            available_cash=mapping.money(available),
            utilised=mapping.money(limits.get("utilizedAmount")),
            realized_pnl=realized,
            unrealized_pnl=unrealized,
            collateral=mapping.money(limits.get("collateralAmount")),
            charges=ZERO,  # Dhan reports charges per contract note, not through this API
            starting_capital=mapping.money(limits.get("sodLimit")),
            today_realized_pnl=realized,
        )

    # ------------------------------------------------------------------ market data

    @staticmethod
    def _quote_data(body: Any) -> dict[str, Any]:
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    def _full_quote(self, instrument: Instrument) -> dict[str, Any]:
        contract = self._contract(instrument.symbol, instrument.exchange.value)
        wanted = {contract.segment: [int(contract.security_id)]}
        body = self._request(
            "quote",
            lambda client: client.quote_data(wanted),
            idempotent=True,
            limit=("quotes", self.quote_calls_per_second),
        )
        entry = self._quote_data(body).get(contract.segment, {}).get(contract.security_id)
        if not isinstance(entry, dict):
            raise NotFound(f"Dhan sent no quote for {instrument.symbol} on {instrument.exchange}.")
        return entry

    def _quote(self, instrument: Instrument, entry: Mapping[str, Any]) -> Quote:
        ohlc, book = _section(entry, "ohlc"), _section(entry, "depth")
        return Quote(
            symbol=instrument.symbol,
            exchange=instrument.exchange,
            ltp=mapping.money(entry.get("last_price")),
            open=mapping.money(ohlc.get("open")),
            high=mapping.money(ohlc.get("high")),
            low=mapping.money(ohlc.get("low")),
            prev_close=mapping.money(ohlc.get("close")),
            bid=_best(book.get("buy")),
            ask=_best(book.get("sell")),
            volume=mapping.whole(entry.get("volume")),
            oi=mapping.whole(entry.get("oi")),
            timestamp=mapping.ist_time(entry.get("last_trade_time")) or self.desk.clock.now(),
            last_quantity=mapping.whole(entry.get("last_quantity")),
        )

    def quote(self, instrument: Instrument) -> Quote:
        return self._quote(instrument, self._full_quote(instrument))

    def depth(self, instrument: Instrument) -> Depth:
        entry = self._full_quote(instrument)
        book = _section(entry, "depth")

        def levels(side: str) -> tuple[DepthLevel, ...]:
            return tuple(
                DepthLevel(
                    mapping.money(level.get("price")),
                    mapping.whole(level.get("quantity")),
                    mapping.whole(level.get("orders")),
                )
                for level in book.get(side) or []
                if isinstance(level, dict) and mapping.whole(level.get("quantity")) > 0
            )

        return Depth(self._quote(instrument, entry), levels("buy"), levels("sell"))

    def history(
        self, instrument: Instrument, interval: Interval, start: date, end: date
    ) -> list[Candle]:
        if end < start:
            return []
        contract = self._contract(instrument.symbol, instrument.exchange.value)
        with_oi = instrument.is_derivative
        try:
            if interval is Interval.D:
                candles = self._daily(contract, start, end, with_oi)
            else:
                candles = self._intraday(contract, interval, start, end, with_oi)
        except NotFound:  # Dhan: "no data present" for the range
            return []
        return [candle for candle in candles if start <= candle.start.astimezone(IST).date() <= end]

    def _charts(self, send: Callable[[Any], Any]) -> list[Candle]:
        body = self._request(
            "history", send, idempotent=True, limit=("charts", self.chart_calls_per_second)
        )
        return _candles(body if isinstance(body, dict) else {})

    def _daily(self, contract: DhanContract, start: date, end: date, oi: bool) -> list[Candle]:
        candles = self._charts(
            lambda client: client.historical_daily_data(
                security_id=contract.security_id,
                exchange_segment=contract.segment,
                instrument_type=contract.kind,
                from_date=start.isoformat(),
                to_date=(end + timedelta(days=1)).isoformat(),  # Dhan's toDate is exclusive
                expiry_code=0,
                oi=oi,
            )
        )
        days: dict[date, Candle] = {}
        for candle in candles:  # a day's candle starts at its IST midnight, as the sandbox's
            day = candle.start.astimezone(IST).date()
            midnight = datetime(day.year, day.month, day.day, tzinfo=IST)
            days[day] = replace(candle, start=midnight)
        return [days[day] for day in sorted(days)]

    def _intraday(
        self, contract: DhanContract, interval: Interval, start: date, end: date, oi: bool
    ) -> list[Candle]:
        minutes, group = _INTRADAY[interval]
        candles: list[Candle] = []
        first = start
        while first <= end:
            last = min(end, first + timedelta(days=INTRADAY_DAYS_PER_REQUEST - 1))
            candles += self._minutes(contract, minutes, first, last, oi)
            first = last + timedelta(days=1)
        unique = {candle.start: candle for candle in candles}
        ordered = [unique[moment] for moment in sorted(unique)]
        return _grouped(ordered, minutes * group) if group > 1 else ordered

    def _minutes(
        self, contract: DhanContract, minutes: int, first: date, last: date, oi: bool
    ) -> list[Candle]:
        return self._charts(
            lambda client: client.intraday_minute_data(
                security_id=contract.security_id,
                exchange_segment=contract.segment,
                instrument_type=contract.kind,
                from_date=f"{first.isoformat()} 00:00:00",
                to_date=f"{last.isoformat()} 23:59:59",
                interval=minutes,
                oi=oi,
            )
        )

    # ------------------------------------------------------------------ streaming

    def feed(self) -> FeedSource:
        from broker.dhan.feed import DhanFeed

        return DhanFeed(self)

    def feed_contract(self, exchange: str, symbol: str) -> DhanContract | None:
        """The contract a feed subscription names (None when Dhan does not list it)."""
        return self._scrips().find(symbol, exchange)

    def feed_token(self) -> str:
        return self.session.access_token

    def end_session(self) -> None:
        """Forget the session Dhan no longer accepts (the feed learnt it first)."""
        self._accounts.end_session(self.user_id, self.name)


def _section(entry: Mapping[str, Any], name: str) -> dict[str, Any]:
    found = entry.get(name)
    return found if isinstance(found, dict) else {}


def _best(levels: Any) -> Decimal:
    """The best price of one side of Dhan's depth (best first), 0 when the side is empty."""
    if isinstance(levels, list) and levels and isinstance(levels[0], dict):
        return mapping.money(levels[0].get("price"))
    return ZERO


def _candles(body: Mapping[str, Any]) -> list[Candle]:
    """Dhan's chart columns (open, high, low, close, volume, timestamp[, open_interest])."""
    stamps = body.get("timestamp") or []
    columns = {name: body.get(name) or [] for name in ("open", "high", "low", "close", "volume")}
    interest = body.get("open_interest") or []
    candles = []
    for position, stamp in enumerate(stamps):
        try:
            candles.append(
                Candle(
                    start=datetime.fromtimestamp(int(stamp), IST),
                    open=mapping.money(columns["open"][position]),
                    high=mapping.money(columns["high"][position]),
                    low=mapping.money(columns["low"][position]),
                    close=mapping.money(columns["close"][position]),
                    volume=mapping.whole(columns["volume"][position]),
                    oi=mapping.whole(interest[position]) if position < len(interest) else 0,
                )
            )
        except (IndexError, ValueError, TypeError):
            continue
    return candles


def _grouped(candles: list[Candle], minutes: int) -> list[Candle]:
    """Longer candles from shorter ones, aligned to each day's first candle (the session's
    open): first open, highest high, lowest low, last close, summed volume, last OI."""
    size = timedelta(minutes=minutes)
    buckets: dict[datetime, list[Candle]] = {}
    anchors: dict[date, datetime] = {}
    for candle in candles:
        local = candle.start.astimezone(IST)
        anchor = anchors.setdefault(local.date(), local)
        bucket = anchor + size * ((local - anchor) // size)
        buckets.setdefault(bucket, []).append(candle)
    return [
        Candle(
            start=bucket,
            open=members[0].open,
            high=max(member.high for member in members),
            low=min(member.low for member in members),
            close=members[-1].close,
            volume=sum(member.volume for member in members),
            oi=members[-1].oi,
        )
        for bucket, members in sorted(buckets.items())
    ]
