"""Closing positions: one MARKET counter-order per freeze-sized slice, through the pipeline.

The REST API's `closeposition` and the pages' Close / Close all share this, so a position
closes the same way whoever asks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from services.errors import DalalError
from services.orders.model import OrderRequest, PositionReport, Side, Source
from services.orders.pipeline import Trader

if TYPE_CHECKING:
    from services.market.service import MarketData
    from services.orders.pipeline import OrderPipeline


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What closing one position did: the orders sent and, when one failed, why."""

    position: PositionReport
    order_ids: tuple[str, ...]
    error: str | None = None

    @property
    def closed(self) -> bool:
        return self.error is None


def open_positions(
    positions: Iterable[PositionReport],
    symbol: str | None = None,
    exchange: str | None = None,
    product: str | None = None,
) -> list[PositionReport]:
    """The positions with a net quantity, optionally only one symbol/exchange/product."""
    return [
        position
        for position in positions
        if position.net_quantity
        and (not symbol or position.symbol == symbol.upper())
        and (not exchange or position.exchange == exchange)
        and (not product or position.product.value == product)
    ]


def close_position(
    pipeline: OrderPipeline,
    market: MarketData,
    trader: Trader,
    position: PositionReport,
    strategy: str = "Squareoff",
    source: Source = Source.API,
) -> CloseResult:
    """Send MARKET orders opposite to the net quantity, freeze-sized, until it is flat."""
    instrument = market.instrument(position.symbol, position.exchange)
    remaining = abs(position.net_quantity)
    side = Side.SELL if position.net_quantity > 0 else Side.BUY
    slice_size = instrument.freeze_qty or remaining
    slice_size -= slice_size % instrument.lot_size
    order_ids: list[str] = []
    try:
        while remaining > 0:
            quantity = min(remaining, slice_size or remaining)
            request = OrderRequest(
                position.symbol,
                position.exchange,
                side,
                quantity,
                position.product,
                strategy=strategy,
                source=source,
            )
            order_ids.append(pipeline.place(trader, request).report.order_id)
            remaining -= quantity
    except DalalError as e:
        return CloseResult(position, tuple(order_ids), e.message)
    return CloseResult(position, tuple(order_ids))


def close_positions(
    pipeline: OrderPipeline,
    market: MarketData,
    trader: Trader,
    positions: Iterable[PositionReport],
    strategy: str = "Squareoff",
    source: Source = Source.API,
) -> list[CloseResult]:
    return [
        close_position(pipeline, market, trader, position, strategy, source)
        for position in positions
    ]
