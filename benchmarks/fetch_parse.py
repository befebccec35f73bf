"""Fetch + parse throughput for the news-feeds corpus served from loopback.

Serves every feed of ../shared/corpora/news-feeds (Guardian, HuffPost, Reuters, Heise,
a 1.6 MB podcast feed…) from a loopback HTTP server and, per run, fetches each one
``--copies`` times through :class:`watchtower.fetch.Fetcher` (address policy on, one
allowed endpoint) and parses it with :func:`parse_in_worker`, as the daemon does.
For comparison it also times ``parse_feed`` in this process (the parse-only floor,
one core) and the fetch alone.

    .venv/bin/python benchmarks/fetch_parse.py [--runs 5] [--copies 4] [--workers N]

Prints a table of medians over the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import time
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import SHARED, LoopbackHTTP, Response  # noqa: E402

from watchtower.fetch import Fetcher  # noqa: E402
from watchtower.models import FetchResult  # noqa: E402
from watchtower.sources.feed import parse_feed  # noqa: E402
from watchtower.sources.worker import (  # noqa: E402
    parse_in_worker,
    set_worker_count,
    shutdown_workers,
)

MB = 1024 * 1024
TYPES = {".rss": "application/rss+xml", ".atom": "application/atom+xml", ".xml": "application/xml"}


def corpus() -> dict[str, bytes]:
    folder = SHARED / "corpora" / "news-feeds"
    if not folder.is_dir():
        sys.exit(f"{folder} not found (the benchmark needs ../shared)")
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith("LICENSE")
    }


async def fetch_all(server: LoopbackHTTP, urls: list[str], parse: bool) -> tuple[float, int]:
    port = int(server.base.rsplit(":", 1)[1])
    async with Fetcher(
        timeout=20,
        max_bytes=10 * MB,
        allow_private=False,
        allowed_endpoints=[("127.0.0.1", port)],
        contact="https://example.org/benchmark",
        per_host_connections=8,
        per_host_interval=0,
    ) as fetcher:

        async def one(url: str) -> int:
            result = await fetcher.fetch(url)
            if not parse:
                return 0
            entries = await parse_in_worker("feed", result, url, timeout=30, memory=512 * MB)
            return len(entries)

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(one(u) for u in urls))
        return time.perf_counter() - t0, sum(counts)


def parse_floor(feeds: dict[str, bytes], copies: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = 0
    for _ in range(copies):
        for name, body in feeds.items():
            ctype = TYPES.get(Path(name).suffix, "application/xml")
            result = FetchResult(
                url=f"http://127.0.0.1/{name}",
                status=200,
                body=body,
                headers={"content-type": ctype},
            )
            n += len(parse_feed(result, name))
    return time.perf_counter() - t0, n


def feedparser_floor(feeds: dict[str, bytes], copies: int) -> float:
    t0 = time.perf_counter()
    for _ in range(copies):
        for body in feeds.values():
            feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--copies", type=int, default=4, help="times each feed is fetched per run")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    feeds = corpus()
    set_worker_count(args.workers)
    n_feeds = len(feeds) * args.copies
    rows: dict[str, list[float]] = {
        "fetch+parse (workers)": [],
        "fetch only": [],
        "parse only": [],
        "feedparser alone": [],
    }
    entries = 0
    with LoopbackHTTP() as server:
        server._server.socket.listen(256)  # backlog 5 drops SYNs under load: 1 s retries
        for name, body in feeds.items():
            ctype = TYPES.get(Path(name).suffix, "application/xml")
            server.routes[f"/{name}"] = Response(200, {"Content-Type": ctype}, body)
        urls = [server.url(f"/{name}") for name in feeds] * args.copies
        asyncio.run(fetch_all(server, urls[: len(feeds)], parse=True))  # warm the workers
        for _ in range(args.runs):
            took, entries = asyncio.run(fetch_all(server, urls, parse=True))
            rows["fetch+parse (workers)"].append(took)
            took, _ = asyncio.run(fetch_all(server, urls, parse=False))
            rows["fetch only"].append(took)
            took, _ = parse_floor(feeds, args.copies)
            rows["parse only"].append(took)
            rows["feedparser alone"].append(feedparser_floor(feeds, args.copies))
    shutdown_workers()
    size = sum(len(b) for b in feeds.values()) * args.copies
    print(
        f"news-feeds corpus: {len(feeds)} feeds × {args.copies} copies = {n_feeds} fetches, "
        f"{size / MB:.1f} MB, {entries} entries per run; "
        f"{args.workers} parser workers, {os.cpu_count()} CPUs; median of {args.runs} runs"
    )
    print(f"{'path':<24}{'median s':>10}{'feeds/s':>10}{'MB/s':>8}{'min s':>8}{'max s':>8}")
    for label, times in rows.items():
        med = statistics.median(times)
        note = "  (in-process, 1 core)" if label in ("parse only", "feedparser alone") else ""
        print(
            f"{label:<24}{med:>10.3f}{n_feeds / med:>10.1f}{size / MB / med:>8.1f}"
            f"{min(times):>8.3f}{max(times):>8.3f}{note}"
        )


if __name__ == "__main__":
    main()
