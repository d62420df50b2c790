"""What every live broker adapter shares: credentials, the day's session, and one way to call.

`LiveBroker.call()` is the only road to a broker's API. It paces calls under the broker's
published rate, times each into the latency monitor, turns the SDK's exceptions into Dalal's
errors (`translate_error`, per adapter) and retries by one rule:

- the broker said 429 (BrokerRateLimited): the request was refused, not executed, so it is
  sent again after a back-off, whatever it was, orders included;
- the broker could not be reached or failed (BrokerUnavailable: timeouts, 5xx): sent again
  only when the operation is idempotent (reads, cancels). An order placement is never
  resent: a timed-out placement may have reached the exchange, and a second one could double
  the position. The caller gets the error and the order book tells the truth;
- anything else (rejections, bad input, an expired token) is final.

A session the broker no longer accepts is forgotten at once, so the desk shows the re-login
banner instead of failing call after call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from broker.base import Broker, SessionStatus, TradingMode
from services.broker_accounts import BrokerCredentials, BrokerSession
from services.broker_latency import CallSample
from services.clock import IST
from services.errors import (
    BrokerNotConfigured,
    BrokerRateLimited,
    BrokerSessionExpired,
    BrokerUnavailable,
    DalalError,
    NotFound,
    OrderRejected,
)
from services.market.model import Instrument

if TYPE_CHECKING:
    from services.desk import Desk

MAX_ATTEMPTS = 5
_MASTERS: dict[str, tuple[date, dict[tuple[str, str], Instrument]]] = {}
_MASTERS_LOCK = threading.Lock()
FIRST_BACKOFF_SECONDS = 0.2


class CallPacer:
    """At most `rate` calls a second to one broker from this process (a token bucket)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self._interval
        if start > now:
            time.sleep(start - now)


_PACERS: dict[str, CallPacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(broker: str, rate: float) -> CallPacer:
    with _PACERS_LOCK:
        found = _PACERS.get(broker)
        if found is None:
            found = _PACERS[broker] = CallPacer(rate)
        return found


class LiveBroker(Broker):
    mode: ClassVar[TradingMode] = TradingMode.LIVE
    # Calls a second this desk allows itself (the broker's published limit, with headroom).
    calls_per_second: ClassVar[float] = 8.0
    backoff_seconds: ClassVar[float] = FIRST_BACKOFF_SECONDS
    # Exchanges this adapter refuses orders on, and why (e.g. a quantity unit it does not
    # convert yet): refusing is the only safe answer when a guess could multiply an order.
    untradable: ClassVar[Mapping[str, str]] = {}

    def __init__(self, user_id: int, desk: Desk) -> None:
        super().__init__(user_id, desk)
        self._accounts = desk.broker_accounts

    # ------------------------------------------------------------------ credentials, session

    @property
    def credentials(self) -> BrokerCredentials:
        found = self._accounts.credentials(self.user_id, self.name)
        if found is None:
            raise BrokerNotConfigured(
                f"{self.display_name} is not set up: enter your API key and secret under "
                "Settings -> Broker."
            )
        return found

    @property
    def session(self) -> BrokerSession:
        found = self._accounts.session(self.user_id, self.name)
        if found is None:
            raise BrokerSessionExpired(self.expired_message())
        return found

    def expired_message(self) -> str:
        cutoff = self.session_cutoff
        when = f" at {cutoff.strftime('%H:%M')} IST" if cutoff else ""
        return f"Broker session expired{when}; log in to {self.display_name} again."

    def session_expiry(self, now: datetime) -> datetime:
        """When a session started now ends: the broker's next daily cut-off (IST)."""
        cutoff = self.session_cutoff
        if cutoff is None:
            return now + timedelta(days=1)
        local = now.astimezone(IST)
        ends = local.replace(hour=cutoff.hour, minute=cutoff.minute, second=0, microsecond=0)
        if ends <= local:
            ends += timedelta(days=1)
        return ends

    def start_session(
        self,
        access_token: str,
        extra: dict[str, str] | None = None,
        expires_at: datetime | None = None,
    ) -> None:
        """Store a new session until `expires_at` (what the broker stated for the token),
        else the broker's daily cut-off."""
        ends = expires_at or self.session_expiry(self.desk.clock.now())
        self._accounts.save_session(self.user_id, self.name, access_token, ends, extra)
        self.desk.audit.record(
            "broker.login", actor=f"user {self.user_id}", user_id=self.user_id, subject=self.name
        )

    def logout(self) -> None:
        self._accounts.end_session(self.user_id, self.name)
        self.desk.audit.record(
            "broker.logout", actor=f"user {self.user_id}", user_id=self.user_id, subject=self.name
        )

    def session_status(self) -> SessionStatus:
        if self._accounts.credentials(self.user_id, self.name) is None:
            return SessionStatus(
                False, f"Enter your {self.display_name} API key under Settings.", needs_login=True
            )
        found = self._accounts.session(self.user_id, self.name)
        if found is None:
            return SessionStatus(False, self.expired_message(), needs_login=True)
        ends = found.expires_at.astimezone(IST).strftime("%H:%M")
        return SessionStatus(True, f"Logged in until {ends} IST.")

    def ensure_tradable(self, exchange: str) -> None:
        """Refuse an order (new or changed) on an exchange this adapter cannot trade safely."""
        reason = self.untradable.get(exchange)
        if reason:
            raise OrderRejected(
                f"{exchange} orders through {self.display_name} are not supported yet: {reason}"
            )

    # ------------------------------------------------------------------ the master contract

    def instrument(self, symbol: str, exchange: str) -> Instrument:
        """From the broker's own instrument dump (downloaded once a day per broker, shared by
        its users): a live user's orders are checked against what the broker lists."""
        today = self.desk.clock.now().astimezone(IST).date()
        with _MASTERS_LOCK:
            cached = _MASTERS.get(self.name)
        if cached is None or cached[0] != today:
            index = {(i.symbol, i.exchange.value): i for i in self.master_contract()}
            cached = (today, index)
            with _MASTERS_LOCK:
                _MASTERS[self.name] = cached
        found = cached[1].get((symbol.strip().upper(), exchange.strip().upper()))
        if found is None:
            raise NotFound(f"{self.display_name} lists no {symbol} on {exchange}.")
        return found

    # ------------------------------------------------------------------ calling the broker

    def translate_error(self, error: Exception) -> DalalError:
        """The SDK's exception as a Dalal error (each adapter maps its own SDK's)."""
        return BrokerUnavailable(f"{self.display_name}: {error}")

    def call[T](self, operation: str, send: Callable[[], T], *, idempotent: bool) -> T:
        pacer = pacer_for(self.name, self.calls_per_second)
        started = time.perf_counter()
        attempt = 0
        status = "ok"
        try:
            while True:
                attempt += 1
                pacer.wait()
                try:
                    return send()
                except Exception as raw:  # the SDK's own exception types, mapped below
                    error = raw if isinstance(raw, DalalError) else self.translate_error(raw)
                    if isinstance(error, BrokerSessionExpired):
                        self._accounts.end_session(self.user_id, self.name)
                    retry = isinstance(error, BrokerRateLimited) or (
                        idempotent and isinstance(error, BrokerUnavailable)
                    )
                    if not retry or attempt >= MAX_ATTEMPTS:
                        status = error.code
                        raise error from None
                    time.sleep(self.backoff_seconds * 2 ** (attempt - 1))
        finally:
            self.desk.broker_latency.record(
                CallSample(
                    user_id=self.user_id,
                    broker=self.name,
                    operation=operation,
                    status=status[:24],
                    attempts=attempt,
                    elapsed_us=int((time.perf_counter() - started) * 1e6),
                )
            )
