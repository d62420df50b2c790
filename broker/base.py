"""The one Broker interface and the registry every adapter joins with `@register`.

The rest of the desk asks the registry for "the user's broker" and never tests which broker
it got. An adapter is a package `broker/<name>/` whose `__init__` imports the module that
registers it; `load_adapters()` discovers every such package, so a new broker is a folder and
nothing else. Everything crosses this interface in the common model (services/orders/model.py,
services/market/model.py): symbols in Dalal's (OpenAlgo's) format, money as Decimal, aware
times. Live adapters build on broker/live.py (credentials, sessions, timing, retries).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from services.errors import InvalidRequest, NotFound
from services.market.model import Candle, Depth, Instrument, Interval, Quote
from services.orders.model import (
    FundsReport,
    HoldingReport,
    ModifyRequest,
    OrderReport,
    OrderRequest,
    PositionReport,
    TradeReport,
)

if TYPE_CHECKING:
    from services.desk import Desk
    from services.feed.source import FeedSource

log = logging.getLogger(__name__)


class Capability(StrEnum):
    ORDERS = "orders"
    MARKET_DATA = "market_data"
    GTT = "gtt"
    MARGIN_CALCULATOR = "margin_calculator"


class TradingMode(StrEnum):
    """The `mode` marker of API responses (API.md D6)."""

    ANALYZE = "analyze"
    LIVE = "live"


@dataclass(frozen=True)
class SessionStatus:
    connected: bool
    message: str = ""
    needs_login: bool = False  # a live session is missing or expired: show the re-login banner


@dataclass(frozen=True)
class CredentialField:
    """One thing the trader enters on Settings -> Broker (secret ones are never shown back)."""

    name: str  # "api_key", "api_secret" or "client_id"
    label: str
    secret: bool = False


class Broker(ABC):
    name: ClassVar[str]
    display_name: ClassVar[str]
    mode: ClassVar[TradingMode]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    # What Settings -> Broker asks for; empty for brokers that need no account (the sandbox).
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    # When the broker's sessions end each day (IST), for the re-login banner; None: never.
    session_cutoff: ClassVar[time | None] = None

    def __init__(self, user_id: int, desk: Desk) -> None:
        self.user_id = user_id
        self.desk = desk

    @abstractmethod
    def session_status(self) -> SessionStatus:
        """Whether this user can trade through the broker right now (a live login is valid)."""

    # Sessions: a live broker's login is a redirect to the broker and a callback back.
    def login_url(self, redirect_url: str) -> str:
        """Where to send the trader to log in (the broker redirects back to `redirect_url`)."""
        raise InvalidRequest(f"{self.display_name} needs no login.")

    def complete_login(self, params: Mapping[str, str]) -> SessionStatus:
        """Finish a login from the callback's query parameters (e.g. Kite's request_token)."""
        raise InvalidRequest(f"{self.display_name} needs no login.")

    def logout(self) -> None:  # noqa: B027  (optional: brokers without sessions have none)
        """End the broker session (best effort at the broker; always forgotten here)."""

    # Orders. Placing is never retried (a retry could double an order); reads may be.
    @abstractmethod
    def place_order(self, request: OrderRequest) -> OrderReport:
        """Send a validated order; raises OrderRejected (or a subclass) with the broker's reason."""

    @abstractmethod
    def modify_order(self, request: ModifyRequest) -> OrderReport: ...

    @abstractmethod
    def cancel_order(self, order_id: str) -> OrderReport: ...

    @abstractmethod
    def cancel_all_orders(self) -> tuple[list[str], list[tuple[str, str]]]:
        """Cancel every open order: (cancelled ids, [(id, why it could not be cancelled)])."""

    # The books.
    @abstractmethod
    def orders(self) -> list[OrderReport]: ...

    @abstractmethod
    def order(self, order_id: str) -> OrderReport: ...

    @abstractmethod
    def trades(self) -> list[TradeReport]: ...

    @abstractmethod
    def positions(self) -> list[PositionReport]: ...

    @abstractmethod
    def holdings(self) -> list[HoldingReport]: ...

    @abstractmethod
    def funds(self) -> FundsReport: ...

    # Market data, in the common model.
    @abstractmethod
    def quote(self, instrument: Instrument) -> Quote: ...

    @abstractmethod
    def depth(self, instrument: Instrument) -> Depth: ...

    @abstractmethod
    def history(
        self, instrument: Instrument, interval: Interval, start: date, end: date
    ) -> list[Candle]:
        """Candles from `start` to `end` inclusive (IST dates), oldest first."""

    def instrument(self, symbol: str, exchange: str) -> Instrument:
        """One contract of this broker's master (what orders are validated against);
        NotFound when the broker lists no such symbol."""
        return self.desk.market.instrument(symbol, exchange)

    @abstractmethod
    def master_contract(self) -> Sequence[Instrument]:
        """Every instrument the broker trades, mapped to Dalal's symbols (token = the broker's
        own instrument token, used for streaming and data requests)."""

    @abstractmethod
    def feed(self) -> FeedSource:
        """A tick source for the desk's tick hub (services/feed/source.py: connect,
        set_subscriptions, run, close): the broker's streaming in the common model."""

    def sync(self) -> None:  # noqa: B027  (optional hook: live brokers have nothing to flush)
        """Make what this broker acknowledged durable before the caller answers (no-op live)."""

    @property
    def announces_orders(self) -> bool:
        """Whether the broker publishes its own order events on the desk's bus (the pipeline
        then leaves them to it); by default the pipeline announces what each call returned."""
        return False


_REGISTRY: dict[str, type[Broker]] = {}


def register[B: Broker](cls: type[B]) -> type[B]:
    if cls.name in _REGISTRY:
        raise ValueError(f"broker {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def broker_class(name: str) -> type[Broker]:
    load_adapters()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise NotFound(f"Broker {name!r} is not available on this desk.") from None


def registered_brokers() -> dict[str, type[Broker]]:
    load_adapters()
    return dict(_REGISTRY)


def broker_for(name: str, user_id: int, desk: Desk) -> Broker:
    return broker_class(name)(user_id, desk)


_ADAPTERS = Path(__file__).parent
_loaded = False


def load_adapters() -> None:
    """Import every adapter package (`broker/<name>/`) once so its `@register` runs."""
    global _loaded
    if _loaded:
        return
    for module in pkgutil.iter_modules([str(_ADAPTERS)]):
        if module.ispkg:
            try:
                importlib.import_module(f"broker.{module.name}")
            except Exception:
                # One broken adapter (a missing SDK, say) must not take the desk down with
                # it: its users see "not available", everyone else trades on.
                log.exception("broker adapter %r could not be loaded", module.name)
    _loaded = True
