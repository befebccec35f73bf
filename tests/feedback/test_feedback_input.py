"""``feedback import`` lines → labelled items, with the file, line and fix on error."""

from __future__ import annotations

import pytest

from watchtower.errors import WatchtowerError
from watchtower.labelfile import LabelFileError, read_labelled
from watchtower.models import Labelled


def test_lines_become_labelled_items_html_read_as_text() -> None:
    lines = [
        '{"title": "Defectors sent back", "summary": "<p>Police &amp; guards</p>", "label": 2}',
        "",
        '{"title": "Missile test", "content": "A launch.", "url": "https://x.org", "label": 0}',
        '{"title": "Food aid", "summary": "Rice.", "content": "Rice. More.", "label": 1,'
        ' "id": "d3", "category": "aid"}',
    ]
    assert read_labelled(lines, "past.jsonl") == [
        Labelled("Defectors sent back", "Police & guards", 2),
        Labelled("Missile test", "A launch.", 0, "https://x.org"),
        Labelled("Food aid", "Rice. More.", 1),
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "is not a JSON object"),
        ('{"summary": "x", "label": 2}', 'has no "title"'),
        ('{"title": "  ", "label": 2}', 'has no "title"'),
        ('{"title": "x"}', "use 2 for relevant, 1 for borderline, 0 for not relevant"),
        ('{"title": "x", "label": 3}', '"label" is 3'),
        ('{"title": "x", "label": "relevant"}', '"label" is "relevant"'),
        ('{"title": "x", "label": true}', '"label" is true'),
        ('{"title": "x", "summary": 5, "label": 2}', '"summary" is not a string'),
    ],
)
def test_a_bad_line_names_its_file_line_and_the_fix(line: str, problem: str) -> None:
    good = '{"title": "ok", "label": 0}'
    with pytest.raises(LabelFileError) as caught:
        read_labelled([good, "", line], "past.jsonl")
    assert str(caught.value).startswith("past.jsonl:3: ")
    assert problem in str(caught.value)
    assert isinstance(caught.value, WatchtowerError)
