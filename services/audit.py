"""The tamper-evident audit trail: append-only records of every state change that matters,
each chained to the one before it by a SHA-256 hash.

Recording is cheap on the caller's thread: `record()` stamps the time and appends to a queue.
One writer thread per process numbers the records, chains them and inserts them in batches.
Several processes may share the table: `seq` and `prev_hash` are unique, so when another
process extended the chain first, the insert fails, the writer re-reads the tail and chains
the batch again.

What the chain proves, and what it cannot:
- an edited record (any field) no longer matches its hash, and `verify()` names it;
- a deleted record leaves a gap in `seq` and a `prev_hash` pointing at nothing;
- records deleted from the *end* of the chain leave no trace in the rows that remain: a chain
  alone cannot tell a truncated trail from a shorter one. This process remembers the last
  record it wrote and `verify()` reports when that record is gone or changed, which catches
  truncation while the desk runs; across restarts, anchor the tail elsewhere (e.g. export the
  latest hash off the machine) if that matters;
- someone who can rewrite the database *and* knows the algorithm can re-chain everything
  after an edit; the chain makes tampering evident, not impossible.

Callers must never pass secrets (passwords, API keys, tokens, TOTP seeds or codes) in
`subject` or `details`. As a safety net, details keys that look like secrets (password,
secret, token, apikey, api_key, ...) have their values replaced by "[redacted]".

Actors, by convention: a signed-in person's username; "cli" for the operator at the command
line; "system" for the desk itself (schedules, retention); "anonymous" for a failed sign-in.

Retention: `purge_expired()` deletes records older than the retention period from the start
of the chain and stores a checkpoint (the last purged seq and hash, DeskSetting
"audit_anchor"), from which `verify()` carries on.
"""

from __future__ import annotations

import atexit
import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import threading
import time as _time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple, TextIO

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from database.engine import DatabaseName, Databases
from database.models import AuditEvent, DeskSetting
from services.clock import Clock, to_ist

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
ANCHOR_KEY = "audit_anchor"
REDACTED = "[redacted]"
VERIFY_CHUNK = 2_000
BATCH_SIZE = 500
LINGER_SECONDS = 0.2  # how long a record may wait for the writer (no per-record wake-up)
WAKE_AT = 1_000  # ...unless this many are waiting
MAX_WAITING = 500_000  # records held while the database is unreachable; beyond that, dropped
FLUSH_TIMEOUT_SECONDS = 30.0
MAX_CHAIN_RETRIES = 50
_SECRET_KEY = re.compile(r"password|passwd|passphrase|secret|token|apikey")
_MAX_DEPTH = 12
# Column widths of audit_events: longer text is cut before hashing, so what is stored is
# exactly what was hashed on every database.
_ACTOR_MAX, _ACTION_MAX, _SUBJECT_MAX = 64, 64, 128


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    at: datetime  # aware, UTC
    user_id: int | None
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class AuditVerification:
    intact: bool
    checked: int  # records whose links were verified (up to the first broken one)
    first_broken_seq: int | None
    problem: str  # a sentence for a person; empty when intact


class _Pending(NamedTuple):
    """A record as the caller handed it over, before it has a place in the chain (a tuple:
    the cheapest thing to build on the order path)."""

    at: datetime
    action: str
    actor: str
    user_id: int | None
    subject: str
    details: Mapping[str, Any] | None


@dataclass(frozen=True)
class _Link:
    seq: int
    hash: str


# ------------------------------------------------------------------------- canonical form


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(re.sub(r"[^a-z]", "", key.lower())))


def json_safe(value: Any, depth: int = 0) -> Any:
    """`value` as plain JSON types: exact money as text, instants as ISO text, enums as their
    value, anything unknown as str(); values under secret-looking keys redacted."""
    if value is None or type(value) in (str, int, bool):
        return value
    if isinstance(value, Enum):
        return json_safe(value.value, depth + 1)
    if isinstance(value, Decimal):
        return str(value)  # exact: never through float
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime | date | time_of_day):
        return value.isoformat()
    if depth >= _MAX_DEPTH:
        return str(value)
    if isinstance(value, Mapping):
        return {
            _key(k): REDACTED if _is_secret_key(_key(k)) else json_safe(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item, depth + 1) for item in value]
    return str(value)


def _key(key: Any) -> str:
    if isinstance(key, Enum):
        key = key.value
    return key if type(key) is str else str(key)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_json_string: Callable[[str], str] = json.encoder.encode_basestring


def canonical_json(value: Any) -> str:
    """json.dumps with sorted keys, no spaces, UTF-8 kept as is: one text per value."""
    return _ENCODER.encode(value)


def _utc_iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def chain_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    user_id: int | None,
    actor: str,
    action: str,
    subject: str,
    details_json: str,
) -> str:
    """SHA-256 (hex) over the previous hash followed by the record's canonical JSON:
    canonical_json({seq, at (UTC ISO, microseconds), user_id, actor, action, subject,
    details}). `details_json` is the details' canonical JSON exactly as stored; splicing it in
    as text gives the same bytes as serialising the object, and makes verification byte-exact
    (and quick: no parsing)."""
    text = _json_string  # what json.dumps(ensure_ascii=False) does for a str, minus overhead
    user = "null" if user_id is None else str(int(user_id))
    body = (
        f'{{"action":{text(action)},"actor":{text(actor)},"at":"{_utc_iso(at)}",'
        f'"details":{details_json},"seq":{int(seq)},"subject":{text(subject)},"user_id":{user}}}'
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


# ------------------------------------------------------------------------------- the trail

_live_trails: weakref.WeakSet[AuditTrail] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    # A CLI command ends the process right after its work: write what it recorded first.
    for trail in list(_live_trails):
        trail.flush()


def _after_fork_in_child() -> None:
    # The writer thread does not survive a fork, and what was queued is the parent's to write.
    for trail in list(_live_trails):
        trail._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


class AuditTrail:
    def __init__(self, databases: Databases, clock: Clock, retention_days: int) -> None:
        if retention_days < 1:
            raise ValueError("audit retention must be at least one day")
        self._databases = databases
        self._clock = clock
        self._retention = timedelta(days=retention_days)
        self.retention_days = retention_days
        self._queue: deque[_Pending] = deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # thread start, flush requests, closing
        self._write_lock = threading.Lock()  # one chain writer at a time in this process
        self._flushes: list[threading.Event] = []
        self._thread: threading.Thread | None = None
        self._closed = False
        self._tail: _Link | None = None  # the chain's end as this writer last knew it
        self._written: _Link | None = None  # the last record this process stored

    @property
    def _engine(self) -> Engine:
        return self._databases.engines[DatabaseName.MAIN]

    # --- recording --------------------------------------------------------------------------

    def record(
        self,
        action: str,
        *,
        actor: str,
        user_id: int | None = None,
        subject: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Queue one record; never raises. Details are copied (one level) now and made
        JSON-safe on the writer thread. Never pass secrets (see the module docstring)."""
        try:
            queue = self._queue
            if len(queue) >= MAX_WAITING:
                log.error("audit: %d records waiting; dropping %s", MAX_WAITING, action)
                return
            queue.append(
                _Pending(
                    self._clock.now(),
                    action,
                    actor,
                    user_id,
                    subject,
                    dict(details) if details else None,
                )
            )
            if self._thread is None:
                self._start()
            elif len(queue) == WAKE_AT:
                self._wake.set()
            if self._closed:  # after close(): no writer thread, store at once
                self._drain()
        except Exception:
            log.exception("audit: could not record %s", action)

    def flush(self) -> None:
        """Return once every record queued before this call is stored (or, if the database
        failed, once storing it has been attempted and logged)."""
        with self._lock:
            thread = self._thread
            if thread is None or not thread.is_alive() or thread is threading.current_thread():
                pending = None
            else:
                pending = threading.Event()
                self._flushes.append(pending)
                self._wake.set()
        if pending is None:
            self._drain()
        elif not pending.wait(FLUSH_TIMEOUT_SECONDS):
            log.error("audit: flush timed out after %.0f s", FLUSH_TIMEOUT_SECONDS)

    def close(self) -> None:
        """Store what is queued and stop the writer. Idempotent; records made afterwards are
        stored at once on the caller's thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            self._wake.set()
        if thread is not None:
            thread.join(FLUSH_TIMEOUT_SECONDS)
        self._drain()
        _live_trails.discard(self)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()
            _live_trails.add(self)

    def _forked(self) -> None:
        self._queue.clear()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._flushes = []
        self._thread = None
        self._tail = None

    def _run(self) -> None:
        while True:
            self._wake.wait(LINGER_SECONDS)
            self._wake.clear()
            with self._lock:
                flushes, self._flushes = self._flushes, []
                closing = self._closed
            # Everything queued before a flush request was appended before it was taken.
            self._drain()
            for done in flushes:
                done.set()
            if closing:
                return

    def _drain(self) -> None:
        with self._write_lock:
            while self._queue:
                batch: list[_Pending] = []
                try:
                    while len(batch) < BATCH_SIZE:
                        batch.append(self._queue.popleft())
                except IndexError:
                    pass
                if not self._store(batch):
                    # Keep them, in order, for the next round: an audit record is not dropped
                    # because the database blinked.
                    self._queue.extendleft(reversed(batch))
                    return

    # --- chaining and storing ---------------------------------------------------------------

    def _store(self, batch: list[_Pending]) -> bool:
        try:
            prepared = [self._prepared(item) for item in batch]
            engine = self._engine
            for attempt in range(MAX_CHAIN_RETRIES):
                if self._tail is None:
                    with engine.connect() as connection:
                        self._tail = _read_tail(connection)
                rows = self._chained(prepared, self._tail)
                try:
                    with engine.begin() as connection:
                        connection.execute(insert(AuditEvent), rows)
                except IntegrityError:
                    # Another process extended the chain: start again from its real end.
                    self._tail = None
                    _time.sleep(min(0.001 * attempt, 0.05))
                    continue
                last = rows[-1]
                self._tail = self._written = _Link(last["seq"], last["hash"])
                return True
            log.error("audit: gave up chaining %d records after %d tries", len(batch), attempt)
        except Exception:
            log.exception("audit: could not store %d records; will retry", len(batch))
            self._tail = None
        _time.sleep(0.1)  # do not spin against a failing database
        return False

    @staticmethod
    def _prepared(item: _Pending) -> dict[str, Any]:
        try:
            details = json_safe(item.details) if item.details is not None else {}
        except Exception:  # a value whose str() raised: keep the record, say so
            details = {"unrecordable": "details could not be converted"}
        if not isinstance(details, dict):
            details = {"value": details}
        return {
            "at": item.at.astimezone(UTC),
            "user_id": item.user_id,
            "actor": str(item.actor)[:_ACTOR_MAX],
            "action": str(item.action)[:_ACTION_MAX],
            "subject": str(item.subject or "")[:_SUBJECT_MAX],
            "details": canonical_json(details),
        }

    @staticmethod
    def _chained(prepared: list[dict[str, Any]], tail: _Link) -> list[dict[str, Any]]:
        rows = []
        seq, prev = tail.seq, tail.hash
        for fields in prepared:
            seq += 1
            digest = chain_hash(
                prev,
                seq=seq,
                at=fields["at"],
                user_id=fields["user_id"],
                actor=fields["actor"],
                action=fields["action"],
                subject=fields["subject"],
                details_json=fields["details"],
            )
            rows.append({**fields, "seq": seq, "prev_hash": prev, "hash": digest})
            prev = digest
        return rows

    # --- verification -------------------------------------------------------------------------

    def verify(self) -> AuditVerification:
        """Walk the chain in seq order, in chunks, from the retention checkpoint (or the
        start) and report the first record that breaks it."""
        self.flush()
        known = self._written
        engine = self._engine
        with engine.connect() as connection:
            anchor = _read_anchor(connection)
        expected_seq, prev_hash = (anchor.seq + 1, anchor.hash) if anchor else (1, GENESIS_HASH)
        start = expected_seq - 1
        checked = 0
        last_seq = start
        while True:
            with engine.connect() as connection:
                chunk = connection.execute(
                    select(*_COLUMNS)
                    .where(AuditEvent.seq > last_seq)
                    .order_by(AuditEvent.seq)
                    .limit(VERIFY_CHUNK)
                ).all()
            if not chunk:
                break
            for row in chunk:
                problem = _link_problem(row, expected_seq, prev_hash, anchor)
                if problem is not None:
                    return AuditVerification(False, checked, problem[0], problem[1])
                if known is not None and row.seq == known.seq and row.hash != known.hash:
                    return AuditVerification(
                        False,
                        checked,
                        row.seq,
                        f"record {row.seq} was replaced: this desk wrote a different record "
                        "with that number",
                    )
                checked += 1
                expected_seq, prev_hash, last_seq = row.seq + 1, row.hash, row.seq
        if known is not None and known.seq > last_seq:
            missing = last_seq + 1
            return AuditVerification(
                False,
                checked,
                missing,
                f"record {missing} is missing: the trail ends at record {last_seq} but this "
                f"desk wrote up to record {known.seq}",
            )
        return AuditVerification(True, checked, None, "")

    # --- reading --------------------------------------------------------------------------------

    def events(
        self,
        *,
        user_id: int | None = None,
        action_prefix: str = "",
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[AuditRecord]:
        """Stored records, newest first (records still queued are not included: flush()
        first to see them)."""
        query = select(*_COLUMNS).order_by(AuditEvent.seq.desc()).limit(max(1, min(limit, 1000)))
        if user_id is not None:
            query = query.where(AuditEvent.user_id == user_id)
        if action_prefix:
            query = query.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
        if before_seq is not None:
            query = query.where(AuditEvent.seq < before_seq)
        with self._engine.connect() as connection:
            return [_to_record(row) for row in connection.execute(query)]

    def export_csv(self, out: TextIO, *, user_id: int | None = None) -> int:
        """Write the trail (or one user's records) as CSV, oldest first; returns the rows
        written (the header is not counted)."""
        rows = 0
        for text, count in self._csv_pieces(user_id):
            out.write(text)
            rows += count
        return rows

    def iter_csv(self, *, user_id: int | None = None) -> Iterator[str]:
        """The CSV of export_csv() in pieces, for streaming to a client."""
        for text, _rows in self._csv_pieces(user_id):
            yield text

    def _csv_pieces(self, user_id: int | None) -> Iterator[tuple[str, int]]:
        self.flush()
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        last_seq = 0
        engine = self._engine
        while True:
            query = select(*_COLUMNS).where(AuditEvent.seq > last_seq)
            if user_id is not None:
                query = query.where(AuditEvent.user_id == user_id)
            query = query.order_by(AuditEvent.seq).limit(VERIFY_CHUNK)
            with engine.connect() as connection:
                chunk = connection.execute(query).all()
            for row in chunk:
                writer.writerow(
                    [
                        row.seq,
                        to_ist(row.at).isoformat(timespec="microseconds"),
                        "" if row.user_id is None else row.user_id,
                        row.actor,
                        row.action,
                        row.subject,
                        row.details,
                        row.prev_hash,
                        row.hash,
                    ]
                )
            yield buffer.getvalue(), len(chunk)
            buffer.seek(0)
            buffer.truncate()
            if len(chunk) < VERIFY_CHUNK:
                return
            last_seq = chunk[-1].seq

    # --- retention --------------------------------------------------------------------------

    def purge_expired(self) -> int:
        """Delete records older than the retention period from the start of the chain,
        keeping a checkpoint so the rest still verifies; returns how many were deleted."""
        self.flush()
        cutoff = self._clock.now() - self._retention
        engine = self._engine
        with engine.begin() as connection:
            anchor = _read_anchor(connection)
            floor = anchor.seq if anchor else 0
            first_kept = connection.scalar(
                select(func.min(AuditEvent.seq)).where(
                    AuditEvent.at >= cutoff, AuditEvent.seq > floor
                )
            )
            # The chain is cut at the first record still inside the retention period, so a
            # record is never deleted while an older one stays.
            if first_kept is None:
                through = connection.scalar(select(func.max(AuditEvent.seq)))
            else:
                through = first_kept - 1
            if through is None or through <= floor:
                return 0
            last = connection.execute(
                select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq == through)
            ).first()
            if last is None:  # a gap exactly there: verify() reports it; do not paper over it
                log.error("audit: record %d is missing; not purging", through)
                return 0
            _write_anchor(connection, _Link(last.seq, last.hash), self._clock.now())
            purged = connection.execute(
                delete(AuditEvent).where(AuditEvent.seq <= through)
            ).rowcount
        self.record(
            "audit.purged",
            actor="system",
            subject=f"records up to {through}",
            details={
                "purged": purged,
                "through_seq": through,
                "retention_days": self.retention_days,
            },
        )
        self.flush()
        return int(purged)


CSV_COLUMNS = (
    "seq",
    "at",
    "user_id",
    "actor",
    "action",
    "subject",
    "details",
    "prev_hash",
    "hash",
)
_COLUMNS = (
    AuditEvent.seq,
    AuditEvent.at,
    AuditEvent.user_id,
    AuditEvent.actor,
    AuditEvent.action,
    AuditEvent.subject,
    AuditEvent.details,
    AuditEvent.prev_hash,
    AuditEvent.hash,
)


def _read_tail(connection: Connection) -> _Link:
    row = connection.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    if row is not None:
        return _Link(row.seq, row.hash)
    return _read_anchor(connection) or _Link(0, GENESIS_HASH)


def _read_anchor(connection: Connection) -> _Link | None:
    value = connection.scalar(select(DeskSetting.value).where(DeskSetting.key == ANCHOR_KEY))
    if value is None:
        return None
    try:
        data = json.loads(value)
        return _Link(int(data["seq"]), str(data["hash"]))
    except (ValueError, KeyError, TypeError):
        log.error("audit: the retention checkpoint is unreadable: %r", value)
        return None


def _write_anchor(connection: Connection, link: _Link, now: datetime) -> None:
    value = canonical_json({"seq": link.seq, "hash": link.hash})
    exists = connection.scalar(select(DeskSetting.key).where(DeskSetting.key == ANCHOR_KEY))
    if exists is None:
        connection.execute(insert(DeskSetting).values(key=ANCHOR_KEY, value=value, updated_at=now))
    else:
        connection.execute(
            update(DeskSetting)
            .where(DeskSetting.key == ANCHOR_KEY)
            .values(value=value, updated_at=now)
        )


def _link_problem(
    row: Any, expected_seq: int, prev_hash: str, anchor: _Link | None
) -> tuple[int, str] | None:
    """(seq, sentence) when `row` does not continue the chain, else None."""
    before = expected_seq - 1
    if before == 0:
        previous = "the start of the trail"
    elif anchor is not None and before == anchor.seq:
        previous = f"the retention checkpoint (record {before})"
    else:
        previous = f"record {before}"
    if row.seq != expected_seq:
        gone = (
            f"record {expected_seq} is missing"
            if row.seq == expected_seq + 1
            else f"records {expected_seq} to {row.seq - 1} are missing"
        )
        return expected_seq, f"{gone}: record {row.seq} follows {previous}"
    if row.prev_hash != prev_hash:
        return row.seq, f"record {row.seq}'s previous hash does not match {previous}"
    actual = chain_hash(
        row.prev_hash,
        seq=row.seq,
        at=row.at,
        user_id=row.user_id,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details_json=row.details,
    )
    if actual != row.hash:
        return row.seq, f"record {row.seq} was edited: its hash does not match its contents"
    return None


def _to_record(row: Any) -> AuditRecord:
    try:
        details = json.loads(row.details)
    except ValueError:
        details = {"unreadable": row.details}
    if not isinstance(details, dict):
        details = {"value": details}
    return AuditRecord(
        seq=row.seq,
        at=row.at,
        user_id=row.user_id,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        details=details,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
