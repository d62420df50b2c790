"""The feed under load and faults: many clients, a stalled client, a dropped source.

A desk runs in this process (its real WebSocket server on a loopback port, fed by the
simulated market through the hub); clients are `websockets` connections.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from services.desk import Desk
from services.feed.model import FeedMode
from services.feed.server import FeedServerSettings, MarketFeedServer
from tests.conftest import desk_of, free_port
from tests.support import desk_in_process

pytestmark = pytest.mark.slow

SYMBOLS = ["SBIN", "INFY", "TCS", "RELIANCE", "ITC", "HDFCBANK", "ICICIBANK", "LT", "AXISBANK",
           "KOTAKBANK", "MARUTI", "SUNPHARMA", "TITAN", "WIPRO", "ONGC", "NTPC", "BHARTIARTL",
           "HINDUNILVR", "ASIANPAINT", "BAJFINANCE"]  # fmt: skip


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, str, str]]:
    folder = Path(tmp_path_factory.mktemp("feed-server"))
    app, url, key = desk_in_process(
        folder, FEED_TICKS_PER_SECOND="10", WEBSOCKET_SLOW_CLIENT_SECONDS="2"
    )
    yield app, url, key
    desk_of(app).close()


async def _open(url: str, key: str, **options: Any) -> ClientConnection:
    connection = await connect(url, proxy=None, compression=None, **options)
    await connection.send(json.dumps({"action": "authenticate", "api_key": key}))
    reply = json.loads(await connection.recv())
    assert reply["type"] == "auth" and reply["status"] == "success", reply
    return connection


async def _subscribe(connection: ClientConnection, symbols: list[str], mode: int) -> None:
    await connection.send(json.dumps({
        "action": "subscribe", "mode": mode,
        "symbols": [{"symbol": symbol, "exchange": "NSE"} for symbol in symbols],
    }))  # fmt: skip
    while True:
        reply = json.loads(await connection.recv())
        if reply.get("type") == "subscribe":
            assert reply["status"] == "success", reply
            return


def test_two_hundred_clients_each_get_their_own_ticks(live: tuple[Flask, str, str]) -> None:
    app, url, key = live
    desk = desk_of(app)

    async def scenario() -> list[dict[str, int]]:
        clients = [await _open(url, key) for _ in range(200)]
        for index, client in enumerate(clients):
            await _subscribe(client, [SYMBOLS[index % len(SYMBOLS)]], 1)
        # The upstream is subscribed once per symbol, however many clients want it.
        assert desk.feed.wanted() == {("NSE", symbol): FeedMode.LTP for symbol in SYMBOLS}
        assert desk.feed.references(("NSE", "SBIN"), FeedMode.LTP) == 10

        async def collect(client: ClientConnection) -> dict[str, int]:
            seen: dict[str, int] = {}
            deadline = time.monotonic() + 20
            while min(seen.values(), default=0) < 3 and time.monotonic() < deadline:
                frame = json.loads(await asyncio.wait_for(client.recv(), 10))
                if frame.get("type") == "market_data":
                    seen[frame["symbol"]] = seen.get(frame["symbol"], 0) + 1
            return seen

        results = await asyncio.gather(*(collect(client) for client in clients))
        for client in clients:
            await client.close()
        return results

    results = asyncio.run(scenario())
    for index, seen in enumerate(results):
        assert list(seen) == [SYMBOLS[index % len(SYMBOLS)]], (index, seen)
        assert seen[SYMBOLS[index % len(SYMBOLS)]] >= 3
    # Every reference went back when the clients left.
    deadline = time.monotonic() + 5
    while desk.feed.wanted() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert desk.feed.wanted() == {}


def test_a_client_that_stops_reading_does_not_delay_the_others(
    live: tuple[Flask, str, str],
) -> None:
    app, url, key = live
    server = desk_of(app).feed_server
    assert server is not None

    async def scenario() -> tuple[list[float], bool]:
        # The stalled client stops reading once one frame is queued: TCP backpressure
        # reaches the server, whose send to it then blocks.
        stalled = await _open(url, key, max_queue=1, max_size=None)
        await _subscribe(stalled, SYMBOLS, 3)
        healthy = await _open(url, key)
        await _subscribe(healthy, ["SBIN"], 1)
        lags: list[float] = []
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            frame = json.loads(await asyncio.wait_for(healthy.recv(), 5))
            if frame.get("type") == "market_data":
                lags.append(time.time() * 1000 - frame["data"]["timestamp"])
        # The stalled one is cut off once it has accepted nothing for 2 s.
        gone_by = time.monotonic() + 30
        while server.client_count > 1 and time.monotonic() < gone_by:
            await asyncio.sleep(0.1)
        dropped = server.client_count == 1
        await healthy.close()
        try:
            await asyncio.wait_for(stalled.wait_closed(), 5)
        except TimeoutError:
            stalled.transport.abort()
        return lags, dropped

    lags, dropped = asyncio.run(scenario())
    assert len(lags) >= 50  # ten a second for eight seconds, give or take a busy machine
    assert statistics.quantiles(lags, n=20)[-1] < 250  # p95 tick-to-client, ms
    assert dropped


def test_a_restarted_source_resumes_every_stream(live: tuple[Flask, str, str]) -> None:
    app, url, key = live
    desk = desk_of(app)

    async def scenario() -> tuple[list[str], set[str], int]:
        client = await _open(url, key)
        await _subscribe(client, ["SBIN", "INFY"], 1)
        await _subscribe(client, ["TCS"], 2)
        statuses: list[str] = []
        dropped_at = 0
        resumed: set[str] = set()
        reconnects = desk.feed.reconnects
        desk.feed.drop_source()
        dropped_at = int(time.time() * 1000)
        deadline = time.monotonic() + 15
        while resumed != {"SBIN", "INFY", "TCS"} and time.monotonic() < deadline:
            frame = json.loads(await asyncio.wait_for(client.recv(), 10))
            if frame.get("type") == "feed_status":
                statuses.append(frame["status"])
            elif (
                frame.get("type") == "market_data"
                and frame["data"]["timestamp"] > dropped_at
                and "connected" in statuses
            ):
                resumed.add(frame["symbol"])
        await client.close()
        return statuses, resumed, desk.feed.reconnects - reconnects

    statuses, resumed, reconnects = asyncio.run(scenario())
    assert statuses[:2] == ["disconnected", "connected"]
    assert resumed == {"SBIN", "INFY", "TCS"}
    assert reconnects == 1


def test_a_silent_connection_is_closed_after_the_grace_period(
    live: tuple[Flask, str, str],
) -> None:
    app, _url, _key = live
    desk: Desk = desk_of(app)
    server = MarketFeedServer(
        FeedServerSettings(host="127.0.0.1", port=free_port(), auth_grace_seconds=0.5),
        desk.feed,
        desk.api_keys.verify,
        desk.feed_key,
    )
    server.start()

    async def scenario() -> int | None:
        connection = await connect(f"ws://127.0.0.1:{server.port}", proxy=None)
        try:
            await asyncio.wait_for(connection.recv(), 5)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        return None

    try:
        assert asyncio.run(scenario()) == 4401
    finally:
        server.stop()
