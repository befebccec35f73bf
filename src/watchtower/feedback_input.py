"""``watchtower feedback import FILE.jsonl``: past judgements → :class:`Labelled` items.

Each non-blank line is a JSON object ``{"title", "summary"?, "content"?, "url"?,
"label"}`` with ``label`` 2 (relevant), 1 (borderline) or 0 (not relevant); other keys
(``id``, ``source``, ``category``…) are ignored. ``summary`` and ``content`` may be HTML.
The body is read as ``watchtower score`` reads it (summary and content, without
repeats). A bad line raises :class:`FeedbackInputError` naming its line number and the
fix; the command prints it and exits 2, importing nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from watchtower.feedback_model import Labelled
from watchtower.jsonlines import InputLineError, document_text, load_object

EXAMPLE = '{"title": "…", "summary": "…", "label": 2}'
LABELS = (0, 1, 2)
VERDICTS = {"relevant": 2, "not-relevant": 0}  # ``watchtower feedback ALERT_ID VERDICT``


class FeedbackInputError(InputLineError):
    """A line of ``feedback import`` input is unusable; ``line`` is 1-based and the
    message says what is wrong and how to fix it."""


def _label(obj: Mapping[str, Any], lineno: int) -> int:
    value = obj.get("label")
    if isinstance(value, bool) or value not in LABELS:
        raise FeedbackInputError(
            lineno,
            f'"label" must be 2 (relevant), 1 (borderline) or 0 (not relevant), got '
            f"{json.dumps(value)}",
        )
    return int(value)


def parse_labelled(line: str, lineno: int) -> Labelled:
    """One input line → :class:`Labelled`; raises :class:`FeedbackInputError`."""
    obj = load_object(line, lineno, EXAMPLE, FeedbackInputError)
    if not isinstance(obj.get("title"), str) or not obj["title"].strip():
        raise FeedbackInputError(lineno, 'missing "title" (a non-empty string)')
    label = _label(obj, lineno)
    title, text = document_text(obj, lineno, FeedbackInputError)
    return Labelled(title, text, label)


def parse_labelled_lines(lines: Iterable[str]) -> list[Labelled]:
    """Every non-blank line → :class:`Labelled`, all or nothing: the first bad line
    raises :class:`FeedbackInputError`."""
    return [parse_labelled(line, n) for n, line in enumerate(lines, start=1) if line.strip()]


def from_verdict(title: str, text: str, verdict: str) -> Labelled:
    """An analyst's verdict on an alert (``relevant`` or ``not-relevant``, as stored)
    → :class:`Labelled` (label 2 or 0) of the alert's title and text; ``ValueError``
    for any other verdict."""
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be 'relevant' or 'not-relevant', got {verdict!r}")
    return Labelled(title, text, VERDICTS[verdict])
