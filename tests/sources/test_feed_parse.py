"""parse_feed: feed bytes → plain-text, http(s)-only entries, or a short ParseError."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from watchtower.errors import ParseError
from watchtower.models import FetchResult
from watchtower.sources.feed import (
    MAX_ENTRIES,
    MAX_TITLE,
    parse_feed,
    strip_entity_declarations,
)


def result(body: bytes, ctype: str = "application/rss+xml", url: str = "https://news.example/feed",
           **headers: str) -> FetchResult:  # fmt: skip
    hdrs = {"content-type": ctype, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return FetchResult(url=url, status=200, body=body, headers=hdrs)


RSS20 = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>News</title><link>https://news.example/</link>
<item><title>UN report on North Korea</title><link>https://news.example/a?utm_source=rss&amp;id=7#top</link>
<guid isPermaLink="false">item-1</guid>
<description>&lt;p&gt;Forced &lt;b&gt;repatriation&lt;/b&gt;.&lt;/p&gt;</description>
<pubDate>Tue, 02 Jan 2024 09:30:00 +0900</pubDate></item>
<item><title>Second</title><link>/relative/b</link></item>
</channel></rss>"""

RSS091 = b"""<?xml version="1.0"?>
<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"
 "http://my.netscape.com/publish/formats/rss-0.91.dtd">
<rss version="0.91"><channel><title>Old</title><link>http://old.example/</link>
<description>d</description><language>en</language>
<item><title>Ninety-one</title><link>http://old.example/91</link><description>x</description></item>
</channel></rss>"""

RSS092 = b"""<rss version="0.92"><channel><title>T</title>
<item><title>Ninety-two</title><link>http://e.example/92</link></item></channel></rss>"""

RSS10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="http://r.example/"><title>R</title><link>http://r.example/</link>
<description>d</description></channel>
<item rdf:about="http://r.example/1"><title>RDF item</title><link>http://r.example/1</link>
<dc:date>2024-03-01T12:00:00Z</dc:date></item>
</rdf:RDF>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example/blog/">
<title>A</title><id>urn:a</id><updated>2024-05-01T00:00:00Z</updated>
<entry><title type="html">Atom &lt;em&gt;entry&lt;/em&gt;</title><id>urn:uuid:1</id>
<link rel="alternate" href="posts/1"/><updated>2024-05-01T10:00:00+02:00</updated>
<summary>Short</summary>
<content type="html">&lt;p&gt;Long &lt;script&gt;alert(1)&lt;/script&gt;body&lt;/p&gt;</content>
</entry></feed>"""


def test_rss20_entries() -> None:
    entries = parse_feed(result(RSS20), "News")
    assert [e.title for e in entries] == ["UN report on North Korea", "Second"]
    first, second = entries
    assert first.source == "News" and first.kind == "feed"
    assert first.guid == "item-1"
    assert first.url == "https://news.example/a?id=7"  # tracking and fragment dropped
    assert first.summary == "Forced repatriation."
    assert first.published == datetime(2024, 1, 2, 0, 30, tzinfo=UTC)
    assert second.url == "https://news.example/relative/b"  # resolved against the feed URL
    assert second.guid == "https://news.example/relative/b"  # no guid: canonical link
    assert second.published is None


def test_relative_links_follow_content_location_when_the_server_sends_one() -> None:
    got = parse_feed(result(RSS20, content_location="https://mirror.example/feeds/"), "News")
    assert got[1].url == "https://mirror.example/relative/b"


@pytest.mark.parametrize(
    ("link", "url"),
    [
        ("HTTPS://News.Example:443/a?b=2&amp;a=1&amp;fbclid=x", "https://news.example/a?a=1&b=2"),
        ("https://news.example/a;p?", "https://news.example/a;p"),
        ("//cdn.example/x", "https://cdn.example/x"),  # scheme-relative: the feed's scheme
        ("https:/short", "https://news.example/short"),  # no host: joined to the feed URL
        ("../up/c", "https://news.example/up/c"),
        ("https://[2001:db8::1]:8443/v", "https://[2001:db8::1]:8443/v"),
        ("ftp://files.example/x", None),
    ],
)
def test_links_are_resolved_and_made_canonical(link: str, url: str | None) -> None:
    body = f"""<rss version="2.0"><channel><title>T</title>
<item><title>One</title><link>{link}</link><guid>g</guid></item></channel></rss>"""
    assert parse_feed(result(body.encode()), "News")[0].url == url


@pytest.mark.parametrize(
    ("body", "title", "url"),
    [
        (RSS091, "Ninety-one", "http://old.example/91"),
        (RSS092, "Ninety-two", "http://e.example/92"),
        (RSS10, "RDF item", "http://r.example/1"),
    ],
)
def test_older_rss_versions(body: bytes, title: str, url: str) -> None:
    (entry,) = parse_feed(result(body, "text/xml"), "s")
    assert entry.title == title and entry.url == url


def test_rss10_date() -> None:
    (entry,) = parse_feed(result(RSS10), "s")
    assert entry.published == datetime(2024, 3, 1, 12, tzinfo=UTC)


def test_atom_entry() -> None:
    (entry,) = parse_feed(result(ATOM, "application/atom+xml"), "s")
    assert entry.title == "Atom entry"
    assert entry.guid == "urn:uuid:1"
    assert entry.url == "https://atom.example/blog/posts/1"  # xml:base
    assert entry.published == datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert entry.summary == "Short"
    assert entry.content == "Long body"  # script dropped


def test_no_guid_no_link_gets_content_hash() -> None:
    body = b'<rss version="2.0"><channel><item><title>T</title><description>D</description>'
    body += b"</item></channel></rss>"
    (entry,) = parse_feed(result(body), "s")
    assert entry.guid.startswith("sha256:") and entry.url is None
    assert parse_feed(result(body), "s")[0].guid == entry.guid  # stable


def test_hostile_fields_become_plain_text_and_links_only_http() -> None:
    body = b"""<rss version="2.0"><channel><title>x</title>
<item><title>&lt;script&gt;alert('t')&lt;/script&gt;Real title</title>
<link>javascript:alert(document.cookie)</link>
<description><![CDATA[<svg><a xlink:href="javascript:alert(1)">click</a></svg>
<form action="https://evil.example/"><p>Text</p></form><img src=x onerror=alert(2)>]]>
</description>
</item>
<item><title>data</title><link>data:text/html,&lt;script&gt;alert(1)&lt;/script&gt;</link></item>
</channel></rss>"""
    first, second = parse_feed(result(body), "s")
    assert first.title == "Real title"
    assert first.url is None and second.url is None
    for e in (first, second):
        for text in (e.title, e.summary, e.content):
            assert "<" not in text and "alert" not in text and "javascript" not in text


def test_html_page_is_not_a_feed() -> None:
    page = b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Hi</p></body></html>"
    with pytest.raises(ParseError) as err:
        parse_feed(result(page, "text/html"), "s")
    assert err.value.reason == "not a feed: HTML page"


@pytest.mark.parametrize("body", [b"", b"   \n\t "])
def test_empty_document(body: bytes) -> None:
    with pytest.raises(ParseError) as err:
        parse_feed(result(body), "s")
    assert err.value.reason == "empty document"


def test_garbage_has_short_reason() -> None:
    with pytest.raises(ParseError) as err:
        parse_feed(result(b"\x00\x01 this is not xml at all {"), "s")
    assert err.value.reason.startswith("not a feed")
    assert len(err.value.reason) < 200


def test_body_that_is_a_local_path_is_never_opened() -> None:
    for body in (b"/etc/passwd", b"file:///etc/passwd", b"http://169.254.169.254/latest/"):
        with pytest.raises(ParseError):
            parse_feed(result(body, "text/plain"), "s")


def test_valid_feed_without_items_is_empty_list() -> None:
    assert (
        parse_feed(result(b'<rss version="2.0"><channel><title>t</title></channel></rss>'), "s")
        == []
    )


def test_invalid_utf8_still_parses() -> None:
    body = RSS20.replace(b"Second", b"Sec\xff\xfeond \xc3(")
    entries = parse_feed(result(body, "application/rss+xml; charset=utf-8"), "s")
    assert len(entries) == 2 and entries[1].title.startswith("Sec")


def test_charset_from_http_header_is_used() -> None:
    body = '<rss version="2.0"><channel><item><title>Café Zürich</title></item></channel></rss>'
    entries = parse_feed(result(body.encode("iso-8859-1"), "text/xml; charset=iso-8859-1"), "s")
    assert entries[0].title == "Café Zürich"


def test_utf16_feed() -> None:
    body = '<?xml version="1.0" encoding="utf-16"?><rss version="2.0"><channel><item>'
    body += "<title>北朝鮮</title></item></channel></rss>"
    (entry,) = parse_feed(result(body.encode("utf-16")), "s")
    assert entry.title == "北朝鮮"


def test_entries_and_titles_are_capped() -> None:
    items = b"".join(
        b"<item><title>" + b"T" * (MAX_TITLE * 3) + b"</title>"
        b"<guid isPermaLink='false'>g%d</guid></item>" % i
        for i in range(MAX_ENTRIES + 40)
    )
    entries = parse_feed(result(b'<rss version="2.0"><channel>' + items + b"</channel></rss>"), "s")
    assert len(entries) == MAX_ENTRIES
    # undated entries beyond the cap: the last ones in the document are kept
    assert entries[0].guid == "g40" and entries[-1].guid == f"g{MAX_ENTRIES + 39}"
    assert len(entries[0].title) == MAX_TITLE


def test_large_internal_entity_is_not_expanded() -> None:
    """One large entity repeated thousands of times must not expand."""
    decl = b'<!DOCTYPE rss [<!ENTITY big "' + b"A" * 20_000 + b'">]>'
    refs = b"&big;" * 3000
    body = decl + b'<rss version="2.0"><channel><item><title>' + refs + b"</title>"
    body += b"<description>" + refs + b"</description></item></channel></rss>"
    entries = parse_feed(result(body), "s")
    for e in entries:
        assert "AAAA" not in e.title + e.summary + e.content


def test_external_entities_are_stripped(tmp_path: object) -> None:
    body = b"""<?xml version="1.0"?><!DOCTYPE rss [
<!ENTITY secret SYSTEM "file:///etc/passwd">
<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;
]><rss version="2.0"><channel><item><title>x&secret;y</title></item></channel></rss>"""
    entries = parse_feed(result(body), "s")
    assert all("root:" not in e.title for e in entries)


def test_entity_stripping_handles_quotes_case_and_wide_encodings() -> None:
    body = b"<!DOCTYPE r [<!ENTITY a \"x > y\"><!entity b '<p>'>]><r>&a;</r>"
    assert strip_entity_declarations(body) == b"<!DOCTYPE r []><r>&a;</r>"
    wide = body.decode().encode("utf-16")
    assert strip_entity_declarations(wide).decode("utf-16") == "<!DOCTYPE r []><r>&a;</r>"
    with pytest.raises(ParseError, match="malformed entity declaration"):
        strip_entity_declarations(b'<!DOCTYPE r [<!ENTITY a "never closed')


def test_billion_laughs_is_harmless() -> None:
    lol = [b'<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = b"lol" if i == 1 else b"lol%d" % (i - 1)
        lol.append(
            b'<!ENTITY lol%d "' % i + b"&" + prev + b";" * 1 + (b"&" + prev + b";") * 9 + b'">'
        )
    body = b"<?xml version='1.0'?><!DOCTYPE rss [" + b"".join(lol) + b"]>"
    body += b'<rss version="2.0"><channel><item><title>&lol9;</title></item></channel></rss>'
    for e in parse_feed(result(body), "s"):
        assert "lollol" not in e.title


def test_json_document_is_named() -> None:
    with pytest.raises(ParseError) as err:
        parse_feed(result(b'{"version": "https://jsonfeed.org/version/1.1", "items": []}'), "s")
    assert err.value.reason == "not a feed: JSON document"


def test_channel_without_items_in_unversioned_format_is_empty() -> None:
    body = b'<CHANNEL HREF="http://cdf.example/"><TITLE>Example feed</TITLE></CHANNEL>'
    assert parse_feed(result(body, "application/xml"), "s") == []
