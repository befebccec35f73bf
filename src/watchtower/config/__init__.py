"""Watchtower's configuration: one YAML file → a frozen, validated :class:`Config`.

:func:`load_config` reads the file with ruamel.yaml (so every key keeps its line),
replaces ``${VAR}`` / ``${VAR:-default}`` in string values (``$${`` is a literal ``${``),
validates with the pydantic models below (unknown keys are rejected) and resolves
relative paths against the config file's folder. Anything wrong raises
:class:`~watchtower.errors.ConfigError` listing EVERY problem, one per line, as
``FILE:LINE: key.path: what is wrong (what was expected)``. Secret values (webhook
secrets, SMTP passwords, anything that came from the environment) never appear in
messages or in :meth:`Config.summary`.

The package: ``fields`` (value types and their validators), ``models`` (one model per
section, and :class:`Config`), ``web`` (the review page's section), ``loading``
(:func:`load_config`), ``messages`` (how a validation error reads) and ``summary``
(``watchtower check``'s lines). OPML sources are read once, when the config is loaded.

Every key is documented in ``config/watchtower.example.yaml``; a test keeps the two in step.
"""

from watchtower.config.baseline import BaselineConfig, EntityConfig, TermConfig
from watchtower.config.fields import ByteSize, Duration
from watchtower.config.loading import load_config
from watchtower.config.messages import unwrap_type, yaml_keys
from watchtower.config.models import (
    DEFAULT_CONFIG_PATH,
    AlertsConfig,
    Config,
    EmailConfig,
    FetchConfig,
    MetricsConfig,
    NotifyConfig,
    ServiceConfig,
    SmtpConfig,
    SourceConfig,
    WebhookConfig,
    default_config_path,
)
from watchtower.config.web import WebConfig
from watchtower.errors import ConfigError

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AlertsConfig",
    "BaselineConfig",
    "ByteSize",
    "Config",
    "ConfigError",
    "Duration",
    "EmailConfig",
    "EntityConfig",
    "FetchConfig",
    "MetricsConfig",
    "NotifyConfig",
    "ServiceConfig",
    "SmtpConfig",
    "SourceConfig",
    "TermConfig",
    "WebConfig",
    "WebhookConfig",
    "default_config_path",
    "load_config",
    "unwrap_type",
    "yaml_keys",
]
