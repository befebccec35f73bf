"""Poll-cycle benchmark: Watchtower against the feedparser floor and against urlwatch.

    .venv/bin/python benchmarks/poll_cycle.py [--feeds 1000] [--items 30] [--runs 3]

Generates N RSS feeds (30 items each, text from ../shared corpora and the eval set, a
share of the stories carried by several feeds), serves them from a loopback HTTP
server in its own process (ETag / If-None-Match → 304), and measures, each ``--runs``
times (medians reported):

- floor: feedparser alone parsing the same bytes, sequentially, in one process;
- Watchtower's first full cycle: ``watchtower run --once`` with a fresh SQLite store;
- Watchtower's next cycle with nothing changed (every source answers 304);
- urlwatch (latest release, in its own virtualenv under benchmarks/.cache/) watching
  the same URLs: first run and unchanged run, cache db in a temp dir;
- Watchtower's start-up: ``run --once`` with no sources (at least 5 runs), beside the
  import of what any run loads (sqlmodel, with SQLAlchemy and pydantic; asyncio; click),
  with the garbage collector off as Watchtower imports them;
- wall time, CPU time and peak RSS of each, each in a fresh measuring process.

Then prints the ratios against the targets of the performance issue. Loopback only;
every command runs under a timeout, so the benchmark always stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _feeds as F  # noqa: E402


@dataclass
class Series:
    """Repeated measurements of one thing."""

    label: str
    runs: list[F.Measurement] = field(default_factory=list)
    http: list[dict[str, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, m: F.Measurement, http: dict[str, int] | None = None) -> F.Measurement:
        self.runs.append(m)
        if http is not None:
            self.http.append(http)
        if m.rc != 0:
            self.notes.append(f"exit {m.rc}")
        return m

    def wall(self) -> float:
        """Median wall time (for the floor: the parse loop itself)."""
        return F.median([m.extra.get("parse_seconds", m.wall) for m in self.runs])

    def row(self) -> list[str]:
        walls = [m.extra.get("parse_seconds", m.wall) for m in self.runs]
        if not walls:
            return [self.label, "-", "-", "-", "-", "-", "-", "; ".join(self.notes)]
        http = self.http[-1] if self.http else {}
        codes = "/".join(f"{k}:{v}" for k, v in sorted(http.items())) or "-"
        return [
            self.label,
            f"{F.median(walls):.2f}",
            f"{min(walls):.2f}-{max(walls):.2f}",
            f"{F.median([m.cpu for m in self.runs]):.2f}",
            f"{F.median([m.maxrss_mb for m in self.runs]):.0f}",
            f"{F.median([m.tree_peak_mb for m in self.runs]):.0f}",
            codes,
            "; ".join(dict.fromkeys(self.notes)),
        ]


HEADER = ["measurement", "median s", "range s", "CPU s", "RSS MB", "tree MB", "HTTP", "notes"]


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.feeds = work / "feeds"
        self.series: dict[str, Series] = {}
        self.load = os.getloadavg()[0]
        self.revision = F.revision_line() + " (at start)"
        self.server: F.ServerProcess
        self.baseline_caches: list[Path] = []

    def s(self, key: str, label: str) -> Series:
        return self.series.setdefault(key, Series(label))

    def run(self) -> None:
        args = self.args
        feedset = F.generate_feeds(self.feeds, args.feeds, args.items, args.shared, seed=args.seed)
        self.feedset = feedset
        with F.ServerProcess(self.feeds) as server:
            self.server = server
            self.urls = [server.url(name) for name in feedset.names]
            uw = None if args.skip_urlwatch else F.ensure_urlwatch(args.upgrade_urlwatch)
            self.urlwatch_version = uw[1] if uw else "skipped"
            if not args.skip_watchtower:
                self.warm_up()
            if args.profile is not None:
                self.profile(args.profile)
                return
            for run in range(args.runs):
                self.floor()
                if not args.skip_watchtower:
                    self.watchtower(run)
                if uw is not None:
                    self.urlwatch(uw[0], run)

    def floor(self) -> None:
        self.s("floor", "floor: feedparser alone (1 process)").add(F.floor(self.feeds, self.work))
        if self.args.fast_floor:
            label = "  (info) feedparser, sanitize/resolve off"
            self.s("floor_fast", label).add(F.floor(self.feeds, self.work, fast=True))

    def _wt(self, config: Path, log: Path) -> F.Measurement:
        cmd = [str(F.WATCHTOWER), "run", "--once", "--config", str(config)]
        env = F.bench_env()
        return F.measure(cmd, self.work, timeout=self.args.timeout, env=env, log=log)

    def warm_up(self) -> None:
        """Compile bytecode and build the baseline cache once (a user's first start does
        this once, not every cycle); also measure start-up with a single source."""
        folder = self.work / "wt-warm"
        folder.mkdir()
        config = F.write_watchtower_config(
            folder / "wt.yaml", folder / "wt.db", self.urls[:1], self.args.polite
        )
        m = self._wt(config, folder / "warm.log")
        label = "  (info) Watchtower warm-up: 1 source, cold baseline"
        self.s("wt_warm", label).add(m, self.server.stats())
        self.baseline_caches = sorted(folder.glob("*baseline-cache*.json"))
        for i in range(self.args.runs):
            (folder / "wt.db").unlink(missing_ok=True)
            m = self._wt(config, folder / f"start-{i}.log")
            label = "  (info) Watchtower start-up: run --once, 1 source"
            self.s("wt_start", label).add(m, self.server.stats())
        self.start_up(folder)

    def start_up(self, warm: Path) -> None:
        """``run --once`` with no sources, on a store made by its first run (the target
        of the performance issue); at least 5 runs, as it takes well under a second."""
        folder = self.work / "wt-empty"
        folder.mkdir()
        config = F.write_watchtower_config(folder / "wt.yaml", folder / "wt.db", [])
        for cache in self.baseline_caches:
            shutil.copy(cache, folder / cache.name)
        self._wt(config, folder / "create.log")  # creates the store, as a user's first run
        label = "Watchtower start-up: run --once, no sources"
        python = str(F.WATCHTOWER.with_name("python"))
        # what any run loads, as Watchtower loads it: the garbage collector off
        imports = [python, "-c", "import gc; gc.disable(); import sqlmodel, asyncio, click"]
        env = {**F.bench_env(), "PYDANTIC_DISABLE_PLUGINS": "__all__"}  # as Watchtower sets
        for i in range(max(5, self.args.runs)):
            self.s("wt_empty", label).add(self._wt(config, folder / f"empty-{i}.log"))
            m = F.measure(imports, self.work, timeout=60, env=env, log=folder / "imports.log")
            self.s("imports", "  (info) importing sqlmodel, asyncio, click alone").add(m)

    def watchtower(self, run: int) -> None:
        folder = self.work / f"wt-{run}"
        folder.mkdir()
        config = F.write_watchtower_config(
            folder / "wt.yaml", folder / "wt.db", self.urls, self.args.polite
        )
        for cache in self.baseline_caches:
            shutil.copy(cache, folder / cache.name)
        self.server.stats()
        first = self.s("wt_first", "Watchtower first full cycle (fresh store)")
        m = first.add(self._wt(config, folder / "first.log"), self.server.stats())
        counts = F.sqlite_counts(folder / "wt.db")
        first.notes.append(" ".join(f"{k}={v}" for k, v in counts.items()))
        self._check_log(first, m, folder / "first.log")
        again = self.s("wt_304", "Watchtower unchanged cycle (all 304)")
        m = again.add(self._wt(config, folder / "again.log"), self.server.stats())
        self._check_log(again, m, folder / "again.log")

    def profile(self, out: Path) -> None:
        """py-spy (all processes, on-CPU samples) over one first and one unchanged cycle."""
        py_spy = F.REPO / ".venv" / "bin" / "py-spy"
        if not py_spy.exists():
            raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
        out.mkdir(parents=True, exist_ok=True)
        folder = self.work / "wt-profile"
        folder.mkdir()
        config = F.write_watchtower_config(
            folder / "wt.yaml", folder / "wt.db", self.urls, self.args.polite
        )
        for cache in self.baseline_caches:
            shutil.copy(cache, folder / cache.name)
        for phase, label in (("first", "first full cycle"), ("unchanged", "unchanged cycle")):
            raw = out / f"{phase}.txt"
            cmd = [str(py_spy), "record", "--subprocesses", "--rate", "100", "--format", "raw"]
            cmd += ["--output", str(raw), "--", str(F.WATCHTOWER), "run", "--once"]
            m = F.measure(
                [*cmd, "--config", str(config)], self.work, timeout=self.args.timeout,
                env=F.bench_env(), log=out / f"{phase}.log",
            )  # fmt: skip
            self.s(f"prof_{phase}", f"Watchtower {label} under py-spy").add(m, self.server.stats())
            (out / f"{phase}.summary.txt").write_text(F.summarize_profile(raw, 25) + "\n")
            print(F.summarize_profile(raw, 12), end="\n\n")

    def _check_log(self, series: Series, m: F.Measurement, log: Path) -> None:
        if m.rc != 0 and log.exists():
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            series.notes.append(" | ".join(tail)[:300])

    def urlwatch(self, exe: Path, run: int) -> None:
        folder = self.work / f"uw-{run}"
        folder.mkdir()
        F.write_urlwatch_jobs(folder / "urls.yaml", self.urls)
        cmd = F.urlwatch_cmd(exe, folder)
        env = F.bench_env(home=folder / "home")
        self.server.stats()
        for key, label, log in (
            ("uw_first", f"urlwatch first run ({self.urlwatch_version})", "first.log"),
            ("uw_304", "urlwatch unchanged run", "again.log"),
        ):
            timeout = self.args.timeout
            m = F.measure(cmd, self.work, timeout=timeout, env=env, log=folder / log)
            self.s(key, label).add(m, self.server.stats())

    # ------------------------------------------------------------------ report

    def _median(self, key: str, what: str) -> float:
        series = self.series.get(key)
        if not series or not series.runs:
            return float("nan")
        if what == "cpu":
            return F.median([m.cpu for m in series.runs])
        return series.wall()

    def ratios(self) -> list[list[str]]:
        """Target ratios on wall time (the targets) and on CPU time (steadier on a busy box)."""
        checks = [
            ("first cycle / floor", "wt_first", "floor", 1.5, True),
            ("first cycle / urlwatch first", "wt_first", "uw_first", 2.0, True),
            ("urlwatch unchanged / WT unchanged", "uw_304", "wt_304", 3.0, False),
        ]
        rows = []
        for name, num, den, target, at_most in checks:
            wall = self._median(num, "wall") / self._median(den, "wall")
            cpu = self._median(num, "cpu") / self._median(den, "cpu")
            ok = wall <= target if at_most else wall >= target
            bound = f"{'<=' if at_most else '>='} {target}"
            rows.append([name, f"{wall:.2f}", f"{cpu:.2f}", bound, "PASS" if ok else "FAIL"])
        start_up = self._median("wt_empty", "wall")
        if start_up == start_up:  # measured (not NaN)
            cpu = self._median("wt_empty", "cpu")
            ok = "PASS" if start_up <= 0.5 else "FAIL"
            rows.append(["start-up, no sources (s)", f"{start_up:.2f}", f"{cpu:.2f}", "<= 0.5", ok])
        return rows

    def report(self) -> None:
        fs = self.feedset
        print()
        print(
            f"poll_cycle: {len(fs.names)} feeds x {fs.items} items "
            f"({fs.total_bytes / 1e6:.1f} MB, {fs.shared_items} items are shared stories), "
            f"text: {fs.corpus_source}; {self.args.runs} runs, medians"
        )
        print(self.revision)
        print(
            F.machine_line()
            + f"; load avg {self.load:.2f} at start, {os.getloadavg()[0]:.2f} at end"
        )
        if max(self.load, os.getloadavg()[0]) > (os.cpu_count() or 1):
            print("warning: the machine was busy (load > cores): trust CPU s more than wall s")
        print()
        F.print_table(HEADER, [s.row() for s in self.series.values()])
        print()
        print("RSS MB = largest single process (getrusage); tree MB = sampled sum over the")
        print("process tree (10 Hz). HTTP = status counts the server saw in the last run;")
        print("conn = TCP connections it accepted (one per request: no connection reuse).")
        print("floor 'median s' is the parse loop alone; the others are process wall time.")
        print()
        F.print_table(["ratio", "wall", "CPU", "target", "(wall)"], self.ratios())

    def dump(self, path: Path) -> None:
        data = {k: {"label": s.label, "runs": [asdict(m) for m in s.runs], "http": s.http}
                for k, s in self.series.items()}  # fmt: skip
        path.write_text(json.dumps(data, indent=1))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=1000, help="number of feeds (default 1000)")
    p.add_argument("--items", type=int, default=30, help="items per feed (default 30)")
    p.add_argument("--runs", type=int, default=3, help="repetitions; medians (default 3)")
    p.add_argument("--shared", type=float, default=0.1, help="share of items that are shared")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=1200, help="per command, seconds")
    p.add_argument(
        "--polite",
        action="store_true",
        help="keep Watchtower's per-host politeness (1 s between requests to one host)",
    )
    p.add_argument("--skip-urlwatch", action="store_true")
    p.add_argument("--skip-watchtower", action="store_true")
    p.add_argument("--upgrade-urlwatch", action="store_true", help="reinstall latest urlwatch")
    p.add_argument("--fast-floor", action="store_true", help="also time feedparser w/o sanitizer")
    p.add_argument("--json", type=Path, default=None, help="also write raw figures here")
    p.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="instead of timing: py-spy one first and one unchanged cycle into DIR",
    )
    p.add_argument("--keep", action="store_true", help="keep the temp folder (logs, stores)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="wt-poll-cycle-"))
    bench = Bench(args, work)
    try:
        bench.run()
    finally:
        if bench.series:
            bench.report()
            if args.json:
                bench.dump(args.json)
        if args.keep:
            print(f"\nkept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
