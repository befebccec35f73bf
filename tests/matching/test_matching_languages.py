"""The subject learned from the seeds: word families, Korean, Chinese, plain explanations.

These run the shipped config and seeds (``config/watchtower.yaml``) through the real
matcher, as ``watchtower score`` does; the robustness sets are in
``tests/data/robustness`` (must-alert items with their hard negatives).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from watchtower.baseline import build_baseline
from watchtower.config import load_config
from watchtower.errors import ConfigError
from watchtower.language import detect_lang, phrase_key, tokens
from watchtower.matcher import Matcher

ROOT = Path(__file__).resolve().parents[2]
ROBUSTNESS = ROOT / "tests" / "data" / "robustness"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    cfg = load_config(ROOT / "config" / "watchtower.yaml")
    return Matcher(build_baseline(cfg.baseline))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _seeds_only(tmp_path: Path, seeds: Path, terms: str = "") -> Matcher:
    body = f"baseline:\n  seeds: {seeds}\n  cache: {tmp_path / 'cache.json'}\n{terms}"
    cfg = load_config(_write(tmp_path / "c.yaml", body))
    return Matcher(build_baseline(cfg.baseline))


# ------------------------------------------------------------------ word families


@pytest.mark.parametrize(
    "forms",
    [
        ("repatriate", "repatriates", "repatriating", "repatriated", "repatriation"),
        ("execute", "executes", "executed", "execution", "executions"),
        ("send back", "sent back", "sending back", "sends back"),
        ("flee", "fled", "flees", "fleeing"),
    ],
)
def test_word_families_share_one_key(forms: tuple[str, ...]) -> None:
    assert len({phrase_key(f) for f in forms}) == 1


def test_executive_is_not_an_execution() -> None:
    assert phrase_key("executive") != phrase_key("execution")


def test_korean_and_chinese_keys() -> None:
    # traditional and simplified Chinese are one key
    assert tokens("脫北者") == tokens("脱北者")
    assert tokens("北韓") == tokens("北韩")


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("China is forcibly repatriating North Korean women who fled", "en"),
        ("탈북민 강제북송 규탄 집회", "ko"),
        ("中国强制遣返脱北者引发国际关注", "zh"),
        ("中國強制遣返脫北者引發國際關注", "zh"),
        ("北朝鮮の拉致問題について", "ja"),
        ("Северная Корея казнила подростков", "ru"),
        ("La Corée du Nord a exécuté des jeunes", "und"),
        ("", "und"),
    ],
)
def test_language_is_detected(text: str, lang: str) -> None:
    assert detect_lang(text) == lang


# ------------------------------------------------------------------ shipped config


@pytest.mark.parametrize(
    ("title", "text"),
    [
        ("China is forcibly repatriating North Korean women", ""),
        ("Seoul says North executes youths for watching K-dramas", ""),
        ("탈북민 강제북송 규탄 집회", ""),
        ("中国强制遣返脱北者引发国际关注", ""),
        ("中國強制遣返脫北者引發國際關注", ""),
        ("탈북민을 강제로 북송한 중국", "탈북민이 고문을 받을 위험이 크다고 인권단체가 밝혔다."),
    ],
)
def test_issue_examples_alert(shipped: Matcher, title: str, text: str) -> None:
    score = shipped.score(title, text)
    assert score.value >= 0.5, score.explanation.summary()


def test_korean_particles_attach_to_the_name(shipped: Matcher) -> None:
    score = shipped.score("탈북민을 돕는 단체, 강제북송 중단 촉구", "")
    labels = {m.label for m in score.explanation.matches}
    assert "North Korean defectors" in labels and "forced repatriation" in labels


def test_the_north_counts_only_in_a_korea_context(shipped: Matcher) -> None:
    korean = shipped.features("Seoul says the North executed two teenagers", "")
    assert "North Korea" in korean.subject_mentions
    other = shipped.features("Storms in the North leave thousands homeless", "Floods in Yorkshire.")
    assert "North Korea" not in other.subject_mentions


def test_the_kim_regime_is_north_korea_in_a_korea_context(shipped: Matcher) -> None:
    hit = shipped.score(
        "Kim regime sentences teens to hard labour for K-pop",
        "Two teenagers got 12 years of hard labour for watching South Korean videos.",
    )
    assert hit.value >= 0.5
    other = shipped.features("The Kim regime at the chess club ends", "A new chair in Leeds.")
    assert "North Korea" not in other.subject_mentions


def _rows(name: str) -> list[dict[str, object]]:
    text = (ROBUSTNESS / f"{name}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["inflections", "paraphrases", "korean", "chinese"])
def test_robustness_sets(shipped: Matcher, name: str) -> None:
    rows = _rows(name)
    alerts = [
        (r, shipped.score(str(r["title"]), str(r.get("summary") or "")).value >= 0.5) for r in rows
    ]
    pos = [a for r, a in alerts if r["label"] == 2]
    neg = [a for r, a in alerts if r["label"] == 0]
    assert sum(pos) / len(pos) >= 0.9, [r["title"] for r, a in alerts if r["label"] == 2 and not a]
    assert sum(neg) / len(neg) <= 0.1, [r["title"] for r, a in alerts if r["label"] == 0 and a]


def test_korean_item_carries_its_language(shipped: Matcher) -> None:
    expl = shipped.score("탈북민 강제북송 규탄 집회", "").explanation
    assert expl.lang == "ko" and "in Korean" in expl.summary()
    assert expl.to_dict()["lang"] == "ko"


# ------------------------------------------------------------------ explanations


def test_explanation_is_plain_words_with_an_excerpt(shipped: Matcher) -> None:
    text = (
        "Chinese police sent 60 North Korean escapees back across the border on Friday. "
        "Rights groups said they face torture and prison camps. " * 5
    )
    expl = shipped.score("China forcibly returns 60 North Korean escapees", text).explanation
    summary = expl.summary()
    assert summary.startswith("About North Korea")
    assert "(in the title)" in summary and "forced repatriation" in summary
    assert "closest to the seed '" in summary
    assert not re.search(r"[+-]\d|\d\.\d", summary)  # no internal numbers
    assert 0 < len(expl.excerpt) <= 300 and expl.excerpt.startswith("Chinese police")
    shares = [m.contribution for m in expl.matches]
    assert all(0.0 <= s <= 1.0 for s in shares) and abs(sum(shares) - 1.0) < 0.05


def test_no_match_says_so(shipped: Matcher) -> None:
    summary = shipped.score("Bitcoin hits a record high", "Markets rallied.").explanation.summary()
    assert summary.startswith("Not about the subject")


# ------------------------------------------------------------------ seeds alone


def test_a_config_with_only_seeds_alerts(tmp_path: Path) -> None:
    matcher = _seeds_only(tmp_path, ROOT / "seeds")
    names = {n.label for n in matcher.baseline.subject()}
    assert {"North Korea", "North Korean"} & names
    assert not {"Jawoon Kim", "Skip", "Ben Willis"} & names  # by-lines and navigation
    hit = matcher.score(
        "China repatriates North Korean defectors despite UN appeals",
        "The UN special rapporteur on human rights in North Korea urged China to stop the "
        "forced repatriation of North Korean refugees, who face abuses on return.",
    )
    miss = matcher.score(
        "North Korea fires ballistic missile",
        "North Korea launched a missile into the sea, Seoul's military said.",
    )
    assert hit.value >= 0.5 > miss.value


def test_plain_term_list_is_accepted(tmp_path: Path) -> None:
    matcher = _seeds_only(tmp_path, ROOT / "seeds", "  terms: [prison camps, trafficking]\n")
    assert matcher.baseline.watch_terms == {"prison camps": 1.0, "trafficking": 1.0}


def test_a_weight_of_zero_vetoes_a_learned_term(tmp_path: Path) -> None:
    learned = _seeds_only(tmp_path / "a", ROOT / "seeds")
    assert any(t.label == "repatriation" for t in learned.baseline.topic())
    vetoed = _seeds_only(tmp_path / "b", ROOT / "seeds", "  terms: {repatriation: 0}\n")
    assert not any(t.label == "repatriation" for t in vetoed.baseline.topic())


# ------------------------------------------------------------------ bad input


def test_empty_seeds_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    with pytest.raises(ConfigError, match="no seed articles"):
        _seeds_only(tmp_path, tmp_path / "seeds")


def test_boilerplate_only_seed_learns_nothing_and_scores_zero(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    for name in ("a.txt", "b.txt"):
        _write(seeds / name, "Skip to main content\nMenu\nHome\nContact us\n")
    matcher = _seeds_only(tmp_path, seeds)
    assert matcher.baseline.subject() == [] and matcher.baseline.topic() == []
    assert matcher.score("North Korea executes teenagers", "").value < 0.5


def test_seed_in_another_language_still_gives_sane_scores(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    _write(
        seeds / "ko.txt", "북한 인권 상황\n" + "북한 당국은 탈북민을 강제로 북송하고 있다. " * 20
    )
    matcher = _seeds_only(tmp_path, seeds)
    score = matcher.score("Bitcoin hits a record", "Markets rallied on Monday.")
    assert 0.0 <= score.value < 0.5


def test_unknown_language_and_huge_items_score_sanely(shipped: Matcher) -> None:
    thai = shipped.score("เกาหลีเหนือยิงขีปนาวุธ", "ข่าวต่างประเทศ " * 50)
    assert thai.value < 0.5 and thai.explanation.lang == "th"
    huge = "North Korea forcibly repatriated defectors to prison camps. " * 18_000  # ~1 MB
    score = shipped.score("A very long report", huge)
    assert 0.5 <= score.value <= 1.0 and len(score.explanation.excerpt) <= 300
