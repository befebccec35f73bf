"""Shared helpers for the Watchtower benchmarks: feed generation, a loopback feed server,
a measuring wrapper and the feedparser floor.

Used as a library by ``poll_cycle.py`` and ``scale_304.py``, and as a small command for
the parts that must run in their own process (so they do not share the measured
process's CPU or memory accounting)::

    python benchmarks/_feeds.py serve DIR [--max-seconds S]   # prints "PORT <n>"
    python benchmarks/_feeds.py measure --out F.json [--timeout S] -- CMD...
    python benchmarks/_feeds.py floor DIR --out F.json [--fast]

Everything binds to 127.0.0.1 only; every loop is bounded (request counts, idle
timeouts, a lifetime cap), so a benchmark always stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import html
import io
import json
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared"

# --------------------------------------------------------------------------- text corpus


@dataclass(frozen=True)
class Story:
    title: str
    summary: str


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'])")
_TAG = re.compile(r"<[^>]+>")


def _clean(text: str) -> str:
    return " ".join(html.unescape(_TAG.sub(" ", text)).split())


def _trim_words(text: str, lo: int, hi: int, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: rng.randint(lo, hi)]) if len(words) > hi else " ".join(words)


def _dev_stories() -> list[Story]:
    path = SHARED / "eval" / "dev.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(Story(row["title"], row.get("summary") or row["title"]))
    return out


def _news_feed_stories() -> list[Story]:
    folder = SHARED / "corpora" / "news-feeds"
    names = ["guardian.rss", "huffpost-world-2019-06-30.xml", "reuters-world-2018-01-30.xml"]
    names += ["heraldsun.rss", "heise.atom"]
    try:
        import feedparser  # type: ignore[import-untyped]
    except ImportError:
        return []
    out = []
    for name in names:
        path = folder / name
        if not path.is_file():
            continue
        parsed = feedparser.parse(io.BytesIO(path.read_bytes()))
        for e in parsed.entries:
            title, summary = _clean(e.get("title", "")), _clean(e.get("summary", ""))
            if title and len(summary.split()) >= 8:
                out.append(Story(title, summary))
    return out


def _kcna_rows() -> list[dict[str, Any]]:
    folder = SHARED / "corpora" / "kcna-archive"
    files = sorted(folder.glob("headlines_*.json")) if folder.is_dir() else []
    return list(json.loads(files[-1].read_text(encoding="utf-8"))) if files else []


def _kcna_stories(rows: list[dict[str, Any]], rng: random.Random) -> list[Story]:
    out, seen = [], set()
    for row in rows:
        text = " ".join(str(row.get("story_text") or "").split())
        title = " ".join(str(row.get("headline") or "").split())
        if title and text and title not in seen:
            seen.add(title)
            out.append(Story(title, _trim_words(text, 40, 120, rng)))
    return out


def _sentences(texts: list[str]) -> list[str]:
    """Distinct sentences of 6-60 words from ``texts`` (whole KCNA stories included)."""
    found = (s.strip() for t in texts for s in _SENTENCE.split(" ".join(t.split())))
    return list(dict.fromkeys(s for s in found if 6 <= len(s.split()) <= 60))


_WORDS = (
    "minister council report human rights refugees border china north korea talks trade "
    "sanctions united nations resolution camp labour detention families aid food market "
    "province official agency statement week government court election economy"
).split()


def _generated_stories(rng: random.Random, n: int = 3000) -> list[Story]:
    def sentence(k: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(k)).capitalize() + "."

    return [
        Story(sentence(rng.randint(6, 12))[:-1], " ".join(sentence(12) for _ in range(5)))
        for _ in range(n)
    ]


class Corpus:
    """Realistic title/summary text: the eval set, real news feeds and KCNA stories
    (trimmed to feed-summary size), or generated text when ../shared is absent.

    ``fresh()`` returns an endless sequence of *distinct* stories: the real ones first,
    then recombinations (a title from words of two sentences, a summary of 2-4
    sentences drawn at random from every sentence of the corpora, whole KCNA stories
    included), so two fresh stories share at most a sentence by chance and are never
    near-duplicates of each other."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        kcna = _kcna_rows()
        real = _dev_stories() + _news_feed_stories() + _kcna_stories(kcna, self.rng)
        self.source = "../shared corpora + eval" if real else "generated (../shared absent)"
        self.real = real or _generated_stories(self.rng)
        self.on_topic = _dev_stories()
        texts = [st.summary for st in self.real] + [str(r.get("story_text") or "") for r in kcna]
        self.sentences = _sentences(texts)
        self.rng.shuffle(self.sentences)

    def fresh(self) -> Iterator[Story]:
        yield from self.rng.sample(self.real, len(self.real))
        for _ in range(10**9):
            head = self.rng.choice(self.sentences).rstrip(".").split()
            tail = self.rng.choice(self.sentences).rstrip(".").split()
            cut = self.rng.randrange(max(1, len(tail) - 6))
            title = head[: self.rng.randint(4, 7)] + tail[cut : cut + self.rng.randint(2, 6)]
            body = " ".join(self.rng.sample(self.sentences, self.rng.randint(2, 4)))
            yield Story(" ".join(title), body)


# --------------------------------------------------------------------------- feeds


def _rss(feed_no: int, items: list[tuple[Story, str, datetime]]) -> bytes:
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>Bench outlet {feed_no}</title>",
        f"<link>https://outlet{feed_no}.example/</link>",
        f"<description>Generated benchmark feed {feed_no}</description>",
    ]
    for story, link, when in items:
        esc = html.escape
        parts.append(
            f"<item><title>{esc(story.title)}</title><link>{esc(link)}</link>"
            f'<guid isPermaLink="false">{esc(link)}</guid>'
            f"<pubDate>{format_datetime(when)}</pubDate>"
            f"<description>{esc('<p>' + html.escape(story.summary) + '</p>')}</description>"
            "</item>"
        )
    parts.append("</channel></rss>\n")
    return "\n".join(parts).encode("utf-8")


@dataclass(frozen=True)
class FeedSet:
    folder: Path
    names: list[str]
    items: int
    shared_items: int
    corpus_source: str
    total_bytes: int


def generate_feeds(
    folder: Path, n: int, items: int = 30, shared: float = 0.1, per_story: int = 5, seed: int = 1
) -> FeedSet:
    """Write ``n`` RSS 2.0 feeds of ``items`` items each into ``folder``.

    A ``shared`` fraction of all items are copies of the same story carried by about
    ``per_story`` feeds (same title and summary, a different link and guid per feed);
    on-topic eval stories go into that shared pool first."""
    folder.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(seed)
    rng = random.Random(seed + 1)
    fresh = corpus.fresh()
    n_shared = int(n * items * shared / per_story)
    pool = list(corpus.on_topic[:n_shared])
    pool += [next(fresh) for _ in range(n_shared - len(pool))]
    now = datetime.now(UTC).replace(microsecond=0)
    names, total, shared_count = [], 0, 0
    for f in range(n):
        chosen: list[tuple[Story, str, datetime]] = []
        for i in range(items):
            use_shared = pool and rng.random() < shared
            story = rng.choice(pool) if use_shared else next(fresh)
            shared_count += bool(use_shared)
            link = f"https://outlet{f}.example/news/{f}-{i}-{rng.randrange(10**9)}"
            chosen.append((story, link, now - timedelta(minutes=rng.randint(1, 2880))))
        name = f"{f:05d}.xml"
        body = _rss(f, chosen)
        (folder / name).write_bytes(body)
        names.append(name)
        total += len(body)
    return FeedSet(folder, names, items, shared_count, corpus.source, total)


# --------------------------------------------------------------------------- server

_LAST_MODIFIED = "Sun, 01 Nov 2026 00:00:00 GMT"


class FeedServer:
    """HTTP/1.1 keep-alive server for a folder of feeds, with ETag / Last-Modified and
    304 answers; ``/__stats`` returns (and resets) the status counts and the number of
    TCP connections accepted (``conn``: one per request means no connection reuse)."""

    MAX_REQUESTS_PER_CONNECTION = 1_000_000
    IDLE_TIMEOUT = 30.0

    def __init__(self, folder: Path) -> None:
        self.bodies: dict[str, tuple[bytes, str]] = {}
        for path in sorted(folder.glob("*.xml")):
            body = path.read_bytes()
            etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
            self.bodies["/f/" + path.name] = (body, etag)
        self.counts: dict[str, int] = {}

    def answer(self, method: str, path: str, headers: dict[str, str]) -> bytes:
        if path == "/__stats":
            body = json.dumps(self.counts).encode()
            self.counts = {}
            return self._response(200, {"Content-Type": "application/json"}, body)
        found = self.bodies.get(path)
        if found is None:
            return self._count(404, {}, b"not found\n")
        body, etag = found
        meta = {"ETag": etag, "Last-Modified": _LAST_MODIFIED}
        inm = headers.get("if-none-match")
        ims = headers.get("if-modified-since")
        if (inm is not None and etag in inm) or (inm is None and ims == _LAST_MODIFIED):
            return self._count(304, meta, b"")
        meta["Content-Type"] = "application/rss+xml; charset=utf-8"
        return self._count(200, meta, b"" if method == "HEAD" else body, len(body))

    def _count(self, status: int, headers: dict[str, str], body: bytes, length: int = -1) -> bytes:
        self.counts[str(status)] = self.counts.get(str(status), 0) + 1
        return self._response(status, headers, body, length)

    @staticmethod
    def _response(status: int, headers: dict[str, str], body: bytes, length: int = -1) -> bytes:
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}.get(status, "Error")
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if status != 304:
            lines.append(f"Content-Length: {len(body) if length < 0 else length}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts["conn"] = self.counts.get("conn", 0) + 1
        try:
            for _ in range(self.MAX_REQUESTS_PER_CONNECTION):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.IDLE_TIMEOUT)
                request, *rest = head.decode("latin-1").split("\r\n")
                method, target, _version = request.split(" ", 2)
                headers = {}
                for line in rest:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                if int(headers.get("content-length", "0") or 0):
                    await reader.readexactly(int(headers["content-length"]))
                writer.write(self.answer(method, target.split("?", 1)[0], headers))
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _serve(folder: Path, max_seconds: float) -> None:
    server = FeedServer(folder)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0, backlog=4096)
    port = srv.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    async with srv:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop, max_seconds)


class ServerProcess:
    """The feed server in its own process; ``with ServerProcess(folder) as port: ...``."""

    def __init__(self, folder: Path, max_seconds: float = 7200) -> None:
        self.folder, self.max_seconds = folder, max_seconds
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> ServerProcess:
        cmd = [sys.executable, str(HERE / "_feeds.py"), "serve", str(self.folder)]
        cmd += ["--max-seconds", str(self.max_seconds)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"feed server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/f/{name}"

    def stats(self) -> dict[str, int]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/__stats", timeout=10) as r:
            return {k: int(v) for k, v in json.loads(r.read()).items()}

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# --------------------------------------------------------------------------- measuring


def _tree_rss_kb(root: int) -> int:
    """Sum of VmRSS over ``root`` and its descendants (one /proc scan)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            pid = int(entry.name)
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read().rsplit(b")", 1)[1].split()
            parents[pid] = int(stat[1])
            rss[pid] = int(stat[21]) * (resource.getpagesize() // 1024)
    total, todo = 0, [root]
    for _ in range(100_000):
        if not todo:
            break
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(c for c, p in parents.items() if p == pid)
    return total


def _measure(cmd: list[str], out: Path, timeout: float, log: Path | None) -> None:
    sink = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    peak, deadline, rc = 0, start + timeout, None
    while rc is None:
        with contextlib.suppress(Exception):
            peak = max(peak, _tree_rss_kb(proc.pid))
        try:
            rc = proc.wait(0.1)
        except subprocess.TimeoutExpired:
            if time.perf_counter() > deadline:
                proc.kill()
                rc = proc.wait()
                rc = -9999
    wall = time.perf_counter() - start
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = {
        "wall": wall,
        "rc": rc,
        "maxrss_kb": ru.ru_maxrss,
        "tree_peak_kb": peak,
        "cpu": ru.ru_utime + ru.ru_stime,
    }
    out.write_text(json.dumps(result))


@dataclass(frozen=True)
class Measurement:
    wall: float
    rc: int
    maxrss_mb: float  # largest single process (getrusage RUSAGE_CHILDREN)
    tree_peak_mb: float  # sampled sum over the process tree (10 Hz)
    cpu: float  # user + system seconds of the whole tree
    extra: dict[str, Any]


def measure(
    cmd: Sequence[str],
    workdir: Path,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
    log: Path | None = None,
) -> Measurement:
    """Run ``cmd`` under a fresh wrapper process and return its wall time, CPU and RSS."""
    out = workdir / f"measure-{time.monotonic_ns()}.json"
    wrapper = [sys.executable, str(HERE / "_feeds.py"), "measure", "--out", str(out)]
    wrapper += ["--timeout", str(timeout)]
    if log is not None:
        wrapper += ["--log", str(log)]
    subprocess.run([*wrapper, "--", *cmd], check=True, env=env, timeout=timeout + 60)
    data = json.loads(out.read_text())
    out.unlink()
    return Measurement(
        data["wall"],
        data["rc"],
        data["maxrss_kb"] / 1024,
        data["tree_peak_kb"] / 1024,
        data["cpu"],
        data.get("extra", {}),
    )


# --------------------------------------------------------------------------- floor


def _floor(folder: Path, out: Path, fast: bool) -> None:
    import feedparser

    bodies = [p.read_bytes() for p in sorted(folder.glob("*.xml"))]
    headers = {"content-type": "application/rss+xml; charset=utf-8"}
    kwargs = {"sanitize_html": False, "resolve_relative_uris": False} if fast else {}
    start = time.perf_counter()
    entries = 0
    for body in bodies:
        entries += len(
            feedparser.parse(io.BytesIO(body), response_headers=headers, **kwargs).entries
        )
    out.write_text(json.dumps({"parse_seconds": time.perf_counter() - start, "entries": entries}))


def floor(folder: Path, workdir: Path, fast: bool = False) -> Measurement:
    """feedparser alone, sequentially in one fresh process, over every feed in ``folder``."""
    out = workdir / f"floor-{time.monotonic_ns()}.json"
    cmd = [sys.executable, str(HERE / "_feeds.py"), "floor", str(folder), "--out", str(out)]
    m = measure([*cmd, "--fast"] if fast else cmd, workdir)
    data = json.loads(out.read_text())
    return Measurement(m.wall, m.rc, m.maxrss_mb, m.tree_peak_mb, m.cpu, data)


# --------------------------------------------------------------------------- reporting


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine_line() -> str:
    cores = os.cpu_count() or 0
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    py = ".".join(map(str, sys.version_info[:3]))
    return f"machine: {affinity} usable cores ({cores} online), {model or 'unknown CPU'}, py {py}"


def revision_line() -> str:
    """The Watchtower revision measured: commit, and how many src files differ from it."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = len([x for x in git("status", "--porcelain", "--", "src").splitlines() if x])
    return f"watchtower: {commit}" + (f" + {dirty} uncommitted src file(s)" if dirty else "")


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    print(line.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line.format(*row))


# --------------------------------------------------------------------------- contestants

WATCHTOWER = REPO / ".venv" / "bin" / "watchtower"
URLWATCH_VENV = HERE / ".cache" / "urlwatch-venv"


def bench_env(home: Path | None = None) -> dict[str, str]:
    """The environment for measured commands: bytecode caching on (as for an installed
    package), no inherited Watchtower config, optionally a private HOME."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.pop("WATCHTOWER_CONFIG", None)
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
    return env


def shipped_baseline() -> dict[str, Any]:
    """The ``baseline`` section of config/watchtower.yaml with paths made absolute
    (falls back to the repo's seeds when the shipped config is absent)."""
    path = REPO / "config" / "watchtower.yaml"
    baseline: dict[str, Any] = {"seeds": str(REPO / "seeds")}
    if path.is_file():
        from ruamel.yaml import YAML

        data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        baseline = json.loads(json.dumps(data.get("baseline") or baseline))
    for key in ("seeds", "cache"):
        value = baseline.get(key)
        if isinstance(value, str) and "://" not in value:
            baseline[key] = str((path.parent / value).resolve())
    return baseline


def write_watchtower_config(
    path: Path, store: Path, urls: Sequence[str], polite: bool = False
) -> Path:
    """A Watchtower config (JSON is YAML) for ``urls`` on loopback with a SQLite store.

    Every benchmark feed lives on one host (127.0.0.1), so the per-host politeness
    defaults (2 connections, 1 s between request starts) would turn the cycle into
    ``N`` seconds of waiting; unless ``polite``, the config lifts them the way an
    intranet user would (``per_host_interval: 0s``, ``per_host_connections: 16``)."""
    fetch: dict[str, Any] = {"allow_private_addresses": True, "timeout": "30s"}
    if not polite:
        fetch |= {"per_host_interval": "0s", "per_host_connections": 16}
    config = {
        "store": f"sqlite:///{store}",
        "baseline": shipped_baseline(),
        "fetch": fetch,
        "sources": [
            {"name": f"Bench feed {i:05d}", "feed": url, "every": "30m"}
            for i, url in enumerate(urls)
        ],
    }
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def ensure_urlwatch(upgrade: bool = False) -> tuple[Path, str]:
    """Install the latest urlwatch release into benchmarks/.cache/urlwatch-venv (once)."""
    exe = URLWATCH_VENV / "bin" / "urlwatch"
    if upgrade or not exe.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", "--clear", str(URLWATCH_VENV)], check=True)
        pip = [str(URLWATCH_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "urlwatch"], check=True, timeout=600)
    version = subprocess.run(
        [str(exe), "--version"], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    return exe, version


def write_urlwatch_jobs(path: Path, urls: Sequence[str]) -> Path:
    docs = [f"name: bench {i:05d}\nurl: {url}\n" for i, url in enumerate(urls)]
    path.write_text("---\n".join(docs), encoding="utf-8")
    return path


def urlwatch_cmd(exe: Path, folder: Path) -> list[str]:
    """urlwatch over the jobs in ``folder`` with its config, hooks and cache there too."""
    return [
        str(exe),
        "--urls", str(folder / "urls.yaml"),
        "--config", str(folder / "urlwatch.yaml"),
        "--hooks", str(folder / "hooks.py"),
        "--cache", str(folder / "cache.db"),
    ]  # fmt: skip


def sqlite_counts(db: Path, tables: Sequence[str] = ("item", "story", "alert")) -> dict[str, int]:
    import sqlite3

    counts: dict[str, int] = {}
    if not db.exists():
        return counts
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        for table in tables:
            with contextlib.suppress(sqlite3.Error):
                counts[table] = int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        con.close()
    return counts


# --------------------------------------------------------------------------- profiles

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*)(?::\d+)?\)$")


def _frame_key(frame: str) -> tuple[str, str]:
    found = _FRAME.match(frame)
    return (found["func"], found["file"]) if found else (frame, "")


def summarize_profile(path: Path, top: int = 12) -> str:
    """Summarise a py-spy ``--format raw`` (collapsed stacks) file: samples per process,
    the costliest Watchtower functions (deepest ``watchtower/`` frame of each sample,
    so library time is charged to the Watchtower function that called it) and the
    costliest leaf functions overall."""
    procs: dict[str, int] = {}
    ours: dict[str, int] = {}
    ours_incl: dict[str, int] = {}
    leaves: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        proc = frames.pop(0) if frames and frames[0].startswith("process ") else "?"
        kind = "worker" if "_child_main" in stack else "main"
        procs[f"{kind} {proc.split(':', 1)[0]}"] = procs.get(f"{kind} {proc.split(':', 1)[0]}", 0)
        procs[f"{kind} {proc.split(':', 1)[0]}"] += count
        total += count
        keys = [_frame_key(f) for f in frames]
        mine = [f"{fn} ({file})" for fn, file in keys if file.startswith("watchtower/")]
        name = f"[{kind}] " + (mine[-1] if mine else "(outside watchtower)")
        ours[name] = ours.get(name, 0) + count
        for fn in dict.fromkeys(mine):
            ours_incl[f"[{kind}] {fn}"] = ours_incl.get(f"[{kind}] {fn}", 0) + count
        if keys:
            leaf = f"{keys[-1][0]} ({keys[-1][1]})"
            leaves[leaf] = leaves.get(leaf, 0) + count
    if not total:
        return f"{path}: no samples"

    def table(title: str, data: dict[str, int]) -> list[str]:
        rows = sorted(data.items(), key=lambda kv: -kv[1])[:top]
        return [title] + [f"  {100 * v / total:5.1f}%  {v:6d}  {k}" for k, v in rows]

    lines = [f"{path.name}: {total} samples"]
    lines += table("samples per process:", procs)
    lines += table("self time by deepest Watchtower frame:", ours)
    lines += table("inclusive time by Watchtower function:", ours_incl)
    lines += table("leaf functions:", leaves)
    return "\n".join(lines)


# --------------------------------------------------------------------------- commands


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("folder", type=Path)
    p.add_argument("--max-seconds", type=float, default=7200)
    p = sub.add_parser("measure")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--timeout", type=float, default=1800)
    p.add_argument("--log", type=Path, default=None)
    p.add_argument("command", nargs=argparse.REMAINDER)
    p = sub.add_parser("profile-summary")
    p.add_argument("file", type=Path)
    p.add_argument("--top", type=int, default=12)
    p = sub.add_parser("floor")
    p.add_argument("folder", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fast", action="store_true")
    args = parser.parse_args(argv)
    if args.cmd == "serve":
        asyncio.run(_serve(args.folder, args.max_seconds))
    elif args.cmd == "measure":
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        _measure(command, args.out, args.timeout, args.log)
    elif args.cmd == "profile-summary":
        print(summarize_profile(args.file, args.top))
    else:
        _floor(args.folder, args.out, args.fast)


if __name__ == "__main__":
    main()
