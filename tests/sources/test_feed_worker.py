"""parse_in_worker: parsers run in child processes bounded in time and memory."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support import ROOT
from watchtower.errors import ParseError
from watchtower.models import Entry, FetchResult
from watchtower.sources.worker import (
    DEFAULT_WORKERS,
    PARSERS,
    parse_in_worker,
    register_parser,
    set_worker_count,
    shutdown_workers,
)

MB = 1024 * 1024
RSS = b"""<rss version="2.0"><channel><title>t</title>
<item><title>One</title><link>https://e.example/1</link></item></channel></rss>"""


# Parsers the child processes import from this module by path.
def sleepy_parser(result: FetchResult, source: str) -> list[Entry]:
    time.sleep(float(result.body or b"60"))
    return []


def hungry_parser(result: FetchResult, source: str) -> list[Entry]:
    hoard = []
    for _ in range(10_000):
        hoard.append(bytearray(16 * MB))
    return []


def crashing_parser(result: FetchResult, source: str) -> list[Entry]:
    os.abort()


def buggy_parser(result: FetchResult, source: str) -> list[Entry]:
    raise ValueError("oops " + "x" * 500)


def refusing_parser(result: FetchResult, source: str) -> list[Entry]:
    raise ParseError("not a feed: test")


def pid_parser(result: FetchResult, source: str) -> list[Entry]:
    return [Entry(source=source, guid=str(os.getpid()), title="pid")]


HEAVY = ("trafilatura", "pypdf")  # page extraction and PDF: not every deployment's


def loaded_parser(result: FetchResult, source: str) -> list[Entry]:
    loaded = [name for name in HEAVY if name in sys.modules]
    return [Entry(source=source, guid=str(os.getpid()), title=",".join(loaded) or "none")]


@pytest.fixture(scope="module", autouse=True)
def test_parsers() -> Iterator[None]:
    """Two workers that can import this module; the pool is shared by the tests here."""
    saved_env = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(ROOT)
    set_worker_count(2)
    saved = dict(PARSERS)
    for name in ("sleepy", "hungry", "crashing", "buggy", "refusing", "pid", "loaded"):
        register_parser(name, f"tests.sources.test_feed_worker:{name}_parser")
    yield
    set_worker_count(DEFAULT_WORKERS)
    PARSERS.clear()
    PARSERS.update(saved)
    if saved_env is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved_env


def res(body: bytes = RSS) -> FetchResult:
    return FetchResult(
        url="https://e.example/feed",
        status=200,
        body=body,
        headers={"content-type": "application/rss+xml"},
    )


async def parse(
    kind: str, body: bytes = RSS, timeout: float = 10, memory: int = 512 * MB
) -> list[Entry]:
    return await parse_in_worker(kind, res(body), "src", timeout=timeout, memory=memory)


async def warm() -> None:
    """Start both workers first: a cold start (~1 s) is not what the timing tests measure."""
    await asyncio.gather(parse("pid"), parse("pid"))


def reason(kind: str, **kw: object) -> str:
    with pytest.raises(ParseError) as err:
        asyncio.run(parse(kind, **kw))  # type: ignore[arg-type]
    return err.value.reason


def test_feed_parsed_in_worker() -> None:
    (entry,) = asyncio.run(parse("feed"))
    assert entry.title == "One" and entry.url == "https://e.example/1" and entry.source == "src"


def test_parse_error_reason_crosses_the_process_boundary() -> None:
    assert reason("refusing") == "not a feed: test"
    assert reason("feed", body=b"<html><body>page</body></html>") == "not a feed: HTML page"


def test_parser_bug_is_a_short_parse_error() -> None:
    assert reason("buggy") == "parser failed: ValueError"


def test_unknown_kind() -> None:
    assert reason("nope") == "no parser for 'nope'"


def test_hang_is_killed_at_the_deadline_and_worker_replaced() -> None:
    async def go() -> tuple[float, list[Entry], list[Entry]]:
        await warm()
        before = await parse("pid")
        t0 = time.monotonic()
        with pytest.raises(ParseError) as err:
            await parse("sleepy", body=b"60", timeout=0.5)
        took = time.monotonic() - t0
        assert err.value.reason == "parser exceeded 0.5 s"
        after = [await parse("pid"), await parse("pid")]
        return took, before, [e for batch in after for e in batch]

    took, before, after = asyncio.run(go())
    assert took < 1.5
    assert len(after) == 2


def test_memory_blowup_is_bounded_and_worker_replaced() -> None:
    async def go() -> list[Entry]:
        with pytest.raises(ParseError) as err:
            await parse("hungry", memory=256 * MB)
        assert err.value.reason == "parser ran out of memory"
        return await parse("feed")

    assert len(asyncio.run(go())) == 1


def test_crash_is_reported_and_worker_replaced() -> None:
    async def go() -> list[Entry]:
        with pytest.raises(ParseError) as err:
            await parse("crashing")
        assert err.value.reason == "parser crashed (SIGABRT)"
        return await parse("feed")

    assert len(asyncio.run(go())) == 1


def test_a_hung_parse_does_not_block_the_others() -> None:
    async def go() -> tuple[float, str]:
        await warm()
        hung = asyncio.create_task(parse("sleepy", body=b"3", timeout=2))
        await asyncio.sleep(0.1)
        t0 = time.monotonic()
        for _ in range(5):
            assert len(await parse("feed")) == 1
        took = time.monotonic() - t0
        with pytest.raises(ParseError) as err:
            await hung
        return took, err.value.reason

    took, why = asyncio.run(go())
    assert took < 1.5 and why == "parser exceeded 2 s"


def test_more_jobs_than_workers_queue_and_all_finish() -> None:
    async def go() -> set[str]:
        batches = await asyncio.gather(*(parse("pid") for _ in range(12)))
        return {e.guid for batch in batches for e in batch}

    pids = asyncio.run(go())
    assert 1 <= len(pids) <= 2  # the pool never grows beyond its size


def test_cancelled_caller_frees_its_worker() -> None:
    async def go() -> list[Entry]:
        task = asyncio.create_task(parse("sleepy", body=b"30", timeout=60))
        await asyncio.sleep(0.05)  # cancelled while its worker is still starting
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await warm()
        task = asyncio.create_task(parse("sleepy", body=b"30", timeout=60))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        results = await asyncio.gather(parse("feed"), parse("feed"), parse("feed"))
        return [e for batch in results for e in batch]

    assert len(asyncio.run(go())) == 3


def test_shutdown_kills_workers() -> None:
    (entry,) = asyncio.run(parse("pid"))
    pid = int(entry.guid)
    shutdown_workers()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("worker still alive after shutdown_workers()")
    assert len(asyncio.run(parse("feed"))) == 1  # a new pool starts on demand


def test_register_parser_validates_path() -> None:
    with pytest.raises(ValueError, match="module:function"):
        register_parser("x", "no_colon")


def test_a_worker_loads_page_and_pdf_libraries_only_for_a_job_that_needs_them() -> None:
    # imported here: the workers import this module for its test parsers
    from watchtower.sources.article import extract_article_in_worker

    shutdown_workers()  # fresh workers: none has run a page or PDF job

    async def run() -> tuple[list[str], str, list[str]]:
        before = [got[0].title for got in await asyncio.gather(parse("loaded"), parse("loaded"))]
        page = FetchResult(
            url="https://e.example/a",
            status=200,
            body=b"<html><body><article><p>"
            + b"Refugees were sent back. " * 40
            + b"</p></article></body></html>",
            headers={"content-type": "text/html"},
        )
        text = await extract_article_in_worker(page, "src", timeout=30, memory=512 * MB)
        after = [got[0].title for got in await asyncio.gather(parse("loaded"), parse("loaded"))]
        return before, text.text, after

    before, text, after = asyncio.run(run())
    assert before == ["none", "none"]  # two feed workers, neither holds them
    assert "Refugees were sent back." in text  # the first article job imported them
    assert "trafilatura,pypdf" in after
