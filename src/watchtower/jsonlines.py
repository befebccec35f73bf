"""Reading documents given as JSON Lines (``watchtower score``, ``feedback import``).

:func:`score_jsonl` is ``watchtower score``: each line scored by a :class:`TextScorer`.

Each non-blank line is one JSON object with a ``"title"`` and optional ``"summary"``
and ``"content"`` (either may be HTML). :func:`load_object` parses a line and
:func:`document_text` gives its title and body, the body read the way a feed entry's is
(summary and content, without repeats). Problems raise :class:`InputLineError` (or the
subclass the caller names) with the 1-based line number and how to fix it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from watchtower.errors import WatchtowerError
from watchtower.models import Score


class InputLineError(WatchtowerError):
    """A line of JSON-lines input is unusable; ``line`` is 1-based and the message says
    what is wrong and how to fix it."""

    def __init__(self, line: int, problem: str) -> None:
        self.line = line
        self.problem = problem
        super().__init__(f"input line {line}: {problem}")


def load_object(
    line: str, lineno: int, example: str, error: type[InputLineError] = InputLineError
) -> dict[str, Any]:
    """The JSON object on ``line``; ``error`` (naming ``example``) when it is not one."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise error(
            lineno,
            f"not valid JSON ({exc.msg} at column {exc.colno}); "
            f"expected one object a line like {example}",
        ) from exc
    if not isinstance(obj, dict):
        raise error(lineno, f"expected a JSON object like {example}, got {type(obj).__name__}")
    return obj


def _text(obj: Mapping[str, Any], name: str, lineno: int, error: type[InputLineError]) -> str:
    from watchtower.sources.normalize import html_to_text

    value = obj.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise error(lineno, f'"{name}" must be a string, got {type(value).__name__}')
    return html_to_text(value) if "<" in value or "&" in value else value


def document_text(
    obj: Mapping[str, Any], lineno: int, error: type[InputLineError] = InputLineError
) -> tuple[str, str]:
    """(title, body) of a document object; ``error`` when a field is not a string."""
    title = _text(obj, "title", lineno, error)
    summary = _text(obj, "summary", lineno, error)
    content = _text(obj, "content", lineno, error)
    if content and not content.startswith(summary):
        text = content if summary.startswith(content) else f"{summary}\n{content}".strip()
    else:
        text = content or summary
    return title, text


class ScoreInputError(InputLineError):
    """A line of ``watchtower score`` input is not a usable JSON object.

    ``line`` is the 1-based line number; the message says what is wrong and how to fix it.
    """


def parse_item(line: str, lineno: int) -> tuple[Any, str, str]:
    """One input line → (id, title, text); raises :class:`ScoreInputError`."""
    example = '{"id": "1", "title": "…", "summary": "…"}'
    obj = load_object(line, lineno, example, ScoreInputError)
    if "id" not in obj or not isinstance(obj["id"], str | int) or isinstance(obj["id"], bool):
        raise ScoreInputError(lineno, 'missing "id" (a string or integer)')
    if not isinstance(obj.get("title"), str):
        raise ScoreInputError(lineno, 'missing "title" (a string)')
    title, text = document_text(obj, lineno, ScoreInputError)
    return obj["id"], title, text


class TextScorer(Protocol):
    """Anything that scores a title and body: the :class:`Matcher`, or the matcher
    corrected by feedback."""

    def score(self, title: str, text: str) -> Score: ...


def score_jsonl(
    lines: Iterable[str], matcher: TextScorer, threshold: float
) -> Iterator[dict[str, Any]]:
    """Score JSON-lines input for ``watchtower score``.

    Each non-blank line is ``{"id", "title", "summary"?, "content"?, "url"?}``
    (``summary``/``content`` may be HTML). Yields ``{"id", "score", "alert",
    "explanation"}`` per line, ``alert`` = not excluded and score ≥ ``threshold``.
    A malformed line raises :class:`ScoreInputError` naming its line number (items
    before it have already been yielded).
    """
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        item_id, title, text = parse_item(line, lineno)
        sc = matcher.score(title, text)
        yield {
            "id": item_id,
            "score": round(sc.value, 4),
            "alert": sc.alerts_at(threshold),
            "explanation": sc.explanation.to_dict(),
        }
