"""``feedback import`` lines → labelled items, with the line number and fix on error."""

from __future__ import annotations

import pytest

from watchtower.errors import WatchtowerError
from watchtower.feedback_input import FeedbackInputError, from_verdict, parse_labelled_lines
from watchtower.feedback_model import Labelled


def test_lines_become_labelled_items_html_read_as_text() -> None:
    lines = [
        '{"title": "Defectors sent back", "summary": "<p>Police &amp; guards</p>", "label": 2}',
        "",
        '{"title": "Missile test", "content": "A launch.", "url": "https://x.org", "label": 0}',
        '{"title": "Food aid", "summary": "Rice.", "content": "Rice. More.", "label": 1,'
        ' "id": "d3", "category": "aid"}',
    ]
    assert parse_labelled_lines(lines) == [
        Labelled("Defectors sent back", "Police & guards", 2),
        Labelled("Missile test", "A launch.", 0),
        Labelled("Food aid", "Rice. More.", 1),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"summary": "x", "label": 2}', 'missing "title"'),
        ('{"title": "  ", "label": 2}', 'missing "title"'),
        ('{"title": "x"}', '"label" must be 2 (relevant), 1 (borderline) or 0'),
        ('{"title": "x", "label": 3}', "got 3"),
        ('{"title": "x", "label": "relevant"}', 'got "relevant"'),
        ('{"title": "x", "label": true}', "got true"),
        ('{"title": "x", "summary": 5, "label": 2}', '"summary" must be a string'),
    ],
)
def test_a_bad_line_names_its_number_and_the_fix(line: str, problem: str) -> None:
    good = '{"title": "ok", "label": 0}'
    with pytest.raises(FeedbackInputError) as caught:
        parse_labelled_lines([good, "", line])
    assert caught.value.line == 3
    assert str(caught.value).startswith("input line 3: ")
    assert problem in str(caught.value)
    assert isinstance(caught.value, WatchtowerError)


def test_alert_verdicts_become_labels() -> None:
    assert from_verdict("T", "x", "relevant") == Labelled("T", "x", 2)
    assert from_verdict("T", "x", "not-relevant") == Labelled("T", "x", 0)
    with pytest.raises(ValueError, match="relevant"):
        from_verdict("T", "x", "maybe")
