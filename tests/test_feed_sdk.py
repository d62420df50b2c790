"""The market-data WebSocket, driven end to end by the real `openalgo` SDK's feed client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket
from openalgo import api as OpenAlgo

from tests.conftest import STRONG_PASSWORD
from tests.support import RunningDesk, served_desk

pytestmark = pytest.mark.slow


desk = served_desk("feed-desk", FEED_TICKS_PER_SECOND="10")


@pytest.fixture(scope="module")
def api_key(desk: RunningDesk) -> str:
    return desk.admin_key(STRONG_PASSWORD)


@pytest.fixture
def feed(desk: RunningDesk, api_key: str) -> Iterator[OpenAlgo]:
    client = OpenAlgo(api_key=api_key, host=desk.url, ws_url=desk.ws_url, timeout=60)
    assert client.connect() is True
    yield client
    client.disconnect()


def wait_for(condition: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


def test_ltp_stream_carries_the_simulated_price_and_the_server_time(
    feed: OpenAlgo,
) -> None:
    frames: list[dict[str, Any]] = []
    assert feed.subscribe_ltp([{"exchange": "NSE", "symbol": "SBIN"}], frames.append)
    wait_for(lambda: len(frames) >= 3)
    frame = frames[-1]
    assert frame["type"] == "market_data"
    assert frame["mode"] == 1
    assert (frame["exchange"], frame["symbol"]) == ("NSE", "SBIN")
    assert frame["data"]["ltp"] > 0
    # data.timestamp is the server's epoch milliseconds when the tick was produced.
    assert abs(frame["data"]["timestamp"] - time.time() * 1000) < 5_000
    stored = feed.get_ltp()["ltp"]["NSE"]["SBIN"]
    assert stored["ltp"] > 0
    # The stream and the REST quote price the same simulated market.
    quote = feed.quotes(symbol="SBIN", exchange="NSE")["data"]
    assert abs(stored["ltp"] - quote["ltp"]) <= quote["ltp"] * 0.01


def test_quote_and_depth_streams_have_their_fields(feed: OpenAlgo) -> None:
    quotes: list[dict[str, Any]] = []
    depths: list[dict[str, Any]] = []
    assert feed.subscribe_quote([{"exchange": "NSE", "symbol": "RELIANCE"}], quotes.append)
    assert feed.subscribe_depth([{"exchange": "NSE", "symbol": "INFY"}], depths.append)
    wait_for(lambda: quotes and depths)
    quote = quotes[-1]["data"]
    assert quotes[-1]["mode"] == 2
    assert quote["low"] <= quote["ltp"] <= quote["high"]
    assert quote["close"] > 0
    assert quote["volume"] >= 0
    assert quote["change"] == pytest.approx(quote["ltp"] - quote["close"], abs=0.011)
    depth = depths[-1]["data"]["depth"]
    assert depths[-1]["mode"] == 3
    assert len(depth["buy"]) == 5 and len(depth["sell"]) == 5
    assert depth["buy"][0]["price"] < depth["sell"][0]["price"]
    assert all(level["quantity"] > 0 for level in depth["buy"] + depth["sell"])
    assert feed.get_depth()["depth"]["NSE"]["INFY"]["ltp"] > 0


def test_an_index_streams_under_its_index_exchange(feed: OpenAlgo) -> None:
    frames: list[dict[str, Any]] = []
    assert feed.subscribe_ltp([{"exchange": "NSE_INDEX", "symbol": "NIFTY"}], frames.append)
    wait_for(lambda: frames)
    assert frames[-1]["exchange"] == "NSE_INDEX"
    assert frames[-1]["data"]["ltp"] > 1000


def test_unsubscribed_symbols_get_nothing(feed: OpenAlgo) -> None:
    frames: list[dict[str, Any]] = []
    assert feed.subscribe_ltp(
        [{"exchange": "NSE", "symbol": "TCS"}, {"exchange": "NSE", "symbol": "ITC"}],
        frames.append,
    )
    wait_for(lambda: {f["symbol"] for f in frames} == {"TCS", "ITC"})
    assert feed.unsubscribe_ltp([{"exchange": "NSE", "symbol": "TCS"}])
    time.sleep(0.5)  # frames already on the wire when the unsubscribe arrived
    frames.clear()
    wait_for(lambda: sum(1 for f in frames if f["symbol"] == "ITC") >= 5)
    assert all(frame["symbol"] == "ITC" for frame in frames)
    assert "HDFCBANK" not in feed.get_ltp()["ltp"].get("NSE", {})


def test_order_updates_reach_a_client_that_asked_for_them(feed: OpenAlgo) -> None:
    updates: list[dict[str, Any]] = []
    assert feed.subscribe_orders(updates.append)
    placed = feed.placeorder(symbol="SBIN", exchange="NSE", action="BUY", quantity=1,
                             price_type="MARKET", product="MIS")  # fmt: skip
    assert placed["status"] == "success", placed
    update = wait_for(lambda: next((u for u in updates if u["orderid"] == placed["orderid"]), None))
    assert update["order_status"] == "complete"
    assert update["mode"] == "analyze"
    assert update["filled_quantity"] == 1


class RawClient:
    """websocket-client without the SDK, to send what the SDK never would."""

    def __init__(self, url: str) -> None:
        self.socket = websocket.create_connection(url, timeout=5)

    def send(self, message: dict[str, Any] | str) -> None:
        self.socket.send(message if isinstance(message, str) else json.dumps(message))

    def receive(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.socket.recv())
        return found

    def close_code(self) -> int | None:
        """Read until the server closes; its close code."""
        try:
            while True:
                opcode, data = self.socket.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None
        except websocket.WebSocketConnectionClosedException:
            return None


def test_a_bad_key_is_refused_and_the_connection_closed(desk: RunningDesk) -> None:
    raw = RawClient(desk.ws_url)
    raw.send({"action": "authenticate", "api_key": "0" * 64})
    answer = raw.receive()
    assert answer == {"status": "error", "code": "AUTHENTICATION_ERROR",
                      "message": "Invalid API key"}  # fmt: skip
    assert raw.close_code() == 4403
    sdk = OpenAlgo(api_key="f" * 64, host=desk.url, ws_url=desk.ws_url, auto_reconnect=False)
    assert sdk.connect() is False


def test_a_missing_key_is_refused(desk: RunningDesk) -> None:
    raw = RawClient(desk.ws_url)
    raw.send({"action": "authenticate"})
    assert raw.receive()["message"] == "API key is required"
    assert raw.close_code() == 4401


def test_bad_messages_get_errors_without_dropping_the_connection(
    desk: RunningDesk, api_key: str
) -> None:
    raw = RawClient(desk.ws_url)
    raw.send({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}]})
    assert raw.receive()["code"] == "NOT_AUTHENTICATED"
    raw.send("{not json")
    assert raw.receive()["code"] == "INVALID_JSON"
    raw.send({"action": "authenticate", "api_key": api_key})
    assert raw.receive()["type"] == "auth"
    raw.send({"action": "subscribe", "symbols": [{"symbol": "SBIN", "exchange": "NSE"}],
              "mode": "Candles"})  # fmt: skip
    assert raw.receive()["code"] == "INVALID_MODE"
    raw.send({"action": "dance"})
    assert raw.receive()["code"] == "INVALID_ACTION"
    raw.send({"action": "subscribe", "mode": 1, "request_id": "r1",
              "symbols": [{"symbol": "SBIN", "exchange": "NSE"},
                          {"symbol": "NOSUCHSTOCK", "exchange": "NSE"},
                          {"symbol": "SBIN", "exchange": "NYSE"}]})  # fmt: skip
    ack = raw.receive()
    assert ack["type"] == "subscribe" and ack["status"] == "partial"
    assert ack["request_id"] == "r1"
    assert [item["status"] for item in ack["subscriptions"]] == ["success", "error", "error"]
    assert ack["subscriptions"][0]["mode"] == "LTP"
    assert "NOSUCHSTOCK" in ack["subscriptions"][1]["message"]
    assert "exchange must be one of" in ack["subscriptions"][2]["message"]
    raw.send({"action": "ping", "timestamp": 123, "_pingId": "p"})
    pong = next(m for m in iter(raw.receive, None) if m.get("type") == "pong")
    assert pong["client_timestamp"] == 123 and pong["_pingId"] == "p"
    raw.socket.close()
