"""The sandbox broker adapter."""

from __future__ import annotations

from broker.base import Broker, SessionStatus, TradingMode, register


@register
class SandboxBroker(Broker):
    name = "sandbox"
    display_name = "Sandbox (paper trading)"
    mode = TradingMode.ANALYZE

    def session_status(self) -> SessionStatus:
        # Paper trading needs no broker login, so there is no 03:00 IST expiry to report.
        return SessionStatus(connected=True, message="Sandbox is always connected.")
