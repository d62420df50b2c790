"""The sandbox: Dalal's paper-trading exchange, registered as a broker like any other."""

from broker.sandbox.adapter import SandboxBroker

__all__ = ["SandboxBroker"]
