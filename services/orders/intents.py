"""Order intents: what a caller asked for, in a form the Action Center can keep and replay.

In semi-auto mode an API call (or a webhook, a hosted strategy, a Telegram command) is
validated, stored as an intent and executed only when the trader approves it. Auto mode runs
the same execution code at once, so an approved order behaves exactly like one sent directly.

Kinds: a single order (optionally split into children), a smart order (trade to a target
position: computed at execution, from the position as it is then), a basket (legs placed
BUY first, results in request order) and a GTT.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from services.errors import DalalError, InvalidRequest
from services.orders.model import (
    OrderRequest,
    PriceType,
    Product,
    Side,
    Source,
    Validity,
)

if TYPE_CHECKING:
    from services.desk import Desk
    from services.orders.pipeline import Trader
    from services.sandbox.gtt import GttSpec

MAX_SPLIT_ORDERS = 100


@lru_cache(maxsize=4096)
def default_algo_id(user_id: int, source: str, strategy: str) -> str:
    """Dalal's stable identifier of one algorithm: the same user, source and strategy name
    always get the same ID, so every order an algorithm sends can be traced back to it."""
    digest = hashlib.sha256(f"{user_id}\x1f{source}\x1f{strategy}".encode()).hexdigest()
    return "DL" + digest[:10].upper()


@dataclass(frozen=True, slots=True)
class LegResult:
    """One order an intent sent: its ID, or why it was not placed."""

    symbol: str
    exchange: str
    quantity: int
    order_id: str | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "symbol": self.symbol,
            "exchange": self.exchange,
            "quantity": self.quantity,
        }
        if self.order_id is not None:
            found["orderid"] = self.order_id
        if self.error is not None:
            found["error"] = self.error
        return found


def split_quantities(total: int, size: int) -> list[int]:
    """Children of `size` each, the last carrying the remainder (at most 100 children)."""
    count = -(-total // size)
    if count > MAX_SPLIT_ORDERS:
        raise InvalidRequest(
            f"Total number of orders would exceed maximum limit of {MAX_SPLIT_ORDERS}",
            errors={"splitsize": [f"at least {-(-total // MAX_SPLIT_ORDERS)} for this quantity"]},
        )
    return [size] * (total // size) + ([total % size] if total % size else [])


def place_one(desk: Desk, trader: Trader, request: OrderRequest) -> LegResult:
    """Place one order, turning a refusal into a result (batches carry on past it)."""
    try:
        outcome = desk.orders.place(trader, request)
    except DalalError as e:
        return LegResult(request.symbol, request.exchange, request.quantity, error=e.message)
    # An order the exchange rejects still has an ID and shows, with its reason, in the book.
    return LegResult(
        request.symbol, request.exchange, request.quantity, order_id=outcome.report.order_id
    )


def place_split(desk: Desk, trader: Trader, request: OrderRequest, size: int) -> list[LegResult]:
    quantities = split_quantities(request.quantity, size)
    desk.orders.check(replace(request, quantity=quantities[0]))
    return [place_one(desk, trader, replace(request, quantity=q)) for q in quantities]


def buys_first(sides: list[Side]) -> list[int]:
    """Indexes in placing order: buys first, since they can free margin for the sells."""
    return sorted(range(len(sides)), key=lambda index: sides[index] is Side.SELL)


# ---------------------------------------------------------------- (de)serialising requests


def request_to_json(request: OrderRequest) -> dict[str, Any]:
    return {
        "symbol": request.symbol,
        "exchange": request.exchange,
        "side": request.side.value,
        "quantity": request.quantity,
        "product": request.product.value,
        "price_type": request.price_type.value,
        "price": str(request.price),
        "trigger_price": str(request.trigger_price),
        "disclosed_quantity": request.disclosed_quantity,
        "validity": request.validity.value,
        "strategy": request.strategy,
        "source": request.source.value,
        "algo_id": request.algo_id,
    }


def request_from_json(data: dict[str, Any]) -> OrderRequest:
    return OrderRequest(
        symbol=str(data["symbol"]),
        exchange=str(data["exchange"]),
        side=Side(data["side"]),
        quantity=int(data["quantity"]),
        product=Product(data["product"]),
        price_type=PriceType(data["price_type"]),
        price=Decimal(data["price"]),
        trigger_price=Decimal(data["trigger_price"]),
        disclosed_quantity=int(data["disclosed_quantity"]),
        validity=Validity(data["validity"]),
        strategy=str(data["strategy"]),
        source=Source(data["source"]),
        algo_id=str(data["algo_id"]),
    )


# ---------------------------------------------------------------- the intents


@dataclass(frozen=True, slots=True)
class Execution:
    """What executing an intent did: the orders it sent, or a message when it sent none."""

    results: tuple[LegResult, ...]
    message: str = ""

    @property
    def placed(self) -> int:
        return sum(1 for result in self.results if result.order_id and not result.error)


class Intent:
    kind: ClassVar[str]

    @property
    def legs(self) -> list[OrderRequest]:
        raise NotImplementedError

    @property
    def first(self) -> OrderRequest:
        return self.legs[0]

    def vet(self, desk: Desk, trader: Trader) -> None:
        """Check every order this intent would send now, without sending any (approval)."""
        for request in self.legs:
            desk.orders.vet(trader, request)

    def execute(self, desk: Desk, trader: Trader) -> Execution:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the queue: what approving it will do."""
        raise NotImplementedError


def _line(request: OrderRequest) -> str:
    price = "at market" if request.price_type is PriceType.MARKET else f"@ {request.price}"
    if request.price_type in (PriceType.SL, PriceType.SL_M):
        price += f" (trigger {request.trigger_price})"
    return (
        f"{request.side.value} {request.quantity} {request.symbol} {request.exchange} "
        f"{request.product.value} {request.price_type.value} {price}"
    )


@dataclass(frozen=True, slots=True)
class SingleOrder(Intent):
    """placeorder, splitorder (split_size > 0) and a resolved optionsorder."""

    kind: ClassVar[str] = "order"
    request: OrderRequest
    split_size: int = 0

    @property
    def legs(self) -> list[OrderRequest]:
        return [self.request]

    def vet(self, desk: Desk, trader: Trader) -> None:
        if self.split_size:
            first = split_quantities(self.request.quantity, self.split_size)[0]
            desk.orders.vet(trader, replace(self.request, quantity=first))
        else:
            desk.orders.vet(trader, self.request)

    def execute(self, desk: Desk, trader: Trader) -> Execution:
        if self.split_size:
            return Execution(tuple(place_split(desk, trader, self.request, self.split_size)))
        return Execution((place_one(desk, trader, self.request),))

    def to_json(self) -> dict[str, Any]:
        return {"request": request_to_json(self.request), "split_size": self.split_size}

    def describe(self) -> str:
        split = f", in orders of {self.split_size}" if self.split_size else ""
        return _line(self.request) + split


@dataclass(frozen=True, slots=True)
class SmartOrder(Intent):
    """placesmartorder: the trade is worked out at execution, from the position then."""

    kind: ClassVar[str] = "smart"
    request: OrderRequest
    target: int

    @property
    def legs(self) -> list[OrderRequest]:
        return [self.request]

    def vet(self, desk: Desk, trader: Trader) -> None:
        planned = desk.orders.smart.plan(trader, self.request, self.target)
        if planned is not None:
            desk.orders.vet(trader, planned)

    def execute(self, desk: Desk, trader: Trader) -> Execution:
        outcome = desk.orders.smart.place(trader, self.request, self.target)
        report = outcome.report
        if report is None:
            return Execution((), outcome.message)
        return Execution(
            (LegResult(report.symbol, report.exchange, report.quantity, report.order_id),)
        )

    def to_json(self) -> dict[str, Any]:
        return {"request": request_to_json(self.request), "target": self.target}

    def describe(self) -> str:
        request = self.request
        return (
            f"Bring {request.symbol} {request.exchange} {request.product.value} to a net "
            f"position of {self.target} ({request.price_type.value})"
        )


@dataclass(frozen=True, slots=True)
class Basket(Intent):
    """basketorder and a resolved optionsmultiorder: legs placed BUY first."""

    kind: ClassVar[str] = "basket"
    orders: tuple[SingleOrder, ...]

    @property
    def legs(self) -> list[OrderRequest]:
        return [order.request for order in self.orders]

    def vet(self, desk: Desk, trader: Trader) -> None:
        for order in self.orders:
            order.vet(desk, trader)

    def execute(self, desk: Desk, trader: Trader) -> Execution:
        return Execution(
            tuple(result for group in self.execute_legs(desk, trader) for result in group)
        )

    def execute_legs(self, desk: Desk, trader: Trader) -> list[list[LegResult]]:
        """Each leg's results (several for a split leg), in request order."""
        results: list[list[LegResult]] = [[] for _ in self.orders]
        for index in buys_first([order.request.side for order in self.orders]):
            results[index] = list(self.orders[index].execute(desk, trader).results)
        return results

    def to_json(self) -> dict[str, Any]:
        return {"orders": [order.to_json() for order in self.orders]}

    def describe(self) -> str:
        return "; ".join(order.describe() for order in self.orders)


@dataclass(frozen=True, slots=True)
class GttOrder(Intent):
    """placegttorder: approval places the GTT (its orders fire later, through the pipeline)."""

    kind: ClassVar[str] = "gtt"
    spec: GttSpec

    @property
    def legs(self) -> list[OrderRequest]:
        """The order(s) it may place when triggered, as the GTT book itself builds them."""
        from services.sandbox.gtt import legs_of

        return [leg.request for leg in legs_of(self.spec)]

    def vet(self, desk: Desk, trader: Trader) -> None:
        # A GTT places nothing now: its orders meet the risk rules when they fire.
        return None

    def execute(self, desk: Desk, trader: Trader) -> Execution:
        gtt = desk.gtt.place(trader.user_id, self.spec)
        spec = self.spec
        return Execution(
            (LegResult(spec.symbol, spec.exchange, spec.quantity, order_id=gtt.trigger_id),),
            f"GTT {gtt.trigger_id} placed",
        )

    def to_json(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "trigger_type": spec.trigger_type.value,
            "symbol": spec.symbol,
            "exchange": spec.exchange,
            "side": spec.side.value,
            "product": spec.product.value,
            "quantity": spec.quantity,
            "price_type": spec.price_type.value,
            "price": str(spec.price),
            "trigger_sl": str(spec.trigger_sl),
            "trigger_tg": str(spec.trigger_tg),
            "stoploss": str(spec.stoploss),
            "target": str(spec.target),
            "strategy": spec.strategy,
            "expires_at": spec.expires_at.isoformat() if spec.expires_at else None,
        }

    def describe(self) -> str:
        spec = self.spec
        triggers = (
            f"trigger {spec.trigger_sl or spec.trigger_tg}"
            if spec.trigger_type.value == "single"
            else f"stoploss {spec.trigger_sl} / target {spec.trigger_tg}"
        )
        return (
            f"GTT {spec.trigger_type.value.upper()}: {spec.side.value} {spec.quantity} "
            f"{spec.symbol} {spec.exchange} {spec.product.value}, {triggers}"
        )


def intent_from_json(kind: str, data: dict[str, Any]) -> Intent:
    """Rebuild a stored intent (the Action Center's `payload` column)."""
    if kind == SingleOrder.kind:
        return SingleOrder(request_from_json(data["request"]), int(data["split_size"]))
    if kind == SmartOrder.kind:
        return SmartOrder(request_from_json(data["request"]), int(data["target"]))
    if kind == Basket.kind:
        return Basket(
            tuple(
                SingleOrder(request_from_json(order["request"]), int(order["split_size"]))
                for order in data["orders"]
            )
        )
    if kind == GttOrder.kind:
        from services.sandbox.gtt import GttSpec, TriggerType

        expires = data["expires_at"]
        return GttOrder(
            GttSpec(
                trigger_type=TriggerType(data["trigger_type"]),
                symbol=data["symbol"],
                exchange=data["exchange"],
                side=Side(data["side"]),
                product=Product(data["product"]),
                quantity=int(data["quantity"]),
                price_type=PriceType(data["price_type"]),
                price=Decimal(data["price"]),
                trigger_sl=Decimal(data["trigger_sl"]),
                trigger_tg=Decimal(data["trigger_tg"]),
                stoploss=Decimal(data["stoploss"]),
                target=Decimal(data["target"]),
                strategy=data["strategy"],
                expires_at=datetime.fromisoformat(expires) if expires else None,
            )
        )
    raise ValueError(f"unknown order intent {kind!r}")


def dumps(intent: Intent) -> str:
    return json.dumps(intent.to_json(), separators=(",", ":"), sort_keys=True)
