"""Learning from feedback: the baseline kept without labels, bounded effect of one
label, the right direction with many, speed, explanations, pickling, bad input."""

from __future__ import annotations

import json
import math
import pickle
import time
from pathlib import Path

import pytest

from tests.support import ROOT, shared_path
from watchtower.baseline import build_baseline
from watchtower.config import BaselineConfig
from watchtower.feedback_cache import feedback_cache_path, feedback_scorer, load_or_train
from watchtower.feedback_model import (
    SHIFT_PER_LABEL,
    FeedbackModel,
    FeedbackScorer,
    Labelled,
    train,
)
from watchtower.matcher import Matcher

RELEVANT = Labelled(
    "North Korean defectors face forced repatriation from China",
    "Chinese police detained ten North Korean defectors near the border. Activists fear "
    "their forced repatriation, where they face torture and prison camps.",
    2,
)
MISSILE = Labelled(
    "North Korea fires ballistic missile into the sea",
    "North Korea launched a ballistic missile on Tuesday, the South Korean military said.",
    0,
)
ABDUCTEES = Labelled(
    "Families of Japanese abductees appeal to Pyongyang",
    "Relatives of Japanese citizens abducted by North Korea decades ago asked for a summit "
    "to bring the abductees home.",
    2,
)


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    """The seeds alone (no configured terms): the config feedback must help most."""
    cache = tmp_path_factory.mktemp("baseline") / "cache.json"
    return Matcher(build_baseline(BaselineConfig(seeds=ROOT / "seeds", cache=cache)))


@pytest.fixture(scope="module")
def dev() -> list[Labelled]:
    from watchtower.labelfile import read_labelled

    path = shared_path("eval", "dev.jsonl")
    return read_labelled(path.read_text(encoding="utf-8").splitlines(), str(path))


def test_no_labels_scores_are_exactly_the_matchers(matcher: Matcher, tmp_path: Path) -> None:
    assert train(matcher, []) is None
    assert train(matcher, [Labelled("Borderline", "food aid", 1)]) is None
    assert feedback_scorer(matcher, [], tmp_path / "cache.json") is matcher
    scorer = FeedbackScorer(matcher, None)
    for item in (RELEVANT, MISSILE, ABDUCTEES):
        assert scorer.score(item.title, item.text) == matcher.score(item.title, item.text)


@pytest.mark.parametrize("label", [0, 2])
def test_one_label_moves_a_score_only_a_little(matcher: Matcher, label: int) -> None:
    model = train(matcher, [Labelled(RELEVANT.title, RELEVANT.text, label)])
    assert model is not None
    scorer = FeedbackScorer(matcher, model)
    for item in (RELEVANT, MISSILE, ABDUCTEES):
        before = matcher.score(item.title, item.text).value
        after = scorer.score(item.title, item.text).value
        assert (
            abs(_logit(after) - _logit(before)) <= SHIFT_PER_LABEL + 1e-3
        )  # values are rounded to 6 places
        assert abs(after - before) <= 0.125
    labelled = scorer.score(RELEVANT.title, RELEVANT.text).value
    before = matcher.score(RELEVANT.title, RELEVANT.text).value
    assert (labelled > before) if label == 2 else (labelled < before)


def _auc(pos: list[float], neg: list[float]) -> float:
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_labels_of_100_items_move_held_out_scores_the_right_way(
    matcher: Matcher, dev: list[Labelled]
) -> None:
    train_half, held = dev[0::2], [x for x in dev[1::2] if x.label != 1]
    model = train(matcher, train_half)
    assert model is not None
    scorer = FeedbackScorer(matcher, model)
    shift: dict[int, list[float]] = {0: [], 2: []}
    after: dict[int, list[float]] = {0: [], 2: []}
    before: dict[int, list[float]] = {0: [], 2: []}
    for x in held:
        b = matcher.score(x.title, x.text).value
        a = scorer.score(x.title, x.text).value
        shift[x.label].append(_logit(a) - _logit(b))
        after[x.label].append(a)
        before[x.label].append(b)
    mean = {k: sum(v) / len(v) for k, v in shift.items()}
    assert mean[2] > 1.0 and mean[2] - mean[0] > 1.0
    assert _auc(after[2], after[0]) >= max(0.95, _auc(before[2], before[0]))


def test_retraining_a_thousand_labels_takes_well_under_a_second(matcher: Matcher) -> None:
    base = [RELEVANT, MISSILE, ABDUCTEES]
    items = [
        Labelled(f"{b.title} ({i})", f"{b.text} Item {i} of the batch, word{i}.", b.label)
        for i in range(334)
        for b in base
    ][:1000]
    train(matcher, items[:50])  # warm the word-family caches
    started = time.perf_counter()
    model = train(matcher, items)
    first = time.perf_counter() - started
    assert model is not None and model.n_labels == 1000
    assert first < 3.0, f"training on 1,000 labels took {first:.2f} s"
    started = time.perf_counter()
    model = train(matcher, [*items, Labelled("One more", "A verdict that just arrived.", 0)])
    took = time.perf_counter() - started
    assert model is not None and model.n_labels == 1001
    assert took < 1.0, f"retraining on 1,001 labels took {took:.2f} s"


def test_explanation_names_the_feedback(matcher: Matcher) -> None:
    similar = [
        Labelled(
            f"North Korean defectors caught in China {i}",
            "Chinese police detained North Korean defectors; activists fear forced "
            f"repatriation and prison camps. Report {i}.",
            2,
        )
        for i in range(3)
    ]
    scorer = FeedbackScorer(matcher, train(matcher, [*similar, MISSILE]))
    score = scorer.score(RELEVANT.title, RELEVANT.text)
    note = score.explanation.notes[-1]
    assert "like 3 items you marked relevant" in note
    assert note.startswith("Feedback raised the score from")
    assert "through the words" in note and "'north'" not in note.lower()
    assert "feedback raised the score" in score.explanation.summary()
    assert score.explanation.to_dict()["summary"].startswith("About")


def test_pickle_and_json_round_trips_score_the_same(matcher: Matcher) -> None:
    model = train(matcher, [RELEVANT, MISSILE, ABDUCTEES])
    assert model is not None
    scorer = FeedbackScorer(matcher, model)
    again = pickle.loads(pickle.dumps(scorer, pickle.HIGHEST_PROTOCOL))
    restored = FeedbackModel.from_json(json.loads(json.dumps(model.to_json())))
    from_json = FeedbackScorer(matcher, restored)
    for item in (RELEVANT, MISSILE, ABDUCTEES):
        want = scorer.score(item.title, item.text)
        assert again.score(item.title, item.text) == want
        assert from_json.score(item.title, item.text) == want


def test_one_class_empty_and_huge_texts_are_handled(matcher: Matcher) -> None:
    only_relevant = train(matcher, [RELEVANT, ABDUCTEES])
    assert only_relevant is not None
    scorer = FeedbackScorer(matcher, only_relevant)
    before = matcher.score(MISSILE.title, MISSILE.text).value
    assert abs(_logit(scorer.score(MISSILE.title, MISSILE.text).value) - _logit(before)) <= 1.0
    empty = train(matcher, [Labelled("", "", 2), Labelled("", "", 0)])
    assert empty is not None
    assert 0.0 <= FeedbackScorer(matcher, empty).score("", "").value <= 1.0
    huge = "North Korean defectors face forced repatriation. " * 21_000  # about 1 MB
    started = time.perf_counter()
    model = train(matcher, [Labelled("Huge", huge, 2), MISSILE])
    value = FeedbackScorer(matcher, model).score("Huge", huge).value
    assert 0.0 <= value <= 1.0
    assert time.perf_counter() - started < 10.0


def test_the_model_is_cached_with_the_baseline_and_retrained_on_change(
    matcher: Matcher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = feedback_cache_path(tmp_path / "baseline-cache.json")
    assert cache.name == "baseline-cache.feedback.json"
    labels = [RELEVANT, MISSILE]
    first = load_or_train(matcher, labels, cache)
    assert first is not None and cache.is_file()
    import watchtower.feedback_cache as fc

    def fail(*_a: object, **_k: object) -> None:
        raise AssertionError("retrained although the labels did not change")

    monkeypatch.setattr(fc, "train", fail)
    assert load_or_train(matcher, list(reversed(labels)), cache) == first
    monkeypatch.undo()
    changed = load_or_train(matcher, [*labels, ABDUCTEES], cache)
    assert changed is not None and changed.n_labels == 3
    cache.write_text("{not json", encoding="utf-8")
    assert load_or_train(matcher, labels, cache) == first


def test_runtime_scorer_is_the_matcher_without_feedback_and_corrected_with_it(
    tmp_path: Path,
) -> None:
    from watchtower.config import load_config
    from watchtower.runtime import load_scorer

    path = tmp_path / "watchtower.yaml"
    path.write_text(
        f"baseline:\n  seeds: {json.dumps(str(ROOT / 'seeds'))}\n"
        f"  cache: {json.dumps(str(tmp_path / 'cache.json'))}\n",
        encoding="utf-8",
    )
    config = load_config(path)
    assert isinstance(load_scorer(config), Matcher)
    scorer = load_scorer(config, [RELEVANT, MISSILE])
    assert isinstance(scorer, FeedbackScorer)
    assert (tmp_path / "cache.feedback.json").is_file()


def test_korean_and_chinese_words_are_learned_inside_runs(matcher: Matcher) -> None:
    relevant = [
        Labelled(
            f"탈북민 강제북송 우려 {i}", "중국 공안이 탈북민을 체포해 강제북송할 우려가 있다.", 2
        )
        for i in range(3)
    ] + [
        Labelled(f"中国强制遣返脱北者 {i}", "人权组织说，脱北者被强制遣返后将面临酷刑。", 2)
        for i in range(3)
    ]
    other = [
        Labelled(f"주식 시장 상승 {i}", "코스피 지수가 반도체 업종 강세로 올랐다.", 0)
        for i in range(3)
    ] + [Labelled(f"股市上涨 {i}", "半导体板块带动股市上涨。", 0) for i in range(3)]
    scorer = FeedbackScorer(matcher, train(matcher, relevant + other))
    for title, text, up in (
        ("탈북민들 강제북송 위기", "탈북민들이 강제북송될 위기에 처했다.", True),
        ("脫北者恐遭強制遣返", "脫北者被捕後恐遭強制遣返。", True),  # traditional characters
        ("코스피 반도체 강세", "반도체 업종이 강세를 보였다.", False),
    ):
        before = matcher.score(title, text).value
        after = scorer.score(title, text).value
        if up:
            assert after > 0.3 > before, title
        else:
            assert after < 0.1, title  # unlike the relevant ones, it stays far below


def test_labels_of_one_kind_alone_move_scores_no_more_than_one_label(matcher: Matcher) -> None:
    clicks = [
        Labelled(f"{RELEVANT.title}, report {i}", f"{RELEVANT.text} Update {i}.", 2)
        for i in range(20)
    ]
    scorer = FeedbackScorer(matcher, train(matcher, clicks))
    for item in (MISSILE, ABDUCTEES, RELEVANT):
        before = matcher.score(item.title, item.text).value
        after = scorer.score(item.title, item.text).value
        assert abs(_logit(after) - _logit(before)) <= SHIFT_PER_LABEL + 1e-3
