"""Serve the review page with uvicorn inside an event loop that someone else owns.

The daemon owns the loop and the signals, so :func:`serve` starts
``uvicorn.Server.serve()`` as a task on the running loop, with uvicorn's own signal
handling disabled, and returns a :class:`ServerHandle` whose :meth:`ServerHandle.stop`
shuts the server down within a bound. The listening socket is bound here, before
uvicorn starts, so "address in use" is an ordinary :class:`OSError` for the caller
(uvicorn would call ``sys.exit``). Port 0 picks a free port; the handle says which.

uvicorn is given ``log_config=None``: it configures nothing, and its ``uvicorn.error``
and ``uvicorn.access`` loggers propagate to whatever :mod:`logging` setup the process
has. The ``Server:`` header is not sent.

:func:`is_loopback` implements the config rule "listening on a non-loopback address
requires ``web.auth``"; :func:`parse_listen` reads the ``web.listen`` value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from watchtower.web.listen import is_loopback, parse_listen

__all__ = ["ServerHandle", "is_loopback", "parse_listen", "serve"]

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the process that embeds it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class ServerHandle:
    """A running server: where it listens, and how to stop it."""

    host: str
    port: int
    _server: _EmbeddedServer
    _task: asyncio.Task[None]

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, let open requests finish for up to ``timeout`` s, then force."""
        if self._task.done():
            await self._finished()
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("web server did not stop within %.1fs; closing connections", timeout)
            self._server.force_exit = True
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 2.0)
            except TimeoutError:
                self._task.cancel()
        await self._finished()
        log.info("web server on %s stopped", self.url)

    async def _finished(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    *,
    startup_timeout: float = 10.0,
) -> ServerHandle:
    """Bind ``host:port`` and serve ``app`` on the running loop until ``stop()``.

    Returns once the server accepts connections. Raises :class:`OSError` when the
    address cannot be bound, :class:`RuntimeError` when uvicorn fails to start.
    """
    sock = _bind(host, port)
    bound_port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=True,
        lifespan="off",
        http="h11",
        ws="none",
        interface="asgi3",
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=5,
        limit_concurrency=100,
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="watchtower-web")
    handle = ServerHandle(host, bound_port, server, task)
    try:
        async with asyncio.timeout(startup_timeout):
            while not server.started:
                if task.done():
                    break
                await asyncio.sleep(0.01)
    except TimeoutError:
        await handle.stop(timeout=1.0)
        sock.close()
        raise RuntimeError(f"web server did not start within {startup_timeout:g}s") from None
    if task.done():
        sock.close()
        exc = None if task.cancelled() else task.exception()
        raise RuntimeError(f"web server failed to start: {exc!r}") from exc
    log.info("web server listening on %s", handle.url)
    return handle
