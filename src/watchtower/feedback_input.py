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

from watchtower.errors import WatchtowerError
from watchtower.feedback_model import Labelled

EXAMPLE = '{"title": "…", "summary": "…", "label": 2}'
LABELS = (0, 1, 2)
VERDICTS = {"relevant": 2, "not-relevant": 0}  # ``watchtower feedback ALERT_ID VERDICT``


class FeedbackInputError(WatchtowerError):
    """A line of ``feedback import`` input is unusable; ``line`` is 1-based and the
    message says what is wrong and how to fix it."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"input line {line}: {problem}")


def _text(obj: Mapping[str, Any], name: str, lineno: int) -> str:
    from watchtower.sources.normalize import html_to_text

    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise FeedbackInputError(lineno, f'"{name}" must be a string, got {type(value).__name__}')
    return html_to_text(value) if "<" in value or "&" in value else value


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
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise FeedbackInputError(
            lineno,
            f"not valid JSON ({exc.msg} at column {exc.colno}); expected one object a "
            f"line like {EXAMPLE}",
        ) from exc
    if not isinstance(obj, dict):
        raise FeedbackInputError(
            lineno, f"expected a JSON object like {EXAMPLE}, got {type(obj).__name__}"
        )
    if not isinstance(obj.get("title"), str) or not obj["title"].strip():
        raise FeedbackInputError(lineno, 'missing "title" (a non-empty string)')
    label = _label(obj, lineno)
    title = _text(obj, "title", lineno)
    summary = _text(obj, "summary", lineno)
    content = _text(obj, "content", lineno)
    if content and not content.startswith(summary):
        text = content if summary.startswith(content) else f"{summary}\n{content}".strip()
    else:
        text = content or summary
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
