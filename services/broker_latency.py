"""The broker latency monitor: every live-broker API call's round trip, by broker and operation.

Samples go to the latency database through a background writer (the caller never waits on
the disk); the monitor page reads p50/p90/p99 per broker and operation over a window.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from database.engine import DatabaseName, Databases
from database.models import BrokerCall
from services.background_writer import BackgroundWriter
from services.clock import Clock


@dataclass(frozen=True, slots=True)
class CallSample:
    user_id: int
    broker: str
    operation: str
    status: str
    attempts: int
    elapsed_us: int


@dataclass(frozen=True, slots=True)
class LatencyRow:
    broker: str
    operation: str
    calls: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float


def percentile(sorted_values: list[int], fraction: float) -> int:
    """Nearest-rank percentile of an ascending list (exact for small samples, no interpolation)."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class BrokerLatency:
    def __init__(self, databases: Databases, clock: Clock) -> None:
        self._db = databases
        self._clock = clock
        self._writer = BackgroundWriter[CallSample](
            databases,
            DatabaseName.LATENCY,
            BrokerCall,
            lambda sample: {"created_at": clock.now(), **asdict(sample)},
            name="broker-latency",
        )

    def record(self, sample: CallSample) -> None:
        self._writer.write(sample)

    def flush(self) -> None:
        self._writer.flush()

    def summary(self, since: datetime | None = None) -> list[LatencyRow]:
        """p50/p90/p99 per (broker, operation) since `since` (default: the last 24 hours)."""
        self.flush()
        since = since or self._clock.now() - timedelta(days=1)
        samples: defaultdict[tuple[str, str], list[int]] = defaultdict(list)
        errors: defaultdict[tuple[str, str], int] = defaultdict(int)
        with self._db.session(DatabaseName.LATENCY) as session:
            rows = session.execute(
                select(BrokerCall.broker, BrokerCall.operation, BrokerCall.status,
                       BrokerCall.elapsed_us).where(BrokerCall.created_at >= since)
            )  # fmt: skip
            for broker, operation, status, elapsed in rows:
                samples[(broker, operation)].append(elapsed)
                if status != "ok":
                    errors[(broker, operation)] += 1
        table = []
        for (broker, operation), values in sorted(samples.items()):
            values.sort()
            table.append(
                LatencyRow(
                    broker=broker,
                    operation=operation,
                    calls=len(values),
                    errors=errors[(broker, operation)],
                    p50_ms=percentile(values, 0.50) / 1000,
                    p90_ms=percentile(values, 0.90) / 1000,
                    p99_ms=percentile(values, 0.99) / 1000,
                    max_ms=values[-1] / 1000,
                )
            )
        return table
