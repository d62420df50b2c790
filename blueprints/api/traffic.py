"""Records every /api request in the logs database (secrets redacted before queuing)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from blueprints import desk
from services.api_log import ApiCall


def _start_timer() -> None:
    if request.path.startswith("/api/"):
        g.api_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.get("api_started")
    if started is None:
        return response
    owner = g.get("api_owner")
    try:
        body = request.get_data(cache=True)
    except Exception:  # an oversized body was refused before it was read
        body = b""
    found = desk()
    found.api_log.write(
        ApiCall(
            created_at=found.clock.now(),
            method=request.method,
            path=request.path,
            raw_query=request.query_string,
            status=response.status_code,
            duration_us=int((time.perf_counter() - started) * 1_000_000),
            user_id=owner.user_id if owner else None,
            username=owner.username if owner else None,
            client_ip=request.remote_addr or "",
            raw_body=body,
            error_message=g.get("api_error_message"),
        )
    )
    return response


def init_traffic_log(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_record)
