"""The ``baseline:`` section: seeds, watch terms (with other wordings and translations),
subject entities (aliases, implicit forms and their context) and exclusions."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator

from watchtower.config.fields import _Model, _none_is_empty, _one_or_list, _resolve


class TermConfig(_Model):
    """One watch term: its weight and, in ``also``, its other wordings and translations."""

    weight: float = Field(default=1.0, ge=0)
    also: list[str] = []

    @field_validator("also", mode="before")
    @classmethod
    def _forms(cls, value: object) -> object:
        return _one_or_list(_none_is_empty(value, []))


class EntityConfig(_Model):
    """One subject name: aliases (any language), implicit forms and their context."""

    aliases: list[str] = []
    implicit: list[str] = []
    context: list[str] = []
    weight: float = Field(default=1.0, ge=0)

    @field_validator("aliases", "implicit", "context", mode="before")
    @classmethod
    def _forms(cls, value: object) -> object:
        return _one_or_list(_none_is_empty(value, []))


class BaselineConfig(_Model):
    """What the subject is: seed articles plus watch terms, entities and exclusions."""

    seeds: Path = Path("../seeds")
    terms: dict[str, TermConfig] = {}
    entities: dict[str, EntityConfig] = {}
    exclude: list[str] = []
    cache: Path | None = None
    thesaurus: bool = True

    @field_validator("seeds", "cache")
    @classmethod
    def _paths(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve(value, info)

    @field_validator("terms", mode="before")
    @classmethod
    def _term_forms(cls, value: object) -> object:
        """``terms`` may be a list of terms (weight 1), or term → weight, or term →
        ``{weight, also}``."""
        value = _none_is_empty(value, {})
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return _listed(value)
        if not isinstance(value, dict):
            return value
        return {
            term: {"weight": spec}
            if isinstance(spec, int | float | str)
            else _none_is_empty(spec, {})
            for term, spec in value.items()
        }

    @field_validator("exclude", mode="before")
    @classmethod
    def _empty_list(cls, value: object) -> object:
        return _one_or_list(_none_is_empty(value, []))

    @field_validator("entities", mode="before")
    @classmethod
    def _single_alias(cls, value: object) -> object:
        """``North Korea: DPRK`` is read as ``North Korea: {aliases: [DPRK]}``, a list as
        the aliases, empty as no aliases."""
        value = _none_is_empty(value, {})
        if isinstance(value, list):
            return _listed(value)
        if not isinstance(value, dict):
            return value
        return {
            name: v if isinstance(v, dict) else {"aliases": _one_or_list(_none_is_empty(v, []))}
            for name, v in value.items()
        }


def _listed(value: list[object]) -> object:
    """A list of names as a mapping of names to empty settings; a list holding anything
    else (a mapping, a list) is left for validation to refuse with its position."""
    if all(isinstance(name, str | int | float) for name in value):
        return {name: {} for name in value}
    return value
