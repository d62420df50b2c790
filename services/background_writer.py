"""Batched inserts off the request thread: the API log and latency samples use one of these.

Records collect in a list drained by one daemon thread every `linger_seconds` (or at once
when a batch is full), one transaction per batch; `flush()` waits until everything written
before it is stored. A failed batch is logged, never raised: recording must not take the
desk down.

The writer is deliberately not woken per record: every wake-up of a Python thread costs the
busy request threads a hand-over of the interpreter, which would show on the order path.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import DeclarativeBase

from database.engine import DatabaseName, Databases

log = logging.getLogger(__name__)

MAX_WAITING = 100_000  # records held while the database is slow; beyond that they are dropped


class BackgroundWriter[T]:
    def __init__(
        self,
        databases: Databases,
        database: DatabaseName,
        model: type[DeclarativeBase],
        to_row: Callable[[T], dict[str, Any]],
        *,
        name: str,
        batch_size: int = 500,
        linger_seconds: float = 0.2,
    ) -> None:
        self._databases = databases
        self._database = database
        # One multi-row Core INSERT per batch: the ORM's unit of work would hold the
        # interpreter for milliseconds per batch, stalling every request thread meanwhile.
        self._insert = insert(model)
        self._to_row = to_row
        self._name = name
        self._batch_size = batch_size
        self._linger = linger_seconds
        self._condition = threading.Condition()
        self._waiting: list[T] = []
        self._flushes: list[threading.Event] = []  # set once everything before them is stored
        self._thread: threading.Thread | None = None

    def write(self, item: T) -> None:
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            if len(self._waiting) >= MAX_WAITING:
                log.warning("%s: %d records waiting; dropping one", self._name, MAX_WAITING)
                return
            self._waiting.append(item)
            if len(self._waiting) == self._batch_size:
                self._condition.notify()

    def flush(self, timeout: float = 10.0) -> None:
        with self._condition:
            if self._thread is None:
                return
            done = threading.Event()
            self._flushes.append(done)
            self._condition.notify()
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(
                    lambda: len(self._waiting) >= self._batch_size or bool(self._flushes),
                    timeout=self._linger,
                )
                batch, self._waiting = self._waiting, []
                flushes, self._flushes = self._flushes, []
            for start in range(0, len(batch), self._batch_size):
                self._store(batch[start : start + self._batch_size])
            for done in flushes:
                done.set()

    def _store(self, batch: list[T]) -> None:
        if not batch:
            return
        try:
            with self._databases.engines[self._database].begin() as connection:
                connection.execute(self._insert, [self._to_row(item) for item in batch])
        except Exception:
            log.exception("%s: could not store %d records", self._name, len(batch))
