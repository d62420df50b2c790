"""Write-behind journal with group commit: the engine's only path to the database.

Each event submits one unit (a list of row operations) while it still holds its user's lock;
whoever commits next takes every unit queued so far and commits them together in one
transaction (so every unit is atomic, and many units share a commit). Within a batch an
upserted row keeps only its last version (rows are whole snapshots), which turns a burst of
fills on one position into one write. `flush()` returns once every unit submitted before the
call is committed: the API calls it before acknowledging, so an acknowledged order is on disk.

Two kinds of committer take turns under one lock, so batches reach the database in order:
a caller of `flush()` commits on its own thread (handing the work to another thread and
waking up again would cost more than the commit itself on a busy interpreter), and a writer
thread commits what nobody is waiting for (fills from ticks) every WRITER_INTERVAL.

Rows are written with the driver's `executemany` on SQL built once per table (`INSERT ... ON
CONFLICT ... DO UPDATE`), with SQLAlchemy's own bind processors for dates and times, so what
is stored reads back through the ORM models exactly as if SQLAlchemy had written it, at a
fraction of the cost. Supported backends: SQLite and PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.engine.interfaces import DBAPICursor as Cursor
from sqlalchemy.pool import PoolProxiedConnection

if TYPE_CHECKING:
    from services.sandbox.persistence import TableSpec

log = logging.getLogger(__name__)

# A unit is one event's operations as a flat list, four entries each: kind, table, key, row.
# kind is "upsert", "insert", "insert_once" or "delete_user" (key = the user id: delete that
# user's rows from every per-user table). One list per event rather than a tuple per row keeps
# the garbage collector's work down on the order path.
type Unit = list[Any]

_RETRY_DELAYS = (0.05, 0.2, 1.0)
# The writer thread commits what nobody flushed (fills from ticks) at most this long after it
# was submitted, or at once when this many units are waiting. It is not woken per event: on a
# busy interpreter each wake-up costs the request threads a hand-over of the GIL.
WRITER_INTERVAL = 0.05
GROUP_LIMIT = 5_000
_MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# Bound values per statement: under SQLite's limit (32766 since 3.32) and PostgreSQL's (65535).
_MAX_PARAMETERS = 30_000


class JournalError(RuntimeError):
    """The writer cannot commit (the database is unreachable or refuses the rows)."""


class _Batch:
    """Operations of several units, collapsed per row key, in the order they must be applied."""

    def __init__(self) -> None:
        self.upserts: dict[str, dict[Any, Any]] = {}
        self.inserts: dict[str, list[Any]] = {}
        self.once: dict[str, dict[Any, Any]] = {}

    def add(self, kind: str, table: str, key: Any, row: Any) -> None:
        if kind == "upsert":
            self.upserts.setdefault(table, {})[key] = row
        elif kind == "insert":
            self.inserts.setdefault(table, []).append(row)
        elif kind == "insert_once":
            self.once.setdefault(table, {}).setdefault(key, row)
        else:
            raise ValueError(f"unknown journal operation {kind!r}")

    def __bool__(self) -> bool:
        return bool(self.upserts or self.inserts or self.once)


class _Writer:
    """One table's SQL and the conversions its values need.

    Rows go in as multi-row `INSERT ... VALUES (...), (...)` statements of up to `_MAX_PARAMETERS`
    values: the driver then releases the GIL once per statement rather than once per row, so
    the writer is not starved by busy request threads (each GIL hand-over can wait 5 ms).
    """

    def __init__(self, spec: TableSpec, engine: Engine, action: str) -> None:
        dialect = engine.dialect
        marker = _MARKERS.get(dialect.paramstyle)
        if marker is None:
            raise ValueError(f"the sandbox journal cannot use paramstyle {dialect.paramstyle}")
        quote = dialect.identifier_preparer.quote
        columns = ", ".join(quote(name) for name in spec.columns)
        self._head = f"INSERT INTO {quote(spec.table.name)} ({columns}) VALUES "  # noqa: S608
        self._row_marks = "(" + ", ".join(marker for _ in spec.columns) + ")"
        keys = ", ".join(quote(name) for name in spec.keys)
        self._tail = ""
        if action == "update":
            updates = ", ".join(
                f"{quote(name)} = excluded.{quote(name)}"
                for name in spec.columns
                if name not in spec.keys
            )
            self._tail = f" ON CONFLICT ({keys}) DO UPDATE SET {updates}"
        elif action == "nothing":
            self._tail = f" ON CONFLICT ({keys}) DO NOTHING"
        self._chunk = max(1, _MAX_PARAMETERS // len(spec.columns))
        self._statements: dict[int, str] = {}
        self.convert = spec.convert
        self.processors: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(spec.columns):
            column_type = spec.table.c[name].type
            processor = column_type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.processors.append((index, processor))

    def _statement(self, rows: int) -> str:
        found = self._statements.get(rows)
        if found is None:
            values = ", ".join(self._row_marks for _ in range(rows))
            # Table and column names come from the models; values travel only as parameters.
            found = self._head + values + self._tail
            self._statements[rows] = found
        return found

    def write(self, cursor: Cursor, snapshots: list[Any], memo: dict[Any, Any]) -> None:
        """Insert `snapshots`; `memo` holds dates and times already converted in this batch
        (one event stamps many columns and rows with the same instant; equal instants convert
        to the same stored value)."""
        values: list[Any] = []
        convert, processors = self.convert, self.processors
        for snapshot in snapshots:
            row = list(convert(snapshot))
            for index, processor in processors:
                value = row[index]
                found = memo.get(value)
                if found is None:
                    found = memo[value] = processor(value)
                row[index] = found
            values.extend(row)
        width = len(values) // len(snapshots) if snapshots else 0
        step = self._chunk
        for start in range(0, len(snapshots), step):
            count = min(step, len(snapshots) - start)
            parameters = tuple(values[start * width : (start + count) * width])
            cursor.execute(self._statement(count), parameters)


class Journal:
    def __init__(
        self,
        engine: Engine,
        specs: Mapping[str, TableSpec],
        user_tables: tuple[str, ...],
    ) -> None:
        self._engine = engine
        self._specs = dict(specs)
        self._user_tables = user_tables
        if engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(
                f"the sandbox journal needs SQLite or PostgreSQL, not {engine.dialect.name}"
            )
        self._writers: dict[tuple[str, str], _Writer] = {}
        self._condition = threading.Condition()
        self._pending: list[Unit] = []
        self._submitted = 0
        self._committed = 0
        self._error: BaseException | None = None
        self._closing = False
        self._commit_lock = threading.Lock()
        self._connection: PoolProxiedConnection | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox-journal", daemon=True)
        self._thread.start()

    def submit(self, unit: Unit) -> None:
        with self._condition:
            if self._closing:
                raise JournalError("the sandbox journal is closed")
            self._pending.append(unit)
            self._submitted += 1
            if len(self._pending) == GROUP_LIMIT:
                self._condition.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every unit submitted so far is committed, committing them here if need be."""
        with self._condition:
            target = self._submitted
            if self._committed >= target:
                return
        if not self._commit_lock.acquire(timeout=-1 if timeout is None else timeout):
            raise JournalError("timed out waiting for the sandbox journal")
        try:
            if self._committed < target:  # else a batch committed while we waited covers it
                self._commit_pending()
        finally:
            self._commit_lock.release()

    def close(self) -> None:
        """Write everything still queued, then stop the writer."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        self._thread.join()
        with self._commit_lock:
            if self._connection is not None:
                self._connection.close()  # back to the pool
                self._connection = None
        if self._committed < self._submitted:
            raise JournalError(f"the sandbox journal stopped with unwritten rows: {self._error}")

    @property
    def backlog(self) -> int:
        return self._submitted - self._committed

    def _commit_pending(self) -> None:
        """Commit every queued unit in one transaction. Called with the commit lock held.

        On failure the units go back to the head of the queue (nothing is dropped; the writer
        thread retries them) and the error is raised as a JournalError.
        """
        with self._condition:
            units, self._pending = self._pending, []
            upto = self._submitted
        if not units:
            return
        try:
            self._write(units)
        except Exception as error:
            with self._condition:
                self._error = error
                self._pending[:0] = units
                self._condition.notify_all()
            raise JournalError(f"the sandbox journal cannot write: {error}") from error
        with self._condition:
            self._committed = upto
            self._error = None

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        failures = 0
        while True:
            with self._condition:
                if len(self._pending) < GROUP_LIMIT and not self._closing:
                    self._condition.wait(WRITER_INTERVAL)
                if not self._pending:
                    if self._closing:
                        return
                    continue
            try:
                with self._commit_lock:
                    self._commit_pending()
            except JournalError:  # a failed commit is retried; nothing is dropped
                log.exception("sandbox journal commit failed; retrying")
                with self._condition:
                    if self._closing and failures >= len(_RETRY_DELAYS):
                        return
                time.sleep(_RETRY_DELAYS[min(failures, len(_RETRY_DELAYS) - 1)])
                failures += 1
                continue
            failures = 0

    def _write(self, units: list[Unit]) -> None:
        """Commit `units` in one transaction on the journal's own driver connection.

        The connection stays checked out for the journal's life (only the committer holding
        the commit lock uses it); after a failure it is thrown away and a fresh one is taken.
        """
        if self._connection is None:
            self._connection = self._engine.raw_connection()
        connection = self._connection
        cursor = connection.cursor()
        try:
            batch = _Batch()
            for unit in units:
                for start in range(0, len(unit), 4):
                    kind, table, key, row = (
                        unit[start],
                        unit[start + 1],
                        unit[start + 2],
                        unit[start + 3],
                    )
                    if kind == "upsert":
                        upserts = batch.upserts.get(table)
                        if upserts is None:
                            upserts = batch.upserts[table] = {}
                        upserts[key] = row
                    elif kind == "delete_user":
                        self._apply(cursor, batch)
                        batch = _Batch()
                        self._delete_user(cursor, int(key))
                    else:
                        batch.add(kind, table, key, row)
            self._apply(cursor, batch)
            connection.commit()
        except BaseException:
            self._connection = None
            try:
                connection.rollback()
            finally:
                connection.invalidate()
            raise
        finally:
            cursor.close()

    def _apply(self, cursor: Cursor, batch: _Batch) -> None:
        if not batch:
            return
        memo: dict[Any, Any] = {}
        for name, rows in batch.inserts.items():
            self._writer(name, "insert").write(cursor, rows, memo)
        for name, keyed in batch.upserts.items():
            self._writer(name, "update").write(cursor, list(keyed.values()), memo)
        for name, keyed in batch.once.items():
            self._writer(name, "nothing").write(cursor, list(keyed.values()), memo)

    def _writer(self, name: str, action: str) -> _Writer:
        found = self._writers.get((name, action))
        if found is None:
            found = _Writer(self._specs[name], self._engine, action)
            self._writers[(name, action)] = found
        return found

    def _delete_user(self, cursor: Cursor, user_id: int) -> None:
        dialect = self._engine.dialect
        marker = _MARKERS[dialect.paramstyle]
        for name in self._user_tables:
            table = dialect.identifier_preparer.quote(self._specs[name].table.name)
            # The table name comes from the models; the user id travels as a parameter.
            cursor.execute(f"DELETE FROM {table} WHERE user_id = {marker}", (user_id,))  # noqa: S608
