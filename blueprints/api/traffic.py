"""Records every /api request in the logs database (secrets redacted before queuing)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request

from blueprints import desk
from services.api_log import ApiLogEntry, redact_body, redact_query


def _start_timer() -> None:
    if request.path.startswith("/api/"):
        g.api_started = time.perf_counter()


def _record(response: Response) -> Response:
    started = g.get("api_started")
    if started is None:
        return response
    owner = g.get("api_owner")
    try:
        body = redact_body(request.get_data(cache=True))
    except Exception:  # an oversized body was refused before it was read
        body = ""
    desk().api_log.write(
        ApiLogEntry(
            created_at=desk().clock.now(),
            method=request.method,
            path=request.path[:255],
            query=redact_query(request.query_string.decode("latin-1")),
            status=response.status_code,
            duration_us=int((time.perf_counter() - started) * 1_000_000),
            user_id=owner.user_id if owner else None,
            username=owner.username if owner else None,
            client_ip=request.remote_addr or "",
            request_body=body,
            error_message=g.get("api_error_message"),
        )
    )
    return response


def init_traffic_log(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_record)
