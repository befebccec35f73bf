"""The C allocator's share of memory: fewer arenas, and freed memory handed back.

glibc's ``malloc`` gives each thread that contends for it an arena of its own (up to 8
per core), and memory freed in one arena is reused only by that arena. The daemon's
threads (the store's writer, the worker hand-offs, the web server) each touch large
buffers — feed bodies, pickled batches, SQLite pages — so its resident size crept up by
a few MB a minute while the Python heap stayed flat. :func:`limit_arenas` caps the
arenas at two (what ``MALLOC_ARENA_MAX=2`` does) and must run before any thread
starts; :func:`trim` returns free memory at the top of the heaps to the system, and
the daemon calls it with its heartbeat.

Both are no-ops where the C library is not glibc (musl, macOS).
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not hasattr(os, "confstr"):
        return None
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        return None
    if not version:
        return None
    try:  # glibc's soname on every Linux it runs on (find_library would run ldconfig)
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (unless ``MALLOC_ARENA_MAX`` says otherwise); True if set."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def trim() -> None:
    """Hand the free memory of every arena back to the system (glibc only)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)
