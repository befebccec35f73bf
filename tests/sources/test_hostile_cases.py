"""Hand-made hostile sources, each through the real Fetcher → worker parse path.

The address policy is ON (``allow_private=False``); only the exact endpoint of the
test server is allowed, so a redirect to any other loopback port, to a private or
to the link-local metadata address is refused as it would be in production.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import brotli
import pytest

from tests.sources.test_hostile_corpus import PeakRSS
from tests.support import LoopbackHTTP, Response, shared_path, trickle
from watchtower.errors import (
    AddressRefused,
    BodyTooLarge,
    FetchError,
    FetchTimeout,
    ParseError,
    RedirectError,
)
from watchtower.fetch import Fetcher
from watchtower.models import Entry
from watchtower.sources.worker import parse_in_worker

MB = 1024 * 1024
RSS_HEAD = b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>t</title>'
RSS_TAIL = b"</channel></rss>"
GOOD = RSS_HEAD + b"<item><title>ok</title><link>https://e.example/1</link></item>" + RSS_TAIL
XML = {"Content-Type": "application/rss+xml; charset=utf-8"}


@pytest.fixture(scope="module")
def srv() -> Iterator[LoopbackHTTP]:
    with LoopbackHTTP() as server:
        yield server


@pytest.fixture(scope="module")
def other() -> Iterator[LoopbackHTTP]:
    """A second loopback server that the policy must keep Watchtower away from."""
    with LoopbackHTTP() as server:
        server.routes["/"] = Response(200, XML, GOOD)
        yield server


def port_of(server: LoopbackHTTP) -> int:
    return int(server.base.rsplit(":", 1)[1])


def poll(
    server: LoopbackHTTP, path: str, *, timeout: float = 5, max_bytes: int = 10 * MB
) -> list[Entry] | FetchError | ParseError:
    """Fetch and parse one source as the daemon does; failures come back as values."""

    async def go() -> list[Entry]:
        async with Fetcher(
            timeout=timeout,
            max_bytes=max_bytes,
            allow_private=False,
            allowed_endpoints=[("127.0.0.1", port_of(server))],
            contact="https://example.org/tests",
            per_host_interval=0,
        ) as fetcher:
            result = await fetcher.fetch(server.url(path))
            return await parse_in_worker("feed", result, path, timeout=10, memory=256 * MB)

    try:
        return asyncio.run(go())
    except (FetchError, ParseError) as exc:
        return exc


def all_text(entries: list[Entry]) -> str:
    return "\n".join(f"{e.title}\n{e.summary}\n{e.content}\n{e.url}" for e in entries)


# --------------------------------------------------------------------- entities


@pytest.mark.parametrize("name", ["system_entity.xml", "system_entity_http.xml"])
def test_xxe_feedvalidator_cases_read_nothing(srv: LoopbackHTTP, name: str) -> None:
    body = shared_path("corpora", "w3c-feedvalidator", name).read_bytes()
    srv.routes[f"/xxe/{name}"] = Response(200, XML, body)
    out = poll(srv, f"/xxe/{name}")
    assert isinstance(out, list)
    assert "boot" not in all_text(out).lower() and "ping" not in all_text(out)


def test_xxe_to_a_local_file_and_a_loopback_url(
    srv: LoopbackHTTP, other: LoopbackHTTP, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    dtd = b'<!DOCTYPE rss [<!ENTITY s SYSTEM "file://' + str(secret).encode() + b'">'
    dtd += b'<!ENTITY p SYSTEM "' + other.url("/ping").encode() + b'">'
    dtd += b'<!ENTITY % r SYSTEM "' + other.url("/dtd").encode() + b'"> %r;]>'
    body = dtd + RSS_HEAD[RSS_HEAD.index(b"<rss") :]
    body += b"<item><title>a&s;b&p;c</title><description>&s;</description></item>" + RSS_TAIL
    srv.routes["/xxe/local"] = Response(200, XML, body)
    out = poll(srv, "/xxe/local")
    assert isinstance(out, list) and len(out) == 1
    assert "TOP-SECRET-MARKER" not in all_text(out)
    assert other.requests_to("/ping") == [] and other.requests_to("/dtd") == []


def test_billion_laughs(srv: LoopbackHTTP) -> None:
    decls = [b'<!ENTITY lol0 "lol">']
    decls += [b'<!ENTITY lol%d "' % i + b"&lol%d;" % (i - 1) * 10 + b'">' for i in range(1, 10)]
    body = b"<?xml version='1.0'?><!DOCTYPE rss [" + b"".join(decls) + b"]>"
    body += RSS_HEAD[RSS_HEAD.index(b"<rss") :]
    body += b"<item><title>&lol9;</title><description>&lol9;&lol9;</description></item>"
    body += RSS_TAIL
    srv.routes["/laughs"] = Response(200, XML, body)
    t0 = time.monotonic()
    with PeakRSS() as mem:
        out = poll(srv, "/laughs")
    assert time.monotonic() - t0 < 10
    assert isinstance(out, list | ParseError)
    if isinstance(out, list):
        assert "lollol" not in all_text(out)
    assert mem.growth < 200 * MB


def test_large_internal_entity_repeated_thousands_of_times(srv: LoopbackHTTP) -> None:
    """A 56 kB feed whose entity expands to a 100 MB title."""
    body = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY big "' + b"A" * 50_000 + b'">]>'
    body += RSS_HEAD[RSS_HEAD.index(b"<rss") :] + b"<item><title>" + b"&big;" * 2000
    body += b"</title><link>https://e.example/big</link></item>" + RSS_TAIL
    srv.routes["/bigentity"] = Response(200, XML, body)
    t0 = time.monotonic()
    with PeakRSS() as mem:
        out = poll(srv, "/bigentity")
    assert time.monotonic() - t0 < 10
    assert isinstance(out, list) and len(out) == 1
    assert "AAAA" not in all_text(out) and len(out[0].title) <= 1000
    assert out[0].url == "https://e.example/big"
    assert mem.growth < 200 * MB


# --------------------------------------------------------------------- bombs and sizes


def gzip_bomb(size: int) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = b"\0" * MB
    return b"".join(comp.compress(zeros) for _ in range(size // MB)) + comp.flush()


def test_gzip_bomb_stops_at_the_cap(srv: LoopbackHTTP) -> None:
    bomb = gzip_bomb(64 * MB)
    many = gzip.compress(b"\0" * MB) * 1024  # 1 GB in 1,024 gzip members
    assert len(bomb) < 100_000 and len(many) < 1_100_000
    srv.routes["/gzbomb"] = Response(200, {"Content-Encoding": "gzip"}, bomb)
    srv.routes["/gzbomb-members"] = Response(200, {"Content-Encoding": "gzip"}, many)
    srv.routes["/deflatebomb"] = Response(
        200, {"Content-Encoding": "deflate"}, zlib.compress(b"\0" * 64 * MB)
    )
    with PeakRSS() as mem:
        for path in ("/gzbomb", "/gzbomb-members", "/deflatebomb"):
            out = poll(srv, path)
            assert isinstance(out, BodyTooLarge), (path, out)
            assert out.reason == "body over 10 MB"
    assert mem.growth < 200 * MB


def test_brotli_body_is_refused_not_inflated(srv: LoopbackHTTP) -> None:
    comp = brotli.Compressor(quality=5)
    zeros = b"\0" * MB
    bomb = b"".join(comp.process(zeros) for _ in range(200)) + comp.finish()
    srv.routes["/brbomb"] = Response(200, {"Content-Encoding": "br"}, bomb)
    srv.routes["/brfeed"] = Response(200, {"Content-Encoding": "br", **XML}, brotli.compress(GOOD))
    with PeakRSS() as mem:
        for path in ("/brbomb", "/brfeed"):
            out = poll(srv, path)
            assert isinstance(out, FetchError) and out.reason == "unsupported content encoding br"
    assert mem.growth < 100 * MB
    assert srv.requests_to("/brfeed")[0].headers["accept-encoding"] == "gzip, deflate"


def test_one_gigabyte_stream_is_cut_at_the_cap(srv: LoopbackHTTP) -> None:
    produced = 0

    def endless(_req: Any) -> Response:
        def chunks() -> Iterator[bytes]:
            nonlocal produced
            block = b"<!-- padding -->" * 4096  # 64 kB
            for _ in range(16 * 1024):  # 1 GB, generated as it is sent
                produced += 1
                yield block

        return Response(200, XML, chunks())

    srv.routes["/gigabyte"] = endless
    srv.routes["/declared"] = Response(200, {"Content-Length": str(1 << 30)}, b"")
    t0 = time.monotonic()
    with PeakRSS() as mem:
        out = poll(srv, "/gigabyte")
    assert isinstance(out, BodyTooLarge) and out.reason == "body over 10 MB"
    assert time.monotonic() - t0 < 10
    assert produced < 16 * 1024 // 4  # the server was stopped long before 1 GB
    assert mem.growth < 200 * MB
    declared = poll(srv, "/declared")
    assert isinstance(declared, BodyTooLarge)


def test_trickling_server_stops_at_the_deadline(srv: LoopbackHTTP) -> None:
    srv.routes["/trickle"] = lambda _req: Response(200, XML, trickle(GOOD, 1.0))
    t0 = time.monotonic()
    out = poll(srv, "/trickle", timeout=2)
    took = time.monotonic() - t0
    assert isinstance(out, FetchTimeout) and out.reason == "timeout after 2 s"
    assert took < 2 + 1


# --------------------------------------------------------------------- redirects and addresses


def test_redirect_loop(srv: LoopbackHTTP) -> None:
    srv.routes["/loop-a"] = Response(302, {"Location": "/loop-b"}, b"")
    srv.routes["/loop-b"] = Response(302, {"Location": "/loop-a"}, b"")
    srv.routes["/self"] = Response(301, {"Location": "/self"}, b"")
    for path in ("/loop-a", "/self"):
        out = poll(srv, path)
        assert isinstance(out, RedirectError) and out.reason == "redirect loop"


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:{other}/", "redirect to loopback address 127.0.0.1 refused"),
        ("http://localhost:{other}/", "redirect to loopback address 127.0.0.1 refused"),
        (
            "http://[::ffff:127.0.0.1]:{other}/",
            "redirect to loopback address ::ffff:7f00:1 refused",
        ),
        (
            "http://169.254.169.254/latest/meta-data/",
            "redirect to link-local address 169.254.169.254 refused",
        ),
        ("http://10.0.0.5/feed", "redirect to private address 10.0.0.5 refused"),
        ("http://0.0.0.0:{other}/", "redirect to unspecified address 0.0.0.0 refused"),
        ("file:///etc/passwd", "redirect to file: URL refused (only http and https)"),
    ],
)
def test_redirect_to_internal_addresses_refused(
    srv: LoopbackHTTP, other: LoopbackHTTP, target: str, reason: str
) -> None:
    location = target.format(other=port_of(other))
    srv.routes["/to-internal"] = Response(302, {"Location": location}, b"")
    before = len(other.requests)
    out = poll(srv, "/to-internal")
    assert isinstance(out, AddressRefused), out
    assert out.reason == reason
    assert len(other.requests) == before  # nothing reached the other server


# --------------------------------------------------------------------- hostile content


def test_invalid_utf8(srv: LoopbackHTTP) -> None:
    body = RSS_HEAD + b"<item><title>caf\xe9 \xff\xfe bad \xc3( bytes</title></item>" + RSS_TAIL
    srv.routes["/badutf8"] = Response(200, XML, body)
    out = poll(srv, "/badutf8")
    assert isinstance(out, list) and len(out) == 1 and "bad" in out[0].title


@pytest.mark.parametrize("body", [b"/etc/passwd", b"file:///etc/passwd", b"~/.ssh/id_rsa"])
def test_body_that_is_a_local_path(srv: LoopbackHTTP, body: bytes) -> None:
    srv.routes["/pathbody"] = Response(200, XML, body)
    out = poll(srv, "/pathbody")
    assert isinstance(out, ParseError)
    assert out.reason.startswith("not a feed") and "root:" not in out.reason


def test_javascript_links_and_script_titles(srv: LoopbackHTTP) -> None:
    body = (
        RSS_HEAD
        + b"""
<item><title>&lt;script&gt;alert(1)&lt;/script&gt;Headline</title>
<link>javascript:alert(document.cookie)</link><guid isPermaLink="false">a</guid>
<description>&lt;img src=x onerror="alert(2)"&gt;
&lt;a href="javascript:x()"&gt;Body&lt;/a&gt;</description>
</item>
<item><title><![CDATA[<script>steal()</script>Second]]></title>
<link>  JAVASCRIPT:alert(3)</link><guid isPermaLink="false">b</guid></item>
<item><title>Third</title><link>vbscript:msgbox(1)</link><guid isPermaLink="false">c</guid></item>
"""
        + RSS_TAIL
    )
    srv.routes["/js"] = Response(200, XML, body)
    out = poll(srv, "/js")
    assert isinstance(out, list)
    assert [e.title for e in out] == ["Headline", "Second", "Third"]
    assert [e.url for e in out] == [None, None, None]
    text = all_text(out).lower()
    assert "<" not in text and "script" not in text and "alert" not in text


def test_html_page_instead_of_feed(srv: LoopbackHTTP) -> None:
    srv.routes["/page"] = Response(
        200, {"Content-Type": "text/html"}, b"<!doctype html><html><body><h1>Hi</h1></body></html>"
    )
    out = poll(srv, "/page")
    assert isinstance(out, ParseError) and out.reason == "not a feed: HTML page"


def test_a_good_feed_still_works_after_all_that(srv: LoopbackHTTP) -> None:
    srv.routes["/good"] = Response(200, XML, GOOD)
    out = poll(srv, "/good")
    assert isinstance(out, list) and out[0].url == "https://e.example/1"
