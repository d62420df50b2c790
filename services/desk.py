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
from services.secretbox import SecretBox
from services.two_factor import TwoFactorService

if TYPE_CHECKING:
    from services.market.service import MarketData


@dataclass
class Desk:
    settings: Settings
    clock: Clock
    databases: Databases
    accounts: AccountService
    two_factor: TwoFactorService
    api_keys: ApiKeyService
    api_log: ApiLogWriter
    _market: MarketData | None = field(default=None, repr=False)
    _market_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
        )

    def close(self) -> None:
        self.api_log.flush()
        self.databases.dispose()
