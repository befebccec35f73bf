"""Evaluate the matcher on the development set (what ``make eval`` runs).

Scores ``../shared/eval/dev.jsonl`` through ``watchtower score --config CONFIG --input -``
(falling back to :func:`watchtower.jsonlines.score_jsonl` in this process if the command
is unavailable, and saying so), then prints at the configured threshold: precision,
recall and F1 of label 2 against label 0, the share of label 1 alerted, ROC AUC, and the
false-alert rate per hard-negative category; and the same figures for a simple boolean
keyword query, (North Korea terms) AND (rights terms).

``--compare`` adds the other candidate methods measured in-process on the same items:
seed similarity alone (the baseline's weighted cosine, and BM25 against the seeds, each
at its best-F1 cut-off, which flatters them) and ablations of the shipped method.

``--feedback-cv`` measures learning from feedback (``watchtower feedback import`` of
labelled items): k-fold cross-validation on the development set, for the seeds-only
config and the given one. The feedback model is trained on k-1 folds, the held-out fold
is scored through :class:`watchtower.feedback_model.FeedbackScorer`, and the folds are
pooled; repeated with several shuffles (stratified by label). This estimates what
importing the 100 items does on a held-out set of the same kind.

Usage: .venv/bin/python scripts/eval.py --config config/watchtower.yaml [--compare]
       [--feedback-cv]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DEV = ROOT.parent / "shared" / "eval" / "dev.jsonl"

# The simple boolean query the issue measures against: any North Korea term AND any
# rights term (case-insensitive substrings).
BOOL_SUBJECT = ("north korea", "dprk", "pyongyang")
BOOL_RIGHTS = (
    "human rights",
    "refugee",
    "defector",
    "repatriat",
    "abduct",
    "prison camp",
    "forced labo",
    "trafficking",
    "rapporteur",
    "commission of inquiry",
)


def boolean_query(title: str, text: str) -> float:
    low = f"{title}\n{text}".lower()
    hit = any(t in low for t in BOOL_SUBJECT) and any(t in low for t in BOOL_RIGHTS)
    return 1.0 if hit else 0.0


# ----------------------------------------------------------------------------- metrics


def auc(pos: Sequence[float], neg: Sequence[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def figures(items: Sequence[dict[str, Any]], scores: Sequence[float], th: float) -> dict[str, Any]:
    alert = [s >= th for s in scores]
    tp = sum(1 for it, a in zip(items, alert, strict=True) if it["label"] == 2 and a)
    fn = sum(1 for it, a in zip(items, alert, strict=True) if it["label"] == 2 and not a)
    fp = sum(1 for it, a in zip(items, alert, strict=True) if it["label"] == 0 and a)
    l1 = [a for it, a in zip(items, alert, strict=True) if it["label"] == 1]
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    per_cat: dict[str, list[bool]] = defaultdict(list)
    for it, a in zip(items, alert, strict=True):
        if it["category"].startswith("hard-neg"):
            per_cat[it["category"]].append(a)
    hard = [a for v in per_cat.values() for a in v]
    pos = [s for it, s in zip(items, scores, strict=True) if it["label"] == 2]
    neg = [s for it, s in zip(items, scores, strict=True) if it["label"] == 0]
    hneg = [s for it, s in zip(items, scores, strict=True) if it["category"].startswith("hard-neg")]
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "label1_alerted": sum(l1) / len(l1) if l1 else float("nan"),
        "auc": auc(pos, neg),
        "auc_hard": auc(pos, hneg),
        "hard_false_alerts": sum(hard) / len(hard) if hard else float("nan"),
        "per_category": {k: (sum(v), len(v)) for k, v in sorted(per_cat.items())},
        "lowest_positive": min(pos, default=float("nan")),
        "highest_negative": max(neg, default=float("nan")),
        "misses": [
            it["title"] for it, a in zip(items, alert, strict=True) if it["label"] == 2 and not a
        ],
        "false_alerts": [
            it["title"] for it, a in zip(items, alert, strict=True) if it["label"] == 0 and a
        ],
    }


def best_f1(items: Sequence[dict[str, Any]], scores: Sequence[float]) -> tuple[float, float]:
    best = (0.0, 0.0)
    for th in sorted(set(scores)):
        f = figures(items, scores, th)["f1"]
        best = max(best, (f, th))
    return best


def print_figures(name: str, f: dict[str, Any], th: float, details: bool = True) -> None:
    print(f"\n== {name} (threshold {th:g})")
    print(
        f"precision {f['precision']:.3f}  recall {f['recall']:.3f}  F1 {f['f1']:.3f}  "
        f"(label 2 vs 0)"
    )
    print(
        f"ROC AUC {f['auc']:.3f} (2 vs all 0)  {f['auc_hard']:.3f} (2 vs hard negatives)  "
        f"label 1 alerted {f['label1_alerted']:.0%}"
    )
    print(f"hard negatives falsely alerted: {f['hard_false_alerts']:.1%}")
    print(
        f"margin: lowest label-2 score {f['lowest_positive']:.3f}, "
        f"highest label-0 score {f['highest_negative']:.3f}"
    )
    if details:
        for cat, (n_alert, n) in f["per_category"].items():
            print(f"  {cat:34} {n_alert}/{n}  ({n_alert / n:.0%})")
        for title in f["misses"]:
            print(f"  missed:      {title}")
        for title in f["false_alerts"]:
            print(f"  false alert: {title}")


# ----------------------------------------------------------------------------- scoring


def score_via_cli(config: Path, items: Sequence[dict[str, Any]]) -> list[float] | None:
    exe = ROOT / ".venv" / "bin" / "watchtower"
    cmd = [str(exe)] if exe.exists() else ([shutil.which("watchtower") or ""])
    if not cmd[0]:
        return None
    payload = "".join(
        json.dumps({"id": str(i), "title": it["title"], "summary": it.get("summary") or ""}) + "\n"
        for i, it in enumerate(items)
    )
    proc = subprocess.run(
        [*cmd, "score", "--config", str(config), "--input", "-"],
        input=payload,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0:
        print(f"note: `watchtower score` failed ({proc.stderr.strip()[:300]})", file=sys.stderr)
        return None
    by_id = {}
    for line in proc.stdout.splitlines():
        if line.strip():
            obj = json.loads(line)
            by_id[obj["id"]] = float(obj["score"])
    return [by_id[str(i)] for i in range(len(items))]


def score_in_process(matcher: Any, items: Sequence[dict[str, Any]], th: float) -> list[float]:
    from watchtower.jsonlines import score_jsonl

    lines = [
        json.dumps({"id": str(i), "title": it["title"], "summary": it.get("summary") or ""})
        for i, it in enumerate(items)
    ]
    return [float(r["score"]) for r in score_jsonl(lines, matcher, th)]


# ----------------------------------------------------------------------------- candidates


def bm25_scorer(baseline_seeds: Sequence[str]) -> Callable[[str, str], float]:
    """Okapi BM25 of the item (as query) against each seed; the best seed's score."""
    from watchtower.language import tokens

    docs = [Counter(tokens(t)) for t in baseline_seeds]
    lens = [sum(d.values()) for d in docs]
    avg = sum(lens) / len(lens)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(d.keys())
    n = len(docs)
    k1, b = 1.2, 0.75

    def score(title: str, text: str) -> float:
        q = Counter(tokens(f"{title}\n{text}"))
        best = 0.0
        for d, dl in zip(docs, lens, strict=True):
            s = 0.0
            for t in q:
                f = d.get(t, 0)
                if f:
                    idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                    s += idf * f * (k1 + 1) / (f + k1 * (1 - b + b * dl / avg))
            best = max(best, s / (len(q) or 1))
        return best

    return score


def compare(cfg: Any, matcher: Any, items: Sequence[dict[str, Any]], th: float) -> None:
    import watchtower.matcher as m
    from watchtower.seeds import read_seeds

    rows: list[tuple[str, dict[str, Any], float]] = []
    sim = [matcher.features(it["title"], it.get("summary") or "").seed_similarity for it in items]
    f1, cut = best_f1(items, sim)
    rows.append(
        ("seed similarity alone (weighted cosine), best cut", figures(items, sim, cut), cut)
    )
    bm = bm25_scorer([s.text for s in read_seeds(cfg.baseline.seeds)])
    bms = [bm(it["title"], it.get("summary") or "") for it in items]
    f1, cut = best_f1(items, bms)
    rows.append(("BM25 against the seeds alone, best cut", figures(items, bms, cut), cut))

    def variant(**consts: float) -> list[float]:
        saved = {k: getattr(m, k) for k in consts}
        try:
            for k, v in consts.items():
                setattr(m, k, v)
            return [matcher.score(it["title"], it.get("summary") or "").value for it in items]
        finally:
            for k, v in saved.items():
                setattr(m, k, v)

    rows.append(
        (
            "shipped method without seed similarity",
            figures(items, variant(W_SEED=0.0, BIAS=m.BIAS + m.W_SEED * 0.45), th),
            th,
        )
    )
    rows.append(
        (
            "shipped method without proximity bonus",
            figures(items, variant(W_NEAR=0.0, BIAS=m.BIAS + m.W_NEAR), th),
            th,
        )
    )
    learned_only = m.Matcher(
        dataclasses.replace(matcher.baseline, watch_terms={}, entities={}, term_forms={})
    )
    lo = [learned_only.score(it["title"], it.get("summary") or "").value for it in items]
    rows.append(
        ("shipped method, learned subject and topic only (no YAML)", figures(items, lo, th), th)
    )
    print("\n== candidates (same items; in-process)")
    print(
        f"{'method':60} {'P':>6} {'R':>6} {'F1':>6} {'AUC':>6} {'hardFP':>7}"
        f" {'min2':>6} {'max0':>6}"
    )
    for name, f, _cut in rows:
        print(
            f"{name:60} {f['precision']:6.3f} {f['recall']:6.3f} {f['f1']:6.3f} "
            f"{f['auc']:6.3f} {f['hard_false_alerts']:7.1%} {f['lowest_positive']:6.3f}"
            f" {f['highest_negative']:6.3f}"
        )
    print("(min2 = lowest label-2 score, max0 = highest label-0 score; best-cut rows use the")
    print(" threshold that maximises F1 on these very items, which flatters them)")


# ----------------------------------------------------------------------------- variants

# The eight plain watch terms a new user might write (no weights, no entities).
PLAIN_TERMS = (
    "human rights",
    "forced repatriation",
    "defectors",
    "refugees",
    "prison camps",
    "trafficking",
    "forced labour",
    "Commission of Inquiry",
)
ROBUSTNESS = ROOT / "tests" / "data" / "robustness"
_TMP: list[Any] = []


def _write_config(text: str) -> Path:
    import tempfile

    folder = tempfile.TemporaryDirectory(prefix="watchtower-eval-")
    _TMP.append(folder)
    path = Path(folder.name) / "watchtower.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _seeds_config(seeds: Path, cache: Path, terms: Sequence[str] = ()) -> Path:
    lines = [
        "baseline:",
        f"  seeds: {json.dumps(str(seeds))}",
        f"  cache: {json.dumps(str(cache))}",
    ]
    if terms:
        lines.append("  terms: [" + ", ".join(terms) + "]")
    return _write_config("\n".join(lines) + "\n")


def variant_configs(cfg: Any) -> dict[str, Path]:
    """The two configs a new user starts from: the seeds alone, and the seeds plus the
    eight plain watch terms (no weights, no entities)."""
    seeds = Path(cfg.baseline.seeds)
    cache = _write_config("").parent
    return {
        "seeds alone": _seeds_config(seeds, cache / "seeds.json"),
        "seeds + eight plain terms": _seeds_config(seeds, cache / "plain.json", PLAIN_TERMS),
    }


def robustness(config: Path, th: float) -> None:
    """Recall and false alerts on the robustness sets kept in tests/data/robustness."""
    if not ROBUSTNESS.is_dir():
        return
    print(f"\n== robustness sets ({ROBUSTNESS.relative_to(ROOT)}), config {config}")
    for path in sorted(ROBUSTNESS.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        scores = score_via_cli(config, rows)
        if scores is None:
            continue
        pos = [s for r, s in zip(rows, scores, strict=True) if r["label"] == 2]
        neg = [s for r, s in zip(rows, scores, strict=True) if r["label"] == 0]
        recall = sum(s >= th for s in pos) / len(pos)
        fa = sum(s >= th for s in neg) / len(neg)
        print(
            f"  {path.stem:12} recall {recall:.3f} ({len(pos)} must-alert)  "
            f"hard negatives alerted {fa:.1%} ({len(neg)})"
        )


def seed_curve(cfg: Any, items: Sequence[dict[str, Any]], th: float) -> None:
    """How many seeds are enough: the seeds-alone and plain-terms configs with the first
    1, 3 and all 5 seed files (in file-name order)."""
    import shutil as sh
    import tempfile

    from watchtower.seeds import seed_files

    files = seed_files(Path(cfg.baseline.seeds))
    print(f"\n== how many seeds are enough (dev set, threshold {th:g})")
    for n in (1, 3, len(files)):
        folder = Path(tempfile.mkdtemp(prefix="watchtower-seeds-"))
        for f in files[:n]:
            sh.copy(f, folder / f.name)
        meta = Path(cfg.baseline.seeds) / "seeds.yaml"
        if meta.is_file():
            sh.copy(meta, folder / "seeds.yaml")
        for label, terms in (("seeds alone", ()), ("+ plain terms", PLAIN_TERMS)):
            conf = _seeds_config(folder, folder / ".cache.json", terms)
            sc = score_via_cli(conf, items)
            if sc is None:
                continue
            f = figures(items, sc, th)
            print(
                f"  {n} seed(s), {label:14} precision {f['precision']:.3f} recall "
                f"{f['recall']:.3f} F1 {f['f1']:.3f} AUC {f['auc']:.3f}"
            )
        sh.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------- feedback


def _folds(items: Sequence[dict[str, Any]], k: int, seed: int) -> list[list[int]]:
    import random

    idx = list(range(len(items)))
    random.Random(seed).shuffle(idx)
    idx.sort(key=lambda i: items[i]["label"])  # stable: shuffled within each label
    return [idx[j::k] for j in range(k)]


def feedback_cv_scores(
    matcher: Any, items: Sequence[dict[str, Any]], k: int, seed: int
) -> list[float]:
    """Held-out scores of every item: the model trained on the other k-1 folds."""
    from watchtower.feedback_model import FeedbackScorer, Labelled, train

    labelled = [Labelled(it["title"], it.get("summary") or "", it["label"]) for it in items]
    scores = [0.0] * len(items)
    for fold in _folds(items, k, seed):
        held = set(fold)
        model = train(matcher, [x for i, x in enumerate(labelled) if i not in held])
        scorer = FeedbackScorer(matcher, model)
        for i in fold:
            scores[i] = scorer.score(labelled[i].title, labelled[i].text).value
    return scores


def feedback_cv(cfg: Any, items: Sequence[dict[str, Any]], th: float, k: int = 5) -> None:
    """Print pooled k-fold figures with feedback, next to the baseline's, per config."""
    import time

    from watchtower.baseline import build_baseline
    from watchtower.config import load_config
    from watchtower.matcher import Matcher

    configs = {"seeds alone": variant_configs(cfg)["seeds alone"], "shipped": cfg.path}
    repeats = 5
    print(f"\n== learning from feedback: {k}-fold cross-validation x {repeats} shuffles")
    print(f"   (threshold {th:g}; P/R/F1 of label 2 vs 0; borderline items not learned from)")
    for name, path in configs.items():
        matcher = Matcher(build_baseline(load_config(path).baseline))
        base = figures(
            items, [matcher.score(it["title"], it.get("summary") or "").value for it in items], th
        )
        print(
            f"  {name:12} no feedback:   precision {base['precision']:.3f} recall "
            f"{base['recall']:.3f} F1 {base['f1']:.3f} AUC {base['auc']:.3f}"
        )
        runs = []
        started = time.perf_counter()
        for seed in range(repeats):
            runs.append(figures(items, feedback_cv_scores(matcher, items, k, seed), th))
        took = (time.perf_counter() - started) / (repeats * k)
        mean = {
            m: sum(r[m] for r in runs) / len(runs) for m in ("precision", "recall", "f1", "auc")
        }
        lo = min(r["f1"] for r in runs)
        hi = max(r["f1"] for r in runs)
        print(
            f"  {name:12} with feedback: precision {mean['precision']:.3f} recall "
            f"{mean['recall']:.3f} F1 {mean['f1']:.3f} (range {lo:.3f}-{hi:.3f}) "
            f"AUC {mean['auc']:.3f}; F1 change {mean['f1'] - base['f1']:+.3f}"
        )
        print(
            f"  {'':12} ({took:.2f} s per fold: training on {len(items) * (k - 1) // k} "
            f"items and scoring {len(items) // k})"
        )
        misses = Counter(t for r in runs for t in r["misses"])
        false = Counter(t for r in runs for t in r["false_alerts"])
        for title, n in misses.most_common(6):
            print(f"    missed {n}/{repeats}:      {title[:80]}")
        for title, n in false.most_common(6):
            print(f"    false alert {n}/{repeats}: {title[:80]}")


# ----------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=ROOT / "config" / "watchtower.yaml")
    ap.add_argument("--dev", type=Path, default=DEFAULT_DEV)
    ap.add_argument("--compare", action="store_true", help="also measure other candidates")
    ap.add_argument("--quiet", action="store_true", help="no per-category/miss lines")
    ap.add_argument(
        "--feedback-cv", action="store_true", help="also cross-validate learning from feedback"
    )
    ap.add_argument("--folds", type=int, default=5, help="folds for --feedback-cv (default 5)")
    ap.add_argument(
        "--seed-curve", action="store_true", help="also measure with 1, 3 and 5 of the seeds"
    )
    args = ap.parse_args(argv)
    if not args.dev.is_file():
        print(f"dev set not found: {args.dev} (needs ../shared next to the repository)")
        return 2
    items = [json.loads(line) for line in args.dev.read_text().splitlines() if line.strip()]

    from watchtower.baseline import build_baseline
    from watchtower.config import load_config
    from watchtower.matcher import Matcher

    cfg = load_config(args.config)
    th = cfg.alerts.threshold
    scores = score_via_cli(args.config, items)
    if scores is None:
        print("note: `watchtower score` unavailable; scoring with score_jsonl in-process")
        matcher = Matcher(build_baseline(cfg.baseline))
        scores = score_in_process(matcher, items, th)
        how = "score_jsonl (in-process)"
    else:
        how = "`watchtower score`"
    print(f"{len(items)} items from {args.dev}; config {args.config}; scored by {how}")
    print_figures("Watchtower matcher", figures(items, scores, th), th, not args.quiet)
    bool_scores = [boolean_query(it["title"], it.get("summary") or "") for it in items]
    print_figures(
        "boolean query (North Korea terms) AND (rights terms)",
        figures(items, bool_scores, 0.5),
        0.5,
        not args.quiet,
    )
    for label, body in variant_configs(cfg).items():
        vscores = score_via_cli(body, items)
        if vscores is None:
            print(f"note: could not score the {label} config")
            continue
        print_figures(f"Watchtower, {label}", figures(items, vscores, th), th, False)
    robustness(args.config, th)
    if args.seed_curve:
        seed_curve(cfg, items, th)
    print("\n== Watchtower matcher at other thresholds")
    for t in (0.3, 0.4, 0.5, 0.6, 0.7):
        f = figures(items, scores, t)
        print(
            f"  {t:.1f}: precision {f['precision']:.3f} recall {f['recall']:.3f} "
            f"hard negatives alerted {f['hard_false_alerts']:.1%} "
            f"label 1 alerted {f['label1_alerted']:.0%}"
        )
    if args.compare:
        compare(cfg, Matcher(build_baseline(cfg.baseline)), items, th)
    if args.feedback_cv:
        feedback_cv(cfg, items, th, args.folds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
