"""Watchtower's configuration: one YAML file → a frozen, validated :class:`Config`.

:func:`load_config` reads the file with ruamel.yaml (so every key keeps its line),
replaces ``${VAR}`` / ``${VAR:-default}`` in string values (``$${`` is a literal ``${``),
validates with the pydantic models below (unknown keys are rejected) and resolves
relative paths against the config file's folder. Anything wrong raises
:class:`~watchtower.errors.ConfigError` listing EVERY problem, one per line, as
``FILE:LINE: key.path: what is wrong (what was expected)``. Secret values (webhook
secrets, SMTP passwords, anything that came from the environment) never appear in
messages or in :meth:`Config.summary`.

Every key is documented in ``config/watchtower.example.yaml``; a test keeps the two in step.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hashlib
import importlib
import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watchtower.errors import ConfigError
from watchtower.units import (
    DURATION_EXAMPLES,
    UnitError,
    format_bytesize,
    format_duration,
    parse_bytesize,
    parse_duration,
    shown,
)
from watchtower.yamlpos import Loc, YamlDocument, YamlSyntaxError, load_yaml

log = logging.getLogger(__name__)

__all__ = [
    "AlertsConfig",
    "BaselineConfig",
    "ByteSize",
    "Config",
    "ConfigError",
    "Duration",
    "EmailConfig",
    "FetchConfig",
    "MetricsConfig",
    "NotifyConfig",
    "ServiceConfig",
    "SmtpConfig",
    "SourceConfig",
    "WebhookConfig",
    "default_config_path",
    "load_config",
]

DEFAULT_CONFIG_PATH = Path("config/watchtower.yaml")


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


# --------------------------------------------------------------------------- models


class BaselineConfig(_Model):
    """What the subject is: seed articles plus watch terms, entities and exclusions."""

    seeds: Path = Path("../seeds")
    terms: dict[str, float] = {}
    entities: dict[str, list[str]] = {}
    exclude: list[str] = []
    cache: Path | None = None

    @field_validator("seeds", "cache")
    @classmethod
    def _paths(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @field_validator("terms", "entities", mode="before")
    @classmethod
    def _empty_mapping(cls, value: object) -> object:
        return _none_is_empty(value, {})

    @field_validator("exclude", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        return _one_or_list(_none_is_empty(value, []))

    @field_validator("entities", mode="before")
    @classmethod
    def _single_alias(cls, value: object) -> object:
        """``North Korea: DPRK`` is read as ``North Korea: [DPRK]``; empty as no aliases."""
        if not isinstance(value, dict):
            return value
        return {name: _one_or_list(_none_is_empty(v, [])) for name, v in value.items()}


class AlertsConfig(_Model):
    """When a scored item becomes an alert, and how long a story stays open."""

    threshold: Fraction = 0.5
    story_window: Duration = timedelta(days=3)


class FetchConfig(_Model):
    """Limits and manners for every HTTP request Watchtower makes to a source."""

    timeout: Duration = timedelta(seconds=20)
    max_bytes: ByteSize = 10_000_000
    allow_private_addresses: bool = False
    contact: OneLine | None = None
    max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    per_host_connections: Annotated[int, Field(ge=1)] = 2
    per_host_interval: DurationOrZero = timedelta(seconds=1)
    parse_timeout: Duration = timedelta(seconds=30)
    parse_memory: ByteSize = 512_000_000


SourceKind = Literal["feed", "page", "opml"]


class SourceConfig(_Model):
    """One feed, one page, or an OPML file listing many feeds."""

    name: OneLine | None = None
    feed: WebUrl | None = None
    page: WebUrl | None = None
    opml: Path | None = None
    every: Duration = timedelta(minutes=30)
    select: CssSelector | None = None
    exclude_select: list[CssSelector] = []
    ignore: list[Regex] = []
    enabled: bool = True

    @field_validator("opml")
    @classmethod
    def _opml_path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _resolve(value, info)
        if info.context and info.context.get("base") and not path.is_file():
            raise Invalid(f"file {path} does not exist (expected an OPML file)", echo=False)
        return path

    @field_validator("exclude_select", "ignore", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        return _one_or_list(_none_is_empty(value, []))

    @model_validator(mode="after")
    def _one_kind(self) -> SourceConfig:
        given = [k for k in ("feed", "page", "opml") if getattr(self, k) is not None]
        problems: list[tuple[Loc, str]] = []
        if not given:
            problems.append(((), "no feed, page or opml (expected exactly one of them)"))
        for extra in given[1:]:
            problems.append(
                (
                    (extra,),
                    f"given together with {given[0]} (expected exactly one of "
                    "feed, page, opml per source)",
                )
            )
        if self.name is None and given != ["opml"]:
            problems.append((("name",), "required key is missing (expected e.g. name: Daily NK)"))
        if self.page is None and given:
            problems.extend(self._page_only_keys(given[0]))
        if problems:
            raise Problems(problems)
        return self

    def _page_only_keys(self, kind: str) -> Iterator[tuple[Loc, str]]:
        for key in ("select", "exclude_select", "ignore"):
            if getattr(self, key):
                yield (key,), f"only allowed on page sources (this source is a {kind})"

    @property
    def kind(self) -> SourceKind:
        """``"feed"``, ``"page"`` or ``"opml"``."""
        return "feed" if self.feed else "page" if self.page else "opml"

    @property
    def url(self) -> str:
        """The feed or page URL (for an ``opml`` entry: the file's ``file://`` URI)."""
        if self.feed or self.page:
            return self.feed or self.page or ""
        return self.opml.as_uri() if self.opml and self.opml.is_absolute() else str(self.opml)

    @property
    def label(self) -> str:
        """The name, or for a nameless opml entry its file name."""
        return self.name or (self.opml.name if self.opml else "?")


class WebhookConfig(_Model):
    """A receiver of signed alert POSTs (Standard Webhooks)."""

    url: WebUrl
    secret: SecretStr
    min_score: Fraction = 0.5
    name: OneLine | None = None
    timeout: Duration = timedelta(seconds=10)

    @field_validator("secret")
    @classmethod
    def _secret_given(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise Invalid("is empty (expected a shared secret, e.g. ${WEBHOOK_SECRET})", echo=False)
        secret = value.get_secret_value()
        if secret.startswith("whsec_"):
            try:
                base64.b64decode(secret[len("whsec_") :], validate=True)
            except (binascii.Error, ValueError):
                raise Invalid(
                    "starts with whsec_ but the rest is not valid base64 "
                    "(expected whsec_ followed by the base64 key, or a plain secret)",
                    echo=False,
                ) from None
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (_public_url(value) if name == "url" else value)

    @property
    def key(self) -> str:
        """Stable id of this receiver: its name, else ``webhook-`` + sha256(url)[:10]."""
        if self.name:
            return self.name
        return "webhook-" + hashlib.sha256(self.url.encode()).hexdigest()[:10]

    @property
    def channel(self) -> str:
        """The delivery channel string stored with each delivery: ``webhook:<key>``."""
        return f"webhook:{self.key}"


class SmtpConfig(_Model):
    """How to reach the mail server."""

    host: OneLine = "localhost"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    tls: bool = False
    username: OneLine | None = None
    password: SecretStr | None = None
    timeout: Duration = timedelta(seconds=30)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> SmtpConfig:
        if self.starttls and self.tls:
            raise Problems(
                [
                    (
                        ("tls",),
                        "cannot be combined with starttls (expected starttls: true on "
                        "port 587, or tls: true on port 465)",
                    )
                ]
            )
        return self


class EmailConfig(_Model):
    """Immediate alert emails and the daily digest."""

    smtp: SmtpConfig = SmtpConfig()
    from_: EmailAddress = Field(alias="from")
    to: Annotated[list[EmailAddress], Field(min_length=1)]
    immediate_min_score: Fraction | None = None
    digest: Annotated[str, AfterValidator(_cron)] | None = "0 7 * * *"
    timezone: Annotated[str, AfterValidator(_timezone)] = "UTC"
    send_empty_digest: bool = False
    subject_prefix: OneLine = "[Watchtower]"

    @field_validator("to", mode="before")
    @classmethod
    def _one_address(cls, value: object) -> object:
        return _one_or_list(value)


class NotifyConfig(_Model):
    """Where alerts go besides the store. Nothing configured: alerts are only stored."""

    webhooks: list[WebhookConfig] = []
    email: EmailConfig | None = None
    max_attempts: Annotated[int, Field(ge=1)] = 8

    @field_validator("webhooks", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        return _none_is_empty(value, [])

    @model_validator(mode="after")
    def _unique_keys(self) -> NotifyConfig:
        seen: dict[str, int] = {}
        problems: list[tuple[Loc, str]] = []
        for index, hook in enumerate(self.webhooks):
            if hook.key in seen:
                where = "name" if hook.name else "url"
                problems.append(
                    (
                        ("webhooks", index, where),
                        f"same webhook as webhooks[{seen[hook.key]}] "
                        "(expected a unique name or url)",
                    )
                )
            seen.setdefault(hook.key, index)
        if problems:
            raise Problems(problems)
        return self


class ServiceConfig(_Model):
    """How the daemon runs."""

    shutdown_timeout: Duration = timedelta(seconds=20)
    jitter: DurationOrZero = timedelta(seconds=30)
    backoff_max: Duration = timedelta(hours=6)
    report_failing_after: Duration = timedelta(days=1)
    max_concurrent_polls: Annotated[int, Field(ge=1)] = 8
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class MetricsConfig(_Model):
    """The optional Prometheus endpoint."""

    enabled: bool = False
    listen: Annotated[str, AfterValidator(_listen)] = "127.0.0.1:9464"


_SECTIONS = ("baseline", "alerts", "fetch", "notify", "service", "metrics")


_DB_URL = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9_+.-]*)://(?P<rest>[^?]*)(?P<query>\?.*)?", re.S
)
_DB_PASSWORD = re.compile(r"^(?P<head>[^:/]+://[^:/@]*:)[^/]*@")


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
    return _DB_PASSWORD.sub(r"\g<head>***@", store)


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


class Config(_Model):
    """The whole configuration. Build it with :func:`load_config`; never mutated."""

    store: str = "sqlite:///var/watchtower.db"
    baseline: BaselineConfig = BaselineConfig()
    alerts: AlertsConfig = AlertsConfig()
    fetch: FetchConfig = FetchConfig()
    sources: list[SourceConfig] = []
    notify: NotifyConfig = NotifyConfig()
    service: ServiceConfig = ServiceConfig()
    metrics: MetricsConfig = MetricsConfig()
    path: Path = Field(default=DEFAULT_CONFIG_PATH, exclude=True)
    """The config file this came from (absolute when loaded); not a YAML key."""

    not_yaml: ClassVar[frozenset[str]] = frozenset({"path"})
    _document: YamlDocument | None = PrivateAttr(default=None)
    _given: str | None = PrivateAttr(default=None)

    def where(self, *loc: str | int) -> str:
        """``FILE:LINE`` of a key path as the user wrote it, for messages about it.

        E.g. ``config.where("baseline", "seeds")`` → ``config/watchtower.yaml:12``; the
        line of the nearest enclosing key that exists (1 when built in Python).
        """
        line = self._document.line_of(loc) if self._document else 1
        return f"{self._given or self.path}:{line}"

    @model_validator(mode="before")
    @classmethod
    def _default_sections(cls, data: Any) -> Any:
        """Missing or empty sections are validated as ``{}`` so their paths get resolved."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in _SECTIONS:
            if data.get(name) is None:
                data[name] = {}
        if data.get("sources") is None:
            data["sources"] = []
        return data

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (_masked_store(value) if name == "store" else value)

    @field_validator("store")
    @classmethod
    def _store(cls, value: str, info: ValidationInfo) -> str:
        return _store_url(value, info)

    @model_validator(mode="after")
    def _unique_source_names(self) -> Config:
        problems = _duplicate_names(self.sources)
        if problems:
            raise Problems(problems)
        return self

    def feed_and_page_sources(self, *, include_disabled: bool = False) -> list[SourceConfig]:
        """Every feed and page to poll: ``sources`` with each ``opml:`` entry expanded.

        OPML feeds whose URL (canonicalised) is already configured are skipped; each
        expanded feed gets its OPML entry's ``every`` and ``enabled``, and a unique name
        (the outline's title). Disabled sources are left out unless ``include_disabled``.
        Reading the OPML file may raise whatever ``watchtower.sources.opml.read_opml``
        raises (a :class:`~watchtower.errors.WatchtowerError`).
        """
        from watchtower.sources.normalize import canonical_url

        direct = [s for s in self.sources if s.kind != "opml"]
        seen = {canonical_url(s.url) or s.url for s in direct}
        names = {s.label.casefold() for s in direct}
        result = list(direct)
        for group in (s for s in self.sources if s.kind == "opml"):
            result.extend(_expand_opml(group, seen, names))
        return [s for s in result if include_disabled or s.enabled]

    def summary(self) -> list[str]:
        """Lines describing this config for ``watchtower check``; never shows secrets."""
        return [
            f"config: {self.path}",
            f"store: {_masked_store(self.store)}",
            f"seeds: {self.baseline.seeds} ({_seed_count(self.baseline.seeds)})",
            f"baseline: {_plural(len(self.baseline.terms), 'term')}, "
            f"{_plural(len(self.baseline.entities), 'entity', 'entities')}, "
            f"{_plural(len(self.baseline.exclude), 'exclusion')}",
            f"alerts: threshold {self.alerts.threshold:g}, stories grouped over "
            f"{format_duration(self.alerts.story_window)}",
            _fetch_line(self.fetch),
            *_source_lines(self.sources),
            *_webhook_lines(self.notify.webhooks),
            _email_line(self.notify.email),
            f"metrics: {'on at ' + self.metrics.listen if self.metrics.enabled else 'off'}",
        ]


def default_config_path() -> Path:
    """``$WATCHTOWER_CONFIG`` if set, else ``config/watchtower.yaml``."""
    return Path(os.environ.get("WATCHTOWER_CONFIG") or DEFAULT_CONFIG_PATH)


# --------------------------------------------------------------------------- OPML


def _expand_opml(group: SourceConfig, seen: set[str], names: set[str]) -> Iterator[SourceConfig]:
    from watchtower.sources.normalize import canonical_url

    # Imported by name: the OPML reader is optional until a config uses ``opml:``.
    read_opml = importlib.import_module("watchtower.sources.opml").read_opml
    assert group.opml is not None
    for feed in read_opml(group.opml):
        url = canonical_url(feed.url) or feed.url
        if url in seen:
            continue
        try:
            name = _unique_name(" ".join(str(feed.title or "").split()) or feed.url, names)
            source = SourceConfig(
                name=name, feed=feed.url, every=group.every, enabled=group.enabled
            )
        except ValidationError:
            log.warning("OPML %s: skipping %r (not an http(s) feed URL)", group.opml, feed.url)
            continue
        seen.add(url)
        names.add(name.casefold())
        yield source


def _unique_name(name: str, names: set[str]) -> str:
    candidate, number = name.strip() or "feed", 2
    while candidate.casefold() in names:
        candidate, number = f"{name.strip()} ({number})", number + 1
    return candidate


# --------------------------------------------------------------------------- summary


def _seed_count(folder: Path) -> str:
    from watchtower.seeds import SEED_SUFFIXES

    if not folder.is_dir():
        return "MISSING"
    count = sum(p.is_file() and p.suffix.lower() in SEED_SUFFIXES for p in folder.iterdir())
    return f"{count} seed files"


def _public_url(url: str) -> str:
    """scheme://host[:port]/path, without credentials or query (they may hold tokens)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{host}{port}{parts.path}{query}"


def _fetch_line(fetch: FetchConfig) -> str:
    private = "allowed" if fetch.allow_private_addresses else "refused"
    return (
        f"fetch: timeout {format_duration(fetch.timeout)}, at most "
        f"{format_bytesize(fetch.max_bytes)} a response, private addresses {private}"
    )


def _plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


def _source_lines(sources: list[SourceConfig]) -> list[str]:
    counts = {kind: sum(s.kind == kind for s in sources) for kind in ("feed", "page", "opml")}
    disabled = sum(not s.enabled for s in sources)
    lines = [
        f"sources: {len(sources)} ({_plural(counts['feed'], 'feed')}, "
        f"{_plural(counts['page'], 'page')}, {_plural(counts['opml'], 'OPML file')}; "
        f"{disabled} disabled)"
    ]
    for source in sources:
        where = _public_url(source.url) if source.kind != "opml" else str(source.opml)
        state = "" if source.enabled else " (disabled)"
        lines.append(
            f"  - {source.label}: {source.kind} every {format_duration(source.every)} "
            f"{where}{state}"
        )
    return lines


def _webhook_lines(hooks: list[WebhookConfig]) -> list[str]:
    if not hooks:
        return ["webhooks: none"]
    return [f"webhooks: {len(hooks)}"] + [
        f"  - {hook.key}: {_public_url(hook.url)} for scores ≥ {hook.min_score:g}" for hook in hooks
    ]


def _email_line(email: EmailConfig | None) -> str:
    if email is None:
        return "email: off (alerts are stored; see them with `watchtower alerts`)"
    smtp = email.smtp
    security = "STARTTLS" if smtp.starttls else "TLS" if smtp.tls else "no TLS"
    login = ", with login" if smtp.username else ""
    digest = f'digest "{email.digest}" {email.timezone}' if email.digest else "no digest"
    immediate = (
        f", immediate for scores ≥ {email.immediate_min_score:g}"
        if email.immediate_min_score is not None
        else ""
    )
    return (
        f"email: {email.from_} → {', '.join(email.to)} via {smtp.host}:{smtp.port} "
        f"({security}{login}); {digest}{immediate}"
    )


# --------------------------------------------------------------------------- loading


_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
_SECRET_KEYS = frozenset({"secret", "password", "store"})


class _Interpolation:
    """Replaces ``${VAR}`` / ``${VAR:-default}`` in string values, noting what failed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.problems: list[tuple[Loc, str]] = []
        self.raw: dict[Loc, str] = {}

    def walk(self, value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {key: self.walk(item, loc + (key,)) for key, item in value.items()}
        if isinstance(value, list):
            return [self.walk(item, loc + (index,)) for index, item in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            self.raw[loc] = value
            return _REFERENCE.sub(lambda match: self._replace(match, loc), value)
        return value

    def _replace(self, match: re.Match[str], loc: Loc) -> str:
        if match.group(0) == "$${":
            return "${"
        body = match.group(1)
        reference = _VARIABLE.fullmatch(body) if body is not None else None
        if reference is None:
            self.problems.append(
                (
                    loc,
                    f"{shown(match.group(0))} is not a valid reference (expected ${{NAME}} "
                    "or ${NAME:-default}; write $${ for a literal ${)",
                )
            )
            return ""
        name, default = reference.group(1), reference.group(2)
        value = self.env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            self.problems.append(
                (
                    loc,
                    f"environment variable {name} is not set "
                    f"(set it, or write ${{{name}:-default}})",
                )
            )
            return ""
        return value


def load_config(path: Path | str | None = None) -> Config:
    """Read, interpolate and validate a config file; see the module docstring.

    ``path`` defaults to :func:`default_config_path`. Raises
    :class:`~watchtower.errors.ConfigError` listing every problem found.
    """
    given = str(path) if path is not None else str(default_config_path())
    file = Path(os.path.normpath(Path(given).absolute()))
    document = _read_document(file, given)
    interpolation = _Interpolation(dict(os.environ))
    data = interpolation.walk(document.data, ())
    problems = list(interpolation.problems) + _reserved_keys(data)
    problems += _duplicate_names(data.get("sources"))
    try:
        config = Config.model_validate({**data, "path": file}, context={"base": file.parent})
    except ValidationError as exc:
        failed = [loc for loc, _ in interpolation.problems]
        explained = _explain_all(exc, interpolation.raw)
        problems += [p for p in explained if not any(p[0][: len(f)] == f for f in failed)]
    if problems:
        raise ConfigError(_format(problems, document, given))
    config._document, config._given = document, given
    return config


def _read_document(file: Path, given: str) -> YamlDocument:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{given}:1: cannot read the config file: {exc.strerror or exc} (expected a "
            "readable YAML file; pass --config PATH or set WATCHTOWER_CONFIG)"
        ) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{given}:{line}: not UTF-8 text (expected a UTF-8 YAML file)") from exc
    try:
        document = load_yaml(text)
    except YamlSyntaxError as exc:
        raise ConfigError(
            f"{given}:{exc.line}: invalid YAML: {exc.message} (expected valid YAML syntax)"
        ) from exc
    if document.data is None:
        raise ConfigError(f"{given}:1: the file is empty (expected a mapping with a sources: list)")
    if not isinstance(document.data, dict):
        raise ConfigError(
            f"{given}:1: the top level is {_kind(document.data)} (expected a mapping of keys "
            "such as store:, baseline:, sources:)"
        )
    return document


def _reserved_keys(data: dict[Any, Any]) -> list[tuple[Loc, str]]:
    return [((key,), _unknown_key((key,))) for key in data if key in Config.not_yaml]


# --------------------------------------------------------------------------- messages


_MESSAGES = {
    "missing": "required key is missing (expected a value here)",
    "model_type": "is {kind} (expected a mapping of key: value lines)",
    "model_attributes_type": "is {kind} (expected a mapping of key: value lines)",
    "dict_type": "is {kind} (expected a mapping of key: value lines)",
    "list_type": "is {kind} (expected a list: one '- item' per line, or [a, b])",
    "string_type": "is {kind} (expected text)",
    "path_type": "is {kind} (expected a file or folder path)",
    "int_type": "{echo} is not a whole number (expected e.g. 5)",
    "int_parsing": "{echo} is not a whole number (expected e.g. 5)",
    "int_from_float": "{echo} is not a whole number (expected e.g. 5)",
    "float_type": "{echo} is not a number (expected e.g. 0.5)",
    "float_parsing": "{echo} is not a number (expected e.g. 0.5)",
    "bool_type": "{echo} is not true or false (expected true or false)",
    "bool_parsing": "{echo} is not true or false (expected true or false)",
    "greater_than_equal": "{echo} is too small (expected {ge} or more)",
    "greater_than": "{echo} is too small (expected more than {gt})",
    "less_than_equal": "{echo} is too large (expected {le} or less)",
    "less_than": "{echo} is too large (expected less than {lt})",
    "too_short": "has too few items (expected at least {min_length})",
    "too_long": "has too many items (expected at most {max_length})",
    "literal_error": "{echo} is not allowed (expected one of: {expected})",
}
_FALLBACK = "{echo} is not accepted here (expected a value like the example config shows)"


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    kinds = {dict: "a mapping", list: "a list", str: "text", int: "a number", float: "a number"}
    return kinds.get(type(value), type(value).__name__)


def _echo(loc: Loc, value: object, raw: dict[Loc, str]) -> str:
    """How the offending value is quoted: as written in the file, never a secret."""
    if any(part in _SECRET_KEYS for part in loc if isinstance(part, str)):
        return "the value"
    return shown(raw.get(loc, value))


def _explain_all(exc: ValidationError, raw: dict[Loc, str]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if part != "[key]")
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, Problems):
            problems += [(loc + sub, message) for sub, message in cause.items]
        elif isinstance(cause, Invalid | UnitError):
            echo = _echo(loc, error["input"], raw) + " " if getattr(cause, "echo", True) else ""
            problems.append((loc, echo + cause.reason))
        elif error["type"] == "extra_forbidden":
            problems.append((loc, _unknown_key(loc)))
        else:
            problems.append((loc, _message(error["type"], error, _echo(loc, error["input"], raw))))
    return problems


def _message(kind: str, error: Any, echo: str) -> str:
    template = _MESSAGES.get(kind, _FALLBACK)
    values = {str(k): str(v) for k, v in (error.get("ctx") or {}).items()}
    values.update(echo=echo, kind=_kind(error["input"]))
    return template.format_map(_Defaulting(values))


class _Defaulting(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _unknown_key(loc: Loc) -> str:
    model = _model_at(loc[:-1])
    allowed = yaml_keys(model) if model else []
    hint = f"expected one of: {', '.join(allowed)}" if allowed else "expected no key here"
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    if close:
        hint += f'; did you mean "{close[0]}"?'
    return f"unknown key ({hint})"


def yaml_keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts (aliases, e.g. ``from``), in declaration order."""
    hidden: frozenset[str] = getattr(model, "not_yaml", frozenset())
    return [info.alias or name for name, info in model.model_fields.items() if name not in hidden]


def unwrap_type(annotation: Any) -> Any:
    """``Annotated[X, …]`` → X and ``X | None`` → X; anything else unchanged."""
    while True:
        origin = get_origin(annotation)
        args = [a for a in get_args(annotation) if a is not type(None)]
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is not None and origin not in (list, dict) and len(args) == 1:
            annotation = args[0]
        else:
            return annotation


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (None if not a model)."""
    current: Any = Config
    for part in loc:
        current = unwrap_type(current)
        if isinstance(part, int) and get_origin(current) is list:
            current = get_args(current)[0]
        elif isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[str(part)].annotation
        else:
            return None
    current = unwrap_type(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", part):
            text += ("." if text else "") + part
        else:
            text += '["' + part.replace('"', '\\"') + '"]'
    return text


def _format(problems: list[tuple[Loc, str]], document: YamlDocument, given: str) -> list[str]:
    located = []
    for loc, message in problems:
        line = document.line_of(loc)
        key = _dotted(loc)
        located.append((line, f"{given}:{line}: " + (f"{key}: " if key else "") + message))
    located.sort(key=lambda item: item[0])
    return list(dict.fromkeys(text for _, text in located))
