"""The API traffic log: redaction, a background writer and the queries behind the logs page.

Requests are recorded off the request thread (a queue drained in batches) so logging never adds
a database write to an order's latency. Secrets are redacted before an entry is even queued.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from sqlalchemy import func, select

from database.engine import DatabaseName, Databases
from database.models import ApiLog

log = logging.getLogger(__name__)

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


class ApiLogWriter:
    """Writes entries on its own thread; `flush()` waits until everything queued is stored."""

    def __init__(self, db: Databases, batch_size: int = 200) -> None:
        self._db = db
        self._batch_size = batch_size
        # An Event in the queue is a flush marker: set once everything before it is stored.
        self._queue: queue.Queue[ApiLogEntry | threading.Event] = queue.Queue(maxsize=100_000)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, entry: ApiLogEntry) -> None:
        self._ensure_started()
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            log.warning("API log queue full; dropping an entry for %s", entry.path)

    def flush(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        done.wait(timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="api-log", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch: list[ApiLogEntry] = []
            markers: list[threading.Event] = []
            item = self._queue.get()
            while True:
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if len(batch) >= self._batch_size or markers:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._store(batch)
            for marker in markers:
                marker.set()

    def _store(self, batch: list[ApiLogEntry]) -> None:
        if not batch:
            return
        try:
            with self._db.session(DatabaseName.LOGS) as session:
                session.add_all(ApiLog(**entry.__dict__) for entry in batch)
        except Exception:
            # The log must never take the desk down; the entries are lost, the reason is not.
            log.exception("could not store %d API log entries", len(batch))


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
