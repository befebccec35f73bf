"""Scale run: 10,000 configured sources, one cycle in which every source answers 304.

    .venv/bin/python benchmarks/scale_304.py [--sources 10000] [--items 5] [--runs 3]

Generates the feeds and serves them on loopback (ETag / If-None-Match) from a separate
process, seeds a fresh SQLite store with one full ``watchtower run --once`` (reported
for information), then measures ``--runs`` unchanged cycles on that store: wall time,
CPU time and peak RSS (medians). Target from the performance issue: < 150 MB peak RSS.
Feeds carry 5 items by default so the seeding cycle stays short; 50,000 stored items
already exceed the store's in-memory story index cap, so the unchanged cycle sees a
full-size index either way (``--items 30`` for the full-size store).
Every command runs under a timeout, so the benchmark always stops by itself.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _feeds as F  # noqa: E402
from poll_cycle import HEADER, Series  # noqa: E402

RSS_TARGET_MB = 150.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", type=int, default=10_000, help="configured sources (10000)")
    p.add_argument("--items", type=int, default=5, help="items per feed (default 5)")
    p.add_argument("--runs", type=int, default=3, help="unchanged cycles measured (default 3)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=3000, help="per command, seconds")
    p.add_argument("--polite", action="store_true", help="keep per-host politeness defaults")
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs, store)")
    return p.parse_args()


def run(args: argparse.Namespace, work: Path) -> tuple[F.FeedSet, dict[str, Series]]:
    feeds = F.generate_feeds(work / "feeds", args.sources, args.items, seed=args.seed)
    series = {
        "seed": Series("  (info) seeding cycle: first full cycle"),
        "304": Series(f"Watchtower unchanged cycle, {args.sources} sources (all 304)"),
    }
    with F.ServerProcess(work / "feeds") as server:
        urls = [server.url(name) for name in feeds.names]
        config = F.write_watchtower_config(work / "wt.yaml", work / "wt.db", urls, args.polite)
        cmd = [str(F.WATCHTOWER), "run", "--once", "--config", str(config)]
        env = F.bench_env()
        server.stats()
        m = F.measure(cmd, work, timeout=args.timeout, env=env, log=work / "seed.log")
        series["seed"].add(m, server.stats())
        counts = F.sqlite_counts(work / "wt.db")
        series["seed"].notes.append(" ".join(f"{k}={v}" for k, v in counts.items()))
        for i in range(args.runs):
            log = work / f"again-{i}.log"
            m = F.measure(cmd, work, timeout=args.timeout, env=env, log=log)
            series["304"].add(m, server.stats())
    return feeds, series


def report(args: argparse.Namespace, feeds: F.FeedSet, series: dict[str, Series]) -> None:
    print()
    print(
        f"scale_304: {len(feeds.names)} sources x {feeds.items} items "
        f"({feeds.total_bytes / 1e6:.0f} MB of feeds); {args.runs} unchanged cycles, medians"
    )
    print(args.revision)
    print(F.machine_line() + f"; load avg {os.getloadavg()[0]:.2f} at end")
    print()
    F.print_table(HEADER, [s.row() for s in series.values()])
    print()
    runs = series["304"].runs
    if runs:
        peak = F.median([max(m.maxrss_mb, m.tree_peak_mb) for m in runs])
        verdict = "PASS" if peak < RSS_TARGET_MB else "FAIL"
        print(f"peak RSS {peak:.0f} MB (target < {RSS_TARGET_MB:.0f} MB): {verdict}")
        print(f"unchanged cycle wall time: {series['304'].wall():.2f} s")


def main() -> None:
    args = parse_args()
    args.revision = F.revision_line() + " (at start)"
    work = Path(tempfile.mkdtemp(prefix="wt-scale-304-"))
    feeds, series = None, {}
    try:
        feeds, series = run(args, work)
    finally:
        if feeds is not None:
            report(args, feeds, series)
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
