"""Reading API requests: the JSON body, the API key (body, query or header) and rate keys."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from flask import g, request

from blueprints import desk
from blueprints.api.schema import Field, Parsed, parse
from broker.base import broker_for
from services.api_keys import ApiKeyOwner
from services.errors import (
    AuthenticationRequired,
    BrokerSessionExpired,
    InvalidRequest,
)

API_KEY_HEADER = "X-API-KEY"


def json_body() -> dict[str, Any]:
    """The request's JSON object ({} when empty). Malformed or non-object bodies are a 400."""
    cached = g.get("json_body")
    if cached is not None:
        return dict(cached)
    raw = request.get_data(cache=True)
    body: Any = {}
    if raw.strip():
        try:
            body = json.loads(raw)
        except UnicodeDecodeError:
            raise InvalidRequest("Request body must be UTF-8 encoded JSON.") from None
        except json.JSONDecodeError as e:
            raise InvalidRequest(
                f"Request body is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}."
            ) from None
    if not isinstance(body, dict):
        raise InvalidRequest('Request body must be a JSON object, e.g. {"apikey": "..."}.')
    g.json_body = body
    return dict(body)


def presented_api_key() -> str | None:
    """The key from the X-API-KEY header, the JSON body or the query string, in that order."""
    header = request.headers.get(API_KEY_HEADER)
    if header:
        return header.strip()
    if request.method != "GET" and request.get_data(cache=True).strip():
        value = json_body().get("apikey")
        if value is not None:
            if not isinstance(value, str):
                raise InvalidRequest(
                    "apikey must be a string.", errors={"apikey": ["a 64-character string"]}
                )
            return value.strip()
    query = request.args.get("apikey")
    return query.strip() if query else None


def authenticated_owner() -> ApiKeyOwner:
    """Verify the presented key (401 when absent, 403 when wrong or revoked)."""
    owner: ApiKeyOwner | None = g.get("api_owner")
    if owner is not None:
        return owner
    key = presented_api_key()
    if not key:
        raise AuthenticationRequired(
            "API key required: send it as 'apikey' in the JSON body or query string, "
            "or in the X-API-KEY header."
        )
    owner = desk().api_keys.verify(key)
    g.api_owner = owner
    return owner


def require_broker_session(owner: ApiKeyOwner) -> None:
    """A valid key whose live broker login has lapsed gets its own message (API.md D2)."""
    broker = broker_for(owner.broker, owner.user_id, desk())
    status = broker.session_status()
    if not status.connected:
        raise BrokerSessionExpired(
            status.message or f"Broker session expired; log in to {broker.display_name} again."
        )


def rate_limit_key() -> str:
    """Limits are per API key (a digest, never the key itself), per IP without a key."""
    try:
        key = presented_api_key()
    except InvalidRequest:
        key = None
    if key:
        return "key:" + desk().api_keys.digest(key)[:32]
    return "ip:" + (request.remote_addr or "unknown")


def enforce_rate_limit(setting: str) -> None:
    """Count this request against the limit named by a settings attribute (per key)."""
    found = desk()
    found.rate_limits.check(str(getattr(found.settings, setting)), setting, rate_limit_key())


def limited(setting: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Apply the rate limit named by a settings attribute, e.g. `limited("api_rate_limit")`."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def limited_view(*args: Any, **kwargs: Any) -> Any:
            enforce_rate_limit(setting)
            return view(*args, **kwargs)

        return limited_view

    return decorate


def authenticated_request(schema: Mapping[str, Field]) -> tuple[ApiKeyOwner, Parsed]:
    """Authenticate, then validate the body (or the query string of a GET) against `schema`."""
    body = dict(request.args.items()) if request.method == "GET" else json_body()
    owner = authenticated_owner()
    return owner, parse(body, schema)


def success(payload: dict[str, Any], parsed: Parsed | None = None) -> dict[str, Any]:
    """A success body: `status` first, then the payload, then any warnings (API.md D4, D5)."""
    response: dict[str, Any] = {"status": "success", **payload}
    if parsed is not None and parsed.warnings:
        response["warnings"] = parsed.warnings
    return response
