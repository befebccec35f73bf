"""Learning the baseline in a child process: the same baseline, errors and warnings."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from tests.matching.test_baseline_build import config
from tests.matching.test_matcher_scoring import make_seeds
from watchtower.baseline_cache import load_baseline
from watchtower.config import BaselineConfig
from watchtower.errors import ConfigError


def test_a_baseline_learnt_in_a_child_is_the_one_learnt_here(tmp_path: Path) -> None:
    cfg = config(make_seeds(tmp_path / "seeds"), exclude=["football"])
    here = load_baseline(cfg, cache_path=tmp_path / "here.json")
    there = load_baseline(cfg, cache_path=tmp_path / "there.json", isolated=True)
    assert there.to_json() == here.to_json()
    assert (tmp_path / "there.json").read_text() == (tmp_path / "here.json").read_text()
    # cached now: read back, no child needed, the same baseline
    assert load_baseline(cfg, cache_path=tmp_path / "there.json", isolated=True) == there


def test_a_config_error_in_the_child_is_raised_here_with_its_problems(tmp_path: Path) -> None:
    cfg = BaselineConfig(seeds=make_seeds(tmp_path / "seeds"), terms={"—": 2})  # type: ignore[dict-item]
    with pytest.raises(ConfigError) as here:
        load_baseline(cfg, cache_path=tmp_path / "a.json")
    with pytest.raises(ConfigError) as there:
        load_baseline(cfg, cache_path=tmp_path / "b.json", isolated=True)
    assert there.value.problems == here.value.problems
    assert "has no words" in str(there.value)
    assert not (tmp_path / "b.json").exists()


def test_the_childs_warnings_are_logged_here(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    (folder / "a.txt").write_text("1234 5678 9012\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        load_baseline(config(folder), cache_path=tmp_path / "c.json", isolated=True)
    warned = [(r.name, r.getMessage()) for r in caplog.records]
    assert any(
        name == "watchtower.baseline" and "teach no distinctive words" in message
        for name, message in warned
    ), warned


def test_without_a_child_the_baseline_is_learnt_here_and_a_warning_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(make_seeds(tmp_path / "seeds"))
    expected = load_baseline(cfg, cache_path=tmp_path / "here.json")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    with caplog.at_level(logging.WARNING):
        got = load_baseline(cfg, cache_path=tmp_path / "there.json", isolated=True)
    assert got.to_json() == expected.to_json()
    assert any(
        "cannot start a process to learn the baseline" in r.getMessage() for r in caplog.records
    )


def test_a_child_that_answers_nothing_leaves_the_baseline_to_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config(make_seeds(tmp_path / "seeds"))
    expected = load_baseline(cfg, cache_path=tmp_path / "here.json")
    exits = tmp_path / "exits"
    exits.write_text("#!/bin/sh\necho 'out of memory' >&2\nexit 137\n")
    exits.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(exits))
    with caplog.at_level(logging.WARNING):
        got = load_baseline(cfg, cache_path=tmp_path / "there.json", isolated=True)
    assert got.to_json() == expected.to_json()
    warning = next(r.getMessage() for r in caplog.records if "no answer" in r.getMessage())
    assert "code 137" in warning and "out of memory" in warning
