"""Config field types: durations, sizes, URLs, selectors… each with its own message.

A validator raises :class:`Invalid` with the reason shown after the quoted value, e.g.
``"5x" is not a duration (expected e.g. 30s, 15m, 6h, 1d, 1h30m)``.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
)

from watchtower.masking import mask_url, public_url
from watchtower.units import (
    DURATION_EXAMPLES,
    UnitError,
    parse_bytesize,
    parse_duration,
    shown,
)
from watchtower.yamlpos import Loc

# --------------------------------------------------------------------------- field types


class Invalid(ValueError):
    """A field validator's complaint: ``reason`` follows the (quoted) value if ``echo``."""

    def __init__(self, reason: str, *, echo: bool = True) -> None:
        self.reason = reason
        self.echo = echo
        super().__init__(reason)


class Problems(ValueError):
    """Several problems found by a model validator, each ``(relative key path, message)``."""

    def __init__(self, items: list[tuple[Loc, str]]) -> None:
        self.items = items
        super().__init__("; ".join(message for _, message in items))


def _web_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f'scheme "{parts.scheme}"' if parts.scheme else "no scheme"
        raise Invalid(f"{scheme} is not allowed (expected an http:// or https:// URL)", echo=False)
    if not parts.hostname:
        raise Invalid("has no host name (expected e.g. https://example.org/feed.xml)", echo=False)
    return value.strip()


def _regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise Invalid(
            f"is not a valid regular expression: {exc} (expected a Python regex)"
        ) from exc
    return value


def _css(value: str) -> str:
    import soupsieve

    try:
        soupsieve.compile(value)
    except (soupsieve.SelectorSyntaxError, ValueError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise Invalid(
            f"is not a CSS selector: {detail} (expected e.g. main, article .body)"
        ) from exc
    return value


def _email_address(value: str) -> str:
    _name, address = parseaddr(value)
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+", address):
        raise Invalid("is not an email address (expected e.g. analyst@example.org)")
    return value


def _header_safe(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Invalid("contains control characters or line breaks (expected one line)")
    return value


def _listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid("is not HOST:PORT (expected e.g. 127.0.0.1:9464 or [::1]:9464)")
    return value


def _cron(value: str) -> str:
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value, timezone="UTC")
    except ValueError as exc:
        raise Invalid(
            f"is not a 5-field cron expression: {exc} "
            '(expected minute hour day month weekday, e.g. "0 7 * * *")'
        ) from exc
    return value


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (KeyError, ValueError) as exc:
        raise Invalid("is not a known time zone (expected e.g. UTC, Asia/Seoul)") from exc
    return value


def _no_bare_number(value: object) -> None:
    """A duration in the config file must name its unit: ``every: 30`` is ambiguous."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise UnitError(
            value, f"is a number without a unit (expected a duration, {DURATION_EXAMPLES})"
        )


def _duration(value: object) -> timedelta:
    _no_bare_number(value)
    return parse_duration(value)


def _duration_allowing_zero(value: object) -> timedelta:
    _no_bare_number(value)
    return parse_duration(value, allow_zero=True)


def _one_or_list(value: object) -> object:
    """A single string where a list of strings is expected is a list of one."""
    return [value] if isinstance(value, str) else value


def _none_is_empty(value: object, empty: Any) -> Any:
    """``key:`` with nothing after it (every child commented out) means the default."""
    return empty if value is None else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A timedelta written "20s", "30m", "6h", "1d" or "1h30m"; > 0; a bare number is refused."""
DurationOrZero = Annotated[timedelta, BeforeValidator(_duration_allowing_zero)]
"""Like :data:`Duration` but 0 is allowed (e.g. ``service.jitter: 0s``)."""
ByteSize = Annotated[int, BeforeValidator(parse_bytesize)]
"""A byte count written "10MB" (1000s), "64MiB" (1024s) or as a plain int; must be > 0."""
WebUrl = Annotated[str, AfterValidator(_web_url)]
Regex = Annotated[str, AfterValidator(_regex)]
CssSelector = Annotated[str, AfterValidator(_css)]
EmailAddress = Annotated[str, AfterValidator(_email_address)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OneLine = Annotated[str, AfterValidator(_header_safe)]


def _resolve(path: Path, info: ValidationInfo) -> Path:
    """``path`` made absolute against the config folder (when loading from a file)."""
    base = (info.context or {}).get("base")
    path = path.expanduser()
    if base is None or path.is_absolute():
        return path
    return Path(os.path.normpath(Path(base) / path))


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        coerce_numbers_to_str=True,
        populate_by_name=True,
        validate_default=True,
    )
    #: Field names that are not YAML keys (set by the loader).
    not_yaml: ClassVar[frozenset[str]] = frozenset()


_DB_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9_+.-]*)://(?P<rest>[^?]*)(?P<query>\?.*)?", re.S
)


def _store_url(value: str, info: ValidationInfo) -> str:
    """Check a database URL; make a relative SQLite path absolute; pick psycopg 3.

    Parsed by hand (SQLAlchemy's URL grammar) so that loading a config does not import
    SQLAlchemy; the store turns the result into an engine.
    """
    match = _DB_URL.fullmatch(value.strip())
    if match is None:
        raise Invalid(
            "is not a database URL (expected e.g. sqlite:///var/watchtower.db or "
            "postgresql://user@host/dbname)",
            echo=False,
        )
    scheme, rest, query = match["scheme"], match["rest"], match["query"] or ""
    if scheme in ("postgresql", "postgres"):
        scheme = "postgresql+psycopg"
    base = (info.context or {}).get("base")
    database = rest[1:] if rest.startswith("/") else ""
    if scheme.split("+")[0] == "sqlite" and base and database not in ("", ":memory:"):
        path = Path(database).expanduser()
        if not database.startswith("file:") and not path.is_absolute():
            rest = "/" + os.path.normpath(Path(base) / path)
        elif path.is_absolute():
            rest = "/" + str(path)
    return f"{scheme}://{rest}{query}"


def _masked_store(store: str) -> str:
    """The store URL with any password replaced by ``***``."""
    return mask_url(store)


def _public_url(url: str) -> str:
    return public_url(url)


def _duplicate_names(sources: object) -> list[tuple[Loc, str]]:
    """Problems for sources whose ``name`` repeats an earlier one (case-insensitive)."""
    seen: dict[str, int] = {}
    problems: list[tuple[Loc, str]] = []
    for index, source in enumerate(sources if isinstance(sources, list) else []):
        name = source.get("name") if isinstance(source, dict) else getattr(source, "name", None)
        if not isinstance(name, str):
            continue
        first = seen.setdefault(name.strip().casefold(), index)
        if first != index:
            problems.append(
                (
                    ("sources", index, "name"),
                    f"{shown(name)} is already the name of "
                    f"sources[{first}] (expected a unique name)",
                )
            )
    return problems
