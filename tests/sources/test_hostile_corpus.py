"""The real-world input suite: ~2,100 third-party feeds through fetch → worker parse.

Every file of ../shared/corpora/feedparser-tests (wellformed, illformed, encoding,
entities, json; their ``Header:`` lines sent as HTTP headers) and
../shared/corpora/news-feeds is served by one loopback server and fetched by a
:class:`Fetcher` with the address policy ON (only that server's exact endpoint is
allowed), then parsed by :func:`parse_in_worker`. Asserted: nothing raises anything
but a short reason, nothing hangs, every file that contains items yields entries,
and the daemon-side memory stays bounded.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import resource
import threading
import time
from pathlib import Path

from tests.support import LoopbackHTTP, Response, shared_path
from watchtower.errors import FetchError, ParseError
from watchtower.fetch import Fetcher
from watchtower.models import Entry
from watchtower.sources.feed import MAX_ENTRIES
from watchtower.sources.worker import parse_in_worker

MB = 1024 * 1024
FOLDERS = ("wellformed", "illformed", "encoding", "entities", "json")
HEADER = re.compile(rb"^Header:\s+([^:\r\n]+):([^\r\n]*)$", re.MULTILINE)
ITEM = re.compile(r"<(?:\w+:)?(?:item|entry)[\s>/]", re.IGNORECASE)
COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
WIDE = ("utf-32-le", "utf-32-be", "utf-16-le", "utf-16-be")
TYPES = {".rss": "application/rss+xml", ".atom": "application/atom+xml"}


class PeakRSS:
    """Samples this process's resident memory every few ms; ``growth`` is peak − start."""

    def __init__(self, every: float = 0.005) -> None:
        self.every = every
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self._rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start

    def __enter__(self) -> PeakRSS:
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        # ru_maxrss is the lifetime peak: if it rose during the block, count that too.
        maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        if maxrss_after > self.maxrss_before:
            self.peak = max(self.peak, maxrss_after)


def has_items(raw: bytes) -> bool:
    """Whether a file holds an ``<item>``/``<entry>`` element (in any encoding)."""
    texts = [raw.decode("latin-1")]
    for codec in WIDE:
        if any(s.encode(codec) in raw for s in ("<!", "<r", "<f", "<?")):
            texts.append(raw.decode(codec, "replace"))
            break
    return any(ITEM.search(COMMENT.sub("", text)) for text in texts)


def route(path: Path) -> tuple[Response, bool]:
    raw = path.read_bytes()
    headers = {k.decode().strip(): v.decode("latin-1").strip() for k, v in HEADER.findall(raw)}
    if not any(k.lower() == "content-type" for k in headers):
        guessed = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
        headers["Content-Type"] = guessed or "application/xml"
    # A fresh connection per file: the test server's small writes otherwise meet
    # delayed ACKs on kept-alive connections (40 ms per request).
    headers["Connection"] = "close"
    return Response(200, headers, raw), has_items(raw)


def corpus() -> list[Path]:
    tests = shared_path("corpora", "feedparser-tests")
    news = shared_path("corpora", "news-feeds")
    files = sorted(p for d in FOLDERS for p in (tests / d).rglob("*") if p.is_file())
    files += sorted(p for p in news.iterdir() if p.is_file() and not p.name.startswith("LICENSE"))
    return files


async def fetch_and_parse_all(
    server: LoopbackHTTP, paths: dict[str, Path]
) -> dict[str, list[Entry] | str]:
    port = int(server.base.rsplit(":", 1)[1])
    limit = asyncio.Semaphore(16)
    async with Fetcher(
        timeout=10,
        max_bytes=10 * MB,
        allow_private=False,
        allowed_endpoints=[("127.0.0.1", port)],
        contact="https://example.org/watchtower-tests",
        per_host_connections=16,
        per_host_interval=0,
    ) as fetcher:

        async def one(name: str) -> list[Entry] | str:
            async with limit:
                try:
                    result = await fetcher.fetch(server.url(name))
                    return await parse_in_worker("feed", result, name, timeout=20, memory=512 * MB)
                except (FetchError, ParseError) as exc:
                    return exc.reason

        async with asyncio.timeout(55):
            answers = await asyncio.gather(*(one(name) for name in paths))
    return dict(zip(paths, answers, strict=True))


def test_every_corpus_file_fetched_and_parsed_without_crash_or_hang() -> None:
    files = corpus()
    root = shared_path("corpora")
    expect_items: dict[str, bool] = {}
    with LoopbackHTTP() as server:
        paths: dict[str, Path] = {}
        for path in files:
            name = "/" + path.relative_to(root).as_posix()
            server.routes[name], expect_items[name] = route(path)
            paths[name] = path
        t0 = time.monotonic()
        with PeakRSS() as mem:
            results = asyncio.run(fetch_and_parse_all(server, paths))
        took = time.monotonic() - t0

    assert len(results) == len(files) > 2000
    missing = {n: r for n, r in results.items() if expect_items[n] and not r}
    assert not missing, f"files with items gave no entries: {sorted(missing.items())[:20]}"
    reasons = {n: r for n, r in results.items() if isinstance(r, str)}
    assert all(0 < len(r) <= 200 for r in reasons.values())
    assert not [n for n in reasons if "/news-feeds/" in n], reasons
    assert not [r for r in reasons.values() if r.startswith(("parser crashed", "parser exceeded"))]
    # Nothing a user can click on is anything but http(s); no markup leaks into text.
    for name, entries in results.items():
        if isinstance(entries, list):
            assert len(entries) <= MAX_ENTRIES
            for e in entries:
                assert e.url is None or e.url.startswith(("http://", "https://")), (name, e.url)
                assert "<script" not in (e.title + e.summary + e.content).lower(), name

    news = {Path(n).name: r for n, r in results.items() if "/news-feeds/" in n}
    counts = {k: len(v) for k, v in news.items() if isinstance(v, list)}
    assert counts["guardian.rss"] == 55
    assert counts["huffpost-world-2019-06-30.xml"] == 31
    assert counts["giantbomb-podcast.rss"] == MAX_ENTRIES  # 730 in the file, capped
    assert all(n > 0 for n in counts.values())

    assert mem.growth < 200 * MB, f"daemon-side memory grew {mem.growth / MB:.0f} MB"
    assert took < 55
