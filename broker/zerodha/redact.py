"""Keep Kite tokens out of the logs that the SDK's own libraries write.

urllib3 logs every request line at DEBUG, and Kite's logout (`DELETE /session/token`) carries
the access token in its query string; the ticker's WebSocket address carries it too. This
filter, attached to the loggers that can see those addresses, masks token values before any
handler formats the record. It is narrow on purpose: it rewrites only records that mention a
token parameter, and only on these loggers.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(
    r"((?:access_token|request_token|refresh_token|enctoken|checksum|api_secret)=)[^&\s'\"]+"
)
_WATCHED = ("urllib3.connectionpool", "kiteconnect.connect", "kiteconnect.ticker")


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(r"\1***", text)


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit: leave it to the handler
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    for name in _WATCHED:
        logging.getLogger(name).addFilter(RedactTokens())
    _installed = True
