"""Human-friendly durations and byte sizes: the config file's units and every message's.

``parse_duration("1h30m")`` → ``timedelta(hours=1, minutes=30)``; a plain number is a
number of seconds. ``parse_bytesize("10MB")`` → ``10_000_000``; ``KB``/``MB``/``GB``/``TB``
are powers of 1000, ``KiB``/``MiB``/``GiB``/``TiB`` powers of 1024, a plain int is bytes.
Both raise :class:`ValueError` with a message fit to show a user (value and expected form).
"""

from __future__ import annotations

import re
from datetime import timedelta

DURATION_EXAMPLES = "e.g. 30s, 15m, 6h, 1d, 1h30m"
BYTESIZE_EXAMPLES = "e.g. 512KB, 10MB, 1GB, 64MiB"

_DURATION_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)", re.IGNORECASE)
_DURATION_WHOLE = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:ms|w|d|h|m|s))+\s*", re.IGNORECASE)

_BYTE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_BYTESIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def shown(value: object) -> str:
    """A value as quoted in a message to a user: short, one line, strings in quotes."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\n", " ").replace("\r", " ")
    return '"' + (text if len(text) <= 60 else text[:57] + "...") + '"'


class UnitError(ValueError):
    """A value that is not a duration or size; ``reason`` is the message without the value."""

    def __init__(self, value: object, reason: str) -> None:
        self.reason = reason
        super().__init__(f"{shown(value)} {reason}")


def parse_duration(value: object, *, allow_zero: bool = False) -> timedelta:
    """Parse ``"20s"``, ``"30m"``, ``"6h"``, ``"1d"``, ``"1h30m"`` or seconds as a number."""
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = timedelta(seconds=value)
    elif isinstance(value, str) and _DURATION_WHOLE.fullmatch(value):
        seconds = sum(
            float(n) * _DURATION_UNITS[u.lower()] for n, u in _DURATION_PART.findall(value)
        )
        result = timedelta(seconds=seconds)
    elif isinstance(value, str) and re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", value):
        result = timedelta(seconds=float(value))
    else:
        raise UnitError(value, f"is not a duration (expected {DURATION_EXAMPLES})")
    if result < timedelta(0) or (result == timedelta(0) and not allow_zero):
        least = "0s or longer" if allow_zero else "longer than 0s"
        raise UnitError(value, f"is too short (expected {least}, {DURATION_EXAMPLES})")
    return result


def parse_bytesize(value: object) -> int:
    """Parse ``"10MB"`` (10**7), ``"64MiB"`` (64 * 2**20) or a plain number of bytes (> 0)."""
    if isinstance(value, int) and not isinstance(value, bool):
        result = value
    else:
        match = _BYTESIZE.fullmatch(value) if isinstance(value, str) else None
        unit = (match.group(2) or "b").lower() if match else ""
        if match is None or unit not in _BYTE_UNITS:
            raise UnitError(value, f"is not a size (expected {BYTESIZE_EXAMPLES})")
        result = int(float(match.group(1)) * _BYTE_UNITS[unit])
    if result <= 0:
        raise UnitError(value, "is too small (expected more than 0 bytes)")
    return result


def format_duration(value: timedelta) -> str:
    """Render a duration the way a config file would write it: ``1h30m``, ``20s``, ``0s``."""
    total = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or f"{value.total_seconds():g}s"


def format_bytesize(value: int) -> str:
    """Render a byte count compactly: ``10MB``, ``64MiB``, ``1234B``."""
    for unit in ("TB", "GB", "MB", "KB", "TiB", "GiB", "MiB", "KiB"):
        size = _BYTE_UNITS[unit.lower()]
        if value >= size and value % size == 0:
            return f"{value // size}{unit}"
    return f"{value}B"


def human_size(n: int) -> str:
    """``10485760`` → ``10 MB``, ``10000000`` → ``10 MB``, ``2048`` → ``2 kB``."""
    for unit, sizes in (
        ("GB", (1024**3, 10**9)),
        ("MB", (1024 * 1024, 10**6)),
        ("kB", (1024, 10**3)),
    ):
        for size in sizes:
            if n >= size and n % size == 0:
                return f"{n // size} {unit}"
    if n >= 10**6:
        return f"{n / 10**6:.1f} MB"
    return f"{n} bytes"


def human_seconds(seconds: float) -> str:
    """``20.0`` → ``20 s``, ``0.5`` → ``0.5 s``."""
    return f"{seconds:.3g} s"
