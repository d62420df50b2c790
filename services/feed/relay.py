"""One feed for several desk processes, through Redis (when REDIS_URL is set).

Exactly one process runs the upstream source: the one holding the leader key (a Redis key
with a short expiry that its holder keeps renewing). It publishes every tick batch and every
status change on one channel; the other processes receive them and hand them to their own
consumers (WebSocket clients, Socket.IO, the matcher). Each process writes what its
consumers want into a shared hash, refreshed every second; the leader subscribes its source
to the union. If the leader dies its key expires and another process takes over, starting
the source there and re-subscribing everything still wanted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

import redis

from services.feed.hub import FeedHub, FeedStatus
from services.feed.model import FeedMode, Key, Tick

log = logging.getLogger(__name__)

CHANNEL = "dalal:feed:ticks"
DEMAND = "dalal:feed:demand"
LEADER = "dalal:feed:leader"
LEADER_TTL_MS = 5_000  # a leader silent this long is replaced
REFRESH_SECONDS = 1.0
STALE_DEMAND_SECONDS = 5.0  # a process that stopped refreshing its demand is ignored


class RedisRelay:
    def __init__(self, url: str, hub: FeedHub) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=5, health_check_interval=10)
        self._hub = hub
        self.process_id = uuid.uuid4().hex
        self.is_leader = False
        self._stopping = threading.Event()
        self._demand_changed = threading.Event()
        self._threads: list[threading.Thread] = []
        hub.add_consumer(self._publish_ticks)
        hub.add_status_listener(self._publish_status)
        hub.add_demand_listener(self._demand_changed.set)

    def start(self) -> None:
        for target, name in ((self._coordinate, "feed-relay"), (self._listen, "feed-relay-in")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        self._demand_changed.set()
        for thread in self._threads:
            thread.join(5)
        try:
            self._redis.hdel(DEMAND, self.process_id)
            if self.is_leader:
                self._release_leadership()
        except redis.RedisError:
            log.warning("could not tidy the feed's Redis keys on stop")
        self._redis.close()

    # ------------------------------------------------------------------ leadership, demand

    def _coordinate(self) -> None:
        while not self._stopping.is_set():
            try:
                self._publish_demand()
                self._hold_or_seek_leadership()
                if self.is_leader:
                    self._hub.set_remote_demand(self._remote_demand())
            except redis.RedisError as error:
                log.warning("feed relay cannot reach Redis: %s", error)
                if self.is_leader:  # another process may lead by the time Redis is back
                    self._step_down()
            self._demand_changed.wait(REFRESH_SECONDS)
            self._demand_changed.clear()
        if self.is_leader:
            self._hub.stop()

    def _publish_demand(self) -> None:
        wanted = self._hub.wanted(local_only=True)
        entry = {"at": time.time(), "wanted": [[k[0], k[1], int(m)] for k, m in wanted.items()]}
        self._redis.hset(DEMAND, self.process_id, json.dumps(entry))

    def _remote_demand(self) -> dict[Key, FeedMode]:
        merged: dict[Key, FeedMode] = {}
        now = time.time()
        demands: dict[bytes, bytes] = self._redis.hgetall(DEMAND)  # type: ignore[assignment]
        for process, raw in demands.items():
            if process.decode() == self.process_id:
                continue
            entry = json.loads(raw)
            if now - float(entry["at"]) > STALE_DEMAND_SECONDS:
                continue
            for exchange, symbol, mode in entry["wanted"]:
                key, level = (exchange, symbol), FeedMode(mode)
                if level > merged.get(key, 0):
                    merged[key] = level
        return merged

    def _hold_or_seek_leadership(self) -> None:
        if self.is_leader:
            if self._redis.get(LEADER) == self.process_id.encode():
                self._redis.pexpire(LEADER, LEADER_TTL_MS)
                return
            self._step_down()
        if self._redis.set(LEADER, self.process_id, nx=True, px=LEADER_TTL_MS):
            self.is_leader = True
            log.info("this desk process now runs the market-data source")
            self._hub.start()

    def _step_down(self) -> None:
        self.is_leader = False
        self._hub.stop()

    def _release_leadership(self) -> None:
        if self._redis.get(LEADER) == self.process_id.encode():
            self._redis.delete(LEADER)

    # ------------------------------------------------------------------ ticks both ways

    def _publish_ticks(self, ticks: list[Tick]) -> None:
        if not self.is_leader:
            return  # these came from the leader through Redis: not ours to send again
        batch = [[t.exchange, t.symbol, t.produced_ms, t.payloads] for t in ticks]
        self._send({"ticks": batch})

    def _publish_status(self, status: FeedStatus) -> None:
        if self.is_leader:
            self._send({"status": [status.connected, status.source, status.message]})

    def _send(self, body: dict[str, Any]) -> None:
        body["from"] = self.process_id
        try:
            self._redis.publish(CHANNEL, json.dumps(body, separators=(",", ":")))
        except redis.RedisError as error:
            log.warning("feed relay cannot publish: %s", error)

    def _listen(self) -> None:
        while not self._stopping.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(CHANNEL)
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._receive(message["data"])
            except redis.RedisError as error:
                log.warning("feed relay lost its Redis subscription: %s", error)
                self._stopping.wait(1.0)
            finally:
                pubsub.close()

    def _receive(self, raw: bytes) -> None:
        body = json.loads(raw)
        if body.get("from") == self.process_id:
            return
        if "ticks" in body:
            ticks = [
                Tick(
                    exchange, symbol, produced, {int(mode): data for mode, data in payloads.items()}
                )
                for exchange, symbol, produced, payloads in body["ticks"]
            ]
            self._hub.dispatch(ticks)
        elif "status" in body:
            connected, source, message = body["status"]
            self._hub.announce(FeedStatus(bool(connected), str(source), str(message)))
