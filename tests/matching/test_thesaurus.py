"""The shipped human-rights thesaurus: the seeds switch it on, it adds the field's other
concepts (in English, Korean and Chinese) to the topic, never a subject."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from watchtower import thesaurus
from watchtower.baseline import build_baseline
from watchtower.config import load_config
from watchtower.matcher import Matcher

ROOT = Path(__file__).resolve().parents[2]


def _matcher(tmp_path: Path, seeds: Path, extra: str = "") -> Matcher:
    body = f"baseline:\n  seeds: {seeds}\n  cache: {tmp_path / 'cache.json'}\n{extra}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "c.yaml"
    path.write_text(body, encoding="utf-8")
    return Matcher(build_baseline(load_config(path).baseline))


@pytest.fixture(scope="module")
def seeds_only(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    return _matcher(tmp_path_factory.mktemp("seeds-only"), ROOT / "seeds")


def test_the_seeds_switch_the_thesaurus_on(seeds_only: Matcher) -> None:
    b = seeds_only.baseline
    assert b.related_weight > 0
    assert {"executions", "separated families", "forced labour"} <= set(b.related)
    rows = {r["label"]: r for r in b.describe(top=200)["topic"]}
    assert rows["executions"]["from"] == "thesaurus"
    assert rows["repatriation"]["from"] == "seeds"  # a learned form keeps its weight


def test_it_adds_topic_never_subject(seeds_only: Matcher) -> None:
    subject = {n.form for n in seeds_only.baseline.subject() if n.weight >= 0.1}
    forms = {f for group in seeds_only.baseline.related.values() for f in group}
    assert not subject & forms
    # without the subject a thesaurus concept scores nothing much
    alone = seeds_only.score(
        "Thailand deports Uyghur asylum seekers to China",
        "Rights groups say the asylum seekers face detention and torture on return.",
    )
    assert alone.value < 0.5


@pytest.mark.parametrize(
    ("title", "text"),
    [
        (
            "Pyongyang stages public executions over smuggled films",
            "Two people were publicly executed at an airfield, a North Korea monitor said.",
        ),
        (
            "North Korean workers toil in guarded dormitories abroad",
            "Investigators describe forced labour: North Korea keeps most of the wages.",
        ),
        (
            "North Korea holds public trials of youths caught with foreign films",
            "Residents were made to attend the trials, a North Korea monitor said.",
        ),
        (
            "Separated families meet at North Korea's Mount Kumgang",
            "Elderly relatives split by the war had a few hours of family reunions.",
        ),
    ],
)
def test_concepts_the_seeds_never_name_alert_with_the_subject(
    seeds_only: Matcher, title: str, text: str
) -> None:
    assert seeds_only.score(title, text).value >= 0.5


def test_a_generic_paraphrase_is_not_a_forced_return(seeds_only: Matcher) -> None:
    s = seeds_only.score(
        "North Korea sends back South Korean fishing boat",
        "The boat that drifted north was handed over at the maritime border, Seoul said.",
    )
    assert s.value < 0.5


def test_seeds_of_another_field_leave_it_off(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    text = (
        "Chipmakers expand foundry capacity as wafer demand grows\n\n"
        "Foundry operators said wafer starts rose as lithography tools arrived. "
        "The foundry expansion follows demand for wafer capacity and lithography "
        "scanners, with chipmakers booking wafer capacity years ahead.\n"
    )
    (seeds / "a.txt").write_text(text, encoding="utf-8")
    (seeds / "b.txt").write_text(text.replace("grows", "climbs"), encoding="utf-8")
    m = _matcher(tmp_path, seeds)
    assert m.baseline.related == {} and m.baseline.related_weight == 0


def test_it_can_be_turned_off_and_a_form_vetoed(tmp_path: Path) -> None:
    off = _matcher(tmp_path / "off", ROOT / "seeds", "  thesaurus: false\n")
    assert off.baseline.related == {}
    vetoed = _matcher(tmp_path / "veto", ROOT / "seeds", "  terms: {executions: 0}\n")
    labels = {(t.form, t.label) for t in vetoed.baseline.topic()}
    assert not any(form == "executions" for form, _ in labels)
    assert any(label == "executions" for _, label in labels)  # other forms remain


def test_turning_it_off_changes_the_fingerprint(tmp_path: Path) -> None:
    on = _matcher(tmp_path / "on", ROOT / "seeds")
    off = _matcher(tmp_path / "off", ROOT / "seeds", "  thesaurus: false\n")
    assert on.baseline.fingerprint != off.baseline.fingerprint


def test_the_cached_baseline_keeps_it(seeds_only: Matcher) -> None:
    from watchtower.baseline import Baseline

    again = Baseline.from_json(json.loads(json.dumps(seeds_only.baseline.to_json())))
    assert again.related == seeds_only.baseline.related
    assert again.related_weight == seeds_only.baseline.related_weight


def test_korean_and_chinese_forms_count_with_a_configured_subject(tmp_path: Path) -> None:
    m = _matcher(
        tmp_path,
        ROOT / "seeds",
        "  entities:\n    North Korea: [북한, 朝鲜]\n",
    )
    assert (
        m.score("북한, 공개처형 늘려", "북한 당국이 주민들을 공개처형했다고 전했다.").value >= 0.5
    )
    assert (
        m.score("朝鲜公开处决观看韩剧的青年", "据报道，朝鲜当局公开处决了两名青年。").value >= 0.5
    )
    assert m.score("북한, 탄도미사일 발사", "북한이 동해상으로 미사일을 발사했다.").value < 0.5


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "a mapping with `concepts`"),
        ({"concepts": {"x": ["a"]}}, "not a mapping of languages"),
    ],
)
def test_a_malformed_thesaurus_is_refused(doc: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        thesaurus._parse(doc, Path("bad.yaml"))


def test_the_shipped_thesaurus_is_well_formed() -> None:
    (hr,) = thesaurus.shipped()
    assert hr.attest >= 2 and 0 < hr.weight <= 2
    assert all(c.forms for c in hr.concepts)
    for c in hr.concepts:  # every concept carries Korean and Chinese forms
        assert any(re.search("[\uac00-\ud7af]", f) for f in c.forms), c.name
        assert any(re.search("[\u4e00-\u9fff]", f) for f in c.forms), c.name


def test_a_thesaurus_form_never_hides_a_configured_one(tmp_path: Path) -> None:
    m = _matcher(tmp_path, ROOT / "seeds", "  terms: {slavery: 3}\n")
    forms = {t.form: t for t in m.baseline.topic()}
    assert "modern-day slavery" not in forms  # it would take the longer match
    f = m.features("North Korean workers abroad", "Investigators call it modern-day slavery.")
    assert f.topic_terms == {"slavery": 3.0}


def test_a_missing_thesaurus_folder_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(thesaurus, "FOLDER", tmp_path / "none")
    assert thesaurus.shipped() == []
    assert "no thesaurus" in caplog.text
