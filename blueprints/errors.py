"""The one place where errors become responses: JSON under /api, an HTML page elsewhere.

No response ever carries a stack trace; unexpected errors are logged here, server-side.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from services.errors import DalalError, RateLimited

log = logging.getLogger(__name__)

_HTTP_MESSAGES = {
    400: "Bad request.",
    401: "Authentication required.",
    403: "Forbidden.",
    404: "Not found",
    405: "Method not allowed.",
    413: "Request body is too large.",
    415: "Unsupported media type.",
    429: "Rate limit exceeded. Please slow down your requests.",
}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def to_dalal_error(exc: BaseException) -> DalalError:
    """Translate anything raised while serving a request into the desk's error hierarchy."""
    if isinstance(exc, DalalError):
        return exc
    if isinstance(exc, RequestEntityTooLarge):
        limit = request.max_content_length or 0
        error = DalalError(f"Request body is larger than the {limit} bytes this desk accepts.")
        error.status, error.code = 413, "payload_too_large"
        return error
    if isinstance(exc, HTTPException):
        status = exc.code or 500
        error = DalalError(_HTTP_MESSAGES.get(status, exc.name))
        error.status, error.code = status, exc.name.lower().replace(" ", "_")
        return error
    log.exception("unhandled error serving %s %s", request.method, request.path, exc_info=exc)
    return DalalError("Internal error; the desk has logged the details.")


def api_error_response(exc: BaseException) -> Response:
    error = to_dalal_error(exc)
    body: dict[str, Any] = {"status": "error", "message": error.message}
    if error.errors:
        body["errors"] = error.errors
    if error.code != "internal_error":
        body["code"] = error.code
    if error.status == 404:
        body["path"] = request.path
    if isinstance(error, RateLimited):
        body["retry_after"] = error.retry_after
    response = jsonify(body)
    response.status_code = error.status
    if isinstance(error, RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    g.api_error_message = error.message
    return response


def html_error_response(exc: BaseException) -> tuple[str, int, dict[str, str]]:
    error = to_dalal_error(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, CSRFError):
        error.message = "This form expired or did not come from this desk. Reload and try again."
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after)
        error.message = f"Too many attempts. Wait {error.retry_after} seconds before trying again."
    return render_template("error.html", error=error), error.status, headers


def handle_any(exc: BaseException) -> Any:
    if is_api_request():
        return api_error_response(exc)
    return html_error_response(exc)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(DalalError, handle_any)
    app.register_error_handler(HTTPException, handle_any)
    app.register_error_handler(Exception, handle_any)
