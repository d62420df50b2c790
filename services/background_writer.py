"""Batched inserts off the request thread: the API log and latency samples use one of these.

A queue drained by one daemon thread, one transaction per batch; `flush()` waits until
everything queued before it is stored. A failed batch is logged, never raised: recording
must not take the desk down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import DeclarativeBase

from database.engine import DatabaseName, Databases

log = logging.getLogger(__name__)


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
        # Waiting a moment gathers many records into one transaction: the request threads
        # then share the interpreter with one short write instead of one write per request.
        self._linger = linger_seconds
        # An Event in the queue is a flush marker: set once everything before it is stored.
        self._queue: queue.Queue[T | threading.Event] = queue.Queue(maxsize=100_000)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, item: T) -> None:
        self._ensure_started()
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("%s queue full; dropping one record", self._name)

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
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch: list[T] = []
            markers: list[threading.Event] = []
            item = self._queue.get()
            deadline = time.monotonic() + self._linger
            while True:
                if isinstance(item, threading.Event):
                    markers.append(item)
                else:
                    batch.append(item)
                if len(batch) >= self._batch_size or markers:
                    break
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            self._store(batch)
            for marker in markers:
                marker.set()

    def _store(self, batch: list[T]) -> None:
        if not batch:
            return
        try:
            with self._databases.engines[self._database].begin() as connection:
                connection.execute(self._insert, [self._to_row(item) for item in batch])
        except Exception:
            log.exception("%s: could not store %d records", self._name, len(batch))
