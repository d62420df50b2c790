"""The one Broker interface and the registry every adapter joins with `@register`.

The rest of the desk asks the registry for "the user's broker" and never tests which broker
it got. Order and market-data methods join this interface as the pipeline grows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from services.errors import NotFound


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

    def __init__(self, user_id: int) -> None:
        self.user_id = user_id

    @abstractmethod
    def session_status(self) -> SessionStatus:
        """Whether this user can trade through the broker right now (a live login is valid)."""


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


def broker_for(name: str, user_id: int) -> Broker:
    return broker_class(name)(user_id)


def load_adapters() -> None:
    """Import every adapter package so its `@register` runs."""
    import broker.sandbox  # noqa: F401
