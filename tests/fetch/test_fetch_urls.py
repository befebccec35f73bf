"""The request line and Host header of a URL are what httpx makes of it, whether the
URL is read on the fast path (plain ASCII, nothing to escape) or by httpx itself."""

from __future__ import annotations

import random
import re
from pathlib import Path

import httpx
import pytest

from watchtower.http11 import Origin, request_parts

SHARED = Path(__file__).resolve().parents[3] / "shared"

CASES = [
    "http://Example.COM:80/a?b=c",
    "https://example.com:443/",
    "https://example.com:8443/feed.xml",
    "http://example.com:8080/a%2Fb?x=1&y=%zz",
    "https://[::1]:8443/p",
    "http://u:p@h.com/x",
    "http://h.com",
    "http://h.com/a b",
    "http://h.com/?q=a+b&c=d#frag",
    "http://h.com/a;b=c",
    "http://h.com/a/./b",
    "http://h.com/a/../b",
    "http://h.com/.",
    "http://h.com/a/..",
    "http://h.com/a?x=/../y",
    "http://h.com/%7e",
    "http://h.com:/x",
    "http://h.com./x",
    "HTTP://H.COM/X",
    "http://h.com/a?",
    "http://h.com?x",
    "http://h.com/x?y#z?w",
    "http://münchen.de/straße?q=ü",
    "http://xn--mnchen-3ya.de/x",
    "http://h.com:080/",
    "http://h.com/a'b(c)*!$,;=:@",
    "http://127.0.0.1:8000/f/00001.xml",
    "http://h.com/%",
    "http://h.com/a\tb",
]


def _httpx(url: str) -> tuple[Origin, bytes, bytes]:
    parsed = httpx.URL(url)
    port = {"http": 80, "https": 443}[parsed.scheme] if parsed.port is None else parsed.port
    return Origin(parsed.scheme, parsed.raw_host.decode(), port), parsed.raw_path, parsed.netloc


def _either(url: str) -> object:
    try:
        return _httpx(url)
    except httpx.InvalidURL as exc:
        return type(exc)


@pytest.mark.parametrize("url", CASES)
def test_request_parts_are_httpx_s(url: str) -> None:
    try:
        ours: object = request_parts(url)
    except httpx.InvalidURL as exc:
        ours = type(exc)
    assert ours == _either(url)


def test_random_urls_agree_with_httpx() -> None:
    rng = random.Random(7)
    alphabet = "aZ09-._~!$&'()*+,;=:@/%?#[] é\\\"<>^`{|}" + "..//"
    for _ in range(3000):
        host = rng.choice(["h.com", "H.Com", "127.0.0.1", "a-b.example"])
        port = rng.choice(["", ":80", ":443", ":8080", ":0", ":65535"])
        rest = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        url = f"{rng.choice(['http', 'https', 'HTTP'])}://{host}{port}/{rest}"
        try:
            expected = _httpx(url)
        except httpx.InvalidURL:
            with pytest.raises(httpx.InvalidURL):
                request_parts(url)
            continue
        assert request_parts(url) == expected, url


def test_every_source_url_in_the_shared_corpora_agrees_with_httpx() -> None:
    if not (SHARED / "corpora").is_dir():
        pytest.skip("../shared/corpora is absent")
    urls: set[str] = set()
    for path in (SHARED / "corpora").rglob("*"):
        if (
            path.suffix.lower() in {".opml", ".xml", ".yaml", ".yml", ".txt"}
            and path.stat().st_size < 5_000_000
        ):
            text = path.read_text(errors="replace")
            urls.update(re.findall(r"https?://[^\s\"'<>]+", text)[:500])
    assert urls
    for url in sorted(urls):
        try:
            expected = _httpx(url)
        except (httpx.InvalidURL, KeyError):
            continue
        assert request_parts(url) == expected, url
