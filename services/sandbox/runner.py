"""The sandbox's heartbeat: match resting orders every second and run the day's lifecycle.

One runner per desk process (started by the server, never by CLI commands or tests, which call
the engine directly). A failing round is logged and the next one runs: a bad tick must not
stop the exchange.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Heartbeat(Protocol):
    def on_tick(self) -> int: ...

    def run_lifecycle(self) -> None: ...

    def reset_due(self, schedule: str) -> list[int]: ...


class SandboxRunner:
    def __init__(
        self,
        engine: Heartbeat,
        *,
        auto_reset: str = "never",
        gtt_check: Callable[[], object] | None = None,
        tick_seconds: float = 1.0,
        lifecycle_seconds: float = 5.0,
    ) -> None:
        self._engine = engine
        self._auto_reset = auto_reset
        self._gtt_check = gtt_check
        self._tick_seconds = tick_seconds
        self._lifecycle_seconds = lifecycle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sandbox-runner", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        next_lifecycle = 0.0
        while not self._stop.wait(self._tick_seconds):
            try:
                self._engine.on_tick()
                if self._gtt_check is not None:
                    self._gtt_check()
                if time.monotonic() >= next_lifecycle:
                    self._engine.run_lifecycle()
                    if self._auto_reset != "never":
                        self._engine.reset_due(self._auto_reset)
                    next_lifecycle = time.monotonic() + self._lifecycle_seconds
            except Exception:
                log.exception("sandbox heartbeat round failed")
