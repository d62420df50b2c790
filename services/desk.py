"""The desk's services wired together once, from settings: what the web app and the CLI share."""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from database.engine import Databases
from services.accounts import AccountService
from services.api_keys import ApiKeyService
from services.api_log import ApiLogWriter
from services.clock import Clock, SystemClock
from services.secretbox import SecretBox
from services.two_factor import TwoFactorService


@dataclass
class Desk:
    settings: Settings
    clock: Clock
    databases: Databases
    accounts: AccountService
    two_factor: TwoFactorService
    api_keys: ApiKeyService
    api_log: ApiLogWriter

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
