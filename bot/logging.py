"""Logging set-up with a redacting filter: a second line of defence against leaked secrets."""

from __future__ import annotations

import logging
import re

# Provider keys, Slack and Discord tokens, Discord interaction tokens (base64 of
# "interaction:…", also inside webhook URLs that discord.py logs at DEBUG), Fernet
# tokens/keys, bearer headers.
_SECRET_PATTERNS = re.compile(
    r"(sk-or-v1-[0-9A-Za-z]{8,}|sk-[0-9A-Za-z_\-]{16,}|fw_[0-9A-Za-z]{12,}"
    r"|xox[abposr]-[0-9A-Za-z\-]{10,}|xapp-[0-9A-Za-z\-]{10,}"
    r"|aW50ZXJhY3Rpb24[0-9A-Za-z_\-]{16,}"
    r"|gAAAAA[0-9A-Za-z_\-=]{20,}"
    r"|[MNO][A-Za-z\d_\-]{23,25}\.[A-Za-z\d_\-]{6}\.[A-Za-z\d_\-]{27,}"
    r"|(?i:bearer)\s+[0-9A-Za-z._\-]{8,})"
)

REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _SECRET_PATTERNS.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites every record's message (args included) and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
        return True


class DemoteToDebug(logging.Filter):
    """Re-levels a library's records to DEBUG, and keeps them only where DEBUG is logged.

    stamina logs every scheduled retry as a WARNING; a retry is routine, and what it led to
    reaches the user (or the log) as routerbot's own sentence. Set on the library's logger, so
    the record is re-levelled before any handler sees it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger().isEnabledFor(logging.DEBUG)


#: Libraries whose chatter belongs in a debug log only: stamina's "stamina.retry_scheduled".
CHATTY_LIBRARIES = ("stamina",)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO; keep it at WARNING.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    for name in CHATTY_LIBRARIES:
        library = logging.getLogger(name)
        library.filters[:] = [f for f in library.filters if not isinstance(f, DemoteToDebug)]
        library.addFilter(DemoteToDebug())
