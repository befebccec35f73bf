"""Fixtures shared by the delivery tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.notify.test_notify_support import open_store
from watchtower.store import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store (SQLite, and PostgreSQL when configured) for one test."""
    with open_store(store_url) as s:
        yield s
