"""Parsing in worker processes, bounded in memory and time.

A hostile feed can make a parser eat gigabytes or spin for minutes (a
small feed with one internal entity repeated expands to hundreds of megabytes).
:func:`parse_in_worker` runs the parser of one *kind* in a small pool of worker
processes, so a blow-up kills only that poll and never the daemon or its event loop:

* each job sets the worker's address-space limit (``RLIMIT_AS``) to ``memory`` bytes
  before parsing; running out raises :class:`ParseError` ``parser ran out of memory``;
* a job that runs longer than ``timeout`` seconds gets its worker killed and raises
  ``parser exceeded 30 s``; a worker that dies raises ``parser crashed (…)``;
  a broken worker is replaced by a fresh one on the next job;
* workers are fresh interpreters (``python -c``, never a ``fork`` of the threaded
  daemon) that serve many jobs; they import the preloaded parser modules as they start
  and any other by its first job (before that job's memory limit is set).

Parsers are registered by *kind* as ``"package.module:function"`` paths (see
:data:`PARSERS` and :func:`register_parser`); a parser is called as
``function(result: FetchResult, source: str) -> list[Entry]`` and may raise
:class:`ParseError`. The pool is process-wide; :func:`shutdown_workers` stops it.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib
import logging
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from watchtower.errors import ParseError
from watchtower.models import Entry, FetchResult
from watchtower.units import human_seconds

log = logging.getLogger(__name__)

PARSERS: dict[str, str] = {
    "feed": "watchtower.sources.feed:parse_feed",
}
"""Parser registry: kind → ``"module:function"``. Add yours with :func:`register_parser`."""

DEFAULT_WORKERS = max(1, min(4, os.cpu_count() or 1))
START_TIMEOUT = 30.0


PRELOADED: set[str] = {"feed"}
"""Kinds whose parser module every worker imports as it starts (see :func:`register_parser`)."""


def register_parser(kind: str, path: str, *, preload: bool = False) -> None:
    """Make ``kind`` parseable in workers by the function at ``"module:function"``.

    ``preload``: every worker imports its module as it starts (for the parsers every
    poll needs); any other module is imported by the first job of its kind in each
    worker, so the libraries of kinds a deployment never uses (page extraction, PDF)
    take no memory in its workers.
    """
    module, sep, func = path.partition(":")
    if not sep or not module or not func:
        raise ValueError(f"parser path must be 'module:function', not {path!r}")
    PARSERS[kind] = path
    if preload:
        PRELOADED.add(kind)


def parser_path(kind: str) -> str:
    """The ``"module:function"`` path registered for ``kind``; ``ParseError`` if none.

    A job that calls a parser in a worker sends this path, not the kind: a worker knows
    only the kinds registered by the modules it has imported."""
    path = PARSERS.get(kind)
    if path is None:
        raise ParseError(f"no parser for {kind!r}")
    return path


def load_parser(path: str) -> Callable[..., Any]:
    """The function at ``path`` (from :func:`parser_path`), imported on first use."""
    return _resolve(path)


# --------------------------------------------------------------------------- child side


def _resolve(path: str) -> Callable[..., Any]:
    module, _, func = path.partition(":")
    target = getattr(importlib.import_module(module), func)
    if not callable(target):
        raise TypeError(f"{path} is not callable")
    return target  # type: ignore[no-any-return]


def _limit_memory(memory: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and (memory == resource.RLIM_INFINITY or memory > hard):
        memory = hard
    resource.setrlimit(resource.RLIMIT_AS, (memory, hard))


def _run_job(message: bytes) -> tuple[bytes, bool]:
    """Run one pickled job; return the pickled answer and whether to exit afterwards."""
    try:
        path, memory, args = pickle.loads(message)
        parser = _resolve(path)  # a first job of its kind imports it, before the limit
        _limit_memory(int(memory))
        value = parser(*args)
        return pickle.dumps(("ok", value), pickle.HIGHEST_PROTOCOL), False
    except MemoryError:
        return pickle.dumps(("oom", "parser ran out of memory")), True
    except RecursionError:
        return pickle.dumps(("error", "parser failed: nested too deeply")), False
    except ParseError as exc:
        return pickle.dumps(("parse", exc.reason)), False
    except Exception as exc:
        return pickle.dumps(("error", f"parser failed: {type(exc).__name__}")), False


def _child_main(fd: int) -> None:
    """Child process: import the parsers, say ready, then answer jobs until EOF."""
    # The daemon decides when we stop: systemd's SIGTERM goes to the whole control group,
    # and a worker dying under a poll would be recorded as that source's failure.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for module in sys.argv[1:]:
        try:
            importlib.import_module(module)
        except ImportError:
            log.warning("parser module %s cannot be imported", module)
    conn = Connection(fd)
    conn.send_bytes(b"ready")
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        answer, leave = _run_job(message)
        _limit_memory(resource.RLIM_INFINITY)
        try:
            conn.send_bytes(answer)
        except (BrokenPipeError, OSError):
            return
        if leave:
            os._exit(0)


# --------------------------------------------------------------------------- parent side


class _Worker:
    """One child interpreter, talking length-prefixed pickles over a socket pair."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn

    @classmethod
    def start(cls, modules: list[str]) -> _Worker:
        """Start a child and wait (≤ :data:`START_TIMEOUT`) until it has imported its parsers."""
        ours, theirs = socket.socketpair()
        code = f"from watchtower.sources.worker import _child_main; _child_main({theirs.fileno()})"
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", code, *modules],
                stdin=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
            )
        finally:
            theirs.close()
        conn = Connection(ours.detach())
        worker = cls(process, conn)
        try:
            if not conn.poll(START_TIMEOUT) or conn.recv_bytes() != b"ready":
                raise OSError("no ready signal")
        except (OSError, EOFError) as exc:
            worker.kill()
            raise ParseError("parser worker failed to start") from exc
        return worker

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        try:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.conn.close()

    def exit_reason(self) -> str:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "parser crashed (no answer)"
        if code < 0:
            try:
                return f"parser crashed ({signal.Signals(-code).name})"
            except ValueError:
                return f"parser crashed (signal {-code})"
        return f"parser crashed (exit code {code})"


def _modules() -> list[str]:
    return sorted({PARSERS[kind].partition(":")[0] for kind in PRELOADED if kind in PARSERS})


class _Pool:
    """At most ``size`` workers; jobs wait for an idle one (loop-agnostic hand-off)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._live = 0
        self._waiters: deque[asyncio.Future[_Worker | None]] = deque()
        self.closed = False

    async def acquire(self) -> _Worker:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[_Worker | None] | None
        with self._lock:
            if self.closed:
                raise ParseError("parser workers are shut down")
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    self._busy.add(worker)
                    return worker
                worker.kill()
                self._live -= 1
            if self._live < self.size:
                self._live += 1
                fut = None
            else:
                fut = loop.create_future()
                self._waiters.append(fut)
        if fut is not None:
            try:
                handed = await fut
            except asyncio.CancelledError:
                with self._lock:
                    if fut in self._waiters:
                        self._waiters.remove(fut)
                        raise
                # Handed over just as we were cancelled: pass it on.
                if fut.done() and not fut.cancelled():
                    self.release(fut.result())
                raise
            if handed is not None:
                return handed
        starting = loop.run_in_executor(None, _Worker.start, _modules())
        try:
            worker = await asyncio.shield(starting)
        except asyncio.CancelledError:
            # The child starts anyway: keep it for the next job (or free the slot).
            starting.add_done_callback(self._adopt)
            raise
        except BaseException:
            self.release(None)
            raise
        with self._lock:
            self._busy.add(worker)
        return worker

    def _adopt(self, starting: asyncio.Future[_Worker]) -> None:
        if starting.cancelled() or starting.exception() is not None:
            self.release(None)
        else:
            self.release(starting.result())

    def release(self, worker: _Worker | None, *, broken: bool = False) -> None:
        """Give ``worker`` back; ``None`` or ``broken`` frees its slot for a new one."""
        if worker is not None and broken:
            worker.kill()
            worker = None
        with self._lock:
            if worker is not None:
                self._busy.discard(worker)
            if self.closed:
                if worker is not None:
                    worker.kill()
                return
            while self._waiters:
                fut = self._waiters.popleft()
                if fut.done():
                    continue
                fut.get_loop().call_soon_threadsafe(_hand_over, self, fut, worker)
                return
            if worker is None:
                self._live -= 1
            else:
                self._idle.append(worker)

    def shutdown(self) -> None:
        with self._lock:
            self.closed = True
            workers = [*self._idle, *self._busy]
            self._idle.clear()
            self._busy.clear()
            waiters = list(self._waiters)
            self._waiters.clear()
        for fut in waiters:
            fut.get_loop().call_soon_threadsafe(_fail_waiter, fut)
        for worker in workers:
            worker.kill()


def _hand_over(pool: _Pool, fut: asyncio.Future[_Worker | None], worker: _Worker | None) -> None:
    if fut.done():
        pool.release(worker)
        return
    if worker is not None:
        with pool._lock:
            pool._busy.add(worker)
    fut.set_result(worker)


def _fail_waiter(fut: asyncio.Future[_Worker | None]) -> None:
    if not fut.done():
        fut.set_exception(ParseError("parser workers are shut down"))


_pool: _Pool | None = None
_pool_lock = threading.Lock()
_workers_wanted = DEFAULT_WORKERS


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.closed:
            _pool = _Pool(_workers_wanted)
        return _pool


def set_worker_count(count: int) -> None:
    """Use ``count`` worker processes from now on (restarts the pool)."""
    global _workers_wanted
    _workers_wanted = max(1, int(count))
    shutdown_workers()


def shutdown_workers() -> None:
    """Kill every worker process (idle or busy). The next job starts a new pool."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown()


atexit.register(shutdown_workers)


async def _wait_readable(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    fd = conn.fileno()

    def ready() -> None:
        if not fut.done():
            fut.set_result(None)

    loop.add_reader(fd, ready)
    try:
        await fut
    finally:
        loop.remove_reader(fd)


def _receive(conn: Connection) -> tuple[str, Any]:
    status, value = pickle.loads(conn.recv_bytes())
    return str(status), value


async def parse_in_worker(
    kind: str, result: FetchResult, source: str, *, timeout: float, memory: int
) -> list[Entry]:
    """Parse ``result`` with the parser registered for ``kind`` in a worker process.

    ``timeout`` bounds the parse in seconds (waiting for a free worker does not
    count); ``memory`` is the worker's address-space limit in bytes for this job.
    Raises :class:`ParseError` with the parser's reason, or ``parser exceeded 30 s``,
    ``parser ran out of memory``, ``parser crashed (SIGSEGV)``.
    """
    value = await run_in_worker(kind, (result, source), source, timeout=timeout, memory=memory)
    return list(value)


async def run_in_worker(
    kind: str, args: tuple[Any, ...], source: str, *, timeout: float, memory: int
) -> Any:
    """Call the parser registered for ``kind`` with ``args`` in a worker process.

    The general form of :func:`parse_in_worker` for parsers that take more than a
    fetched answer (a page and its previous snapshot) or return more than entries.
    ``args`` and the return value must pickle. Same limits and errors.
    """
    path = PARSERS.get(kind)
    if path is None:
        raise ParseError(f"no parser for {kind!r}")
    job = pickle.dumps((path, memory, args), pickle.HIGHEST_PROTOCOL)
    pool = _get_pool()
    worker = await pool.acquire()
    broken = True
    try:
        async with asyncio.timeout(timeout):
            await asyncio.to_thread(worker.conn.send_bytes, job)
            await _wait_readable(worker.conn)
            status, value = await asyncio.to_thread(_receive, worker.conn)
    except TimeoutError as exc:
        log.warning("%s: parser exceeded %s, worker replaced", source, human_seconds(timeout))
        raise ParseError(f"parser exceeded {human_seconds(timeout)}") from exc
    except (EOFError, OSError, pickle.UnpicklingError) as exc:
        reason = worker.exit_reason()
        log.warning("%s: %s, worker replaced", source, reason)
        raise ParseError(reason) from exc
    else:
        broken = status == "oom"
        if status == "ok":
            return value
        if broken:
            log.warning("%s: parser ran out of memory (%d bytes), worker replaced", source, memory)
        raise ParseError(str(value))
    finally:
        pool.release(worker, broken=broken)
