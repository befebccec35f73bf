"""Store-write benchmark: what one poll's write costs the store thread, alone.

    .venv/bin/python benchmarks/store_write.py [--polls 300] [--items 30] [--runs 3] [--batch 16]

Generates ``--polls`` RSS feeds (as ``poll_cycle.py`` does), parses and scores them once
with the shipped baseline, then times, ``--runs`` times on a fresh SQLite store, what the
pipeline's store thread does for each poll: drop the stored entries, look up the known
stories, plan the alerts and write the poll, ``--batch`` polls committed together as the
pipeline's write batches commit them (``Store.write_together``; 1: a commit each). No event
loop, fetch or worker runs beside it, so this is the write's own cost; inside a real
cycle the store thread shares the interpreter lock with the event loop. Medians printed.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _feeds as F  # noqa: E402

from watchtower.config import load_config  # noqa: E402
from watchtower.models import FetchResult, FetchState, ScoredEntry  # noqa: E402
from watchtower.runtime import load_matcher, story_index  # noqa: E402
from watchtower.scoring import score_entries  # noqa: E402
from watchtower.sources.feed import parse_feed  # noqa: E402
from watchtower.store import Store  # noqa: E402
from watchtower.writebatch import MAX_BATCH  # noqa: E402

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def scored_polls(work: Path, polls: int, items: int) -> list[tuple[str, list[ScoredEntry]]]:
    feeds = F.generate_feeds(work / "feeds", polls, items, 0.1, seed=1)
    config = load_config(F.write_watchtower_config(work / "wt.yaml", work / "unused.db", []))
    matcher = load_matcher(config)
    out = []
    for number, name in enumerate(feeds.names):
        body = next((work / "feeds").glob(f"*{name}*")).read_bytes()
        result = FetchResult(url=f"http://127.0.0.1/{number}", status=200, body=body, headers={})
        out.append((f"s{number}", score_entries(matcher, parse_feed(result, f"s{number}"))))
    return out


def one_run(
    work: Path, run: int, polls: list[tuple[str, list[ScoredEntry]]], batch: int = MAX_BATCH
) -> float:
    with Store.open(f"sqlite:///{work}/store-{run}.db", story_index_factory=story_index) as st:
        st.sync_sources([(name, "feed", f"http://127.0.0.1/{name}") for name, _ in polls])
        writes = [
            functools.partial(
                st.record_poll,
                name,
                FetchState(etag="x"),
                scored,
                threshold=0.5,
                channels=lambda _score: ["webhook"],
                now=NOW,
            )
            for name, scored in polls
        ]
        started = time.perf_counter()
        for first in range(0, len(writes), batch):
            for done in st.write_together(writes[first : first + batch]):
                if not done.ok:
                    raise SystemExit(f"a write failed: {done.error}")
        return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--polls", type=int, default=300)
    p.add_argument("--items", type=int, default=30)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--batch", type=int, default=MAX_BATCH, help="polls per commit")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="wt-store-write-") as tmp:
        work = Path(tmp)
        polls = scored_polls(work, args.polls, args.items)
        times = [one_run(work, run, polls, args.batch) for run in range(args.runs)]
    items = sum(len(scored) for _, scored in polls)
    median = F.median(times)
    print(F.revision_line())
    print(F.machine_line())
    print(
        f"store_write: {len(polls)} polls, {items} items, {args.batch} per commit; "
        f"median of {args.runs}: "
        f"{median:.2f} s, {1000 * median / len(polls):.2f} ms per poll "
        f"(range {min(times):.2f}-{max(times):.2f} s)"
    )


if __name__ == "__main__":
    main()
