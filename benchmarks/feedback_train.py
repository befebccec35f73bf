"""How long retraining the feedback model takes, for 100 and 1,000 labels.

Labels are the development set's items (../shared/eval/dev.jsonl), repeated with a
varying suffix to reach 1,000; timed with the shipped config and with the seeds alone.
Prints the time to score the items with the matcher and to fit, separately, and the
time to retrain when one more label arrives (rows of known items are remembered).

Usage: .venv/bin/python benchmarks/feedback_train.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

from watchtower.baseline import build_baseline
from watchtower.config import BaselineConfig, load_config
from watchtower.feedback_model import Labelled, fit, row, train
from watchtower.matcher import Matcher

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"


def labels(n: int) -> list[Labelled]:
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    return [
        Labelled(r["title"], f"{r.get('summary') or ''} (copy {i})", r["label"])
        for i in range(n // len(rows) + 1)
        for r in rows
    ][:n]


def main() -> int:
    if not DEV.is_file():
        print(f"{DEV} not found")
        return 2
    shipped = load_config(ROOT / "config" / "watchtower.yaml").baseline
    cache = Path(tempfile.mkdtemp()) / "cache.json"
    configs = {"shipped": shipped, "seeds alone": BaselineConfig(seeds=shipped.seeds, cache=cache)}
    for name, cfg in configs.items():
        matcher = Matcher(build_baseline(cfg))
        train(matcher, labels(100))  # warm the word-family caches
        for n in (100, 1000):
            items = labels(n)
            learn = [i for i in items if i.label != 1]
            t0 = time.perf_counter()
            rows = [row(matcher, i.title, i.text) for i in learn]
            t1 = time.perf_counter()
            fit(rows, [i.label == 2 for i in learn], [1.0] * len(learn))
            t2 = time.perf_counter()
            train(matcher, items)
            t3 = time.perf_counter()
            train(matcher, [*items, Labelled("One more verdict", "A new item.", 0)])
            t4 = time.perf_counter()
            print(
                f"{name:12} {n:5} labels ({len(learn)} decided): first training "
                f"{t3 - t2:.3f} s (scoring {t1 - t0:.3f} s, fitting {t2 - t1:.3f} s); "
                f"retraining on one more label {t4 - t3:.3f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
