"""Memory over time: the daemon against loopback feeds that bring new items steadily.

Starts ``watchtower run`` as a subprocess on a fresh SQLite store, with ``--feeds``
feeds served on 127.0.0.1, each bringing ``--new`` new items (distinct stories, some
relevant) at every poll (``--every`` seconds). Prints the daemon's RSS (and that of its
worker processes) once a minute, then stops the daemon with SIGTERM and prints the
figures as one JSON line. Not a timed test: run it by hand::

    python benchmarks/daemon_memory.py               # 10 minutes
    python benchmarks/daemon_memory.py --minutes 2   # a quick run

Everything binds to 127.0.0.1 only and every loop is bounded by ``--minutes``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "north korea defectors china border repatriation camp prison court ruling minister "
    "election market harvest rain festival bakery football museum bridge council budget "
    "school hospital river train strike union energy price tourism painter orchestra"
).split()


class Feeds:
    """Feed ``n`` holds its newest 40 items; ``new`` more appear at every request."""

    def __init__(self, new: int) -> None:
        self.new = new
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        self.rng = random.Random(7)

    def body(self, name: str) -> bytes:
        with self.lock:
            count = self.counts.get(name, 0) + self.new
            self.counts[name] = count
            first = max(0, count - 40)
            words = [
                " ".join(self.rng.choice(WORDS) for _ in range(40)) for _ in range(first, count)
            ]
        now = format_datetime(datetime.now(UTC), usegmt=True)
        items = "".join(
            f"<item><title>{name} story {i}: {text[:60]}</title>"
            f"<link>https://news.example.org/{name}/{i}</link><guid>{name}-{i}</guid>"
            f"<description>{text} item {i} of {name}.</description><pubDate>{now}</pubDate>"
            "</item>"
            for i, text in zip(range(first, count), words, strict=True)
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{name}</title><link>https://news.example.org/</link>"
            f"<description>benchmark</description>{items}</channel></rss>"
        ).encode()


def serve(feeds: Feeds) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/feed/"):
                body = feeds.body(self.path.rsplit("/", 1)[-1].removesuffix(".xml"))
                ctype = "application/rss+xml"
            else:
                body, ctype = b"ok", "text/plain"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET  # noqa: N815  (the webhook receiver)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Child processes of every thread of ``pid`` (workers are started from a thread)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def write_config(work: Path, port: int, feeds: int, every: int) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.support import shipped_baseline_yaml

    lines = [
        f"store: sqlite:///{work}/watchtower.db",
        shipped_baseline_yaml(work),
        # Every feed is on 127.0.0.1: without these the per-host politeness would
        # serialise the polls to one a second.
        "fetch: {allow_private_addresses: true, timeout: 20s, per_host_connections: 8, "
        "per_host_interval: 0s}",
        "service: {shutdown_timeout: 10s, jitter: 2s, log_level: WARNING}",
        "sources:",
        *[
            f"  - {{name: F{i}, feed: 'http://127.0.0.1:{port}/feed/f{i}.xml', every: {every}s}}"
            for i in range(feeds)
        ],
        "notify:",
        "  webhooks:",
        f"    - {{url: 'http://127.0.0.1:{port}/hook', secret: 'benchmark-secret'}}",
    ]
    path = work / "watchtower.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--feeds", type=int, default=40)
    parser.add_argument("--new", type=int, default=2, help="new items per feed per poll")
    parser.add_argument("--every", type=int, default=5, help="poll interval in seconds")
    args = parser.parse_args()

    feeds = Feeds(args.new)
    server = serve(feeds)
    with tempfile.TemporaryDirectory(prefix="wt-memory-") as tmp:
        work = Path(tmp)
        config = write_config(work, server.server_address[1], args.feeds, args.every)
        log = (work / "daemon.log").open("wb")
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen(
            [sys.executable, "-m", "watchtower", "run", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env=env,
            cwd=ROOT,
        )
        samples: list[dict[str, float]] = []
        started = time.monotonic()
        try:
            for minute in range(int(args.minutes) + 1):
                target = started + 60 * minute
                while time.monotonic() < target:
                    if proc.poll() is not None:
                        raise SystemExit(f"daemon exited ({proc.returncode})")
                    time.sleep(1)
                main_mb = rss_mb(proc.pid)
                workers = sum(rss_mb(c) for c in children(proc.pid))
                con = sqlite3.connect(work / "watchtower.db")
                try:
                    items, stories = (
                        con.execute("SELECT count(*) FROM item").fetchone()[0],
                        con.execute("SELECT count(*) FROM story").fetchone()[0],
                    )
                except sqlite3.Error:
                    items = stories = 0
                finally:
                    con.close()
                samples.append(
                    {
                        "minute": minute,
                        "rss_mb": round(main_mb, 1),
                        "workers_mb": round(workers, 1),
                        "items": items,
                        "stories": stories,
                    }
                )
                print(  # noqa: T201
                    f"minute {minute:>3}: daemon RSS {main_mb:7.1f} MB, workers {workers:7.1f} MB,"
                    f" {items} items, {stories} stories",
                    flush=True,
                )
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            log.close()
            server.shutdown()
            errors = [
                ln
                for ln in (work / "daemon.log").read_text(errors="replace").splitlines()
                if " ERROR " in ln or "Traceback" in ln
            ]
        print(json.dumps({"samples": samples, "error_lines": len(errors)}))  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
