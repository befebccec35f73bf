"""The ``web:`` section: off by default, auth required off loopback (``check`` exits 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, shipped_baseline_yaml
from watchtower.config import ConfigError, load_config


def _config(tmp_path: Path, web: str) -> Path:
    path = tmp_path / "watchtower.yaml"
    path.write_text(
        f"store: sqlite:///{tmp_path}/watchtower.db\n"
        + shipped_baseline_yaml(tmp_path)
        + "\n"
        + web
    )
    return path


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("WATCHTOWER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "watchtower", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
    )


def test_check_exits_2_for_a_public_listen_without_auth(tmp_path: Path) -> None:
    path = _config(tmp_path, "web:\n  listen: 0.0.0.0:8080\n")
    result = _check(path)
    assert result.returncode == 2, result.stdout
    assert f"{path}:" in result.stderr and "web.listen" in result.stderr
    assert "web.auth is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_a_public_listen_with_auth_and_hides_it(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        "web:\n  listen: 0.0.0.0:8080\n  auth: hunter2-secret\n"
        "  public_url: https://wt.example.org\n",
    )
    result = _check(path)
    assert result.returncode == 0, result.stderr
    assert "review page: on at 0.0.0.0:8080, auth on, links to https://wt.example.org" in (
        result.stdout
    )
    assert "hunter2-secret" not in result.stdout + result.stderr


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "[::1]:8080", "localhost:8080"])
def test_loopback_needs_no_auth(tmp_path: Path, listen: str) -> None:
    config = load_config(_config(tmp_path, f"web:\n  listen: '{listen}'\n"))
    assert config.web.listen == listen and config.web.auth is None


def test_web_is_off_by_default_and_empty_secrets_are_unset(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, "web:\n  auth: ''\n  secret: ''\n"))
    assert (config.web.listen, config.web.auth, config.web.secret) == (None, None, None)
    assert load_config(_config(tmp_path, "")).web.listen is None


def test_bad_public_url_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(_config(tmp_path, "web:\n  public_url: javascript:alert(1)\n"))
    assert "web.public_url" in str(info.value)
