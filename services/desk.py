"""The desk's services wired together once, from settings: what the web app and the CLI share."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from config import Settings
from database.engine import Databases
from services.accounts import AccountService
from services.api_keys import ApiKeyService
from services.api_log import ApiLogWriter
from services.clock import Clock, SystemClock
from services.events import EventBus
from services.rate_limits import RateLimits
from services.secretbox import SecretBox
from services.two_factor import TwoFactorService

if TYPE_CHECKING:
    from services.market.service import MarketData
    from services.orders.pipeline import OrderPipeline
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
    events: EventBus = field(default_factory=EventBus)
    _market: MarketData | None = field(default=None, repr=False)
    _market_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _sandbox: SandboxEngine | None = field(default=None, repr=False)
    _pipeline: OrderPipeline | None = field(default=None, repr=False)
    _runner: SandboxRunner | None = field(default=None, repr=False)
    _gtt: GttBook | None = field(default=None, repr=False)

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

            self._pipeline = OrderPipeline(self)
        return self._pipeline

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Desk:
        clock = clock or SystemClock()
        databases = Databases.from_settings(settings)
        pepper = settings.api_key_pepper
        return cls(
            settings=settings,
            clock=clock,
            databases=databases,
            accounts=AccountService(databases, pepper, clock, settings.default_broker),
            two_factor=TwoFactorService(
                databases, SecretBox(settings.app_key, "totp"), pepper, clock
            ),
            api_keys=ApiKeyService(databases, pepper, clock),
            api_log=ApiLogWriter(databases),
            rate_limits=RateLimits.from_url(settings.redis_url),
        )

    def start_background(self) -> None:
        """Start the desk's singletons (the sandbox heartbeat): once, in the serving process."""
        from services.sandbox.runner import SandboxRunner

        if self._runner is None:
            self._runner = SandboxRunner(
                self.sandbox, auto_reset=self.settings.sandbox_auto_reset, gtt_check=self.gtt.check
            )
            self._runner.start()

    def close(self) -> None:
        if self._runner is not None:
            self._runner.stop()
        self.api_log.flush()
        if self._pipeline is not None:
            self._pipeline.flush()
        if self._sandbox is not None:
            self._sandbox.close()
        self.databases.dispose()
