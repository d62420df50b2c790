"""The one Broker interface and the registry every adapter joins with `@register`.

The rest of the desk asks the registry for "the user's broker" and never tests which broker
it got. Order and market-data methods join this interface as the pipeline grows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, ClassVar

from services.errors import NotFound
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


class Broker(ABC):
    name: ClassVar[str]
    display_name: ClassVar[str]
    mode: ClassVar[TradingMode]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, user_id: int, desk: Desk) -> None:
        self.user_id = user_id
        self.desk = desk

    @abstractmethod
    def session_status(self) -> SessionStatus:
        """Whether this user can trade through the broker right now (a live login is valid)."""

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


def load_adapters() -> None:
    """Import every adapter package so its `@register` runs."""
    import broker.sandbox  # noqa: F401
