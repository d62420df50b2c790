"""Market-data WebSocket: tick-to-client latency, delivered rate and memory per client.

Targets (issue: live market data), on this 2-core machine, with the simulated market
ticking 10 times a second for each of 50 symbols:
  - p99 tick-to-client latency < 20 ms with 100 clients, < 100 ms with 500 clients;
  - print the delivered tick rate with 1, 100 and 500 clients and the memory per client.

Latency is the client's clock at receipt minus `data.timestamp`, the server's epoch
milliseconds when the tick was produced (same machine, same clock). All 50 symbols are
always subscribed: one client takes all 50; with 100 or 500 clients each takes one symbol,
round-robin, so every client gets 10 ticks a second.

Baseline, in the same run: a bare `websockets` server in its own process that sends the same
clients the same number of frames of the same size on the same schedule (no hub, no
simulated market, no protocol beyond subscribe): the floor of Python WebSocket fan-out here.

Run: `make bench` (or .venv/bin/python bench/bench_feed.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_http import free_port, start_desk

TICKS_PER_SECOND = 10
SYMBOLS = [
    "SBIN", "INFY", "TCS", "RELIANCE", "ITC", "HDFCBANK", "ICICIBANK", "LT", "AXISBANK",
    "KOTAKBANK", "MARUTI", "SUNPHARMA", "TITAN", "WIPRO", "ONGC", "NTPC", "BHARTIARTL",
    "HINDUNILVR", "ASIANPAINT", "BAJFINANCE", "HCLTECH", "TECHM", "ULTRACEMCO", "NESTLEIND",
    "POWERGRID", "COALINDIA", "TATASTEEL", "JSWSTEEL", "HINDALCO", "GRASIM", "ADANIPORTS",
    "ADANIENT", "BAJAJFINSV", "BPCL", "BRITANNIA", "CIPLA", "DRREDDY", "EICHERMOT",
    "HEROMOTOCO", "INDUSINDBK", "M&M", "SBILIFE", "HDFCLIFE", "SHRIRAMFIN", "TATACONSUM",
    "APOLLOHOSP", "DIVISLAB", "TRENT", "BEL", "ETERNAL",
]  # fmt: skip
CLIENT_COUNTS = (1, 100, 500)
WARM_SECONDS = 3.0
MEASURE_SECONDS = 10.0
TARGETS_MS = {100: 20.0, 500: 100.0}

BARE_SERVER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from websockets.asyncio.server import serve

    subscribers = {}  # connection -> symbols

    async def handler(connection):
        async for text in connection:
            message = json.loads(text)
            if message.get("action") == "authenticate":
                await connection.send(json.dumps({"type": "auth", "status": "success"}))
            elif message.get("action") == "subscribe":
                subscribers[connection] = [item["symbol"] for item in message["symbols"]]
                await connection.send(json.dumps({"type": "subscribe", "status": "success"}))
        subscribers.pop(connection, None)

    async def ticker(rate):
        while True:
            now = time.time_ns() // 1_000_000
            for connection, symbols in list(subscribers.items()):
                for symbol in symbols:
                    frame = json.dumps({"type": "market_data", "symbol": symbol,
                        "exchange": "NSE", "mode": 1, "data": {"ltp": 1234.55,
                        "ltt": now, "timestamp": now}, "broker": "sandbox"},
                        separators=(",", ":"))
                    try:
                        await connection.send(frame)
                    except Exception:
                        pass
            await asyncio.sleep(1 / rate)

    async def main():
        async with serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None):
            await ticker(int(sys.argv[2]))

    asyncio.run(main())
    """
)


@dataclass
class Run:
    clients: int
    latencies_ms: list[float]
    frames_per_second: float
    rss_per_client_kib: float


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def worker_pid(server: subprocess.Popen[bytes]) -> int:
    """The gunicorn worker (the process holding the feed), or the server itself."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return int(children[0]) if children else server.pid


async def open_client(url: str, key: str, symbols: list[str]) -> ClientConnection:
    connection = await connect(url, proxy=None, compression=None, max_queue=None)
    await connection.send(json.dumps({"action": "authenticate", "api_key": key}))
    while json.loads(await connection.recv()).get("type") != "auth":
        pass
    await connection.send(
        json.dumps({"action": "subscribe", "mode": 1,
                    "symbols": [{"symbol": s, "exchange": "NSE"} for s in symbols]})
    )  # fmt: skip
    return connection


async def measure(url: str, key: str, count: int, pid: int) -> Run:
    before = rss_kib(pid)
    plan = [SYMBOLS] if count == 1 else [[SYMBOLS[index % len(SYMBOLS)]] for index in range(count)]
    clients: list[ClientConnection] = []
    for start in range(0, count, 50):  # connect in waves: the server accepts 50 at a time
        clients += await asyncio.gather(
            *(open_client(url, key, symbols) for symbols in plan[start : start + 50])
        )
    latencies: list[float] = []
    frames = 0
    measuring = False

    async def read(connection: ClientConnection) -> None:
        nonlocal frames
        async for text in connection:
            received = time.time() * 1000
            if measuring and '"market_data"' in text:
                frames += 1
                latencies.append(received - json.loads(text)["data"]["timestamp"])

    readers = [asyncio.create_task(read(client)) for client in clients]
    await asyncio.sleep(WARM_SECONDS)
    measuring = True
    await asyncio.sleep(MEASURE_SECONDS)
    measuring = False
    after = rss_kib(pid)
    for client in clients:
        await client.close()
    for reader in readers:
        reader.cancel()
    return Run(count, latencies, frames / MEASURE_SECONDS, (after - before) / count)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))] if ordered else float("nan")


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        ws_port = free_port()
        desk, _url, key = start_desk(
            folder, WEBSOCKET_PORT=str(ws_port), FEED_TICKS_PER_SECOND=str(TICKS_PER_SECOND)
        )
        (folder / "bare_feed.py").write_text(BARE_SERVER)
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(folder / "bare_feed.py"), str(bare_port), str(TICKS_PER_SECOND)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(1.0)
        results: list[tuple[Run, Run]] = []
        try:
            for count in CLIENT_COUNTS:
                desk_run = asyncio.run(
                    measure(f"ws://127.0.0.1:{ws_port}", key, count, worker_pid(desk))
                )
                bare_run = asyncio.run(measure(f"ws://127.0.0.1:{bare_port}", "-", count, bare.pid))
                results.append((desk_run, bare_run))
        finally:
            for server in (desk, bare):
                os.killpg(server.pid, 15)
                server.wait(timeout=30)
    print(f"50 symbols x {TICKS_PER_SECOND} ticks/s, LTP mode, {MEASURE_SECONDS:.0f} s per run")
    for desk_run, bare_run in results:
        p50, p99 = (percentile(desk_run.latencies_ms, q) for q in (0.5, 0.99))
        bare50, bare99 = (percentile(bare_run.latencies_ms, q) for q in (0.5, 0.99))
        target = TARGETS_MS.get(desk_run.clients)
        verdict = ""
        if target is not None:
            verdict = f"  target p99 < {target:g} ms: {'MET' if p99 < target else 'MISSED'}"
        print(
            f"{desk_run.clients:4d} clients: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  "
            f"{desk_run.frames_per_second:8,.0f} ticks/s delivered  "
            f"{desk_run.rss_per_client_kib:6.1f} KiB/client{verdict}"
        )
        print(
            f"      bare server: p50 {bare50:6.1f} ms  p99 {bare99:6.1f} ms  "
            f"{bare_run.frames_per_second:8,.0f} ticks/s  "
            f"(desk/bare: p99 {p99 / max(bare99, 0.5):.2f}x, "
            f"rate {desk_run.frames_per_second / max(bare_run.frames_per_second, 1):.2f}x)"
        )
    print(
        "memory per client: RSS growth of the desk's worker while the clients are connected"
        " (the one-client figure includes the feed's first subscriptions)"
    )


if __name__ == "__main__":
    main()
