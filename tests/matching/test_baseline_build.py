"""The baseline: what is learned from seeds, the on-disk cache and its invalidation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.matching.test_matcher_scoring import ENTITIES, SEED_A, SEED_B, TERMS, make_seeds
from watchtower import baseline as baseline_mod
from watchtower import baseline_cache
from watchtower.baseline import Baseline, build_baseline
from watchtower.baseline_cache import load_baseline
from watchtower.config import BaselineConfig
from watchtower.errors import ConfigError
from watchtower.seeds import read_seeds


def config(seeds: Path, **extra: object) -> BaselineConfig:
    return BaselineConfig(seeds=seeds, terms=TERMS, entities=ENTITIES, **extra)  # type: ignore[arg-type]


class CountingBuilds:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = baseline_mod.build_from

        def counted(*args: object, **kwargs: object) -> Baseline:
            self.calls += 1
            return real(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(baseline_mod, "build_from", counted)


def test_learns_distinctive_terms_and_phrases_without_a_stop_list(tmp_path: Path) -> None:
    b = build_baseline(config(make_seeds(tmp_path / "seeds")))
    terms = [t.label for t in b.terms]
    assert "repatriation" in terms[:10] and "freedonia" in terms[:10]
    # function words are weighted out by the background frequency list
    assert not {"the", "of", "and", "to", "in"} & set(terms)
    phrases = [p.label for p in b.phrases]
    assert "forced repatriation" in phrases and "prison camps" in phrases
    assert not any(p.split()[0] in {"the", "of"} for p in phrases)
    assert all(abs(sum(v * v for v in vec.values()) - 1.0) < 1e-6 for vec in b.seed_vectors)


def test_describe_shows_what_was_learned(tmp_path: Path) -> None:
    b = build_baseline(config(make_seeds(tmp_path / "seeds"), exclude=["football"]))
    d = b.describe(top=5)
    assert {"label", "weight", "forms", "from"} <= set(d["topic"][0])
    subject = {row["label"]: row for row in d["subject"]}
    assert subject["Freedonia"]["from"] == "config"
    assert set(subject["Freedonia"]["forms"].split(", ")) == set(ENTITIES["Freedonia"])
    topic = {row["label"]: row for row in d["topic"]}
    assert topic["forced repatriation"]["weight"] == 3
    assert d["exclude"] == ["football"]
    assert [s["title"] for s in d["seeds"]] == [
        "Refugees sent back to Freedonia",
        "Rights in Freedonia",
    ]
    assert d["fingerprint"] == b.fingerprint
    json.dumps(d)


def test_cache_is_written_once_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = CountingBuilds(monkeypatch)
    cache = tmp_path / "var" / "baseline.json"
    cfg = config(make_seeds(tmp_path / "seeds"))
    first = load_baseline(cfg, cache_path=cache)
    assert cache.is_file() and builds.calls == 1
    second = load_baseline(cfg, cache_path=cache)
    assert builds.calls == 1
    assert second == first


def test_seed_change_rebuilds_the_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = CountingBuilds(monkeypatch)
    seeds = make_seeds(tmp_path / "seeds")
    cache = tmp_path / "cache.json"
    cfg = config(seeds)
    before = load_baseline(cfg, cache_path=cache)
    (seeds / "a.txt").write_text(SEED_A + "\nThe abductee families met the envoy.\n")
    after = load_baseline(cfg, cache_path=cache)
    assert builds.calls == 2
    assert after.fingerprint != before.fingerprint
    assert json.loads(cache.read_text())["fingerprint"] == after.fingerprint
    # a new seed file and a changed title also count
    (seeds / "c.txt").write_text(SEED_B.replace("grave", "worse"))
    assert load_baseline(cfg, cache_path=cache).fingerprint != after.fingerprint
    (seeds / "seeds.yaml").write_text('a.txt: {title: "Renamed"}\n')
    renamed = load_baseline(cfg, cache_path=cache)
    assert "Renamed" in [s.title for s in renamed.seeds]
    assert builds.calls == 4


def test_config_change_rebuilds_the_baseline(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds")
    cache = tmp_path / "cache.json"
    a = load_baseline(config(seeds), cache_path=cache)
    b = load_baseline(config(seeds, exclude=["football"]), cache_path=cache)
    c = load_baseline(
        BaselineConfig(seeds=seeds, terms={**TERMS, "abductee": 3}, entities=ENTITIES),
        cache_path=cache,
    )
    assert len({a.fingerprint, b.fingerprint, c.fingerprint}) == 3
    assert b.exclude == ("football",) and c.watch_terms["abductee"] == 3


def test_corrupt_or_unwritable_cache_is_ignored(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds")
    cache = tmp_path / "cache.json"
    cache.write_text("{not json")
    good = load_baseline(config(seeds), cache_path=cache)
    assert json.loads(cache.read_text())["fingerprint"] == good.fingerprint
    blocker = tmp_path / "file"
    blocker.write_text("x")
    again = load_baseline(config(seeds), cache_path=blocker / "cache.json")
    assert again == good


def test_cache_setting_and_default_location(tmp_path: Path) -> None:
    seeds = make_seeds(tmp_path / "seeds")
    load_baseline(config(seeds, cache=tmp_path / "configured.json"))
    assert (tmp_path / "configured.json").is_file()
    load_baseline(config(seeds))
    assert baseline_cache.default_cache_path(config(seeds)).is_file()


def test_html_seed_is_reduced_to_text_and_titles_fall_back(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "page.html").write_text(
        "<html><head><title>x</title><script>var refugee = 1;</script></head>"
        "<body><h1>Freedonia camps report</h1><p>Prison camps &amp; torture.</p></body></html>"
    )
    (seeds / "notes.txt").write_text("Short\n\nA longer first line that can serve as a title\n")
    (seeds / "ignored.pdf").write_bytes(b"%PDF")
    got = {s.name: s for s in read_seeds(seeds)}
    assert set(got) == {"page.html", "notes.txt"}
    assert "var refugee" not in got["page.html"].text
    assert "Prison camps & torture." in got["page.html"].text
    assert got["page.html"].title == "Freedonia camps report"
    assert got["notes.txt"].title == "A longer first line that can serve as a title"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: None, "seeds folder not found"),
        (lambda p: p.mkdir(), "no seed articles"),
        (lambda p: (p.mkdir(), (p / "a.txt").write_bytes(b"\xff\xfe\x00bad")), "not UTF-8"),
        (
            lambda p: (
                p.mkdir(),
                (p / "a.txt").write_text("x y"),
                (p / "seeds.yaml").write_text("a.txt: [unclosed\n"),
            ),
            "seeds.yaml",
        ),
        (
            lambda p: (
                p.mkdir(),
                (p / "a.txt").write_text("x y"),
                (p / "seeds.yaml").write_text("- just a list\n"),
            ),
            "expected a mapping",
        ),
    ],
)
def test_bad_seeds_are_config_errors(tmp_path: Path, setup: object, message: str) -> None:
    folder = tmp_path / "seeds"
    setup(folder)  # type: ignore[operator]
    with pytest.raises(ConfigError) as info:
        load_baseline(config(folder), cache_path=tmp_path / "c.json")
    assert message in str(info.value)


def test_empty_watch_term_is_a_config_error(tmp_path: Path) -> None:
    cfg = BaselineConfig(seeds=make_seeds(tmp_path / "seeds"), terms={"—": 2})
    with pytest.raises(ConfigError, match="has no words"):
        build_baseline(cfg)


def _bare(**kw: object) -> Baseline:
    base: dict[str, object] = dict(
        fingerprint="f", seeds=(), terms=(), phrases=(), names=(), seed_vectors=({}, {})
    )
    base.update(kw)
    return Baseline(**base)  # type: ignore[arg-type]


def test_a_term_of_one_seed_counts_half() -> None:
    from watchtower.learn import Weighted

    terms = (Weighted("repatri", "repatriation", 10.0), Weighted("pow", "POWs", 10.0))
    vectors = ({"repatri": 0.5, "pow": 0.5}, {"repatri": 1.0})
    topic = {t.form: t.weight for t in _bare(terms=terms, seed_vectors=vectors).topic()}
    assert topic["repatriation"] == 2.0
    assert topic["POWs"] == 2.0 * baseline_mod.SINGLE_SEED


def test_head_word_of_a_configured_compound_counts_a_share() -> None:
    from watchtower.learn import Weighted

    terms = (Weighted("right", "rights", 4.6),)  # too common to be learned as topic
    b = _bare(terms=terms, watch_terms={"human rights": 1.0}, seed_vectors=({"right": 1.0},))
    topic = {t.form: t for t in b.topic()}
    assert topic["rights"].weight == 1.0 * baseline_mod.HEAD_SHARE
    assert topic["rights"].label == "human rights"
    assert "human rights" in topic
    # a curated term (its own weight or wordings) matches just what it says
    for curated in (
        _bare(terms=terms, watch_terms={"human rights": 2.0}),
        _bare(
            terms=terms, watch_terms={"human rights": 1.0}, term_forms={"human rights": ("인권",)}
        ),
    ):
        assert "rights" not in {t.form for t in curated.topic()}


def test_plural_acronyms_are_not_proper_names() -> None:
    from watchtower.learn import _is_acronym

    assert _is_acronym("POWs") and _is_acronym("NGOs") and _is_acronym("DPRK")
    assert not _is_acronym("Pyongyang") and not _is_acronym("Is")


def test_a_minor_learned_initialism_may_be_a_topic_term() -> None:
    from watchtower.learn import Weighted

    names = (Weighted("freedonia", "Freedonia", 1.0), Weighted("unhcr", "UNHCR", 0.01))
    terms = (Weighted("unhcr", "UNHCR", 10.0), Weighted("freedonia", "freedonia", 10.0))
    vectors = ({"unhcr": 0.5, "freedonia": 0.5}, {"unhcr": 1.0, "freedonia": 0.1})
    b = _bare(names=names, terms=terms, seed_vectors=vectors)
    topic = {t.form for t in b.topic()}
    assert "UNHCR" in topic and "freedonia" not in topic
    assert "UNHCR" in {n.form for n in b.subject()}  # still (faintly) a subject name


def test_head_word_of_a_learned_phrase_counts_a_share() -> None:
    from watchtower.learn import Weighted

    terms = (Weighted("right", "rights", 4.6),)
    phrases = (Weighted("human right", "human rights", 10.0),)
    vec = {"right": 0.5, "human right": 0.5}
    b = _bare(terms=terms, phrases=phrases, seed_vectors=(vec, vec))
    topic = {t.form: t for t in b.topic()}
    assert topic["human rights"].weight == 2.0
    assert topic["rights"].weight == 2.0 * baseline_mod.HEAD_SHARE
