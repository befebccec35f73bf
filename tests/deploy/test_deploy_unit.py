"""deploy/watchtower.service: the directives operators rely on, and systemd's own check."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support import ROOT

DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "watchtower.service"
EXEC = "/opt/watchtower/.venv/bin/watchtower"


def parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections → key → every value given (systemd allows repeated keys)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {raw!r}"
        sections[current][key.strip()].append(value.strip())
    return sections


@pytest.fixture(scope="module")
def unit() -> dict[str, dict[str, list[str]]]:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


REQUIRED = {
    "Type": "notify",
    "NotifyAccess": "main",
    "WatchdogSec": "60",
    "ExecStart": f"{EXEC} run --config /etc/watchtower/watchtower.yaml",
    "ExecReload": "/bin/kill -HUP $MAINPID",
    "DynamicUser": "yes",
    "StateDirectory": "watchtower",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "NoNewPrivileges": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "CapabilityBoundingSet": "",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "RestrictNamespaces": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "UMask": "0077",
    "TimeoutStopSec": "30",
    "Restart": "on-failure",
    "EnvironmentFile": "-/etc/watchtower/watchtower.env",
    "KillMode": "mixed",
}


@pytest.mark.parametrize(("key", "value"), sorted(REQUIRED.items()))
def test_required_directive(unit: dict[str, dict[str, list[str]]], key: str, value: str) -> None:
    assert unit["Service"][key] == [value]


def test_system_call_filter(unit: dict[str, dict[str, list[str]]]) -> None:
    filters = unit["Service"]["SystemCallFilter"]
    assert filters[0] == "@system-service"
    # Parse workers may limit their own memory with setrlimit: @resources stays allowed.
    assert not any("@resources" in f for f in filters)


def test_install_and_ordering(unit: dict[str, dict[str, list[str]]]) -> None:
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    assert unit["Unit"]["After"] == ["network-online.target"]
    assert unit["Unit"]["Wants"] == ["network-online.target"]


def test_stop_timeout_exceeds_the_drain_bound(unit: dict[str, dict[str, list[str]]]) -> None:
    config = pytest.importorskip("watchtower.config")
    drain = config.ServiceConfig().shutdown_timeout.total_seconds()
    assert int(unit["Service"]["TimeoutStopSec"][0]) > drain


def test_store_path_matches_state_directory() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    assert "store: sqlite:////var/lib/watchtower/watchtower.db" in readme


def _fake_install(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at an executable that exists on this machine."""
    fake = tmp_path / "watchtower"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    unit = tmp_path / "watchtower.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(EXEC, str(fake)))
    return unit


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    unit = _fake_install(tmp_path)
    done = subprocess.run(
        [tool, "verify", str(unit)], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    problems = [line for line in done.stderr.splitlines() if "watchtower.service" in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_systemd_analyze_security_exposure_is_low(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed")
    unit = _fake_install(tmp_path)
    done = subprocess.run(
        [tool, "security", "--offline=yes", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    if done.returncode != 0 and "--offline" in done.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd ≥ 250")
    match = re.search(r"Overall exposure level for \S+: ([\d.]+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0  # systemd rates < 2 as "OK"


def test_env_example_names_the_secrets_the_config_reads() -> None:
    env = (DEPLOY / "watchtower.env.example").read_text(encoding="utf-8")
    names = re.findall(r"^#?([A-Z_]+)=", env, flags=re.MULTILINE)
    assert {"WEBHOOK_SECRET", "SMTP_PASSWORD", "PGPASSWORD"} <= set(names)
    assert "export " not in env  # EnvironmentFile= does not take shell syntax


def test_readme_covers_the_operator_tasks() -> None:
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for needle in [
        "pip install /path/to/watchtower-checkout",
        "watchtower-news",
        "/etc/watchtower/watchtower.yaml",
        "systemctl enable --now watchtower",
        "journalctl -u watchtower -f",
        "systemctl reload watchtower",
        "watchtower status",
        "/metrics",
        "pip install --upgrade",
        "backup",
        "postgresql://",
        "LoadCredential=",
    ]:
        assert needle in readme, needle
