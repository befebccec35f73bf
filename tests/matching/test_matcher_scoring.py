"""The matcher: concepts, aliases, excludes, explanations, JSONL input, quality bar."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from tests.support import ROOT, shared_path
from watchtower.baseline import build_baseline
from watchtower.config import BaselineConfig, load_config
from watchtower.errors import WatchtowerError
from watchtower.jsonlines import ScoreInputError, score_jsonl
from watchtower.matcher import Matcher, build_matcher

SEED_A = """Forced repatriation of refugees from Freedonia

Border guards of Freedonia shot at refugees who tried to cross the river. Refugees
caught abroad face forced repatriation, torture in detention and years in a prison
camp. The special rapporteur on Freedonia urged neighbouring states to stop forced
repatriation and to give the refugee agency access to detained refugees. A commission
of inquiry found crimes against humanity in the prison camps of Freedonia.
"""

SEED_B = """Human rights in Freedonia and the response of its neighbours

The human rights situation in Freedonia remains grave. The special rapporteur reported
torture, public executions and forced labour. Refugees who escaped Freedonia described
prison camps and forced repatriation. Human rights groups asked the council to act.
"""

TERMS = {
    "forced repatriation": 3,
    "prison camp": 3,
    "special rapporteur": 3,
    "refugee": 2,
    "human rights": 2,
    "torture": 2,
}
ENTITIES = {"Freedonia": ["Freedonian", "Freedonians", "Sylvania Republic", "Fredville"]}


def make_seeds(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.txt").write_text(SEED_A, encoding="utf-8")
    (folder / "b.md").write_text(SEED_B, encoding="utf-8")
    (folder / "seeds.yaml").write_text(
        'a.txt: {title: "Refugees sent back to Freedonia"}\nb.md: {title: "Rights in Freedonia"}\n',
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def cfg(tmp_path: Path) -> BaselineConfig:
    return BaselineConfig(
        seeds=make_seeds(tmp_path / "seeds"),
        terms=TERMS,
        entities=ENTITIES,
        exclude=["football match"],
        cache=tmp_path / "cache.json",
    )


@pytest.fixture
def matcher(cfg: BaselineConfig) -> Matcher:
    return build_matcher(cfg)


RELEVANT = (
    "Freedonian refugees face forced repatriation",
    "Neighbouring police detained 20 Freedonian refugees near the border and plan their "
    "forced repatriation, where they face torture and a prison camp, activists said.",
)
SUBJECT_ONLY = (
    "Freedonia launches new rocket",
    "Freedonia launched a rocket on Tuesday; the Freedonian army called the test a success.",
)
TOPIC_ONLY = (
    "Refugees from Ruritania face forced repatriation",
    "Police detained 20 Ruritanian refugees who now face forced repatriation and torture.",
)


def test_subject_and_topic_together_alert_either_alone_does_not(matcher: Matcher) -> None:
    both = matcher.score(*RELEVANT)
    subject = matcher.score(*SUBJECT_ONLY)
    topic = matcher.score(*TOPIC_ONLY)
    assert both.value >= 0.5 and both.alerts_at(0.5)
    assert subject.value < 0.5 and topic.value < 0.5
    assert 0.0 <= subject.value <= 1.0 and 0.0 <= topic.value <= 1.0


def test_unrelated_item_scores_near_zero(matcher: Matcher) -> None:
    sc = matcher.score("Stocks close higher", "Shares of chip makers rose for a third day.")
    assert sc.value < 0.05
    assert sc.explanation.nearest_seed is None


def test_aliases_count_for_their_entity(matcher: Matcher) -> None:
    text = "Police in Fredville detained refugees; officials of the Sylvania Republic spoke of "
    sc = matcher.score(
        "Rapporteur hears refugees", text + "torture and forced repatriation in a prison camp."
    )
    entities = {m.label: m for m in sc.explanation.by_kind("entity")}
    assert set(entities) == {"Freedonia"}
    assert entities["Freedonia"].count == 2
    assert sc.value >= 0.5


def test_matching_ignores_case_plurals_and_hyphens(matcher: Matcher) -> None:
    sc = matcher.score("FREEDONIAN REFUGEES", "Prison-camps and Forced Repatriations of refugees.")
    labels = {m.label for m in sc.explanation.by_kind("term", "phrase")}
    assert {"refugee", "forced repatriation", "prison camp"} <= labels


def test_exclude_rule_vetoes_and_is_named(matcher: Matcher) -> None:
    title, text = RELEVANT
    sc = matcher.score(title, text + " The Football Match was cancelled.")
    assert sc.value == 0.0
    assert sc.explanation.excluded_by == "football match"
    assert not sc.alerts_at(0.0)
    assert "Excluded: it mentions" in sc.explanation.summary()


def test_explanation_names_terms_contributions_and_nearest_seed(matcher: Matcher) -> None:
    sc = matcher.score(*RELEVANT)
    exp = sc.explanation
    terms = {m.label: m for m in exp.by_kind("term", "phrase")}
    assert {"forced repatriation", "refugee", "torture", "prison camp"} <= set(terms)
    assert all(m.contribution > 0 for m in terms.values())
    assert terms["forced repatriation"].kind == "phrase" and terms["refugee"].kind == "term"
    # the heavier, title-boosted term contributes more than a weight-2 body term
    assert terms["forced repatriation"].contribution > terms["torture"].contribution
    assert exp.by_kind("entity")[0].label == "Freedonia"
    assert any(m.kind == "concept" for m in exp.matches)
    assert exp.nearest_seed == "Refugees sent back to Freedonia"
    assert 0.0 < exp.seed_similarity <= 1.0
    assert exp.by_kind("seed"), "the learned seed terms behind the similarity are listed"
    data = exp.to_dict()
    assert data["nearest_seed"] == exp.nearest_seed
    assert "Freedonia" in data["summary"] and "forced repatriation" in data["summary"]


def test_matcher_pickles_and_scores_the_same(matcher: Matcher) -> None:
    clone = pickle.loads(pickle.dumps(matcher))
    assert clone.score(*RELEVANT) == matcher.score(*RELEVANT)


def test_a_matcher_builds_its_phrase_tables_with_the_first_item_it_scores(
    matcher: Matcher,
) -> None:
    """The main process only ships its matcher to the workers: loading one costs no
    tables, and one shipped before it scored anything scores as one that has."""
    fresh = Matcher(matcher.baseline)
    assert "_tables" not in vars(fresh)
    shipped = pickle.loads(pickle.dumps(fresh))
    assert shipped.score(*RELEVANT) == matcher.score(*RELEVANT)
    assert "_tables" in vars(shipped) and "_tables" not in vars(fresh)


def test_score_jsonl_output_objects(matcher: Matcher) -> None:
    lines = [
        json.dumps({"id": "r1", "title": RELEVANT[0], "summary": RELEVANT[1]}),
        "",
        json.dumps({"id": 7, "title": SUBJECT_ONLY[0], "content": "<p>" + SUBJECT_ONLY[1]}),
    ]
    out = list(score_jsonl(lines, matcher, 0.5))
    assert [o["id"] for o in out] == ["r1", 7]
    assert out[0]["alert"] is True and out[1]["alert"] is False
    assert set(out[0]) == {"id", "score", "alert", "explanation"}
    assert out[0]["explanation"]["nearest_seed"] == "Refugees sent back to Freedonia"
    json.dumps(out)  # serialisable as the CLI prints it


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"title": "x"}', 'missing "id"'),
        ('{"id": true, "title": "x"}', 'missing "id"'),
        ('{"id": "1"}', 'missing "title"'),
        ('{"id": "1", "title": "x", "summary": 5}', '"summary" must be a string'),
    ],
)
def test_malformed_input_line_is_a_clear_error_with_line_number(
    matcher: Matcher, line: str, problem: str
) -> None:
    good = json.dumps({"id": "ok", "title": "fine"})
    results = score_jsonl([good, line], matcher, 0.5)
    assert next(results)["id"] == "ok"
    with pytest.raises(ScoreInputError) as info:
        next(results)
    assert isinstance(info.value, WatchtowerError)
    assert info.value.line == 2
    assert "line 2" in str(info.value) and problem in str(info.value)


def test_hostile_input_is_bounded(matcher: Matcher) -> None:
    huge = ("Freedonia refugee " * 20000) + "\x00\u202e" + "forced repatriation"
    sc = matcher.score("x" * 10000, huge)
    assert 0.0 <= sc.value <= 1.0
    assert len(sc.explanation.matches) <= 30


def test_dev_set_quality_bar_with_shipped_config() -> None:
    """The bar from the issue, on ../shared/eval/dev.jsonl with config/watchtower.yaml."""
    dev = shared_path("eval", "dev.jsonl")
    config = load_config(ROOT / "config" / "watchtower.yaml")
    matcher = Matcher(build_baseline(config.baseline))
    th = config.alerts.threshold
    items = [json.loads(line) for line in dev.read_text().splitlines() if line.strip()]
    scored = [(it, matcher.score(it["title"], it["summary"]).value) for it in items]
    pos = [s for it, s in scored if it["label"] == 2]
    neg = [s for it, s in scored if it["label"] == 0]
    hard = [s for it, s in scored if it["category"].startswith("hard-neg")]
    tp = sum(s >= th for s in pos)
    fp = sum(s >= th for s in neg)
    precision, recall = tp / max(tp + fp, 1), tp / len(pos)
    auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    assert precision >= 0.95, precision
    assert recall >= 0.97, recall
    assert sum(s >= th for s in hard) / len(hard) <= 0.05
    assert auc >= 0.98, auc


def test_topic_words_far_from_the_subject_count_less(matcher: Matcher) -> None:
    filler = " ".join(f"word{i}" for i in range(150))
    near = matcher.score(
        "News", f"Freedonia: refugees face torture and forced repatriation. {filler}"
    )
    far = matcher.score(
        "News", f"Freedonia. {filler} Refugees face torture and forced repatriation."
    )
    assert far.value < near.value
    assert far.value < 0.5 <= near.value


def test_without_watch_terms_learned_seed_terms_stand_in(tmp_path: Path) -> None:
    cfg = BaselineConfig(seeds=make_seeds(tmp_path / "seeds"), entities=ENTITIES)
    m = Matcher(build_baseline(cfg))
    sc = m.score(*RELEVANT)
    assert sc.value >= 0.5
    assert {t.label for t in sc.explanation.by_kind("term", "phrase")} & {
        "repatriation",
        "forced repatriation",
        "refugees",
    }
