"""Reading a config file: YAML with lines, ${ENV} interpolation, validation, OPML."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from watchtower.config.fields import _duplicate_names
from watchtower.config.messages import _explain_all, _format, _kind, _unknown_key
from watchtower.config.models import Config, default_config_path
from watchtower.errors import ConfigError
from watchtower.units import (
    shown,
)
from watchtower.yamlpos import Loc, YamlDocument, YamlSyntaxError, load_yaml

# --------------------------------------------------------------------------- loading


_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


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
    # kept for the lines of later messages (OPML, sources); its data is in the models now
    config._document, config._given = replace(document, data=None), given
    try:
        config.feed_and_page_sources()  # reads the OPML files, once
    except ConfigError:
        pass  # a broken OPML file is reported where its sources are asked for
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
