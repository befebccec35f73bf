"""A fresh ``python3 -m venv`` with its stock pip installs a working Watchtower.

No pip upgrade, no editable install: exactly step 1 of ``deploy/README.md``. The
dependencies are resolved by that pip from ``pyproject.toml`` alone, so a runtime
import that is not declared there (directly) fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

_SKIP = shutil.ignore_patterns(
    ".venv", ".git", "var", "build", "*.egg-info", "__pycache__", ".*_cache", "*.db"
)


def _python3() -> str:
    return shutil.which("python3") or sys.executable


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_stock_pip_installs_a_program_that_runs_once(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    subprocess.run([_python3(), "-m", "venv", str(venv)], check=True, env=env, timeout=300)
    pip = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(source)],
        capture_output=True,
        text=True,
        env=env,
        timeout=1000,
    )
    assert pip.returncode == 0, pip.stderr[-4000:]

    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path}/watchtower.db\n"
        f"baseline:\n  seeds: {ROOT / 'seeds'}\n  cache: {tmp_path}/baseline-cache.json\n"
        "sources: []\n"
    )
    env.pop("WATCHTOWER_CONFIG", None)

    def watchtower(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "watchtower"), *args, "--config", str(config)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=300,
        )

    run = watchtower("run", "--once")
    assert run.returncode == 0, run.stderr[-4000:]
    assert "Traceback" not in run.stderr
    # the installed package carries its data: the thesaurus the seeds switch on
    shown = watchtower("baseline")
    assert shown.returncode == 0, shown.stderr[-4000:]
    assert "[thesaurus]" in shown.stdout
