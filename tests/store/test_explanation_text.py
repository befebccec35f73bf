"""An item's explanation is stored from the JSON its scorer encoded, and read back the
same as the explanation itself, on SQLite and PostgreSQL; a rescored entry (full-text
notes added after scoring) is stored with its new explanation, not the first one."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.store.test_store_repo import SOURCES, poll, scored
from watchtower.models import Explanation, Score, ScoredEntry
from watchtower.scoring import score_entry
from watchtower.store import Store


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    with Store.open(store_url) as st:
        st.sync_sources(SOURCES)
        yield st


class FixedScorer:
    """Scores everything 0.9 with one explanation (a real scorer's output shape)."""

    def __init__(self, explanation: Explanation) -> None:
        self.explanation = explanation

    def score(self, title: str, text: str) -> Score:
        return Score(0.9, self.explanation)


def _stored_explanations(st: Store) -> dict[str, object]:
    with st.session() as session:
        rows = session.execute(sa.text("SELECT guid, explanation FROM item")).all()
    return {
        str(guid): value if isinstance(value, dict) else json.loads(value) for guid, value in rows
    }


def test_the_scorers_json_is_what_the_item_and_its_alert_keep(store: Store) -> None:
    template = scored("Daily NK", "t")
    explanation = dataclasses.replace(template.score.explanation, notes=("naïve 北韓 — \u2028",))
    made = score_entry(FixedScorer(explanation), template.entry)
    assert made.explanation_json == json.dumps(explanation.to_dict())
    plain = scored("Daily NK", "plain")  # made without a scorer: no JSON yet
    assert plain.explanation_json == ""

    poll(store, "Daily NK", [made, plain])

    stored = _stored_explanations(store)
    assert stored["t"] == explanation.to_dict()
    assert stored["plain"] == plain.score.explanation.to_dict()
    alerts = {a.title: a.explanation.to_dict() for a in store.list_alerts()}
    assert alerts == {
        made.entry.title: explanation.to_dict(),
        plain.entry.title: plain.score.explanation.to_dict(),
    }


def test_a_rescored_entry_is_stored_with_its_new_explanation(store: Store) -> None:
    first = score_entry(FixedScorer(scored("HRW", "r").score.explanation), scored("HRW", "r").entry)
    old = first.score.explanation
    noted = dataclasses.replace(old, notes=(*old.notes, "scored on the full text"))
    again: ScoredEntry = first.rescored(dataclasses.replace(first.score, explanation=noted))
    assert again.explanation_json == ""

    poll(store, "HRW", [again])

    assert _stored_explanations(store)["r"] == noted.to_dict()
