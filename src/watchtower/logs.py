"""Logging set-up: one line per event on stderr, journald-friendly, secrets redacted.

Under systemd (``JOURNAL_STREAM`` names our stderr) each line is
``<N>logger: message`` — the ``<N>`` syslog priority prefix of sd-daemon(3), which
journald turns into the entry's priority, and no timestamp (journald adds its own).
Elsewhere each line is ``2025-01-31T07:00:00.123Z INFO logger: message`` (UTC).

One event is always one line: newlines and other control characters in messages and
tracebacks are escaped (``\\n``, ``\\x1b``), so a hostile feed title cannot forge log
lines or terminal escapes, and a traceback stays one journal entry.

Secrets registered with :func:`redact` are replaced by ``***`` wherever they would
appear: message, arguments, exception text. Register every secret as soon as the
configuration is loaded (webhook secrets, SMTP password, the store URL's password).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from datetime import UTC, datetime
from typing import Protocol, TextIO
from urllib.parse import quote, unquote

from watchtower.masking import url_password

log = logging.getLogger(__name__)

MASK = "***"

# Libraries that log every request, job run or migration step at INFO (and httpx logs
# full URLs, which may carry tokens): kept at WARNING.
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "apscheduler",
    "asyncio",
    "aiosmtplib",
    "alembic",
    "trafilatura",
    "htmldate",
    "courlan",
    "justext",
    "charset_normalizer",
)

_PRIORITY = {  # syslog priorities, sd-daemon(3)
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class _Secret(Protocol):
    def get_secret_value(self) -> str: ...


class _Redactions:
    """The process-wide set of secret values, compiled into one pattern."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, values: set[str]) -> None:
        with self._lock:
            self._values |= values
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    def apply(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    @property
    def active(self) -> bool:
        return self._pattern is not None


_REDACTIONS = _Redactions()


def redact(*secrets: str | _Secret | None) -> None:
    """Register secret values that must never appear in any log line.

    Accepts plain strings, pydantic ``SecretStr`` (anything with
    ``get_secret_value()``) and ``None`` (ignored). The percent-encoded form is
    registered too, so a password inside a logged URL is caught. Registration is
    permanent for the process (a reload may add more).
    """
    values: set[str] = set()
    for secret in secrets:
        value = secret if isinstance(secret, str) or secret is None else secret.get_secret_value()
        if not value:
            continue
        values.add(value)
        values.add(quote(value, safe=""))
    if values:
        _REDACTIONS.add(values)


def redact_url(url: str | None) -> None:
    """Register the password inside a URL (e.g. the store's ``postgresql://u:pw@host/db``)."""
    password = url_password(url)
    if password:
        redact(password, unquote(password))


def forget_secrets() -> None:
    """Drop every registered secret (for tests)."""
    _REDACTIONS.clear()


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    return _REDACTIONS.apply(text)


class RedactingFilter(logging.Filter):
    """Replaces registered secrets in a record's message and arguments with ``***``.

    When a secret is found, the record's ``msg`` becomes the fully formatted, redacted
    message and ``args`` becomes empty, so no handler can format the secret back in.
    Always lets the record through.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _REDACTIONS.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's error path
            return True
        cleaned = _REDACTIONS.apply(message)
        if cleaned != message:
            record.msg = cleaned
            record.args = None
        if record.exc_text:
            record.exc_text = _REDACTIONS.apply(record.exc_text)
        return True


class OneLineFormatter(logging.Formatter):
    """Formats a record as one line; ``journal=True`` gives ``<N>logger: message``."""

    def __init__(self, *, journal: bool) -> None:
        super().__init__()
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            message = f"{message} | {record.exc_text}"
        if record.stack_info:
            message = f"{message} | {self.formatStack(record.stack_info)}"
        message = escape_line(_REDACTIONS.apply(message))
        if self.journal:
            return f"<{_priority(record.levelno)}>{record.name}: {message}"
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        millis = int(record.msecs)
        return f"{stamp}.{millis:03d}Z {record.levelname} {record.name}: {message}"


def escape_line(text: str) -> str:
    """``text`` on one line: newline → ``\\n``, other control characters → ``\\xNN``."""
    return _CONTROL.sub(_escape_char, text)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    return f"\\x{ord(char):02x}"


def _priority(levelno: int) -> int:
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return _PRIORITY[level]
    return _PRIORITY[logging.DEBUG]


def journal_stream(stream: TextIO, environ: dict[str, str] | None = None) -> bool:
    """True when ``stream`` is the journald stream systemd named in ``JOURNAL_STREAM``.

    systemd sets ``JOURNAL_STREAM=<device>:<inode>`` of the stderr it connected to
    the journal; a child whose stderr was redirected elsewhere inherits the variable,
    so the device and inode are compared (systemd.exec(5)).
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev, ino = (int(part) for part in value.split(":", 1))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


_HANDLER_MARK = "_watchtower_handler"


def setup_logging(
    level: str | int = "INFO",
    *,
    stream: TextIO | None = None,
    journal: bool | None = None,
) -> None:
    """Send all logging to stderr (or ``stream``), one line per event, secrets redacted.

    ``level`` is a level name (``DEBUG``, ``INFO``, ``WARNING``, ``ERROR``, any case) or
    number; an unknown name raises ``ValueError``. ``journal`` forces the journald form
    on or off; by default it is on when ``JOURNAL_STREAM`` names the stream. Calling it
    again (after a reload) replaces the handler it installed before and keeps any
    others. Chatty libraries (:data:`NOISY_LOGGERS`) are held at WARNING.
    """
    levelno = _level(level)
    out = sys.stderr if stream is None else stream
    use_journal = journal_stream(out) if journal is None else journal

    handler = logging.StreamHandler(out)
    handler.setFormatter(OneLineFormatter(journal=use_journal))
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)

    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(levelno)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(levelno, logging.WARNING))
    logging.captureWarnings(True)


def _level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelNamesMapping().get(level.strip().upper())
    if value is None:
        raise ValueError(f"unknown log level {level!r} (expected DEBUG, INFO, WARNING or ERROR)")
    return value
