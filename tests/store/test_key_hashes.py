"""Keys that fit every database: a guid or link of any length is stored whole and found
again through its fixed-length hash; migration 0002 backfills existing items."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from tests.e2e.test_e2e_run_once import watchtower, write_config
from tests.support import LoopbackHTTP, Response
from watchtower.store import Store
from watchtower.store.engine import make_engine, migrate

LONG_GUID = "😀" * 25_000  # 100 kB of UTF-8
LONG_LINK = "https://news.example.org/" + "x" * 100_000


def _feed() -> bytes:
    items = [
        f"<item><title>Long guid</title><guid isPermaLink='false'>{LONG_GUID}</guid>"
        "<link>https://news.example.org/a</link><description>one</description></item>",
        f"<item><title>Long link, no guid</title><link>{LONG_LINK}</link>"
        "<description>two</description></item>",
        "<item><title>Plain</title><guid>plain-1</guid>"
        "<link>https://news.example.org/p</link><description>three</description></item>",
    ]
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>L</title>'
        f"<link>https://news.example.org/</link><description>d</description>{''.join(items)}"
        "</channel></rss>"
    ).encode()


def _config(tmp_path: Path, server: LoopbackHTTP, store_url: str) -> Path:
    path = write_config(tmp_path, server, [("Long", "/long.xml")])
    lines = path.read_text().splitlines()
    lines[0] = f"store: '{store_url}'"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_100kb_guid_and_100kb_link_are_stored_and_the_feed_goes_on(
    http_server: LoopbackHTTP, tmp_path: Path, store_url: str
) -> None:
    http_server.routes["/long.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, _feed()
    )
    config = _config(tmp_path, http_server, store_url)
    first = watchtower("run", "--once", "--config", str(config))
    assert first.returncode == 0, first.stderr
    with Store.open(store_url) as store, store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT guid, guid_key FROM item")).all()
    guids = {row[0] for row in rows}
    assert len(guids) == 3
    # The feed parser keeps 1,000 characters of a guid: 4 kB of UTF-8, over PostgreSQL's
    # B-tree row limit (about 2.7 kB) on its own.
    assert any(g.startswith("😀" * 1000) for g in guids)
    assert any(g.endswith("plain-1") for g in guids)
    assert any(LONG_LINK in g for g in guids), "no guid: the link is the key"
    assert all(len(row[1]) == 64 for row in rows)

    http_server.routes["/long.xml"] = Response(
        200, {"Content-Type": "application/rss+xml", "ETag": '"v2"'}, _feed()
    )
    second = watchtower("run", "--once", "--config", str(config))
    assert second.returncode == 0, second.stderr
    with Store.open(store_url) as store:
        assert store.counts()["items"] == 3, "the same items are recognised, not stored again"
    status = watchtower("status", "--config", str(config))
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if ln.startswith("Long"))
    assert " ok " in line and "failing" not in line


def test_migration_0002_backfills_the_key_of_existing_items(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        migrate(engine, "0001")
        now = datetime(2026, 11, 16, tzinfo=UTC)
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO source (id, name, kind, url, consecutive_failures, "
                    "failure_reported, created_at) "
                    "VALUES (1, 'S', 'feed', 'http://127.0.0.1:9/x', 0, false, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO story (id, title, signature, first_seen_at, last_seen_at, "
                    "best_score, item_count) VALUES (1, 't', :sig, :now, :now, 0.9, 1)"
                ),
                {"sig": b"", "now": now},
            )
            for item_id, guid in ((1, "old-1"), (2, "ümlaut-2")):
                conn.execute(
                    sa.text(
                        "INSERT INTO item (id, source_id, guid, title, summary, content, "
                        "fetched_at, kind, diff, score, explanation, signature, story_id) "
                        "VALUES (:id, 1, :guid, 't', '', '', :now, 'feed', :diff, 0.9, "
                        ":exp, :sig, 1)"
                    ),
                    {
                        "id": item_id,
                        "guid": guid,
                        "now": now,
                        "diff": "[]",
                        "exp": "{}",
                        "sig": b"",
                    },
                )
            conn.execute(
                sa.text(
                    "INSERT INTO alert (id, story_id, item_id, score, explanation, created_at) "
                    "VALUES (1, 1, 1, 0.9, :exp, :now)"
                ),
                {"exp": json.dumps({}), "now": now},
            )
        migrate(engine)
        with engine.connect() as conn:
            keys = dict(conn.execute(sa.text("SELECT guid, guid_key FROM item")).all())
            assert conn.execute(sa.text("SELECT count(*) FROM alert")).scalar() == 1
    finally:
        engine.dispose()
    assert keys == {g: hashlib.sha256(g.encode()).hexdigest() for g in ("old-1", "ümlaut-2")}
    with Store.open(store_url) as store:
        assert store.unseen_guids("S", ["old-1", "ümlaut-2", "new-3"]) == {"new-3"}
