"""All models, imported so each base's metadata is complete for Alembic."""

from database.models.gtt import SandboxGtt
from database.models.instruments import InstrumentRow
from database.models.latency import BrokerCall, OrderLatency
from database.models.logs import ApiLog
from database.models.main import (
    ApiKey,
    AuditEvent,
    BrokerAccount,
    DeskSetting,
    PendingOrder,
    RecoveryCode,
    RiskLimit,
    User,
)
from database.models.sandbox import SandboxAccount

__all__ = [
    "ApiKey",
    "ApiLog",
    "AuditEvent",
    "BrokerAccount",
    "BrokerCall",
    "DeskSetting",
    "InstrumentRow",
    "OrderLatency",
    "PendingOrder",
    "RecoveryCode",
    "RiskLimit",
    "SandboxAccount",
    "SandboxGtt",
    "User",
]
