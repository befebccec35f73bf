"""Line diffs of watched page text, ignoring volatile parts (dates, times, counters).

A page snapshot is the watched text as whitespace-normalised lines, followed by the
links found in the watched region. Two snapshots are compared line by line on a *key*:
the line with every ignore-pattern match removed, whitespace collapsed, case folded.
Lines whose key is new are *added* (this is what gets scored and alerted); lines whose
key disappeared are *removed* (recorded only). Moving a line, repeating it, or changing
only an ignored part of it (a timestamp, a view counter) is no change at all.

Snapshot text format (stored by the pipeline, read back on the next poll)::

    first text line
    second text line
    \\tlinks
    \\thttps://example.org/a\\tLink text

Text lines never start with a tab (they are stripped), so the ``\\tlinks`` marker and
the tab-prefixed link lines cannot be confused with page text. A snapshot without the
marker (none recorded) means "links unknown": no link is reported as new against it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from watchtower.errors import ParseError

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_DAYS = (
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday"
    r"|(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)(?=[.,]|\s+\d))"  # "he sat" stays
)
_UNITS = r"(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)"
_COUNTED = (
    r"(?:views?|comments?|shares?|likes?|reads?|replies|reply|followers?|subscribers?"
    r"|retweets?|reactions?|votes?|visits?|downloads?|responses?)"
)

#: Volatile text ignored on every page unless ``default_ignore=False``: dates (ISO,
#: numeric, with month names), weekday names, clock times with an optional zone,
#: relative times ("3 hours ago", "just now"), counters ("1,234 views", "12 comments")
#: and copyright years. Plain numbers are kept: "45 dead" vs "44 dead" is news.
DEFAULT_IGNORE: tuple[str, ...] = (
    rf"\b{_DAYS}\b\.?",
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?",
    r"\b\d{1,2}[./-]\d{1,2}[./-]\d{2,4}\b",
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS}\b\.?,?(?:\s+\d{{4}}\b)?",
    rf"\b{_MONTHS}\b\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b,?(?:\s+\d{{4}}\b)?",
    rf"\b{_MONTHS}\b\.?\s+\d{{4}}\b",
    r"\b\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?:[ap]\.?m\.?)(?![a-z]))?"
    r"(?:\s*(?-i:UTC|GMT|[A-Z]{2,4}T)\b)?(?:\s*[+-]\d{2}:?\d{2})?",
    r"\b\d{1,2}\s*[ap]\.?m\.?(?![a-z])",
    rf"\b(?:\d+|an?|one|few|several)\s+{_UNITS}\s+ago\b",
    r"\b(?:just now|yesterday|today)\b",
    rf"\b\d[\d,.\u00a0 ]*[km]?\+?\s+{_COUNTED}\b",
    r"(?:©|\(c\)|copyright)\s*\d{4}(?:\s*[-–]\s*\d{4})?",
)

_LINKS_MARKER = "\tlinks"
_SPACES = re.compile(r"\s+")
_WORDLIKE = re.compile(r"\w")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A parsed snapshot: text lines, and links as (canonical url, text) or None."""

    lines: tuple[str, ...]
    links: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True, slots=True)
class LineDiff:
    """Added lines (new keys, in page order, once each) and removed lines."""

    added: tuple[str, ...]
    added_keys: tuple[str, ...]
    removed: tuple[str, ...]


def compile_ignore(
    patterns: Iterable[str], *, defaults: bool = True
) -> tuple[re.Pattern[str], ...]:
    """User patterns compiled as written, plus (case-insensitive) :data:`DEFAULT_IGNORE`.

    Raises :class:`ParseError` naming the first pattern that does not compile.
    """
    compiled: list[re.Pattern[str]] = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as exc:
            raise ParseError(f"ignore pattern {pattern!r} is not a valid regex: {exc}") from exc
    if defaults:
        compiled.extend(_DEFAULTS)
    return tuple(compiled)


_DEFAULTS = tuple(re.compile(p, re.IGNORECASE) for p in DEFAULT_IGNORE)


def line_key(line: str, patterns: Sequence[re.Pattern[str]]) -> str:
    """The comparison key of one line: ignored spans removed, spaces collapsed, casefolded.

    An empty key (nothing left but punctuation) means the line never counts as a change.
    """
    for pattern in patterns:
        line = pattern.sub(" ", line)
    key = _SPACES.sub(" ", line).strip().casefold()
    return key if _WORDLIKE.search(key) else ""


def diff_lines(
    old: Sequence[str], new: Sequence[str], patterns: Sequence[re.Pattern[str]]
) -> LineDiff:
    """Lines of ``new`` whose key is not among ``old``'s keys, and the reverse."""
    old_keyed = [(line, line_key(line, patterns)) for line in old]
    old_keys = {key for _, key in old_keyed}
    new_keyed = [(line, line_key(line, patterns)) for line in new]
    new_keys = {key for _, key in new_keyed}
    added: list[str] = []
    added_keys: list[str] = []
    seen: set[str] = set()
    for line, key in new_keyed:
        if key and key not in old_keys and key not in seen:
            seen.add(key)
            added.append(line)
            added_keys.append(key)
    removed: list[str] = []
    gone: set[str] = set()
    for line, key in old_keyed:
        if key and key not in new_keys and key not in gone:
            gone.add(key)
            removed.append(line)
    return LineDiff(tuple(added), tuple(added_keys), tuple(removed))


def dump_snapshot(lines: Sequence[str], links: Sequence[tuple[str, str]]) -> str:
    """The stored form of a snapshot (see the module docstring)."""
    parts = list(lines)
    parts.append(_LINKS_MARKER)
    parts.extend(f"\t{url}\t{text}" for url, text in links)
    return "\n".join(parts)


def load_snapshot(text: str) -> Snapshot:
    """Read back :func:`dump_snapshot` output; plain text is lines with links unknown."""
    lines: list[str] = []
    links: list[tuple[str, str]] | None = None
    for raw in text.split("\n"):
        if raw == _LINKS_MARKER:
            links = []
        elif raw.startswith("\t"):
            if links is not None:
                _, _, rest = raw.partition("\t")
                url, _, label = rest.partition("\t")
                if url:
                    links.append((url, label))
        elif raw.strip():
            lines.append(raw.strip())
    return Snapshot(tuple(lines), None if links is None else tuple(links))
