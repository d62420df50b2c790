"""The desk's services wired together once, from settings: what the web app and the CLI share."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from config import Settings
from database.engine import Databases
from services.accounts import AccountService
from services.api_keys import ApiKeyService
from services.api_log import ApiLogWriter
from services.audit import AuditTrail
from services.clock import Clock, SystemClock
from services.events import EventBus
from services.rate_limits import RateLimits
from services.secretbox import SecretBox
from services.two_factor import TwoFactorService

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from services.action_center import ActionCenter
    from services.broker_accounts import BrokerAccounts
    from services.broker_latency import BrokerLatency
    from services.feed.hub import FeedHub
    from services.feed.model import Tick
    from services.feed.relay import RedisRelay
    from services.feed.server import MarketFeedServer
    from services.feed.source import FeedSource
    from services.market.service import MarketData
    from services.orders.pipeline import OrderPipeline
    from services.risk import RiskRules
    from services.sandbox.engine import SandboxEngine
    from services.sandbox.gtt import GttBook
    from services.sandbox.runner import SandboxRunner


@dataclass
class Desk:
    settings: Settings
    clock: Clock
    databases: Databases
    accounts: AccountService
    two_factor: TwoFactorService
    api_keys: ApiKeyService
    api_log: ApiLogWriter
    rate_limits: RateLimits
    audit: AuditTrail
    events: EventBus = field(default_factory=EventBus)
    _market: MarketData | None = field(default=None, repr=False)
    _market_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sandbox: SandboxEngine | None = field(default=None, repr=False)
    _pipeline: OrderPipeline | None = field(default=None, repr=False)
    _runner: SandboxRunner | None = field(default=None, repr=False)
    _gtt: GttBook | None = field(default=None, repr=False)
    _risk: RiskRules | None = field(default=None, repr=False)
    _action_center: ActionCenter | None = field(default=None, repr=False)
    _broker_accounts: BrokerAccounts | None = field(default=None, repr=False)
    _broker_latency: BrokerLatency | None = field(default=None, repr=False)
    _feed: FeedHub | None = field(default=None, repr=False)
    feed_server: MarketFeedServer | None = field(default=None, repr=False)
    feed_relay: RedisRelay | None = field(default=None, repr=False)
    # Whether the tick hub's current source is a live broker (then the paper exchange, which
    # fills on the simulated market, must not match on its ticks).
    feed_is_live: bool = field(default=False, repr=False)

    @property
    def market(self) -> MarketData:
        """The instrument master, calendar and market-data source, built on first use."""
        if self._market is None:
            with self._market_lock:
                if self._market is None:
                    from services.market.service import MarketData, MarketSettings

                    self._market = MarketData(
                        self.databases,
                        self.clock,
                        MarketSettings(
                            always_open=self.settings.market_mode == "always_open",
                            seed=self.settings.market_seed,
                        ),
                    )
        return self._market

    @property
    def sandbox(self) -> SandboxEngine:
        """The paper-trading exchange: one per desk process, state rebuilt from its database."""
        if self._sandbox is None:
            market = self.market
            with self._market_lock:
                if self._sandbox is None:
                    from services.sandbox.engine import SandboxEngine
                    from services.sandbox.settings import SandboxSettings

                    self._sandbox = SandboxEngine(
                        self.databases,
                        market,
                        self.clock,
                        SandboxSettings(starting_capital=self.settings.sandbox_starting_capital),
                        events=self.events,
                    )
        return self._sandbox

    @property
    def gtt(self) -> GttBook:
        """Good-till-triggered orders, fired through the order pipeline when prices cross."""
        if self._gtt is None:
            from services.sandbox.gtt import GttBook, pipeline_placer

            self._gtt = GttBook(self.databases, self.market, self.clock, pipeline_placer(self))
        return self._gtt

    @property
    def orders(self) -> OrderPipeline:
        """The one order pipeline every source (API, pages, webhooks, strategies) goes through."""
        if self._pipeline is None:
            from services.orders.pipeline import OrderPipeline

            self._pipeline = OrderPipeline(self, gates=[self.risk])
        return self._pipeline

    @property
    def risk(self) -> RiskRules:
        """Each user's pre-trade rules (order value, open positions, daily loss, kill switch)."""
        if self._risk is None:
            from services.risk import RiskRules

            self._risk = RiskRules(self)
        return self._risk

    @property
    def broker_accounts(self) -> BrokerAccounts:
        """Live-broker credentials and sessions, sealed with the desk's Fernet keys."""
        if self._broker_accounts is None:
            from services.broker_accounts import BrokerAccounts, fernet_keys

            keys = fernet_keys(self.settings.broker_encryption_keys, self.settings.app_key)
            self._broker_accounts = BrokerAccounts(self.databases, self.clock, keys)
        return self._broker_accounts

    @property
    def broker_latency(self) -> BrokerLatency:
        """Every live-broker API call's round trip (the latency monitor)."""
        if self._broker_latency is None:
            from services.broker_latency import BrokerLatency

            self._broker_latency = BrokerLatency(self.databases, self.clock)
        return self._broker_latency

    @property
    def action_center(self) -> ActionCenter:
        """Orders held for the trader's approval in semi-auto mode."""
        if self._action_center is None:
            from services.action_center import ActionCenter

            self._action_center = ActionCenter(self)
        return self._action_center

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Desk:
        clock = clock or SystemClock()
        databases = Databases.from_settings(settings)
        pepper = settings.api_key_pepper
        audit = AuditTrail(databases, clock, settings.audit_retention_days)
        return cls(
            settings=settings,
            clock=clock,
            databases=databases,
            accounts=AccountService(databases, pepper, clock, settings.default_broker, audit),
            two_factor=TwoFactorService(
                databases, SecretBox(settings.app_key, "totp"), pepper, clock, audit
            ),
            api_keys=ApiKeyService(databases, pepper, clock, audit),
            api_log=ApiLogWriter(databases),
            rate_limits=RateLimits.from_url(settings.redis_url),
            audit=audit,
        )

    @property
    def feed(self) -> FeedHub:
        """The tick hub: one upstream subscription per instrument for every consumer."""
        if self._feed is None:
            market, rate = self.market, self.settings.feed_ticks_per_second  # before the lock:
            with self._market_lock:  # building the market takes it too
                if self._feed is None:
                    from services.feed.hub import FeedHub

                    self._feed = FeedHub(lambda: self._open_feed_source(market, rate))
        return self._feed

    def _open_feed_source(self, market: MarketData, rate: float) -> FeedSource:
        """The tick hub's source at each (re)connection: FEED_BROKER_USER's live broker
        while that session is logged in, else the simulated market."""
        from services.feed.source import SimulatedFeed

        live = self._live_feed()
        self.feed_is_live = live is not None
        return live if live is not None else SimulatedFeed(market, rate)

    def _live_feed(self) -> FeedSource | None:
        username = self.settings.feed_broker_user
        if not username:
            return None
        from broker.base import TradingMode, broker_for
        from services.errors import DalalError

        try:
            user = self.accounts.get_by_username(username)
            broker = broker_for(user.broker, user.id, self)
            if broker.mode is not TradingMode.LIVE or not broker.session_status().connected:
                log.warning(
                    "FEED_BROKER_USER %s has no live broker session; streaming the simulated "
                    "market until the next reconnection",
                    username,
                )
                return None
            return broker.feed()
        except DalalError as e:
            log.warning("live market data unavailable (%s); streaming the simulated market", e)
            return None

    def feed_key(self, symbol: str, exchange: str) -> tuple[str, str] | None:
        """(exchange, symbol) of a listed instrument, None when there is no such contract."""
        instrument = self.market.master.get(symbol, exchange)
        return None if instrument is None else (instrument.exchange.value, instrument.symbol)

    def start_background(self) -> None:
        """Start the desk's singletons (the sandbox heartbeat, the market-data feed and its
        WebSocket server): once, in the serving process."""
        from services.pnl_history import pnl_history
        from services.sandbox.runner import SandboxRunner

        pnl_history(self)  # the dashboard's P&L curve records from start-up, not first visit

        if self._runner is None:
            self._runner = SandboxRunner(
                self.sandbox,
                auto_reset=self.settings.sandbox_auto_reset,
                gtt_check=self._every_second,
            )
            self._runner.start()
        if self.feed_server is None:
            self._start_feed()

    def _every_second(self) -> None:
        """The heartbeat's own round: fire due GTTs, expire approvals whose day has ended
        (so an open Action Center page sees them go when they go, not on its next visit)."""
        self.gtt.check()
        self.action_center.expire_stale()

    def _start_feed(self) -> None:
        from broker.base import registered_brokers
        from services.feed.matching import sandbox_matcher
        from services.feed.server import FeedServerSettings, MarketFeedServer

        market = self.market
        match = sandbox_matcher(self.sandbox, lambda: market.master)

        def paper_matcher(ticks: list[Tick]) -> None:
            if not self.feed_is_live:  # the paper exchange fills on the simulated market
                match(ticks)

        self.feed.add_consumer(paper_matcher)
        if self.settings.redis_url:
            from services.feed.relay import RedisRelay

            # Several desk processes share one source: whichever leads runs it.
            self.feed_relay = RedisRelay(self.settings.redis_url, self.feed)
            self.feed_relay.start()
        else:
            self.feed.start()
        server = MarketFeedServer(
            FeedServerSettings(
                host=self.settings.websocket_host,
                port=self.settings.websocket_port,
                slow_client_seconds=self.settings.websocket_slow_client_seconds,
                supported_brokers=tuple(sorted(registered_brokers())),
            ),
            self.feed,
            self.api_keys.verify,
            self.feed_key,
        )
        try:
            server.start()
        except OSError as error:
            # The desk stays useful without streaming; say so plainly rather than die.
            log.error("%s; streaming market data is off until the desk restarts", error)
            return
        self.events.subscribe("order", server.on_order)
        self.feed_server = server

    def close(self) -> None:
        if self.feed_server is not None:
            self.feed_server.stop()
        if self.feed_relay is not None:
            self.feed_relay.stop()
        if self._feed is not None:
            self._feed.stop()
        if self._runner is not None:
            self._runner.stop()
        self.api_log.flush()
        if self._broker_latency is not None:
            self._broker_latency.flush()
        self.audit.close()
        if self._pipeline is not None:
            self._pipeline.flush()
        if self._sandbox is not None:
            self._sandbox.close()
        self.databases.dispose()
