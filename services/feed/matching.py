"""The paper exchange as a tick consumer: resting orders fill on streamed prices at once,
not only on the sandbox heartbeat's once-a-second sweep."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from services.feed.model import Tick

if TYPE_CHECKING:
    from services.market.instrument_store import InstrumentMaster
    from services.sandbox.engine import SandboxEngine


def sandbox_matcher(
    engine: SandboxEngine, master: Callable[[], InstrumentMaster]
) -> Callable[[list[Tick]], None]:
    def match(ticks: list[Tick]) -> None:
        listed = master()
        for tick in ticks:
            data = tick.payloads.get(1)
            if data is None:
                continue
            instrument = listed.get(tick.symbol, tick.exchange)
            if instrument is not None:
                # Prices travel as 2-decimal floats; str() gives back the exact tick value.
                engine.on_price(instrument, Decimal(str(data["ltp"])))

    return match
