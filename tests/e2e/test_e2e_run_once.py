"""End to end: `watchtower run --once` as a subprocess against loopback feeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support import (
    ROOT,
    SHARED,
    LoopbackHTTP,
    Response,
    feed_with_etag,
    shipped_baseline_yaml,
)

RELEVANT = [
    (
        "China forcibly repatriates dozens of North Korean defectors",
        "Human rights groups said Chinese authorities sent about 60 North Korean refugees "
        "back across the border this week, where they face torture and imprisonment in "
        "prison camps. The UN special rapporteur on human rights in North Korea urged "
        "Beijing to respect the principle of non-refoulement.",
    ),
    (
        "UN General Assembly committee adopts resolution on North Korea human rights",
        "The resolution condemns systematic human rights violations in the DPRK, including "
        "forced labour, public executions and the abduction of foreign nationals, and "
        "urges the Security Council to consider referral to the International Criminal "
        "Court, as the Commission of Inquiry recommended.",
    ),
]
IRRELEVANT = [
    (
        "Local bakery wins regional bread award",
        "A family bakery in the town centre won first prize for its sourdough loaf at the "
        "regional food fair on Saturday, beating forty other entrants.",
    ),
]


def rss(items: list[tuple[str, str]], prefix: str) -> bytes:
    parts = [
        f"<item><title>{title}</title><link>https://news.example.org/{prefix}/{i}</link>"
        f"<guid>{prefix}-{i}</guid><description>{summary}</description>"
        f"<pubDate>Mon, 16 Nov 2026 0{i}:00:00 GMT</pubDate></item>"
        for i, (title, summary) in enumerate(items)
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{prefix}</title><link>https://news.example.org/</link>"
        f"<description>test</description>{''.join(parts)}</channel></rss>"
    ).encode()


def write_config(tmp_path: Path, server: LoopbackHTTP, sources: list[tuple[str, str]]) -> Path:
    lines = [
        f"store: sqlite:///{tmp_path}/watchtower.db",
        shipped_baseline_yaml(tmp_path),
        "fetch:",
        "  allow_private_addresses: true",
        "  timeout: 10s",
        "sources:",
    ]
    for name, path in sources:
        lines.append(f"  - {{name: {name}, feed: '{server.url(path)}', every: 30m}}")
    path = tmp_path / "watchtower.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def watchtower(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("WATCHTOWER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "watchtower", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


def test_run_once_stores_items_and_alerts_then_sees_304s(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    http_server.routes["/a.xml"] = feed_with_etag(rss(RELEVANT + IRRELEVANT, "a"), '"a1"')
    sources = [("Feed A", "/a.xml")]
    huffpost = SHARED / "corpora" / "news-feeds" / "huffpost-world-2019-06-30.xml"
    if huffpost.exists():
        http_server.routes["/huffpost.xml"] = feed_with_etag(huffpost.read_bytes(), '"h1"')
        sources.append(("HuffPost World", "/huffpost.xml"))
    config = write_config(tmp_path, http_server, sources)

    first = watchtower("run", "--once", "--config", str(config))
    assert first.returncode == 0, first.stderr

    from watchtower.store import Store

    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store:
        counts = store.counts()
        alerts = store.list_alerts(limit=100)
    expected_items = 3 + (31 if huffpost.exists() else 0)
    assert counts["items"] == expected_items
    titles = {a.title for a in alerts}
    assert {t for t, _ in RELEVANT} <= titles
    assert "Local bakery wins regional bread award" not in titles
    for alert in alerts:
        assert alert.explanation.matches, "every alert explains why it fired"

    second = watchtower("run", "--once", "--config", str(config))
    assert second.returncode == 0, second.stderr
    conditional = http_server.requests_to("/a.xml")[-1]
    assert conditional.headers.get("if-none-match") == '"a1"'
    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store:
        assert store.counts()["items"] == expected_items
        assert len(store.list_alerts(limit=100)) == len(alerts)


def test_broken_source_does_not_stop_the_others(http_server: LoopbackHTTP, tmp_path: Path) -> None:
    http_server.routes["/ok.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT, "ok")
    )
    http_server.routes["/html"] = Response(
        200, {"Content-Type": "text/html"}, b"<html><body><p>not a feed</p></body></html>"
    )
    config = write_config(
        tmp_path, http_server, [("Broken", "/missing.xml"), ("HTML", "/html"), ("OK", "/ok.xml")]
    )
    result = watchtower("run", "--once", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Broken" in result.stderr and "404" in result.stderr

    status = watchtower("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    assert "HTTP 404" in status.stdout
    assert "not a feed" in status.stdout


def test_check_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(
        "store: sqlite:///x.db\n"
        "alerts:\n"
        "  treshold: 0.5\n"
        "sources:\n"
        "  - name: A\n"
        "    feed: https://example.org/rss\n"
        "    every: 5x\n"
        "notify:\n"
        "  webhooks:\n"
        "    - url: https://example.org/hook\n"
        "      secret: ${WATCHTOWER_TEST_UNSET_SECRET}\n"
    )
    result = watchtower("check", "--config", str(config))
    assert result.returncode == 2
    err = result.stderr
    assert f"{config}:3: alerts.treshold" in err
    assert f"{config}:7: sources[0].every" in err
    assert f"{config}:11: notify.webhooks[0].secret" in err
    assert "WATCHTOWER_TEST_UNSET_SECRET" in err
    assert "Traceback" not in err


def test_check_refuses_a_bad_whsec_secret_and_a_bare_number_duration(tmp_path: Path) -> None:
    config = tmp_path / "watchtower.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path}/watchtower.db\n"
        "sources:\n"
        "  - {name: A, feed: 'https://example.org/a.xml', every: 30}\n"
        "notify:\n"
        "  webhooks:\n"
        "    - {url: 'https://example.org/hook', secret: 'whsec_%%%not-base64'}\n"
    )
    result = watchtower("check", "--config", str(config))
    assert result.returncode == 2
    err = result.stderr
    assert (
        f"{config}:3: sources[0].every: 30 is a number without a unit "
        "(expected a duration, e.g. 30s, 15m, 6h, 1d, 1h30m)"
    ) in err
    assert (
        f"{config}:6: notify.webhooks[0].secret: starts with whsec_ but the rest is not "
        "valid base64 (expected whsec_ followed by the base64 key, or a plain secret)"
    ) in err
    assert "%%%not-base64" not in err and "Traceback" not in err


def test_check_accepts_the_shipped_configs() -> None:
    for name in ("watchtower.yaml", "watchtower.example.yaml"):
        env_ok = watchtower("check", "--config", str(ROOT / "config" / name))
        if name.startswith("watchtower.example") and env_ok.returncode == 2:
            assert "WEBHOOK_SECRET" in env_ok.stderr or "SMTP" in env_ok.stderr
            continue
        assert env_ok.returncode == 0, env_ok.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("score", "--config", "/nonexistent/watchtower.yaml", "--input", "-"),
        ("alerts", "--config", "/nonexistent/watchtower.yaml"),
        ("run", "--once", "--config", "/nonexistent/watchtower.yaml"),
    ],
)
def test_missing_config_is_a_message_not_a_traceback(args: tuple[str, ...]) -> None:
    result = watchtower(*args)
    assert result.returncode == 2
    assert "/nonexistent/watchtower.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_version() -> None:
    result = watchtower("--version")
    assert result.returncode == 0
    assert "watchtower" in result.stdout


def test_score_and_baseline_commands(tmp_path: Path) -> None:
    config = tmp_path / "watchtower.yaml"
    config.write_text(f"store: sqlite:///{tmp_path}/w.db\n{shipped_baseline_yaml(tmp_path)}\n")
    lines = [
        json.dumps({"id": "r", "title": RELEVANT[0][0], "summary": RELEVANT[0][1]}),
        json.dumps({"id": "n", "title": IRRELEVANT[0][0], "summary": IRRELEVANT[0][1]}),
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    scored = subprocess.run(
        [sys.executable, "-m", "watchtower", "score", "--config", str(config), "--input", "-"],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert scored.returncode == 0, scored.stderr
    out = {d["id"]: d for d in map(json.loads, scored.stdout.splitlines())}
    assert out["r"]["alert"] is True and out["n"]["alert"] is False
    assert 0.0 <= out["n"]["score"] < 0.5 <= out["r"]["score"] <= 1.0
    assert out["r"]["explanation"]["matches"] and out["r"]["explanation"]["nearest_seed"]

    bad = subprocess.run(
        [sys.executable, "-m", "watchtower", "score", "--config", str(config), "--input", "-"],
        input="{not json\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert bad.returncode == 2 and "line 1" in bad.stderr and "Traceback" not in bad.stderr

    learned = watchtower("baseline", "--config", str(config))
    assert learned.returncode == 0, learned.stderr
    assert "topic:" in learned.stdout and "forced repatriation" in learned.stdout


def test_run_once_writes_every_304_before_it_exits(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    """The 304 states are batched in memory; ``run --once`` writes them before exiting."""
    sources = []
    for i in range(5):
        http_server.routes[f"/f{i}.xml"] = feed_with_etag(rss(IRRELEVANT, f"f{i}"), f'"e{i}"')
        sources.append((f"Feed {i}", f"/f{i}.xml"))
    config = write_config(tmp_path, http_server, sources)
    assert watchtower("run", "--once", "--config", str(config)).returncode == 0

    from watchtower.store import Store

    url = f"sqlite:///{tmp_path}/watchtower.db"
    with Store.open(url) as store:
        first = {h.name: h.last_polled_at for h in store.source_health(datetime.now(UTC))}
    second = watchtower("run", "--once", "--config", str(config))
    assert second.returncode == 0, second.stderr
    assert all(http_server.requests_to(p)[-1].headers.get("if-none-match") for _, p in sources)
    with Store.open(url) as store:
        health = store.source_health(datetime.now(UTC))
    assert len(health) == 5
    for h in health:
        assert h.last_polled_at is not None and h.last_polled_at > first[h.name]
        assert h.last_success_at == h.last_polled_at and h.consecutive_failures == 0
