"""``watchtower demo``: the product working end to end, with no network.

:func:`run_demo` serves the bundled sample feeds (``watchtower/demo/*.xml``, ``*.atom``:
invented outlets and stories, on the subject and off it, one wire story carried by two
outlets) from a loopback HTTP server on 127.0.0.1, writes the bundled demo config into
a temporary folder next to a copy of the seed articles (shipped in the package so an
installed wheel works), runs one pass of the pipeline and prints the alerts and a
preview of the digest email.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TextIO

from ruamel.yaml import YAML

from watchtower.errors import WatchtowerError

CONFIG_TEMPLATE = "watchtower-demo.yaml"
SEEDS_METADATA = "seeds.yaml"
FEEDS = {
    "/korea-rights-monitor.xml": ("korea-rights-monitor.xml", "application/rss+xml"),
    "/asia-policy-wire.atom": ("asia-policy-wire.atom", "application/atom+xml"),
    "/daily-courier.xml": ("daily-courier.xml", "application/rss+xml"),
}


def demo_data() -> Traversable:
    """The folder of bundled demo files inside the installed package."""
    return files("watchtower").joinpath("demo")


def run_demo(out: TextIO, *, workdir: Path | None = None) -> int:
    """Run the demo and write what a user should see to ``out``.

    Uses a temporary folder (removed afterwards) unless ``workdir`` is given, in which
    case the config, seeds and SQLite store are left there to explore with
    ``watchtower alerts --config <workdir>/watchtower.yaml``. Returns 0 when the pass
    produced alerts without errors, 1 when it did not, 2 when Watchtower refused to run
    (the reason is written to ``out``). Nothing but 127.0.0.1 is contacted.
    """
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        return _run(out, workdir, kept=True)
    with tempfile.TemporaryDirectory(prefix="watchtower-demo-") as tmp:
        return _run(out, Path(tmp), kept=False)


def _run(out: TextIO, workdir: Path, *, kept: bool) -> int:
    from watchtower.config import load_config
    from watchtower.notify.digest import send_digest
    from watchtower.report import format_alerts
    from watchtower.runtime import open_store, run_once

    copy_seeds(workdir / "seeds")
    with serve_feeds() as base_url:
        config_path = write_config(workdir, base_url)
        out.write(f"Watchtower demo: {len(FEEDS)} sample feeds served on {base_url}\n")
        note = "kept" if kept else "removed when the demo ends"
        out.write(f"Working folder: {workdir} ({note})\n\n")
        try:
            config = load_config(config_path)
            summary = run_once(config)
        except WatchtowerError as exc:
            out.write(f"The demo could not run: {exc}\n")
            return 2
    out.write(
        f"Polled {summary.polls} sources: {summary.new_items} new items, "
        f"{summary.new_alerts} alerts, {summary.errors} errors.\n\n"
    )
    _heading(out, "Alerts (newest first)")
    with open_store(config) as store:
        out.write(format_alerts(store, 20) + "\n\n")
        email = config.notify.email
        if email is not None:
            outcome = asyncio.run(send_digest(store, email, now=datetime.now(UTC), preview=True))
            _heading(out, "Digest preview (not sent)")
            out.write(_digest_text(outcome.message) + "\n")
    out.write(
        "\nNext: put example articles in seeds/, list your sources in "
        "config/watchtower.yaml, then run `watchtower check` and `watchtower run`.\n"
    )
    return 0 if summary.new_alerts > 0 and summary.errors == 0 else 1


def _heading(out: TextIO, text: str) -> None:
    out.write(f"{text}\n{'-' * len(text)}\n")


def _digest_text(message: EmailMessage | None) -> str:
    """The subject line and plain-text body of the rendered digest email."""
    if message is None:
        return "(no alerts for a digest)"
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else message.as_string()
    return f"Subject: {message['Subject']}\n\n{str(text).rstrip()}"


def copy_seeds(dest: Path) -> list[str]:
    """Copy the bundled seed articles (named in the bundled seeds.yaml) into ``dest``."""
    data = demo_data()
    meta = data.joinpath(SEEDS_METADATA).read_bytes()
    names = sorted(YAML(typ="safe").load(meta.decode("utf-8")) or {})
    dest.mkdir(parents=True, exist_ok=True)
    (dest / SEEDS_METADATA).write_bytes(meta)
    for name in names:
        with data.joinpath(name).open("rb") as src, open(dest / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return names


def write_config(workdir: Path, base_url: str) -> Path:
    """Write the demo config into ``workdir`` with sources under ``base_url``."""
    template = demo_data().joinpath(CONFIG_TEMPLATE).read_text(encoding="utf-8")
    path = workdir / "watchtower.yaml"
    path.write_text(template.replace("@BASE_URL@", base_url), encoding="utf-8")
    return path


@contextmanager
def serve_feeds() -> Iterator[str]:
    """Serve the bundled feeds on 127.0.0.1:<free port>; yields the base URL."""
    data = demo_data()
    bodies = {
        route: (data.joinpath(name).read_bytes(), ctype) for route, (name, ctype) in FEEDS.items()
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            found = bodies.get(self.path.split("?", 1)[0])
            body, ctype = found if found else (b"not found", "text/plain")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", f"{ctype}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
