"""The allocator settings are safe on any C library and respect the operator's own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from watchtower import malloc


def test_trim_and_limit_never_fail_here() -> None:
    malloc.trim()
    code = "from watchtower.malloc import limit_arenas; print(limit_arenas())"
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    expected = "True" if os.confstr("CS_GNU_LIBC_VERSION") else "False"
    assert out.stdout.strip() == expected, out.stderr


def test_an_explicit_malloc_arena_max_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert malloc.limit_arenas() is False
