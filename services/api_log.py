"""The API traffic log: redaction, its background writer and the queries behind the logs page.

Requests are recorded off the request thread (services/background_writer.py) so logging never
adds a database write to an order's latency. Secrets are redacted before an entry is queued.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from sqlalchemy import func, select

from database.engine import DatabaseName, Databases
from database.models import ApiLog
from services.background_writer import BackgroundWriter

REDACTED = "***"
MAX_BODY_CHARS = 4000
_SECRET_WORDS = ("apikey", "api_key", "password", "secret", "token", "totp", "otp", "pepper")


def is_secret_field(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(word in lowered for word in _SECRET_WORDS)


def redact(value: Any) -> Any:
    """A copy of a JSON value with every secret-looking field's value replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if is_secret_field(str(key)) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def redact_query(query_string: str) -> str:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return "&".join(
        f"{quote(key)}={REDACTED if is_secret_field(key) else quote(value)}" for key, value in pairs
    )


def redact_body(raw: bytes) -> str:
    """The request body as stored: JSON with secrets redacted, or a note if it was not JSON."""
    if not raw:
        return ""
    try:
        text = json.dumps(redact(json.loads(raw)), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, UnicodeDecodeError):
        # Not JSON: it may still hold a secret, so only its size is kept.
        return f"<{len(raw)} bytes, not JSON>"
    if len(text) > MAX_BODY_CHARS:
        return text[:MAX_BODY_CHARS] + "…"
    return text


@dataclass(frozen=True)
class ApiLogEntry:
    created_at: datetime
    method: str
    path: str
    query: str
    status: int
    duration_us: int
    user_id: int | None
    username: str | None
    client_ip: str
    request_body: str
    error_message: str | None


@dataclass(frozen=True)
class ApiLogPage:
    entries: list[ApiLogEntry]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One request as captured on the request thread: raw, cheap to take.

    Redaction and formatting happen on the writer's thread, off the order path; the raw
    values never leave the process.
    """

    created_at: datetime
    method: str
    path: str
    raw_query: bytes
    status: int
    duration_us: int
    user_id: int | None
    username: str | None
    client_ip: str
    raw_body: bytes
    error_message: str | None

    def row(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "method": self.method,
            "path": self.path[:255],
            "query": redact_query(self.raw_query.decode("latin-1")),
            "status": self.status,
            "duration_us": self.duration_us,
            "user_id": self.user_id,
            "username": self.username,
            "client_ip": self.client_ip,
            "request_body": redact_body(self.raw_body),
            "error_message": self.error_message,
        }


class ApiLogWriter(BackgroundWriter[ApiCall]):
    """Stores API calls on their own thread; `flush()` waits for what is queued."""

    def __init__(self, db: Databases) -> None:
        super().__init__(db, DatabaseName.LOGS, ApiLog, ApiCall.row, name="api-log")


def recent_entries(
    db: Databases,
    *,
    page: int = 1,
    per_page: int = 50,
    user_id: int | None = None,
    status_class: int | None = None,
    path_contains: str = "",
) -> ApiLogPage:
    """Newest first; `status_class` 2 means 2xx, 4 means 4xx and so on."""
    page = max(1, page)
    conditions = []
    if user_id is not None:
        conditions.append(ApiLog.user_id == user_id)
    if status_class is not None:
        low = status_class * 100
        conditions.append(ApiLog.status.between(low, low + 99))
    if path_contains:
        conditions.append(ApiLog.path.contains(path_contains))
    with db.session(DatabaseName.LOGS) as session:
        total = session.scalar(select(func.count(ApiLog.id)).where(*conditions)) or 0
        rows = session.scalars(
            select(ApiLog)
            .where(*conditions)
            .order_by(ApiLog.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        entries = [
            ApiLogEntry(
                created_at=row.created_at,
                method=row.method,
                path=row.path,
                query=row.query,
                status=row.status,
                duration_us=row.duration_us,
                user_id=row.user_id,
                username=row.username,
                client_ip=row.client_ip,
                request_body=row.request_body,
                error_message=row.error_message,
            )
            for row in rows
        ]
    return ApiLogPage(entries=entries, page=page, per_page=per_page, total=total)
