"""Every config key is documented in config/watchtower.example.yaml; shipped configs load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from watchtower.config import Config, load_config, unwrap_type, yaml_keys

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "watchtower.example.yaml"
DEFAULT = ROOT / "config" / "watchtower.yaml"


def model_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    """Every YAML key path a model accepts, lists written ``[]``: ``sources[].select``."""
    for key in yaml_keys(model):
        field = next(f for n, f in model.model_fields.items() if (f.alias or n) == key)
        path = f"{prefix}.{key}" if prefix else key
        yield path
        inner = unwrap_type(field.annotation)
        if get_origin(inner) is list:
            inner, path = unwrap_type(get_args(inner)[0]), path + "[]"
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from model_paths(inner, path)


def example_paths(node: Any, prefix: str = "") -> Iterator[tuple[str, int]]:
    """Every key path in a parsed YAML tree with its 0-based line, lists written ``[]``."""
    if isinstance(node, CommentedMap):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path, node.lc.key(key)[0]
            yield from example_paths(value, path)
    elif isinstance(node, CommentedSeq):
        for item in node:
            yield from example_paths(item, prefix + "[]")


def is_commented(lines: list[str], line: int) -> bool:
    """A key is documented by a comment at the end of its line or on the line(s) above."""
    if "#" in lines[line]:
        return True
    above = line - 1
    while above >= 0 and not lines[above].strip():
        above -= 1
    return above >= 0 and lines[above].lstrip().startswith("#")


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_SECRET", "whsec_dGVzdC1zZWNyZXQ=")
    monkeypatch.setenv("SMTP_PASSWORD", "example-password")
    monkeypatch.setenv("APPRISE_URL", "ntfy://ntfy.example.org/watchtower")


def test_model_walk_finds_nested_keys() -> None:
    paths = set(model_paths(Config))
    assert {"store", "sources[].select", "notify.email.from", "notify.email.smtp.tls"} <= paths
    assert "path" not in paths
    assert len(paths) > 60


def test_every_key_is_in_the_example() -> None:
    tree = YAML(typ="rt").load(EXAMPLE.read_text(encoding="utf-8"))
    documented = {path for path, _ in example_paths(tree)}
    missing = sorted(set(model_paths(Config)) - documented)
    assert not missing, f"keys missing from {EXAMPLE.name}: {missing}"


def test_every_key_in_the_example_has_a_comment() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    commented: dict[str, bool] = {}
    for path, line in example_paths(YAML(typ="rt").load(text)):
        commented[path] = commented.get(path, False) or is_commented(lines, line)
    bare = sorted(p for p in model_paths(Config) if not commented.get(p))
    assert not bare, f"keys without a comment in {EXAMPLE.name}: {bare}"


def test_example_shows_every_source_kind_and_delivery(secrets: None) -> None:
    config = load_config(EXAMPLE)
    kinds = [(s.kind, s.select is not None) for s in config.sources]
    assert ("page", True) in kinds and ("page", False) in kinds
    assert ("feed", False) in kinds and ("opml", False) in kinds
    assert config.notify.webhooks[0].secret.get_secret_value() == "whsec_dGVzdC1zZWNyZXQ="
    assert config.notify.email is not None and config.notify.email.smtp.starttls
    assert "${WEBHOOK_SECRET}" in EXAMPLE.read_text(encoding="utf-8")


def test_default_config_loads_and_stores_alerts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("SMTP_PASSWORD", raising=False)
    config = load_config(DEFAULT)
    assert config.store == f"sqlite:///{ROOT / 'var' / 'watchtower.db'}"
    assert config.baseline.seeds == ROOT / "seeds"
    assert config.notify.webhooks == [] and config.notify.email is None
    assert {s.kind for s in config.sources} == {"feed", "page"}
    assert len(config.sources) >= 8
    assert "North Korea" in config.baseline.entities
    assert any("repatriat" in term for term in config.baseline.terms)
    assert "forced repatriation" in config.baseline.terms
    summary = config.summary()
    assert summary[0] == f"config: {DEFAULT}"
    assert "email: off" in "\n".join(summary)


def test_summary_of_the_example_hides_secrets(secrets: None) -> None:
    summary = "\n".join(load_config(EXAMPLE).summary())
    assert "dGVzdC1zZWNyZXQ" not in summary and "example-password" not in summary
    assert "ngo-slack" in summary and "STARTTLS" in summary
