"""Several desk processes share one feed through Redis (a real redis-server on loopback).

Two desks run here, each with its own databases, WebSocket server and hub, like two worker
processes: one runs the simulated source, the other gets its ticks through Redis; when the
first goes away the second takes the source over.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from flask import Flask
from websockets.asyncio.client import ClientConnection, connect

from tests.conftest import desk_of
from tests.support import desk_in_process

pytestmark = pytest.mark.slow


def _desk(folder: Path, redis_url: str) -> tuple[Flask, str, str]:
    folder.mkdir()
    return desk_in_process(folder, REDIS_URL=redis_url, FEED_TICKS_PER_SECOND="10")


async def _ticks(connection: ClientConnection, after_ms: int, count: int) -> int:
    """Wait for `count` SBIN ticks produced after `after_ms`; how many arrived."""
    seen = 0
    deadline = time.monotonic() + 20
    while seen < count and time.monotonic() < deadline:
        try:
            frame = json.loads(await asyncio.wait_for(connection.recv(), 2))
        except TimeoutError:
            continue
        if frame.get("type") == "market_data" and frame["data"]["timestamp"] > after_ms:
            assert frame["symbol"] == "SBIN"
            seen += 1
    return seen


def test_a_follower_streams_the_leaders_ticks_and_takes_over(
    tmp_path: Path, redis_url: str
) -> None:
    first, _first_url, _ = _desk(tmp_path / "first", redis_url)
    deadline = time.monotonic() + 10
    while not desk_of(first).feed_relay.is_leader:  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the first desk never took the source"
        time.sleep(0.05)
    second, url, key = _desk(tmp_path / "second", redis_url)

    async def scenario() -> tuple[int, bool, int]:
        connection = await connect(url, proxy=None)
        await connection.send(json.dumps({"action": "authenticate", "api_key": key}))
        await connection.recv()
        sbin = [{"symbol": "SBIN", "exchange": "NSE"}]
        await connection.send(json.dumps({"action": "subscribe", "mode": 1, "symbols": sbin}))
        relayed = await _ticks(connection, 0, 5)
        # Only the leader runs a source; the follower's ticks came through Redis.
        single_source = desk_of(first).feed.running and not desk_of(second).feed.running
        stopped_at = int(time.time() * 1000)
        await asyncio.get_running_loop().run_in_executor(None, desk_of(first).close)
        resumed = await _ticks(connection, stopped_at, 5)
        await connection.close()
        return relayed, single_source, resumed

    try:
        relayed, single_source, resumed = asyncio.run(scenario())
        assert relayed == 5
        assert single_source
        assert resumed == 5
        assert desk_of(second).feed_relay.is_leader  # type: ignore[union-attr]
    finally:
        desk_of(second).close()
