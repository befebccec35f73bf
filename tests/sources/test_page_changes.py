"""Page sources over real loopback HTTP: what a poll of a changed page yields.

A page is served by tests.support.LoopbackHTTP, fetched with a real HTTP client, and
parsed against the snapshot of the previous poll, the way the pipeline does it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence

import httpx
import pytest

from tests.support import LoopbackHTTP, Request, Response
from watchtower.models import FetchResult
from watchtower.sources.page import PageParse, parse_page

NAV = """<header><nav><a href="/">Home</a> <a href="/world">World news and analysis</a>
<a href="/asia">Asia: North Korea latest</a></nav></header>"""
SIDEBAR = """<aside class="most-read"><h2>Most read</h2><ol>
<li><a href="/s/1">Pyongyang parade draws crowds again</a></li>
<li><a href="/s/2">Football results of the weekend</a></li></ol></aside>"""
FOOTER = """<footer><p>© 2024 Example News. All rights reserved.</p>
<a href="/privacy">Privacy policy and cookies</a></footer>"""

PARAGRAPHS = [
    "The special rapporteur presented her report to the council on Tuesday morning, "
    "describing conditions in detention facilities across the country in detail.",
    "Witnesses interviewed for the report described forced labour, insufficient food and "
    "the absence of any medical care for detainees held for months without trial.",
    "The report calls on neighbouring states to respect the principle of non-refoulement "
    "and to stop returning people who fled, since they face punishment on return.",
]
NEW_PARAGRAPH = (
    "Late on Wednesday the government rejected the findings, calling the report a "
    "politically motivated fabrication, and refused to let investigators visit."
)


def article(paragraphs: Sequence[str], *, updated: str, views: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>UN report on detention conditions | Example News</title></head><body>
{NAV}<main><article><h1>UN report on detention conditions</h1>
<p class="meta">Updated {updated} · {views} views</p>{body}</article></main>
{SIDEBAR}{FOOTER}</body></html>""".encode()


def press_index(items: Sequence[tuple[str, str, str]], extra: str = "") -> bytes:
    lis = "".join(
        f'<li><a href="{href}">{title}</a> <span class="date">{date}</span></li>'
        for href, title, date in items
    )
    return f"""<html><head><title>Press releases</title>
<base href="https://ngo.example.org/en/"></head><body>{NAV}
<div id="content"><h1>Press releases</h1><p>Page generated at 10:32:15 UTC</p>
<ul class="releases">{lis}</ul>{extra}</div>{SIDEBAR}{FOOTER}</body></html>""".encode()


ITEMS = [
    ("news/2024/03/forced-returns.html", "Forced returns from China must stop, say experts",
     "12 March 2024"),
    ("news/2024/03/detention.html?utm_source=x", "Detention conditions deteriorate further",
     "10 March 2024"),
    ("/en/news/2024/02/food.html", "Food shortages reported in northern provinces",
     "28 February 2024"),
    ("news/2024/02/families.html", "Separated families appeal for reunions", "20 February 2024"),
]  # fmt: skip


class Site:
    """A loopback page whose body a test replaces between polls."""

    def __init__(self, server: LoopbackHTTP, client: httpx.Client, path: str) -> None:
        self.server, self.client, self.path = server, client, path
        self.body, self.ctype = b"", "text/html"
        server.routes[path] = self._serve

    def _serve(self, request: Request) -> Response:
        return Response(200, {"Content-Type": self.ctype}, self.body)

    def fetch(self) -> FetchResult:
        answer = self.client.get(self.server.url(self.path))
        headers = {k.lower(): v for k, v in answer.headers.items()}
        return FetchResult(str(answer.url), answer.status_code, answer.content, headers)


Poll = Callable[..., PageParse]


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[LoopbackHTTP, httpx.Client]]:
    """One server and client for the module (stopping a server takes half a second)."""
    with LoopbackHTTP() as loopback, httpx.Client(timeout=10) as client:
        yield loopback, client


@pytest.fixture
def site(server: tuple[LoopbackHTTP, httpx.Client], request: pytest.FixtureRequest) -> Site:
    path = "/page-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:12]
    return Site(*server, path)


def poll(site: Site, body: bytes, previous: str | None, **options: object) -> PageParse:
    site.body = body
    return parse_page(site.fetch(), source="watched", previous=previous, **options)  # type: ignore[arg-type]


def test_added_paragraph_is_one_entry_and_a_new_timestamp_is_none(site: Site) -> None:
    first = poll(site, article(PARAGRAPHS, updated="12 March 2024 10:32", views="1,204"), None)
    assert first.entries == ()
    assert first.page_hash == hashlib.sha256(first.snapshot.encode()).hexdigest()
    assert "Most read" not in first.snapshot and "Privacy" not in first.snapshot
    assert "Pyongyang" not in first.snapshot and "North Korea" not in first.snapshot

    only_time = poll(
        site, article(PARAGRAPHS, updated="13 March 2024 09:15", views="3,877"), first.snapshot
    )
    assert only_time.entries == () and only_time.removed == ()

    added = poll(
        site,
        article(PARAGRAPHS[:2] + [NEW_PARAGRAPH] + PARAGRAPHS[2:], updated="14 March 2024 08:01",
                views="5,002"),
        only_time.snapshot,
    )  # fmt: skip
    (entry,) = added.entries
    assert entry.kind == "page" and entry.source == "watched"
    assert entry.diff == (NEW_PARAGRAPH,)
    assert entry.summary == NEW_PARAGRAPH
    assert entry.title == "UN report on detention conditions | Example News"
    assert entry.url == site.server.url(site.path)
    assert entry.guid.startswith("page-change:")

    # The same change seen again (a retried poll) has the same guid.
    again = parse_page(site.fetch(), source="watched", previous=only_time.snapshot)
    assert [e.guid for e in again.entries] == [entry.guid]


def test_deleted_text_is_recorded_not_alerted(site: Site) -> None:
    first = poll(site, article(PARAGRAPHS, updated="1 May 2024", views="10"), None)
    shorter = poll(site, article(PARAGRAPHS[:2], updated="2 May 2024", views="12"), first.snapshot)
    assert shorter.entries == ()
    assert shorter.removed == (PARAGRAPHS[2],)


def test_reordered_and_repeated_lines_are_no_change(site: Site) -> None:
    first = poll(site, article(PARAGRAPHS, updated="1 May 2024", views="10"), None)
    shuffled = list(reversed(PARAGRAPHS)) + [PARAGRAPHS[0]]
    later = poll(site, article(shuffled, updated="1 May 2024", views="10"), first.snapshot)
    assert later.entries == () and later.removed == ()


def test_press_release_index_gaining_one_link(site: Site) -> None:
    first = poll(site, press_index(ITEMS), None, select="ul.releases")
    assert first.entries == ()  # adding the page never alerts on its archive
    new = (
        "news/2024/03/un-resolution.html?utm_campaign=rss#main",
        "UN General Assembly adopts resolution on North Korean human rights",
        "14 March 2024",
    )
    later = poll(site, press_index([new, *ITEMS]), first.snapshot, select="ul.releases")
    (entry,) = later.entries
    assert entry.kind == "page"
    assert entry.title == "UN General Assembly adopts resolution on North Korean human rights"
    assert entry.url == "https://ngo.example.org/en/news/2024/03/un-resolution.html"
    assert entry.guid == entry.url
    assert "14 March 2024" in entry.summary


def test_press_release_index_without_a_selector(site: Site) -> None:
    first = poll(site, press_index(ITEMS), None)
    new = ("news/2024/03/un.html", "UN adopts resolution on human rights in the region",
           "14 March 2024")  # fmt: skip
    later = poll(site, press_index([new, *ITEMS]), first.snapshot)
    assert [(e.title, e.url) for e in later.entries] == [
        (new[1], "https://ngo.example.org/en/news/2024/03/un.html")
    ]


def test_index_with_a_new_link_and_a_new_notice(site: Site) -> None:
    notice = "<p>Our office will be closed during the holidays; statements will resume.</p>"
    first = poll(site, press_index(ITEMS), None, select="#content")
    new = ("news/new.html", "Experts urge China to halt deportations", "15 March 2024")
    later = poll(site, press_index([new, *ITEMS], extra=notice), first.snapshot, select="#content")
    kinds = sorted((e.guid.startswith("page-change:"), e.title) for e in later.entries)
    assert kinds == [
        (False, "Experts urge China to halt deportations"),
        (True, "Press releases"),
    ]
    text_entry = next(e for e in later.entries if e.guid.startswith("page-change:"))
    assert text_entry.diff == (
        "Our office will be closed during the holidays; statements will resume.",
    )


def test_a_site_redesign_does_not_flood(site: Site) -> None:
    many = [(f"old/{i}.html", f"Statement number {i} on the situation", "1 March 2024")
            for i in range(30)]  # fmt: skip
    moved = [(f"new/{i}.html", title, date) for i, (_, title, date) in enumerate(many)]
    first = poll(site, press_index(many), None, select="ul.releases")
    later = poll(site, press_index(moved), first.snapshot, select="ul.releases")
    assert later.entries == ()  # same titles, new URLs: recorded, not alerted


def test_select_and_exclude_select_are_honoured(site: Site) -> None:
    def page(main: str, box: str, outside: str) -> bytes:
        return f"""<html><body><div id="main"><p>{main}</p>
        <div class="related"><p>{box}</p></div></div><p>{outside}</p></body></html>""".encode()

    options = {"select": "#main", "exclude_select": [".related"]}
    first = poll(site, page("Statement one.", "Related A", "Outside A"), None, **options)
    assert first.snapshot.startswith("Statement one.\n\tlinks")
    quiet = poll(site, page("Statement one.", "Related B", "Outside B"), first.snapshot, **options)
    assert quiet.entries == ()
    loud = poll(site, page("Statement two.", "Related C", "Outside C"), quiet.snapshot, **options)
    assert [e.diff for e in loud.entries] == [("Statement two.",)]


def test_user_ignore_patterns(site: Site) -> None:
    def page(counter: int, text: str) -> bytes:
        return f"<html><body><main><p>{text}</p><p>Visitors so far: {counter}</p></main>" \
               "</body></html>".encode()  # fmt: skip

    first = poll(site, page(10, "Hello"), None, select="main", ignore=[r"Visitors so far: \d+"])
    same = poll(site, page(99, "Hello"), first.snapshot, select="main",
                ignore=[r"Visitors so far: \d+"])  # fmt: skip
    assert same.entries == ()
    # Without the pattern the counter line is a change (plain numbers are kept).
    loud = poll(site, page(100, "Hello"), same.snapshot, select="main")
    assert [e.diff for e in loud.entries] == [("Visitors so far: 100",)]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("Last updated: 2024-03-12T10:32:00Z", "Last updated: 2024-03-13T08:00:00+09:00"),
        ("Posted 3 hours ago", "Posted 5 days ago"),
        ("Tuesday, March 12, 2024 at 10:32 am EST", "Wednesday, March 13, 2024 at 9:05 pm EST"),
        ("12/03/2024 10:32", "13/03/2024 11:45"),
        ("1,204 views · 12 comments", "1,377 views · 15 comments"),
        ("© 2023 Example", "© 2024 Example"),
        ("Updated 12 Mar. 2024", "Updated 1st April 2024"),
    ],
)
def test_built_in_volatile_patterns(site: Site, before: str, after: str) -> None:
    def page(line: str) -> bytes:
        return f"<html><body><main><p>Fixed text.</p><p>{line}</p></main></body></html>".encode()

    first = poll(site, page(before), None, select="main")
    assert poll(site, page(after), first.snapshot, select="main").entries == ()
    # Turned off, the same change is reported.
    first = poll(site, page(before), None, select="main", default_ignore=False)
    later = poll(site, page(after), first.snapshot, select="main", default_ignore=False)
    assert [e.diff for e in later.entries] == [(after,)]


def test_a_number_that_is_news_is_not_ignored(site: Site) -> None:
    def page(n: int) -> bytes:
        return f"<html><body><main><p>{n} people were returned.</p></main></body></html>".encode()

    first = poll(site, page(44), None, select="main")
    assert len(poll(site, page(60), first.snapshot, select="main").entries) == 1


def test_links_resolve_against_base_href_and_drop_javascript(site: Site) -> None:
    def page(extra: str) -> bytes:
        links = "".join(f'<li><a href="r/{i}">Release number {i}</a></li>' for i in range(4))
        return f"""<html><head><base href="/archive/"></head><body><ul>{links}{extra}</ul>
        </body></html>""".encode()

    first = poll(site, page(""), None, select="ul")
    hostile = (
        '<li><a href="javascript:alert(1)">Click me for the latest release</a></li>'
        '<li><a href="data:text/html,x">Data link release</a></li>'
        '<li><a href=" r/new?utm_source=mail#frag ">A genuinely new release</a></li>'
    )
    later = poll(site, page(hostile), first.snapshot, select="ul")
    links = [(e.title, e.url) for e in later.entries if not e.guid.startswith("page-change:")]
    assert links == [("A genuinely new release", site.server.url("/archive/r/new"))]
    assert all(e.url is None or e.url.startswith("http") for e in later.entries)


def test_first_poll_with_a_foreign_snapshot_reports_no_links(site: Site) -> None:
    """A snapshot stored before links were recorded never makes every link new."""
    later = poll(site, press_index(ITEMS), "Press releases\nsomething else", select="ul")
    assert all(e.guid.startswith("page-change:") for e in later.entries)


def test_an_empty_previous_snapshot_counts_as_a_first_poll(site: Site) -> None:
    assert poll(site, press_index(ITEMS), "", select="ul").entries == ()


def test_page_parse_crosses_a_process_boundary(site: Site) -> None:
    """The pipeline parses in a worker process: results must pickle unchanged."""
    import pickle

    first = poll(site, press_index(ITEMS), None, select="ul")
    later = poll(site, press_index([("n.html", "New item title", "1 May 2024"), *ITEMS]),
                 first.snapshot, select="ul")  # fmt: skip
    assert pickle.loads(pickle.dumps(later)) == later
