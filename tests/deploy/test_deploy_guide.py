"""deploy/README.md step 2, run as written (paths moved under a temporary folder): the
configuration it installs passes ``watchtower check`` with the env file it installs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

GUIDE = ROOT / "deploy" / "README.md"


def _step_two_commands() -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    section = text.split("## 2. Configure", 1)[1].split("\n## ", 1)[0]
    first_block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert first_block, "step 2 starts with a shell block"
    return [line for line in first_block.group(1).splitlines() if line.strip()]


def test_step_two_gives_a_config_that_passes_check(tmp_path: Path) -> None:
    etc, state = tmp_path / "etc" / "watchtower", tmp_path / "var" / "lib" / "watchtower"
    state.mkdir(parents=True)
    for line in _step_two_commands():
        line = line.removeprefix("sudo ").replace(" -o root -g root", "")
        line = line.replace("/path/to/watchtower-checkout", str(ROOT))
        line = line.replace("/etc/watchtower", str(etc)).replace("/var/lib/watchtower", str(state))
        subprocess.run(shlex.split(line), check=True, timeout=60)
    config = etc / "watchtower.yaml"
    assert f"store: sqlite:///{state}/watchtower.db" in config.read_text(encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHTOWER")}
    for line in (etc / "watchtower.env").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key] = value
    env["PYTHONWARNINGS"] = "ignore"
    done = subprocess.run(
        [sys.executable, "-m", "watchtower", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"seeds: {etc}/seeds" in done.stdout
