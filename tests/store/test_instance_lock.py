"""The store's instance lock: exclusive per store, named holder, released on close."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from watchtower.errors import StoreBusyError
from watchtower.store import lock


def test_lock_is_exclusive_names_the_holder_and_is_released(store_url: str) -> None:
    held = lock.acquire(store_url)
    try:
        with pytest.raises(StoreBusyError) as info:
            lock.acquire(store_url)
        assert f"pid={os.getpid()} " in info.value.holder
        assert "host=" in str(info.value) and "since=" in str(info.value)
    finally:
        held.release()
    lock.acquire(store_url).release()


def test_lock_held_by_another_process_and_dropped_when_it_dies(store_url: str) -> None:
    code = (
        "import sys, time\n"
        "from watchtower.store import lock\n"
        f"held = lock.acquire({store_url!r})\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with pytest.raises(StoreBusyError) as info:
            lock.acquire(store_url)
        assert f"pid={child.pid} " in info.value.holder
    finally:
        child.kill()
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    # The kernel (SQLite lock file) or the server (PostgreSQL session) drops the lock.
    lock.acquire(store_url).release()


def test_keys_differ_per_schema_and_database() -> None:
    assert lock.lock_key("test", "t_a") != lock.lock_key("test", "t_b")
    assert lock.lock_key("a", "public") != lock.lock_key("b", "public")
