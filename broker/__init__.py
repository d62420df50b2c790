"""Brokers behind one interface (`broker/base.py`); the sandbox is registered like any other."""
