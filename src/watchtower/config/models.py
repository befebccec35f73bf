"""The config models: one pydantic model per section, frozen, unknown keys rejected."""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import logging
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from watchtower.config.apprise import AppriseConfig
from watchtower.config.baseline import BaselineConfig
from watchtower.config.evidence import ArchiveConfig
from watchtower.config.fields import (
    ByteSize,
    CssSelector,
    Duration,
    DurationOrZero,
    EmailAddress,
    Fraction,
    Invalid,
    OneLine,
    Problems,
    Regex,
    WebUrl,
    _cron,
    _duplicate_names,
    _listen,
    _masked_store,
    _Model,
    _none_is_empty,
    _one_or_list,
    _public_url,
    _resolve,
    _store_url,
    _timezone,
)
from watchtower.config.summary import (
    _apprise_lines,
    _email_line,
    _fetch_line,
    _plural,
    _seed_count,
    _source_lines,
    _webhook_lines,
)
from watchtower.config.web import WebConfig, web_line
from watchtower.masking import mask_url
from watchtower.units import (
    format_duration,
)
from watchtower.yamlpos import Loc, YamlDocument

log = logging.getLogger(__name__)


DEFAULT_CONFIG_PATH = Path("config/watchtower.yaml")

# --------------------------------------------------------------------------- models


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
    full_text: bool = False
    report_failing_after: Duration | None = None
    quiet_after: Duration | None = None

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
    apprise: list[AppriseConfig] = []
    email: EmailConfig | None = None
    max_attempts: Annotated[int, Field(ge=1)] = 8

    @field_validator("webhooks", "apprise", mode="before")
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
        problems.extend(_duplicate_apprise(self.apprise))
        if problems:
            raise Problems(problems)
        return self


def _duplicate_apprise(entries: list[AppriseConfig]) -> Iterator[tuple[Loc, str]]:
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if entry.key in seen:
            where = "name" if entry.name else "url"
            yield (
                ("apprise", index, where),
                f"same destination as apprise[{seen[entry.key]}] (expected a unique name or url)",
            )
        seen.setdefault(entry.key, index)


class ServiceConfig(_Model):
    """How the daemon runs."""

    shutdown_timeout: Duration = timedelta(seconds=20)
    jitter: DurationOrZero = timedelta(seconds=30)
    backoff_max: Duration = timedelta(hours=6)
    report_failing_after: Duration = timedelta(days=1)
    quiet_after: Duration = timedelta(days=14)
    deliver_timeout: Duration = timedelta(seconds=60)
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


_SECTIONS = ("baseline", "alerts", "fetch", "notify", "service", "metrics", "web")


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
    web: WebConfig = WebConfig()
    archive: ArchiveConfig = ArchiveConfig()
    path: Path = Field(default=DEFAULT_CONFIG_PATH, exclude=True)
    """The config file this came from (absolute when loaded); not a YAML key."""

    not_yaml: ClassVar[frozenset[str]] = frozenset({"path"})
    _document: YamlDocument | None = PrivateAttr(default=None)
    _given: str | None = PrivateAttr(default=None)
    _expanded: list[SourceConfig] | None = PrivateAttr(default=None)

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
        expanded feed gets its OPML entry's ``every``, ``enabled``, ``report_failing_after``
        and ``quiet_after``, and a unique name
        (the outline's title, else its URL without user-info). Disabled sources are left
        out unless ``include_disabled``. The OPML files are read once, by
        :func:`~watchtower.config.load_config` (or the first call, for a config built in
        Python); a file that cannot be read raises here what
        ``watchtower.sources.opml.read_opml`` raises, a
        :class:`~watchtower.errors.ConfigError`.
        """
        if self._expanded is None:
            self._expanded = self._expand_sources()
        return [s for s in self._expanded if include_disabled or s.enabled]

    def _expand_sources(self) -> list[SourceConfig]:
        from watchtower.sources.normalize import canonical_url

        direct = [s for s in self.sources if s.kind != "opml"]
        if len(direct) == len(self.sources):  # no OPML file: nothing to compare against
            return direct
        seen = {canonical_url(s.url) or s.url for s in direct}
        names = {s.label.casefold() for s in direct}
        result = list(direct)
        for group in (s for s in self.sources if s.kind == "opml"):
            result.extend(_expand_opml(group, seen, names))
        return result

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
            self.archive.summary_line(),
            *_source_lines(self.sources),
            *_webhook_lines(self.notify.webhooks),
            *_apprise_lines(self.notify.apprise),
            _email_line(self.notify.email),
            f"metrics: {'on at ' + self.metrics.listen if self.metrics.enabled else 'off'}",
            web_line(self.web),
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
            title = " ".join(str(feed.title or "").split()) or feed.url
            name = _unique_name(mask_url(title), names)  # a title may be the bare URL
            source = SourceConfig(
                name=name,
                feed=feed.url,
                every=group.every,
                enabled=group.enabled,
                full_text=group.full_text,
                report_failing_after=group.report_failing_after,
                quiet_after=group.quiet_after,
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
