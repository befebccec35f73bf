"""Done when: `watchtower run --once` with full text and the archive, as a subprocess.

A loopback feed carries only neutral titles and one-line teasers. Its items link to an
HTML article on the forced repatriation of North Korean escapees, a PDF report of the
UN special rapporteur (generated here), an off-topic sports article, and a document
that is gone (404). With ``full_text: true`` exactly the article and the PDF alert;
without it nothing does. With ``archive:`` set, each alert's archive path exists, holds
a WARC record for that URL, and its sha256 is the SHA-256 of the bytes the server sent.

The alerts are read through the store's alert views (``watchtower alerts --json`` is
not on this branch yet).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.e2e.test_e2e_run_once import watchtower
from tests.evidence.test_fulltext_scoring import ARTICLE, REPORT, SPORTS
from tests.pdfgen import report_pdf
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml

PDF = report_pdf(REPORT, title="A/HRC/58/XX")
DOCUMENTS: dict[str, tuple[str, bytes]] = {
    "/world/returned": ("text/html; charset=utf-8", ARTICLE),
    "/docs/report.pdf": ("application/pdf", PDF),
    "/sport/final": ("text/html; charset=utf-8", SPORTS),
}
TEASERS = [
    ("/world/returned", "This week's news", "Our correspondent reports. Read more…"),
    ("/docs/report.pdf", "New document published", "A new document is available."),
    ("/sport/final", "Weekend round-up", "All the action from Saturday. Read more…"),
    ("/gone", "Another update", "More on our website. Read more…"),
]


def teaser_feed(srv: LoopbackHTTP) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{srv.url(path)}</link><guid>{srv.url(path)}</guid>"
        f"<description>{teaser}</description>"
        f"<pubDate>Mon, 30 Nov 2026 0{i}:00:00 GMT</pubDate></item>"
        for i, (path, title, teaser) in enumerate(TEASERS)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Example wire</title><link>{srv.base}/</link><description>t</description>"
        f"{items}</channel></rss>"
    ).encode()


@pytest.fixture
def srv() -> Iterator[LoopbackHTTP]:
    with LoopbackHTTP() as server:
        for path, (ctype, body) in DOCUMENTS.items():
            server.routes[path] = Response(200, {"Content-Type": ctype}, body)
        server.routes["/feed.xml"] = Response(
            200, {"Content-Type": "application/rss+xml"}, teaser_feed(server)
        )
        yield server


def write_config(tmp_path: Path, srv: LoopbackHTTP, *, full_text: bool, archive: bool) -> Path:
    lines = [
        f"store: sqlite:///{tmp_path}/watchtower.db",
        shipped_baseline_yaml(tmp_path),
        "fetch: {allow_private_addresses: true, timeout: 10s, per_host_interval: 0s}",
        "sources:",
        "  - name: Example wire",
        f"    feed: '{srv.url('/feed.xml')}'",
        f"    full_text: {'true' if full_text else 'false'}",
    ]
    if archive:
        lines.append("archive: {dir: archive}")  # relative to the config file
    path = tmp_path / "watchtower.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_once(config: Path) -> None:
    result = watchtower("run", "--once", "--config", str(config), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def stored_alerts(tmp_path: Path) -> list[Any]:
    from watchtower.store import Store

    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store:
        return store.list_alerts(limit=100)


def stored_item_notes(tmp_path: Path) -> dict[str, list[str]]:
    from sqlmodel import select

    from watchtower.store import Store
    from watchtower.store.tables import Item

    with Store.open(f"sqlite:///{tmp_path}/watchtower.db") as store, store.session() as s:
        return {
            str(item.url): list(item.explanation.get("notes", []))
            for item in s.exec(select(Item)).all()
        }


def warc_response(path: Path) -> tuple[str, bytes, str]:
    """(target URI, payload, WARC-Payload-Digest) of the file's one response record."""
    with path.open("rb") as fh:
        for record in ArchiveIterator(fh):
            if record.rec_type == "response":
                uri = record.rec_headers.get_header("WARC-Target-URI")
                digest = record.rec_headers.get_header("WARC-Payload-Digest")
                return uri, record.content_stream().read(), digest
    raise AssertionError(f"no response record in {path}")


def test_teasers_alone_alert_nothing(srv: LoopbackHTTP, tmp_path: Path) -> None:
    run_once(write_config(tmp_path, srv, full_text=False, archive=True))
    assert stored_alerts(tmp_path) == []
    assert srv.requests_to("/world/returned") == []  # no document fetched without full_text


def test_full_text_alerts_exactly_the_article_and_the_pdf_with_archives(
    srv: LoopbackHTTP, tmp_path: Path
) -> None:
    config = write_config(tmp_path, srv, full_text=True, archive=True)
    run_once(config)

    alerts = stored_alerts(tmp_path)
    assert sorted(str(a.url) for a in alerts) == sorted(
        [srv.url("/world/returned"), srv.url("/docs/report.pdf")]
    )
    for alert in alerts:
        path = alert.url.removeprefix(srv.base)
        sent = DOCUMENTS[path][1]
        assert alert.archive is not None, alert.url
        warc = Path(alert.archive["path"])
        assert warc.is_file() and warc.is_relative_to(tmp_path / "archive")
        assert alert.archive["sha256"] == hashlib.sha256(sent).hexdigest()
        assert alert.archive["fetched_at"].endswith("Z")
        uri, payload, digest = warc_response(warc)
        assert uri == alert.url
        assert payload == sent
        assert digest.startswith("sha256:")
        # The document was fetched once, by the full-text stage, and that copy archived.
        assert len(srv.requests_to(path)) == 1

    listed = watchtower("alerts", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    for alert in alerts:
        assert f"archived: {alert.archive['path']} (sha256 {alert.archive['sha256']})" in (
            listed.stdout
        )

    notes = stored_item_notes(tmp_path)
    assert "scored on the full text of the linked document" in notes[srv.url("/sport/final")]
    assert notes[srv.url("/gone")] == ["full text not fetched: HTTP 404 Not Found"]


def test_an_alert_without_full_text_archives_a_forced_fetch(
    srv: LoopbackHTTP, tmp_path: Path
) -> None:
    """A feed item that alerts on its own text gets its link fetched for the archive."""
    srv.routes["/feed.xml"] = Response(
        200,
        {"Content-Type": "application/rss+xml"},
        teaser_feed(srv).replace(
            b"Our correspondent reports. Read more\xe2\x80\xa6",
            b"China carried out the forced repatriation of sixty North Korean escapees, "
            b"who face torture and prison camps, the UN special rapporteur on human rights "
            b"in North Korea said, urging respect for non-refoulement.",
        ),
    )
    run_once(write_config(tmp_path, srv, full_text=False, archive=True))
    alerts = stored_alerts(tmp_path)
    assert [a.url for a in alerts] == [srv.url("/world/returned")]
    archive = alerts[0].archive
    assert archive is not None and Path(archive["path"]).is_file()
    assert archive["sha256"] == hashlib.sha256(ARTICLE).hexdigest()


def test_a_full_disk_is_reported_and_the_alert_kept(srv: LoopbackHTTP, tmp_path: Path) -> None:
    config = write_config(tmp_path, srv, full_text=True, archive=False)
    (tmp_path / "archive").write_text("a file where the folder should be")
    config.write_text(config.read_text() + "archive: {dir: archive}\n")
    result = watchtower("run", "--once", "--config", str(config), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "archive not written" in result.stderr
    alerts = stored_alerts(tmp_path)
    assert len(alerts) == 2
    assert all(a.archive is None for a in alerts)
