"""One error hierarchy for the whole desk. `blueprints/errors.py` maps it to responses.

Each error carries the HTTP status a client should see and a message a person can act on.
Validation errors also carry `errors`: field name -> list of what was expected.
"""

from __future__ import annotations


class DalalError(Exception):
    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors or {}


class InvalidRequest(DalalError):
    status = 400
    code = "invalid_request"


class PayloadTooLarge(DalalError):
    status = 413
    code = "payload_too_large"


class AuthenticationRequired(DalalError):
    status = 401
    code = "api_key_missing"


class InvalidApiKey(DalalError):
    status = 403
    code = "invalid_api_key"


class PermissionDenied(DalalError):
    status = 403
    code = "forbidden"


class BrokerSessionExpired(DalalError):
    """A valid key whose live broker login is missing or expired (API.md D2)."""

    status = 403
    code = "broker_session_expired"


class NotFound(DalalError):
    status = 404
    code = "not_found"


class Conflict(DalalError):
    status = 409
    code = "conflict"


class RateLimited(DalalError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TradingError(DalalError):
    """Base of order-side failures (pipeline, risk, broker)."""


class RiskRejected(TradingError):
    status = 422
    code = "risk_rejected"


class BrokerError(TradingError):
    status = 502
    code = "broker_error"


class BrokerUnavailable(BrokerError):
    status = 503
    code = "broker_unavailable"


class BrokerRateLimited(BrokerUnavailable):
    """The broker answered 429: the request was refused, not executed, so it may be resent."""

    status = 429
    code = "broker_rate_limited"


class BrokerNotConfigured(BrokerError):
    """A live broker chosen without the credentials it needs (Settings -> Broker)."""

    status = 400
    code = "broker_not_configured"


class OrderRejected(BrokerError):
    status = 422
    code = "order_rejected"


class InsufficientFunds(OrderRejected):
    code = "insufficient_funds"


# Account-side errors: raised by services/accounts.py and shown on pages or by the CLI.
class AccountError(DalalError):
    status = 400
    code = "account_error"


class WeakPassword(AccountError):
    code = "weak_password"


class UserExists(AccountError):
    status = 409
    code = "user_exists"


class SetupClosed(AccountError):
    status = 403
    code = "setup_closed"


class LoginFailed(AccountError):
    status = 401
    code = "login_failed"
