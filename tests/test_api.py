"""The /api/v1 skeleton: authentication, the error model, routing and rate limits."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV2SpecValidator
from sqlalchemy import text

from config import Settings
from tests.conftest import desk_of, login

PONG = {"status": "success", "data": {"message": "pong", "broker": "sandbox"}}


def test_ping_with_key_in_body(client: FlaskClient, api_key: str) -> None:
    response = client.post("/api/v1/ping", json={"apikey": api_key})
    assert response.status_code == 200
    assert response.json == PONG


def test_ping_with_key_in_header_and_no_body(client: FlaskClient, api_key: str) -> None:
    response = client.post("/api/v1/ping", headers={"X-API-KEY": api_key})
    assert response.status_code == 200
    assert response.json == PONG


def test_ping_with_key_in_query_string(client: FlaskClient, api_key: str) -> None:
    response = client.post(f"/api/v1/ping?apikey={api_key}")
    assert response.status_code == 200
    assert response.json == PONG


def test_api_calls_neither_read_nor_set_the_page_session(client: FlaskClient, api_key: str) -> None:
    login(client)  # a browser session exists in this client's cookie jar
    assert "Set-Cookie" not in client.post("/api/v1/ping", json={"apikey": api_key}).headers
    # The session cookie is not credentials for the API.
    assert client.post("/api/v1/ping").status_code == 401
    assert client.get("/settings").status_code == 200  # the page session is intact


def test_trailing_slash_answers_without_redirect(client: FlaskClient, api_key: str) -> None:
    response = client.post("/api/v1/ping/", json={"apikey": api_key})
    assert response.status_code == 200
    assert response.json == PONG


def test_unknown_fields_are_ignored_and_reported(client: FlaskClient, api_key: str) -> None:
    response = client.post("/api/v1/ping", json={"apikey": api_key, "target": 5, "x": 1})
    assert response.status_code == 200
    assert response.json["warnings"] == [
        "Unknown field 'target' was ignored.",
        "Unknown field 'x' was ignored.",
    ]


def test_missing_key_is_401(client: FlaskClient) -> None:
    response = client.post("/api/v1/ping", json={})
    assert response.status_code == 401
    assert response.json["status"] == "error"
    assert "API key required" in response.json["message"]


def test_wrong_key_is_403_with_the_openalgo_message(client: FlaskClient, api_key: str) -> None:
    wrong = ("0" if api_key[0] != "0" else "1") + api_key[1:]
    response = client.post("/api/v1/ping", json={"apikey": wrong})
    assert response.status_code == 403
    assert response.json == {
        "status": "error",
        "message": "Invalid openalgo apikey",
        "code": "invalid_api_key",
    }


def test_revoked_key_is_403(app: Flask, client: FlaskClient, api_key: str) -> None:
    assert client.post("/api/v1/ping", json={"apikey": api_key}).status_code == 200
    owner = desk_of(app).api_keys.verify(api_key)
    assert desk_of(app).api_keys.revoke(owner.user_id)
    response = client.post("/api/v1/ping", json={"apikey": api_key})
    assert response.status_code == 403
    assert response.json["message"] == "Invalid openalgo apikey"


def test_non_string_key_is_400(client: FlaskClient) -> None:
    response = client.post("/api/v1/ping", json={"apikey": 12345})
    assert response.status_code == 400
    assert response.json["errors"] == {"apikey": ["a 64-character string"]}


def test_malformed_json_is_400_naming_the_problem(client: FlaskClient, api_key: str) -> None:
    response = client.post(
        "/api/v1/ping",
        data='{"apikey": "' + api_key + '",}',
        content_type="application/json",
        headers={"X-API-KEY": api_key},
    )
    assert response.status_code == 400
    assert response.json["status"] == "error"
    assert response.json["message"].startswith("Request body is not valid JSON")
    assert "line 1 column" in response.json["message"]


def test_json_that_is_not_an_object_is_400(client: FlaskClient, api_key: str) -> None:
    response = client.post("/api/v1/ping", json=[api_key])
    assert response.status_code == 400
    assert "JSON object" in response.json["message"]


def test_non_json_body_is_400(client: FlaskClient, api_key: str) -> None:
    response = client.post(
        "/api/v1/ping", data="apikey=" + api_key, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json["status"] == "error"


def test_oversized_body_is_413(client: FlaskClient, settings: Settings, api_key: str) -> None:
    payload = (
        b'{"apikey": "' + api_key.encode() + b'", "pad": "' + b"x" * settings.max_request_bytes
    )
    response = client.post("/api/v1/ping", data=payload + b'"}', content_type="application/json")
    assert response.status_code == 413
    assert response.json["status"] == "error"
    assert str(settings.max_request_bytes) in response.json["message"]


def test_unknown_api_path_is_json_404(client: FlaskClient) -> None:
    response = client.post("/api/v1/no-such-endpoint", json={})
    assert response.status_code == 404
    assert response.json["status"] == "error"
    assert response.json["message"] == "Not found"
    assert response.json["path"] == "/api/v1/no-such-endpoint"


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.get("/api/v1/ping")
    assert response.status_code == 405
    assert response.json["status"] == "error"


def test_internal_error_is_500_without_stack_trace(app: Flask, client: FlaskClient) -> None:
    # A broken database is a real way for a request to fail unexpectedly.
    with desk_of(app).databases.session() as session:
        session.execute(text("DROP TABLE api_keys"))
    response = client.post("/api/v1/ping", json={"apikey": "a" * 64})
    assert response.status_code == 500
    assert response.json == {
        "status": "error",
        "message": "Internal error; the desk has logged the details.",
    }
    body = response.get_data(as_text=True)
    assert "Traceback" not in body
    assert "api_keys" not in body


def test_rate_limit_is_429_with_retry_after(tmp_path, clock) -> None:  # type: ignore[no-untyped-def]
    from app import create_app
    from tests.conftest import desk_env, make_user

    settings = Settings.from_mapping(desk_env(tmp_path, API_RATE_LIMIT="3 per minute"))
    app = create_app(settings, clock=clock)
    client = app.test_client()
    key = desk_of(app).api_keys.create(make_user(app).id)
    statuses = [client.post("/api/v1/ping", json={"apikey": key}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = client.post("/api/v1/ping", json={"apikey": key})
    assert response.json["status"] == "error"
    assert 1 <= response.json["retry_after"] <= 60
    assert response.headers["Retry-After"] == str(response.json["retry_after"])
    # Limits are per key: another user's key is not throttled by the first one's traffic.
    other = desk_of(app).api_keys.create(make_user(app, "second").id)
    assert client.post("/api/v1/ping", json={"apikey": other}).status_code == 200
    desk_of(app).close()


def test_swagger_spec_is_valid_and_documents_ping(client: FlaskClient) -> None:
    spec = client.get("/api/v1/swagger.json").json
    validate(spec, cls=OpenAPIV2SpecValidator)
    assert "/ping" in spec["paths"]
    assert "apikey" in spec["securityDefinitions"]
    assert spec["securityDefinitions"]["apikey"]["name"] == "X-API-KEY"


def test_swagger_ui_is_served_locally(client: FlaskClient) -> None:
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "swagger" in html.lower()
    # Every asset comes from the desk itself: it must work with no internet.
    assert "//cdn" not in html and "unpkg.com" not in html and "jsdelivr" not in html


def test_health_needs_no_key(client: FlaskClient) -> None:
    assert client.get("/health").json == {"status": "ok"}


def test_swagger_documents_every_field(client: FlaskClient) -> None:
    spec = client.get("/api/v1/swagger.json").json
    assert len(spec["paths"]) >= 40
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            assert operation.get("summary"), f"{method} {path} has no summary"
    for name, model in spec["definitions"].items():
        for field, schema in model.get("properties", {}).items():
            if "$ref" in schema or schema.get("type") == "array":
                continue
            assert schema.get("description"), f"{name}.{field} has no description"
            assert "example" in schema, f"{name}.{field} has no example"
