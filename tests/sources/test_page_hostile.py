"""Hostile and malformed pages: entries or a clear ParseError, never a crash or a hang."""

from __future__ import annotations

import random
import time

import pytest

from watchtower.errors import ParseError
from watchtower.models import FetchResult
from watchtower.sources.page import MAX_PAGE_BYTES, decode_page, parse_page

URL = "https://ngo.example.org/statements"


def fetched(body: bytes, ctype: str = "text/html", status: int = 200) -> FetchResult:
    return FetchResult(URL, status, body, {"content-type": ctype} if ctype else {})


def article(text: str = "", head: str = "") -> bytes:
    paragraphs = "".join(
        f"<p>Paragraph {i}: the commission heard testimony from people who had been "
        f"detained and returned across the border, describing what happened next.</p>"
        for i in range(5)
    )
    page = f"<html><head>{head}</head><body><article>{paragraphs}{text}</article></body></html>"
    return page.encode()


def parse_twice(first: bytes, second: bytes, **options: object) -> tuple[str, ...]:
    before = parse_page(fetched(first), source="s", **options)  # type: ignore[arg-type]
    after = parse_page(fetched(second), source="s", previous=before.snapshot, **options)  # type: ignore[arg-type]
    return tuple(line for e in after.entries for line in e.diff)


def test_too_large_is_refused_before_parsing() -> None:
    started = time.monotonic()
    with pytest.raises(ParseError, match="too large"):
        parse_page(fetched(b"<p>x</p>" * (MAX_PAGE_BYTES // 8 + 1)), source="s")
    assert time.monotonic() - started < 2


def test_large_page_parses_in_bounded_time() -> None:
    body = article("".join(f"<p>Filler paragraph number {i} with some words.</p>"
                           for i in range(40_000)))  # fmt: skip
    assert len(body) > 1_500_000
    started = time.monotonic()
    result = parse_page(fetched(body), source="s", select="article")
    assert time.monotonic() - started < 20
    lines = result.snapshot.split("\n\tlinks")[0].split("\n")
    assert len(lines) == 20_000  # MAX_LINES: the rest of a giant page is not watched
    assert lines[-1] == "Filler paragraph number 19994 with some words."


@pytest.mark.parametrize("select", [None, "p"])
def test_deeply_nested_page(select: str | None) -> None:
    depth = 50_000
    body = ("<html><body>" + "<div>" * depth + "<p>Deep statement text here.</p>"
            + "</div>" * depth + article().decode() + "</body></html>").encode()  # fmt: skip
    try:
        result = parse_page(fetched(body), source="s", select=select)
    except ParseError as exc:
        assert exc.reason
    else:
        assert result.snapshot


def test_invalid_bytes_are_replaced_not_fatal() -> None:
    utf8 = article("<p>Café, Menschenrechte für alle, Права человека.</p>")
    bad = utf8.replace(b"Paragraph 2", b"Paragraph \xff\xfe\xc3 2")
    lines = parse_twice(utf8, bad)
    assert len(lines) == 1 and "\ufffd" in lines[0]  # UTF-8 page with a few broken bytes
    assert "Права человека" in decode_page(fetched(bad))


def test_random_binary_is_a_parse_error() -> None:
    noise = random.Random(7).randbytes(200_000)
    with pytest.raises(ParseError, match="binary"):
        parse_page(fetched(noise, ctype=""), source="s")


@pytest.mark.parametrize(
    ("ctype", "reason"),
    [
        ("image/png", "not a web page: image/png"),
        ("application/pdf", "not a web page"),
        ("application/rss+xml; charset=utf-8", "configure it as feed:"),
        ("application/feed+json", "configure it as feed:"),
    ],
)
def test_non_page_content_types(ctype: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_page(fetched(article(), ctype=ctype), source="s")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n\t ",
        b"<html><body><script>document.write('<p>Rendered by JS</p>')</script></body></html>",
        b"<html><head><style>p{}</style></head><body><noscript></noscript></body></html>",
        b"<html><body>" + b"<div></div>" * 1000 + b"</body></html>",
    ],
)
def test_empty_and_script_only_pages_explain_themselves(body: bytes) -> None:
    with pytest.raises(ParseError, match="no readable text"):
        parse_page(fetched(body), source="s")


def test_script_text_never_counts() -> None:
    script = b"<script>var news = 'North Korea human rights report released';</script>"
    assert parse_twice(article(), article().replace(b"</article>", script + b"</article>")) == ()


def test_304_is_not_parsed() -> None:
    with pytest.raises(ParseError, match="304"):
        parse_page(fetched(b"", status=304), source="s")


@pytest.mark.parametrize("select", ["div[", "p:unknown-pseudo", "!!", "a >> b"])
def test_invalid_selector_is_a_parse_error(select: str) -> None:
    with pytest.raises(ParseError, match="invalid CSS selector"):
        parse_page(fetched(article()), source="s", select=select)


def test_invalid_exclude_selector_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="invalid CSS selector"):
        parse_page(fetched(article()), source="s", select="article", exclude_select=["[["])


def test_selector_that_matches_nothing() -> None:
    with pytest.raises(ParseError, match=r"selector `#gone` matches nothing"):
        parse_page(fetched(article()), source="s", select="#gone")


def test_invalid_ignore_pattern() -> None:
    with pytest.raises(ParseError, match="ignore pattern"):
        parse_page(fetched(article()), source="s", ignore=["(unclosed"])


def test_feed_served_as_page_is_read_without_warnings() -> None:
    body = b'<?xml version="1.0"?><rss><channel><title>Feed as a page</title></channel></rss>'
    result = parse_page(fetched(body, ctype="text/html"), source="s")
    assert "Feed as a page" in result.snapshot


def test_plain_text_and_url_like_bodies() -> None:
    for body in (b"https://example.org/only-a-url", b"notes.txt", b"Line one\nLine two"):
        result = parse_page(fetched(body, ctype="text/plain"), source="s")
        assert result.snapshot.split("\n\tlinks")[0] == body.decode().replace("\n", "\n")
    with pytest.raises(ParseError, match="plain text"):
        parse_page(fetched(b"Line one", ctype="text/plain"), source="s", select="p")


@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        ("Menschenrechte für alle".encode("cp1252"), "text/html; charset=iso-8859-1",
         "Menschenrechte für alle"),
        ("Menschenrechte für alle".encode(), "text/html; charset=iso-8859-1",
         "Menschenrechte für alle"),
        ('<meta charset="windows-1251"><p>Права человека</p>'.encode("cp1251"), "text/html",
         "Права человека"),
        ('<meta http-equiv="Content-Type" content="text/html; charset=gb2312"><p>人权报告</p>'
         .encode("gb2312"), "text/html", "人权报告"),
        ("\ufeff<p>BOM page</p>".encode("utf-16-le"), "text/html; charset=utf-8", "BOM page"),
        ("<p>Droits de l’homme</p>".encode("cp1252"), "text/html", "Droits de l’homme"),
        (b"<p>bogus label ok</p>", "text/html; charset=x-no-such-charset",
         "bogus label ok"),
    ],
)  # fmt: skip
def test_decoding(body: bytes, ctype: str, expected: str) -> None:
    assert expected in decode_page(fetched(body, ctype=ctype))


def test_many_links_are_bounded() -> None:
    links = "".join(f'<li><a href="/r/{i}">Release {i}</a></li>' for i in range(20_000))
    body = f"<html><body><ul>{links}</ul></body></html>".encode()
    result = parse_page(fetched(body), source="s", select="ul")
    assert result.snapshot.count("\n\thttps://") <= 5_000


def test_huge_single_line_is_truncated() -> None:
    body = b"<html><body><main><p>" + b"word " * 400_000 + b"</p></main></body></html>"
    result = parse_page(fetched(body), source="s", select="main")
    assert max(len(line) for line in result.snapshot.splitlines()) <= 5_000
