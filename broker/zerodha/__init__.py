"""Zerodha (Kite Connect): the adapter on the official `kiteconnect` SDK, registered here."""

from broker.zerodha.adapter import ZerodhaBroker

__all__ = ["ZerodhaBroker"]
