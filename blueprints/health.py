"""Liveness probe for service managers and `make run`'s readiness check (outside /api/v1)."""

from __future__ import annotations

from flask import Blueprint, jsonify
from werkzeug.wrappers import Response

bp = Blueprint("health", __name__)


@bp.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})
