"""Dalal's business logic. Nothing in this package imports Flask."""
