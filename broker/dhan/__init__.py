"""Dhan (DhanHQ API v2), on the official `dhanhq` SDK: registered as the broker "dhan"."""

from broker.dhan.adapter import DhanBroker

__all__ = ["DhanBroker"]
