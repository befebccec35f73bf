"""A password in a source URL (an OPML outline without a title) or in the store URL
never shows: not in source names, logs at any level (redirect DEBUG lines too),
``status``, ``alerts``, Prometheus labels, the webhook body's ``source`` or ``check``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import generate_latest

from tests.e2e.test_e2e_run_once import RELEVANT, rss
from tests.support import ROOT, LoopbackHTTP, Response, shipped_baseline_yaml
from watchtower import metrics
from watchtower.config import load_config
from watchtower.masking import mask_url
from watchtower.runtime import Runtime

FEED_PW = "Feed-PW:odd%2Fch%40rs"
STORE_PW = "Store-PW/x@y"


def watchtower(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("WATCHTOWER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "watchtower", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )


def leaks(text: str) -> list[str]:
    parts = ("Feed-PW", "odd%2F", "odd/", "Store-PW", "x@y")
    return [p for p in parts if p in text]


def test_masking_keeps_the_url_readable() -> None:
    assert mask_url("postgresql://wt:pa/ss@word@db/wt") == "postgresql://wt:***@db/wt"
    assert mask_url("https://u:p@h.example/f?x=1") == "https://u:***@h.example/f?x=1"
    assert mask_url("https://host:8080/@user.rss") == "https://host:8080/@user.rss"
    assert mask_url("sqlite:///var/wt.db") == "sqlite:///var/wt.db"


def test_a_planted_password_is_never_shown(http_server: LoopbackHTTP, tmp_path: Path) -> None:
    http_server.routes["/start.xml"] = Response(302, {"Location": http_server.url("/feed.xml")})
    http_server.routes["/feed.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT, "a")
    )
    http_server.routes["/hook"] = Response(200, {}, b"ok")
    host = http_server.base.split("://", 1)[1]
    feed_url = f"http://wt:{FEED_PW}@{host}/start.xml"
    (tmp_path / "feeds.opml").write_text(
        '<?xml version="1.0"?><opml version="2.0"><head/><body>'
        f'<outline type="rss" xmlUrl="{feed_url.replace("&", "&amp;")}"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    config_path = tmp_path / "watchtower.yaml"
    base = [
        shipped_baseline_yaml(tmp_path),
        "fetch:\n  allow_private_addresses: true\n  timeout: 10s",
        "sources:\n  - {opml: feeds.opml, every: 30m}",
        "notify:\n  webhooks:\n"
        f"    - {{url: '{http_server.url('/hook')}', secret: plain-secret, min_score: 0}}",
    ]
    config_path.write_text("\n".join([f"store: sqlite:///{tmp_path}/watchtower.db", *base]) + "\n")

    config = load_config(config_path)
    (source,) = config.feed_and_page_sources()
    assert source.name == mask_url(feed_url) and not leaks(source.name)

    run = watchtower("run", "--once", "-v", "--config", str(config_path))
    assert run.returncode == 0, run.stderr
    assert "redirect" in run.stderr and not leaks(run.stderr)
    for command in ("status", "alerts"):
        shown = watchtower(command, "--config", str(config_path))
        assert shown.returncode == 0, shown.stderr
        assert not leaks(shown.stdout + shown.stderr), command
    hooks = http_server.requests_to("/hook")
    assert hooks, "the alert was delivered to the webhook"
    for request in hooks:
        body = json.loads(request.body)
        assert body["source"] == source.name and not leaks(request.body.decode())

    registry = metrics.enable()
    try:

        async def poll() -> None:
            async with Runtime(config) as runtime:
                await runtime.pipeline.poll(source, force=True)

        asyncio.run(poll())
        exposition = generate_latest(registry).decode()
    finally:
        metrics.disable()
    assert "***" in exposition and not leaks(exposition)

    pg = tmp_path / "pg.yaml"
    pg.write_text("\n".join([f"store: postgresql://wt:{STORE_PW}@127.0.0.1:9/wt", *base]) + "\n")
    check = watchtower("check", "--config", str(pg))
    assert check.returncode == 0, check.stderr
    assert "postgresql+psycopg://wt:***@127.0.0.1:9/wt" in check.stdout
    assert not leaks(check.stdout + check.stderr)
