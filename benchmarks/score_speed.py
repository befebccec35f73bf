"""Scoring speed: items per second per core, and peak memory.

Scores a few thousand feed-sized items (headline + the first ``--chars`` characters of
the story) from the KCNA archive in ``../shared/corpora/kcna-archive`` with the
shipped config's baseline, in one process (one core), several times; prints the median
items/s and the peak resident memory. Also times near-duplicate signatures
(``watchtower.dedupe.signature``) and story-index lookups, which run once per new item.

Usage: .venv/bin/python benchmarks/score_speed.py [--config config/watchtower.yaml]
       [--runs 5] [--chars 600]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpora" / "kcna-archive"


def load_items(chars: int) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for path in sorted(CORPUS.glob("headlines_*.json")):
        for row in json.loads(path.read_text(encoding="utf-8")):
            items.append((row.get("headline") or "", (row.get("story_text") or "")[:chars]))
    return items


def timed(fn: object, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.process_time()
        fn()  # type: ignore[operator]
        out.append(time.process_time() - start)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "watchtower.yaml")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chars", type=int, default=600, help="story characters per item")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        print(f"corpus not found: {CORPUS} (needs ../shared next to the repository)")
        return 2

    from watchtower.baseline import build_baseline
    from watchtower.config import load_config
    from watchtower.dedupe import signature
    from watchtower.matcher import Matcher
    from watchtower.story_index import MinHashStoryIndex

    cfg = load_config(args.config)
    t0 = time.perf_counter()
    baseline = build_baseline(cfg.baseline)
    build_s = time.perf_counter() - t0
    matcher = Matcher(baseline)
    items = load_items(args.chars)
    words = statistics.mean(len(f"{t} {x}".split()) for t, x in items)
    matcher.score(*items[0])  # warm caches

    def score_all() -> None:
        for title, text in items:
            matcher.score(title, text)

    sigs: list[bytes] = []

    def sign_all() -> None:
        sigs[:] = [signature(title, text) for title, text in items]

    def index_all() -> None:
        index = MinHashStoryIndex()
        for i, sig in enumerate(sigs):
            if index.find(sig) is None:
                index.add(i, sig)

    rows = [
        ("score (matcher.score)", timed(score_all, args.runs)),
        ("signature (dedupe.signature)", timed(sign_all, args.runs)),
        ("story index find+add", timed(index_all, args.runs)),
    ]
    alerts = sum(matcher.score(t, x).value >= cfg.alerts.threshold for t, x in items)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{len(items)} items, mean {words:.0f} words (headline + {args.chars} chars); "
        f"baseline built in {build_s:.2f} s; {alerts} items at or above the threshold"
    )
    print(f"{'stage':32} {'median items/s per core':>24} {'µs/item':>9}   runs (CPU s)")
    for name, secs in rows:
        med = statistics.median(secs)
        print(
            f"{name:32} {len(items) / med:24,.0f} {1e6 * med / len(items):9.0f}   "
            + " ".join(f"{s:.3f}" for s in secs)
        )
    print(f"peak memory (max RSS): {peak_kb / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
