"""Near-duplicate signatures and the story index: one story across outlets."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.support import ROOT, shared_path
from watchtower.dedupe import same_story, signature, similarity
from watchtower.story_index import MinHashStoryIndex

WIRE_TITLE = "Freedonia sends 60 detained refugees back across the river, activists say"
WIRE = (
    "Authorities in Sylvania handed about 60 Freedonian refugees held at a detention centre "
    "in the border town of Marsh Hollow to Freedonian officials on Friday, according to two "
    "activist groups and a local newspaper. The refugees, among them at least ten women and "
    "two children, had been arrested over the past month while trying to reach a third "
    "country. Returnees are usually interrogated and many are sent to labour camps, the "
    "groups said. The Sylvanian foreign ministry said the people had crossed the border "
    "illegally for economic reasons and were not refugees. The UN refugee agency said it "
    "had asked for access to the detainees but had received no answer."
)

# The same wire copy as another outlet runs it: new headline, a trimmed last sentence,
# a house-style tweak and an added attribution line.
OUTLET_TITLE = "Sylvania returns about 60 Freedonian escapees, rights groups say"
OUTLET = (
    WIRE.replace("on Friday", "on Friday (local time)")
    .replace(" but had received no answer.", ".")
    .replace("labour camps", "labor camps")
    + " Reporting by the Example Wire service."
)

# A re-titled update of the same story a day later.
UPDATE_TITLE = "UPDATE 1-Freedonia sends detained refugees back; UN agency seeks access"
UPDATE = WIRE + " On Saturday a second group of about 20 people was reported to have been moved."

# A different story on the same subject, in the same vocabulary.
OTHER_TITLE = "UN rapporteur urges Sylvania to stop returning Freedonian refugees"
OTHER = (
    "The UN special rapporteur on Freedonia urged Sylvania on Tuesday to stop sending "
    "refugees back across the river, saying returnees face torture, forced labour and "
    "detention in prison camps. In a report to the council she said at least 400 people "
    "had been returned since January and asked the UN refugee agency to be given access. "
    "Sylvania says those who cross the border illegally are economic migrants."
)


def test_same_wire_story_on_two_outlets_is_one_story() -> None:
    a, b = signature(WIRE_TITLE, WIRE), signature(OUTLET_TITLE, OUTLET)
    assert similarity(a, b) >= 0.5
    assert same_story(a, b)


def test_retitled_update_joins_the_story() -> None:
    assert same_story(signature(WIRE_TITLE, WIRE), signature(UPDATE_TITLE, UPDATE))


def test_short_feed_summary_of_a_longer_article_joins_it() -> None:
    summary = WIRE.split(". ")[0] + ". " + WIRE.split(". ")[1] + "."
    assert same_story(signature(WIRE_TITLE, WIRE), signature(WIRE_TITLE, summary))


def test_different_story_on_the_same_subject_stays_separate() -> None:
    a, b = signature(WIRE_TITLE, WIRE), signature(OTHER_TITLE, OTHER)
    assert similarity(a, b) < 0.2
    assert not same_story(a, b)


def test_story_index_groups_outlets_and_separates_stories() -> None:
    index = MinHashStoryIndex()
    assert index.find(signature(WIRE_TITLE, WIRE)) is None
    index.add(1, signature(WIRE_TITLE, WIRE))
    assert index.find(signature(OUTLET_TITLE, OUTLET)) == 1
    assert index.find(signature(UPDATE_TITLE, UPDATE)) == 1
    assert index.find(signature(OTHER_TITLE, OTHER)) is None
    index.add(2, signature(OTHER_TITLE, OTHER))
    assert index.find(signature(OTHER_TITLE, OTHER + " More to follow.")) == 2
    assert len(index) == 2
    index.remove(1)
    assert index.find(signature(OUTLET_TITLE, OUTLET)) is None


def test_index_is_bounded_and_forgets_oldest_first() -> None:
    index = MinHashStoryIndex(max_stories=3)
    sigs = [
        signature(f"Story number {i}", f"unique words {i} " * 3 + f"token{i}") for i in range(5)
    ]
    for i, sig in enumerate(sigs):
        index.add(i, sig)
    assert len(index) == 3
    assert index.find(sigs[0]) is None and index.find(sigs[4]) == 4


def test_empty_and_garbage_signatures_are_harmless() -> None:
    assert signature("", "") == b""
    assert signature("   ", "!!! ...") == b""
    index = MinHashStoryIndex()
    index.add(1, b"")
    index.add(2, b"\x00garbage")
    assert len(index) == 0
    assert index.find(b"") is None and index.find(b"\xff" * 261) is None
    assert not same_story(b"", b"")
    one_word = signature("Hello", "")
    assert same_story(one_word, signature("hello!", ""))


def test_signature_is_stable_across_processes() -> None:
    code = (
        f"from watchtower.dedupe import signature;print(signature({WIRE_TITLE!r}, {WIRE!r}).hex())"
    )
    outs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(proc.stdout.strip())
    assert outs == {signature(WIRE_TITLE, WIRE).hex()}


def test_kcna_archive_templated_stories_are_not_merged_across_dates() -> None:
    """Same headline, different event (a recurring KCNA template) → different stories;
    the same item under two topics → one story."""
    path = shared_path("corpora", "kcna-archive", "headlines_2024-11-11.json")
    rows = json.loads(path.read_text(encoding="utf-8"))
    by_headline: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_headline.setdefault(row["headline"], []).append(row)
    same_text = different_text = 0
    for group in by_headline.values():
        first = group[0]
        first_sig = signature(first["headline"], first["story_text"][:800])
        for row in group[1:4]:
            joined = same_story(first_sig, signature(row["headline"], row["story_text"][:800]))
            if row["story_text"] == first["story_text"]:
                same_text += 1
                assert joined
            elif row["date"] != first["date"] and not joined:
                different_text += 1
    assert same_text > 100 and different_text > 10
    assert ROOT.is_dir()


def test_signatures_are_the_same_bytes_as_those_already_stored() -> None:
    """A store keeps its stories' signatures across upgrades: a faster signature must
    sign every item exactly as before, or copies of a story seen before the upgrade
    would start a story (and an alert) of their own."""
    import hashlib

    sigs = [
        signature(WIRE_TITLE, WIRE),
        signature(OUTLET_TITLE, OUTLET),
        signature("", "Two words"),
        signature("북한 인권", "中国 强制遣返 脱北者"),
        signature("", ""),
    ]
    digest = hashlib.sha256(b"|".join(sigs)).hexdigest()
    assert digest == "be2f184a3a31c0a0aaec8cc6640322d1789457d7187bae70fa3ea08de5ca1ad4"
