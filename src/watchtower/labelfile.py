"""``watchtower feedback import FILE.jsonl``: read items judged before, all or nothing.

Each non-blank line is a JSON object ``{"title", "summary"?, "content"?, "url"?,
"label"}`` with ``label`` 2 (relevant), 1 (borderline) or 0 (not relevant). ``title``
is a non-empty string; ``summary``, ``content`` and ``url`` are strings when present
(``summary`` and ``content`` may be HTML, read as ``watchtower score`` reads them);
other keys are ignored. :func:`read_labelled` returns every item, or raises
:class:`LabelFileError` listing every bad line as ``FILE:LINE: problem (fix)`` — then
nothing is imported.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from watchtower.errors import WatchtowerError
from watchtower.jsonlines import document_text
from watchtower.models import Labelled

__all__ = ["LABELS", "LabelFileError", "read_labelled"]

LABELS = (0, 1, 2)
_MAX_PROBLEMS = 20


class LabelFileError(WatchtowerError):
    """Lines of a labelled-items file that cannot be imported (``problems``, one each)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def _problem(data: Any) -> str | None:
    """What is wrong with one parsed line, as ``problem (fix)``, or ``None``."""
    if not isinstance(data, dict):
        return 'is not a JSON object (write {"title": …, "label": 0, 1 or 2})'
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        return 'has no "title" (give the item\'s title as a non-empty string)'
    label = data.get("label")
    if isinstance(label, bool) or label not in LABELS:
        return (
            f'"label" is {json.dumps(label)} '
            "(use 2 for relevant, 1 for borderline, 0 for not relevant)"
        )
    for key in ("summary", "content", "url"):
        if key in data and data[key] is not None and not isinstance(data[key], str):
            return f'"{key}" is not a string (give it as text or leave it out)'
    return None


def read_labelled(lines: Iterable[str], name: str) -> list[Labelled]:
    """Every item of the file ``name`` (its ``lines``); raises :class:`LabelFileError`."""
    items: list[Labelled] = []
    problems: list[str] = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}:{lineno}: is not valid JSON: {exc.msg} (one object a line)")
            continue
        problem = _problem(data)
        if problem is not None:
            problems.append(f"{name}:{lineno}: {problem}")
            continue
        title, text = document_text(data, lineno)
        items.append(Labelled(title.strip(), text, int(data["label"]), data.get("url")))
    if problems:
        more = len(problems) - _MAX_PROBLEMS
        shown = problems[:_MAX_PROBLEMS] + ([f"… and {more} more"] if more > 0 else [])
        raise LabelFileError(shown)
    if not items:
        raise LabelFileError([f"{name}: no items (one JSON object a line)"])
    return items
