"""End to end: every source kind (RSS, JSON Feed, OPML, pages) through `run --once`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_e2e_run_once import RELEVANT, rss, watchtower
from tests.support import LoopbackHTTP, Response, shipped_baseline_yaml

PARAGRAPH = (
    "The Special Rapporteur on the situation of human rights in the Democratic People's "
    "Republic of Korea today urged China to halt the forced repatriation of North Korean "
    "escapees, who face torture and detention in political prison camps on their return."
)


def statement_page(updated: str, extra: str = "") -> bytes:
    body = f"""<html><head><title>UN human rights office: DPRK country page</title></head>
<body><nav><a href="/">Home</a> <a href="/news">News</a></nav>
<main><h1>Democratic People's Republic of Korea</h1>
<p>Last updated: {updated}</p>
<p>The office monitors the human rights situation in the country and reports to the
Human Rights Council each year.</p>
{f"<p>{extra}</p>" if extra else ""}
</main><footer>Copyright 2026 Example Office</footer></body></html>"""
    return body.encode()


def press_index(items: list[tuple[str, str]]) -> bytes:
    links = "".join(f'<li><a href="{href}">{text}</a></li>' for href, text in items)
    return (
        f"<html><body><main><h1>Press releases</h1><ul>{links}</ul></main></body></html>".encode()
    )


PRESS = [
    ("/press/1", "Office welcomes new staff in regional branch"),
    ("/press/2", "Annual report on development cooperation published"),
    ("/press/3", "Statement on climate resilience in the Pacific"),
]
NEW_RELEASE = (
    "/press/4",
    "UN experts alarmed by China's forced repatriation of North Korean defectors",
)


def json_feed(server: LoopbackHTTP) -> bytes:
    title, summary = RELEVANT[1]
    return json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "JSON outlet",
            "items": [
                {"id": "j1", "url": server.url("/j/1"), "title": title, "content_text": summary}
            ],
        }
    ).encode()


def write_config(tmp_path: Path, server: LoopbackHTTP) -> Path:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>'
        f'<outline text="OPML outlet" type="rss" xmlUrl="{server.url("/opml.xml")}"/>'
        "</body></opml>"
    )
    text = f"""
store: sqlite:///{tmp_path}/watchtower.db
{shipped_baseline_yaml(tmp_path)}
fetch: {{allow_private_addresses: true, timeout: 10s}}
sources:
  - {{name: JSON outlet, feed: '{server.url("/feed.json")}'}}
  - {{opml: {opml}}}
  - {{name: UN country page, page: '{server.url("/country.html")}', select: main}}
  - {{name: Press releases, page: '{server.url("/press.html")}'}}
notify:
  webhooks:
    - {{url: '{server.url("/hook")}', secret: s3cret, min_score: 0.0}}
"""
    path = tmp_path / "watchtower.yaml"
    path.write_text(text)
    return path


def serve(server: LoopbackHTTP, country: bytes, press: bytes) -> None:
    html = {"Content-Type": "text/html; charset=utf-8"}
    server.routes["/country.html"] = Response(200, html, country)
    server.routes["/press.html"] = Response(200, html, press)


def test_all_source_kinds_share_one_store_and_pages_alert_on_additions_only(
    http_server: LoopbackHTTP, tmp_path: Path
) -> None:
    http_server.routes["/feed.json"] = Response(
        200, {"Content-Type": "application/feed+json"}, json_feed(http_server)
    )
    http_server.routes["/opml.xml"] = Response(
        200, {"Content-Type": "application/rss+xml"}, rss(RELEVANT[:1], "opml")
    )
    http_server.routes["/hook"] = Response(200, {}, b"")
    serve(http_server, statement_page("1 November 2026"), press_index(PRESS))
    config = write_config(tmp_path, http_server)

    first = watchtower("run", "--once", "--config", str(config))
    assert first.returncode == 0, first.stderr
    hooks = lambda: [json.loads(r.body) for r in http_server.requests_to("/hook")]  # noqa: E731
    first_titles = {h["title"] for h in hooks()}
    assert RELEVANT[1][0] in first_titles, "JSON Feed item alerted"
    assert RELEVANT[0][0] in first_titles, "OPML-listed feed polled and alerted"
    assert {h["source"] for h in hooks()} == {"JSON outlet", "OPML outlet"}, (
        "a page's first poll records a snapshot and alerts nothing"
    )

    serve(
        http_server,
        statement_page("22 November 2026", extra=PARAGRAPH),
        press_index([*PRESS, NEW_RELEASE]),
    )
    second = watchtower("run", "--once", "--config", str(config))
    assert second.returncode == 0, second.stderr
    new = hooks()[len(first_titles) :]
    by_source = {h["source"]: h for h in new}
    assert set(by_source) == {"UN country page", "Press releases"}
    page_alert = by_source["UN country page"]
    assert PARAGRAPH in page_alert["explanation"]["diff"]
    assert not any("November" in line for line in page_alert["explanation"]["diff"])
    link_alert = by_source["Press releases"]
    assert link_alert["title"] == NEW_RELEASE[1]
    assert link_alert["url"] == http_server.url(NEW_RELEASE[0])

    serve(
        http_server,
        statement_page("23 November 2026", extra=PARAGRAPH),
        press_index([*PRESS, NEW_RELEASE]),
    )
    third = watchtower("run", "--once", "--config", str(config))
    assert third.returncode == 0, third.stderr
    assert len(hooks()) == len(first_titles) + 2, "a changed timestamp alone alerts nothing"

    exported = watchtower("sources", "export", "--config", str(config))
    assert exported.returncode == 0, exported.stderr
    assert http_server.url("/feed.json") in exported.stdout
    assert http_server.url("/opml.xml") in exported.stdout
