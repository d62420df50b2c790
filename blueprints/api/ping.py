"""POST /api/v1/ping: an authenticated check that the key works and the broker is connected."""

from __future__ import annotations

from typing import Any, ClassVar

from flask_restx import Namespace, Resource, fields

from blueprints.api import api
from blueprints.api.request import (
    authenticated_request,
    limited,
    require_broker_session,
    success,
)

ns = Namespace("ping", description="Key and broker-session check")

ping_request = ns.model(
    "PingRequest",
    {
        "apikey": fields.String(
            required=False,
            description="Your API key (or send the X-API-KEY header instead)",
            example="0f3c…64 hex characters…",
        ),
    },
)
ping_data = ns.model(
    "PingData",
    {
        "message": fields.String(description="Always pong", example="pong"),
        "broker": fields.String(description="The user's active broker", example="sandbox"),
    },
)
ping_response = ns.model(
    "PingResponse",
    {
        "status": fields.String(enum=["success"], example="success", description="success"),
        "data": fields.Nested(ping_data),
        "warnings": fields.List(fields.String, description="Unknown fields that were ignored"),
    },
)
error_response = ns.model(
    "Error",
    {
        "status": fields.String(enum=["error"], example="error", description="error"),
        "message": fields.String(
            description="What went wrong, for a person", example="Invalid openalgo apikey"
        ),
        "code": fields.String(description="A stable machine code", example="invalid_api_key"),
    },
)


@ns.route("")
class Ping(Resource):  # type: ignore[misc]
    method_decorators: ClassVar[list[Any]] = [limited("api_rate_limit")]

    @ns.expect(ping_request, validate=False)
    @ns.response(200, "Pong", ping_response)
    @ns.response(400, "Malformed JSON body", error_response)
    @ns.response(401, "No API key", error_response)
    @ns.response(403, "Invalid key or broker session expired", error_response)
    @ns.response(429, "Rate limited", error_response)
    def post(self) -> dict[str, Any]:
        """Check the API key and the broker session."""
        owner, parsed = authenticated_request({})
        require_broker_session(owner)
        return success({"data": {"message": "pong", "broker": owner.broker}}, parsed)


api.add_namespace(ns, path="/ping")
