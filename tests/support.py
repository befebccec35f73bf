"""Real loopback servers and shared paths for the tests.

``LoopbackHTTP`` is a threaded HTTP/1.1 server on 127.0.0.1 with routes a test sets:
fixed responses, callables, or generators that stream (slowly, if they like). Every
request is recorded so a test can check what Watchtower actually sent.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("WATCHTOWER_SHARED", ROOT.parent / "shared"))


def shipped_baseline_yaml(tmp_path: Path) -> str:
    """The shipped config's ``baseline:`` section (watch terms, entities, excludes) as YAML
    lines, with the repo's seeds and a cache under ``tmp_path``: tests score as users do.

    The cache starts as a user's does after the first run: the baseline is learnt once per
    test process and copied in (tests of learning itself write their own sections).
    """
    cache = tmp_path / "baseline-cache.json"
    if not cache.exists():
        tmp_path.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(_learnt_once())
    return _shipped_section(tmp_path)


def _shipped_section(cache_dir: Path) -> str:
    import json

    from ruamel.yaml import YAML

    shipped = YAML(typ="safe").load((ROOT / "config" / "watchtower.yaml").read_text())
    base = shipped.get("baseline") or {}
    lines = [
        "baseline:",
        f"  seeds: {ROOT / 'seeds'}",
        f"  cache: {cache_dir}/baseline-cache.json",
    ]
    for key in ("terms", "entities", "exclude"):
        if base.get(key):
            lines.append(f"  {key}: {json.dumps(base[key])}")
    alerts = shipped.get("alerts") or {}
    if "threshold" in alerts:
        lines.append(f"alerts: {{threshold: {alerts['threshold']}}}")
    return "\n".join(lines)


@functools.cache
def _learnt_once() -> bytes:
    """The shipped section's baseline cache file, learnt in this process."""
    import tempfile

    from watchtower.baseline_cache import load_baseline
    from watchtower.config import load_config

    with tempfile.TemporaryDirectory(prefix="watchtower-baseline-") as d:
        folder = Path(d)
        config = folder / "watchtower.yaml"
        config.write_text(
            f"store: sqlite:///{folder}/watchtower.db\n{_shipped_section(folder)}\nsources: []\n"
        )
        settings = load_config(config).baseline
        load_baseline(settings)
        return (folder / "baseline-cache.json").read_bytes()


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test cleanly when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present (../shared is only on development machines)")
    return path


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple[str, int] = ("", 0)  # the client's address: one port per TCP connection


@dataclass
class Response:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | Iterable[bytes] = b""


Handler = Callable[[Request], Response]


class LoopbackHTTP:
    """A real HTTP server on 127.0.0.1:<free port>, for feeds, pages and webhooks."""

    def __init__(self) -> None:
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out without a 40 ms stall

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                req = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    (str(self.client_address[0]), int(self.client_address[1])),
                )
                with outer._lock:
                    outer.requests.append(req)
                route = outer.routes.get(self.path.split("?")[0], Response(404, {}, b"not found"))
                resp = route(req) if callable(route) else route
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                if isinstance(resp.body, bytes):
                    if "content-length" not in {k.lower() for k in resp.headers}:
                        self.send_header("Content-Length", str(len(resp.body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(resp.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in resp.body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_GET = do_POST = do_HEAD = _serve  # noqa: N815

        class _Server(ThreadingHTTPServer):
            request_queue_size = 128  # many concurrent polls connect at once

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> LoopbackHTTP:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def trickle(data: bytes, every: float) -> Iterator[bytes]:
    """Stream one byte each ``every`` seconds (a slow-loris server)."""
    for i in range(len(data)):
        yield data[i : i + 1]
        time.sleep(every)


def feed_with_etag(body: bytes, etag: str, content_type: str = "application/rss+xml") -> Handler:
    """A feed route that answers 304 to a matching If-None-Match."""

    def handler(req: Request) -> Response:
        if req.headers.get("if-none-match") == etag:
            return Response(304, {"ETag": etag})
        return Response(200, {"Content-Type": content_type, "ETag": etag}, body)

    return handler


class ScriptedServer:
    """A raw loopback HTTP server: reads each request's head, then sends ``answer``
    exactly; when ``close``, closes the connection ``linger`` seconds after answering.
    Counts connections and requests. ``with ScriptedServer(...) as server:``."""

    def __init__(self, answer: bytes, *, close: bool = True, linger: float = 0.0) -> None:
        self.answer, self.close, self.linger = answer, close, linger
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.connections = self.requests = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str = "/feed.xml") -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                _, data = data.split(b"\r\n\r\n", 1)
                self.requests += 1
                try:
                    conn.sendall(self.answer)
                except OSError:
                    return
                if self.close:
                    time.sleep(self.linger)
                    return

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
