"""Durations and byte sizes as written in the config file."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchtower.units import (
    UnitError,
    format_bytesize,
    format_duration,
    parse_bytesize,
    parse_duration,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20s", timedelta(seconds=20)),
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("500ms", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        ("90", timedelta(seconds=90)),
        (45, timedelta(seconds=45)),
        (0.25, timedelta(milliseconds=250)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5x", "", "h", "1h30", "-5s", "ten minutes", True, None, [1]])
def test_bad_durations(text: object) -> None:
    with pytest.raises(UnitError) as caught:
        parse_duration(text)
    assert "(expected e.g. 30s, 15m, 6h, 1d, 1h30m)" in caught.value.reason


def test_zero_duration() -> None:
    with pytest.raises(UnitError, match="too short"):
        parse_duration("0s")
    assert parse_duration("0s", allow_zero=True) == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10MB", 10_000_000),
        ("512KB", 512_000),
        ("1GB", 1_000_000_000),
        ("64MiB", 64 * 1024 * 1024),
        ("1kib", 1024),
        ("100", 100),
        ("100B", 100),
        ("1.5MB", 1_500_000),
        (4096, 4096),
    ],
)
def test_sizes(text: object, expected: int) -> None:
    assert parse_bytesize(text) == expected


@pytest.mark.parametrize("text", ["10 parsecs", "MB", "", "-1MB", 0, True, None, 1.5])
def test_bad_sizes(text: object) -> None:
    with pytest.raises(UnitError):
        parse_bytesize(text)


def test_formatting_round_trips() -> None:
    for text in ("20s", "1h30m", "1d", "6h"):
        assert format_duration(parse_duration(text)) == text
    assert format_duration(timedelta(milliseconds=500)) == "0.5s"
    for text in ("10MB", "64MiB", "512KB", "123B"):
        assert format_bytesize(parse_bytesize(text)) == text
