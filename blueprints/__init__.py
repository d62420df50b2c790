"""Thin web layers: parse, authenticate, call a service, render or serialise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from flask import current_app
from flask_login import login_required as _login_required

from services.desk import Desk


def desk() -> Desk:
    """The desk's services, bound to the running app by `create_app()`."""
    found: Desk = current_app.extensions["dalal"]
    return found


def login_required[F: Callable[..., Any]](view: F) -> F:
    """Flask-Login's decorator, typed (the library ships no type hints)."""
    return cast(F, _login_required(view))
