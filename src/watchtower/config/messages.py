"""Pydantic errors turned into ``FILE:LINE: key.path: what is wrong (expected …)``."""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Any, get_args, get_origin

from pydantic import (
    BaseModel,
    ValidationError,
)

from watchtower.config.fields import Invalid, Problems
from watchtower.config.models import Config
from watchtower.units import (
    UnitError,
    shown,
)
from watchtower.yamlpos import Loc, YamlDocument

_SECRET_KEYS = frozenset({"secret", "password", "store"})


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
