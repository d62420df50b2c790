"""Reading clients' messages and building the frames that are not market data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.market.model import Exchange

if TYPE_CHECKING:
    from services.api_keys import ApiKeyOwner
    from services.orders.model import OrderReport

_EXCHANGES = {exchange.value for exchange in Exchange}


class ClientError(Exception):
    """A message the server answers with {"status":"error","code":...,"message":...}."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_instruments(message: dict[str, Any]) -> list[tuple[str, str] | ClientError]:
    """(symbol, exchange) per requested instrument, or the error of a malformed entry.

    Accepts the bulk form {"symbols": [{"symbol", "exchange"}, ...]} and the one-instrument
    shorthand with top-level "symbol" and "exchange".
    """
    entries = message.get("symbols")
    if entries is None and ("symbol" in message or "exchange" in message):
        entries = [{"symbol": message.get("symbol"), "exchange": message.get("exchange")}]
    if not isinstance(entries, list) or not entries:
        raise ClientError(
            "INVALID_PARAMETERS",
            'symbols must be a non-empty list like [{"symbol":"SBIN","exchange":"NSE"}]',
        )
    found: list[tuple[str, str] | ClientError] = []
    for entry in entries:
        if not isinstance(entry, dict):
            found.append(ClientError("INVALID_PARAMETERS", "each symbol must be an object"))
            continue
        symbol, exchange = entry.get("symbol"), entry.get("exchange")
        if not isinstance(symbol, str) or not symbol.strip():
            found.append(ClientError("INVALID_PARAMETERS", "symbol is required (a string)"))
        elif not isinstance(exchange, str) or exchange.strip().upper() not in _EXCHANGES:
            found.append(
                ClientError(
                    "INVALID_PARAMETERS",
                    f"exchange must be one of {', '.join(sorted(_EXCHANGES))}; got {exchange!r}",
                )
            )
        else:
            found.append((symbol.strip().upper(), exchange.strip().upper()))
    return found


def order_update_frame(owner: ApiKeyOwner, report: OrderReport) -> dict[str, Any]:
    """API.md 5.3's order_update frame for one order's new state."""
    return {
        "type": "order_update",
        "user_id": owner.username,
        "mode": "analyze" if owner.broker == "sandbox" else "live",
        "broker": owner.broker,
        "orderid": report.order_id,
        "symbol": report.symbol,
        "exchange": report.exchange,
        "action": report.side.value,
        "quantity": report.quantity,
        "price": round(float(report.price), 2),
        "trigger_price": round(float(report.trigger_price), 2),
        "pricetype": report.price_type.value,
        "product": report.product.value,
        "order_status": report.status.value,
        "filled_quantity": report.filled_quantity,
        "pending_quantity": report.pending_quantity,
        "average_price": round(float(report.average_price), 2),
        "rejection_reason": report.rejection_reason,
        "strategy": report.strategy,
    }
